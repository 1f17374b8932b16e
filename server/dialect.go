package server

import (
	"bytes"
	"encoding/json"
	"errors"

	"github.com/valyala/fasthttp"

	"github.com/aimind/aimind/auth"
	"github.com/aimind/aimind/engine"
)

// dialect is one rerank API. Each lives in its own file (dialect_*.go) with
// its request type; the route table (New) names the dialect of each route.
// Adding a dialect is one file and one route line: every dialect reaches
// the same engine through serveDialect.
type dialect interface {
	// decode parses and checks a body in Go, before anything reaches the
	// engine; a *badRequest carries its status, any other error is a 400.
	decode(body []byte, o *Options) (*work, error)
	// answer writes the scores of a decoded request.
	answer(ctx *fasthttp.RequestCtx, w *work, name string, ans *engine.Answer)
	// fail writes an error in the dialect's shape.
	fail(ctx *fasthttp.RequestCtx, status int, typ, msg string)
}

// work is what a decoded request asks of the engine.
type work struct {
	model            string
	queries          []engine.Query
	opts             engine.DocOptions
	refuseTruncation bool // a document that does not fit is a 413, not cut
	req              any  // the dialect's own request, for its answer
}

// picker is a dialect that hands a body to another dialect by its shape.
type picker interface {
	pick(body []byte) dialect
}

// orTEI is a route's dialect that also takes Hugging Face TEI's bodies: one
// with "texts" and no "documents" is TEI's.
type orTEI struct{ dialect }

func (d orTEI) pick(body []byte) dialect {
	var probe struct {
		Texts     []json.RawMessage `json:"texts"`
		Documents []json.RawMessage `json:"documents"`
	}
	if err := json.Unmarshal(body, &probe); err == nil {
		if probe.Texts != nil && probe.Documents == nil {
			return teiDialect{}
		}
		return d.dialect
	}
	if bytes.Contains(body, []byte(`"texts"`)) && !bytes.Contains(body, []byte(`"documents"`)) {
		return teiDialect{}
	}
	return d.dialect
}

// keyRoute serves a dialect to callers with an API key.
func (s *Server) keyRoute(d dialect) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		if p := s.authenticateKey(ctx); p != nil {
			s.serveDialect(ctx, p, d)
		}
	}
}

// serveDialect decodes, resolves the model, scores and answers.
func (s *Server) serveDialect(ctx *fasthttp.RequestCtx, p *auth.Principal, d dialect) {
	if pk, ok := d.(picker); ok {
		d = pk.pick(ctx.PostBody())
	}
	w, err := d.decode(ctx.PostBody(), &s.opts)
	if err != nil {
		var br *badRequest
		if errors.As(err, &br) {
			d.fail(ctx, br.status, typeInvalid, br.msg)
		} else {
			d.fail(ctx, fasthttp.StatusBadRequest, typeInvalid, err.Error())
		}
		return
	}
	model, name, ok := s.resolve(ctx, p, d, w.model)
	if !ok {
		return
	}
	ans, ok := s.run(ctx, d, model, name, w.queries, w.opts, w.refuseTruncation)
	if !ok {
		return
	}
	d.answer(ctx, w, name, ans)
}
