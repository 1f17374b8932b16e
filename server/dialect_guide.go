package server

import (
	"github.com/valyala/fasthttp"

	"github.com/aimind/aimind/engine"
)

// GPUStack's guide, Jina and Cohere v1 (/v1/rerank, /rerank and the
// playground's /api/rerank) share one request (rerankRequest) and one
// answer shape.
type guideDialect struct{}

func (guideDialect) decode(body []byte, o *Options) (*work, error) { return rerankWork(body, o, false) }

func (guideDialect) answer(ctx *fasthttp.RequestCtx, w *work, name string, ans *engine.Answer) {
	b, results := w.ranked(ans)
	writeJSON(ctx, fasthttp.StatusOK, guideAnswer(name, b.req, b.docs, results, ans.Tokens))
}

func (guideDialect) fail(ctx *fasthttp.RequestCtx, status int, typ, msg string) {
	writeError(ctx, status, typ, msg)
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
