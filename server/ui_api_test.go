package server_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aimind/aimind/auth"
	"github.com/aimind/aimind/engine"
	"github.com/aimind/aimind/hub"
	"github.com/aimind/aimind/hub/hubtest"
	"github.com/aimind/aimind/internal/synth"
	"github.com/aimind/aimind/internal/testutil"
	"github.com/aimind/aimind/models"
	"github.com/aimind/aimind/server"
	"github.com/aimind/aimind/store"
)

// TestAdminAPIForTheUI covers what the web UI of issue 21 relies on: quiet
// polling in the log, failures explained with the form field they concern,
// a cached repository listed with the hub down, per-model logs, and a
// delete that keeps the downloaded file.
func TestAdminAPIForTheUI(t *testing.T) {
	model, _ := os.ReadFile(testutil.MustModel(t, synth.Tiny()))
	fake := hubtest.New(&hubtest.Repo{ID: "gpustack/bge-reranker-v2-m3-GGUF", Files: map[string][]byte{"bge-reranker-v2-m3-Q8_0.gguf": model}},
		&hubtest.Repo{ID: "broken/bad-GGUF", Files: map[string][]byte{"bad-Q8_0.gguf": model}, Hashes: map[string]string{"bad-Q8_0.gguf": strings.Repeat("cd", 32)}})
	defer fake.Close()
	dir := t.TempDir()
	st, err := store.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	logs := &testutil.SyncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	hf, _ := hub.NewHuggingFace(fake.URL, "", t.TempDir(), nil)
	hubs := map[hub.Source]hub.Hub{hub.HuggingFace: hf}
	mgr := models.NewManager(engine.Options{Threads: 1, FlashAttn: true}, st, hubs, log)
	defer mgr.Close()
	admin := auth.NewAdmin(st, dir)
	admin.Bootstrap("initial-password")
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := server.New(mgr, server.Options{Admin: admin, NoAuth: true, Hubs: hubs, Logger: log})
	go srv.Serve(ln)
	defer srv.Shutdown()
	s := &authServer{testServer: &testServer{url: "http://" + ln.Addr().String(), mgr: mgr}}
	_, c := login(t, s, "initial-password")
	cookie := map[string]string{"Cookie": server.SessionCookie + "=" + c.Value}
	s.req(t, "POST", "/api/password", `{"current_password":"initial-password","new_password":"better-password"}`, cookie)
	type problem struct{ Kind, Field, What, Fix, Detail string }
	problemOf := func(body string) problem {
		t.Helper()
		var e struct{ Problem problem }
		if err := json.Unmarshal([]byte(body), &e); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		return e.Problem
	}

	// Polling: a successful GET at debug level, a failed one and a change at INFO.
	s.req(t, "GET", "/api/models", "", cookie)
	s.req(t, "GET", "/api/models", "", cookie)
	s.req(t, "GET", "/api/models/nothing", "", cookie)
	infoGET := regexp.MustCompile(`level=INFO msg=request .*method=GET route=/api/models status=200`)
	if infoGET.MatchString(logs.String()) || !regexp.MustCompile(`level=INFO msg=request .*method=GET route=/api/models/\{name\} status=404`).MatchString(logs.String()) {
		t.Fatalf("request log:\n%s", logs.String())
	}

	// Failures explained, with their field.
	code, body, _ := s.req(t, "GET", "/api/hub/files?repo=nobody/missing-GGUF", "", cookie)
	if p := problemOf(body); code != 404 || p.Kind != "not_found" || p.Field != "repo" || !strings.Contains(p.Fix, "spelling") {
		t.Fatalf("files of an unknown repo: %d %s", code, body)
	}
	code, body, _ = s.req(t, "POST", "/api/models", `{"source":"local","path":"/nonexistent/x-Q8_0.gguf"}`, cookie)
	if p := problemOf(body); code != 400 || p.Kind != "no_file" || p.Field != "path" || !strings.Contains(p.Detail, "cannot read model file") {
		t.Fatalf("a missing local file: %d %s", code, body)
	}
	code, body, _ = s.req(t, "POST", "/api/models", `{"source":"huggingface","repo":"broken/bad-GGUF","name":"broken"}`, cookie)
	if code != 202 {
		t.Fatalf("deploy: %d %s", code, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := mgr.WaitFor(ctx, "broken"); err == nil {
		t.Fatal("a file with the wrong sha256 was served")
	}
	_, body, _ = s.req(t, "GET", "/api/models/broken", "", cookie)
	var rec struct {
		Status  string
		Problem problem
	}
	json.Unmarshal([]byte(body), &rec)
	if rec.Status != "error" || rec.Problem.Kind != "damaged" || rec.Problem.Field != "file" {
		t.Fatalf("a damaged download: %s", body)
	}

	// Two models of one file; per-model logs.
	for _, name := range []string{"a", "b"} {
		if code, body, _ := s.req(t, "POST", "/api/models", `{"source":"huggingface","repo":"gpustack/bge-reranker-v2-m3-GGUF","name":"`+name+`"}`, cookie); code != 202 {
			t.Fatalf("deploy %s: %d %s", name, code, body)
		}
	}
	if err := mgr.WaitFor(ctx, "a", "b"); err != nil {
		t.Fatal(err)
	}
	code, body, _ = s.req(t, "GET", "/api/models/a/logs", "", cookie)
	var entries struct {
		Data []models.LogEntry
	}
	json.Unmarshal([]byte(body), &entries)
	var msgs []string
	for _, e := range entries.Data {
		msgs = append(msgs, e.Message)
		if e.Attrs["model"] != "" {
			t.Fatalf("the model attribute is repeated in its own log: %+v", e)
		}
	}
	if got := strings.Join(msgs, "|"); code != 200 || !regexp.MustCompile(`downloading\|downloaded and verified \(sha256\)\|loading\|model self-check.*\|model running`).MatchString(got) {
		t.Fatalf("logs of a: %d %s", code, got)
	}
	if code, _, _ := s.req(t, "GET", "/api/models/none/logs", "", cookie); code != 404 {
		t.Fatalf("logs of an unknown model: %d", code)
	}

	// The hub goes down: the cached repository is listed from the cache.
	fake.Close()
	code, body, _ = s.req(t, "GET", "/api/hub/files?repo=gpustack/bge-reranker-v2-m3-GGUF", "", cookie)
	if code != 200 || !strings.Contains(body, `"from_cache":true`) || !strings.Contains(body, `"default":"bge-reranker-v2-m3-Q8_0.gguf"`) || !strings.Contains(body, "cannot be reached") {
		t.Fatalf("files of a cached repo with the hub down: %d %s", code, body)
	}
	code, body, _ = s.req(t, "GET", "/api/hub/files?repo=someone/not-cached", "", cookie)
	if p := problemOf(body); code != 502 || p.Kind != "unreachable" || !strings.Contains(p.Fix, "HF_ENDPOINT") || strings.Contains(p.Detail, "blobs=true") {
		t.Fatalf("files of another repo with the hub down: %d %s", code, body)
	}

	// keep_file keeps the downloaded file, even with files=true.
	a, _ := mgr.Get("a")
	_, body, _ = s.req(t, "DELETE", "/api/models/b?files=true&keep_file=true", "", cookie)
	if !strings.Contains(body, `"note":"its downloaded file is kept"`) {
		t.Fatalf("delete with keep_file: %s", body)
	}
	_, body, _ = s.req(t, "DELETE", "/api/models/a?files=true", "", cookie)
	if _, err := os.Stat(a.Path); !os.IsNotExist(err) || !strings.Contains(body, "removed") {
		t.Fatalf("delete without keep_file: %v %s", err, body)
	}
	if code, _, _ := s.req(t, "GET", "/api/models/a/logs", "", cookie); code != 404 {
		t.Fatalf("logs of a deleted model: %d", code)
	}
}
