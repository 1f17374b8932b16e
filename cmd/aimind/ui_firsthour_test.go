package main_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/aimind/aimind/hub/hubtest"
	"github.com/aimind/aimind/internal/synth"
	"github.com/aimind/aimind/internal/testutil"
)

// TestWebUIFirstHour replays, in Chromium, the web-UI findings of a new
// user's first hour (issue 21), one step per finding: the first login,
// deploying by typing the guide's repository id, quiet polling in the log,
// per-model logs, the playground (suspect warning, calibrated scores, the
// guide's example, code in three languages, each model's endpoint), the
// phone width, deleting with an in-page dialog that can keep the file, and
// failures explained next to their field, with the hub down too.
func TestWebUIFirstHour(t *testing.T) {
	ctx, cancel := browser(t)
	defer cancel()
	// browser() accepts native dialogs so that older flows do not hang;
	// this test counts them: the UI must open none.
	var native atomic.Int32
	chromedp.ListenTarget(ctx, func(ev any) {
		if _, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			native.Add(1)
		}
	})
	modelPath := testutil.MustModel(t, synth.Tiny())
	model, _ := os.ReadFile(modelPath)
	const guideRepo = "gpustack/bge-reranker-v2-m3-GGUF"
	fake := hubtest.New(
		&hubtest.Repo{ID: guideRepo, Downloads: 12345, Likes: 67, Files: map[string][]byte{"bge-reranker-v2-m3-Q8_0.gguf": model, "bge-reranker-v2-m3-Q4_K_M.gguf": model}},
		&hubtest.Repo{ID: "someone/bge-reranker-base-GGUF", Downloads: 50, Files: map[string][]byte{"base-Q8_0.gguf": model}},
		&hubtest.Repo{ID: "broken/bad-hash-GGUF", Downloads: 3, Files: map[string][]byte{"bad-Q8_0.gguf": model},
			Hashes: map[string]string{"bad-Q8_0.gguf": strings.Repeat("ab", 32)}},
		&hubtest.Repo{ID: "cut/cut-GGUF", Downloads: 2, Files: map[string][]byte{"cut-Q8_0.gguf": model}},
		&hubtest.Repo{ID: "keep/kept-GGUF", Downloads: 1, Files: map[string][]byte{"kept-Q8_0.gguf": model}},
		&hubtest.Repo{ID: "drop/dropped-GGUF", Downloads: 1, Files: map[string][]byte{"dropped-Q8_0.gguf": model}},
	)
	defer fake.Close()
	url, cache, out := startUIServer(t, fake)
	step := func(name string, f func(t *testing.T)) {
		if !t.Failed() {
			t.Run(name, f)
		}
	}
	blob := func(repo string) string {
		sum := sha256.Sum256(model)
		return filepath.Join(cache, "models--"+strings.ReplaceAll(repo, "/", "--"), "blobs", hex.EncodeToString(sum[:]))
	}
	active := func() string {
		return evalJS[string](t, ctx, "focus", `document.activeElement ? document.activeElement.id : ""`)
	}

	step("8 first login: focus, and a confirmed new password", func(t *testing.T) {
		must(t, ctx, "open", chromedp.Navigate(url+"/"), chromedp.WaitVisible("#login-password", chromedp.ByID))
		if f := active(); f != "login-password" {
			t.Fatalf("the login page starts with the focus on %q", f)
		}
		must(t, ctx, "log in", chromedp.SendKeys("#login-password", "first-password", chromedp.ByID), chromedp.Click("#login-form button", chromedp.ByQuery),
			chromedp.WaitVisible("#pw-confirm", chromedp.ByID))
		if f := active(); f != "pw-current" {
			t.Fatalf("the password page starts with the focus on %q", f)
		}
		must(t, ctx, "mismatch", chromedp.SendKeys("#pw-current", "first-password", chromedp.ByID), chromedp.SendKeys("#pw-new", "second-password", chromedp.ByID),
			chromedp.SendKeys("#pw-confirm", "second-passwort", chromedp.ByID), chromedp.Click("#password-form button", chromedp.ByQuery))
		waitJS(t, ctx, "the mismatch is said", `document.querySelector("#pw-confirm-hint").textContent.includes("differ")`)
		if code, body := pageFetch(t, ctx, "GET", "/api/me", ""); code != 200 || !strings.Contains(body, `"must_change_password":true`) {
			t.Fatalf("after a mismatch the password changed anyway: %d %s", code, body)
		}
		if f := active(); f != "pw-confirm" {
			t.Fatalf("after the mismatch the focus is on %q", f)
		}
		must(t, ctx, "confirm", clearInput("#pw-confirm"), chromedp.SendKeys("#pw-confirm", "second-password", chromedp.ByID),
			chromedp.Click("#password-form button", chromedp.ByQuery), chromedp.WaitVisible("#deploy-open", chromedp.ByID))
	})

	step("1 typing the repository id selects it and enables Save", func(t *testing.T) {
		must(t, ctx, "open Deploy Model", chromedp.Click("#deploy-open", chromedp.ByID), chromedp.WaitVisible("#deploy-search", chromedp.ByID))
		if !evalJS[bool](t, ctx, "save hint", `document.querySelector("#deploy-save").disabled && document.querySelector("#deploy-save-hint").textContent.includes("Save needs a repository")`) {
			t.Fatal("with nothing chosen Save is enabled, or it does not say what it waits for")
		}
		// A search with one result selects it.
		must(t, ctx, "a search with one result", chromedp.SendKeys("#deploy-search", "bge-reranker-base", chromedp.ByID))
		waitJS(t, ctx, "the only result chosen", `document.querySelector("#deploy-repo").value === "someone/bge-reranker-base-GGUF" &&
			document.querySelector("#deploy-file").value === "base-Q8_0.gguf" && !document.querySelector("#deploy-save").disabled`)
		// The guide's step: type the id, keep the defaults.
		must(t, ctx, "type the guide's repo", clearInput("#deploy-search"), chromedp.SendKeys("#deploy-search", guideRepo, chromedp.ByID))
		waitJS(t, ctx, "the exact match chosen", `document.querySelector("#deploy-repo").value === "`+guideRepo+`" &&
			document.querySelector("#deploy-file").value === "bge-reranker-v2-m3-Q8_0.gguf" && document.querySelector("#deploy-name").value === "bge-reranker-v2-m3" &&
			!document.querySelector("#deploy-save").disabled && document.querySelector('#deploy-results button[aria-pressed="true"]').dataset.repo === "`+guideRepo+`"`)
		shot(t, ctx, "16-deploy-typed-repo")
		must(t, ctx, "save", chromedp.Click("#deploy-save", chromedp.ByID), chromedp.WaitVisible(`tr[data-model="bge-reranker-v2-m3"]`, chromedp.ByQuery))
		waitJS(t, ctx, "running", `!!document.querySelector('tr[data-model="bge-reranker-v2-m3"] [data-status="running"]')`)
	})

	step("7 successful polls are logged at debug level", func(t *testing.T) {
		waitJS(t, ctx, "refreshes", `+document.body.dataset.modelsRefreshes >= 3`)
		info := regexp.MustCompile(`level=INFO msg=request .*method=(\w+) route=(\S+) status=(\d+)`)
		gets, posts := 0, 0
		for _, m := range info.FindAllStringSubmatch(out.String(), -1) {
			switch {
			case m[1] == "GET" && strings.HasPrefix(m[2], "/api/") && !strings.HasPrefix(m[2], "/api/hub") && m[3] < "400": // a failure (the first /api/me: 401) stays at INFO
				gets++
			case m[1] == "POST" && m[2] == "/api/models":
				posts++
			}
		}
		if gets != 0 || posts != 1 {
			t.Fatalf("INFO request lines: %d polling GETs (want 0), %d deploys (want 1)", gets, posts)
		}
	})

	step("11 a model's logs from the Models page", func(t *testing.T) {
		must(t, ctx, "open its logs", chromedp.Click(`tr[data-model="bge-reranker-v2-m3"] button[data-role="logs"]`, chromedp.ByQuery))
		waitJS(t, ctx, "logs shown", `document.querySelector("#logs-dialog").open && document.querySelectorAll("#logs-list li").length >= 4`)
		text := evalJS[string](t, ctx, "logs", `document.querySelector("#logs-list").innerText`)
		for _, want := range []string{"downloading", "bge-reranker-v2-m3-Q8_0.gguf", "downloaded and verified", "loading", "self-check", "model running"} {
			if !strings.Contains(text, want) {
				t.Errorf("the logs lack %q:\n%s", want, text)
			}
		}
		if code, body := pageFetch(t, ctx, "GET", "/api/models/bge-reranker-v2-m3/logs", ""); code != 200 || !strings.Contains(body, `"message":"model running"`) {
			t.Fatalf("logs API: %d %s", code, body)
		}
		if code, _ := pageFetch(t, ctx, "GET", "/api/models/nothing-here/logs", ""); code != 404 {
			t.Fatalf("logs of an unknown model: %d", code)
		}
		shotViewport(t, ctx, "17-model-logs")
		must(t, ctx, "close", chromedp.Click("#logs-close", chromedp.ByID))
		waitJS(t, ctx, "closed", `!document.querySelector("#logs-dialog").open`)
	})

	step("5 endpoint on the Models page", func(t *testing.T) {
		if ep := evalJS[string](t, ctx, "endpoint", `document.querySelector('tr[data-model="bge-reranker-v2-m3"] [data-endpoint]').dataset.endpoint`); ep != url+"/v1/rerank" {
			t.Fatalf("the Models page gives the endpoint %q, want %q", ep, url+"/v1/rerank")
		}
		if h := evalJS[string](t, ctx, "hint", `document.querySelector("#models-endpoint").textContent`); !strings.Contains(h, "POST "+url+"/v1/rerank") {
			t.Fatalf("the Models page says %q", h)
		}
	})

	step("5 playground: the guide's example, suspect warning, calibrated scores, code", func(t *testing.T) {
		must(t, ctx, "playground", chromedp.Click("#nav-playground", chromedp.ByID), chromedp.WaitReady(`#play-model option[value="bge-reranker-v2-m3"]`, chromedp.ByQuery))
		form := evalJS[[]string](t, ctx, "form", `[document.querySelector("#play-query").value, document.querySelector("#play-docs").value, document.querySelector("#play-topn").value]`)
		if form[0] != "什么是熊猫？" || form[1] != "你好\n它是一种熊\n大熊猫（Ailuropoda melanoleuca），有时被称为熊猫或熊猫熊，是中国特有的熊科动物。" || form[2] != "3" {
			t.Fatalf("the playground starts with %q", form)
		}
		// The warning follows the model's self-check as the API reports it.
		_, list := pageFetch(t, ctx, "GET", "/api/models", "")
		var ms struct {
			Data []struct {
				Name      string
				SelfCheck *struct{ Status, Reason string } `json:"self_check"`
			}
		}
		json.Unmarshal([]byte(list), &ms)
		suspect := false
		for _, m := range ms.Data {
			if m.Name == "bge-reranker-v2-m3" && m.SelfCheck != nil && m.SelfCheck.Status == "suspect" {
				suspect = true
			}
		}
		if !suspect {
			t.Fatalf("the synthetic model was expected to fail the guide's known answers: %s", list)
		}
		if msg := evalJS[string](t, ctx, "warning", `document.querySelector("#play-suspect").hidden ? "" : document.querySelector("#play-suspect").textContent`); !strings.Contains(msg, "suspect") {
			t.Fatalf("a suspect model in the playground: warning %q", msg)
		}
		body := `{"model":"bge-reranker-v2-m3","query":"什么是熊猫？","documents":["你好","它是一种熊","大熊猫（Ailuropoda melanoleuca），有时被称为熊猫或熊猫熊，是中国特有的熊科动物。"],"top_n":3`
		scores := map[int]float64{} // the API's scores by document, calibrated last
		apiFirst := func(normalize bool) float64 {
			b := body + "}"
			if normalize {
				b = body + `,"normalize":true}`
			}
			code, ans := pageFetch(t, ctx, "POST", "/api/rerank", b)
			var r struct {
				Results []struct {
					Index          int
					RelevanceScore float64 `json:"relevance_score"`
				}
			}
			if err := json.Unmarshal([]byte(ans), &r); code != 200 || err != nil || len(r.Results) != 3 {
				t.Fatalf("rerank: %d %v %s", code, err, ans)
			}
			for _, x := range r.Results {
				scores[x.Index] = x.RelevanceScore
			}
			return r.Results[0].RelevanceScore
		}
		must(t, ctx, "run", chromedp.Click("#play-run", chromedp.ByID), chromedp.WaitVisible("#play-results li", chromedp.ByQuery))
		shown := func() string {
			return evalJS[string](t, ctx, "first", `document.querySelector("#play-results li .rel").textContent`)
		}
		raw := shown()
		if want := fmt.Sprintf("relevance_score %.4f", apiFirst(false)); raw != want {
			t.Fatalf("raw: the page shows %q, the API answers %q", raw, want)
		}
		must(t, ctx, "calibrated scores", chromedp.Click("#play-normalize", chromedp.ByID))
		waitJS(t, ctx, "shown again", `document.querySelector("#play-out").dataset.normalize === "true"`)
		calibrated := shown()
		if want := fmt.Sprintf("relevance_score %.3f", apiFirst(true)); calibrated != want || calibrated == raw {
			t.Fatalf("calibrated: the page shows %q (before %q), the API answers %q", calibrated, raw, want)
		}
		if e := evalJS[string](t, ctx, "explain", `document.querySelector("#play-explain").textContent`); !strings.Contains(e, "sigmoid(logit), from 0 to 1") {
			t.Fatalf("calibrated explanation %q", e)
		}
		shot(t, ctx, "18-playground-calibrated")
		// View code: the same request in curl, Python and Node.js, to this server.
		must(t, ctx, "view code", chromedp.Click("#play-code", chromedp.ByID), chromedp.WaitVisible("#play-code-text", chromedp.ByID))
		code := map[string]string{}
		for _, lang := range []string{"curl", "python", "node"} {
			must(t, ctx, lang, chromedp.Click(`#play-code-panel .tab[data-lang="`+lang+`"]`, chromedp.ByQuery))
			code[lang] = evalJS[string](t, ctx, "code", `document.querySelector("#play-code-text").textContent`)
			if !strings.Contains(code[lang], url+"/v1/rerank") || !strings.Contains(code[lang], "什么是熊猫") || !strings.Contains(code[lang], "YOUR_API_KEY") {
				t.Fatalf("%s code:\n%s", lang, code[lang])
			}
		}
		shot(t, ctx, "19-playground-code")
		// The code runs: with a real key it ranks like the API.
		var k struct{ Key string }
		_, kb := pageFetch(t, ctx, "POST", "/api/keys", `{"name":"code"}`)
		json.Unmarshal([]byte(kb), &k)
		run := func(name string, cmd *exec.Cmd) {
			if cmd.Err != nil { // the program is not installed here
				t.Logf("%s: %v, not run", name, cmd.Err)
				return
			}
			o, err := cmd.CombinedOutput()
			if err != nil {
				if name == "python" && strings.Contains(string(o), "No module named 'requests'") {
					t.Logf("python: no requests module here, not run")
					return
				}
				t.Fatalf("%s: %v\n%s", name, err, o)
			}
			// Each document's score as the API gives it (two documents of
			// the synthetic model tie, so their order is not compared).
			lines := strings.Split(strings.TrimSpace(string(o)), "\n")
			for _, line := range lines {
				var i int
				var v float64
				if _, err := fmt.Sscan(line, &i, &v); err != nil || math.Abs(v-scores[i]) > 1e-4 {
					t.Fatalf("%s printed %q, the API scores %v", name, o, scores)
				}
			}
			if len(lines) != 3 {
				t.Fatalf("%s printed %q, want 3 results", name, o)
			}
		}
		dir := t.TempDir()
		py, js := filepath.Join(dir, "rerank.py"), filepath.Join(dir, "rerank.mjs")
		os.WriteFile(py, []byte(strings.ReplaceAll(code["python"], "YOUR_API_KEY", k.Key)), 0o600)
		os.WriteFile(js, []byte(strings.ReplaceAll(code["node"], "YOUR_API_KEY", k.Key)), 0o600)
		run("python", exec.Command("python3", py))
		run("node", exec.Command("node", js))
		curl := strings.ReplaceAll(strings.ReplaceAll(code["curl"], "YOUR_API_KEY", k.Key), "\\\n", " ")
		if _, err := exec.LookPath("curl"); err == nil {
			o, err := exec.Command("sh", "-c", curl).Output()
			var r struct {
				Results []struct {
					Index          int
					RelevanceScore float64 `json:"relevance_score"`
				}
			}
			if err != nil || json.Unmarshal(o, &r) != nil || len(r.Results) != 3 {
				t.Fatalf("curl: %v %s", err, o)
			}
			for _, x := range r.Results {
				if math.Abs(x.RelevanceScore-scores[x.Index]) > 1e-4 {
					t.Fatalf("curl answered %s, the API scores %v", o, scores)
				}
			}
		}
	})

	step("9 phone width: one-line header, the normalize label as text", func(t *testing.T) {
		must(t, ctx, "390x844", chromedp.EmulateViewport(390, 844))
		waitJS(t, ctx, "layout", `window.innerWidth === 390`)
		oneLine := `(() => { const h = document.querySelector("#top"); const items = [h.querySelector(".brand"), ...h.querySelectorAll("nav a"), h.querySelector("#logout")];
			const mid = (e) => { const r = e.getBoundingClientRect(); return (r.top + r.bottom) / 2; };
			return items.every((e) => Math.abs(mid(e) - mid(items[0])) < 4 && e.getBoundingClientRect().right <= window.innerWidth)
				&& items.every((e, i) => i === 0 || e.getBoundingClientRect().left >= items[i - 1].getBoundingClientRect().right); })()`
		if !evalJS[bool](t, ctx, "header", oneLine) {
			t.Fatal("at 390 px the header wraps or its items overlap")
		}
		// The label's text flows as one paragraph: within a line, no gap wider
		// than a space between its pieces (flex columns leave wide ones).
		flows := `(() => { const l = document.querySelector("#play-normalize").closest("label"); const r = document.createRange();
			r.setStartAfter(document.querySelector("#play-normalize")); r.setEndAfter(l.lastChild);
			const rs = [...r.getClientRects()].filter((x) => x.width > 0).sort((a, b) => a.top - b.top || a.left - b.left);
			for (let i = 1; i < rs.length; i++) if (Math.abs(rs[i].top - rs[i - 1].top) < 3 && rs[i].left - rs[i - 1].right > 12) return false;
			return rs.length > 0; })()`
		if !evalJS[bool](t, ctx, "label", flows) {
			t.Fatal("at 390 px the normalize label's text is split into columns")
		}
		shot(t, ctx, "20-playground-phone")
		must(t, ctx, "models", chromedp.Click("#nav-models", chromedp.ByID), chromedp.WaitVisible(`tr[data-model="bge-reranker-v2-m3"]`, chromedp.ByQuery))
		if !evalJS[bool](t, ctx, "header", oneLine) {
			t.Fatal("at 390 px the Models page's header wraps")
		}
		must(t, ctx, "back to the desktop size", chromedp.EmulateViewport(1280, 900))
	})

	step("10 delete asks in the page and can keep the file", func(t *testing.T) {
		deployAPI(t, ctx, `{"source":"huggingface","repo":"keep/kept-GGUF","name":"kept"}`)
		deployAPI(t, ctx, `{"source":"huggingface","repo":"drop/dropped-GGUF","name":"dropped"}`)
		deployAPI(t, ctx, `{"source":"local","path":"`+modelPath+`","name":"local-one"}`)
		waitJS(t, ctx, "running", `["kept", "dropped", "local-one"].every((n) => !!document.querySelector('tr[data-model="' + n + '"] [data-status="running"]'))`)
		must(t, ctx, "delete kept", chromedp.Click(`tr[data-model="kept"] button[data-role="delete"]`, chromedp.ByQuery))
		waitJS(t, ctx, "the dialog", `document.querySelector("#confirm-dialog").open && document.activeElement.id === "confirm-cancel"`)
		if l := evalJS[string](t, ctx, "keep", `document.querySelector("#confirm-keep-row").hidden ? "" : document.querySelector("#confirm-keep-label").textContent`); !strings.Contains(l, "Keep the downloaded file") {
			t.Fatalf("the delete dialog offers %q", l)
		}
		shotViewport(t, ctx, "21-delete-dialog")
		must(t, ctx, "keep it", chromedp.Click("#confirm-keep", chromedp.ByID), chromedp.Click("#confirm-ok", chromedp.ByID))
		waitJS(t, ctx, "gone", `!document.querySelector('tr[data-model="kept"]')`)
		if msg := evalJS[string](t, ctx, "flash", `document.querySelector("#flash").textContent`); !strings.Contains(msg, "kept") {
			t.Fatalf("after a delete that keeps the file: %q", msg)
		}
		if _, err := os.Stat(blob("keep/kept-GGUF")); err != nil {
			t.Fatalf("the kept file: %v", err)
		}
		must(t, ctx, "delete dropped", chromedp.Click(`tr[data-model="dropped"] button[data-role="delete"]`, chromedp.ByQuery))
		waitJS(t, ctx, "the dialog", `document.querySelector("#confirm-dialog").open`)
		must(t, ctx, "remove it", chromedp.Click("#confirm-ok", chromedp.ByID))
		waitJS(t, ctx, "gone", `!document.querySelector('tr[data-model="dropped"]')`)
		if _, err := os.Stat(blob("drop/dropped-GGUF")); !os.IsNotExist(err) {
			t.Fatalf("the file of a delete without keep: %v", err)
		}
		// Cancel keeps the model; a local file has no keep box (it is always kept).
		must(t, ctx, "delete the local one", chromedp.Click(`tr[data-model="local-one"] button[data-role="delete"]`, chromedp.ByQuery))
		waitJS(t, ctx, "the dialog", `document.querySelector("#confirm-dialog").open`)
		if !evalJS[bool](t, ctx, "local", `document.querySelector("#confirm-keep-row").hidden && document.querySelector("#confirm-text").textContent.includes("never removes a local file")`) {
			t.Fatal("the local model's delete dialog")
		}
		must(t, ctx, "cancel", chromedp.Click("#confirm-cancel", chromedp.ByID))
		waitJS(t, ctx, "closed", `!document.querySelector("#confirm-dialog").open`)
		if !evalJS[bool](t, ctx, "still there", `!!document.querySelector('tr[data-model="local-one"]')`) {
			t.Fatal("Cancel deleted the model")
		}
		// Stop asks in the page too.
		must(t, ctx, "stop", chromedp.Click(`tr[data-model="local-one"] button[data-role="primary"]`, chromedp.ByQuery))
		waitJS(t, ctx, "the dialog", `document.querySelector("#confirm-dialog").open && document.querySelector("#confirm-ok").textContent === "Stop"`)
		must(t, ctx, "stop it", chromedp.Click("#confirm-ok", chromedp.ByID))
		waitJS(t, ctx, "stopped", `!!document.querySelector('tr[data-model="local-one"] [data-status="stopped"]')`)
		if n := native.Load(); n != 0 {
			t.Fatalf("the UI opened %d native dialogs", n)
		}
	})

	step("3 failures explained next to their field", func(t *testing.T) {
		// A download whose bytes are wrong, and one cut short: the Models page
		// says what happened and what to do, the raw error folded.
		deployAPI(t, ctx, `{"source":"huggingface","repo":"broken/bad-hash-GGUF","name":"broken"}`)
		waitJS(t, ctx, "failed", `!!document.querySelector('tr[data-model="broken"] .problem[data-problem="damaged"]')`)
		p := evalJS[[]string](t, ctx, "problem", `(p => [p.querySelector(".what").textContent, p.querySelector(".fix").textContent, String(p.querySelector("details").open), p.querySelector("details code").textContent])(document.querySelector('tr[data-model="broken"] .problem'))`)
		if !strings.Contains(p[0], "checksum") || !strings.Contains(p[1], "Retry") || p[2] != "false" || !regexp.MustCompile(`[0-9a-f]{64}`).MatchString(p[3]) {
			t.Fatalf("a damaged download is shown as %q", p)
		}
		fake.CutAfter = 20000
		deployAPI(t, ctx, `{"source":"huggingface","repo":"cut/cut-GGUF","name":"cut"}`)
		waitJS(t, ctx, "cut", `!!document.querySelector('tr[data-model="cut"] .problem[data-problem="incomplete"]')`)
		if w := evalJS[string](t, ctx, "cut", `document.querySelector('tr[data-model="cut"] .problem').textContent`); !strings.Contains(w, "stopped at") || !strings.Contains(w, "resumes") {
			t.Fatalf("a cut download is shown as %q", w)
		}
		must(t, ctx, "retry", chromedp.Click(`tr[data-model="cut"] button[data-role="primary"]`, chromedp.ByQuery))
		waitJS(t, ctx, "resumed and running", `!!document.querySelector('tr[data-model="cut"] [data-status="running"]')`)
		shot(t, ctx, "22-models-problems")

		// A local path that is not there: under Path.
		must(t, ctx, "a missing local file", chromedp.Click("#deploy-open", chromedp.ByID), chromedp.SetValue("#deploy-source", "local", chromedp.ByID),
			chromedp.Evaluate(`document.querySelector("#deploy-source").dispatchEvent(new Event("change")); true`, nil),
			chromedp.SendKeys("#deploy-path", "/nonexistent/model-Q8_0.gguf", chromedp.ByID), chromedp.Click("#deploy-save", chromedp.ByID))
		waitJS(t, ctx, "under Path", `document.querySelector("#deploy-path-problem").textContent.includes("no file at this path")`)
		if d := evalJS[string](t, ctx, "detail", `document.querySelector("#deploy-path-problem details code").textContent`); !strings.Contains(d, "cannot read model file") {
			t.Fatalf("the folded detail %q", d)
		}
		must(t, ctx, "cancel", chromedp.Click("#deploy-cancel", chromedp.ByID))

		// The hub goes down: a repository in the local cache still lists its
		// files; another says what is wrong and what to do, under Repository.
		fake.Close()
		must(t, ctx, "open Deploy Model", chromedp.Click("#deploy-open", chromedp.ByID))
		waitJS(t, ctx, "search fails, explained", `document.querySelector("#deploy-search-problem").dataset.kind === "unreachable"`)
		must(t, ctx, "type the cached repo", chromedp.SendKeys("#deploy-search", guideRepo, chromedp.ByID))
		waitJS(t, ctx, "files from the cache", `document.querySelector("#deploy-file").value === "bge-reranker-v2-m3-Q8_0.gguf" &&
			document.querySelector("#deploy-repo-problem").textContent.includes("local cache")`)
		must(t, ctx, "an unknown repo", clearInput("#deploy-search"), chromedp.SendKeys("#deploy-search", "nobody/not-cached-GGUF", chromedp.ByID))
		waitJS(t, ctx, "explained under Repository", `document.querySelector("#deploy-repo").value === "nobody/not-cached-GGUF" &&
			document.querySelector("#deploy-repo-problem").dataset.kind === "unreachable" && document.querySelector("#deploy-repo-problem").textContent.includes("pull nobody/not-cached-GGUF")`)
		p = evalJS[[]string](t, ctx, "problem", `(p => [p.querySelector(".what").textContent, p.querySelector(".fix").textContent, String(p.querySelector("details").open), p.querySelector("details code").textContent])(document.querySelector("#deploy-repo-problem"))`)
		for _, want := range []string{"cannot be reached", "HF_ENDPOINT", "aimind pull nobody/not-cached-GGUF", "--offline", "local .gguf"} {
			if !strings.Contains(p[0]+p[1], want) {
				t.Errorf("the hub-down problem lacks %q: %q", want, p)
			}
		}
		if under := evalJS[string](t, ctx, "under Name", `document.querySelector("#deploy-error").textContent + document.querySelector("#deploy-name-problem").textContent`); under != "" {
			t.Fatalf("under Name the dialog still says %q", under)
		}
		if strings.Contains(p[0]+p[1], "dial tcp") || p[2] != "false" || !strings.Contains(p[3], "connect") || strings.Contains(p[3], "blobs=true") {
			t.Fatalf("the raw error must be folded and without its query string: %q", p)
		}
		shotViewport(t, ctx, "23-deploy-hub-down")
		must(t, ctx, "cancel", chromedp.Click("#deploy-cancel", chromedp.ByID))
	})
}
