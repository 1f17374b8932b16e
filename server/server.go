// Package server answers aimind's HTTP API over fasthttp. fasthttp stays
// inside this package: no RequestCtx or its byte slices outlive a handler.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/aimind/aimind/auth"
	"github.com/aimind/aimind/engine"
	"github.com/aimind/aimind/hub"
	"github.com/aimind/aimind/models"
	"github.com/aimind/aimind/selfcheck"
)

// Options configure the HTTP server. Zero fields take the defaults below.
type Options struct {
	MaxBodyBytes    int           // request body limit
	MaxDocuments    int           // documents per rerank request
	MaxTokensPerDoc int           // tokens kept of each document before pairing (default 4096, as Cohere)
	RequestTimeout  time.Duration // how long a request may wait for its scores
	ReadTimeout     time.Duration // the body, once the headers are in
	HeaderTimeout   time.Duration // the request line and headers (default 10 s, at most ReadTimeout)
	WriteTimeout    time.Duration
	IdleTimeout     time.Duration
	MaxHeaderBytes  int
	MaxConnsPerIP   int // concurrent connections from one client address
	Logger          *slog.Logger

	// TokenizeWait is how long a request waits for one of the tokenizing
	// slots (2 per CPU) before a 503; --tokenize-wait.
	TokenizeWait time.Duration

	Hubs           map[hub.Source]hub.Hub // for /api/hub search and file lists
	Keys           *auth.Keys             // API keys; nil or NoAuth: the rerank API is open
	NoAuth         bool                   // API-key checking off (explicit --no-auth)
	Admin          *auth.Admin            // admin login for /api/*; nil: no admin API
	TLS            bool                   // served over HTTPS (cookies get Secure)
	TrustedProxies []*net.IPNet           // whose X-Forwarded-For/-Proto to believe
	Cache          *engine.ScoreCache     // the models' score cache, for /metrics; nil: off
}

// Defaults.
const (
	DefaultMaxBodyBytes    = 8 << 20
	DefaultMaxDocuments    = 1000
	DefaultMaxTokensPerDoc = 4096
	DefaultRequestTimeout  = 5 * time.Minute
	DefaultTokenizeWait    = 10 * time.Second
	DefaultReadTimeout     = 30 * time.Second
	DefaultHeaderTimeout   = 10 * time.Second
	DefaultWriteTimeout    = 30 * time.Second
	DefaultIdleTimeout     = 2 * time.Minute
	DefaultMaxHeaderBytes  = 16 << 10
	DefaultMaxConnsPerIP   = 256
)

