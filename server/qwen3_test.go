package server_test

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aimind/aimind/engine"
	"github.com/aimind/aimind/hub"
	"github.com/aimind/aimind/hub/hubtest"
	"github.com/aimind/aimind/internal/reference"
	"github.com/aimind/aimind/internal/synth"
	"github.com/aimind/aimind/internal/testutil"
	"github.com/aimind/aimind/llama"
	"github.com/aimind/aimind/models"
	"github.com/aimind/aimind/server"
)

// TestQwen3Rerank serves a Qwen3 reranker beside a BERT one through the
// guide's endpoint: scores are the log-odds of "yes" the float64 reference
// gives for the card's prompt, normalize gives p(yes), a request's
// instruction is used, and an instruction for the BERT model is a 400.
func TestQwen3Rerank(t *testing.T) {
	qpath := filepath.Join(t.TempDir(), "qwen3.gguf")
	if err := synth.WriteQwen3(qpath, synth.Qwen3Tiny()); err != nil {
		t.Fatal(err)
	}
	ref, err := reference.LoadQwen3(qpath)
	if err != nil {
		t.Fatal(err)
	}
	vocab, err := llama.LoadModel(qpath, llama.ModelParams{VocabOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer vocab.Close()
	s := start(t, server.Options{}, map[string]string{"qwen3": qpath, "bert": testutil.MustModel(t, synth.Tiny())}, nil)
	s.wait(t, "qwen3", "bert")

	query := "what does the giant panda eat"
	docs := []string{"the giant panda eats bamboo", "cats and dogs", "hello"}
	expect := func(instr string) []float64 {
		out := make([]float64, len(docs))
		for i, d := range docs {
			prompt := engine.Qwen3Template
			if instr != "" {
				prompt = strings.Replace(prompt, "Given a web search query, retrieve relevant passages that answer the query", instr, 1)
			}
			ids, err := vocab.Tokenize(strings.NewReplacer("{query}", query, "{document}", d).Replace(prompt), true)
			if err != nil {
				t.Fatal(err)
			}
			if out[i], err = ref.Score(ids); err != nil {
				t.Fatal(err)
			}
		}
		return out
	}
	body := func(extra string) string {
		b, _ := json.Marshal(map[string]any{"model": "qwen3", "query": query, "documents": docs})
		return strings.TrimSuffix(string(b), "}") + extra + "}"
	}
	check := func(extra string, want []float64, sigmoid bool) {
		t.Helper()
		code, b, _ := s.do(t, "POST", "/v1/rerank", body(extra))
		if code != 200 {
			t.Fatalf("%d %s", code, b)
		}
		var a answer
		if err := json.Unmarshal(b, &a); err != nil || len(a.Results) != len(docs) {
			t.Fatalf("%v %s", err, b)
		}
		for k, r := range a.Results {
			w := want[r.Index]
			if sigmoid {
				w = 1 / (1 + math.Exp(-w))
			}
			if math.Abs(r.RelevanceScore-w) > 2e-2+2e-2*math.Abs(w) {
				t.Errorf("%s: document %d scores %.5f, reference %.5f", extra, r.Index, r.RelevanceScore, w)
			}
			if k > 0 && r.RelevanceScore > a.Results[k-1].RelevanceScore {
				t.Errorf("results out of order: %s", b)
			}
		}
	}
	plain := expect("")
	check("", plain, false)
	check(`,"normalize":true`, plain, true)
	own := expect("Judge whether the passage names an animal")
	if math.Abs(own[0]-plain[0]) < 1e-3 {
		t.Fatalf("the instruction changes nothing in the reference (%.5f, %.5f): the check would say little", own[0], plain[0])
	}
	check(`,"instruction":"Judge whether the passage names an animal"`, own, false)

	code, b, _ := s.do(t, "POST", "/v1/rerank", `{"model":"bert","query":"q","documents":["d"],"instruction":"be strict"}`)
	var e struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if code != 400 || json.Unmarshal(b, &e) != nil || !strings.Contains(e.Error.Message, "instruction") {
		t.Fatalf("instruction for an encoder: %d %s", code, b)
	}
}

// TestQwen3DeployFromTheHub: the deploy dialog's suggestions (what it asks
// for before anything is typed: q=reranker, GGUF only, most downloaded
// first) include a Qwen3-Reranker GGUF repository, and deploying it from the
// fake Hugging Face Hub ends with a running model that /v1/models lists with
// the qwen3 architecture and the instruct layout and /v1/rerank answers with
// the reference's log-odds for the card's prompt. A community conversion
// without rank pooling (llama.cpp #16407: such files score garbage in
// llama-server) is suggested too, but its deploy fails, saying why.
func TestQwen3DeployFromTheHub(t *testing.T) {
	dir := t.TempDir()
	spec := synth.Qwen3Tiny()
	src := filepath.Join(dir, "qwen3.gguf")
	if err := synth.WriteQwen3(src, spec); err != nil {
		t.Fatal(err)
	}
	q8 := filepath.Join(dir, "qwen3-q8_0.gguf")
	if err := llama.Quantize(src, q8, llama.FtypeQ8_0, 2); err != nil {
		t.Fatal(err)
	}
	spec.Meta = map[string]any{"qwen3.pooling_type": uint32(0)}
	broken := filepath.Join(dir, "broken.gguf")
	if err := synth.WriteQwen3(broken, spec); err != nil {
		t.Fatal(err)
	}
	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	const repo = "Mungert/Qwen3-Reranker-0.6B-GGUF"
	fake := hubtest.New(
		&hubtest.Repo{ID: "gpustack/bge-reranker-v2-m3-GGUF", Downloads: 12345, Files: map[string][]byte{"bge-reranker-v2-m3-Q8_0.gguf": read(testutil.MustModel(t, synth.Tiny()))}},
		&hubtest.Repo{ID: repo, Downloads: 8000, Likes: 40, Files: map[string][]byte{
			"Qwen3-Reranker-0.6B-q8_0.gguf": read(q8), "Qwen3-Reranker-0.6B-f16.gguf": read(src), "README.md": []byte("# Qwen3-Reranker-0.6B GGUF\n")}},
		&hubtest.Repo{ID: "community/Qwen3-Reranker-0.6B-GGUF", Downloads: 900, Files: map[string][]byte{"Qwen3-Reranker-0.6B.Q8_0.gguf": read(broken)}},
		&hubtest.Repo{ID: "Qwen/Qwen3-0.6B-GGUF", Downloads: 99999, Files: map[string][]byte{"Qwen3-0.6B-Q8_0.gguf": read(broken)}},
	)
	defer fake.Close()
	s, mgr, cookie := startModelsAPI(t, fake.URL, engine.Options{Threads: 1, FlashAttn: true}, []string{"k-qwen3"})

	// The dialog's suggestions, and a search for the family.
	for q, want := range map[string][]string{
		"reranker":       {"gpustack/bge-reranker-v2-m3-GGUF", repo, "community/Qwen3-Reranker-0.6B-GGUF"},
		"qwen3-reranker": {repo, "community/Qwen3-Reranker-0.6B-GGUF"},
	} {
		code, body, _ := s.req(t, "GET", "/api/hub/search?source=huggingface&q="+q+"&gguf=true", "", cookie)
		var found struct{ Data []hub.Repo }
		if err := json.Unmarshal([]byte(body), &found); code != 200 || err != nil {
			t.Fatalf("search %q: %d %s", q, code, body)
		}
		var got []string
		for _, r := range found.Data {
			got = append(got, r.ID)
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("search %q lists %v, want %v", q, got, want)
		}
	}

	// The dialog lists the repo's files: Q8_0 by default, served as the repo's name.
	code, body, _ := s.req(t, "GET", "/api/hub/files?source=huggingface&repo="+repo, "", cookie)
	var listing struct {
		Default, Name string
		Files         []struct {
			Path           string `json:"path"`
			Quant          string `json:"quant"`
			MemoryEstimate int64  `json:"memory_estimate"`
		}
	}
	if err := json.Unmarshal([]byte(body), &listing); code != 200 || err != nil || len(listing.Files) != 2 ||
		listing.Default != "Qwen3-Reranker-0.6B-q8_0.gguf" || listing.Name != "Qwen3-Reranker-0.6B" || listing.Files[0].Quant != "Q8_0" {
		t.Fatalf("files: %d %s", code, body)
	}

	// Deployed as the dialog sends it: repo, default file, the proposed name.
	req, _ := json.Marshal(models.Request{Source: hub.HuggingFace, Repo: repo, File: listing.Default, Name: listing.Name})
	if code, body, _ := s.req(t, "POST", "/api/models", string(req), cookie); code != 202 {
		t.Fatalf("deploy: %d %s", code, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := mgr.WaitFor(ctx, listing.Name); err != nil {
		t.Fatal(err)
	}
	rec, _ := mgr.Get(listing.Name)
	t.Logf("memory: the dialog said %d KiB, the running record says %d KiB", listing.Files[0].MemoryEstimate>>10, rec.MemoryEst>>10)
	// The dialog read the shape from the file's first bytes (a Range
	// request to the fake hub), so its estimate counts the key/value cache
	// as the record does: within 5 % (from the size alone it was 8-14 % low).
	if d, r := listing.Files[0].MemoryEstimate, rec.MemoryEst; d < r*95/100 || d > r*105/100 {
		t.Errorf("the dialog's estimate %d KiB is more than 5 %% from the running record's %d KiB", d>>10, r>>10)
	}
	key := map[string]string{"Authorization": "Bearer k-qwen3"}
	code, body, _ = s.req(t, "GET", "/v1/models", "", key)
	var cards struct {
		Data []struct {
			ID, Status, Architecture, Repo, File, Score string
			FileType                                    string `json:"file_type"`
			PairLayout                                  string `json:"pair_layout"`
		}
	}
	if err := json.Unmarshal([]byte(body), &cards); code != 200 || err != nil || len(cards.Data) != 1 {
		t.Fatalf("/v1/models: %d %s", code, body)
	}
	if c := cards.Data[0]; c.ID != listing.Name || c.Status != "running" || c.Architecture != "qwen3" || c.FileType != "Q8_0" ||
		c.PairLayout != string(engine.LayoutInstruct) || c.Repo != repo || c.Score != server.DecoderScoreMeaning {
		t.Fatalf("the deployed model's card: %s", body)
	}

	// Scores: the float64 reference on the downloaded file's own weights,
	// for the card's prompt, within the Q8_0 file's per-pair bound
	// (engine.TestQwen3QuantizedCloseToReference); an instruction is taken.
	ref, err := reference.LoadQwen3(q8)
	if err != nil {
		t.Fatal(err)
	}
	vocab, err := llama.LoadModel(q8, llama.ModelParams{VocabOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer vocab.Close()
	query, docs := "what does the giant panda eat", []string{"the giant panda eats bamboo", "cats and dogs", "hello"}
	rr, _ := json.Marshal(map[string]any{"model": listing.Name, "query": query, "documents": docs, "instruction": "Judge whether the passage answers the question"})
	code, body, _ = s.req(t, "POST", "/v1/rerank", string(rr), key)
	var a answer
	if err := json.Unmarshal([]byte(body), &a); code != 200 || err != nil || len(a.Results) != len(docs) {
		t.Fatalf("rerank: %d %s", code, body)
	}
	for _, r := range a.Results {
		prompt := strings.Replace(engine.Qwen3Template, "Given a web search query, retrieve relevant passages that answer the query", "Judge whether the passage answers the question", 1)
		ids, err := vocab.Tokenize(strings.NewReplacer("{query}", query, "{document}", docs[r.Index]).Replace(prompt), true)
		if err != nil {
			t.Fatal(err)
		}
		want, err := ref.Score(ids)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(r.RelevanceScore-want) > 0.3 {
			t.Errorf("document %d scores %.5f, reference %.5f", r.Index, r.RelevanceScore, want)
		}
	}

	// The broken conversion: refused before llama.cpp, with the reason.
	if code, body, _ := s.req(t, "POST", "/api/models", `{"source":"huggingface","repo":"community/Qwen3-Reranker-0.6B-GGUF","name":"broken"}`, cookie); code != 202 {
		t.Fatalf("deploy the broken conversion: %d %s", code, body)
	}
	if err := mgr.WaitFor(ctx, "broken"); err == nil {
		t.Fatal("a Qwen3 file without rank pooling was served")
	}
	if rec, _ := mgr.Get("broken"); rec.Status != models.StateError || !strings.Contains(rec.Error, "pooling_type") || !strings.Contains(rec.Error, "not Qwen3-Reranker") {
		t.Fatalf("the broken conversion's record: %s %q", rec.Status, rec.Error)
	}
}
