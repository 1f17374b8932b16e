package main_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

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
	// bin/ is ignored by git; AIMIND_SCREENSHOTS=docs/screenshots refreshes
	// the copies committed for reviewers. A relative path is from the
	// repository root (the test runs in cmd/aimind).
	dir := os.Getenv("AIMIND_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join("bin", "screenshots")
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join("..", "..", dir)
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

// shotViewport captures what the viewport shows (for an open dialog).
func shotViewport(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	var buf []byte
	if err := chromedp.Run(ctx, chromedp.Sleep(150*time.Millisecond), chromedp.CaptureScreenshot(&buf)); err != nil {
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

// startUIServer runs the aimind binary against the fake hub with the
// bootstrap password "first-password" and returns its URL, its Hugging Face
// cache directory and its output (logged when the test fails).
func startUIServer(t *testing.T, fake *hubtest.Hub, args ...string) (string, string, *testutil.SyncBuffer) {
	t.Helper()
	port := testutil.FreePort(t)
	cache := t.TempDir()
	cmd := exec.Command(binary, append([]string{"serve", "--port", fmt.Sprint(port), "--data-dir", t.TempDir(), "--threads", "1",
		"--bootstrap-password", "first-password"}, args...)...)
	cmd.Env = append(os.Environ(), "HF_ENDPOINT="+fake.URL, "MODELSCOPE_DOMAIN="+fake.URL, "HF_HUB_CACHE="+cache)
	out := &testutil.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("server log:\n%s", out.String())
		}
	})
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
	return url, cache, out
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
	url, _, _ := startUIServer(t, fake)
	// Log in with the bootstrap password; the UI demands a new one.
	must(t, ctx, "open the login page", chromedp.Navigate(url+"/"), chromedp.WaitVisible("#login-password", chromedp.ByID))
	shot(t, ctx, "01-login")
	must(t, ctx, "log in", chromedp.SendKeys("#login-password", "first-password", chromedp.ByID), chromedp.Click("#login-form button", chromedp.ByQuery),
		chromedp.WaitVisible("#pw-new", chromedp.ByID))
	shot(t, ctx, "02-change-password")
	must(t, ctx, "change the password", chromedp.SendKeys("#pw-current", "first-password", chromedp.ByID), chromedp.SendKeys("#pw-new", "second-password", chromedp.ByID),
		chromedp.SendKeys("#pw-confirm", "second-password", chromedp.ByID),
		chromedp.Click("#password-form button", chromedp.ByQuery), chromedp.WaitVisible("#deploy-open", chromedp.ByID))

	// Deploy from Hugging Face: search, GGUF filter, pick the repo, default file, Save.
	must(t, ctx, "open Deploy Model", chromedp.Click("#deploy-open", chromedp.ByID), chromedp.WaitVisible("#deploy-search", chromedp.ByID),
		chromedp.SendKeys("#deploy-search", "bge-reranker", chromedp.ByID))
	// The suggestions shown on opening are replaced by the answer to what was typed.
	waitJS(t, ctx, "search results", `document.querySelector("#deploy-results-title").textContent.includes('matching "bge-reranker"') &&
		!!document.querySelector('#deploy-results button[data-repo="gpustack/bge-reranker-v2-m3-GGUF"]')`)
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
		clearInput("#play-query"), clearInput("#play-docs"), chromedp.SetValue("#play-topn", "0", chromedp.ByID), // the guide's example is filled in
		chromedp.SendKeys("#play-query", query, chromedp.ByID), chromedp.SendKeys("#play-docs", strings.Join(docs, "\n"), chromedp.ByID),
		chromedp.Click("#play-run", chromedp.ByID), chromedp.WaitVisible("#play-results li", chromedp.ByQuery))
	var got []int
	must(t, ctx, "read the ranking", chromedp.Evaluate(`[...document.querySelectorAll("#play-results li")].map(li => +li.dataset.index)`, &got))
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("playground order %v, API order %v", got, want)
	}
	var curl string
	must(t, ctx, "view code", chromedp.Click("#play-code", chromedp.ByID), chromedp.WaitVisible("#play-code-text", chromedp.ByID), chromedp.Text("#play-code-text", &curl, chromedp.ByID))
	if !strings.Contains(curl, "/v1/rerank") || !strings.Contains(curl, "YOUR_API_KEY") || !strings.Contains(curl, "giant panda") || strings.Contains(curl, key) {
		t.Fatalf("curl %q", curl)
	}
	shot(t, ctx, "08-playground")

	// Revoke the key in the UI; the API refuses it at once.
	must(t, ctx, "revoke", chromedp.Click("#nav-keys", chromedp.ByID), chromedp.WaitVisible(`#keys-table tr[data-key] button.danger`, chromedp.ByQuery),
		chromedp.Click(`#keys-table tr[data-key] button.danger`, chromedp.ByQuery), chromedp.WaitVisible("#confirm-ok", chromedp.ByID),
		chromedp.Click("#confirm-ok", chromedp.ByID), chromedp.WaitVisible("#keys-empty", chromedp.ByID))
	if code, _ := apiOrder(key); code != 401 {
		t.Fatalf("revoked key answered %d", code)
	}
	// API errors show as messages: a deploy of a missing local file.
	must(t, ctx, "deploy a bad path", chromedp.Click("#nav-models", chromedp.ByID), chromedp.WaitVisible("#deploy-open", chromedp.ByID),
		chromedp.Click("#deploy-open", chromedp.ByID), chromedp.SetValue("#deploy-source", "local", chromedp.ByID),
		chromedp.Evaluate(`document.querySelector("#deploy-source").dispatchEvent(new Event("change"))`, nil),
		chromedp.SendKeys("#deploy-path", "/nonexistent/model-Q8_0.gguf", chromedp.ByID), chromedp.Click("#deploy-save", chromedp.ByID))
	var errText string
	must(t, ctx, "read the error", chromedp.Poll(`document.querySelector("#deploy-path-problem").textContent`, &errText, chromedp.WithPollingTimeout(10*time.Second)))
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

