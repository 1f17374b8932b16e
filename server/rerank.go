package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/aimind/aimind/auth"
	"github.com/aimind/aimind/engine"
	"github.com/aimind/aimind/models"
)

// rerankRequest is GPUStack's / Jina's / Cohere's common body.
type rerankRequest struct {
	Model           string            `json:"model"`
	Query           *string           `json:"query"`
	Documents       []json.RawMessage `json:"documents"`
	TopN            *int              `json:"top_n"`
	ReturnDocuments *bool             `json:"return_documents"`
	Normalize       bool              `json:"normalize"`
}

type resultDocument struct {
	Text string `json:"text"`
}

type rerankResult struct {
	Document       *resultDocument `json:"document,omitempty"`
	Index          int             `json:"index"`
	RelevanceScore float64         `json:"relevance_score"`
	Truncated      bool            `json:"truncated,omitempty"`
}

type usage struct {
	PromptTokens int `json:"prompt_tokens"`
	TotalTokens  int `json:"total_tokens"`
}

type rerankResponse struct {
	Model   string         `json:"model"`
	Object  string         `json:"object"`
	Results []rerankResult `json:"results"`
	Usage   usage          `json:"usage"`
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

// decodeRerank parses and validates a rerank body in Go, before anything
// reaches the engine.
func decodeRerank(body []byte, maxDocs int) (*rerankRequest, []string, error) {
	var req rerankRequest
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, nil, invalid("the request body is empty; send JSON with query and documents")
	}
	if err := json.Unmarshal(body, &req); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, nil, invalid("field %q has the wrong type: got JSON %s, want %s", te.Field, te.Value, jsonKind(te.Type.String()))
		}
		return nil, nil, invalid("the body is not valid JSON: %v", err)
	}
	if req.Query == nil {
		return nil, nil, invalid("query is required")
	}
	if len(bytes.TrimSpace([]byte(*req.Query))) == 0 {
		return nil, nil, invalid("query is empty")
	}
	if req.Documents == nil {
		return nil, nil, invalid("documents is required: a list of strings or {\"text\": ...} objects")
	}
	if len(req.Documents) == 0 {
		return nil, nil, invalid("documents is empty")
	}
	if len(req.Documents) > maxDocs {
		return nil, nil, &badRequest{status: fasthttp.StatusRequestEntityTooLarge,
			msg: fmt.Sprintf("%d documents exceed the limit of %d per request (--max-documents)", len(req.Documents), maxDocs)}
	}
	if req.TopN != nil && *req.TopN < 0 {
		return nil, nil, invalid("top_n must not be negative")
	}
	docs := make([]string, len(req.Documents))
	for i, raw := range req.Documents {
		text, err := documentText(raw)
		if err != nil {
			return nil, nil, invalid("documents[%d]: %v", i, err)
		}
		docs[i] = text
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
	case "[]json.RawMessage":
		return "an array"
	}
	return goType
}

// documentText accepts a string or an object with a string "text" field.
func documentText(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", errors.New("missing")
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", err
		}
		return s, nil
	case '{':
		var obj struct {
			Text *string `json:"text"`
		}
		if err := json.Unmarshal(raw, &obj); err != nil {
			return "", errors.New("text must be a string")
		}
		if obj.Text == nil {
			return "", errors.New("an object document needs a \"text\" string")
		}
		return *obj.Text, nil
	}
	return "", errors.New("must be a string or an object with \"text\"")
}

func (s *Server) handleRerank(ctx *fasthttp.RequestCtx) {
	p := s.authenticateKey(ctx)
	if p == nil {
		return
	}
	s.rerank(ctx, p)
}

// handleAdminRerank is the playground's rerank, authorised by the session.
func (s *Server) handleAdminRerank(ctx *fasthttp.RequestCtx) {
	if !s.session(ctx, false) {
		return
	}
	s.rerank(ctx, &auth.Principal{})
}

