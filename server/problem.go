package server

import (
	"encoding/json"

	"github.com/valyala/fasthttp"

	"github.com/aimind/aimind/hub"
)

// writeProblem answers like writeError, with the error explained for a
// person as "problem": {"kind", "field", "what", "fix", "detail"} (the web
// UI shows what and fix next to the field, and the detail folded). The
// message is the sanitised error, so that clients reading only
// error.message see no signed URL or token either.
func writeProblem(ctx *fasthttp.RequestCtx, status int, typ string, p *hub.Problem) {
	msg := p.What
	if p.Detail != "" {
		msg = p.Detail
	}
	body, _ := json.Marshal(struct {
		Error   apiError     `json:"error"`
		Detail  string       `json:"detail"`
		Problem *hub.Problem `json:"problem"`
	}{apiError{Message: msg, Type: typ, Code: status}, msg, p})
	ctx.Response.ResetBody()
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(body)
}

// hubStatus is the HTTP status for a hub failure of this kind.
func hubStatus(p *hub.Problem) (int, string) {
	switch p.Kind {
	case "not_found":
		return fasthttp.StatusNotFound, typeNotFound
	case "no_gguf", "invalid":
		return fasthttp.StatusBadRequest, typeInvalid
	}
	return fasthttp.StatusBadGateway, typeUnavailable
}

func hubName(source hub.Source) string {
	if source == hub.ModelScope {
		return "ModelScope"
	}
	return "Hugging Face"
}
