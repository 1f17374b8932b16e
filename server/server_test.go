package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aimind/aimind/engine"
	"github.com/aimind/aimind/internal/reference"
	"github.com/aimind/aimind/internal/synth"
	"github.com/aimind/aimind/internal/testutil"
	"github.com/aimind/aimind/models"
	"github.com/aimind/aimind/server"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testutil.Cleanup()
	os.Exit(code)
}

type testServer struct {
	url string
	mgr *models.Manager
	srv *server.Server
}

// start serves the given name→path models on a loopback port.
func start(t *testing.T, o server.Options, paths map[string]string, prepare func(*models.Manager)) *testServer {
	return startWith(t, o, engine.Options{Threads: 2, FlashAttn: true}, paths, prepare)
}

// startOpts is start with a queue limit.
func startOpts(t *testing.T, o server.Options, paths map[string]string, maxQueue int) *testServer {
	return startWith(t, o, engine.Options{Threads: 2, FlashAttn: true, MaxQueueTokens: maxQueue}, paths, nil)
}

// startHook holds model loads until release closes.
func startHook(t *testing.T, paths map[string]string, release chan struct{}) *testServer {
	return start(t, server.Options{}, paths, func(m *models.Manager) {
		open := m.Open
		m.Open = func(p string, o engine.Options) (*engine.Model, error) {
			<-release
			return open(p, o)
		}
	})
}

func startWith(t *testing.T, o server.Options, eo engine.Options, paths map[string]string, prepare func(*models.Manager)) *testServer {
	t.Helper()
	mgr := models.NewManager(eo, nil, nil, nil)
	mgr.Observe = server.ObserveBatch
	if prepare != nil {
		prepare(mgr)
	}
	for name, p := range paths {
		if _, err := mgr.Deploy(models.Request{Name: name, Path: p}, false); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if o.Keys == nil {
		o.NoAuth = true
	}
	srv := server.New(mgr, o)
	go srv.Serve(ln)
	t.Cleanup(func() {
		srv.Shutdown()
		mgr.Close()
	})
	return &testServer{url: "http://" + ln.Addr().String(), mgr: mgr, srv: srv}
}

// wait blocks until the named models run.
func (s *testServer) wait(t *testing.T, names ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.mgr.WaitFor(ctx, names...); err != nil {
		t.Fatal(err)
	}
}

func (s *testServer) do(t *testing.T, method, path, body string) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, s.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

type result struct {
	Document *struct {
		Text string `json:"text"`
	} `json:"document"`
	Index          int     `json:"index"`
	RelevanceScore float64 `json:"relevance_score"`
	Truncated      bool    `json:"truncated"`
}

type answer struct {
	Model   string   `json:"model"`
	Object  string   `json:"object"`
	Results []result `json:"results"`
	Usage   struct {
		PromptTokens int `json:"prompt_tokens"`
		TotalTokens  int `json:"total_tokens"`
	} `json:"usage"`
}

const guideBody = `{"model": "bge-reranker-v2-m3", "query": "什么是熊猫？", "top_n": 3,
 "documents": ["你好", "它是一种熊", "大熊猫（Ailuropoda melanoleuca），有时被称为熊猫或熊猫熊，是中国特有的熊科动物。"]}`

// TestGuideRequest sends the body of GPUStack's guide and checks the answer's
// exact shape, its order, its usage count and its scores against the float64
// reference.
func TestGuideRequest(t *testing.T) {
	path := testutil.MustModel(t, synth.Tiny())
	s := start(t, server.Options{}, map[string]string{"bge-reranker-v2-m3": path}, nil)
	s.wait(t, "bge-reranker-v2-m3")
	code, body, hdr := s.do(t, "POST", "/v1/rerank", guideBody)
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
		t.Fatalf("status %d %s: %s", code, hdr.Get("Content-Type"), body)
	}
	// Exactly the guide's keys, plus Cohere's id and meta (issue 6 of 7).
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatalf("answer is not a JSON object: %v: %s", err, body)
	}
	keys := []string{}
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if strings.Join(keys, ",") != "id,meta,model,object,results,usage" {
		t.Fatalf("keys %v", keys)
	}
	var rawResults []map[string]json.RawMessage
	if err := json.Unmarshal(raw["results"], &rawResults); err != nil {
		t.Fatalf("results: %v", err)
	}
	for _, r := range rawResults {
		if len(r) != 3 || r["document"] == nil || r["index"] == nil || r["relevance_score"] == nil {
			t.Fatalf("result keys %v", r)
		}
	}
	var a answer
	if err := json.Unmarshal(body, &a); err != nil {
		t.Fatal(err)
	}
	if a.Model != "bge-reranker-v2-m3" || a.Object != "list" || len(a.Results) != 3 {
		t.Fatalf("answer %s", body)
	}
	docs := []string{"你好", "它是一种熊", "大熊猫（Ailuropoda melanoleuca），有时被称为熊猫或熊猫熊，是中国特有的熊科动物。"}
	m, _, _ := s.mgr.Resolve("bge-reranker-v2-m3")
	pairs, _ := m.Tokenize("什么是熊猫？", docs)
	ref, err := reference.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	tokens := 0
	for _, p := range pairs {
		tokens += len(p.Tokens)
	}
	if a.Usage.PromptTokens != tokens || a.Usage.TotalTokens != tokens {
		t.Fatalf("usage %+v, want %d", a.Usage, tokens)
	}
	for i, r := range a.Results {
		if r.Document == nil || r.Document.Text != docs[r.Index] {
			t.Fatalf("result %d document %+v", i, r.Document)
		}
		want, _ := ref.Score(pairs[r.Index].Tokens)
		if math.Abs(r.RelevanceScore-want) > 2e-2+2e-2*math.Abs(want) {
			t.Errorf("document %d: score %.5f, reference %.5f", r.Index, r.RelevanceScore, want)
		}
		if i > 0 {
			prev := a.Results[i-1]
			if prev.RelevanceScore < r.RelevanceScore || (prev.RelevanceScore == r.RelevanceScore && prev.Index > r.Index) {
				t.Fatalf("results not sorted by score then index: %s", body)
			}
		}
	}
	// /rerank answers the same, but for its fresh id.
	code, body2, _ := s.do(t, "POST", "/rerank", guideBody)
	strip := func(b []byte) string { return regexp.MustCompile(`"id":"[^"]*"`).ReplaceAllString(string(b), "") }
	if code != 200 || strip(body) != strip(body2) {
		t.Fatalf("/rerank: %d %s", code, body2)
	}
}

