package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"

	"github.com/aimind/aimind/hub"
)

// failingHub fails List and Download with err.
type failingHub struct {
	hub.Hub
	err error
}

func (f failingHub) List(context.Context, string, string) (hub.Listing, error) {
	return hub.Listing{}, f.err
}

func (f failingHub) Download(context.Context, hub.Listing, hub.File, string, func(hub.Progress)) (string, error) {
	return "", f.err
}

// TestHubHints: a hub that cannot be reached gets the ways out named for
// its own source; other failures and cancellations stay as they are.
func TestHubHints(t *testing.T) {
	t.Setenv("HF_ENDPOINT", "http://mirror.example:9")
	t.Setenv("MODELSCOPE_DOMAIN", "ms.example")
	refused := fmt.Errorf("cannot reach Hugging Face: %w", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")})
	f := func(name string, src hub.Source, err error, want, wantNot []string) {
		t.Run(name, func(t *testing.T) {
			h := withHints(map[hub.Source]hub.Hub{src: failingHub{err: err}}, false)[src]
			_, lerr := h.List(context.Background(), "acme/tiny-GGUF", "main")
			_, derr := h.Download(context.Background(), hub.Listing{Repo: "acme/tiny-GGUF"}, hub.File{}, "main", nil)
			for _, got := range []error{lerr, derr} {
				if !errors.Is(got, err) {
					t.Fatalf("%v does not wrap %v", got, err)
				}
				for _, w := range want {
					if !strings.Contains(got.Error(), w) {
						t.Errorf("%q lacks %q", got, w)
					}
				}
				for _, w := range wantNot {
					if strings.Contains(got.Error(), w) {
						t.Errorf("%q has %q", got, w)
					}
				}
			}
		})
	}
	f("hugging face unreachable", hub.HuggingFace, refused,
		[]string{"http://mirror.example:9", "set HF_ENDPOINT", "aimind pull acme/tiny-GGUF", "--offline", "local .gguf", "Retry"}, []string{"MODELSCOPE"})
	f("modelscope unreachable", hub.ModelScope, refused,
		[]string{"https://ms.example", "set MODELSCOPE_DOMAIN", "aimind pull modelscope:acme/tiny-GGUF"}, []string{"HF_ENDPOINT"})
	f("not found", hub.HuggingFace, errors.New("Hugging Face answered 404 Not Found"), nil, []string{"HF_ENDPOINT", "Retry"})
	// A cancelled request is a *url.Error, a net.Error, too: still no hint.
	f("cancelled", hub.HuggingFace, fmt.Errorf("cannot reach Hugging Face: %w", &url.Error{Op: "Get", URL: "http://x", Err: context.Canceled}), nil, []string{"HF_ENDPOINT"})
	if h := withHints(map[hub.Source]hub.Hub{hub.HuggingFace: failingHub{err: refused}}, true)[hub.HuggingFace]; h.(failingHub).err != refused {
		t.Fatal("--offline hubs were wrapped")
	}
}
