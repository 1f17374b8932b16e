package main_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aimind/aimind/internal/synth"
	"github.com/aimind/aimind/internal/testutil"
)

var binary string

// TestMain builds the real aimind binary once; these tests run it as a user
// would.
func TestMain(m *testing.M) {
	var err error
	if binary, err = testutil.BuildAimind(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(filepath.Dir(binary))
	testutil.Cleanup()
	os.Exit(code)
}

func run(t *testing.T, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			t.Fatalf("aimind died of %v:\n%s", ws.Signal(), out.String())
		}
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), code
}

// TestStartupRefusesBadModels: damaged or unsuitable files stop startup with a
// clear message and exit code 1, never an abort.
func TestStartupRefusesBadModels(t *testing.T) {
	dir := t.TempDir()
	good := testutil.MustModel(t, synth.Tiny())
	data, _ := os.ReadFile(good)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, b, 0o644)
		return p
	}
	twoOut := synth.Tiny()
	twoOut.ClsOut = 2
	embedding := synth.Tiny()
	embedding.Pooling = 1
	cases := []struct {
		name string
		args []string
		msg  string
	}{
		{"truncated", []string{"--model", write("cut.gguf", data[:len(data)/2])}, "damaged GGUF"},
		{"garbage", []string{"--model", write("junk.gguf", []byte("not a gguf at all, just text"))}, "damaged GGUF"},
		{"two outputs", []string{"--model", testutil.MustModel(t, twoOut)}, "exactly 1"},
		{"embedding model", []string{"--model", testutil.MustModel(t, embedding)}, "pooling"},
		{"missing file", []string{"--model", filepath.Join(dir, "none.gguf")}, "cannot read model file"},
		{"same name twice", []string{"--model", good, "--model", good}, "--alias"},
		{"bad alias", []string{"--model", good, "--alias", "../x"}, "invalid model name"},
		{"too many aliases", []string{"--model", good, "--alias", "a", "--alias", "b"}, "--alias"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"serve", "--port", fmt.Sprint(testutil.FreePort(t)), "--data-dir", t.TempDir(), "--no-auth"}, tc.args...)
			out, code := run(t, args...)
			if code != 1 || !strings.Contains(out, tc.msg) {
				t.Fatalf("exit %d, output lacks %q:\n%s", code, tc.msg, out)
			}
		})
	}
}

// TestServeAnswersAndStopsOnSIGTERM runs `aimind serve` with two models and
// aliases, queries it, and stops it with SIGTERM.
func TestServeAnswersAndStopsOnSIGTERM(t *testing.T) {
	a := testutil.MustModel(t, synth.Tiny())
	other := synth.Tiny()
	other.Seed = 99
	b := testutil.MustModel(t, other)
	port := testutil.FreePort(t)
	cmd := exec.Command(binary, "serve", "--port", fmt.Sprint(port), "--model", a, "--model", b,
		"--alias", "first", "--alias", "second", "--threads", "1", "--data-dir", t.TempDir(), "--no-auth")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	var body []byte
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := http.Post(url+"/v1/rerank", "application/json",
			strings.NewReader(`{"model":"second","query":"panda","documents":["bamboo","fish"]}`))
		if err == nil {
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer: %v %s\n%s", err, body, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(string(body), `"model":"second"`) {
		t.Fatalf("answer %s", body)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("aimind did not stop on SIGTERM")
	}
	if !strings.Contains(out.String(), "shutting down") {
		t.Fatalf("log:\n%s", out.String())
	}
}

func TestVersion(t *testing.T) {
	out, code := run(t, "version")
	if code != 0 || !strings.Contains(out, "aimind") || !strings.Contains(out, "ollama v0.17.4") {
		t.Fatalf("exit %d: %s", code, out)
	}
}
