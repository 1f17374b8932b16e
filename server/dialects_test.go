package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/aimind/aimind/engine"
	"github.com/aimind/aimind/internal/synth"
	"github.com/aimind/aimind/internal/testutil"
	"github.com/aimind/aimind/server"
)

// golden is one request/response pair written from a public API reference
// (named in the file). In the expected answer "<score>" matches any number,
// "<prob>" a number in [0, 1], "<int>" a non-negative integer, "<index>" a
// valid document index, "<id>" and "<string>" any non-empty string; anything
// else must be equal, and no key may be missing or extra.
type golden struct {
	Reference string          `json:"reference"`
	Method    string          `json:"method"`
	Path      string          `json:"path"`
	Request   json.RawMessage `json:"request"`
	Status    int             `json:"status"`
	Response  any             `json:"response"`
}

func match(path string, want, got any) error {
	switch w := want.(type) {
	case string:
		switch w {
		case "<score>", "<prob>", "<int>", "<index>":
			n, ok := got.(float64)
			if !ok || math.IsNaN(n) {
				return fmt.Errorf("%s: want a number, got %v", path, got)
			}
			if (w == "<prob>" && (n < 0 || n > 1)) || ((w == "<int>" || w == "<index>") && (n < 0 || n != math.Trunc(n))) {
				return fmt.Errorf("%s: %v is not a %s", path, n, w)
			}
			return nil
		case "<id>", "<string>":
			if s, ok := got.(string); !ok || s == "" {
				return fmt.Errorf("%s: want a non-empty string, got %v", path, got)
			}
			return nil
		}
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: want an object, got %v", path, got)
		}
		var wk, gk []string
		for k := range w {
			wk = append(wk, k)
		}
		for k := range g {
			gk = append(gk, k)
		}
		sort.Strings(wk)
		sort.Strings(gk)
		if strings.Join(wk, ",") != strings.Join(gk, ",") {
			return fmt.Errorf("%s: keys %v, want %v", path, gk, wk)
		}
		for k := range w {
			if err := match(path+"."+k, w[k], g[k]); err != nil {
				return err
			}
		}
		return nil
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Errorf("%s: want %d items, got %v", path, len(w), got)
		}
		for i := range w {
			if err := match(fmt.Sprintf("%s[%d]", path, i), w[i], g[i]); err != nil {
				return err
			}
		}
		return nil
	}
	if fmt.Sprint(want) != fmt.Sprint(got) {
		return fmt.Errorf("%s: got %v, want %v", path, got, want)
	}
	return nil
}

func TestGoldenDialects(t *testing.T) {
	s := start(t, server.Options{}, map[string]string{"m": testutil.MustModel(t, synth.Tiny())}, nil)
	s.wait(t, "m")
	files, _ := filepath.Glob("testdata/golden/*.json")
	if len(files) < 10 {
		t.Fatalf("%d golden files", len(files))
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".json"), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var g golden
			if err := json.Unmarshal(raw, &g); err != nil || g.Reference == "" {
				t.Fatalf("golden file: %v (a reference must be named)", err)
			}
			req := strings.ReplaceAll(string(g.Request), `"LONG"`, `"`+synth.Text(9, 2000)+`"`)
			code, body, _ := s.do(t, g.Method, g.Path, req)
			if code != g.Status {
				t.Fatalf("status %d, want %d: %s", code, g.Status, body)
			}
			var got any
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("answer is not JSON: %s", body)
			}
			if err := match("$", g.Response, got); err != nil {
				t.Fatalf("%v\n got: %s", err, body)
			}
			// Ranked answers are sorted by score, highest first.
			var scores []float64
			if list, ok := got.([]any); ok {
				for _, r := range list {
					scores = append(scores, r.(map[string]any)["score"].(float64))
				}
			} else if m, ok := got.(map[string]any); ok {
				if rs, ok := m["results"].([]any); ok {
					for _, r := range rs {
						scores = append(scores, r.(map[string]any)["relevance_score"].(float64))
					}
				}
			}
			if !sort.SliceIsSorted(scores, func(i, j int) bool { return scores[i] > scores[j] }) {
				t.Fatalf("results not sorted: %v", scores)
			}
		})
	}
}

