package deploy_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aimind/aimind/hub/hubtest"
	"github.com/aimind/aimind/internal/synth"
	"github.com/aimind/aimind/internal/testutil"
)

// TestPullThenServeOffline: `aimind pull` fills the hub cache from the fake
// hub; with the hub gone, `serve --offline` serves the model from the cache,
// and a model that was never pulled stops startup with the command to run.
func TestPullThenServeOffline(t *testing.T) {
	model, err := os.ReadFile(testutil.MustModel(t, synth.Tiny()))
	if err != nil {
		t.Fatal(err)
	}
	fake := hubtest.New(
		&hubtest.Repo{ID: "acme/tiny-reranker-GGUF", Files: map[string][]byte{"tiny-reranker-F32.gguf": model, "README.md": []byte("# tiny")}},
		&hubtest.Repo{ID: "acme/broken-GGUF", Files: map[string][]byte{"broken-Q8_0.gguf": []byte("GGUF but not really")}},
	)
	defer fake.Close()
	cache := t.TempDir()
	env := []string{"HF_ENDPOINT=" + fake.URL, "HF_HUB_CACHE=" + cache, "HF_TOKEN="}

	stdout, stderr, code := runAimind(t, env, "pull", "acme/tiny-reranker-GGUF")
	path := strings.TrimSpace(stdout)
	if code != 0 || !strings.HasPrefix(path, cache) {
		t.Fatalf("pull: exit %d, path %q\n%s", code, path, stderr)
	}
	if got, err := os.ReadFile(path); err != nil || string(got) != string(model) {
		t.Fatalf("the pulled file differs from the hub's (%v)", err)
	}
	// A file the hub serves that is no usable GGUF fails the pull itself.
	if _, stderr, code := runAimind(t, env, "pull", "acme/broken-GGUF"); code == 0 || !strings.Contains(stderr, "GGUF") {
		t.Fatalf("pull of a broken file: exit %d\n%s", code, stderr)
	}
	// Hostile names never reach the file system.
	if _, stderr, code := runAimind(t, env, "pull", "acme/../../etc"); code == 0 {
		t.Fatalf("pull of a hostile name: exit 0\n%s", stderr)
	}

	fake.Close() // from here on the hub cannot be reached
	port := testutil.FreePort(t)
	p := start(t, env, binary, "serve", "--offline", "--port", fmt.Sprint(port), "--data-dir", t.TempDir(),
		"--model", "acme/tiny-reranker-GGUF", "--no-auth", "--threads", "1")
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitReady(t, p, base, time.Minute)
	code, body, _, err := rerank(base, "")
	if err != nil || code != http.StatusOK || !strings.Contains(body, `"relevance_score"`) {
		t.Fatalf("offline rerank: %d %v %s", code, err, body)
	}

	// Not pulled: startup stops, naming the command that fixes it.
	out := start(t, env, binary, "serve", "--offline", "--port", fmt.Sprint(testutil.FreePort(t)), "--data-dir", t.TempDir(),
		"--model", "acme/never-pulled-GGUF", "--no-auth")
	if code := out.waitExit(t, time.Minute); code == 0 || !strings.Contains(out.out.String(), "aimind pull") {
		t.Fatalf("serve --offline of a model never pulled: exit %d\n%s", code, out.out.String())
	}
	if _, err := os.Stat(filepath.Join(cache, "models--acme--never-pulled-GGUF")); err == nil {
		t.Fatal("offline serve created a cache entry")
	}
}
