package main

import (
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// TestFlagUsages: every flag of every command says what it does, and no
// usage holds a backquote, which urfave/cli takes as the value's
// placeholder name (and then drops from the text).
func TestFlagUsages(t *testing.T) {
	var walk func(path string, cs []*cli.Command)
	walk = func(path string, cs []*cli.Command) {
		for _, c := range cs {
			p := path + " " + c.Name
			if strings.Contains(c.Usage, "`") || strings.Contains(c.Description, "`") {
				t.Errorf("%s: a backquote in the command's usage or description", p)
			}
			for _, f := range c.Flags {
				u := f.(cli.DocGenerationFlag).GetUsage()
				if strings.TrimSpace(u) == "" {
					t.Errorf("%s --%s: no usage", p, f.Names()[0])
				}
				if strings.Contains(u, "`") {
					t.Errorf("%s --%s: a backquote in %q", p, f.Names()[0], u)
				}
			}
			walk(p, c.Subcommands)
		}
	}
	walk("aimind", newApp().Commands)
}

func TestSuggest(t *testing.T) {
	names := []string{"serve", "bench", "keys", "admin", "check", "pull", "health", "version", "port", "host"}
	for typed, want := range map[string]string{
		"serv": "serve", "srve": "serve", "sevre": "serve", "prot": "port", "hots": "host", "ver": "version",
		"xyz": "", "s": "", "deploy": "", "chekc": "check",
	} {
		if got := suggest(typed, names); got != want {
			t.Errorf("suggest(%q) = %q, want %q", typed, got, want)
		}
	}
}
