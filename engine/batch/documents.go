package batch

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// DocOptions say how documents longer than a pair can hold are treated.
type DocOptions struct {
	// MaxDocTokens cuts every document to this many tokens first (Cohere's
	// max_tokens_per_doc); 0: no such limit.
	MaxDocTokens int
	// KeepEnd cuts documents at their start instead of their end (TEI's
	// truncation_direction "Left").
	KeepEnd bool
	// Chunk splits a document that does not fit beside the query into
	// overlapping windows that each fit; each window is scored and the
	// document gets its best window's score.
	Chunk bool
	// MaxChunks caps the windows per document (Cohere's max_chunks_per_doc);
	// 0 means DefaultMaxChunks. Text past the last window is not scored and
	// the document counts as truncated.
	MaxChunks int
	// MaxTokens stops tokenizing as soon as the pairs laid out so far need
	// more tokens than this, with a *TooLargeError, so a request that can
	// never be admitted costs little work; 0: the model's queue bound.
	MaxTokens int
}

// DefaultMaxChunks is Cohere's default max_chunks_per_doc.
const DefaultMaxChunks = 10

// Query is one query with its documents.
type Query struct {
	Text string
	Docs []string
	// Instruction replaces the model's default task instruction (decoder
	// rerankers such as Qwen3-Reranker); "" keeps it. A model without
	// one refuses it with ErrNoInstruction.
	Instruction string
}

// DocPlace says where a document's pairs are in a Prepared batch.
type DocPlace struct {
	First, Count int // pairs First..First+Count-1 are this document's windows
	Truncated    bool
}

// Prepared is every pair of one request, laid out and ready to score.
type Prepared struct {
	Pairs  []Pair
	Places [][]DocPlace // per query, per document
}

// Prepare tokenizes and lays out every query-document pair of a request
// for pairs of at most maxPair tokens; it stops with a *TooLargeError as
// soon as the pairs need more than limit tokens.
func Prepare(tok Tokenizer, l Layout, maxPair, limit int, queries []Query, o DocOptions) (*Prepared, error) {
	maxChunks := o.MaxChunks
	if maxChunks <= 0 {
		maxChunks = DefaultMaxChunks
	}
	if o.MaxTokens > 0 {
		limit = o.MaxTokens
	}
	total := 0
	p := &Prepared{Places: make([][]DocPlace, len(queries))}
	for qi, q := range queries {
		qtext, err := l.QueryText(validUTF8(q.Text), validUTF8(q.Instruction))
		if err != nil {
			return nil, err
		}
		qt, err := tok.Tokenize(qtext, false)
		if err != nil {
			return nil, fmt.Errorf("cannot tokenize the query: %w", err)
		}
		room, err := l.Room(qt, maxPair)
		if err != nil {
			return nil, err
		}
		p.Places[qi] = make([]DocPlace, len(q.Docs))
		for di, d := range q.Docs {
			dt, err := tok.Tokenize(l.DocText(validUTF8(d)), false)
			if err != nil {
				return nil, fmt.Errorf("cannot tokenize document %d: %w", di, err)
			}
			place := DocPlace{First: len(p.Pairs)}
			if o.MaxDocTokens > 0 && len(dt) > o.MaxDocTokens {
				dt, place.Truncated = cut(dt, o.MaxDocTokens, o.KeepEnd), true
			}
			windows := [][]int32{dt}
			switch {
			case len(dt) <= room:
			case o.Chunk && room > 0:
				var more bool
				windows, more = chunk(dt, room, maxChunks)
				place.Truncated = place.Truncated || more
			default:
				windows[0], place.Truncated = cut(dt, room, o.KeepEnd), true
			}
			for _, w := range windows {
				seq, err := l.Pair(qt, w, maxPair)
				if err != nil {
					return nil, err
				}
				if total += len(seq); total > limit {
					return nil, &TooLargeError{Tokens: total, Limit: limit}
				}
				p.Pairs = append(p.Pairs, Pair{Tokens: seq, Truncated: place.Truncated})
			}
			place.Count = len(windows)
			p.Places[qi][di] = place
		}
	}
	return p, nil
}

func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

func cut(t []int32, n int, keepEnd bool) []int32 {
	if keepEnd {
		return t[len(t)-n:]
	}
	return t[:n]
}

// chunk splits t into windows of size tokens overlapping by a quarter, the
// last one ending at t's end, at most limit of them; more reports text left
// unscored.
func chunk(t []int32, size, limit int) (windows [][]int32, more bool) {
	stride := max(size-size/4, 1)
	for start := 0; ; start += stride {
		if start+size >= len(t) {
			windows = append(windows, t[max(len(t)-size, 0):])
			return windows, false
		}
		if len(windows) == limit-1 && limit > 1 {
			windows = append(windows, t[start:start+size])
			return windows, true
		}
		windows = append(windows, t[start:start+size])
		if limit == 1 {
			return windows, true
		}
	}
}

// DocScore is a document's outcome.
type DocScore struct {
	Score     float64 // raw logit: the best window's
	Chunk     int     // which window gave it
	Chunks    int     // windows scored
	Truncated bool
}

// Answer is the outcome of a prepared request.
type Answer struct {
	Docs   [][]DocScore // per query, per document
	Tokens int
}

// Assemble gives each document of p its best window's score from r, the
// Result of scoring p.Pairs.
func Assemble(p *Prepared, res *Result) *Answer {
	a := &Answer{Docs: make([][]DocScore, len(p.Places)), Tokens: res.Tokens}
	for qi, places := range p.Places {
		a.Docs[qi] = make([]DocScore, len(places))
		for di, pl := range places {
			best := DocScore{Score: res.Scores[pl.First], Chunks: pl.Count, Truncated: pl.Truncated}
			for k := 1; k < pl.Count; k++ {
				if s := res.Scores[pl.First+k]; s > best.Score {
					best.Score, best.Chunk = s, k
				}
			}
			a.Docs[qi][di] = best
		}
	}
	return a
}