func rerank(t *testing.T, s *testServer, body string) answer {
	t.Helper()
	code, b, _ := s.do(t, "POST", "/v1/rerank", body)
	if code != 200 {
		t.Fatalf("status %d: %s", code, b)
	}
	var a answer
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatal(err)
	}
	return a
}

func TestRerankOptions(t *testing.T) {
	s := start(t, server.Options{}, map[string]string{"tiny": testutil.MustModel(t, synth.Tiny())}, nil)
	s.wait(t, "tiny")
	docs := `["the panda eats bamboo", "", {"text": "a black bear in the forest"}, "fish in the river"]`
	all := rerank(t, s, `{"model":"tiny","query":"what does a panda eat","documents":`+docs+`}`)
	if len(all.Results) != 4 {
		t.Fatalf("%d results", len(all.Results))
	}
	for _, tc := range []struct {
		topN string
		want int
	}{{`0`, 4}, {`1`, 1}, {`3`, 3}, {`40`, 4}, {`null`, 4}} {
		a := rerank(t, s, `{"model":"tiny","query":"what does a panda eat","top_n":`+tc.topN+`,"documents":`+docs+`}`)
		if len(a.Results) != tc.want {
			t.Errorf("top_n %s: %d results, want %d", tc.topN, len(a.Results), tc.want)
		}
		for i := range a.Results {
			if a.Results[i].Index != all.Results[i].Index {
				t.Errorf("top_n %s changes the order", tc.topN)
			}
		}
	}
	// The model may be omitted when one is served.
	if a := rerank(t, s, `{"query":"what does a panda eat","documents":`+docs+`}`); a.Model != "tiny" {
		t.Errorf("model %q", a.Model)
	}
	// return_documents=false leaves the text out.
	_, b, _ := s.do(t, "POST", "/v1/rerank", `{"query":"q","return_documents":false,"documents":["a","b"]}`)
	if strings.Contains(string(b), `"document"`) {
		t.Errorf("document returned: %s", b)
	}
	// normalize gives sigmoid(logit), same order.
	n := rerank(t, s, `{"model":"tiny","normalize":true,"query":"what does a panda eat","documents":`+docs+`}`)
	for i, r := range n.Results {
		raw := all.Results[i]
		if r.Index != raw.Index || math.Abs(r.RelevanceScore-1/(1+math.Exp(-raw.RelevanceScore))) > 1e-9 {
			t.Errorf("normalize: %+v vs raw %+v", r, raw)
		}
	}
	// A document longer than the pair limit is truncated and says so.
	long := synth.Text(1, 2000)
	a := rerank(t, s, `{"query":"panda","documents":["short", "`+long+`"]}`)
	for _, r := range a.Results {
		if r.Truncated != (r.Index == 1) {
			t.Errorf("result %d truncated=%v", r.Index, r.Truncated)
		}
	}
}

