package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/aimind/aimind/hub"
	"github.com/aimind/aimind/modelfile"
)

// pullCommand downloads a model into the hub cache without serving it: for
// an init container, an image build, or a machine about to go offline.
func pullCommand() *cli.Command {
	return &cli.Command{
		Name:      "pull",
		Usage:     "download a model into the local cache (then 'serve --offline' needs no network)",
		ArgsUsage: "REPO|FILE  ([hf:|modelscope:]owner/name[:QUANT], owner/name/file.gguf, or a local GGUF to check)",
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return errors.New("give one model: owner/name[:QUANT], owner/name/file.gguf or a GGUF file")
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			path, err := pull(ctx, c.Args().First())
			if err != nil {
				return err
			}
			fmt.Println(path)
			return nil
		},
	}
}

func pull(ctx context.Context, spec string) (string, error) {
	reqs, err := modelRequests([]string{spec}, nil)
	if err != nil {
		return "", err
	}
	r := reqs[0]
	path := r.Path
	if r.Source != hub.Local {
		hubs, err := newHubs(false)
		if err != nil {
			return "", err
		}
		h := hubs[r.Source]
		l, err := h.List(ctx, r.Repo, r.Revision)
		if err != nil {
			return "", fmt.Errorf("cannot pull %s: %w", spec, err)
		}
		f, err := hub.Pick(l.Files, r.File, r.Quant)
		if err != nil {
			return "", fmt.Errorf("cannot pull %s: %w", spec, err)
		}
		fmt.Fprintf(os.Stderr, "pulling %s/%s (%s, %d MiB) at %s\n", r.Repo, f.Path, orDash(f.Quant), f.Size>>20, l.Commit)
		var last time.Time
		path, err = h.Download(ctx, l, f, r.Revision, func(p hub.Progress) {
			if time.Since(last) < 2*time.Second && p.Done < p.Total {
				return
			}
			last = time.Now()
			fmt.Fprintf(os.Stderr, "  %5.1f%% (%d of %d MiB, %.1f MiB/s)\n", percent(p.Done, p.Total), p.Done>>20, p.Total>>20, p.Rate/(1<<20))
		})
		if err != nil {
			return "", fmt.Errorf("cannot pull %s: %w", spec, err)
		}
	}
	// Check what llama.cpp would be given, so that a bad file fails the pull
	// (the image build, the init container) rather than the first start.
	facts, err := modelfile.Check(path)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(os.Stderr, "%s: %s %s, ready to serve\n", path, facts.Architecture, facts.FileType)
	return path, nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// healthCommand asks a server's /health: the container image's healthcheck
// (the image has no shell and no curl).
func healthCommand() *cli.Command {
	var url string
	var timeout time.Duration
	return &cli.Command{
		Name:  "health",
		Usage: "exit 0 when the server at --url answers /health (a container healthcheck)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "url", Value: "http://127.0.0.1:8080/health", Usage: "the /health URL to ask", Destination: &url, EnvVars: []string{"AIMIND_HEALTH_URL"}},
			&cli.DurationFlag{Name: "timeout", Value: 3 * time.Second, Usage: "how long to wait for the answer", Destination: &timeout},
		},
		Action: func(c *cli.Context) error {
			client := &http.Client{Timeout: timeout}
			resp, err := client.Get(url)
			if err != nil {
				return fmt.Errorf("unhealthy: %w", err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("unhealthy: %s answered %s", url, resp.Status)
			}
			return nil
		},
	}
}
