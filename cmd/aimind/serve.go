package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/aimind/aimind/auth"
	"github.com/aimind/aimind/engine"
	"github.com/aimind/aimind/hub"
	"github.com/aimind/aimind/internal/cputarget"
	"github.com/aimind/aimind/llama"
	"github.com/aimind/aimind/modelfile"
	"github.com/aimind/aimind/models"
	"github.com/aimind/aimind/server"
	"github.com/aimind/aimind/store"
)

// serveConfig is every serve flag, validated once.
type serveConfig struct {
	DataDir           string
	APIKeys           []string
	NoAuth            bool
	BootstrapPassword string
	TLSCert, TLSKey   string
	TrustedProxies    []string
	MemoryBudget      int64
	ShutdownTimeout   time.Duration
	DrainDelay        time.Duration // SIGTERM: /ready fails this long before the listener closes
	KeysFile          string        // shared hashed keys of all replicas
	Offline           bool          // models only from the local cache, no network
	Models            []string
	Aliases           []string
	Host              string
	Port              int
	LogLevel          string
	LogFormat         string
	CacheBytes        int64
	SelfCheck         string
	Engine            engine.Options
	Server            server.Options
}

func serveCommand() *cli.Command {
	var cfg serveConfig
	return &cli.Command{
		Name:        "serve",
		Usage:       "load reranker GGUFs and answer POST /v1/rerank",
		Description: serveDescription,
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "model", Aliases: []string{"m"}, Usage: "GGUF file, or hub repo ([hf:|modelscope:]owner/name[:QUANT] or owner/name/file.gguf) to serve (repeatable); hub downloads go through HF_ENDPOINT (see above)"},
			&cli.Int64Flag{Name: "memory-budget", Usage: "bytes the loaded models may take (default: what the system reports available)"},
			dataDirFlag(&cfg.DataDir),
			&cli.StringSliceFlag{Name: "api-key", EnvVars: []string{"AIMIND_API_KEY"}, Usage: "accept this API key too (repeatable; never stored)"},
			&cli.BoolFlag{Name: "no-auth", Usage: "turn API-key checking off for the rerank API (the admin login stays)", Destination: &cfg.NoAuth},
			&cli.StringFlag{Name: "bootstrap-password", EnvVars: []string{"AIMIND_BOOTSTRAP_PASSWORD"}, Usage: "first admin password (default: random, written to <data-dir>/initial_admin_password)", Destination: &cfg.BootstrapPassword},
			&cli.StringFlag{Name: "tls-cert-file", Usage: "serve HTTPS with this PEM certificate (chain) file; needs --tls-key-file (default: plain HTTP)", Destination: &cfg.TLSCert},
			&cli.StringFlag{Name: "tls-key-file", Usage: "the PEM private key of --tls-cert-file", Destination: &cfg.TLSKey},
			&cli.StringSliceFlag{Name: "trusted-proxy", Usage: "CIDR whose X-Forwarded-For/-Proto are believed (repeatable)"},
			&cli.StringSliceFlag{Name: "alias", Usage: "served name of the n-th --model (repeatable)"},
			&cli.StringFlag{Name: "host", Value: "127.0.0.1", Usage: "address to listen on: 127.0.0.1 is this machine only; 0.0.0.0 (or ::) every interface, for other machines and containers", Destination: &cfg.Host, EnvVars: []string{"AIMIND_HOST"}},
			&cli.IntFlag{Name: "port", Value: 8080, Usage: "TCP port of the API and the web UI (0: any free port, named in the log)", Destination: &cfg.Port, EnvVars: []string{"AIMIND_PORT"}},
			&cli.IntFlag{Name: "threads", Usage: "CPU threads per model (0: all CPUs)", Destination: &cfg.Engine.Threads},
			&cli.IntFlag{Name: "gpu-layers", Value: -1, Usage: "layers a GPU build offloads (-1: all, 0: none; a CPU build ignores it)", Destination: &cfg.Engine.GPULayers},
			&cli.StringFlag{Name: "device", Usage: "the GPU offloaded layers go to, by ggml's name (CUDA0; the startup log lists them); default: every GPU", Destination: &cfg.Engine.Device},
			&cli.IntFlag{Name: "batch-tokens", Usage: "token budget of one encoder call (0: 512 on the CPU, 8192 on a GPU)", Destination: &cfg.Engine.BatchTokens},
			&cli.IntFlag{Name: "ctx", Value: engine.DefaultCtx, Usage: "longest query+document pair in tokens (capped at the model's context)", Destination: &cfg.Engine.Ctx},
			&cli.BoolFlag{Name: "flash-attn", Value: true, Usage: "flash attention (faster on CPU; K and V in F16)", Destination: &cfg.Engine.FlashAttn},
			&cli.StringFlag{Name: "f16-as-bf16", Value: "auto", Usage: "compute F16 files as BF16 where the CPU has AVX512-BF16: auto (with flash attention), on, off; the copy goes to <data-dir>/derived", Destination: &cfg.Engine.F16AsBF16},
			&cli.StringFlag{Name: "q8-as-bf16", Value: "auto", Usage: "compute Q8_0 files as BF16 where the CPU has AVX512-BF16 and no AMX (faster there, twice the weights' memory): auto (with flash attention, when the memory is free), on, off", Destination: &cfg.Engine.Q8AsBF16},
			&cli.StringFlag{Name: "amx-kernels", Value: "auto", Usage: "matrix kernels of Q8_0 files on CPUs with AMX: auto or bf16 (aimind's AMX-BF16 GEMM), int8 (aimind's int8 GEMM, less exact), off (ggml's)", Destination: &cfg.Engine.AMXKernels},
			&cli.StringFlag{Name: "vnni-kernels", Value: "auto", Usage: "matrix kernels of Q8_0 files on CPUs with AVX512-VNNI and no AMX, when not computed as BF16: auto or on (aimind's VNNI GEMM on the file's blocks), off (ggml's)", Destination: &cfg.Engine.VNNIKernels},
			&cli.StringFlag{Name: "self-check", Value: "on", Usage: "score known answers when a model loads and flag it suspect when they look wrong (a warning, it is served all the same): on or off", Destination: &cfg.SelfCheck},
			&cli.Int64Flag{Name: "cache-bytes", Value: engine.DefaultCacheBytes, Usage: "bytes of remembered pair scores shared by all models (0: no cache)", Destination: &cfg.CacheBytes},
			&cli.IntFlag{Name: "max-queue-tokens", Value: engine.DefaultMaxQueueTokens, Usage: "tokens that may wait per model; past it requests get 429 at once", Destination: &cfg.Engine.MaxQueueTokens},
			&cli.IntFlag{Name: "max-conns-per-ip", Value: server.DefaultMaxConnsPerIP, Usage: "concurrent connections from one client address", Destination: &cfg.Server.MaxConnsPerIP},
			&cli.DurationFlag{Name: "read-timeout", Value: server.DefaultReadTimeout, Usage: "time to receive a whole request", Destination: &cfg.Server.ReadTimeout},
			&cli.DurationFlag{Name: "drain-delay", Usage: "on SIGTERM, answer /ready with 503 but keep serving this long before closing the listener (for balancers that poll /ready)", Destination: &cfg.DrainDelay, EnvVars: []string{"AIMIND_DRAIN_DELAY"}},
			&cli.StringFlag{Name: "keys-file", Usage: "also accept the hashed API keys in this file (shared by replicas; reread when it changes; written by 'aimind keys create --to-file')", Destination: &cfg.KeysFile, EnvVars: []string{"AIMIND_KEYS_FILE"}},
			&cli.BoolFlag{Name: "offline", Usage: "never use the network: hub models come from the local cache only (fill it with 'aimind pull')", Destination: &cfg.Offline, EnvVars: []string{"AIMIND_OFFLINE", "HF_HUB_OFFLINE"}},
			&cli.DurationFlag{Name: "shutdown-timeout", Value: 30 * time.Second, Usage: "how long SIGTERM waits for requests in flight", Destination: &cfg.ShutdownTimeout},
			&cli.IntFlag{Name: "max-documents", Value: server.DefaultMaxDocuments, Usage: "documents per request", Destination: &cfg.Server.MaxDocuments},
			&cli.IntFlag{Name: "max-body-bytes", Value: server.DefaultMaxBodyBytes, Usage: "request body limit", Destination: &cfg.Server.MaxBodyBytes},
			&cli.DurationFlag{Name: "request-timeout", Value: server.DefaultRequestTimeout, Usage: "how long a request may wait for its scores", Destination: &cfg.Server.RequestTimeout},
			&cli.DurationFlag{Name: "tokenize-wait", Value: server.DefaultTokenizeWait, Usage: "how long a request may wait to be tokenized (2 at a time per CPU) before a 503", Destination: &cfg.Server.TokenizeWait},
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error", Destination: &cfg.LogLevel},
			&cli.StringFlag{Name: "log-format", Value: "text", Usage: "text or json", Destination: &cfg.LogFormat},
		},
		Action: func(c *cli.Context) error {
			cfg.Models = c.StringSlice("model")
			cfg.Aliases = c.StringSlice("alias")
			cfg.APIKeys = c.StringSlice("api-key")
			cfg.TrustedProxies = c.StringSlice("trusted-proxy")
			cfg.MemoryBudget = c.Int64("memory-budget")
			if err := cfg.validate(); err != nil {
				return err
			}
			return serve(cfg)
		},
	}
}