// TestDialectsShareTheEngine: every dialect reports the same logit for the
// same pair (nothing is scored differently by path).
func TestDialectsShareTheEngine(t *testing.T) {
	s := start(t, server.Options{}, map[string]string{"m": testutil.MustModel(t, synth.Tiny())}, nil)
	s.wait(t, "m")
	docs := []string{"the panda eats bamboo", "fish in the river", "a black bear"}
	dj, _ := json.Marshal(docs)
	byIndex := func(body []byte, list, field string) map[int]float64 {
		var v any
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		var items []any
		if list == "" {
			items, _ = v.([]any)
		} else {
			items, _ = v.(map[string]any)[list].([]any)
		}
		out := map[int]float64{}
		for _, it := range items {
			m := it.(map[string]any)
			out[int(m["index"].(float64))] = m[field].(float64)
		}
		return out
	}
	_, b, _ := s.do(t, "POST", "/v1/rerank", `{"query":"panda","documents":`+string(dj)+`}`)
	guide := byIndex(b, "results", "relevance_score")
	_, b, _ = s.do(t, "POST", "/v2/rerank", `{"model":"m","query":"panda","documents":`+string(dj)+`}`)
	v2 := byIndex(b, "results", "relevance_score")
	_, b, _ = s.do(t, "POST", "/rerank", `{"query":"panda","raw_scores":true,"texts":`+string(dj)+`}`)
	tei := byIndex(b, "", "score")
	_, b, _ = s.do(t, "POST", "/score", `{"text_1":"panda","text_2":`+string(dj)+`}`)
	score := byIndex(b, "data", "score")
	for i := range docs {
		g := guide[i]
		if v2[i] != g || tei[i] != g || math.Abs(score[i]-1/(1+math.Exp(-g))) > 1e-12 {
			t.Errorf("document %d: guide %v, v2 %v, tei %v, score %v", i, g, v2[i], tei[i], score[i])
		}
	}
}

// TestIDsRoundTrip: documents sent as records get their id back on each
// result, whatever the order.
func TestIDsRoundTrip(t *testing.T) {
	s := start(t, server.Options{}, map[string]string{"m": testutil.MustModel(t, synth.Tiny())}, nil)
	s.wait(t, "m")
	body := `{"query":"panda","documents":[{"id":"a-1","text":"the panda eats bamboo","lang":"en"},{"id":42,"text":"fish"},{"text":"no id here"}]}`
	code, b, _ := s.do(t, "POST", "/v1/rerank", body)
	var a struct {
		Results []struct {
			Index    int            `json:"index"`
			ID       any            `json:"id"`
			Document map[string]any `json:"document"`
		} `json:"results"`
	}
	if err := json.Unmarshal(b, &a); err != nil || code != 200 || len(a.Results) != 3 {
		t.Fatalf("%d %s", code, b)
	}
	want := map[int]any{0: "a-1", 1: float64(42), 2: nil}
	for _, r := range a.Results {
		if r.ID != want[r.Index] {
			t.Errorf("result for document %d has id %v, want %v", r.Index, r.ID, want[r.Index])
		}
		if r.Index == 0 && r.Document["lang"] != "en" {
			t.Errorf("record fields not returned: %v", r.Document)
		}
	}
}

// TestMinScoreFilters: results below min_score are dropped after sorting.
func TestMinScoreFilters(t *testing.T) {
	s := start(t, server.Options{}, map[string]string{"m": testutil.MustModel(t, synth.Tiny())}, nil)
	s.wait(t, "m")
	docs := make([]string, 12)
	for i := range docs {
		docs[i] = synth.Text(uint64(i+100), 10)
	}
	dj, _ := json.Marshal(docs)
	all := rerank(t, s, `{"query":"panda","documents":`+string(dj)+`}`)
	threshold := all.Results[5].RelevanceScore
	got := rerank(t, s, fmt.Sprintf(`{"query":"panda","min_score":%v,"documents":%s}`, threshold, dj))
	if len(got.Results) != 6 {
		t.Fatalf("%d results at min_score %v, want 6", len(got.Results), threshold)
	}
	for i, r := range got.Results {
		if r.RelevanceScore < threshold || r.Index != all.Results[i].Index {
			t.Fatalf("result %d: %+v", i, r)
		}
	}
	if got := rerank(t, s, fmt.Sprintf(`{"query":"panda","min_score":%v,"top_n":2,"documents":%s}`, threshold, dj)); len(got.Results) != 2 {
		t.Fatalf("min_score with top_n: %d", len(got.Results))
	}
}

// TestChunkedLongDocument: when the passage that scores highest sits at the
// end of a long document, "chunk" finds it and outscores the truncated form,
// and says which window it came from.
func TestChunkedLongDocument(t *testing.T) {
	s := start(t, server.Options{}, map[string]string{"m": testutil.MustModel(t, synth.Tiny())}, nil)
	s.wait(t, "m")
	query := "what does the panda eat"
	// Find, with this model, a strong passage and a weak filler.
	cands := make([]string, 40)
	for i := range cands {
		cands[i] = synth.Text(uint64(500+i), 30)
	}
	cj, _ := json.Marshal(cands)
	ranked := rerank(t, s, `{"query":"`+query+`","documents":`+string(cj)+`}`)
	strong := cands[ranked.Results[0].Index]
	weak := cands[ranked.Results[len(ranked.Results)-1].Index]
	filler := strings.Repeat(weak+" ", 40) // ~1200 tokens of the weakest passage
	long := filler + strong
	req := func(mode string) (float64, map[string]any) {
		code, b, _ := s.do(t, "POST", "/v1/rerank", `{"query":"`+query+`","long_documents":"`+mode+`","documents":["`+long+`"]}`)
		var a struct {
			Results []map[string]any `json:"results"`
		}
		if err := json.Unmarshal(b, &a); err != nil || code != 200 {
			t.Fatalf("%s: %d %s", mode, code, b)
		}
		return a.Results[0]["relevance_score"].(float64), a.Results[0]
	}
	truncated, tr := req("truncate")
	chunked, ch := req("chunk")
	t.Logf("truncated %.4f, chunked %.4f (%v)", truncated, chunked, ch["chunk"])
	if tr["truncated"] != true {
		t.Fatalf("truncate mode: %v", tr)
	}
	if chunked <= truncated {
		t.Fatalf("chunked %.4f does not outscore truncated %.4f", chunked, truncated)
	}
	c, _ := ch["chunk"].(map[string]any)
	if c == nil || c["index"].(float64) != c["count"].(float64)-1 {
		t.Fatalf("best window should be the last one: %v", ch["chunk"])
	}
	// max_chunks_per_doc (Cohere v1) chunks too, and caps the windows.
	code, b, _ := s.do(t, "POST", "/v1/rerank", `{"query":"`+query+`","max_chunks_per_doc":2,"documents":["`+long+`"]}`)
	if code != 200 || !strings.Contains(string(b), `"count":2`) || !strings.Contains(string(b), `"truncated":true`) {
		t.Fatalf("max_chunks_per_doc: %d %s", code, b)
	}
}

