package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/aimind/aimind/auth"
	"github.com/aimind/aimind/engine"
	"github.com/aimind/aimind/models"
)

// dialect is the API a request speaks; every dialect reaches the same engine.
type dialect int

const (
	dialectGuide    dialect = iota // GPUStack's guide, Jina and Cohere v1 on /v1/rerank and /rerank
	dialectCohereV2                // Cohere v2 on /v2/rerank
	dialectTEI                     // Hugging Face TEI: a body with "texts"
	dialectScore                   // vLLM /score
)

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
	if req.Texts != nil && req.Documents == nil {
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

func newID() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

func (s *Server) handleRerank(ctx *fasthttp.RequestCtx) {
	if p := s.authenticateKey(ctx); p != nil {
		s.rerank(ctx, p, dialectGuide)
	}
}

func (s *Server) handleRerankV2(ctx *fasthttp.RequestCtx) {
	if p := s.authenticateKey(ctx); p != nil {
		s.rerank(ctx, p, dialectCohereV2)
	}
}

// handleAdminRerank is the playground's rerank, authorised by the session.
func (s *Server) handleAdminRerank(ctx *fasthttp.RequestCtx) {
	if !s.session(ctx, false) {
		return
	}
	s.rerank(ctx, &auth.Principal{}, dialectGuide)
}

// fail answers an error in the dialect's shape.
func fail(ctx *fasthttp.RequestCtx, d dialect, status int, typ, msg string) {
	if d != dialectTEI {
		writeError(ctx, status, typ, msg)
		return
	}
	// TEI: {"error", "error_type"}; validation errors are 422.
	et := "Validation"
	switch {
	case status == fasthttp.StatusBadRequest:
		status = fasthttp.StatusUnprocessableEntity
	case status == fasthttp.StatusTooManyRequests:
		et = "Overloaded"
	case status == fasthttp.StatusServiceUnavailable || status == fasthttp.StatusConflict:
		et = "Unhealthy"
	case status >= 500:
		et = "Backend"
	}
	ctx.Response.ResetBody()
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	b, _ := json.Marshal(map[string]string{"error": msg, "error_type": et})
	ctx.SetBody(b)
}

// resolve finds the running model the request names, answering errors.
func (s *Server) resolve(ctx *fasthttp.RequestCtx, p *auth.Principal, d dialect, modelName string) (*engine.Model, string, bool) {
	model, name, err := s.models.Resolve(modelName)
	if err == nil || errors.Is(err, models.ErrNotReady) {
		if perr := p.Allows(name); perr != nil {
			fail(ctx, d, fasthttp.StatusForbidden, typePermission, perr.Error())
			return nil, "", false
		}
	}
	switch {
	case err == nil:
		return model, name, true
	case errors.Is(err, models.ErrUnknown):
		if modelName == "" {
			fail(ctx, d, fasthttp.StatusBadRequest, typeInvalid, "model is required when several models are served")
		} else {
			fail(ctx, d, fasthttp.StatusNotFound, typeNotFound, fmt.Sprintf("model %q is not served; GET /v1/models lists the models", modelName))
		}
	case errors.Is(err, models.ErrNotReady):
		ctx.Response.Header.Set("Retry-After", "5")
		fail(ctx, d, fasthttp.StatusServiceUnavailable, typeUnavailable, err.Error())
	case errors.Is(err, models.ErrUnavailable):
		fail(ctx, d, fasthttp.StatusConflict, typeUnavailable, err.Error()+"; start it with POST /api/models/"+name+"/start")
	default:
		fail(ctx, d, fasthttp.StatusInternalServerError, typeServer, err.Error())
	}
	return nil, "", false
}

// run prepares and scores the pairs, answering errors; ok is false when an
// answer was written.
func (s *Server) run(ctx *fasthttp.RequestCtx, d dialect, model *engine.Model, name string, queries []engine.Query, o engine.DocOptions, refuseTruncation bool) (*engine.Answer, bool) {
	// Cheap checks first: a full queue refuses before any tokenizing, and
	// at most a few requests tokenize at once.
	if err := model.Overloaded(); err != nil {
		s.refuse(ctx, d, name, err)
		return nil, false
	}
	s.tokenizing <- struct{}{}
	prep, err := model.Prepare(queries, o)
	<-s.tokenizing
	if errors.Is(err, engine.ErrQueryTooLong) {
		fail(ctx, d, fasthttp.StatusBadRequest, typeInvalid, err.Error())
		return nil, false
	}
	if err != nil {
		s.refuse(ctx, d, name, err)
		return nil, false
	}
	if refuseTruncation {
		for _, pl := range prep.Places {
			for i, p := range pl {
				if p.Truncated {
					fail(ctx, d, fasthttp.StatusRequestEntityTooLarge, typeInvalid,
						fmt.Sprintf("Input validation error: text %d does not fit the %d tokens a pair may hold and truncate is false", i, model.MaxPairTokens()))
					return nil, false
				}
			}
		}
	}
	rctx, cancel := context.WithTimeout(context.Background(), s.opts.RequestTimeout)
	defer cancel()
	stopWatch := watchClient(ctx.Conn(), cancel)
	ans, err := model.Run(rctx, prep)
	stopWatch()
	if err != nil {
		s.refuse(ctx, d, name, err)
		return nil, false
	}
	return ans, true
}

// refuse answers an engine error in the dialect's shape.
func (s *Server) refuse(ctx *fasthttp.RequestCtx, d dialect, name string, err error) {
	var overload *engine.OverloadError
	switch {
	case errors.As(err, &overload):
		ctx.Response.Header.Set("Retry-After", strconv.Itoa(int(overload.RetryAfter.Seconds()+0.999)))
		fail(ctx, d, fasthttp.StatusTooManyRequests, typeRateLimit, fmt.Sprintf("model %q is busy: %v", name, err))
	case errors.Is(err, engine.ErrTooLarge):
		fail(ctx, d, fasthttp.StatusRequestEntityTooLarge, typeInvalid, fmt.Sprintf("model %q cannot take this request: %v", name, err))
	case errors.Is(err, context.Canceled):
		fail(ctx, d, 499, typeInvalid, "client closed the request")
	case errors.Is(err, context.DeadlineExceeded):
		fail(ctx, d, fasthttp.StatusGatewayTimeout, typeUnavailable, fmt.Sprintf("model %q did not answer within %s", name, s.opts.RequestTimeout))
	case errors.Is(err, engine.ErrClosed):
		ctx.Response.Header.Set("Retry-After", "5")
		fail(ctx, d, fasthttp.StatusServiceUnavailable, typeUnavailable, fmt.Sprintf("model %q: %v; the request was not scored", name, err))
	case errors.Is(err, engine.ErrNonFinite):
		fail(ctx, d, fasthttp.StatusInternalServerError, typeServer, fmt.Sprintf("model %q produced a non-finite score", name))
	default:
		fail(ctx, d, fasthttp.StatusInternalServerError, typeServer, fmt.Sprintf("model %q: %v", name, err))
	}
}

func (s *Server) rerank(ctx *fasthttp.RequestCtx, p *auth.Principal, d dialect) {
	req, docs, err := decodeRerank(ctx.PostBody(), s.opts.MaxDocuments)
	if req != nil && req.Texts != nil && req.Documents == nil {
		d = dialectTEI
	} else if err != nil && bytes.Contains(ctx.PostBody(), []byte(`"texts"`)) && !bytes.Contains(ctx.PostBody(), []byte(`"documents"`)) {
		d = dialectTEI
	}
	if err != nil {
		var br *badRequest
		if errors.As(err, &br) {
			fail(ctx, d, br.status, typeInvalid, br.msg)
		} else {
			fail(ctx, d, fasthttp.StatusBadRequest, typeInvalid, err.Error())
		}
		return
	}
	model, name, ok := s.resolve(ctx, p, d, req.Model)
	if !ok {
		return
	}
	o := engine.DocOptions{Chunk: req.LongDocuments == "chunk", KeepEnd: strings.EqualFold(req.TruncationDirection, "left")}
	if req.MaxChunksPerDoc != nil {
		o.Chunk, o.MaxChunks = true, *req.MaxChunksPerDoc
	}
	o.MaxDocTokens = s.opts.MaxTokensPerDoc
	if req.MaxTokensPerDoc != nil {
		o.MaxDocTokens = *req.MaxTokensPerDoc
	}
	texts := make([]string, len(docs))
	for i, dc := range docs {
		texts[i] = dc.text
	}
	refuse := d == dialectTEI && req.Truncate != nil && !bool(*req.Truncate)
	ans, ok := s.run(ctx, d, model, name, []engine.Query{{Text: *req.Query, Docs: texts}}, o, refuse)
	if !ok {
		return
	}
	results := rank(req, docs, ans.Docs[0])
	switch d {
	case dialectTEI:
		writeJSON(ctx, fasthttp.StatusOK, teiAnswer(req, docs, results))
	case dialectCohereV2:
		writeJSON(ctx, fasthttp.StatusOK, cohereV2Answer(req, docs, results))
	default:
		writeJSON(ctx, fasthttp.StatusOK, guideAnswer(name, req, docs, results, ans.Tokens))
	}
}

// ranked is one document's outcome after sorting.
type ranked struct {
	index int
	score float64 // what relevance_score reports
	raw   float64 // the logit
	ds    engine.DocScore
}

// rank sorts by score (then index), drops results under min_score, keeps
// top_n.
func rank(req *rerankRequest, docs []doc, scores []engine.DocScore) []ranked {
	normalize := req.Normalize
	if req.Texts != nil && req.Documents == nil { // TEI: sigmoid unless raw_scores
		normalize = req.RawScores == nil || !*req.RawScores
	}
	out := make([]ranked, len(docs))
	for i, ds := range scores {
		out[i] = ranked{index: i, score: ds.Score, raw: ds.Score, ds: ds}
		if normalize {
			out[i].score = sigmoid(ds.Score)
		}
	}
	// Order by the logit: sigmoid saturates to 1.0 above about 36.7, where
	// normalized scores tie although the logits do not.
	sort.SliceStable(out, func(a, b int) bool {
		if out[a].raw != out[b].raw {
			return out[a].raw > out[b].raw
		}
		return out[a].index < out[b].index
	})
	if req.MinScore != nil {
		kept := out[:0]
		for _, r := range out {
			if r.score >= *req.MinScore {
				kept = append(kept, r)
			}
		}
		out = kept
	}
	if req.TopN != nil && *req.TopN > 0 && *req.TopN < len(out) {
		out = out[:*req.TopN]
	}
	return out
}

type chunkInfo struct {
	Index int `json:"index"`
	Count int `json:"count"`
}

type guideResult struct {
	Document       any        `json:"document,omitempty"`
	Index          int        `json:"index"`
	ID             any        `json:"id,omitempty"`
	RelevanceScore float64    `json:"relevance_score"`
	RawScore       *float64   `json:"raw_score,omitempty"`
	Truncated      bool       `json:"truncated,omitempty"`
	Chunk          *chunkInfo `json:"chunk,omitempty"`
}

type usage struct {
	PromptTokens int `json:"prompt_tokens"`
	TotalTokens  int `json:"total_tokens"`
}

type cohereMeta struct {
	APIVersion struct {
		Version string `json:"version"`
	} `json:"api_version"`
	BilledUnits struct {
		SearchUnits int `json:"search_units"`
	} `json:"billed_units"`
}

func meta(version string, docs int) cohereMeta {
	var m cohereMeta
	m.APIVersion.Version = version
	m.BilledUnits.SearchUnits = (docs + 99) / 100 // Cohere bills a search unit per 100 documents
	return m
}

type guideResponse struct {
	ID      string        `json:"id"`
	Model   string        `json:"model"`
	Object  string        `json:"object"`
	Results []guideResult `json:"results"`
	Usage   usage         `json:"usage"`
	Meta    cohereMeta    `json:"meta"`
}

func resultDocument(d doc) any {
	if d.obj != nil {
		return d.obj
	}
	return map[string]string{"text": d.text}
}

func guideResultOf(req *rerankRequest, docs []doc, r ranked, withDocs bool) guideResult {
	g := guideResult{Index: r.index, ID: docs[r.index].id, RelevanceScore: r.score, Truncated: r.ds.Truncated}
	if withDocs {
		g.Document = resultDocument(docs[r.index])
	}
	if req.Normalize {
		raw := r.raw
		g.RawScore = &raw
	}
	if r.ds.Chunks > 1 {
		g.Chunk = &chunkInfo{Index: r.ds.Chunk, Count: r.ds.Chunks}
	}
	return g
}

func guideAnswer(name string, req *rerankRequest, docs []doc, results []ranked, tokens int) guideResponse {
	withDocs := req.ReturnDocuments == nil || bool(*req.ReturnDocuments)
	out := guideResponse{ID: newID(), Model: name, Object: "list", Results: make([]guideResult, len(results)),
		Usage: usage{PromptTokens: tokens, TotalTokens: tokens}, Meta: meta("1", len(docs))}
	for i, r := range results {
		out.Results[i] = guideResultOf(req, docs, r, withDocs)
	}
	return out
}

type cohereV2Response struct {
	ID      string        `json:"id"`
	Results []guideResult `json:"results"`
	Meta    cohereMeta    `json:"meta"`
}

// cohereV2Answer follows Cohere's v2 reference: documents only when asked.
func cohereV2Answer(req *rerankRequest, docs []doc, results []ranked) cohereV2Response {
	withDocs := req.ReturnDocuments != nil && bool(*req.ReturnDocuments)
	out := cohereV2Response{ID: newID(), Results: make([]guideResult, len(results)), Meta: meta("2", len(docs))}
	for i, r := range results {
		out.Results[i] = guideResultOf(req, docs, r, withDocs)
	}
	return out
}

type teiResult struct {
	Index int     `json:"index"`
	Score float64 `json:"score"`
	Text  *string `json:"text,omitempty"`
}

func teiAnswer(req *rerankRequest, docs []doc, results []ranked) []teiResult {
	out := make([]teiResult, len(results))
	for i, r := range results {
		out[i] = teiResult{Index: r.index, Score: r.score}
		if req.ReturnText {
			t := docs[r.index].text
			out[i].Text = &t
		}
	}
	return out
}

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

// handleScore is vLLM's score API: text_1 against each text_2 (or pairwise
// when both are lists of one length); scores are sigmoid(logit) as vLLM
// reports for one-label cross-encoders.
func (s *Server) handleScore(ctx *fasthttp.RequestCtx) {
	p := s.authenticateKey(ctx)
	if p == nil {
		return
	}
	d := dialectScore
	var req scoreRequest
	if err := decodeBody(ctx.PostBody(), &req); err != nil {
		fail(ctx, d, fasthttp.StatusBadRequest, typeInvalid, err.Error())
		return
	}
	t1, err := stringOrList(req.Text1, "text_1")
	if err != nil {
		fail(ctx, d, fasthttp.StatusBadRequest, typeInvalid, err.Error())
		return
	}
	t2, err := stringOrList(req.Text2, "text_2")
	if err != nil {
		fail(ctx, d, fasthttp.StatusBadRequest, typeInvalid, err.Error())
		return
	}
	if len(t1) != 1 && len(t1) != len(t2) {
		fail(ctx, d, fasthttp.StatusBadRequest, typeInvalid, fmt.Sprintf("text_1 has %d texts and text_2 %d: give one text_1 or as many as text_2", len(t1), len(t2)))
		return
	}
	if len(t2) > s.opts.MaxDocuments {
		fail(ctx, d, fasthttp.StatusRequestEntityTooLarge, typeInvalid, fmt.Sprintf("%d texts exceed the limit of %d per request (--max-documents)", len(t2), s.opts.MaxDocuments))
		return
	}
	for _, q := range t1 {
		if strings.TrimSpace(q) == "" {
			fail(ctx, d, fasthttp.StatusBadRequest, typeInvalid, "text_1 is empty")
			return
		}
	}
	model, name, ok := s.resolve(ctx, p, d, req.Model)
	if !ok {
		return
	}
	var queries []engine.Query
	if len(t1) == 1 {
		queries = []engine.Query{{Text: t1[0], Docs: t2}}
	} else {
		for i := range t1 {
			queries = append(queries, engine.Query{Text: t1[i], Docs: []string{t2[i]}})
		}
	}
	ans, ok := s.run(ctx, d, model, name, queries, engine.DocOptions{}, false)
	if !ok {
		return
	}
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