// serveDescription is the head of "aimind serve --help".
const serveDescription = `Serves the --model files and hub repos, and every model deployed before (kept in --data-dir),
over HTTP: POST /v1/rerank (and the other dialects' routes), GET /v1/models, the web UI at /,
GET /health (alive) and GET /ready (a model runs).

A --model file that is missing or no usable reranker stops serve before anything is written.
A hub that cannot be reached does not: the model is listed as failed, with the fix and a Retry
on the Models page, and serve keeps running even when every --model fails (/ready answers 503
until a model runs). Give a local .gguf path, or 'aimind pull' a repo where the hub is reachable
and serve it here with --offline.

Environment:
  HF_ENDPOINT            Hugging Face hub or mirror to download from (default https://huggingface.co)
  HF_TOKEN               token for gated or private repos, sent to HF_ENDPOINT's host only
                         (also HUGGING_FACE_HUB_TOKEN)
  HF_HUB_CACHE, HF_HOME  where downloads go (default ~/.cache/huggingface/hub)
  MODELSCOPE_DOMAIN, MODELSCOPE_API_TOKEN, MODELSCOPE_CACHE
                         the same for modelscope:owner/name repos
  AIMIND_*               as named beside the flags below`

func (c *serveConfig) validate() error {
	if len(c.Aliases) > len(c.Models) {
		return fmt.Errorf("%d --alias flags for %d --model flags", len(c.Aliases), len(c.Models))
	}
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("--port %d is out of range", c.Port)
	}
	if c.Engine.BatchTokens < 0 || c.Engine.Ctx < 8 || c.Engine.Threads < 0 {
		return errors.New("--batch-tokens must not be negative, --ctx at least 8 and --threads not negative")
	}
	for flag, v := range map[string]string{"f16-as-bf16": c.Engine.F16AsBF16, "q8-as-bf16": c.Engine.Q8AsBF16, "vnni-kernels": c.Engine.VNNIKernels} {
		switch v {
		case "auto", "on", "off":
		default:
			return fmt.Errorf("--%s %q: want auto, on or off", flag, v)
		}
	}
	switch c.Engine.AMXKernels {
	case "auto", "bf16", "int8", "off":
	default:
		return fmt.Errorf("--amx-kernels %q: want auto, bf16, int8 or off", c.Engine.AMXKernels)
	}
	switch c.SelfCheck {
	case "on", "off":
	default:
		return fmt.Errorf("--self-check %q: want on or off", c.SelfCheck)
	}
	if c.CacheBytes < 0 {
		return errors.New("--cache-bytes must not be negative")
	}
	if c.DrainDelay < 0 {
		return errors.New("--drain-delay must not be negative")
	}
	c.Engine.Cache = engine.NewScoreCache(c.CacheBytes)
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("--tls-cert-file and --tls-key-file go together")
	}
	for _, p := range c.TrustedProxies {
		_, n, err := net.ParseCIDR(p)
		if err != nil {
			return fmt.Errorf("--trusted-proxy %q: %w", p, err)
		}
		c.Server.TrustedProxies = append(c.Server.TrustedProxies, n)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("--log-format %q: use text or json", c.LogFormat)
	}
	return nil
}

