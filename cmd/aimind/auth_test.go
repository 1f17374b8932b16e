package main_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aimind/aimind/hub/hubtest"
	"github.com/aimind/aimind/internal/synth"
	"github.com/aimind/aimind/internal/testutil"
)

type proc struct {
	cmd *exec.Cmd
	out *testutil.SyncBuffer
	url string
}

// startServer runs aimind serve and waits until /ready says a model runs.
func startServer(t *testing.T, dataDir string, extra ...string) *proc {
	t.Helper()
	port := testutil.FreePort(t)
	args := append([]string{"serve", "--port", fmt.Sprint(port), "--data-dir", dataDir, "--threads", "1",
		"--model", testutil.MustModel(t, synth.Tiny()), "--alias", "tiny", "--bootstrap-password", "first-password"}, extra...)
	p := &proc{cmd: exec.Command(binary, args...), out: &testutil.SyncBuffer{}}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.cmd.Process.Kill(); p.cmd.Wait() })
	scheme, client := "http", http.DefaultClient
	for _, a := range extra {
		if a == "--tls-cert-file" {
			scheme = "https"
			client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		}
	}
	p.url = fmt.Sprintf("%s://127.0.0.1:%d", scheme, port)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(30 * time.Millisecond) {
		resp, err := client.Get(p.url + "/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not come up: %v\n%s", err, p.out.String())
		}
	}
}

func call(t *testing.T, c *http.Client, method, url, body string, hdr map[string]string) (int, string, *http.Response) {
	t.Helper()
	if c == nil {
		c = http.DefaultClient
	}
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp
}

func sessionOf(t *testing.T, c *http.Client, url, password string) string {
	t.Helper()
	code, body, resp := call(t, c, "POST", url+"/api/login", `{"password":"`+password+`"}`, nil)
	if code != 200 {
		t.Fatalf("login: %d %s", code, body)
	}
	for _, ck := range resp.Cookies() {
		if ck.Name == "aimind_session" {
			return ck.Value
		}
	}
	t.Fatal("no session cookie")
	return ""
}

func rerankWith(t *testing.T, url, key string) int {
	code, _, _ := call(t, nil, "POST", url+"/v1/rerank", `{"model":"tiny","query":"q","documents":["a"]}`,
		map[string]string{"Authorization": "Bearer " + key})
	return code
}

// TestKeysSurviveKill9: every key whose creation was acknowledged over HTTP
// still works after the server is killed with SIGKILL right after the answer.
func TestKeysSurviveKill9(t *testing.T) {
	dir := t.TempDir()
	var keys []string
	var logs strings.Builder
	password := "first-password"
	for round := 0; round < 8; round++ {
		p := startServer(t, dir)
		for i, k := range keys {
			if code := rerankWith(t, p.url, k); code != 200 {
				t.Fatalf("round %d: key %d lost after kill -9 (status %d)", round, i, code)
			}
		}
		sid := sessionOf(t, nil, p.url, password)
		cookie := map[string]string{"Cookie": "aimind_session=" + sid}
		if round == 0 {
			if code, b, _ := call(t, nil, "POST", p.url+"/api/password", `{"current_password":"first-password","new_password":"second-password"}`, cookie); code != 200 {
				t.Fatalf("password change: %d %s", code, b)
			}
			password = "second-password"
		}
		code, body, _ := call(t, nil, "POST", p.url+"/api/keys", fmt.Sprintf(`{"name":"k%d"}`, round), cookie)
		if code != 201 {
			t.Fatalf("create: %d %s", code, body)
		}
		p.cmd.Process.Signal(syscall.SIGKILL) // at once after the acknowledgement
		p.cmd.Wait()
		var created struct{ Key string }
		if err := json.Unmarshal([]byte(body), &created); err != nil || created.Key == "" {
			t.Fatalf("create answered %s: %v", body, err)
		}
		keys = append(keys, created.Key)
		logs.WriteString(p.out.String())
	}
	p := startServer(t, dir)
	for i, k := range keys {
		if code := rerankWith(t, p.url, k); code != 200 {
			t.Fatalf("key %d lost after the last kill -9 (status %d)", i, code)
		}
	}
	// No secret ever reached the logs or the data directory.
	logs.WriteString(p.out.String())
	for _, k := range keys {
		secret := k[strings.LastIndex(k, "_")+1:]
		if strings.Contains(logs.String(), secret) {
			t.Fatal("an API key secret appears in the log")
		}
		filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
			if err == nil && info.Mode().IsRegular() {
				if b, _ := os.ReadFile(path); bytes.Contains(b, []byte(secret)) {
					t.Fatalf("an API key secret is stored in %s", path)
				}
			}
			return nil
		})
	}
	if strings.Contains(logs.String(), "second-password") || strings.Contains(logs.String(), "first-password") {
		t.Fatal("the admin password appears in the log")
	}
}

