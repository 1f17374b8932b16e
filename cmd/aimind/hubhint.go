package main

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/aimind/aimind/hub"
)

// hintingHub adds to a hub's network failures what the operator can do
// about them. The models keep the text as their error, so the log, the
// Models page and /v1/models all say it.
type hintingHub struct {
	hub.Hub
	source   hub.Source
	endpoint string // the URL aimind tried
	envVar   string // the variable that sets it
	cache    string // where downloads go (and --offline reads)
}

// withHints wraps the hub clients of serve (not those of --offline, whose
// errors already say `aimind pull`).
func withHints(hubs map[hub.Source]hub.Hub, offline bool) map[hub.Source]hub.Hub {
	if offline {
		return hubs
	}
	out := map[hub.Source]hub.Hub{}
	for src, h := range hubs {
		hh := hintingHub{Hub: h, source: src}
		switch src {
		case hub.HuggingFace:
			hh.endpoint, hh.envVar, hh.cache = hfEndpoint(), "HF_ENDPOINT", hub.HFCacheDir()
		case hub.ModelScope:
			hh.endpoint, hh.envVar, hh.cache = hub.ModelScopeEndpoint(), "MODELSCOPE_DOMAIN", modelScopeCache()
		}
		out[src] = hh
	}
	return out
}

func (h hintingHub) List(ctx context.Context, repo, revision string) (hub.Listing, error) {
	l, err := h.Hub.List(ctx, repo, revision)
	return l, h.hint(err, repo)
}

func (h hintingHub) Download(ctx context.Context, l hub.Listing, f hub.File, revision string, progress func(hub.Progress)) (string, error) {
	p, err := h.Hub.Download(ctx, l, f, revision, progress)
	return p, h.hint(err, l.Repo)
}

// hint explains a failure to reach the hub (a connection refused or cut, a
// name that does not resolve, a timeout); other errors (a missing repo, a
// wrong hash) say enough as they are. A cancelled context is no failure.
func (h hintingHub) hint(err error, repo string) error {
	var netErr net.Error
	if err == nil || errors.Is(err, context.Canceled) || !errors.As(err, &netErr) {
		return err
	}
	spec := repo
	if h.source == hub.ModelScope {
		spec = "modelscope:" + repo
	}
	return fmt.Errorf("%w. The hub at %s is unreachable from here; aimind keeps serving. To fix it: set %s to a hub or mirror this machine reaches and restart; "+
		"or run `aimind pull %s` where the hub is reachable, copy its cache (%s) here and serve with --offline; "+
		"or give --model the path of a local .gguf file. Then press Retry on the Models page (or POST /api/models/NAME/start)",
		err, h.endpoint, h.envVar, spec, h.cache)
}
