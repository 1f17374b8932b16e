package server

import (
	"encoding/json"

	"github.com/valyala/fasthttp"

	"github.com/aimind/aimind/engine"
)

// Hugging Face TEI (a body with "texts" on any rerank route, see orTEI): a
// bare array of results; truncate false refuses a document that does not
// fit; errors are {"error", "error_type"}.
type teiDialect struct{}

func (teiDialect) decode(body []byte, o *Options) (*work, error) { return rerankWork(body, o, true) }

func (teiDialect) answer(ctx *fasthttp.RequestCtx, w *work, _ string, ans *engine.Answer) {
	b, results := w.ranked(ans)
	writeJSON(ctx, fasthttp.StatusOK, teiAnswer(b.req, b.docs, results))
}

// fail: TEI's shape; validation errors are 422.
func (teiDialect) fail(ctx *fasthttp.RequestCtx, status int, _, msg string) {
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
