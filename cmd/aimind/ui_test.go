package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/aimind/aimind/hub/hubtest"
	"github.com/aimind/aimind/internal/synth"
	"github.com/aimind/aimind/internal/testutil"
)

// browser starts Debian's Chromium headless. Without it the test skips,
// except in CI, where .ci/run installs it and its absence is a failure.
func browser(t *testing.T) (context.Context, context.CancelFunc) {
	t.Helper()
	path := ""
	for _, p := range []string{os.Getenv("AIMIND_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"} {
		if p != "" {
			if _, err := os.Stat(p); err == nil {
				path = p
				break
			}
		}
	}
	if path == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("no Chromium: .ci/run should have installed Debian's chromium")
		}
		t.Skip("no Chromium here (apt-get install chromium)")
	}
	// Chromium may still write its profile while it exits, so the profile is
	// removed after the browser is gone rather than by t.TempDir's cleanup.
	profile, err := os.MkdirTemp("", "aimind-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(profile), chromedp.WindowSize(1280, 900))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 3*time.Minute)
	// Accept confirm() dialogs (stop, delete, revoke).
	chromedp.ListenTarget(ctx, func(ev any) {
		if _, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			go chromedp.Run(ctx, page.HandleJavaScriptDialog(true))
		}
	})
	return ctx, func() {
		cancelT()
		cancelC()
		cancelA()
		for i := 0; i < 20 && os.RemoveAll(profile) != nil; i++ {
			time.Sleep(100 * time.Millisecond)
		}
	}
}

