package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/aimind/aimind/engine"
)

// The rerank request every dialect but vLLM's /score sends, decoded and
// checked: one struct, the union of their fields.

// rerankRequest is the union of the rerank dialects' fields.
type rerankRequest struct {
	Model           string            `json:"model"`
	Query           *string           `json:"query"`
	Documents       []json.RawMessage `json:"documents"`
	TopN            *int              `json:"top_n"`
	ReturnDocuments *flexBool         `json:"return_documents"`
	Normalize       flexBool          `json:"normalize"` // GPUStack llama-box: sigmoid(logit)
	MinScore        *float64          `json:"min_score"`
	LongDocuments   string            `json:"long_documents"` // "truncate" (default) or "chunk"
	// Instruction replaces a decoder reranker's task instruction
	// (Qwen3-Reranker's "<Instruct>:" line); refused for models without one.
	Instruction string `json:"instruction"`
	// Cohere.
	RankFields      []string `json:"rank_fields"`
	MaxChunksPerDoc *int     `json:"max_chunks_per_doc"`
	MaxTokensPerDoc *int     `json:"max_tokens_per_doc"`
	// TEI.
	Texts               []json.RawMessage `json:"texts"`
	RawScores           *flexBool         `json:"raw_scores"`
	ReturnText          flexBool          `json:"return_text"`
	Truncate            *flexBool         `json:"truncate"`
	TruncationDirection string            `json:"truncation_direction"`
}

// flexBool is a JSON boolean that also accepts the strings "true" and
// "false": RAGFlow's Xinference client sends "return_documents": "true".
type flexBool bool

func (b *flexBool) UnmarshalJSON(data []byte) error {
	switch strings.ToLower(string(data)) {
	case "true", `"true"`:
		*b = true
	case "false", `"false"`:
		*b = false
	case "null":
	default:
		return fmt.Errorf("want true or false, got %s", data)
	}
	return nil
}

// doc is one parsed document.
type doc struct {
	text string
	obj  map[string]any // the original object, nil for a string
	id   any            // the object's "id", echoed on its result
}

// badRequest is a client mistake with its status.
type badRequest struct {
	status int
	msg    string
}

func (b *badRequest) Error() string { return b.msg }

func invalid(format string, a ...any) error {
	return &badRequest{status: fasthttp.StatusBadRequest, msg: fmt.Sprintf(format, a...)}
}

func decodeBody(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return invalid("the request body is empty; send JSON with query and documents")
	}
	if err := json.Unmarshal(body, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return invalid("field %q has the wrong type: got JSON %s, want %s", te.Field, te.Value, jsonKind(te.Type.String()))
		}
		return invalid("the body is not valid JSON: %v", err)
	}
	return nil
}

// decodeRerank parses and validates a rerank body in Go, before anything
// reaches the engine.
func decodeRerank(body []byte, maxDocs int) (*rerankRequest, []doc, error) {
	var req rerankRequest
	if err := decodeBody(body, &req); err != nil {
		return nil, nil, err
	}
	if req.Query == nil {
		return nil, nil, invalid("query is required")
	}
	if len(strings.TrimSpace(*req.Query)) == 0 {
		return nil, nil, invalid("query is empty")
	}
	raw, field := req.Documents, "documents"
	if req.isTEI() {
		raw, field = req.Texts, "texts"
	}
	if raw == nil {
		return nil, nil, invalid("documents is required: a list of strings or {\"text\": ...} objects")
	}
	if len(raw) == 0 {
		return nil, nil, invalid("%s is empty", field)
	}
	if len(raw) > maxDocs {
		return nil, nil, &badRequest{status: fasthttp.StatusRequestEntityTooLarge,
			msg: fmt.Sprintf("%d documents exceed the limit of %d per request (--max-documents)", len(raw), maxDocs)}
	}
	if req.TopN != nil && *req.TopN < 0 {
		return nil, nil, invalid("top_n must not be negative")
	}
	if req.MaxTokensPerDoc != nil && *req.MaxTokensPerDoc < 1 {
		return nil, nil, invalid("max_tokens_per_doc must be at least 1")
	}
	if req.MaxChunksPerDoc != nil && (*req.MaxChunksPerDoc < 1 || *req.MaxChunksPerDoc > 1000) {
		return nil, nil, invalid("max_chunks_per_doc must be between 1 and 1000")
	}
	if req.MinScore != nil && (math.IsNaN(*req.MinScore) || math.IsInf(*req.MinScore, 0)) {
		return nil, nil, invalid("min_score must be a number")
	}
	switch req.LongDocuments {
	case "", "truncate", "chunk":
	default:
		return nil, nil, invalid("long_documents must be \"truncate\" or \"chunk\"")
	}
	switch strings.ToLower(req.TruncationDirection) {
	case "", "right", "left":
	default:
		return nil, nil, invalid("truncation_direction must be \"Right\" or \"Left\"")
	}
	docs := make([]doc, len(raw))
	for i, r := range raw {
		d, err := parseDoc(r, req.RankFields)
		if err != nil {
			return nil, nil, invalid("%s[%d]: %v", field, i, err)
		}
		docs[i] = d
	}
	return &req, docs, nil
}

