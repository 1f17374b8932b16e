package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/aimind/aimind/engine"
	"github.com/valyala/fasthttp"
)

// vLLM's /score and /v1/score: text_1 against text_2, sigmoid scores.

// scoreRequest is vLLM's /score body.
type scoreRequest struct {
	Model string          `json:"model"`
	Text1 json.RawMessage `json:"text_1"`
	Text2 json.RawMessage `json:"text_2"`
}

func stringOrList(raw json.RawMessage, field string) ([]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, invalid("%s is required", field)
	}
	var one string
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &one); err != nil {
			return nil, invalid("%s: %v", field, err)
		}
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, invalid("%s must be a string or a list of strings", field)
	}
	if len(many) == 0 {
		return nil, invalid("%s is empty", field)
	}
	return many, nil
}

// scoreDialect is vLLM's score API: text_1 against each text_2 (or
// pairwise when both are lists of one length); scores are sigmoid(logit) as
// vLLM reports for one-label cross-encoders.
type scoreDialect struct{}

func (scoreDialect) decode(body []byte, o *Options) (*work, error) {
	var req scoreRequest
	if err := decodeBody(body, &req); err != nil {
		return nil, err
	}
	t1, err := stringOrList(req.Text1, "text_1")
	if err != nil {
		return nil, err
	}
	t2, err := stringOrList(req.Text2, "text_2")
	if err != nil {
		return nil, err
	}
	if len(t1) != 1 && len(t1) != len(t2) {
		return nil, invalid("text_1 has %d texts and text_2 %d: give one text_1 or as many as text_2", len(t1), len(t2))
	}
	if len(t2) > o.MaxDocuments {
		return nil, &badRequest{status: fasthttp.StatusRequestEntityTooLarge,
			msg: fmt.Sprintf("%d texts exceed the limit of %d per request (--max-documents)", len(t2), o.MaxDocuments)}
	}
	for _, q := range t1 {
		if strings.TrimSpace(q) == "" {
			return nil, invalid("text_1 is empty")
		}
	}
	var queries []engine.Query
	if len(t1) == 1 {
		queries = []engine.Query{{Text: t1[0], Docs: t2}}
	} else {
		for i := range t1 {
			queries = append(queries, engine.Query{Text: t1[i], Docs: []string{t2[i]}})
		}
	}
	return &work{model: req.Model, queries: queries}, nil
}

func (scoreDialect) answer(ctx *fasthttp.RequestCtx, _ *work, name string, ans *engine.Answer) {
	type item struct {
		Index  int     `json:"index"`
		Object string  `json:"object"`
		Score  float64 `json:"score"`
	}
	data := []item{}
	for _, q := range ans.Docs {
		for _, ds := range q {
			data = append(data, item{Index: len(data), Object: "score", Score: sigmoid(ds.Score)})
		}
	}
	writeJSON(ctx, fasthttp.StatusOK, map[string]any{
		"id": "score-" + strings.ReplaceAll(newID(), "-", ""), "object": "list", "created": time.Now().Unix(), "model": name,
		"data": data, "usage": usage{PromptTokens: ans.Tokens, TotalTokens: ans.Tokens},
	})
}

func (scoreDialect) fail(ctx *fasthttp.RequestCtx, status int, typ, msg string) {
	writeError(ctx, status, typ, msg)
}
