package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/aimind/aimind/auth"
	"github.com/aimind/aimind/engine"
	"github.com/aimind/aimind/models"
)

func newID() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

// handleAdminRerank is the playground's rerank, authorised by the session.
func (s *Server) handleAdminRerank(ctx *fasthttp.RequestCtx) {
	if !s.session(ctx, false) {
		return
	}
	s.serveDialect(ctx, &auth.Principal{}, guideDialect{})
}

// fail answers an error in the dialect's shape.
func fail(ctx *fasthttp.RequestCtx, d dialect, status int, typ, msg string) {
	d.fail(ctx, status, typ, msg)
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
	pairs := 0
	for _, q := range queries {
		pairs += len(q.Docs)
	}
	if err := model.Admit(pairs); err != nil {
		s.refuse(ctx, d, name, err)
		return nil, false
	}
	if !s.tokenizeSlot() {
		ctx.Response.Header.Set("Retry-After", "1")
		fail(ctx, d, fasthttp.StatusServiceUnavailable, typeUnavailable,
			fmt.Sprintf("every tokenizing slot stayed busy for %s (--tokenize-wait); the request was not scored, retry it", s.opts.TokenizeWait))
		return nil, false
	}
	prep, err := model.Prepare(queries, o)
	<-s.tokenizing
	if errors.Is(err, engine.ErrQueryTooLong) || errors.Is(err, engine.ErrNoInstruction) {
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

// tokenizeSlot takes one of the tokenizing slots, waiting at most
// TokenizeWait; the wait and the refusals are in /metrics.
func (s *Server) tokenizeSlot() bool {
	select {
	case s.tokenizing <- struct{}{}:
		tokenizeWait.Update(0)
		return true
	default:
	}
	start := time.Now()
	t := time.NewTimer(s.opts.TokenizeWait)
	defer t.Stop()
	select {
	case s.tokenizing <- struct{}{}:
		tokenizeWait.UpdateDuration(start)
		return true
	case <-t.C:
		tokenizeWait.UpdateDuration(start)
		tokenizeRefused.Inc()
		return false
	}
}

var (
	tokenizeWait    = metrics.NewHistogram(`aimind_tokenize_wait_seconds`)
	tokenizeRefused = metrics.NewCounter(`aimind_tokenize_refused_total`)
)

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

// ranked is one document's outcome after sorting.
type ranked struct {
	index int
	score float64 // what relevance_score reports
	raw   float64 // the logit
	ds    engine.DocScore
}

// rank sorts by logit (then index), drops results under min_score, keeps
// top_n.
func rank(req *rerankRequest, docs []doc, scores []engine.DocScore) []ranked {
	normalize := req.Normalize
	if req.isTEI() { // TEI: sigmoid unless raw_scores
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
