package server_test

import (
	"context"
	"encoding/json"
	"math"
	"net"
	"os"
	"testing"
	"time"

	"github.com/aimind/aimind/auth"
	"github.com/aimind/aimind/engine"
	"github.com/aimind/aimind/hub"
	"github.com/aimind/aimind/hub/hubtest"
	"github.com/aimind/aimind/internal/synth"
	"github.com/aimind/aimind/internal/testutil"
	"github.com/aimind/aimind/llama"
	"github.com/aimind/aimind/models"
	"github.com/aimind/aimind/server"
	"github.com/aimind/aimind/store"
)

// TestDeployEstimateIsTheRunningModelsMemory: the deploy dialog's estimate
// for a hub file (its type and size only) is within 20 % of the memory the
// record reports once the same file runs (engine.Plan from the file's own
// shape), for a Q8_0 and an F16 file on the path this CPU takes. Issue 21
// item 4: the dialog showed 165 MiB for a model that took 241.
func TestDeployEstimateIsTheRunningModelsMemory(t *testing.T) {
	spec := synth.Tiny()
	spec.Hidden, spec.FFN = 256, 1024 // weights large beside the vocabulary
	q8, _ := os.ReadFile(testutil.MustQuantized(t, spec, llama.FtypeQ8_0))
	f16, _ := os.ReadFile(testutil.MustQuantized(t, spec, llama.FtypeF16))
	fake := hubtest.New(&hubtest.Repo{ID: "someone/reranker-GGUF",
		Files: map[string][]byte{"reranker-Q8_0.gguf": q8, "reranker-F16.gguf": f16}})
	defer fake.Close()
	s, mgr, cookie := startModelsAPI(t, fake.URL, engine.Options{Threads: 1, FlashAttn: true, DerivedDir: t.TempDir()}, nil)
	code, body, _ := s.req(t, "GET", "/api/hub/files?source=huggingface&repo=someone/reranker-GGUF", "", cookie)
	var listing struct {
		Files []struct {
			Path           string `json:"path"`
			MemoryEstimate int64  `json:"memory_estimate"`
		} `json:"files"`
	}
	if err := json.Unmarshal([]byte(body), &listing); code != 200 || err != nil || len(listing.Files) != 2 {
		t.Fatalf("files: %d %s (%v)", code, body, err)
	}
	for i, f := range listing.Files {
		name := []string{"first", "second"}[i]
		req, _ := json.Marshal(models.Request{Source: hub.HuggingFace, Repo: "someone/reranker-GGUF", File: f.Path, Name: name})
		if code, body, _ := s.req(t, "POST", "/api/models", string(req), cookie); code != 202 {
			t.Fatalf("deploy %s: %d %s", f.Path, code, body)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := mgr.WaitFor(ctx, name)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		rec, _ := mgr.Get(name)
		d := math.Abs(float64(f.MemoryEstimate-rec.MemoryEst)) / float64(rec.MemoryEst)
		t.Logf("%s (%s): the dialog said %d KiB, the running record says %d KiB (%.1f %% apart)", f.Path, mgr.Engine(name).Kernel(), f.MemoryEstimate>>10, rec.MemoryEst>>10, d*100)
		if d > 0.20 {
			t.Errorf("%s: the dialog's estimate %d KiB is %.0f %% from the running model's %d KiB", f.Path, f.MemoryEstimate>>10, d*100, rec.MemoryEst>>10)
		}
	}
}

// startModelsAPI serves a manager over a fake hub with a store, an admin
// whose password is changed already, and the given API keys; it returns the
// server, the manager and the session cookie header. Everything stops at
// the test's end.
func startModelsAPI(t *testing.T, hubURL string, eo engine.Options, keys []string) (*authServer, *models.Manager, map[string]string) {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	hf, _ := hub.NewHuggingFace(hubURL, "", t.TempDir(), nil)
	hubs := map[hub.Source]hub.Hub{hub.HuggingFace: hf}
	mgr := models.NewManager(eo, st, hubs, nil)
	t.Cleanup(func() { mgr.Close() })
	admin := auth.NewAdmin(st, dir)
	admin.Bootstrap("initial-password")
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := server.New(mgr, server.Options{Admin: admin, Keys: auth.NewKeys(st, keys), Hubs: hubs})
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	s := &authServer{testServer: &testServer{url: "http://" + ln.Addr().String(), mgr: mgr}}
	_, c := login(t, s, "initial-password")
	cookie := map[string]string{"Cookie": server.SessionCookie + "=" + c.Value}
	s.req(t, "POST", "/api/password", `{"current_password":"initial-password","new_password":"better-password"}`, cookie)
	return s, mgr, cookie
}
