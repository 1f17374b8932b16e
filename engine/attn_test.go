package engine_test

import (
	"testing"

	"github.com/aimind/aimind/engine"
	"github.com/aimind/aimind/internal/reference"
	"github.com/aimind/aimind/internal/synth"
	"github.com/aimind/aimind/internal/testutil"
	"github.com/aimind/aimind/llama"
)

// TestAimindAttention: aimind's tiled attention kernel (patch 0004,
// third_party/kernels/attn.cpp) replaces ggml's flash-attention loop on
// AVX-512 CPUs. On heads of 64, 32 and 128 values, 20 pairs packed into
// encoder calls, its scores are compared with the float64 reference: the
// mean error must be within 1.5x that of ggml's loop (the bar for a
// new path) and every score within the flash-attention bound. A kernel that
// applies the softmax scale twice must break the bound.
func TestAimindAttention(t *testing.T) {
	skipUnderRace(t)
	llama.SetAimindAttention(true)
	if !llama.AimindAttention() {
		t.Skip("skipped: aimind's attention kernel needs AVX-512 and F16C in the CPU and in this build; ggml's flash-attention loop runs here")
	}
	cases := []struct {
		name string
		spec synth.Spec
	}{
		{"heads of 64 (768/12)", synth.Spec{Layers: 2, Hidden: 768, Heads: 12, FFN: 3072, Positions: 512, Seed: 51}},
		{"heads of 32 (384/12)", synth.Spec{Layers: 2, Hidden: 384, Heads: 12, FFN: 1536, Positions: 512, Seed: 52}},
		{"heads of 128 (512/4)", synth.Spec{Layers: 2, Hidden: 512, Heads: 4, FFN: 2048, Positions: 512, Seed: 53}},
	}
	query, docs := "what does the giant panda eat", documents(20)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := testutil.MustModel(t, tc.spec)
			ref, err := reference.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			m := mustOpen(t, path, engine.Options{FlashAttn: true})
			want := referenceScores(t, m, ref, query, docs)

			compareWithGGML(t, m, query, docs, want)
			pairs, err := m.Tokenize(query, docs)
			if err != nil {
				t.Fatal(err)
			}
			res, err := m.Score(t.Context(), pairs)
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range res.Scores {
				if !close(s, want[i], 2e-2, 2e-2) {
					t.Errorf("pair %d: %.5f, reference %.5f", i, s, want[i])
				}
			}
		})
	}
}

// TestAimindAttentionDecoder: the same kernel on a Qwen3 reranker's causal
// attention (grouped-query heads of 32 values, F32 keys and values from its
// cache, a causal mask per sequence, a shared prefix): within 1.5x the
// error of ggml's loop against the float64 reference, and a kernel with the
// scale applied twice breaks the bound.
func TestAimindAttentionDecoder(t *testing.T) {
	skipUnderRace(t)
	llama.SetAimindAttention(true)
	if !llama.AimindAttention() {
		t.Skip("skipped: aimind's attention kernel needs AVX-512 and F16C in the CPU and in this build; ggml's flash-attention loop runs here")
	}
	for name, spec := range map[string]synth.Qwen3Spec{
		"gqa, heads of 64, tied":   {Layers: 2, Hidden: 128, Heads: 4, KVHeads: 2, HeadDim: 64, FFN: 256, Seed: 61, TiedHead: true},
		"mha, heads of 32, untied": {Layers: 2, Hidden: 96, Heads: 3, KVHeads: 3, HeadDim: 32, FFN: 160, Seed: 62},
	} {
		t.Run(name, func(t *testing.T) {
			path := mustQwen3(t, spec)
			ref, err := reference.LoadQwen3(path)
			if err != nil {
				t.Fatal(err)
			}
			m := mustOpen(t, path, engine.Options{FlashAttn: true, BatchTokens: 4096})
			query, docs := "what does the giant panda eat", documents(12)
			compareWithGGML(t, m, query, docs, referenceScores(t, m, ref, query, docs))
		})
	}
}

// compareWithGGML scores query and docs on m with aimind's attention, GELU
// and norm kernels, with ggml's, and with the attention kernel's
// deliberate fault: the kernels' mean error against want must be within
// 1.5x ggml's (the bar for a new path), and the fault's outside it.
func compareWithGGML(t *testing.T, m *engine.Model, query string, docs []string, want []float64) {
	t.Helper()
	defer llama.SetAimindAttention(true)
	llama.SetAimindAttention(false)
	ggmlMean, ggmlWorst := meanError(t, m, query, docs, want)
	llama.SetAimindAttentionFault(true)
	faultMean, _ := meanError(t, m, query, docs, want)
	llama.SetAimindAttention(true)
	mean, worst := meanError(t, m, query, docs, want)
	bound := 1.5*ggmlMean + 1e-4
	t.Logf("mean error %.2e (worst %.2e); ggml's loop %.2e (worst %.2e); scale applied twice %.2e; bound %.2e",
		mean, worst, ggmlMean, ggmlWorst, faultMean, bound)
	if mean > bound {
		t.Errorf("mean error %.2e is more than 1.5x ggml's flash attention's %.2e", mean, ggmlMean)
	}
	if faultMean <= bound {
		t.Errorf("with the softmax scale applied twice the mean error is %.2e, within the bound %.2e: the test cannot see a wrong kernel", faultMean, bound)
	}
}