func (s *Server) rerank(ctx *fasthttp.RequestCtx, p *auth.Principal) {
	req, docs, err := decodeRerank(ctx.PostBody(), s.opts.MaxDocuments)
	if err != nil {
		var br *badRequest
		if errors.As(err, &br) {
			writeError(ctx, br.status, typeInvalid, br.msg)
			return
		}
		writeError(ctx, fasthttp.StatusBadRequest, typeInvalid, err.Error())
		return
	}
	model, name, err := s.models.Resolve(req.Model)
	if err == nil || errors.Is(err, models.ErrNotReady) {
		if perr := p.Allows(name); perr != nil {
			writeError(ctx, fasthttp.StatusForbidden, typePermission, perr.Error())
			return
		}
	}
	switch {
	case errors.Is(err, models.ErrUnknown):
		if req.Model == "" {
			writeError(ctx, fasthttp.StatusBadRequest, typeInvalid, "model is required when several models are served")
			return
		}
		writeError(ctx, fasthttp.StatusNotFound, typeNotFound, fmt.Sprintf("model %q is not served; GET /v1/models lists the models", req.Model))
		return
	case errors.Is(err, models.ErrNotReady):
		ctx.Response.Header.Set("Retry-After", "5")
		writeError(ctx, fasthttp.StatusServiceUnavailable, typeUnavailable, err.Error())
		return
	case errors.Is(err, models.ErrUnavailable):
		writeError(ctx, fasthttp.StatusConflict, typeUnavailable, err.Error()+"; start it with POST /api/models/"+name+"/start")
		return
	case err != nil:
		writeError(ctx, fasthttp.StatusInternalServerError, typeServer, err.Error())
		return
	}

	rctx, cancel := context.WithTimeout(context.Background(), s.opts.RequestTimeout)
	defer cancel()
	stopWatch := watchClient(ctx.Conn(), cancel)
	res, err := model.Rerank(rctx, *req.Query, docs)
	stopWatch()
	var overload *engine.OverloadError
	switch {
	case errors.As(err, &overload):
		ctx.Response.Header.Set("Retry-After", strconv.Itoa(int(overload.RetryAfter.Seconds()+0.999)))
		writeError(ctx, fasthttp.StatusTooManyRequests, typeRateLimit, fmt.Sprintf("model %q is busy: %v", name, err))
		return
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads this answer.
		writeError(ctx, 499, typeInvalid, "client closed the request")
		return
	case errors.Is(err, engine.ErrQueryTooLong):
		writeError(ctx, fasthttp.StatusBadRequest, typeInvalid, err.Error())
		return
	case errors.Is(err, context.DeadlineExceeded):
		writeError(ctx, fasthttp.StatusGatewayTimeout, typeUnavailable,
			fmt.Sprintf("model %q did not answer within %s", name, s.opts.RequestTimeout))
		return
	case errors.Is(err, engine.ErrClosed):
		writeError(ctx, fasthttp.StatusConflict, typeUnavailable, fmt.Sprintf("model %q was stopped while answering", name))
		return
	case errors.Is(err, engine.ErrNonFinite):
		writeError(ctx, fasthttp.StatusInternalServerError, typeServer, fmt.Sprintf("model %q produced a non-finite score", name))
		return
	case err != nil:
		writeError(ctx, fasthttp.StatusInternalServerError, typeServer, fmt.Sprintf("model %q: %v", name, err))
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, buildRerankResponse(name, req, docs, res))
}

func buildRerankResponse(name string, req *rerankRequest, docs []string, res *engine.Result) rerankResponse {
	withDocs := req.ReturnDocuments == nil || *req.ReturnDocuments
	results := make([]rerankResult, len(docs))
	for i := range docs {
		score := res.Scores[i]
		if req.Normalize {
			score = 1 / (1 + math.Exp(-score))
		}
		results[i] = rerankResult{Index: i, RelevanceScore: score, Truncated: res.Truncated[i]}
		if withDocs {
			results[i].Document = &resultDocument{Text: docs[i]}
		}
	}
	sort.SliceStable(results, func(a, b int) bool {
		if results[a].RelevanceScore != results[b].RelevanceScore {
			return results[a].RelevanceScore > results[b].RelevanceScore
		}
		return results[a].Index < results[b].Index
	})
	if req.TopN != nil && *req.TopN > 0 && *req.TopN < len(results) {
		results = results[:*req.TopN]
	}
	return rerankResponse{
		Model:   name,
		Object:  "list",
		Results: results,
		Usage:   usage{PromptTokens: res.Tokens, TotalTokens: res.Tokens},
	}
}