func screenshotDir(t *testing.T) string {
	dir := os.Getenv("AIMIND_SCREENSHOTS")
	if dir == "" {
		// bin/ is ignored by git; AIMIND_SCREENSHOTS=docs/screenshots
		// refreshes the copies committed for reviewers.
		dir = filepath.Join("..", "..", "bin", "screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	var buf []byte
	if err := chromedp.Run(ctx, chromedp.Sleep(150*time.Millisecond), chromedp.FullScreenshot(&buf, 100)); err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(screenshotDir(t), name+".png"), buf, 0o644); err != nil {
		t.Fatal(err)
	}
}

func must(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action) {
	t.Helper()
	if err := chromedp.Run(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// TestWebUI walks GPUStack's guide in a real browser: log in and change the
// password; deploy a model from the (fake) Hugging Face hub and watch it reach
// running; create an API key and call /v1/rerank with it; run the playground
// and compare its ranking with the API's; revoke the key and see the call fail.
func TestWebUI(t *testing.T) {
	ctx, cancel := browser(t)
	defer cancel()
	model, _ := os.ReadFile(testutil.MustModel(t, synth.Tiny()))
	fake := hubtest.New(&hubtest.Repo{ID: "gpustack/bge-reranker-v2-m3-GGUF", Downloads: 12345, Likes: 67, Files: map[string][]byte{
		"bge-reranker-v2-m3-Q8_0.gguf": model, "bge-reranker-v2-m3-Q4_K_M.gguf": model, "bge-reranker-v2-m3-FP16.gguf": model,
	}}, &hubtest.Repo{ID: "someone/bge-other-GGUF", Downloads: 10, Files: map[string][]byte{"x-Q8_0.gguf": model}})
	defer fake.Close()
	fake.Delay = 100 * time.Millisecond
	port := freePort(t)
	cmd := exec.Command(binary, "serve", "--port", fmt.Sprint(port), "--data-dir", t.TempDir(), "--threads", "1",
		"--bootstrap-password", "first-password")
	cmd.Env = append(os.Environ(), "HF_ENDPOINT="+fake.URL, "HF_HUB_CACHE="+t.TempDir())
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(url + "/health"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not start:\n%s", out.String())
		}
	}
	defer func() {
		if t.Failed() {
			t.Logf("server log:\n%s", out.String())
		}
	}()

	// Log in with the bootstrap password; the UI demands a new one.
	must(t, ctx, "open the login page", chromedp.Navigate(url+"/"), chromedp.WaitVisible("#login-password", chromedp.ByID))
	shot(t, ctx, "01-login")
	must(t, ctx, "log in", chromedp.SendKeys("#login-password", "first-password", chromedp.ByID), chromedp.Click("#login-form button", chromedp.ByQuery),
		chromedp.WaitVisible("#pw-new", chromedp.ByID))
	shot(t, ctx, "02-change-password")
	must(t, ctx, "change the password", chromedp.SendKeys("#pw-current", "first-password", chromedp.ByID), chromedp.SendKeys("#pw-new", "second-password", chromedp.ByID),
		chromedp.Click("#password-form button", chromedp.ByQuery), chromedp.WaitVisible("#deploy-open", chromedp.ByID))

	// Deploy from Hugging Face: search, GGUF filter, pick the repo, default file, Save.
	must(t, ctx, "open Deploy Model", chromedp.Click("#deploy-open", chromedp.ByID), chromedp.WaitVisible("#deploy-search", chromedp.ByID),
		chromedp.SendKeys("#deploy-search", "bge-reranker", chromedp.ByID),
		chromedp.WaitVisible(`#deploy-results button[data-repo="gpustack/bge-reranker-v2-m3-GGUF"]`, chromedp.ByQuery))
	var stats string
	must(t, ctx, "read search result", chromedp.Text(`#deploy-results button[data-repo="gpustack/bge-reranker-v2-m3-GGUF"] .stats`, &stats, chromedp.ByQuery))
	if !strings.Contains(stats, "12.3k") || !strings.Contains(stats, "67") {
		t.Fatalf("search result stats %q", stats)
	}
	must(t, ctx, "choose the repo", chromedp.Click(`#deploy-results button[data-repo="gpustack/bge-reranker-v2-m3-GGUF"]`, chromedp.ByQuery),
		chromedp.WaitReady(`#deploy-file option[value="bge-reranker-v2-m3-Q8_0.gguf"]`, chromedp.ByQuery))
	var file, name, estimate string
	must(t, ctx, "read the form", chromedp.Value("#deploy-file", &file, chromedp.ByID), chromedp.Value("#deploy-name", &name, chromedp.ByID),
		chromedp.Text("#deploy-estimate", &estimate, chromedp.ByID))
	if file != "bge-reranker-v2-m3-Q8_0.gguf" || name != "bge-reranker-v2-m3" || !strings.Contains(estimate, "Memory estimate") {
		t.Fatalf("deploy form: file %q name %q estimate %q", file, name, estimate)
	}
	shot(t, ctx, "03-deploy-dialog")
	must(t, ctx, "save", chromedp.Click("#deploy-save", chromedp.ByID),
		chromedp.WaitVisible(`tr[data-model="bge-reranker-v2-m3"]`, chromedp.ByQuery))
	must(t, ctx, "see it downloading", chromedp.WaitVisible(`tr[data-model="bge-reranker-v2-m3"] [data-status="downloading"]`, chromedp.ByQuery))
	shot(t, ctx, "04-models-downloading")
	must(t, ctx, "see it running", chromedp.WaitVisible(`tr[data-model="bge-reranker-v2-m3"] [data-status="running"]`, chromedp.ByQuery))
	shot(t, ctx, "05-models-running")

	// A new API key, shown once, used against /v1/rerank.
	var key string
	must(t, ctx, "create an API key", chromedp.Click("#nav-keys", chromedp.ByID), chromedp.WaitVisible("#key-open", chromedp.ByID),
		chromedp.Click("#key-open", chromedp.ByID), chromedp.WaitVisible("#key-name", chromedp.ByID),
		chromedp.SendKeys("#key-name", "from-the-ui", chromedp.ByID), chromedp.Click("#key-save", chromedp.ByID),
		chromedp.WaitVisible("#key-value", chromedp.ByID), chromedp.Value("#key-value", &key, chromedp.ByID))
	if !strings.HasPrefix(key, "aimind_") {
		t.Fatalf("key %q", key)
	}
	var warn string
	must(t, ctx, "read the warning", chromedp.Text("#key-created .warn", &warn, chromedp.ByQuery))
	if !strings.Contains(warn, "not see it again") {
		t.Fatalf("warning %q", warn)
	}
	shot(t, ctx, "06-new-key")
	must(t, ctx, "close the key dialog", chromedp.Click("#key-done", chromedp.ByID), chromedp.WaitVisible(`#keys-table tr[data-key]`, chromedp.ByQuery))
	shot(t, ctx, "07-keys")
	query := "what does the giant panda eat"
	docs := []string{"the giant panda eats bamboo", "hello world", "fish live in the river", "a black bear in the forest"}
	apiOrder := func(key string) (int, []int) {
		body, _ := json.Marshal(map[string]any{"model": "bge-reranker-v2-m3", "query": query, "documents": docs})
		req, _ := http.NewRequest("POST", url+"/v1/rerank", strings.NewReader(string(body)))
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var r struct{ Results []struct{ Index int } }
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("answer is not JSON: %v: %s", err, b)
		}
		var idx []int
		for _, x := range r.Results {
			idx = append(idx, x.Index)
		}
		return resp.StatusCode, idx
	}
	code, want := apiOrder(key)
	if code != 200 || len(want) != 4 {
		t.Fatalf("/v1/rerank with the UI's key: %d %v", code, want)
	}

	// The playground ranks like the API.
	must(t, ctx, "run the playground", chromedp.Click("#nav-playground", chromedp.ByID), chromedp.WaitReady(`#play-model option[value="bge-reranker-v2-m3"]`, chromedp.ByQuery),
		chromedp.SendKeys("#play-query", query, chromedp.ByID), chromedp.SendKeys("#play-docs", strings.Join(docs, "\n"), chromedp.ByID),
		chromedp.Click("#play-run", chromedp.ByID), chromedp.WaitVisible("#play-results li", chromedp.ByQuery))
	var got []int
	must(t, ctx, "read the ranking", chromedp.Evaluate(`[...document.querySelectorAll("#play-results li")].map(li => +li.dataset.index)`, &got))
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("playground order %v, API order %v", got, want)
	}
	var curl string
	must(t, ctx, "copy as curl", chromedp.Click("#play-curl", chromedp.ByID), chromedp.WaitVisible("#play-curl-text", chromedp.ByID), chromedp.Text("#play-curl-text", &curl, chromedp.ByID))
	if !strings.Contains(curl, "/v1/rerank") || !strings.Contains(curl, "YOUR_API_KEY") || !strings.Contains(curl, "giant panda") || strings.Contains(curl, key) {
		t.Fatalf("curl %q", curl)
	}
	shot(t, ctx, "08-playground")

	// Revoke the key in the UI; the API refuses it at once.
	must(t, ctx, "revoke", chromedp.Click("#nav-keys", chromedp.ByID), chromedp.WaitVisible(`#keys-table tr[data-key] button.danger`, chromedp.ByQuery),
		chromedp.Click(`#keys-table tr[data-key] button.danger`, chromedp.ByQuery), chromedp.WaitVisible("#keys-empty", chromedp.ByID))
	if code, _ := apiOrder(key); code != 401 {
		t.Fatalf("revoked key answered %d", code)
	}
	// API errors show as messages: a deploy of a missing local file.
	must(t, ctx, "deploy a bad path", chromedp.Click("#nav-models", chromedp.ByID), chromedp.WaitVisible("#deploy-open", chromedp.ByID),
		chromedp.Click("#deploy-open", chromedp.ByID), chromedp.SetValue("#deploy-source", "local", chromedp.ByID),
		chromedp.Evaluate(`document.querySelector("#deploy-source").dispatchEvent(new Event("change"))`, nil),
		chromedp.SendKeys("#deploy-path", "/nonexistent/model-Q8_0.gguf", chromedp.ByID), chromedp.Click("#deploy-save", chromedp.ByID))
	var errText string
	must(t, ctx, "read the error", chromedp.Poll(`document.querySelector("#deploy-error").textContent`, &errText, chromedp.WithPollingTimeout(10*time.Second)))
	if !strings.Contains(errText, "cannot read model file") {
		t.Fatalf("error message %q", errText)
	}
	// Readable on a phone.
	must(t, ctx, "phone width", chromedp.Click("#deploy-cancel", chromedp.ByID), chromedp.EmulateViewport(390, 844))
	shot(t, ctx, "09-models-phone")
	// Nothing secret in local storage, and the session cookie is HttpOnly.
	var storage string
	must(t, ctx, "read storage", chromedp.Evaluate(`JSON.stringify(localStorage) + JSON.stringify(sessionStorage) + document.cookie`, &storage))
	if storage != "{}{}" {
		t.Fatalf("secrets visible to scripts: %q", storage)
	}
}