func (o *Options) setDefaults() {
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.MaxTokensPerDoc <= 0 {
		o.MaxTokensPerDoc = DefaultMaxTokensPerDoc
	}
	if o.MaxDocuments <= 0 {
		o.MaxDocuments = DefaultMaxDocuments
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.TokenizeWait <= 0 {
		o.TokenizeWait = DefaultTokenizeWait
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = DefaultReadTimeout
	}
	if o.HeaderTimeout <= 0 {
		o.HeaderTimeout = DefaultHeaderTimeout
	}
	o.HeaderTimeout = min(o.HeaderTimeout, o.ReadTimeout)
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if o.MaxConnsPerIP <= 0 {
		o.MaxConnsPerIP = DefaultMaxConnsPerIP
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Server is aimind's HTTP front.
type Server struct {
	opts     Options
	models   *models.Manager
	http     *fasthttp.Server
	local    *fasthttp.Server
	routes   map[string]route
	draining atomic.Bool
	// tokenizing bounds the requests that tokenize at once, so a flood of
	// large bodies cannot take every core before admission.
	tokenizing chan struct{}
	scoring    atomic.Int64 // rerank and score requests being handled
}

// scoring reports whether path is a route that scores pairs.
func scoring(path string) bool {
	switch path {
	case "/v1/rerank", "/rerank", "/v2/rerank", "/score", "/v1/score", "/api/rerank":
		return true
	}
	return false
}

type route struct {
	method  string
	handler fasthttp.RequestHandler
}

// New builds a server over the given models.
func New(m *models.Manager, o Options) *Server {
	o.setDefaults()
	s := &Server{opts: o, models: m, tokenizing: make(chan struct{}, 2*runtime.GOMAXPROCS(0))}
	s.routes = map[string]route{
		// The rerank dialects (dialect.go): one line each.
		"/v1/rerank": {fasthttp.MethodPost, s.keyRoute(orTEI{guideDialect{}})},
		"/rerank":    {fasthttp.MethodPost, s.keyRoute(orTEI{guideDialect{}})},
		"/v2/rerank": {fasthttp.MethodPost, s.keyRoute(orTEI{cohereV2Dialect{}})},
		"/score":     {fasthttp.MethodPost, s.keyRoute(scoreDialect{})},
		"/v1/score":  {fasthttp.MethodPost, s.keyRoute(scoreDialect{})},
		"/v1/models": {fasthttp.MethodGet, s.handleModels},
		"/health":    {fasthttp.MethodGet, s.handleHealth},
		"/ready":     {fasthttp.MethodGet, s.handleReady},
		"/metrics":   {fasthttp.MethodGet, s.handleMetrics},

		"/api/login":    {fasthttp.MethodPost, s.handleLogin},
		"/api/logout":   {fasthttp.MethodPost, s.handleLogout},
		"/api/me":       {fasthttp.MethodGet, s.handleMe},
		"/api/password": {fasthttp.MethodPost, s.handlePassword},
		"/api/rerank":   {fasthttp.MethodPost, s.handleAdminRerank},
	}
	s.http = &fasthttp.Server{
		Handler:            s.handle,
		ErrorHandler:       s.handleTransportError,
		Name:               "aimind",
		MaxRequestBodySize: o.MaxBodyBytes,
		// A slow client holds a connection (and its address's share of
		// --max-conns-per-ip) for the header timeout at most; a client that
		// has sent its headers gets the read timeout for the body.
		ReadTimeout: o.HeaderTimeout,
		HeaderReceived: func(*fasthttp.RequestHeader) fasthttp.RequestConfig {
			return fasthttp.RequestConfig{ReadTimeout: o.ReadTimeout}
		},
		WriteTimeout:                  o.WriteTimeout,
		IdleTimeout:                   o.IdleTimeout,
		ReadBufferSize:                o.MaxHeaderBytes,
		DisableHeaderNamesNormalizing: false,
		NoDefaultServerHeader:         false,
		CloseOnShutdown:               true,
		SecureErrorLogMessage:         true, // fasthttp's own logs never quote request contents
		Logger:                        fasthttpLogger{o.Logger},
	}
	s.local = s.newLocal()
	return s
}

type fasthttpLogger struct{ l *slog.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) {
	f.l.Debug(fmt.Sprintf(format, args...), "source", "fasthttp")
}

func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	id := requestID(ctx)
	ctx.Response.Header.Set("X-Request-Id", id)
	path := string(ctx.Path())
	r, ok := s.routes[path]
	switch {
	case path == "/api/keys" || strings.HasPrefix(path, "/api/keys/"):
		s.handleKeys(ctx)
	case path == "/api/models" || strings.HasPrefix(path, "/api/models/"):
		s.handleModelsAPI(ctx)
	case strings.HasPrefix(path, "/api/hub/"):
		s.handleHub(ctx)
	case !ok && (path == "/" || path == "/favicon.ico" || strings.HasPrefix(path, "/assets/")):
		s.handleUI(ctx, path)
	case !ok:
		writeError(ctx, fasthttp.StatusNotFound, typeNotFound, fmt.Sprintf("no route %s %s", ctx.Method(), path))
	case string(ctx.Method()) != r.method:
		writeError(ctx, fasthttp.StatusMethodNotAllowed, typeInvalid, fmt.Sprintf("%s does not accept %s; use %s", path, ctx.Method(), r.method))
		ctx.Response.Header.Set("Allow", r.method)
	default:
		if scoring(path) {
			s.scoring.Add(1)
		}
		r.handler(ctx)
		if scoring(path) {
			s.scoring.Add(-1)
		}
	}
	d := time.Since(start)
	status := ctx.Response.StatusCode()
	route := routeLabel(path, ok)
	s.observeRequest(route, status, d)
	level := slog.LevelInfo
	if quietRoute(route) || (polled(string(ctx.Method()), route) && status < 400) {
		level = slog.LevelDebug
	}
	s.opts.Logger.Log(context.Background(), level, "request", "request_id", id, "method", string(ctx.Method()), "route", route,
		"status", status, "seconds", d.Seconds(), "client", s.clientIP(ctx).String(), "bytes_in", len(ctx.Request.Body()))
}

// quietRoute: probes, metrics and the UI's own files, logged at debug level.
func quietRoute(route string) bool {
	switch route {
	case "/health", "/ready", "/metrics", "/assets", "/", "/favicon.ico":
		return true
	}
	return false
}

// polled reports whether a request is one the web UI repeats while a page is
// open (the Models table every second, a model's logs, the key list, the
// session check). Its successes are logged at debug level, so that an open
// browser tab does not write an INFO line a second; its failures, and every
// change, stay at INFO.
func polled(method, route string) bool {
	if method != "GET" {
		return false
	}
	switch route {
	case "/api/models", "/api/models/{name}", "/api/keys", "/api/me":
		return true
	}
	return false
}

// handleTransportError answers a request fasthttp could not read. The
// answer is a fixed message: fasthttp's error text quotes the raw request,
// Authorization header included, which must never be echoed or logged.
func (s *Server) handleTransportError(ctx *fasthttp.RequestCtx, err error) {
	ctx.Response.Header.Set("X-Request-Id", requestID(ctx))
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		writeError(ctx, fasthttp.StatusRequestEntityTooLarge, typeInvalid,
			fmt.Sprintf("the request body exceeds the limit of %d bytes (--max-body-bytes)", s.opts.MaxBodyBytes))
	case isTimeout(err):
		writeError(ctx, fasthttp.StatusRequestTimeout, typeInvalid, "the request was not received in time")
	case errors.As(err, new(*fasthttp.ErrSmallBuffer)):
		writeError(ctx, fasthttp.StatusRequestHeaderFieldsTooLarge, typeInvalid,
			fmt.Sprintf("the request headers exceed %d bytes", s.opts.MaxHeaderBytes))
	default:
		writeError(ctx, fasthttp.StatusBadRequest, typeInvalid, "cannot parse the HTTP request: malformed request line, headers or Content-Length")
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Serve answers on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	return s.http.Serve(limitPerIP(ln, s.opts.MaxConnsPerIP))
}

// ServeTLS answers HTTPS on ln with the given certificate and key files.
func (s *Server) ServeTLS(ln net.Listener, certFile, keyFile string) error {
	return s.http.ServeTLS(limitPerIP(ln, s.opts.MaxConnsPerIP), certFile, keyFile)
}

// ServeLocal answers the key-management API on ln, a Unix socket in the data
// directory whose file mode (0600) is the authorisation: `aimind keys` uses
// it while a server holds the store.
func (s *Server) ServeLocal(ln net.Listener) error {
	return s.local.Serve(ln)
}

// newLocal builds the local socket's server in New, before any goroutine
// can reach it: Shutdown reads s.local while ServeLocal runs.
func (s *Server) newLocal() *fasthttp.Server {
	return &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			p := string(ctx.Path())
			if (p == "/api/keys" || strings.HasPrefix(p, "/api/keys/")) && s.opts.Keys != nil {
				s.keysAPI(ctx)
				return
			}
			writeError(ctx, fasthttp.StatusNotFound, typeNotFound, "the local socket serves /api/keys only")
		},
		Name:               "aimind-local",
		MaxRequestBodySize: 64 << 10,
		ReadTimeout:        10 * time.Second,
		WriteTimeout:       10 * time.Second,
		Logger:             fasthttpLogger{s.opts.Logger},
	}
}