func newLogger(level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: l}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
}

func serve(cfg serveConfig) error {
	log, err := newLogger(cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	if err := cputarget.Check(cpuTarget); err != nil {
		return err
	}
	// Everything the command line alone decides is checked before the data
	// directory, the admin password or the port are touched.
	requests, err := modelRequests(cfg.Models, cfg.Aliases)
	if err != nil {
		return err
	}
	hubs, err := newHubs(cfg.Offline)
	if err != nil {
		return err
	}
	if err := checkModels(requests, hubs, cfg.Offline); err != nil {
		return err
	}
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w (choose another --port or --host)", addr, err)
	}
	defer ln.Close()

	llama.Init(log)
	log.Info("aimind starting", "version", version, "cpu_target", cpuTarget, "system", llama.SystemInfo())

	cfg.Engine.DerivedDir = filepath.Join(cfg.DataDir, "derived")
	st, err := store.Open(cfg.DataDir, log)
	if err != nil {
		return err
	}
	defer st.Close()
	cfg.Server.Keys = auth.NewKeys(st, cfg.APIKeys)
	watchCtx, stopWatching := context.WithCancel(context.Background())
	defer stopWatching()
	if cfg.KeysFile != "" {
		kf, err := auth.OpenKeysFile(cfg.KeysFile, log)
		if err != nil {
			return err
		}
		cfg.Server.Keys.UseFile(kf)
		go kf.Watch(watchCtx, auth.KeysFileInterval)
		log.Info("keys file", "path", cfg.KeysFile, "keys", kf.Len())
	}
	cfg.Server.NoAuth = cfg.NoAuth
	cfg.Server.Admin = auth.NewAdmin(st, cfg.DataDir)
	cfg.Server.TLS = cfg.TLSCert != ""
	if path, err := cfg.Server.Admin.Bootstrap(cfg.BootstrapPassword); err != nil {
		return err
	} else if path != "" {
		log.Warn("admin account created with a random password; log in with it and change it", "password_file", path)
	}
	if cfg.NoAuth {
		log.Warn("API-KEY CHECKING IS OFF (--no-auth): anyone who reaches this port can use the rerank API")
	} else if !cfg.Server.Keys.Any() {
		log.Warn("no API key exists yet: create one with `aimind keys create --name NAME` (or --api-key, or --no-auth)")
	}

	cfg.Server.Hubs = hubs
	mgr := models.New(models.Options{Engine: cfg.Engine, Store: st, Hubs: withHints(hubs, cfg.Offline), Logger: log,
		MemoryBudget: cfg.MemoryBudget, Observe: server.ObserveBatch})
	if cfg.SelfCheck == "off" {
		mgr.SelfCheck = nil
	}
	defer mgr.Close()
	// Stored models first, so that a --model naming one of them reuses its
	// files (no network) instead of deploying it anew.
	if err := mgr.Restore(); err != nil {
		return err
	}
	var names []string
	for _, r := range requests {
		rec, err := mgr.Deploy(r, true)
		if err != nil {
			return err
		}
		names = append(names, rec.Name)
	}
	if len(mgr.List()) == 0 {
		log.Warn("no models yet: give --model, or deploy one on the web UI or with POST /api/models")
	}

	cfg.Server.Logger = log
	cfg.Server.Cache = cfg.Engine.Cache
	srv := server.New(mgr, cfg.Server)
	served := make(chan error, 1)
	scheme := "http"
	if cfg.TLSCert != "" {
		scheme = "https"
		go func() { served <- srv.ServeTLS(ln, cfg.TLSCert, cfg.TLSKey) }()
	} else {
		go func() { served <- srv.Serve(ln) }()
	}
	sock := filepath.Join(cfg.DataDir, localSocket)
	os.Remove(sock) // a stale socket of a stopped server; the store lock proves none runs
	if lln, err := listenLocal(sock); err != nil {
		log.Warn("cannot open the local admin socket; `aimind keys` will not work while this server runs", "err", err)
	} else {
		defer os.Remove(sock)
		go srv.ServeLocal(lln)
	}
	log.Info("listening", "addr", scheme+"://"+ln.Addr().String(), "models", strings.Join(cfg.Models, ","), "data_dir", cfg.DataDir)

	waitCtx, stopWaiting := context.WithCancel(context.Background())
	defer stopWaiting()
	go showProgress(waitCtx, mgr, names)
	go reportStartup(waitCtx, log, mgr, names)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)

	select {
	case err := <-served:
		return fmt.Errorf("cannot serve: %w", err)
	case s := <-sig:
		log.Info("shutting down", "signal", s.String())
		if s == syscall.SIGTERM && cfg.DrainDelay > 0 {
			drain(log, srv, sig, cfg.DrainDelay)
		}
	}
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown() }()
	select {
	case <-shut:
	case <-time.After(cfg.ShutdownTimeout):
		log.Warn("shutdown timed out; closing with requests open")
	}
	return nil
}