// TestKeysCLIWithServerUpAndDown drives `aimind keys` against the store
// directly and through a running server's socket.
func TestKeysCLIWithServerUpAndDown(t *testing.T) {
	dir := t.TempDir()
	cli := func(args ...string) (string, string) {
		t.Helper()
		cmd := exec.Command(binary, append([]string{"keys", "--data-dir", dir}, args...)...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("aimind keys %v: %v\n%s", args, err, errb.String())
		}
		return strings.TrimSpace(out.String()), errb.String()
	}
	offline, _ := cli("create", "--name", "offline", "--expires", "30d")
	if !strings.HasPrefix(offline, "aimind_") {
		t.Fatalf("created %q", offline)
	}
	p := startServer(t, dir)
	if code := rerankWith(t, p.url, offline); code != 200 {
		t.Fatalf("offline-made key: %d", code)
	}
	online, _ := cli("create", "--name", "online", "--models", "tiny")
	if code := rerankWith(t, p.url, online); code != 200 {
		t.Fatalf("online-made key: %d", code)
	}
	list, _ := cli("list")
	if !strings.Contains(list, "offline") || !strings.Contains(list, "online") || strings.Contains(list, online[len("aimind_")+13:]) {
		t.Fatalf("list:\n%s", list)
	}
	id := strings.Split(online, "_")[1]
	cli("revoke", id)
	if code := rerankWith(t, p.url, online); code != 401 {
		t.Fatalf("revoked through the socket, still %d", code)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.cmd.Wait()
	list, _ = cli("list")
	if !strings.Contains(list, "offline") || strings.Contains(list, "online") {
		t.Fatalf("offline list:\n%s", list)
	}
}

func selfSigned(t *testing.T, dir string) (string, string) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	cert, keyf := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyf, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return cert, keyf
}

// TestHTTPS serves over TLS with a certificate made here; the session cookie
// is Secure.
func TestHTTPS(t *testing.T) {
	dir := t.TempDir()
	cert, key := selfSigned(t, t.TempDir())
	p := startServer(t, dir, "--tls-cert-file", cert, "--tls-key-file", key, "--api-key", "headless-key-123")
	pool := x509.NewCertPool()
	pem, _ := os.ReadFile(cert)
	pool.AppendCertsFromPEM(pem)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	code, body, _ := call(t, c, "POST", p.url+"/v1/rerank", `{"query":"q","documents":["a"]}`, map[string]string{"Authorization": "Bearer headless-key-123"})
	if code != 200 {
		t.Fatalf("https rerank: %d %s", code, body)
	}
	_, _, resp := call(t, c, "POST", p.url+"/api/login", `{"password":"first-password"}`, nil)
	var secure bool
	for _, ck := range resp.Cookies() {
		secure = secure || (ck.Name == "aimind_session" && ck.Secure)
	}
	if !secure {
		t.Fatalf("session cookie over HTTPS is not Secure: %v", resp.Header["Set-Cookie"])
	}
}

