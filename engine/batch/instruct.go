package batch

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// LayoutInstruct is a decoder reranker's prompt (Qwen3-Reranker): a system
// prompt, "<Instruct>: …", "<Query>: …", "<Document>: …" and the assistant's
// opening, read on the last token.
const LayoutInstruct LayoutKind = "instruct"

// Qwen3Template is the prompt of Qwen3-Reranker's model card, in the form
// llama.cpp's converter stores it as tokenizer.chat_template.rerank. It is
// used when a qwen3 reranker file carries no template.
const Qwen3Template = "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct provided. Note that the answer can only be \"yes\" or \"no\".<|im_end|>\n" +
	"<|im_start|>user\n<Instruct>: Given a web search query, retrieve relevant passages that answer the query\n<Query>: {query}\n<Document>: {document}<|im_end|>\n" +
	"<|im_start|>assistant\n<think>\n\n</think>\n\n"

// ErrNoInstruction is a request's instruction for a model whose prompt has
// no place for one.
var ErrNoInstruction = errors.New("this model takes no instruction")

// MaxInstructionBytes bounds a request's instruction.
const MaxInstructionBytes = 4096

// chatSpecial matches the control tokens of ChatML prompts (<|im_start|>).
var chatSpecial = regexp.MustCompile(`<\|[^|<>\s]{1,64}\|>`)

const instructTag = "<Instruct>: "

// instructText is how an instruct layout turns texts into what is
// tokenized: the query with the plain prompt text around it (instruction,
// tags), and the document with the space before it. Tokenizing the plain
// text between two control tokens as one string, as the model card does,
// keeps byte-level BPE merges across the query's edges; the split between
// query and document falls where the pre-tokenizer splits anyway (before
// the space of " document").
type instructText struct {
	head, tail     string // plain text before and after the query
	docHead        string // whitespace before the document
	docTail        string // plain text after the document, before the next control token
	instruction    string // the template's own instruction ("" when it has none)
	hasInstruction bool
}

// NewInstructLayout builds a decoder reranker's layout from its rerank
// template (Qwen3Template when the file has none): control-token text is
// tokenized with special tokens parsed, everything else as plain text, so a
// query or document can never inject a control token.
func NewInstructLayout(template string, tok Tokenizer) (Layout, error) {
	if template == "" {
		template = Qwen3Template
	}
	qi, di := strings.Index(template, "{query}"), strings.Index(template, "{document}")
	if strings.Count(template, "{query}") != 1 || strings.Count(template, "{document}") != 1 || qi > di {
		return Layout{}, fmt.Errorf("cannot use the rerank template %q: it must hold {query} and then {document}, once each", template)
	}
	dEnd := di + len("{document}")
	start, end := 0, len(template)
	for _, m := range chatSpecial.FindAllStringIndex(template, -1) {
		if m[1] <= qi {
			start = m[1]
		}
		if m[0] >= dEnd && end == len(template) {
			end = m[0]
		}
		if m[0] < dEnd && m[1] > qi {
			return Layout{}, fmt.Errorf("cannot use the rerank template %q: a control token stands between {query} and {document}", template)
		}
	}
	between := template[qi+len("{query}") : di]
	trimmed := strings.TrimRight(between, " ")
	t := &instructText{
		head:    template[start:qi],
		tail:    trimmed,
		docHead: between[len(trimmed):],
		docTail: template[dEnd:end],
	}
	if i := strings.Index(t.head, instructTag); i >= 0 {
		rest := t.head[i+len(instructTag):]
		if j := strings.IndexByte(rest, '\n'); j >= 0 {
			t.instruction, t.hasInstruction = rest[:j], true
		}
	}
	l := Layout{Kind: LayoutInstruct, text: t}
	add := func(lit string) error {
		if lit == "" {
			return nil
		}
		toks, err := tok.Tokenize(lit, true)
		if err != nil {
			return fmt.Errorf("cannot tokenize the rerank template: %w", err)
		}
		l.parts = append(l.parts, part{tokens: toks})
		return nil
	}
	if err := add(template[:start]); err != nil {
		return Layout{}, err
	}
	l.parts = append(l.parts, part{query: true}, part{doc: true})
	if err := add(template[end:]); err != nil {
		return Layout{}, err
	}
	return l, nil
}

// Instruction is the layout's default instruction ("" when it has none).
func (l Layout) Instruction() string {
	if l.text == nil {
		return ""
	}
	return l.text.instruction
}

// QueryText is the text tokenized as a pair's query part: the query itself,
// or for an instruct layout the plain prompt text around it with
// instruction in place of the template's own ("" keeps the template's).
func (l Layout) QueryText(query, instruction string) (string, error) {
	t := l.text
	if t == nil {
		if instruction != "" {
			return "", fmt.Errorf("%w (its pair layout is %s); leave instruction out", ErrNoInstruction, l.Kind)
		}
		return query, nil
	}
	head := t.head
	if instruction != "" {
		if !t.hasInstruction {
			return "", fmt.Errorf("%w: its rerank template has no %q line; leave instruction out", ErrNoInstruction, strings.TrimSpace(instructTag))
		}
		if len(instruction) > MaxInstructionBytes {
			return "", fmt.Errorf("%w: instruction of %d bytes (at most %d)", ErrQueryTooLong, len(instruction), MaxInstructionBytes)
		}
		// The instruction stays on its line: a newline in it would forge
		// the <Query>/<Document> lines.
		instruction = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(instruction)
		i := strings.Index(head, instructTag) + len(instructTag)
		head = head[:i] + instruction + head[i+len(t.instruction):]
	}
	return head + query + t.tail, nil
}

// DocText is the text tokenized as a pair's document part.
func (l Layout) DocText(doc string) string {
	if l.text == nil {
		return doc
	}
	return l.text.docHead + doc + l.text.docTail
}
