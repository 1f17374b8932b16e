package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/aimind/aimind/bench"
)

func benchCommand() *cli.Command {
	var cfg bench.Config
	return &cli.Command{
		Name:  "bench",
		Usage: "drive a running server with concurrent rerank requests; print pairs/s, tokens/s, p50/p95",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "url", Value: "http://127.0.0.1:8080", Usage: "the server to load", Destination: &cfg.URL},
			&cli.StringFlag{Name: "path", Value: "/v1/rerank", Usage: "the rerank route to post to", Destination: &cfg.Path},
			&cli.StringFlag{Name: "model", Usage: "served model name to ask for (default: the server's only model)", Destination: &cfg.Model},
			&cli.StringFlag{Name: "api-key", EnvVars: []string{"AIMIND_API_KEY"}, Usage: "API key sent as a Bearer token", Destination: &cfg.APIKey},
			&cli.IntFlag{Name: "clients", Value: 8, Usage: "concurrent clients, each sending its requests one after another", Destination: &cfg.Clients},
			&cli.IntFlag{Name: "requests", Value: 4, Usage: "requests per client", Destination: &cfg.Requests},
			&cli.IntFlag{Name: "documents", Value: 20, Usage: "documents per request", Destination: &cfg.Documents},
			&cli.IntFlag{Name: "doc-words", Value: 120, Usage: "words per document", Destination: &cfg.DocWords},
			&cli.IntFlag{Name: "warmup", Value: 1, Usage: "requests sent one by one before measuring", Destination: &cfg.Warmup},
			&cli.Float64Flag{Name: "gflop-per-token", Usage: "model cost per token, to report GFLOP/s and the share of the measured FP32 peak"},
		},
		Action: func(c *cli.Context) error {
			rep, err := bench.Run(c.Context, cfg)
			if err != nil {
				return err
			}
			fmt.Println(rep)
			if g := c.Float64("gflop-per-token"); g > 0 {
				peak := bench.PeakGFLOPS()
				achieved := rep.TokensPerSec * g
				fmt.Printf("gflops=%.1f fp32_peak_gflops=%.1f share_of_peak=%.1f%%\n", achieved, peak, 100*achieved/peak)
			}
			return nil
		},
	}
}