func TestDialectErrors(t *testing.T) {
	s := start(t, server.Options{}, map[string]string{"m": testutil.MustModel(t, synth.Tiny())}, nil)
	s.wait(t, "m")
	for _, tc := range []struct {
		path, body string
		status     int
		msg        string
	}{
		{"/v2/rerank", `{"model":"m","query":"q","documents":["a"],"max_tokens_per_doc":0}`, 400, "max_tokens_per_doc"},
		{"/v1/rerank", `{"query":"q","documents":["a"],"long_documents":"split"}`, 400, "long_documents"},
		{"/v1/rerank", `{"query":"q","documents":[{"title":"x"}],"rank_fields":["body"]}`, 400, "rank_fields"},
		{"/v1/rerank", `{"query":"q","documents":[{"id":{"x":1},"text":"a"}]}`, 400, "id"},
		{"/v1/rerank", `{"query":"q","documents":["a"],"min_score":"high"}`, 400, "min_score"},
		{"/rerank", `{"query":"q","texts":"a"}`, 422, "error_type"},
		{"/rerank", `{"query":"q","texts":["a"],"truncation_direction":"Up"}`, 422, "truncation_direction"},
		{"/score", `{"text_1":["a","b"],"text_2":["a","b","c"]}`, 400, "text_1"},
		{"/score", `{"text_1":"q"}`, 400, "text_2"},
		{"/score", `{"text_1":"","text_2":"x"}`, 400, "text_1"},
		{"/v2/rerank", `{"model":"nope","query":"q","documents":["a"]}`, 404, "nope"},
	} {
		code, b, _ := s.do(t, "POST", tc.path, tc.body)
		if code != tc.status || !strings.Contains(string(b), tc.msg) {
			t.Errorf("%s %s: %d %s", tc.path, tc.body, code, b)
		}
	}
	// TEI's left truncation keeps the document's end: the pair ends with
	// the document's last tokens, and the answer is that pair's score, not
	// the right-truncated one's.
	long := synth.Text(3, 1000) + " panda"
	m := s.mgr.Engine("m")
	prep, err := m.Prepare([]engine.Query{{Text: "q", Docs: []string{long}}}, engine.DocOptions{KeepEnd: true})
	if err != nil {
		t.Fatal(err)
	}
	// The tokens of the document's last word, "panda", as a pair lays them
	// out: a pair with that word alone, less a pair with an empty document.
	ref, err := m.Tokenize("q", []string{"panda", ""})
	if err != nil {
		t.Fatal(err)
	}
	withPanda, empty := ref[0].Tokens, ref[1].Tokens
	panda := withPanda[len(empty)-1 : len(withPanda)-1]
	pair := prep.Pairs[0].Tokens
	if !prep.Pairs[0].Truncated || len(panda) == 0 || fmt.Sprint(pair[len(pair)-1-len(panda):len(pair)-1]) != fmt.Sprint(panda) {
		t.Fatalf("the left-truncated pair does not end with the document's last word %v: ...%v", panda, pair[len(pair)-8:])
	}
	want, err := m.Score(context.Background(), prep.Pairs)
	if err != nil {
		t.Fatal(err)
	}
	score := func(dir string) float64 {
		t.Helper()
		code, b, _ := s.do(t, "POST", "/rerank", `{"query":"q","raw_scores":true,"truncation_direction":"`+dir+`","texts":["`+long+`"]}`)
		var r []struct{ Score float64 }
		if code != 200 || json.Unmarshal(b, &r) != nil || len(r) != 1 {
			t.Fatalf("%s truncation: %d %s", dir, code, b)
		}
		return r[0].Score
	}
	left, right := score("Left"), score("Right")
	if math.Abs(left-want.Scores[0]) > 1e-4 {
		t.Fatalf("Left truncation scored %v, the document's end scores %v", left, want.Scores[0])
	}
	if left == right {
		t.Fatalf("Left and Right truncation gave the same score %v: the test cannot tell them apart", left)
	}
}