// reportStartup waits for each --model to run or fail. A failure does not
// stop aimind, not even when every --model fails: the web UI and the API
// stay up, the model shows its error (which says how to fix it) with a
// Retry, and /ready answers 503 while no model runs, so that a balancer
// sends nothing here.
func reportStartup(ctx context.Context, log *slog.Logger, mgr *models.Manager, names []string) {
	failed := 0
	for _, n := range names {
		if err := mgr.WaitFor(ctx, n); err != nil {
			if ctx.Err() != nil {
				return
			}
			failed++
			log.Warn("a --model did not start; aimind keeps serving: fix the cause (the error above says how), then press Retry on the Models page or POST /api/models/"+n+"/start", "model", n)
		}
	}
	if failed > 0 && failed == len(names) {
		log.Warn("no --model runs; the web UI and the API stay up, and /ready answers 503 until a model runs", "failed", failed)
	}
}

// drain fails /ready and keeps serving for delay (or until a second
// signal), so that a balancer polling /ready stops sending before the
// listener closes.
func drain(log *slog.Logger, srv *server.Server, sig <-chan os.Signal, delay time.Duration) {
	srv.Drain()
	log.Info("draining: /ready answers 503, requests are still served", "drain_delay", delay.String())
	select {
	case <-time.After(delay):
	case s := <-sig:
		log.Info("drain cut short", "signal", s.String())
	}
}