// Drain makes /ready answer 503 while every request is still served, so
// that a balancer polling /ready moves traffic away before Shutdown closes
// the listener.
func (s *Server) Drain() { s.draining.Store(true) }

// Shutdown stops accepting and waits for open requests; /ready answers 503
// from the start of it.
func (s *Server) Shutdown() error {
	s.draining.Store(true)
	if s.local != nil {
		s.local.Shutdown()
	}
	return s.http.Shutdown()
}

func (s *Server) handleHealth(ctx *fasthttp.RequestCtx) {
	writeJSON(ctx, fasthttp.StatusOK, map[string]string{"status": "ok"})
}

type modelCard struct {
	ID            string             `json:"id"`
	Object        string             `json:"object"`
	Created       int64              `json:"created"`
	OwnedBy       string             `json:"owned_by"`
	Status        string             `json:"status"`
	Error         string             `json:"error,omitempty"`
	Source        string             `json:"source"`
	Repo          string             `json:"repo,omitempty"`
	File          string             `json:"file,omitempty"`
	Architecture  string             `json:"architecture,omitempty"`
	FileType      string             `json:"file_type,omitempty"`
	ContextLength int                `json:"context_length,omitempty"`
	MaxPairTokens int                `json:"max_pair_tokens,omitempty"`
	PairLayout    string             `json:"pair_layout,omitempty"`
	Kernel        string             `json:"kernel,omitempty"`
	Device        string             `json:"device,omitempty"` // "CPU" or the GPU buffers of a GPU build
	Progress      *models.Progress   `json:"progress,omitempty"`
	Score         string             `json:"score"`
	Warnings      []string           `json:"warnings,omitempty"`
	SelfCheck     *selfcheck.Outcome `json:"self_check,omitempty"`
}

