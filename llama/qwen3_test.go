package llama_test

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/aimind/aimind/internal/reference"
	"github.com/aimind/aimind/internal/synth"
	"github.com/aimind/aimind/llama"
)

// TestQwen3ScoresMatchReference decodes several Qwen3 reranker sequences in
// one call (each its own sequence on an emptied cache, read on its last
// token) and compares each log-odds of "yes" with the float64 reference, and
// with the same sequence decoded alone: no sequence may see another's
// tokens or the previous call's cache.
func TestQwen3ScoresMatchReference(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.gguf")
	if err := synth.WriteQwen3(path, synth.Qwen3Tiny()); err != nil {
		t.Fatal(err)
	}
	ref, err := reference.LoadQwen3(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := llama.LoadModel(path, llama.ModelParams{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if !m.Causal() {
		t.Fatal("a qwen3 model is not reported causal")
	}
	for _, flash := range []bool{false, true} {
		c, err := llama.NewContext(m, llama.ContextParams{Tokens: 512, Sequences: 16, Threads: 2, FlashAttn: flash})
		if err != nil {
			t.Fatal(err)
		}
		texts := []string{
			"what is a panda", "the giant panda is a bear that eats bamboo in china",
			"hello", "cats and dogs are animals", "search query document answer rank reranker score",
		}
		var tokens []int32
		var lens []int
		var seqs [][]int32
		for _, s := range texts {
			ids, err := m.Tokenize(s, false)
			if err != nil {
				t.Fatal(err)
			}
			seqs = append(seqs, ids)
			tokens = append(tokens, ids...)
			lens = append(lens, len(ids))
		}
		batch, err := c.Encode(tokens, lens)
		if err != nil {
			t.Fatal(err)
		}
		tol := 2e-3
		if flash {
			tol = 2e-2
		}
		for i, ids := range seqs {
			want, err := ref.Score(ids)
			if err != nil {
				t.Fatal(err)
			}
			alone, err := c.Encode(ids, []int{len(ids)})
			if err != nil {
				t.Fatal(err)
			}
			got := float64(batch[i])
			if d := math.Abs(got - want); d > tol*(1+math.Abs(want)) {
				t.Errorf("flash=%v sequence %d (%d tokens): %.5f, reference %.5f", flash, i, len(ids), got, want)
			}
			if d := math.Abs(float64(alone[0]) - got); d > 1e-4*(1+math.Abs(got)) {
				t.Errorf("flash=%v sequence %d: %.6f alone, %.6f among others", flash, i, alone[0], got)
			}
		}
		c.Close()
	}
}

// TestQwen3SharedPrefix: sequences sharing leading tokens (the prompt and
// query of one request) are decoded with the prefix computed once; each
// must score as it does decoded alone, whatever the prefix: all but the
// last token in common, identical sequences, one token in common.
func TestQwen3SharedPrefix(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.gguf")
	if err := synth.WriteQwen3(path, synth.Qwen3Tiny()); err != nil {
		t.Fatal(err)
	}
	m, err := llama.LoadModel(path, llama.ModelParams{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	c, err := llama.NewContext(m, llama.ContextParams{Tokens: 512, Sequences: 16, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tok := func(s string) []int32 {
		ids, err := m.Tokenize(s, false)
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}
	head := tok("the giant panda is a bear that lives in china and eats")
	sets := map[string][][]int32{
		"request": {append(tok("the giant panda is a bear that lives in china and eats"), tok(" bamboo")...),
			append(append([]int32{}, head...), tok(" fish every day")...), append(append([]int32{}, head...), tok(" leaves")...)},
		"identical":  {append(append([]int32{}, head...), 7), append(append([]int32{}, head...), 7)},
		"one token":  {{head[0], 5, 6}, {head[0], 9}},
		"no overlap": {tok("hello"), tok("cats and dogs")},
	}
	for name, seqs := range sets {
		var tokens []int32
		var lens []int
		for _, s := range seqs {
			tokens = append(tokens, s...)
			lens = append(lens, len(s))
		}
		got, err := c.Encode(tokens, lens)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for i, s := range seqs {
			alone, err := c.Encode(s, []int{len(s)})
			if err != nil {
				t.Fatal(err)
			}
			if d := math.Abs(float64(alone[0] - got[i])); d > 1e-4*(1+math.Abs(float64(got[i]))) {
				t.Errorf("%s: sequence %d scores %.6f with the others, %.6f alone", name, i, got[i], alone[0])
			}
		}
	}
}
