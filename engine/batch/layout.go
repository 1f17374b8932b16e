package batch

import (
	"errors"
	"fmt"
	"strings"
)

// ErrQueryTooLong is returned when the query and special tokens alone leave
// no room within the pair length limit.
var ErrQueryTooLong = errors.New("query is too long")

// LayoutKind names how a query-document pair becomes one token sequence.
type LayoutKind string

// Pair layouts.
const (
	// LayoutRoBERTa is Hugging Face's XLM-R/RoBERTa pair encoding:
	// <s> q </s></s> d </s>. aimind uses it for every UGM vocabulary, whether
	// or not the GGUF carries add_sep_token, because that is what the
	// original models were trained on.
	LayoutRoBERTa LayoutKind = "roberta"
	// LayoutBERT is the WordPiece pair encoding [CLS] q [SEP] d [SEP].
	LayoutBERT LayoutKind = "bert"
	// LayoutTemplate follows tokenizer.chat_template.rerank from the GGUF.
	LayoutTemplate LayoutKind = "template"
)

// part is one piece of a layout: literal tokens, or the query or document.
type part struct {
	tokens []int32
	query  bool
	doc    bool
}

// Layout turns a tokenized query and document into one sequence.
type Layout struct {
	Kind  LayoutKind
	parts []part
	text  *instructText // how query and document texts are wrapped; nil: as they are
}

// Tokenizer is what a template layout needs to tokenize its literal text.
type Tokenizer interface {
	Tokenize(text string, parseSpecial bool) ([]int32, error)
}

// NewSpecialLayout builds the RoBERTa or BERT layout from special token ids.
func NewSpecialLayout(kind LayoutKind, cls, sep int32) (Layout, error) {
	if cls < 0 || sep < 0 {
		return Layout{}, fmt.Errorf("cannot build the %s pair layout: the vocabulary lacks a CLS/BOS (%d) or SEP/EOS (%d) token", kind, cls, sep)
	}
	lit := func(t ...int32) part { return part{tokens: t} }
	switch kind {
	case LayoutRoBERTa:
		return Layout{Kind: kind, parts: []part{lit(cls), {query: true}, lit(sep, sep), {doc: true}, lit(sep)}}, nil
	case LayoutBERT:
		return Layout{Kind: kind, parts: []part{lit(cls), {query: true}, lit(sep), {doc: true}, lit(sep)}}, nil
	}
	return Layout{}, fmt.Errorf("cannot build pair layout %q", kind)
}

// NewTemplateLayout builds a layout from a rerank template holding {query}
// and {document}; its literal text is tokenized with special tokens parsed.
func NewTemplateLayout(template string, tok Tokenizer) (Layout, error) {
	if strings.Count(template, "{query}") != 1 || strings.Count(template, "{document}") != 1 {
		return Layout{}, fmt.Errorf("cannot use the rerank template %q: it must hold {query} and {document} once each", template)
	}
	l := Layout{Kind: LayoutTemplate}
	rest := template
	for rest != "" {
		qi, di := strings.Index(rest, "{query}"), strings.Index(rest, "{document}")
		next, ph := -1, ""
		switch {
		case qi >= 0 && (di < 0 || qi < di):
			next, ph = qi, "{query}"
		case di >= 0:
			next, ph = di, "{document}"
		}
		lit := rest
		if next >= 0 {
			lit = rest[:next]
		}
		if lit != "" {
			toks, err := tok.Tokenize(lit, true)
			if err != nil {
				return Layout{}, fmt.Errorf("cannot tokenize the rerank template: %w", err)
			}
			l.parts = append(l.parts, part{tokens: toks})
		}
		if next < 0 {
			break
		}
		l.parts = append(l.parts, part{query: ph == "{query}", doc: ph == "{document}"})
		rest = rest[next+len(ph):]
	}
	return l, nil
}

// Overhead is the number of special or template tokens around the texts.
func (l Layout) Overhead() int {
	n := 0
	for _, p := range l.parts {
		n += len(p.tokens)
	}
	return n
}

// Room is how many document tokens fit beside query within maxLen; a query
// that leaves no room at all is ErrQueryTooLong.
func (l Layout) Room(query []int32, maxLen int) (int, error) {
	fixed := l.Overhead() + len(query)
	if fixed > maxLen {
		return 0, fmt.Errorf("%w: it takes %d of the %d tokens a pair may hold", ErrQueryTooLong, fixed, maxLen)
	}
	return maxLen - fixed, nil
}

// errDocTooLong: Pair was given a document its caller should have cut
// (Prepare cuts or chunks every document to the room the query leaves).
var errDocTooLong = errors.New("BUG: document longer than the room in the pair")

// Pair lays out one pair within maxLen tokens. It does not cut: a document
// longer than the room the query leaves is errDocTooLong; a query that
// leaves no room is ErrQueryTooLong.
func (l Layout) Pair(query, doc []int32, maxLen int) ([]int32, error) {
	room, err := l.Room(query, maxLen)
	if err != nil {
		return nil, err
	}
	if len(doc) > room {
		return nil, fmt.Errorf("%w: %d tokens, room for %d", errDocTooLong, len(doc), room)
	}
	fixed := maxLen - room
	seq := make([]int32, 0, fixed+len(doc))
	for _, p := range l.parts {
		switch {
		case p.query:
			seq = append(seq, query...)
		case p.doc:
			seq = append(seq, doc...)
		default:
			seq = append(seq, p.tokens...)
		}
	}
	return seq, nil
}
