package deploy_test

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

	"github.com/aimind/aimind/internal/testutil"
)

var binary string

// TestMain builds the real aimind binary once.
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

// needTool finds a program the test needs; missing, it fails under CI (where
// `./build.sh test` installs it) and skips elsewhere, saying why.
func needTool(t *testing.T, name, pkg string) string {
	t.Helper()
	for _, p := range []string{name, "/usr/sbin/" + name, "/sbin/" + name} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is missing although ./build.sh test installs it (Debian package %s)", name, pkg)
	}
	t.Skipf("%s is not installed (Debian package %s; ./build.sh test installs it)", name, pkg)
	return ""
}

// process is a started child; done is closed when it has exited.
type process struct {
	cmd  *exec.Cmd
	out  *testutil.SyncBuffer
	done chan struct{}
	err  error // after done
}

func start(t *testing.T, env []string, name string, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(name, args...), out: &testutil.SyncBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.Env = append(os.Environ(), env...)
	// Its own process group, so that the cleanup reaches children it forks
	// (nginx's workers) and none keeps the output pipe open.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.cmd.WaitDelay = 5 * time.Second
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("cannot start %s: %v", name, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	})
	return p
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitExit waits for the process to end and returns its exit code.
func (p *process) waitExit(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		t.Fatalf("still running after %s:\n%s", d, p.out.String())
	}
	if ee, ok := p.err.(*exec.ExitError); ok {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			t.Fatalf("died of %v:\n%s", ws.Signal(), p.out.String())
		}
		return ee.ExitCode()
	}
	if p.err != nil {
		t.Fatal(p.err)
	}
	return 0
}

// runAimind runs the binary to its end and returns stdout, stderr and the
// exit code.
func runAimind(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}

var client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func get(url string) (int, error) {
	resp, err := client.Get(url)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// waitReady polls base/ready until it answers 200 or the process ends.
func waitReady(t *testing.T, p *process, base string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if code, err := get(base + "/ready"); err == nil && code == http.StatusOK {
			return
		}
		if p.exited() {
			t.Fatalf("exited before it was ready:\n%s", p.out.String())
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready within %s:\n%s", d, p.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const seedBody = `{"query": "什么是熊猫？", "top_n": 3, "documents": ["你好", "它是一种熊", "大熊猫（Ailuropoda melanoleuca），有时被称为熊猫或熊猫熊，是中国特有的熊科动物。"]}`

// rerank posts the seed request and returns the status, the body and the
// upstream that answered (set by the test's nginx, empty otherwise).
func rerank(base, key string) (int, string, string, error) {
	req, err := http.NewRequest(http.MethodPost, base+"/v1/rerank", strings.NewReader(seedBody))
	if err != nil {
		return 0, "", "", err
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header.Get("X-Upstream"), err
}
