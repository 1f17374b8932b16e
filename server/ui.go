package server

import (
	"io/fs"
	"mime"
	"path"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/aimind/aimind/ui"
)

// handleUI serves the embedded web UI: index.html at /, its assets and
// /favicon.ico (browsers ask for it whatever the page says).
// Nothing is loaded from outside (the CSP says so to the browser too).
func (s *Server) handleUI(ctx *fasthttp.RequestCtx, p string) {
	if m := string(ctx.Method()); m != "GET" && m != "HEAD" {
		ctx.Response.Header.Set("Allow", "GET")
		writeError(ctx, fasthttp.StatusMethodNotAllowed, typeInvalid, "use GET")
		return
	}
	name := strings.TrimPrefix(p, "/")
	if name == "" {
		name = "index.html"
	}
	if !fs.ValidPath(name) {
		writeError(ctx, fasthttp.StatusNotFound, typeNotFound, "no such file")
		return
	}
	b, err := fs.ReadFile(ui.Files, name)
	if err != nil {
		writeError(ctx, fasthttp.StatusNotFound, typeNotFound, "no such file "+p)
		return
	}
	h := &ctx.Response.Header
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-cache")
	ct := mime.TypeByExtension(path.Ext(name))
	if path.Ext(name) == ".ico" { // system MIME tables differ on this one
		ct = "image/x-icon"
	}
	if ct == "" {
		ct = "application/octet-stream"
	}
	ctx.SetContentType(ct)
	ctx.SetBody(b)
}
