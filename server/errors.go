package server

import (
	"encoding/json"

	"github.com/valyala/fasthttp"
)

// Error types, one per HTTP status family, in the OpenAI/GPUStack style.
const (
	typeInvalid     = "invalid_request_error"
	typeAuth        = "authentication_error"
	typePermission  = "permission_error"
	typeNotFound    = "not_found_error"
	typeRateLimit   = "rate_limit_error"
	typeUnavailable = "unavailable_error"
	typeServer      = "server_error"
)

type apiError struct {
	Message string `json:"message"`
	Type    string `json:"type"`
	Code    int    `json:"code"`
}

// writeError answers with the stable JSON error shape
// {"error": {"message", "type", "code"}, "detail": message}; "detail" is
// where Jina's API (and LangChain's Jina client, which raises
// resp["detail"]) looks for the message.
func writeError(ctx *fasthttp.RequestCtx, status int, typ, msg string) {
	body, _ := json.Marshal(struct {
		Error  apiError `json:"error"`
		Detail string   `json:"detail"`
	}{apiError{Message: msg, Type: typ, Code: status}, msg})
	ctx.Response.ResetBody()
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(body)
}

func writeJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		writeError(ctx, fasthttp.StatusInternalServerError, typeServer, "cannot encode the answer: "+err.Error())
		return
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(body)
}

// decodeJSON parses an /api/* body with a message fit for the client.
func decodeJSON(body []byte, v any) error { return decodeBody(body, v) }
