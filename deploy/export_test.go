package deploy_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aimind/aimind/internal/synth"
	"github.com/aimind/aimind/internal/testutil"
)

// TestKeysExportToFile moves a single server's keys to replicas: `keys
// export --to-file` copies the store's key hashes into a keys file that
// another server (its own, empty store) then accepts.
func TestKeysExportToFile(t *testing.T) {
	model := testutil.MustModel(t, synth.Tiny())
	dataDir := t.TempDir()
	keysFile := filepath.Join(t.TempDir(), "keys.json")
	stdout, stderr, code := runAimind(t, nil, "keys", "create", "--data-dir", dataDir, "--name", "old")
	key := strings.TrimSpace(stdout)
	if code != 0 || !strings.HasPrefix(key, "aimind_") {
		t.Fatalf("keys create: exit %d: %s", code, stderr)
	}

	// While the server runs the API never hands out hashes: export refuses.
	port := testutil.FreePort(t)
	p := start(t, nil, binary, "serve", "--port", fmt.Sprint(port), "--data-dir", dataDir, "--model", model, "--threads", "1")
	waitReady(t, p, fmt.Sprintf("http://127.0.0.1:%d", port), time.Minute)
	if _, stderr, code := runAimind(t, nil, "keys", "export", "--data-dir", dataDir, "--to-file", keysFile); code == 0 || !strings.Contains(stderr, "stop it") {
		t.Fatalf("export with the server up: exit %d: %s", code, stderr)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.waitExit(t, 30*time.Second)

	if _, stderr, code := runAimind(t, nil, "keys", "export", "--data-dir", dataDir, "--to-file", keysFile); code != 0 {
		t.Fatalf("export: exit %d: %s", code, stderr)
	}
	data, err := os.ReadFile(keysFile)
	if err != nil || strings.Contains(string(data), key) || !strings.Contains(string(data), strings.Split(key, "_")[1]) {
		t.Fatalf("the keys file after export (%v):\n%s", err, data)
	}
	// Exporting again replaces the same id instead of adding it twice.
	if _, stderr, code := runAimind(t, nil, "keys", "export", "--data-dir", dataDir, "--to-file", keysFile); code != 0 {
		t.Fatalf("second export: exit %d: %s", code, stderr)
	}

	replica := testutil.FreePort(t)
	r := start(t, nil, binary, "serve", "--port", fmt.Sprint(replica), "--data-dir", t.TempDir(), "--model", model,
		"--keys-file", keysFile, "--threads", "1")
	base := fmt.Sprintf("http://127.0.0.1:%d", replica)
	waitReady(t, r, base, time.Minute)
	if code, body, _, err := rerank(base, key); err != nil || code != http.StatusOK {
		t.Fatalf("the exported key on a replica: %d %v %s", code, err, body)
	}
	wrong := key[:len(key)-1] + "0"
	if strings.HasSuffix(key, "0") {
		wrong = key[:len(key)-1] + "1"
	}
	if code, _, _, _ := rerank(base, wrong); code != http.StatusUnauthorized {
		t.Fatalf("a wrong secret with the exported id got %d", code)
	}
}
