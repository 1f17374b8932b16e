package server_test

import (
	"encoding/json"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aimind/aimind/engine"
	"github.com/aimind/aimind/internal/reference"
	"github.com/aimind/aimind/internal/synth"
	"github.com/aimind/aimind/internal/testutil"
	"github.com/aimind/aimind/llama"
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
