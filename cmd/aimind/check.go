package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/aimind/aimind/engine"
	"github.com/aimind/aimind/llama"
	"github.com/aimind/aimind/models"
	"github.com/aimind/aimind/selfcheck"
)

type checkConfig struct {
	DataDir   string
	Golden    string
	Scores    string  // what the golden file's scores are: logit or sigmoid
	MaxDiff   float64 // fail when the worst difference is above it (0: report only)
	MaxRel    float64 // fail when a difference is above MaxRel*|expected| + MaxRel
	Write     string  // write each golden line with this model's raw score
	SelfCheck string
	Offline   bool // hub models from the local cache only
	Engine    engine.Options
}

func checkCommand() *cli.Command {
	cfg := checkConfig{Engine: engine.Options{F16AsBF16: "auto", Q8AsBF16: "auto"}}
	return &cli.Command{
		Name:      "check",
		Usage:     "load a model, run the self-check, and compare its scores with a golden file",
		ArgsUsage: "MODEL (a GGUF file or a hub repo, as serve's --model)",
		Description: `Loads MODEL as serve would (downloading it if needed), scores the built-in
known-answer requests and prints the outcome. With --golden FILE.jsonl, also
scores each line {"query": ..., "document": ..., "score": ...} and reports the
worst difference from the expected score (raw logits; --scores sigmoid when
the file holds sigmoid scores). Exits non-zero when the self-check finds the
model suspect or the worst difference is above --max-diff.`,
		Flags: []cli.Flag{
			dataDirFlag(&cfg.DataDir),
			&cli.StringFlag{Name: "golden", Usage: "JSON-lines file of query, document and expected score", Destination: &cfg.Golden},
			&cli.StringFlag{Name: "scores", Value: "logit", Usage: "what the golden scores are: logit (raw) or sigmoid", Destination: &cfg.Scores},
			&cli.Float64Flag{Name: "max-diff", Usage: "fail when a golden score is further off than this (0: report only)", Destination: &cfg.MaxDiff},
			&cli.Float64Flag{Name: "max-rel-diff", Usage: "fail when a golden score is off by more than this times |expected| plus this (0: report only)", Destination: &cfg.MaxRel},
			&cli.StringFlag{Name: "write-scores", Usage: "write the golden lines again with this model's raw scores to this file (lines may then lack a score), e.g. to compare a GPU with the CPU", Destination: &cfg.Write},
			&cli.BoolFlag{Name: "offline", Usage: "never use the network: hub models come from the local cache only", Destination: &cfg.Offline, EnvVars: []string{"AIMIND_OFFLINE", "HF_HUB_OFFLINE"}},
			&cli.StringFlag{Name: "self-check", Value: "on", Usage: "run the built-in known-answer checks: on or off", Destination: &cfg.SelfCheck},
			&cli.IntFlag{Name: "threads", Usage: "CPU threads (0: all CPUs)", Destination: &cfg.Engine.Threads},
			&cli.IntFlag{Name: "gpu-layers", Value: -1, Usage: "layers a GPU build offloads (-1: all, 0: none)", Destination: &cfg.Engine.GPULayers},
			&cli.StringFlag{Name: "device", Usage: "the GPU offloaded layers go to, by ggml's name (CUDA0; the startup log lists them); default: every GPU", Destination: &cfg.Engine.Device},
			&cli.IntFlag{Name: "ctx", Value: engine.DefaultCtx, Usage: "longest query+document pair in tokens", Destination: &cfg.Engine.Ctx},
			&cli.BoolFlag{Name: "flash-attn", Value: true, Usage: "flash attention, as serve", Destination: &cfg.Engine.FlashAttn},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return errors.New("check takes one MODEL: a GGUF file or a hub repo")
			}
			if cfg.Scores != "logit" && cfg.Scores != "sigmoid" {
				return fmt.Errorf("--scores %q: want logit or sigmoid", cfg.Scores)
			}
			if cfg.SelfCheck != "on" && cfg.SelfCheck != "off" {
				return fmt.Errorf("--self-check %q: want on or off", cfg.SelfCheck)
			}
			cfg.DataDir = dataDirOf(c)
			return check(c.Context, c.Args().First(), cfg, os.Stdout)
		},
	}
}

func check(ctx context.Context, spec string, cfg checkConfig, out io.Writer) error {
	var golden []selfcheck.GoldenLine
	if cfg.Golden != "" {
		var err error
		if golden, err = selfcheck.ReadGolden(cfg.Golden, cfg.Write != ""); err != nil {
			return err
		}
	}
	log, err := newLogger("warn", "text")
	if err != nil {
		return err
	}
	llama.Init(log)
	cfg.Engine.DerivedDir = filepath.Join(cfg.DataDir, "derived")
	cfg.Engine.MaxQueueTokens = engine.DefaultMaxQueueTokens
	hubs, err := newHubs(cfg.Offline)
	if err != nil {
		return err
	}
	reqs, err := modelRequests([]string{spec}, nil)
	if err != nil {
		return err
	}
	mgr := models.NewManager(cfg.Engine, nil, hubs, log)
	defer mgr.Close()
	if cfg.SelfCheck == "off" {
		mgr.SelfCheck = nil
	}
	rec, err := mgr.Deploy(reqs[0], false)
	if err != nil {
		return err
	}
	if err := mgr.WaitFor(ctx, rec.Name); err != nil {
		return err
	}
	if rec, err = mgr.Get(rec.Name); err != nil {
		return err
	}
	m := mgr.Engine(rec.Name)
	if m == nil {
		return fmt.Errorf("cannot check %s: it stopped after loading", rec.Name)
	}
	fmt.Fprintf(out, "model %s: %s", rec.Name, rec.Path)
	if f := rec.Facts; f != nil {
		fmt.Fprintf(out, " (%s, %s, kernel %s)", f.Architecture, f.FileType, m.Kernel())
	}
	fmt.Fprintln(out)
	var failures []string
	if sc := rec.SelfCheck; sc != nil {
		fmt.Fprintf(out, "self-check: %s\n", sc.Status)
		for _, c := range sc.Checks {
			mark := "ok  "
			if !c.Passed {
				mark = "FAIL"
			}
			fmt.Fprintf(out, "  %s %s: %s\n", mark, c.Name, c.Detail)
		}
		if sc.Status == selfcheck.Suspect {
			failures = append(failures, "the self-check finds the model suspect")
		}
	}
	if golden != nil {
		rep, err := selfcheck.CompareGolden(ctx, m, golden, cfg.Scores == "sigmoid", cfg.MaxRel)
		if err != nil {
			return err
		}
		if rep.N > 0 {
			rep.Print(out, cfg.Golden, cfg.Scores)
		}
		if cfg.MaxDiff > 0 && rep.Worst > cfg.MaxDiff {
			failures = append(failures, fmt.Sprintf("the worst golden difference %.4g is above --max-diff %g", rep.Worst, cfg.MaxDiff))
		}
		if rep.RelOver > 0 {
			failures = append(failures, fmt.Sprintf("%d golden scores differ by more than --max-rel-diff %g (relative, with the same absolute floor)", rep.RelOver, cfg.MaxRel))
		}
		if cfg.Write != "" {
			if err := selfcheck.WriteScores(cfg.Write, golden, rep.Got); err != nil {
				return err
			}
			fmt.Fprintf(out, "wrote %d raw scores to %s\n", len(golden), cfg.Write)
		}
	}
	if len(failures) > 0 {
		return errors.New(strings.Join(failures, "; "))
	}
	return nil
}