func jsonKind(goType string) string {
	switch goType {
	case "string", "*string":
		return "a string"
	case "int", "*int":
		return "an integer"
	case "bool", "*bool":
		return "a boolean"
	case "float64", "*float64":
		return "a number"
	case "[]json.RawMessage", "[]string":
		return "an array"
	}
	return goType
}

// parseDoc accepts a string, or an object with a string "text" (Jina,
// Cohere v1), or an object whose rank_fields are ranked as "field: value"
// lines (Cohere v1). An object's "id" is echoed on its result.
func parseDoc(raw json.RawMessage, rankFields []string) (doc, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return doc{}, errors.New("missing")
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return doc{}, err
		}
		return doc{text: s}, nil
	case '{':
		d := doc{}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&d.obj); err != nil {
			return doc{}, errors.New("not a valid object")
		}
		d.id = d.obj["id"]
		switch d.id.(type) {
		case nil, string, json.Number:
		default:
			return doc{}, errors.New("id must be a string or a number")
		}
		if len(rankFields) > 0 {
			var lines []string
			for _, f := range rankFields {
				if v, ok := d.obj[f]; ok && v != nil {
					lines = append(lines, f+": "+fieldText(v))
				}
			}
			if len(lines) == 0 {
				return doc{}, fmt.Errorf("none of rank_fields %v is present", rankFields)
			}
			d.text = strings.Join(lines, "\n")
			return d, nil
		}
		t, ok := d.obj["text"].(string)
		if !ok {
			return doc{}, errors.New("an object document needs a \"text\" string (or name its fields with rank_fields)")
		}
		d.text = t
		return d, nil
	}
	return doc{}, errors.New("must be a string or an object with \"text\"")
}

func fieldText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// isTEI: a body with "texts" and no "documents" is Hugging Face TEI's.
func (r *rerankRequest) isTEI() bool { return r.Texts != nil && r.Documents == nil }

// rerankBody is a decoded rerank request with its documents, what the
// answers of the guide, Cohere v2 and TEI dialects read.
type rerankBody struct {
	req  *rerankRequest
	docs []doc
}

// rerankWork decodes a body of the rerank dialects (guide, Jina, Cohere,
// TEI) into the engine's work.
func rerankWork(body []byte, so *Options, tei bool) (*work, error) {
	req, docs, err := decodeRerank(body, so.MaxDocuments)
	if err != nil {
		return nil, err
	}
	o := engine.DocOptions{Chunk: req.LongDocuments == "chunk", KeepEnd: strings.EqualFold(req.TruncationDirection, "left")}
	if req.MaxChunksPerDoc != nil {
		o.Chunk, o.MaxChunks = true, *req.MaxChunksPerDoc
	}
	o.MaxDocTokens = so.MaxTokensPerDoc
	if req.MaxTokensPerDoc != nil {
		o.MaxDocTokens = *req.MaxTokensPerDoc
	}
	texts := make([]string, len(docs))
	for i, dc := range docs {
		texts[i] = dc.text
	}
	return &work{
		model:            req.Model,
		queries:          []engine.Query{{Text: *req.Query, Docs: texts, Instruction: req.Instruction}},
		opts:             o,
		refuseTruncation: tei && req.Truncate != nil && !bool(*req.Truncate),
		req:              &rerankBody{req: req, docs: docs},
	}, nil
}

// ranked returns the body and its ranked results.
func (w *work) ranked(ans *engine.Answer) (*rerankBody, []ranked) {
	b := w.req.(*rerankBody)
	return b, rank(b.req, b.docs, ans.Docs[0])
}