// ScoreMeaning is what /v1/models says a score is, for a cross-encoder;
// DecoderScoreMeaning for a decoder reranker (Qwen3-Reranker), whose score
// is the log-odds of "yes".
const (
	ScoreMeaning        = "raw logit of the cross-encoder's classification head (higher is more relevant); \"normalize\": true returns sigmoid(logit) in [0, 1]"
	DecoderScoreMeaning = "log-odds of \"yes\" against \"no\" as the next token after the reranker's prompt (higher is more relevant); \"normalize\": true returns the probability of \"yes\" in [0, 1]"
)

func (s *Server) card(r models.Record) modelCard {
	c := modelCard{
		ID: r.Name, Object: "model", Created: r.Created.Unix(), OwnedBy: "aimind",
		Status: string(r.Status), Error: r.Error, Source: string(r.Source), Repo: r.Repo, File: r.File,
		Progress: r.Progress, Score: ScoreMeaning, SelfCheck: r.SelfCheck,
	}
	if f := r.Facts; f != nil {
		c.Architecture, c.FileType, c.ContextLength, c.Warnings = f.Architecture, f.FileType, f.ContextLength, f.Warnings
		if f.Architecture == "qwen3" {
			c.Score = DecoderScoreMeaning
		}
	}
	if m := s.models.Engine(r.Name); m != nil {
		c.MaxPairTokens = m.MaxPairTokens()
		c.PairLayout = string(m.Layout().Kind)
		c.Kernel = m.Kernel()
		c.Device = m.Device()
	}
	return c
}

// handleModels lists the models the caller's API key may use (all of
// them without auth); /health and /ready stay public.
func (s *Server) handleModels(ctx *fasthttp.RequestCtx) {
	p := s.authenticateKey(ctx)
	if p == nil {
		return
	}
	list := s.models.List()
	cards := make([]modelCard, 0, len(list))
	for _, r := range list {
		if p.Allows(r.Name) != nil {
			continue
		}
		cards = append(cards, s.card(r))
	}
	writeJSON(ctx, fasthttp.StatusOK, map[string]any{"object": "list", "data": cards})
}