// TestErrors: every client mistake is a 4xx with the stable JSON error shape.
func TestErrors(t *testing.T) {
	loading := make(chan struct{})
	s := start(t, server.Options{MaxBodyBytes: 64 << 10, MaxDocuments: 5},
		map[string]string{"tiny": testutil.MustModel(t, synth.Tiny()), "slow": testutil.MustModel(t, shapesSlow)},
		func(m *models.Manager) {
			open := m.Open
			m.Open = func(p string, o engine.Options) (*engine.Model, error) {
				if p == testutil.MustModel(t, shapesSlow) {
					<-loading
				}
				return open(p, o)
			}
		})
	defer close(loading)
	s.wait(t, "tiny")
	cases := []struct {
		name, method, path, body string
		status                   int
		typ, msg                 string
	}{
		{"malformed JSON", "POST", "/v1/rerank", `{"model":"tiny",`, 400, "invalid_request_error", "JSON"},
		{"empty body", "POST", "/v1/rerank", ``, 400, "invalid_request_error", "empty"},
		{"query is a number", "POST", "/v1/rerank", `{"model":"tiny","query":5,"documents":["a"]}`, 400, "invalid_request_error", "query"},
		{"documents is a string", "POST", "/v1/rerank", `{"model":"tiny","query":"q","documents":"a"}`, 400, "invalid_request_error", "documents"},
		{"document is a number", "POST", "/v1/rerank", `{"model":"tiny","query":"q","documents":["a", 3]}`, 400, "invalid_request_error", "documents[1]"},
		{"document object without text", "POST", "/v1/rerank", `{"model":"tiny","query":"q","documents":[{"title":"a"}]}`, 400, "invalid_request_error", "text"},
		{"top_n is a string", "POST", "/v1/rerank", `{"model":"tiny","query":"q","top_n":"3","documents":["a"]}`, 400, "invalid_request_error", "top_n"},
		{"top_n is negative", "POST", "/v1/rerank", `{"model":"tiny","query":"q","top_n":-1,"documents":["a"]}`, 400, "invalid_request_error", "top_n"},
		{"missing query", "POST", "/v1/rerank", `{"model":"tiny","documents":["a"]}`, 400, "invalid_request_error", "query"},
		{"empty query", "POST", "/v1/rerank", `{"model":"tiny","query":"  ","documents":["a"]}`, 400, "invalid_request_error", "query"},
		{"missing documents", "POST", "/v1/rerank", `{"model":"tiny","query":"q"}`, 400, "invalid_request_error", "documents"},
		{"no documents", "POST", "/v1/rerank", `{"model":"tiny","query":"q","documents":[]}`, 400, "invalid_request_error", "documents"},
		{"query too long", "POST", "/v1/rerank", `{"model":"tiny","query":"` + synth.Text(2, 600) + `","documents":["a"]}`, 400, "invalid_request_error", "query"},
		{"no model with two served", "POST", "/v1/rerank", `{"query":"q","documents":["a"]}`, 400, "invalid_request_error", "model"},
		{"unknown model", "POST", "/v1/rerank", `{"model":"nope","query":"q","documents":["a"]}`, 404, "not_found_error", "nope"},
		{"model loading", "POST", "/v1/rerank", `{"model":"slow","query":"q","documents":["a"]}`, 503, "unavailable_error", "loading"},
		{"too many documents", "POST", "/v1/rerank", `{"model":"tiny","query":"q","documents":["a","b","c","d","e","f"]}`, 413, "invalid_request_error", "--max-documents"},
		{"wrong method", "GET", "/v1/rerank", ``, 405, "invalid_request_error", "POST"},
		{"wrong method on models", "POST", "/v1/models", `{}`, 405, "invalid_request_error", "GET"},
		{"unknown route", "GET", "/v1/nothing", ``, 404, "not_found_error", "/v1/nothing"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body, hdr := s.do(t, tc.method, tc.path, tc.body)
			var e struct {
				Error struct {
					Message string `json:"message"`
					Type    string `json:"type"`
					Code    int    `json:"code"`
				} `json:"error"`
			}
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("status %d, body not JSON: %q", code, body)
			}
			if code != tc.status || e.Error.Code != tc.status || e.Error.Type != tc.typ || !strings.Contains(e.Error.Message, tc.msg) {
				t.Fatalf("got %d %s, want %d %s containing %q", code, body, tc.status, tc.typ, tc.msg)
			}
			if !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
				t.Fatalf("content type %q", hdr.Get("Content-Type"))
			}
		})
	}
	// After all that, the server still answers.
	rerank(t, s, `{"model":"tiny","query":"q","documents":["a"]}`)
}

