package server

import (
	"github.com/valyala/fasthttp"

	"github.com/aimind/aimind/engine"
)

// Cohere v2 (/v2/rerank): the guide's request and errors; results without
// the guide's model and usage.
type cohereV2Dialect struct{ guideDialect }

func (cohereV2Dialect) answer(ctx *fasthttp.RequestCtx, w *work, _ string, ans *engine.Answer) {
	b, results := w.ranked(ans)
	writeJSON(ctx, fasthttp.StatusOK, cohereV2Answer(b.req, b.docs, results))
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
