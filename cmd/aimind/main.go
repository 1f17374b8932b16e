// Command aimind serves cross-encoder reranker GGUFs over HTTP. main only
// parses flags into one config and wires store, models, engine and server.
package main

import (
	"fmt"
	"os"
	"strings"

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
	app := newApp()
	unknown := false
	app.CommandNotFound = func(c *cli.Context, name string) {
		unknown = true
		cmds, help := c.App.Commands, "aimind --help"
		if c.Command != nil && len(c.Command.Subcommands) > 0 && c.Command.HelpName != "" {
			cmds, help = c.Command.Subcommands, c.Command.HelpName+" --help"
		}
		msg := fmt.Sprintf("aimind: %q is no command", name)
		if s := suggest(name, commandNames(cmds)); s != "" {
			msg += fmt.Sprintf("; did you mean %q?", s)
		}
		fmt.Fprintf(os.Stderr, "%s (see %s)\n", msg, help)
	}
	if err := app.Run(args); err != nil {
		fmt.Fprintln(os.Stderr, "aimind:", err)
		return 1
	}
	if unknown {
		return 1
	}
	return 0
}

func newApp() *cli.App {
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
		OnUsageError: usageError,
	}
	var short func(cs []*cli.Command)
	short = func(cs []*cli.Command) {
		for _, c := range cs {
			c.OnUsageError = usageError
			short(c.Subcommands)
		}
	}
	short(app.Commands)
	return app
}

// usageError answers a bad flag with one line and where the help is,
// instead of the whole help.
func usageError(c *cli.Context, err error, _ bool) error {
	help := "aimind --help"
	if c.Command != nil && c.Command.Name != "" {
		help = c.Command.HelpName + " --help"
	}
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
		name = strings.TrimLeft(name, "-")
		msg = "unknown flag --" + name
		var flags []string
		if c.Command != nil {
			for _, f := range c.Command.Flags {
				flags = append(flags, f.Names()...)
			}
		}
		if s := suggest(name, flags); s != "" {
			msg += "; did you mean --" + s + "?"
		}
	}
	msg = strings.Replace(msg, " for flag -", " for flag --", 1)
	return fmt.Errorf("%s (see %s)", msg, help)
}

func commandNames(cs []*cli.Command) []string {
	var out []string
	for _, c := range cs {
		if !c.Hidden {
			out = append(out, c.Names()...)
		}
	}
	return out
}

// suggest returns the name closest to typed when it is close enough to be
// a slip: typed is its prefix, or it is at most a third of its letters
// (at least one) away.
func suggest(typed string, names []string) string {
	best, bestD := "", 0
	for _, n := range names {
		d := distance(typed, n)
		if strings.HasPrefix(n, typed) && len(typed) >= 3 {
			d = 0
		}
		if d <= max(1, len(n)/3) && (best == "" || d < bestD) {
			best, bestD = n, d
		}
	}
	return best
}

// distance is the edit distance of a and b, a swap of two neighbouring
// letters counting as one edit (optimal string alignment).
func distance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
