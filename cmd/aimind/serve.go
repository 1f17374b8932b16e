package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/aimind/aimind/engine"
	"github.com/aimind/aimind/llama"
	"github.com/aimind/aimind/models"
	"github.com/aimind/aimind/server"
)

// serveConfig is every serve flag, validated once.
type serveConfig struct {
	Models    []string
	Aliases   []string
	Host      string
	Port      int
	LogLevel  string
	LogFormat string
	Engine    engine.Options
	Server    server.Options
}

func serveCommand() *cli.Command {
	var cfg serveConfig
	return &cli.Command{
		Name:  "serve",
		Usage: "load reranker GGUFs and answer POST /v1/rerank",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "model", Aliases: []string{"m"}, Usage: "GGUF file to serve (repeatable)", Required: true},
			&cli.StringSliceFlag{Name: "alias", Usage: "served name of the n-th --model (repeatable)"},
			&cli.StringFlag{Name: "host", Value: "127.0.0.1", Destination: &cfg.Host, EnvVars: []string{"AIMIND_HOST"}},
			&cli.IntFlag{Name: "port", Value: 8080, Destination: &cfg.Port, EnvVars: []string{"AIMIND_PORT"}},
			&cli.IntFlag{Name: "threads", Usage: "CPU threads per model (0: all CPUs)", Destination: &cfg.Engine.Threads},
			&cli.IntFlag{Name: "batch-tokens", Value: engine.DefaultBatchTokens, Usage: "token budget of one encoder call", Destination: &cfg.Engine.BatchTokens},
			&cli.IntFlag{Name: "ctx", Value: engine.DefaultCtx, Usage: "longest query+document pair in tokens (capped at the model's context)", Destination: &cfg.Engine.Ctx},
			&cli.BoolFlag{Name: "flash-attn", Value: true, Usage: "flash attention (faster on CPU; K and V in F16)", Destination: &cfg.Engine.FlashAttn},
			&cli.IntFlag{Name: "max-documents", Value: server.DefaultMaxDocuments, Usage: "documents per request", Destination: &cfg.Server.MaxDocuments},
			&cli.IntFlag{Name: "max-body-bytes", Value: server.DefaultMaxBodyBytes, Usage: "request body limit", Destination: &cfg.Server.MaxBodyBytes},
			&cli.DurationFlag{Name: "request-timeout", Value: server.DefaultRequestTimeout, Usage: "how long a request may wait for its scores", Destination: &cfg.Server.RequestTimeout},
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error", Destination: &cfg.LogLevel},
			&cli.StringFlag{Name: "log-format", Value: "text", Usage: "text or json", Destination: &cfg.LogFormat},
		},
		Action: func(c *cli.Context) error {
			cfg.Models = c.StringSlice("model")
			cfg.Aliases = c.StringSlice("alias")
			if err := cfg.validate(); err != nil {
				return err
			}
			return serve(cfg)
		},
	}
}

func (c *serveConfig) validate() error {
	if len(c.Aliases) > len(c.Models) {
		return fmt.Errorf("%d --alias flags for %d --model flags", len(c.Aliases), len(c.Models))
	}
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("--port %d is out of range", c.Port)
	}
	if c.Engine.BatchTokens < 1 || c.Engine.Ctx < 8 || c.Engine.Threads < 0 {
		return errors.New("--batch-tokens must be positive, --ctx at least 8 and --threads not negative")
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
	llama.Init(log)
	log.Info("aimind starting", "version", version, "system", llama.SystemInfo())

	mgr := models.NewManager(cfg.Engine, log)
	defer mgr.Close()
	for i, path := range cfg.Models {
		name := models.NameFromFile(path)
		if i < len(cfg.Aliases) {
			name = cfg.Aliases[i]
		}
		if err := mgr.Add(name, path); err != nil {
			return err
		}
	}

	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", addr, err)
	}
	cfg.Server.Logger = log
	srv := server.New(mgr, cfg.Server)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("listening", "addr", "http://"+ln.Addr().String(), "models", strings.Join(cfg.Models, ","))

	loaded := make(chan error, 1)
	go func() { loaded <- mgr.Wait() }()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)

	var runErr error
	for done := false; !done; {
		select {
		case err := <-loaded:
			if err != nil {
				runErr, done = err, true
			}
			loaded = nil
		case err := <-served:
			return fmt.Errorf("cannot serve: %w", err)
		case s := <-sig:
			log.Info("shutting down", "signal", s.String())
			done = true
		}
	}
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown() }()
	select {
	case <-shut:
	case <-time.After(30 * time.Second):
		log.Warn("shutdown timed out; closing with requests open")
	}
	return runErr
}