// newHubs configures the hub clients from the environment: HF_ENDPOINT,
// HF_TOKEN, HF_HUB_CACHE/HF_HOME; MODELSCOPE_DOMAIN, MODELSCOPE_API_TOKEN,
// MODELSCOPE_CACHE. Offline, they answer from the cache only.
func newHubs(offline bool) (map[hub.Source]hub.Hub, error) {
	hf, err := hub.NewHuggingFace(hfEndpoint(), hub.HFToken(), hub.HFCacheDir(), nil)
	if err != nil {
		return nil, fmt.Errorf("HF_ENDPOINT: %w", err)
	}
	ms, err := hub.NewModelScope(hub.ModelScopeEndpoint(), os.Getenv("MODELSCOPE_API_TOKEN"), modelScopeCache(), nil)
	if err != nil {
		return nil, fmt.Errorf("MODELSCOPE_DOMAIN: %w", err)
	}
	if offline {
		return map[hub.Source]hub.Hub{hub.HuggingFace: hub.Offline(hf), hub.ModelScope: hub.Offline(ms)}, nil
	}
	return map[hub.Source]hub.Hub{hub.HuggingFace: hf, hub.ModelScope: ms}, nil
}

func hfEndpoint() string {
	if e := os.Getenv("HF_ENDPOINT"); e != "" {
		return e
	}
	return hub.DefaultHFEndpoint
}

func modelScopeCache() string {
	if d := os.Getenv("MODELSCOPE_CACHE"); d != "" {
		return d
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "modelscope", "hub")
}

