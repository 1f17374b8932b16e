package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
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

// TestServeHelp: serve --help describes every flag, keeps quoted commands
// whole (a backquote would become the value's placeholder and vanish), and
// names the hub's environment variables.
func TestServeHelp(t *testing.T) {
	out, code := run(t, "serve", "--help")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	for _, want := range []string{"HF_ENDPOINT", "HF_TOKEN", "HF_HUB_CACHE", "MODELSCOPE_DOMAIN",
		"--keys-file value", "'aimind keys create --to-file'", "every --model fails"} {
		if !strings.Contains(out, want) {
			t.Errorf("serve --help lacks %q", want)
		}
	}
	described := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], "--") {
			continue
		}
		// "--name value [ --name value ]  usage (default: x) [$ENV]": the
		// text after the flag's own column.
		cols := strings.SplitN(strings.TrimSpace(line), "  ", 2)
		text := ""
		if len(cols) == 2 {
			text = strings.TrimSpace(cols[1])
		}
		described[f[0]] = text != "" && !strings.HasPrefix(text, "(default:") && !strings.HasPrefix(text, "[$")
		if !described[f[0]] {
			t.Errorf("%s has no description: %q", f[0], line)
		}
	}
	for _, flag := range []string{"--host", "--port", "--tls-cert-file", "--tls-key-file", "--model", "--offline"} {
		if _, ok := described[flag]; !ok {
			t.Errorf("serve --help does not list %s", flag)
		}
	}
}

// TestCommandLineMistakes: a mistyped command is answered with the closest
// command, a bad flag with one short line pointing at the help; both exit 1.
func TestCommandLineMistakes(t *testing.T) {
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"serv"}, []string{`"serv" is no command`, `did you mean "serve"?`, "aimind --help"}},
		{[]string{"keys", "lst"}, []string{`did you mean "list"?`, "aimind keys --help"}},
		{[]string{"frobnicate"}, []string{`"frobnicate" is no command`, "aimind --help"}},
		{[]string{"serve", "--prot", "9000"}, []string{"unknown flag --prot", "did you mean --port?", "see aimind serve --help"}},
		{[]string{"serve", "--port", "many"}, []string{`invalid value "many" for flag --port`, "see aimind serve --help"}},
		{[]string{"keys", "create", "--nam", "x"}, []string{"did you mean --name?", "see aimind keys create --help"}},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, code := run(t, tc.args...)
			if code != 1 {
				t.Fatalf("exit %d:\n%s", code, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if n := strings.Count(strings.TrimSpace(out), "\n"); n > 1 || strings.Contains(out, "No help topic") || strings.Contains(out, "OPTIONS:") {
				t.Errorf("want one short line, got %d lines:\n%s", n+1, out)
			}
		})
	}
}

// TestRefusedServeWritesNothing: what the command line alone decides is
// refused before the data directory (and its admin password) is created.
func TestRefusedServeWritesNothing(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	good := testutil.MustModel(t, synth.Tiny())
	junk := filepath.Join(t.TempDir(), "junk.gguf")
	if err := os.WriteFile(junk, []byte("not a gguf at all, just text"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		msg  string
	}{
		{"missing file", []string{"--model", "/nonexistent/none.gguf"}, "cannot read model file"},
		{"not a GGUF", []string{"--model", junk}, "damaged GGUF"},
		{"bad repo", []string{"--model", "hf:bad repo/x"}, "invalid name"},
		{"offline, not cached", []string{"--offline", "--model", "acme/never-pulled-GGUF"}, "aimind pull"},
		{"port in use", []string{"--model", good, "--host", "127.0.0.1", "--port", fmt.Sprint(busy.Addr().(*net.TCPAddr).Port)}, "cannot listen"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			cache := t.TempDir()
			args := append([]string{"serve", "--data-dir", dir, "--no-auth"}, tc.args...)
			if !strings.Contains(strings.Join(tc.args, " "), "--port") {
				args = append(args, "--port", fmt.Sprint(testutil.FreePort(t)))
			}
			// A serve that is not refused would run on: the timeout ends it.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, binary, args...)
			cmd.Env = append(os.Environ(), "HF_HUB_CACHE="+cache, "HF_ENDPOINT=http://127.0.0.1:1")
			out, err := cmd.CombinedOutput()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(strings.ToLower(string(out)), strings.ToLower(tc.msg)) {
				t.Fatalf("%v, output lacks %q:\n%s", err, tc.msg, out)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Fatalf("the refused serve created %s (%v):\n%s", dir, err, out)
			}
		})
	}
}