// pageFetch calls the server from the logged-in page (its session cookie,
// its origin) and returns the status and body.
func pageFetch(t *testing.T, ctx context.Context, method, path, body string) (int, string) {
	t.Helper()
	b := "undefined"
	if body != "" {
		b = fmt.Sprintf("%q", body)
	}
	js := fmt.Sprintf(`fetch(%q, {method: %q, headers: {"Content-Type": "application/json"}, body: %s})
		.then(async (r) => JSON.stringify({status: r.status, body: await r.text()}))`, path, method, b)
	var raw string
	must(t, ctx, method+" "+path, chromedp.Evaluate(js, &raw, awaitPromise))
	var r struct {
		Status int
		Body   string
	}
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r.Status, r.Body
}

// clearInput empties a text field (chromedp.SetValue refuses "").
func clearInput(sel string) chromedp.Action {
	return chromedp.Evaluate(fmt.Sprintf(`document.querySelector(%q).value = ""; true`, sel), nil)
}

func awaitPromise(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }

// waitJS polls a JavaScript condition in the page until it is true.
func waitJS(t *testing.T, ctx context.Context, what, cond string) {
	t.Helper()
	var ok bool
	safe := "(() => { try { return !!(" + cond + "); } catch { return false; } })()" // elements may not exist yet
	if err := chromedp.Run(ctx, chromedp.Poll(safe, &ok, chromedp.WithPollingTimeout(30*time.Second), chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		var state string
		chromedp.Run(ctx, chromedp.Evaluate(`document.title + " | " + (document.querySelector("#flash")||{}).textContent + " | " + document.querySelector("main").innerText.slice(0, 2000)`, &state))
		t.Fatalf("%s: %v (waited for %s)\npage: %s", what, err, cond, state)
	}
}

func evalJS[T any](t *testing.T, ctx context.Context, what, js string) T {
	t.Helper()
	var v T
	must(t, ctx, what, chromedp.Evaluate(js, &v))
	return v
}

// deployAPI deploys through the admin API from the page.
func deployAPI(t *testing.T, ctx context.Context, req string) {
	t.Helper()
	if code, body := pageFetch(t, ctx, "POST", "/api/models", req); code != 202 {
		t.Fatalf("deploy %s: %d %s", req, code, body)
	}
}

// noSideScroll checks that the page cannot pan sideways at the current width.
const noSideScroll = `document.documentElement.scrollWidth <= window.innerWidth && document.body.scrollWidth <= window.innerWidth`

// buttonsInside: every row button lies inside the viewport, left to right.
const buttonsInside = `[...document.querySelectorAll("#models-table tbody button")].every((b) => {
	const r = b.getBoundingClientRect(); return r.width > 0 && r.left >= 0 && r.right <= window.innerWidth; })`

// TestWebUINewUserFindings replays, in Chromium, what a new user following
// GPUStack's guide ran into (issue 15), one step per finding: no navigation
// while logged out, wording, suggestions before typing, Enter in search,
// focus across refreshes, deleting a model whose file another model uses,
// the Models table at 1280×800 with a long error, phone width, the
// playground's score bars, and the API key list.
func TestWebUINewUserFindings(t *testing.T) {
	ctx, cancel := browser(t)
	defer cancel()
	model, _ := os.ReadFile(testutil.MustModel(t, synth.Tiny()))
	big := synth.Tiny()
	big.Seed, big.ExtraWords = 3, 16000 // a few MB: its download spans several refreshes
	slow, _ := os.ReadFile(testutil.MustModel(t, big))
	qwen3Path := filepath.Join(t.TempDir(), "qwen3.gguf")
	if err := synth.WriteQwen3(qwen3Path, synth.Qwen3Tiny()); err != nil {
		t.Fatal(err)
	}
	qwen3, _ := os.ReadFile(qwen3Path)
	const longRepo = "some-organisation-with-a-rather-long-name/bge-reranker-v2-m3-multilingual-long-context-experimental-GGUF"
	fake := hubtest.New(
		&hubtest.Repo{ID: "gpustack/bge-reranker-v2-m3-GGUF", Downloads: 12345, Likes: 67, Files: map[string][]byte{"bge-reranker-v2-m3-Q8_0.gguf": model}},
		&hubtest.Repo{ID: "BAAI/bge-reranker-v2-m3", Downloads: 99999, Files: map[string][]byte{"model.safetensors": []byte("weights"), "config.json": []byte("{}")}},
		&hubtest.Repo{ID: longRepo, Downloads: 300, Files: map[string][]byte{"bge-reranker-v2-m3-multilingual-long-context-experimental-Q8_0.gguf": model}},
		&hubtest.Repo{ID: "broken/bge-reranker-bad-hash-GGUF", Downloads: 20, Files: map[string][]byte{"bad-Q8_0.gguf": model},
			Hashes: map[string]string{"bad-Q8_0.gguf": strings.Repeat("ab", 32)}},
		&hubtest.Repo{ID: "slow/bge-reranker-large-GGUF", Downloads: 5000, Files: map[string][]byte{"large-Q8_0.gguf": slow}},
		// A decoder reranker is suggested as well (issue 23); server's
		// TestQwen3DeployFromTheHub deploys one.
		&hubtest.Repo{ID: "Mungert/Qwen3-Reranker-0.6B-GGUF", Downloads: 8000, Files: map[string][]byte{"Qwen3-Reranker-0.6B-f16.gguf": qwen3}},
	)
	defer fake.Close()
	fake.Delay = 100 * time.Millisecond // per 64 KiB
	url, cache, _ := startUIServer(t, fake)
	// The steps share the browser and the server: after a failure the rest
	// would only time out.
	step := func(name string, f func(t *testing.T)) {
		if !t.Failed() {
			t.Run(name, f)
		}
	}

	step("5 no navigation while logged out", func(t *testing.T) {
		must(t, ctx, "open the login page", chromedp.Navigate(url+"/"), chromedp.WaitVisible("#login-password", chromedp.ByID))
		hidden := `getComputedStyle(document.querySelector("#top")).display === "none" && document.querySelector("#logout").getClientRects().length === 0`
		if !evalJS[bool](t, ctx, "nav on the login page", hidden) {
			t.Fatal("the navigation bar shows on the login page")
		}
		if title := evalJS[string](t, ctx, "title", "document.title"); title != "Log in · aimind" {
			t.Fatalf("login page title %q", title)
		}
		must(t, ctx, "log in", chromedp.SendKeys("#login-password", "first-password", chromedp.ByID), chromedp.Click("#login-form button", chromedp.ByQuery),
			chromedp.WaitVisible("#pw-new", chromedp.ByID))
		if !evalJS[bool](t, ctx, "nav on the password page", hidden) {
			t.Fatal("the navigation bar shows on the password page")
		}
	})

	step("9 wording of the password change and the favicon", func(t *testing.T) {
		must(t, ctx, "reuse the current password", chromedp.SendKeys("#pw-current", "first-password", chromedp.ByID),
			chromedp.SendKeys("#pw-new", "first-password", chromedp.ByID), chromedp.SendKeys("#pw-confirm", "first-password", chromedp.ByID),
			chromedp.Click("#password-form button", chromedp.ByQuery))
		waitJS(t, ctx, "the refusal", `!document.querySelector("#flash").hidden`)
		if msg := evalJS[string](t, ctx, "flash", `document.querySelector("#flash").textContent`); !strings.Contains(msg, "current one") || strings.Contains(msg, "short") {
			t.Fatalf("reusing the password says %q", msg)
		}
		must(t, ctx, "choose a new password", clearInput("#pw-new"), chromedp.SendKeys("#pw-new", "second-password", chromedp.ByID),
			clearInput("#pw-confirm"), chromedp.SendKeys("#pw-confirm", "second-password", chromedp.ByID),
			chromedp.Click("#password-form button", chromedp.ByQuery), chromedp.WaitVisible("#deploy-open", chromedp.ByID))
		// The confirmation is still there on the page that follows.
		if msg := evalJS[string](t, ctx, "flash", `document.querySelector("#flash").hidden ? "" : document.querySelector("#flash").textContent`); msg != "Password changed." {
			t.Fatalf("after the change the page says %q", msg)
		}
		if title := evalJS[string](t, ctx, "title", "document.title"); title != "Models · aimind" {
			t.Fatalf("models page title %q", title)
		}
		code, body := pageFetch(t, ctx, "GET", "/favicon.ico", "")
		if code != 200 || body == "" || !evalJS[bool](t, ctx, "icon link", `!!document.querySelector('link[rel="icon"][href="/favicon.ico"]')`) {
			t.Fatalf("favicon: %d", code)
		}
	})

	step("10 suggestions before typing", func(t *testing.T) {
		must(t, ctx, "open Deploy Model", chromedp.Click("#deploy-open", chromedp.ByID))
		waitJS(t, ctx, "suggestions", `document.querySelectorAll("#deploy-results button[data-repo]").length > 0`)
		got := evalJS[[]string](t, ctx, "suggestions", `[...document.querySelectorAll("#deploy-results button[data-repo]")].map((b) => b.dataset.repo)`)
		want := []string{"gpustack/bge-reranker-v2-m3-GGUF", "Mungert/Qwen3-Reranker-0.6B-GGUF", "slow/bge-reranker-large-GGUF", longRepo, "broken/bge-reranker-bad-hash-GGUF"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("before typing the dialog lists %v, want the GGUF reranker repos most downloaded first %v", got, want)
		}
		if title := evalJS[string](t, ctx, "title", `document.querySelector("#deploy-results-title").textContent`); !strings.Contains(title, "most downloaded first") {
			t.Fatalf("suggestions titled %q", title)
		}
		// ModelScope has no search: the dialog says what to do instead, and
		// Enter in Repository reads the repo's files (it does not deploy).
		must(t, ctx, "ModelScope", chromedp.SetValue("#deploy-source", "modelscope", chromedp.ByID),
			chromedp.Evaluate(`document.querySelector("#deploy-source").dispatchEvent(new Event("change")); true`, nil))
		waitJS(t, ctx, "the no-search hint", `document.querySelector("#deploy-results-title").textContent.includes("ModelScope offers no search")`)
		must(t, ctx, "a repo id and Enter", chromedp.SendKeys("#deploy-repo", "gpustack/bge-reranker-v2-m3-GGUF"+kb.Enter, chromedp.ByID))
		waitJS(t, ctx, "its files", `document.querySelector("#deploy-file").value === "bge-reranker-v2-m3-Q8_0.gguf" && !document.querySelector("#deploy-save").disabled`)
		if n := evalJS[string](t, ctx, "submits", `document.querySelector("#deploy-form").dataset.submits || "0"`); n != "0" {
			t.Fatalf("Enter in Repository submitted the deploy form %s times", n)
		}
		must(t, ctx, "back to Hugging Face", chromedp.SetValue("#deploy-source", "huggingface", chromedp.ByID),
			chromedp.Evaluate(`document.querySelector("#deploy-source").dispatchEvent(new Event("change")); true`, nil))
		waitJS(t, ctx, "suggestions again", `document.querySelector("#deploy-results-title").textContent.includes("Reranker repositories on Hugging Face") &&
			!!document.querySelector('#deploy-results button[data-repo="gpustack/bge-reranker-v2-m3-GGUF"]')`)
	})

	step("4 Enter in search searches and does not deploy", func(t *testing.T) {
		must(t, ctx, "choose a repo", chromedp.Click(`#deploy-results button[data-repo="gpustack/bge-reranker-v2-m3-GGUF"]`, chromedp.ByQuery),
			chromedp.WaitReady(`#deploy-file option[value="bge-reranker-v2-m3-Q8_0.gguf"]`, chromedp.ByQuery))
		waitJS(t, ctx, "Save enabled", `!document.querySelector("#deploy-save").disabled`)
		// (two results: neither is chosen for the user, the earlier choice stays)
		must(t, ctx, "type and press Enter in search", chromedp.SendKeys("#deploy-search", "reranker-v2"+kb.Enter, chromedp.ByID))
		waitJS(t, ctx, "the search ran", `document.querySelector("#deploy-results-title").textContent.includes('matching "reranker-v2"')`)
		if n := evalJS[string](t, ctx, "submits", `document.querySelector("#deploy-form").dataset.submits || "0"`); n != "0" {
			t.Fatalf("Enter in search submitted the deploy form %s times", n)
		}
		if !evalJS[bool](t, ctx, "dialog", `document.querySelector("#deploy-dialog").open`) {
			t.Fatal("Enter in search closed the dialog")
		}
		if _, body := pageFetch(t, ctx, "GET", "/api/models", ""); strings.Contains(body, `"name"`) {
			t.Fatalf("Enter in search deployed: %s", body)
		}
		// Save deploys.
		must(t, ctx, "save", chromedp.Click("#deploy-save", chromedp.ByID), chromedp.WaitVisible(`tr[data-model="bge-reranker-v2-m3"]`, chromedp.ByQuery))
		// A repo without GGUF: Save stays disabled and says why, also when the name is taken.
		must(t, ctx, "choose a repo without GGUF", chromedp.Click("#deploy-open", chromedp.ByID), chromedp.WaitVisible("#deploy-search", chromedp.ByID),
			chromedp.Click("#deploy-gguf", chromedp.ByID), chromedp.SendKeys("#deploy-search", "BAAI"+kb.Enter, chromedp.ByID))
		waitJS(t, ctx, "the repo is listed", `document.querySelector("#deploy-results-title").textContent.includes('matching "BAAI"') &&
			!!document.querySelector('#deploy-results button[data-repo="BAAI/bge-reranker-v2-m3"]')`)
		must(t, ctx, "choose it", chromedp.Click(`#deploy-results button[data-repo="BAAI/bge-reranker-v2-m3"]`, chromedp.ByQuery))
		waitJS(t, ctx, "the no-GGUF hint", `document.querySelector("#deploy-file-hint").textContent.includes("no GGUF file")`)
		if !evalJS[bool](t, ctx, "hints", `document.querySelector("#deploy-save").disabled && document.querySelector("#deploy-file-hint").checkVisibility() &&
			document.querySelector("#deploy-name-hint").checkVisibility() && document.querySelector("#deploy-name-hint").textContent.includes("exists already")`) {
			t.Fatal("a repo without GGUF and a taken name: Save enabled or a hint hidden")
		}
		shot(t, ctx, "11-deploy-no-gguf")
		must(t, ctx, "cancel", chromedp.Click("#deploy-cancel", chromedp.ByID))
	})

	step("3 focus kept across refreshes", func(t *testing.T) {
		deployAPI(t, ctx, `{"source":"huggingface","repo":"slow/bge-reranker-large-GGUF","name":"slow-model"}`)
		waitJS(t, ctx, "downloading", `!!document.querySelector('tr[data-model="slow-model"] [data-status="downloading"]') && !!document.querySelector('tr[data-model="slow-model"] progress')`)
		must(t, ctx, "focus Stop", chromedp.Focus(`tr[data-model="slow-model"] button[data-role="primary"]`, chromedp.ByQuery))
		must(t, ctx, "mark it", chromedp.Evaluate(`window.probe = document.activeElement;
			window.probeRefreshes = +document.body.dataset.modelsRefreshes;
			window.probeProgress = document.querySelector('tr[data-model="slow-model"] progress').value; true`, nil))
		waitJS(t, ctx, "two refreshes that changed the row", `+document.body.dataset.modelsRefreshes >= window.probeRefreshes + 2 &&
			document.querySelector('tr[data-model="slow-model"] progress') && document.querySelector('tr[data-model="slow-model"] progress').value !== window.probeProgress`)
		if !evalJS[bool](t, ctx, "focus", `document.activeElement === window.probe && window.probe.isConnected`) {
			t.Fatal("the refresh took the focus away")
		}
		if l := evalJS[string](t, ctx, "label", `document.activeElement.getAttribute("aria-label")`); l != "Stop slow-model" {
			t.Fatalf("row button labelled %q", l)
		}
		must(t, ctx, "Tab", chromedp.KeyEvent(kb.Tab))
		if l := evalJS[string](t, ctx, "label", `document.activeElement.getAttribute("aria-label")`); l != "Logs of slow-model" {
			t.Fatalf("Tab went to %q", l)
		}
		waitJS(t, ctx, "running, announced", `document.querySelector("#live").textContent.includes("slow-model is running")`)
		if l := evalJS[string](t, ctx, "label", `document.activeElement.getAttribute("aria-label")`); l != "Logs of slow-model" {
			t.Fatalf("after the status change the focus is on %q", l)
		}
	})

	step("1 delete keeps a file another model uses", func(t *testing.T) {
		waitJS(t, ctx, "first running", `!!document.querySelector('tr[data-model="bge-reranker-v2-m3"] [data-status="running"]')`)
		deployAPI(t, ctx, `{"source":"huggingface","repo":"gpustack/bge-reranker-v2-m3-GGUF","file":"bge-reranker-v2-m3-Q8_0.gguf","name":"bge-copy"}`)
		waitJS(t, ctx, "copy running", `!!document.querySelector('tr[data-model="bge-copy"] [data-status="running"]')`)
		sum := sha256.Sum256(model)
		blob := filepath.Join(cache, "models--gpustack--bge-reranker-v2-m3-GGUF", "blobs", hex.EncodeToString(sum[:]))
		if _, err := os.Stat(blob); err != nil {
			t.Fatal(err)
		}
		must(t, ctx, "delete the copy", chromedp.Click(`tr[data-model="bge-copy"] button[data-role="delete"]`, chromedp.ByQuery),
			chromedp.WaitVisible("#confirm-ok", chromedp.ByID), chromedp.Click("#confirm-ok", chromedp.ByID))
		waitJS(t, ctx, "the copy gone", `!document.querySelector('tr[data-model="bge-copy"]')`)
		if msg := evalJS[string](t, ctx, "flash", `document.querySelector("#flash").textContent`); !strings.Contains(msg, `"bge-reranker-v2-m3" uses it too`) {
			t.Fatalf("after the delete the page says %q", msg)
		}
		if _, err := os.Stat(blob); err != nil {
			t.Fatalf("deleting the copy removed the first model's file: %v", err)
		}
		// The focused Delete button left with its row; a neighbour has the focus.
		if f := evalJS[string](t, ctx, "focus", `document.activeElement.getAttribute("aria-label") || document.activeElement.id || document.activeElement.tagName`); !strings.HasPrefix(f, "Stop ") && !strings.HasPrefix(f, "Delete ") && f != "deploy-open" {
			t.Fatalf("after the delete the focus is on %q", f)
		}
		code, body := pageFetch(t, ctx, "POST", "/api/rerank", `{"model":"bge-reranker-v2-m3","query":"q","documents":["a","b"]}`)
		if code != 200 {
			t.Fatalf("the first model after the copy's delete: %d %s", code, body)
		}
	})

	step("2 Models fits 1280x800 with a long error and seven models", func(t *testing.T) {
		deployAPI(t, ctx, `{"source":"huggingface","repo":"broken/bge-reranker-bad-hash-GGUF","name":"broken"}`)
		deployAPI(t, ctx, `{"source":"huggingface","repo":"`+longRepo+`"}`)
		deployAPI(t, ctx, `{"source":"local","path":"`+testutil.MustModel(t, synth.Tiny())+`","name":"local-model-with-a-long-name-for-the-table"}`)
		deployAPI(t, ctx, `{"source":"huggingface","repo":"gpustack/bge-reranker-v2-m3-GGUF","name":"bge-reranker-v2-m3-second-copy"}`)
		deployAPI(t, ctx, `{"source":"huggingface","repo":"gpustack/bge-reranker-v2-m3-GGUF","name":"bge-reranker-v2-m3-third-copy"}`)
		must(t, ctx, "1280x800", chromedp.EmulateViewport(1280, 800))
		waitJS(t, ctx, "seven models settled", `document.querySelectorAll("#models-table tbody tr").length === 7 &&
			document.querySelectorAll('#models-table [data-status="running"]').length === 6 && !!document.querySelector('tr[data-model="broken"] [data-status="error"]')`)
		if !evalJS[bool](t, ctx, "no side scroll", noSideScroll) {
			t.Fatal("the Models page scrolls sideways at 1280x800")
		}
		if !evalJS[bool](t, ctx, "buttons", buttonsInside) {
			t.Fatal("a row's buttons are outside the viewport at 1280x800")
		}
		if !evalJS[bool](t, ctx, "names", `[...document.querySelectorAll("#models-table td.name-cell")].every((c) => c.getBoundingClientRect().left >= 0)`) {
			t.Fatal("the Name column is off screen")
		}
		status := evalJS[string](t, ctx, "error", `document.querySelector('tr[data-model="broken"] td[data-label="Status"]').textContent`)
		if !regexp.MustCompile(`[0-9a-f]{64}.*[0-9a-f]{64}`).MatchString(status) {
			t.Fatalf("the error with both hashes is not there: %q", status)
		}
		if l := evalJS[string](t, ctx, "retry", `(b => b.textContent + "|" + b.getAttribute("aria-label"))(document.querySelector('tr[data-model="broken"] button[data-role="primary"]'))`); l != "Retry|Retry broken" {
			t.Fatalf("the failed model's button is %q", l)
		}
		shot(t, ctx, "10-models-1280x800")
		// A suspect self-check (a field newer servers add to the record) is
		// shown as a badge with its reason in words; a passed one quietly.
		cell := evalJS[string](t, ctx, "self-check", `(() => {
			const s = (c) => { const d = document.createElement("div"); d.append(...statusParts({name: "x", status: "running", self_check: c})); return d; };
			const suspect = s({status: "suspect", reason: "scores differ from the reference by 0.4"});
			const long = s({status: "suspect", reason: "x".repeat(300)});
			return [suspect.querySelector('[data-self-check="suspect"]').textContent, suspect.querySelector(".reason").textContent,
				s({status: "passed", reason: ""}).textContent, s(undefined).textContent, s({status: "off"}).textContent,
				long.querySelector("details .reason").textContent.length].join("|"); })()`)
		if cell != "suspect|Self-check: scores differ from the reference by 0.4|running checked|running|running|312" {
			t.Fatalf("self-check rendering: %q", cell)
		}
		// Where each running model's weights are: the CPU in this build.
		if d := evalJS[string](t, ctx, "device", `document.querySelector('tr[data-model="local-model-with-a-long-name-for-the-table"] td[data-label="Memory"] .sub').textContent`); d != "CPU" {
			t.Fatalf("the Memory column names the device %q", d)
		}
	})

	step("6 phone width", func(t *testing.T) {
		must(t, ctx, "390x844", chromedp.EmulateViewport(390, 844))
		waitJS(t, ctx, "layout", `window.innerWidth === 390`)
		if !evalJS[bool](t, ctx, "no side scroll", noSideScroll) {
			t.Fatal("the Models page pans sideways at 390 px")
		}
		if !evalJS[bool](t, ctx, "buttons", buttonsInside) {
			t.Fatal("a card's buttons are off screen at 390 px")
		}
		if !evalJS[bool](t, ctx, "status", `[...document.querySelectorAll("#models-table [data-status]")].every((s) => s.getBoundingClientRect().right <= window.innerWidth)`) {
			t.Fatal("a status is off screen at 390 px")
		}
		// A card per model: its cells stacked, not squeezed side by side.
		if !evalJS[bool](t, ctx, "cards", `[...document.querySelectorAll("#models-table tbody tr")].every((tr) => {
			const name = tr.querySelector("td.name-cell").getBoundingClientRect(), status = tr.querySelector('td[data-label="Status"]').getBoundingClientRect();
			return status.top >= name.bottom - 1 && status.width > window.innerWidth * 0.7; })`) {
			t.Fatal("at 390 px the models are not a list of cards")
		}
		shot(t, ctx, "12-models-phone-cards")
		must(t, ctx, "deploy dialog on a phone", chromedp.Click("#deploy-open", chromedp.ByID))
		waitJS(t, ctx, "suggestions", `!!document.querySelector('#deploy-results button[data-repo="`+longRepo+`"]')`)
		must(t, ctx, "choose the long repo", chromedp.Click(`#deploy-results button[data-repo="`+longRepo+`"]`, chromedp.ByQuery))
		waitJS(t, ctx, "files", `document.querySelector("#deploy-file").options.length === 1`)
		inside := `(() => { const d = document.querySelector("#deploy-dialog").getBoundingClientRect();
			return [...document.querySelectorAll("#deploy-dialog input, #deploy-dialog select, #deploy-dialog button")].filter((e) => e.getClientRects().length)
				.every((e) => { const r = e.getBoundingClientRect(); return r.left >= d.left && r.right <= d.right && r.right <= window.innerWidth; })
				&& document.querySelector("#deploy-form").scrollWidth <= document.querySelector("#deploy-form").clientWidth; })()`
		if !evalJS[bool](t, ctx, "dialog", inside) {
			t.Fatal("the Deploy dialog cuts its fields off at 390 px")
		}
		shotViewport(t, ctx, "13-deploy-phone")
		must(t, ctx, "cancel", chromedp.Click("#deploy-cancel", chromedp.ByID))
		for _, page := range []string{"keys", "playground"} {
			must(t, ctx, page, chromedp.Click("#nav-"+page, chromedp.ByID), chromedp.WaitVisible("main h1", chromedp.ByQuery))
			if !evalJS[bool](t, ctx, "no side scroll", noSideScroll) {
				t.Fatalf("the %s page pans sideways at 390 px", page)
			}
		}
		must(t, ctx, "back to the desktop size", chromedp.EmulateViewport(1280, 900))
	})

	step("7 playground bars from sigmoid", func(t *testing.T) {
		docs := []string{"the giant panda eats bamboo", "hello world", "fish live in the river", "a black bear in the forest"}
		must(t, ctx, "run the playground", chromedp.Click("#nav-playground", chromedp.ByID), chromedp.WaitReady(`#play-model option[value="bge-reranker-v2-m3"]`, chromedp.ByQuery),
			chromedp.SetValue("#play-model", "bge-reranker-v2-m3", chromedp.ByID),
			clearInput("#play-query"), clearInput("#play-docs"), chromedp.SetValue("#play-topn", "0", chromedp.ByID), // the guide's example is filled in
			chromedp.SendKeys("#play-query", "what does the giant panda eat", chromedp.ByID), chromedp.SendKeys("#play-docs", strings.Join(docs, "\n"), chromedp.ByID),
			chromedp.Click("#play-run", chromedp.ByID), chromedp.WaitVisible("#play-results li", chromedp.ByQuery))
		// The calibrated scores as the API computes them.
		body, _ := json.Marshal(map[string]any{"model": "bge-reranker-v2-m3", "query": "what does the giant panda eat", "documents": docs, "normalize": true})
		code, ans := pageFetch(t, ctx, "POST", "/api/rerank", string(body))
		var r struct {
			Results []struct {
				Index          int
				RelevanceScore float64 `json:"relevance_score"`
				RawScore       float64 `json:"raw_score"`
			}
		}
		if err := json.Unmarshal([]byte(ans), &r); code != 200 || err != nil {
			t.Fatalf("normalize: %d %v %s", code, err, ans)
		}
		type bar struct {
			Index        int
			Width, Logit float64
		}
		check := func(n int) {
			t.Helper()
			bars := evalJS[[]bar](t, ctx, "bars", `[...document.querySelectorAll("#play-results li")].map((li) => ({
				Index: +li.dataset.index, Logit: +li.dataset.logit,
				Width: li.querySelector(".barfill").getBoundingClientRect().width / li.querySelector(".barwrap").getBoundingClientRect().width }))`)
			if len(bars) != n {
				t.Fatalf("%d results, want %d", len(bars), n)
			}
			for _, b := range bars {
				for _, x := range r.Results {
					if x.Index == b.Index && (math.Abs(b.Width-x.RelevanceScore) > 0.01 || math.Abs(b.Logit-x.RawScore) > 1e-4) {
						t.Fatalf("document %d: bar %.3f logit %.4f, the API's sigmoid(logit) %.3f and logit %.4f", b.Index, b.Width, b.Logit, x.RelevanceScore, x.RawScore)
					}
				}
			}
		}
		check(4)
		if !evalJS[bool](t, ctx, "in view", `(r => r.top >= 0 && r.top < window.innerHeight)(document.querySelector("#play-out").getBoundingClientRect())`) {
			t.Fatal("the results were not scrolled into view")
		}
		shot(t, ctx, "14-playground-scores")
		// The API's options: normalize and top_n.
		// Ticking normalize runs the request again (with results on screen).
		must(t, ctx, "top 2 and normalize", chromedp.SetValue("#play-topn", "2", chromedp.ByID), chromedp.Click("#play-normalize", chromedp.ByID))
		waitJS(t, ctx, "normalized", `document.querySelector("#play-out").dataset.normalize === "true" && document.querySelectorAll("#play-results li").length === 2`)
		check(2)
		var curl string
		must(t, ctx, "view code", chromedp.Click("#play-code", chromedp.ByID), chromedp.WaitVisible("#play-code-text", chromedp.ByID), chromedp.Text("#play-code-text", &curl, chromedp.ByID))
		if !strings.Contains(curl, `"normalize":true`) || !strings.Contains(curl, `"top_n":2`) {
			t.Fatalf("curl %q", curl)
		}
	})

	step("8 API keys", func(t *testing.T) {
		var expiring struct{ Key string }
		_, b := pageFetch(t, ctx, "POST", "/api/keys", `{"name":"alpha","expires_in":"1s"}`)
		json.Unmarshal([]byte(b), &expiring)
		var ids []string
		for _, name := range []string{"beta", "beta"} {
			var k struct{ Data struct{ ID string } }
			_, b := pageFetch(t, ctx, "POST", "/api/keys", `{"name":"`+name+`"}`)
			json.Unmarshal([]byte(b), &k)
			ids = append(ids, k.Data.ID)
		}
		// Wait until the server refuses the short-lived key as expired.
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			req, _ := http.NewRequest("GET", url+"/v1/models", nil)
			req.Header.Set("Authorization", "Bearer "+expiring.Key)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode == 401 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the 1 s key still answers %d", resp.StatusCode)
			}
		}
		must(t, ctx, "keys page", chromedp.Click("#nav-keys", chromedp.ByID))
		waitJS(t, ctx, "three keys", `document.querySelectorAll("#keys-table tr[data-key]").length === 3`)
		order := evalJS[[]string](t, ctx, "order", `[...document.querySelectorAll("#keys-table tr[data-key] strong")].map((s) => s.textContent)`)
		if fmt.Sprint(order) != "[beta beta alpha]" {
			t.Fatalf("keys listed %v, want newest first", order)
		}
		if !evalJS[bool](t, ctx, "expired", `(tr => tr.dataset.expired === "true" && tr.textContent.includes("expired"))(document.querySelectorAll("#keys-table tr[data-key]")[2])`) {
			t.Fatal("the expired key is not marked")
		}
		if shown := evalJS[string](t, ctx, "ids", `document.querySelector("#keys-table tbody").textContent`); !strings.Contains(shown, ids[0]) || !strings.Contains(shown, ids[1]) {
			t.Fatalf("the ids of the two beta keys are not shown: %q", shown)
		}
		must(t, ctx, "new key dialog", chromedp.Click("#key-open", chromedp.ByID), chromedp.WaitVisible("#key-name", chromedp.ByID))
		if rules := evalJS[string](t, ctx, "rules", `document.querySelector("#key-name-rules").checkVisibility() ? document.querySelector("#key-name-rules").textContent : ""`); !strings.Contains(rules, "1 to 64 letters") {
			t.Fatalf("name rules before typing: %q", rules)
		}
		must(t, ctx, "a taken name", chromedp.SendKeys("#key-name", "beta", chromedp.ByID))
		if hint := evalJS[string](t, ctx, "hint", `document.querySelector("#key-name-hint").textContent`); !strings.Contains(hint, ids[0]) || !strings.Contains(hint, ids[1]) || evalJS[bool](t, ctx, "save", `document.querySelector("#key-save").disabled`) {
			t.Fatalf("duplicate name: hint %q (Save must stay enabled)", hint)
		}
		must(t, ctx, "a bad name", clearInput("#key-name"), chromedp.SendKeys("#key-name", "bad/name", chromedp.ByID))
		if !evalJS[bool](t, ctx, "bad", `document.querySelector("#key-save").disabled && document.querySelector("#key-name-hint").textContent.includes("cannot be used")`) {
			t.Fatal("a name the server refuses is not flagged while typing")
		}
		must(t, ctx, "create gamma", clearInput("#key-name"), chromedp.SendKeys("#key-name", "gamma", chromedp.ByID),
			chromedp.Click("#key-save", chromedp.ByID), chromedp.WaitVisible("#key-value", chromedp.ByID), chromedp.KeyEvent(kb.Escape))
		waitJS(t, ctx, "dialog closed", `!document.querySelector("#key-dialog").open`)
		waitJS(t, ctx, "list refreshed after Escape", `[...document.querySelectorAll("#keys-table tr[data-key] strong")].some((s) => s.textContent === "gamma")`)
		shot(t, ctx, "15-keys")
	})

	step("9 playground with every model stopped; deleting a local model keeps its file", func(t *testing.T) {
		local := testutil.MustModel(t, synth.Tiny())
		must(t, ctx, "models page", chromedp.Click("#nav-models", chromedp.ByID))
		waitJS(t, ctx, "rows", `!!document.querySelector('tr[data-model="local-model-with-a-long-name-for-the-table"]')`)
		must(t, ctx, "delete the local model", chromedp.Click(`tr[data-model="local-model-with-a-long-name-for-the-table"] button[data-role="delete"]`, chromedp.ByQuery),
			chromedp.WaitVisible("#confirm-ok", chromedp.ByID), chromedp.Click("#confirm-ok", chromedp.ByID))
		waitJS(t, ctx, "gone", `!document.querySelector('tr[data-model="local-model-with-a-long-name-for-the-table"]')`)
		if msg := evalJS[string](t, ctx, "flash", `document.querySelector("#flash").textContent`); !strings.Contains(msg, local+" is kept") {
			t.Fatalf("deleting a local model says %q", msg)
		}
		if _, err := os.Stat(local); err != nil {
			t.Fatalf("the local file: %v", err)
		}
		_, list := pageFetch(t, ctx, "GET", "/api/models", "")
		var ms struct {
			Data []struct{ Name, Status string }
		}
		json.Unmarshal([]byte(list), &ms)
		for _, m := range ms.Data {
			if m.Status != "error" {
				pageFetch(t, ctx, "POST", "/api/models/"+m.Name+"/stop", "")
			}
		}
		must(t, ctx, "playground", chromedp.Click("#nav-playground", chromedp.ByID))
		waitJS(t, ctx, "message", `!document.querySelector("#play-empty").hidden`)
		msg := evalJS[string](t, ctx, "message", `document.querySelector("#play-empty").textContent`)
		if !strings.Contains(msg, "No model is running") || !strings.Contains(msg, `"bge-reranker-v2-m3"`) || !strings.Contains(msg, "stopped") || strings.Contains(msg, "deploy one") {
			t.Fatalf("with every model stopped the playground says %q", msg)
		}
		if !evalJS[bool](t, ctx, "link", `!!document.querySelector('#play-empty a[href="#/models"]') && document.querySelector("#play-run").disabled`) {
			t.Fatal("no link to Models, or Run enabled")
		}
		if title := evalJS[string](t, ctx, "title", "document.title"); title != "Playground · aimind" {
			t.Fatalf("playground title %q", title)
		}
	})
}
