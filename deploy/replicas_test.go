package deploy_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aimind/aimind/internal/synth"
	"github.com/aimind/aimind/internal/testutil"
)

// balancer is a real nginx on loopback in front of the replicas. Open-source
// nginx does not poll /ready itself, so the test plays the part a controller
// plays in a cluster (Kubernetes endpoints, an ingress controller): it polls
// each replica's /ready and reloads nginx with the unready ones marked down.
type balancer struct {
	dir      string
	port     int
	backends []int
	proc     *process
}

func startNginx(t *testing.T, backends []int) *balancer {
	t.Helper()
	bin := needTool(t, "nginx", "nginx")
	b := &balancer{dir: t.TempDir(), port: testutil.FreePort(t), backends: backends}
	if err := os.Chmod(b.dir, 0o777); err != nil { // nginx's workers run as nobody
		t.Fatal(err)
	}
	// Retrying a request on the other replica would hide a lost one:
	// proxy_next_upstream off, so every failure reaches the client.
	conf := fmt.Sprintf(`daemon off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log notice;
events { worker_connections 512; }
http {
  access_log off;
  client_body_temp_path %[1]s/client_body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  include %[1]s/upstream.conf;
  server {
    listen 127.0.0.1:%[2]d;
    location / {
      proxy_pass http://aimind;
      proxy_next_upstream off;
      proxy_read_timeout 60s;
      add_header X-Upstream $upstream_addr always;
    }
  }
}
`, b.dir, b.port)
	if err := os.WriteFile(filepath.Join(b.dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := b.writeUpstreams(nil); err != nil {
		t.Fatal(err)
	}
	b.proc = start(t, nil, bin, "-p", b.dir, "-e", filepath.Join(b.dir, "error.log"), "-c", filepath.Join(b.dir, "nginx.conf"))
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := get(fmt.Sprintf("http://127.0.0.1:%d/health", b.port)); err == nil {
			return b
		}
		if b.proc.exited() || time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(b.dir, "error.log"))
			t.Fatalf("nginx did not start:\n%s\n%s", b.proc.out.String(), log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (b *balancer) writeUpstreams(down map[int]bool) error {
	var s strings.Builder
	s.WriteString("upstream aimind {\n")
	for _, p := range b.backends {
		mark := ""
		if down[p] {
			mark = " down"
		}
		fmt.Fprintf(&s, "  server 127.0.0.1:%d%s;\n", p, mark)
	}
	s.WriteString("}\n")
	return os.WriteFile(filepath.Join(b.dir, "upstream.conf"), []byte(s.String()), 0o644)
}

// reload makes nginx reread its configuration; old workers finish the
// requests they hold.
func (b *balancer) reload(down map[int]bool) error {
	if err := b.writeUpstreams(down); err != nil {
		return err
	}
	return b.proc.cmd.Process.Signal(syscall.SIGHUP)
}

func (b *balancer) url() string { return fmt.Sprintf("http://127.0.0.1:%d", b.port) }

func startReplica(t *testing.T, model, keysFile string) (*process, int) {
	t.Helper()
	port := testutil.FreePort(t)
	p := start(t, nil, binary, "serve", "--port", fmt.Sprint(port), "--data-dir", t.TempDir(), "--model", model,
		"--keys-file", keysFile, "--drain-delay", "3s", "--threads", "1")
	return p, port
}

// createKey adds a key to the keys file with the real CLI; it returns the
// plaintext and the id.
func createKey(t *testing.T, keysFile, name string) (string, string) {
	t.Helper()
	stdout, stderr, code := runAimind(t, nil, "keys", "create", "--to-file", keysFile, "--name", name)
	key := strings.TrimSpace(stdout)
	if code != 0 || !strings.HasPrefix(key, "aimind_") {
		t.Fatalf("keys create --to-file: exit %d\n%s%s", code, stdout, stderr)
	}
	return key, strings.Split(key, "_")[1]
}

// untilAll polls every replica until check holds for each, within d.
func untilAll(t *testing.T, what string, d time.Duration, ports []int, check func(port int) bool) time.Duration {
	t.Helper()
	start := time.Now()
	pending := map[int]bool{}
	for _, p := range ports {
		pending[p] = true
	}
	for len(pending) > 0 {
		for p := range pending {
			if check(p) {
				delete(pending, p)
			}
		}
		if len(pending) == 0 {
			break
		}
		if time.Since(start) > d {
			t.Fatalf("%s: replicas %v not there within %s", what, pending, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

func status(port int, key string) int {
	code, _, _, err := rerank(fmt.Sprintf("http://127.0.0.1:%d", port), key)
	if err != nil {
		return 0
	}
	return code
}

// TestReplicasShareKeysFileBehindNginx runs two replicas behind a real nginx
// with one keys file: a key added to the file works on both within 2 s, a
// revoked one is refused by both within 2 s; then SIGTERM on one replica
// under steady load makes its /ready fail first, the balancer moves the
// traffic, and no request is lost.
func TestReplicasShareKeysFileBehindNginx(t *testing.T) {
	model := testutil.MustModel(t, synth.Tiny())
	keysFile := filepath.Join(t.TempDir(), "keys.json")
	first, firstID := createKey(t, keysFile, "first")
	if data, _ := os.ReadFile(keysFile); strings.Contains(string(data), first) {
		t.Fatal("the keys file holds a plaintext key")
	}

	a, portA := startReplica(t, model, keysFile)
	b, portB := startReplica(t, model, keysFile)
	ports := []int{portA, portB}
	waitReady(t, a, fmt.Sprintf("http://127.0.0.1:%d", portA), time.Minute)
	waitReady(t, b, fmt.Sprintf("http://127.0.0.1:%d", portB), time.Minute)
	lb := startNginx(t, ports)

	// The key from the file works through the balancer, on both replicas.
	seen := map[string]bool{}
	for i := 0; i < 6; i++ {
		code, body, up, err := rerank(lb.url(), first)
		if err != nil || code != http.StatusOK {
			t.Fatalf("through nginx: %d %v %s", code, err, body)
		}
		seen[up] = true
	}
	if len(seen) != 2 {
		t.Fatalf("nginx used %v, want both replicas", seen)
	}

	// A key added to the file: refused before, accepted by both within 2 s.
	if s := status(portA, "aimind_0123456789ab_"+strings.Repeat("0", 64)); s != http.StatusUnauthorized {
		t.Fatalf("an unknown key got %d", s)
	}
	second, secondID := createKey(t, keysFile, "second")
	took := untilAll(t, "added key accepted", 2*time.Second, ports, func(p int) bool { return status(p, second) == http.StatusOK })
	t.Logf("added key accepted by both replicas after %s", took)

	// Revoked: refused by both within 2 s; the other key still works.
	if _, stderr, code := runAimind(t, nil, "keys", "revoke", "--from-file", keysFile, secondID); code != 0 {
		t.Fatalf("keys revoke --from-file: exit %d: %s", code, stderr)
	}
	took = untilAll(t, "revoked key refused", 2*time.Second, ports, func(p int) bool { return status(p, second) == http.StatusUnauthorized })
	t.Logf("revoked key refused by both replicas after %s", took)
	list, _, code := runAimind(t, nil, "keys", "list", "--file", keysFile)
	if code != 0 || !strings.Contains(list, firstID) || strings.Contains(list, secondID) {
		t.Fatalf("keys list --file after the revoke: exit %d\n%s", code, list)
	}
	if _, stderr, code := runAimind(t, nil, "keys", "revoke", "--from-file", keysFile, secondID); code == 0 || !strings.Contains(stderr, "unknown or revoked") {
		t.Fatalf("revoking twice: exit %d: %s", code, stderr)
	}
	for _, p := range ports {
		if s := status(p, first); s != http.StatusOK {
			t.Fatalf("the remaining key got %d on :%d", s, p)
		}
	}

	drainUnderLoad(t, lb, a, b, portA, portB, first)
}

// drainUnderLoad sends steady load through nginx, stops replica a with
// SIGTERM and counts: every request sent must be answered 200.
func drainUnderLoad(t *testing.T, lb *balancer, a, b *process, portA, portB int, key string) {
	stop := make(chan struct{})
	var wg sync.WaitGroup

	// The controller: /ready decides what nginx sends where.
	type observation struct{ readyFailedWhileAlive bool }
	var obs observation
	var obsMu sync.Mutex
	ctlErr := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		down := map[int]bool{}
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			changed := false
			for _, p := range []int{portA, portB} {
				code, err := get(fmt.Sprintf("http://127.0.0.1:%d/ready", p))
				ready := err == nil && code == http.StatusOK
				if p == portA && err == nil && code == http.StatusServiceUnavailable {
					// /ready fails while the replica still answers: the drain.
					if h, err := get(fmt.Sprintf("http://127.0.0.1:%d/health", p)); err == nil && h == http.StatusOK {
						obsMu.Lock()
						obs.readyFailedWhileAlive = true
						obsMu.Unlock()
					}
				}
				if down[p] == ready {
					down[p] = !ready
					changed = true
				}
			}
			if changed {
				if err := lb.reload(down); err != nil {
					ctlErr <- err
					return
				}
			}
		}
	}()

	// The load: 3 clients, each request on a new connection, bounded in time.
	var sent, ok, afterExit atomic.Int64
	var failMu sync.Mutex
	var failures []string
	perUpstream := map[string]int{}
	loadDeadline := time.Now().Add(90 * time.Second)
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(loadDeadline) {
				select {
				case <-stop:
					return
				default:
				}
				sent.Add(1)
				code, body, up, err := rerank(lb.url(), key)
				failMu.Lock()
				if err != nil || code != http.StatusOK {
					failures = append(failures, fmt.Sprintf("%d %v %.200s (upstream %s)", code, err, body, up))
				} else {
					ok.Add(1)
					perUpstream[up]++
					if a.exited() {
						afterExit.Add(1)
					}
				}
				failMu.Unlock()
			}
		}()
	}
	finish := func() {
		close(stop)
		wg.Wait()
	}
	waitCount := func(what string, c *atomic.Int64, n int64) {
		deadline := time.Now().Add(60 * time.Second)
		for c.Load() < n {
			if time.Now().After(deadline) {
				finish()
				t.Fatalf("%s: %d of %d within 60 s", what, c.Load(), n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	waitCount("answers before SIGTERM", &ok, 30)
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		finish()
		t.Fatal(err)
	}
	select {
	case <-a.done:
	case <-time.After(60 * time.Second):
		finish()
		t.Fatalf("replica A still runs 60 s after SIGTERM:\n%s", a.out.String())
	}
	waitCount("answers after replica A exited", &afterExit, 30)
	finish()
	select {
	case err := <-ctlErr:
		t.Fatalf("controller: %v", err)
	default:
	}

	if code := a.waitExit(t, time.Second); code != 0 {
		t.Fatalf("replica A exited %d after SIGTERM:\n%s", code, a.out.String())
	}
	t.Logf("sent %d, answered 200: %d, per upstream %v", sent.Load(), ok.Load(), perUpstream)
	if len(failures) > 0 {
		t.Fatalf("%d of %d requests lost:\n%s", len(failures), sent.Load(), strings.Join(failures[:min(len(failures), 10)], "\n"))
	}
	if sent.Load() != ok.Load() {
		t.Fatalf("sent %d, answered %d", sent.Load(), ok.Load())
	}
	if !obs.readyFailedWhileAlive {
		t.Fatalf("replica A's /ready never failed while it still served (no drain):\n%s", a.out.String())
	}
	if !strings.Contains(a.out.String(), "draining") {
		t.Fatalf("replica A did not log its drain:\n%s", a.out.String())
	}
	if b.exited() {
		t.Fatalf("replica B stopped:\n%s", b.out.String())
	}
	if perUpstream[fmt.Sprintf("127.0.0.1:%d", portA)] == 0 || perUpstream[fmt.Sprintf("127.0.0.1:%d", portB)] == 0 {
		t.Fatalf("load did not reach both replicas: %v", perUpstream)
	}
}
