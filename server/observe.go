package server

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/aimind/aimind/models"
	"github.com/aimind/aimind/selfcheck"
)

// Metrics are Prometheus metrics in VictoriaMetrics' package; names are
// aimind_*. Routes are labelled by their pattern only, so a client cannot
// grow the label set.
func routeLabel(path string, known bool) string {
	switch {
	case known:
		return path
	case len(path) >= 12 && path[:12] == "/api/models/":
		return "/api/models/{name}"
	case len(path) >= 10 && path[:10] == "/api/keys/":
		return "/api/keys/{id}"
	case len(path) >= 8 && path[:8] == "/assets/":
		return "/assets"
	case path == "/api/models", path == "/api/keys", path == "/api/hub/search", path == "/api/hub/files", path == "/", path == "/favicon.ico":
		return path
	}
	return "other"
}

func (s *Server) observeRequest(route string, status int, d time.Duration) {
	metrics.GetOrCreateCounter(fmt.Sprintf(`aimind_http_requests_total{route=%q,code="%d"}`, route, status)).Inc()
	metrics.GetOrCreateHistogram(fmt.Sprintf(`aimind_http_request_duration_seconds{route=%q}`, route)).Update(d.Seconds())
}

// ObserveBatch records one encoder call (wired to models.Manager.Observe).
func ObserveBatch(model string, pairs, tokens int, d time.Duration) {
	metrics.GetOrCreateHistogram(fmt.Sprintf(`aimind_batch_pairs{model=%q}`, model)).Update(float64(pairs))
	metrics.GetOrCreateHistogram(fmt.Sprintf(`aimind_batch_tokens{model=%q}`, model)).Update(float64(tokens))
	metrics.GetOrCreateHistogram(fmt.Sprintf(`aimind_batch_duration_seconds{model=%q}`, model)).Update(d.Seconds())
	metrics.GetOrCreateCounter(fmt.Sprintf(`aimind_tokens_total{model=%q}`, model)).Add(tokens)
	metrics.GetOrCreateCounter(fmt.Sprintf(`aimind_pairs_total{model=%q}`, model)).Add(pairs)
}

func (s *Server) handleMetrics(ctx *fasthttp.RequestCtx) {
	// Gauges that read the current state at scrape time.
	counts := map[models.State]int{}
	for _, r := range s.models.List() {
		counts[r.Status]++
		if m := s.models.Engine(r.Name); m != nil {
			q := float64(m.QueuedTokens())
			metrics.GetOrCreateGauge(fmt.Sprintf(`aimind_queue_tokens{model=%q}`, r.Name), nil).Set(q)
			metrics.GetOrCreateGauge(fmt.Sprintf(`aimind_model_kernel{model=%q,kernel=%q}`, r.Name, m.Kernel()), nil).Set(1)
			metrics.GetOrCreateGauge(fmt.Sprintf(`aimind_model_device{model=%q,device=%q}`, r.Name, m.Device()), nil).Set(1)
			if c := r.SelfCheck; c != nil {
				suspect := 0.0
				if c.Status == selfcheck.Suspect {
					suspect = 1
				}
				metrics.GetOrCreateGauge(fmt.Sprintf(`aimind_model_suspect{model=%q}`, r.Name), nil).Set(suspect)
			}
		} else {
			metrics.GetOrCreateGauge(fmt.Sprintf(`aimind_queue_tokens{model=%q}`, r.Name), nil).Set(0)
		}
	}
	for _, st := range []models.State{models.StatePending, models.StateDownloading, models.StateLoading, models.StateRunning, models.StateError, models.StateStopped} {
		metrics.GetOrCreateGauge(fmt.Sprintf(`aimind_models{state=%q}`, st), nil).Set(float64(counts[st]))
	}
	metrics.GetOrCreateGauge(`aimind_scoring_requests_in_flight`, nil).Set(float64(s.scoring.Load()))
	cs := s.opts.Cache.Stats()
	metrics.GetOrCreateCounter(`aimind_score_cache_hits_total`).Set(cs.Hits)
	metrics.GetOrCreateCounter(`aimind_score_cache_misses_total`).Set(cs.Misses)
	metrics.GetOrCreateGauge(`aimind_score_cache_bytes`, nil).Set(float64(cs.Bytes))
	metrics.GetOrCreateGauge(`aimind_score_cache_max_bytes`, nil).Set(float64(cs.Max))
	metrics.GetOrCreateGauge(`aimind_score_cache_entries`, nil).Set(float64(cs.Entries))
	ctx.SetContentType("text/plain; version=0.0.4")
	metrics.WritePrometheus(ctx, true)
}

// handleReady is 200 while a model runs and the server is not draining.
func (s *Server) handleReady(ctx *fasthttp.RequestCtx) {
	if s.draining.Load() {
		writeError(ctx, fasthttp.StatusServiceUnavailable, typeUnavailable, "shutting down")
		return
	}
	for _, r := range s.models.List() {
		if r.Status == models.StateRunning {
			writeJSON(ctx, fasthttp.StatusOK, map[string]string{"status": "ready"})
			return
		}
	}
	writeError(ctx, fasthttp.StatusServiceUnavailable, typeUnavailable, "no model is running yet")
}

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// requestID echoes a sane X-Request-Id or makes one.
func requestID(ctx *fasthttp.RequestCtx) string {
	if id := string(ctx.Request.Header.Peek("X-Request-Id")); requestIDPattern.MatchString(id) {
		return id
	}
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}