// TestServeFromHub: `aimind serve --model owner/repo` downloads from the hub
// (a fake one, through HF_ENDPOINT), prints progress, serves; a second start
// works with the hub gone.
func TestServeFromHub(t *testing.T) {
	model, _ := os.ReadFile(testutil.MustModel(t, synth.Tiny()))
	fake := hubtest.New(&hubtest.Repo{ID: "gpustack/bge-reranker-v2-m3-GGUF", Files: map[string][]byte{
		"bge-reranker-v2-m3-Q8_0.gguf": model, "bge-reranker-v2-m3-Q4_K_M.gguf": []byte("not this one"),
	}})
	fake.Delay = 300 * time.Millisecond // two 64 KiB chunks: long enough to be seen downloading
	dir, cache := t.TempDir(), t.TempDir()
	run := func(endpoint string) (*exec.Cmd, *testutil.SyncBuffer, string) {
		port := testutil.FreePort(t)
		cmd := exec.Command(binary, "serve", "--port", fmt.Sprint(port), "--data-dir", dir, "--no-auth", "--threads", "1",
			"--model", "gpustack/bge-reranker-v2-m3-GGUF")
		cmd.Env = append(os.Environ(), "HF_ENDPOINT="+endpoint, "HF_HUB_CACHE="+cache, "HF_TOKEN=hf_test_token")
		out := &testutil.SyncBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd, out, fmt.Sprintf("http://127.0.0.1:%d", port)
	}
	cmd, out, url := run(fake.URL)
	saw503 := false
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		code, body := 0, ""
		if resp, err := http.Post(url+"/v1/rerank", "application/json", strings.NewReader(`{"model":"bge-reranker-v2-m3","query":"q","documents":["a"]}`)); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			code, body = resp.StatusCode, string(b)
		}
		if code == 503 && strings.Contains(body, "download") {
			saw503 = true
		}
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never served: %d %s\n%s", code, body, out.String())
		}
	}
	if !saw503 {
		t.Error("no 503 naming the download while it ran")
	}
	if !strings.Contains(out.String(), "downloading bge-reranker-v2-m3-Q8_0.gguf") || !strings.Contains(out.String(), "picked a file") {
		t.Errorf("no progress lines:\n%s", out.String())
	}
	if fake.Count("cdn-auth") != 0 {
		t.Error("HF_TOKEN crossed the redirect to the CDN host")
	}
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	fake.Close()

	// Offline second start: same data dir and cache, the hub gone.
	_, out, url = run("http://127.0.0.1:1")
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Post(url+"/v1/rerank", "application/json", strings.NewReader(`{"query":"q","documents":["a"]}`)); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("offline restart never served:\n%s", out.String())
		}
	}
}

// TestSIGTERMFinishesAcceptedRequests: requests in flight when SIGTERM
// arrives all complete; then the process exits cleanly.
func TestSIGTERMFinishesAcceptedRequests(t *testing.T) {
	spec := synth.Spec{Layers: 4, Hidden: 256, Heads: 4, FFN: 1024, Positions: 512, Seed: 31}
	port := testutil.FreePort(t)
	cmd := exec.Command(binary, "serve", "--port", fmt.Sprint(port), "--data-dir", t.TempDir(), "--no-auth",
		"--model", testutil.MustModel(t, spec), "--alias", "m")
	out := &testutil.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(30 * time.Millisecond) {
		if resp, err := http.Get(url + "/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready:\n%s", out.String())
		}
	}
	docs := make([]string, 80)
	for i := range docs {
		docs[i] = synth.Text(uint64(i+1), 60)
	}
	b, _ := json.Marshal(map[string]any{"query": "q", "documents": docs})
	codes := make(chan int, 6)
	for i := 0; i < 6; i++ {
		go func() {
			resp, err := http.Post(url+"/v1/rerank", "application/json", bytes.NewReader(b))
			if err != nil {
				codes <- -1
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	// SIGTERM once the server holds all six (its in-flight gauge), not
	// after a guessed delay.
	inFlight := regexp.MustCompile(`(?m)^aimind_scoring_requests_in_flight (\d+)`)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(time.Millisecond) {
		resp, err := http.Get(url + "/metrics")
		if err == nil {
			m, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if g := inFlight.FindSubmatch(m); g != nil && string(g[1]) == "6" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the six requests were never in flight together:\n%s", out.String())
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	for i := 0; i < 6; i++ {
		if c := <-codes; c != 200 {
			t.Fatalf("request %d in flight at SIGTERM ended with %d\n%s", i, c, out.String())
		}
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
}

// TestDataDirOnEverySubcommand: --data-dir works before or after the
// subcommand's name (urfave/cli binds flags to the command they follow).
func TestDataDirOnEverySubcommand(t *testing.T) {
	dir := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(binary, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("aimind %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	run("keys", "create", "--name", "after", "--data-dir", dir)
	run("keys", "--data-dir", dir, "create", "--name", "before")
	for _, args := range [][]string{{"keys", "list", "--data-dir", dir}, {"keys", "--data-dir", dir, "list"}} {
		out := run(args...)
		if !strings.Contains(out, "after") || !strings.Contains(out, "before") {
			t.Fatalf("aimind %v lists:\n%s", args, out)
		}
	}
}
