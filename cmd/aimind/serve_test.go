package main_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aimind/aimind/hub/hubtest"
	"github.com/aimind/aimind/internal/synth"
	"github.com/aimind/aimind/internal/testutil"
)

// server is a running `aimind serve`; exited is closed when it ends.
type server struct {
	cmd    *exec.Cmd
	out    *testutil.SyncBuffer
	url    string
	exited chan struct{}
}

func startServe(t *testing.T, env []string, args ...string) *server {
	t.Helper()
	port := testutil.FreePort(t)
	s := &server{out: &testutil.SyncBuffer{}, url: fmt.Sprintf("http://127.0.0.1:%d", port), exited: make(chan struct{})}
	s.cmd = exec.Command(binary, append([]string{"serve", "--port", fmt.Sprint(port), "--threads", "1"}, args...)...)
	s.cmd.Env = append(os.Environ(), env...)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.cmd.Wait(); close(s.exited) }()
	t.Cleanup(func() { s.cmd.Process.Kill(); <-s.exited })
	return s
}

// waitFor polls until ok returns true; it fails the test when the server
// exits or d passes.
func (s *server) waitFor(t *testing.T, what string, d time.Duration, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !ok(); time.Sleep(30 * time.Millisecond) {
		select {
		case <-s.exited:
			t.Fatalf("aimind exited (%v) while waiting for %s:\n%s", s.cmd.ProcessState, what, s.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %v:\n%s", what, d, s.out.String())
		}
	}
}

func (s *server) get(path string) (int, string) {
	resp, err := http.Get(s.url + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, b.String()
}

type card struct {
	ID, Status, Error string
}

func (s *server) models(t *testing.T) []card {
	t.Helper()
	code, body := s.get("/v1/models")
	if code != 200 {
		return nil
	}
	var list struct{ Data []card }
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatalf("/v1/models: %v: %s", err, body)
	}
	return list.Data
}

// TestServeSurvivesUnreachableHub: `serve --model REPO` with the hub down
// keeps serving (UI and API up, /ready 503), shows the model as failed with
// what to do about it, and serves it once the hub is back and the model is
// retried the way the web UI's Retry does.
func TestServeSurvivesUnreachableHub(t *testing.T) {
	model, err := os.ReadFile(testutil.MustModel(t, synth.Tiny()))
	if err != nil {
		t.Fatal(err)
	}
	fake := hubtest.New(&hubtest.Repo{ID: "acme/tiny-reranker-GGUF", Files: map[string][]byte{"tiny-reranker-Q8_0.gguf": model}})
	defer fake.Close()
	hubPort := testutil.FreePort(t) // nothing listens here yet: connection refused
	env := []string{fmt.Sprintf("HF_ENDPOINT=http://127.0.0.1:%d", hubPort), "HF_HUB_CACHE=" + t.TempDir()}
	s := startServe(t, env, "--model", "acme/tiny-reranker-GGUF", "--data-dir", t.TempDir(), "--no-auth",
		"--bootstrap-password", "first-password")

	var failed card
	s.waitFor(t, "the model recorded as failed", 30*time.Second, func() bool {
		for _, c := range s.models(t) {
			if c.Status == "error" {
				failed = c
				return true
			}
		}
		return false
	})
	for _, hint := range []string{"cannot reach Hugging Face", "HF_ENDPOINT", "aimind pull acme/tiny-reranker-GGUF", "--offline", "local .gguf", "Retry"} {
		if !strings.Contains(failed.Error, hint) {
			t.Errorf("the model's error lacks %q: %s", hint, failed.Error)
		}
	}
	if code, body := s.get("/health"); code != 200 {
		t.Fatalf("/health: %d %s", code, body)
	}
	if code, body := s.get("/ready"); code != http.StatusServiceUnavailable {
		t.Fatalf("/ready with no model running: %d %s", code, body)
	}
	if code, _ := s.get("/"); code != 200 {
		t.Fatalf("the web UI answers %d", code)
	}
	s.waitFor(t, "the log saying aimind keeps serving", 10*time.Second, func() bool {
		return strings.Contains(s.out.String(), "no --model runs") && strings.Contains(s.out.String(), "HF_ENDPOINT")
	})

	// The hub comes back (behind the address aimind was given); Retry.
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", hubPort))
	if err != nil {
		t.Fatalf("cannot take the hub's port back: %v", err)
	}
	target, _ := url.Parse(fake.URL)
	proxy := &http.Server{Handler: httputil.NewSingleHostReverseProxy(target)}
	go proxy.Serve(ln)
	defer proxy.Close()
	sid := sessionOf(t, nil, s.url, "first-password")
	cookie := map[string]string{"Cookie": "aimind_session=" + sid}
	if code, b, _ := call(t, nil, "POST", s.url+"/api/password", `{"current_password":"first-password","new_password":"second-password"}`, cookie); code != 200 {
		t.Fatalf("password change: %d %s", code, b)
	}
	code, body, _ := call(t, nil, "POST", s.url+"/api/models/"+failed.ID+"/start", "", cookie)
	if code != 200 {
		t.Fatalf("retry: %d %s", code, body)
	}
	s.waitFor(t, "/ready after the retry", time.Minute, func() bool { code, _ := s.get("/ready"); return code == 200 })
	code, body, _ = call(t, nil, "POST", s.url+"/v1/rerank", `{"model":"`+failed.ID+`","query":"panda","documents":["bamboo","fish"]}`, nil)
	if code != 200 || !strings.Contains(body, "relevance_score") {
		t.Fatalf("rerank after the retry: %d %s", code, body)
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		if !s.cmd.ProcessState.Success() {
			t.Fatalf("exit after SIGTERM: %v\n%s", s.cmd.ProcessState, s.out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("aimind did not stop on SIGTERM")
	}
}