// TestBodyTooLarge: a body over the limit is refused from its
// Content-Length, before it is read.
func TestBodyTooLarge(t *testing.T) {
	s := start(t, server.Options{MaxBodyBytes: 64 << 10}, map[string]string{"tiny": testutil.MustModel(t, synth.Tiny())}, nil)
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/rerank HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", 70<<10)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 413 || !strings.Contains(string(b), "--max-body-bytes") || !strings.Contains(string(b), `"code":413`) {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
}

var shapesSlow = synth.Spec{Layers: 1, Hidden: 32, Heads: 2, FFN: 64, Positions: 64, Seed: 77}

func TestModelsAndHealth(t *testing.T) {
	s := start(t, server.Options{}, map[string]string{"tiny": testutil.MustModel(t, synth.Tiny())}, nil)
	s.wait(t, "tiny")
	code, body, _ := s.do(t, "GET", "/health", "")
	if code != 200 || !strings.Contains(string(body), "ok") {
		t.Fatalf("/health %d %s", code, body)
	}
	code, body, _ = s.do(t, "GET", "/v1/models", "")
	var list struct {
		Object string `json:"object"`
		Data   []struct {
			ID, Object, Status, Score, PairLayout string
			MaxPairTokens                         int `json:"max_pair_tokens"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &list); err != nil || code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	if list.Object != "list" || len(list.Data) != 1 || list.Data[0].ID != "tiny" || list.Data[0].Status != "running" ||
		!strings.Contains(list.Data[0].Score, "logit") || list.Data[0].MaxPairTokens != 512 {
		t.Fatalf("%s", body)
	}
}

// TestConcurrentClients: many clients at once all get complete, consistent
// answers.
func TestConcurrentClients(t *testing.T) {
	s := start(t, server.Options{}, map[string]string{"tiny": testutil.MustModel(t, synth.Tiny())}, nil)
	s.wait(t, "tiny")
	docs := make([]string, 20)
	for i := range docs {
		docs[i] = synth.Text(uint64(i+1), 30)
	}
	body, _ := json.Marshal(map[string]any{"query": "panda bamboo", "documents": docs})
	want := rerank(t, s, string(body))
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for c := 0; c < 8; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 4; i++ {
				code, b, err := post(context.Background(), s.url, string(body)) // not s.do: no t.Fatal off the test goroutine
				var a answer
				if err != nil || code != 200 || json.Unmarshal([]byte(b), &a) != nil || len(a.Results) != 20 {
					errs <- fmt.Errorf("status %d: %s (%v)", code, b, err)
					return
				}
				for k := range a.Results {
					if a.Results[k].Index != want.Results[k].Index || math.Abs(a.Results[k].RelevanceScore-want.Results[k].RelevanceScore) > 1e-4 {
						errs <- fmt.Errorf("result %d differs: %+v vs %+v", k, a.Results[k], want.Results[k])
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