// modelRequests reads the --model values: an existing file (or a name ending
// in .gguf) is local, anything else a hub repo. The n-th --alias names the
// n-th model; two models with one name are refused.
func modelRequests(specs, aliases []string) ([]models.Request, error) {
	seen := map[string]string{}
	var out []models.Request
	for i, x := range specs {
		var r models.Request
		if hub.IsLocalSpec(x) {
			r = models.Request{Source: hub.Local, Path: x, Name: models.NameFromFile(x)}
		} else {
			sp, err := hub.ParseSpec(x)
			if err != nil {
				return nil, fmt.Errorf("--model %q: %w", x, err)
			}
			r = models.Request{Source: sp.Source, Repo: sp.Repo, File: sp.File, Quant: sp.Quant, Revision: sp.Revision, Name: sp.ServedName()}
		}
		if i < len(aliases) {
			r.Name = aliases[i]
		}
		if err := models.ValidName(r.Name); err != nil {
			return nil, err
		}
		if prev, ok := seen[r.Name]; ok {
			return nil, fmt.Errorf("--model %q and --model %q are both served as %q: give each its own --alias", prev, x, r.Name)
		}
		seen[r.Name] = x
		out = append(out, r)
	}
	return out, nil
}

// checkModels refuses, before anything is written, the --model values that
// cannot work whatever the network does: a local file that is missing or
// no usable reranker GGUF, and with --offline a hub model the local cache
// lacks. What depends on the network (the hub down, a download cut) is
// left to the model's start, which aimind survives.
func checkModels(requests []models.Request, hubs map[hub.Source]hub.Hub, offline bool) error {
	for _, r := range requests {
		if r.Source == hub.Local {
			if _, err := modelfile.Check(r.Path); err != nil {
				return err
			}
			continue
		}
		if !offline {
			continue
		}
		l, err := hubs[r.Source].List(context.Background(), r.Repo, r.Revision)
		if err != nil {
			return fmt.Errorf("cannot serve --model %s: %w", r.Repo, err)
		}
		if _, err := hub.Pick(l.Files, r.File, r.Quant); err != nil {
			return fmt.Errorf("cannot serve --model %s from the local cache: %w (run `aimind pull` for it where the hub is reachable)", r.Repo, err)
		}
	}
	return nil
}

// showProgress draws download progress of the named models on stderr: a bar
// on a terminal, a line every few seconds otherwise.
func showProgress(ctx context.Context, mgr *models.Manager, names []string) {
	st, _ := os.Stderr.Stat()
	tty := st != nil && st.Mode()&os.ModeCharDevice != 0
	every := 5 * time.Second
	if tty {
		every = 200 * time.Millisecond
	}
	last := map[string]time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
		for _, n := range names {
			rec, err := mgr.Get(n)
			if err != nil || rec.Status != models.StateDownloading || rec.Progress == nil || rec.Progress.Total == 0 {
				continue
			}
			if time.Since(last[n]) < every {
				continue
			}
			last[n] = time.Now()
			p := rec.Progress
			pct := percent(p.Done, p.Total)
			if tty {
				bar := progressBar(pct)
				fmt.Fprintf(os.Stderr, "\r%s [%s] %5.1f%% %d/%d MiB %.1f MiB/s ", rec.File, bar, pct, p.Done>>20, p.Total>>20, p.Rate/(1<<20))
				if p.Done >= p.Total {
					fmt.Fprintln(os.Stderr)
				}
			} else {
				fmt.Fprintf(os.Stderr, "downloading %s: %.1f%% (%d of %d MiB, %.1f MiB/s)\n", rec.File, pct, p.Done>>20, p.Total>>20, p.Rate/(1<<20))
			}
		}
	}
}

// percent is done over total in [0, 100]: a hub that sends more bytes than
// it listed (the download then fails its size and hash checks) must not
// break the progress line.
func percent(done, total int64) float64 {
	if total <= 0 {
		return 0
	}
	return min(max(float64(done)*100/float64(total), 0), 100)
}

// progressBar draws pct (0-100) in 25 cells.
func progressBar(pct float64) string {
	n := min(max(int(pct/4), 0), 25)
	return strings.Repeat("=", n) + strings.Repeat(" ", 25-n)
}
