// Command aimind serves cross-encoder reranker GGUFs over HTTP. main only
// parses flags into one config and wires store, models, engine and server.
package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// cpuTarget is the instruction set llama.cpp was compiled for: "native" (the
// build machine's) or a portable target (`build.sh portable TARGET` sets it).
var cpuTarget = "native"

func main() {
	os.Exit(run(os.Args))
}

// run is the whole command line; main and the C entry point of the GPU
// build (carchive.go) call it.
func run(args []string) int {
	app := &cli.App{
		Name:  "aimind",
		Usage: "serve cross-encoder reranker models (GGUF, llama.cpp in-process)",
		Commands: []*cli.Command{
			serveCommand(),
			benchCommand(),
			keysCommand(),
			adminCommand(),
			checkCommand(),
			pullCommand(),
			healthCommand(),
			{
				Name:  "version",
				Usage: "print the version",
				Action: func(c *cli.Context) error {
					fmt.Printf("aimind %s (llama.cpp ec98e2002 via github.com/ollama/ollama v0.17.4, CPU target %s)\n", version, cpuTarget)
					return nil
				},
			},
		},
	}
	if err := app.Run(args); err != nil {
		fmt.Fprintln(os.Stderr, "aimind:", err)
		return 1
	}
	return 0
}
