package engine_test

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aimind/aimind/engine"
	"github.com/aimind/aimind/internal/reference"
	"github.com/aimind/aimind/internal/spmref"
	"github.com/aimind/aimind/internal/synth"
	"github.com/aimind/aimind/internal/testutil"
	"github.com/aimind/aimind/llama"
)

// worstError scores 20 pairs and returns the largest and the mean absolute
// difference from the float64 reference, failing on any pair outside
// rel*|want| + abs (no such check when rel is negative).
func worstError(t *testing.T, m *engine.Model, ref *reference.Model, rel, abs float64) (worst, mean float64) {
	t.Helper()
	pairs, err := m.Tokenize("what does the giant panda eat", documents(20))
	if err != nil {
		t.Fatal(err)
	}
	res, err := m.Score(context.Background(), pairs)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range pairs {
		want, err := ref.Score(p.Tokens)
		if err != nil {
			t.Fatal(err)
		}
		d := math.Abs(res.Scores[i] - want)
		worst = math.Max(worst, d)
		mean += d / float64(len(pairs))
		if rel >= 0 && d > rel*math.Abs(want)+abs {
			t.Errorf("pair %d: %.5f, reference %.5f", i, res.Scores[i], want)
		}
	}
	return worst, mean
}

// TestF16ComputedAsBF16: where the CPU has AVX512-BF16, an F16 file is
// converted to BF16 once at load (with flash attention on, the default), and
// its scores stay within the flash-attention bounds of the float64
// reference; with flash attention off, or with the option off, F16 stays.
func TestF16ComputedAsBF16(t *testing.T) {
	skipUnderRace(t)
	if !llama.CPU().AVX512BF16 {
		t.Skip("skipped: this CPU (or ggml's build for it) has no AVX512-BF16, so F16 files run the F16 kernels and there is no BF16 path to test")
	}
	for _, name := range []string{"tiny", "3x96-6heads", "wordpiece"} {
		spec := shapes[name]
		ref, err := reference.Load(testutil.MustModel(t, spec))
		if err != nil {
			t.Fatal(err)
		}
		half := spec
		half.F16 = true
		path := testutil.MustModel(t, half)
		derived := t.TempDir()
		t.Run(name, func(t *testing.T) {
			m := mustOpen(t, path, engine.Options{FlashAttn: true, DerivedDir: derived})
			if !strings.HasPrefix(m.Kernel(), "BF16") {
				t.Fatalf("kernel %q, want the BF16 path", m.Kernel())
			}
			copies, _ := filepath.Glob(filepath.Join(derived, "*-bf16.gguf"))
			if len(copies) != 1 {
				t.Fatalf("BF16 copies in %s: %v", derived, copies)
			}
			worst, mean := worstError(t, m, ref, 2e-2, 2e-2)
			t.Logf("BF16 path: worst %.2e, mean %.2e", worst, mean)
			// A second load reuses the copy.
			st, _ := os.Stat(copies[0])
			mustOpen(t, path, engine.Options{FlashAttn: true, DerivedDir: derived})
			if st2, _ := os.Stat(copies[0]); !st2.ModTime().Equal(st.ModTime()) {
				t.Fatal("the BF16 copy was written again")
			}
			for _, o := range []engine.Options{
				{FlashAttn: false, DerivedDir: derived},
				{FlashAttn: true, DerivedDir: derived, F16AsBF16: "off"},
			} {
				if k := mustOpen(t, path, o).Kernel(); !strings.HasPrefix(k, "F16") {
					t.Errorf("flash %v, option %q: kernel %q, want F16", o.FlashAttn, o.F16AsBF16, k)
				}
			}
		})
	}
}

// TestKernelNamed: every model says which kernels run it.
func TestKernelNamed(t *testing.T) {
	spec := shapes["3x96-6heads"]
	for _, tc := range []struct{ path, want string }{
		{testutil.MustModel(t, spec), "F32"},
		{testutil.MustQuantized(t, spec, llama.FtypeQ8_0), "Q8_0"},
	} {
		if k := mustOpen(t, tc.path, engine.Options{FlashAttn: true}).Kernel(); !strings.Contains(k, tc.want) && !strings.HasPrefix(k, "AMX") {
			t.Errorf("kernel %q, want it to name %s", k, tc.want)
		}
	}
}

// TestAMXPatch0002: where the CPU has AMX, patch 0002 puts 768- and
// 1024-wide Q8_0 matrices into AMX tiles (seen in llama.cpp's load report),
// and their scores are as close to the float64 reference as the stock Q8_0
// kernels' (at most 1.5x their mean error); a 32-wide model, which the AMX
// kernel refuses for most matrices, scores correctly too.
func TestAMXPatch0002(t *testing.T) {
	skipUnderRace(t)
	if !llama.CPU().AMXInt8 {
		t.Skip("skipped: this CPU has no AMX (amx_int8); patch 0002's AMX path cannot run here, Q8_0 files use the stock kernels")
	}
	cases := []struct {
		name    string
		spec    synth.Spec
		wantAMX bool
	}{
		{"768/3072", synth.Spec{Layers: 2, Hidden: 768, Heads: 12, FFN: 3072, Positions: 512, Seed: 31}, true},
		{"1024/4096", synth.Spec{Layers: 2, Hidden: 1024, Heads: 16, FFN: 4096, Positions: 512, Seed: 32}, true},
		{"384/1536", synth.Spec{Layers: 2, Hidden: 384, Heads: 6, FFN: 1536, Positions: 512, Seed: 33}, true},
		{"32/64", synth.Spec{Layers: 2, Hidden: 32, Heads: 2, FFN: 64, Positions: 512, Seed: 34}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ref, err := reference.Load(testutil.MustModel(t, tc.spec))
			if err != nil {
				t.Fatal(err)
			}
			q8 := testutil.MustQuantized(t, tc.spec, llama.FtypeQ8_0)
			// ggml's AMX kernels, not aimind's int8 ones (TestInt8Kernels).
			amx := mustOpen(t, q8, engine.Options{FlashAttn: true, AMXKernels: "off"})
			stock := mustOpen(t, q8, engine.Options{FlashAttn: true, NoExtraBuffers: true})
			if tc.wantAMX && !strings.HasPrefix(amx.Kernel(), "AMX int8 (") {
				t.Fatalf("kernel %q: the AMX buffer was not used", amx.Kernel())
			}
			if strings.HasPrefix(stock.Kernel(), "AMX") {
				t.Fatalf("stock load used AMX: %q", stock.Kernel())
			}
			// Random weights give logits far from zero on the wide shapes,
			// where Q8_0's own error is large: the bar is stock Q8_0's.
			_, stockMean := worstError(t, stock, ref, -1, 0)
			worst, mean := worstError(t, amx, ref, -1, 0)
			t.Logf("%s: AMX mean error %.2e (worst %.2e), stock %.2e", amx.Kernel(), mean, worst, stockMean)
			if mean > 1.5*stockMean+1e-3 {
				t.Errorf("AMX mean error %.2e is more than 1.5x stock's %.2e", mean, stockMean)
			}
		})
	}
}

// TestQ8ComputedAsBF16: with Q8AsBF16 "on", where the CPU has AVX512-BF16
// and no AMX, a Q8_0 file is dequantized into a BF16 copy at load; its
// scores are as close to the float64 reference as the Q8_0 kernels' (mean
// error at most 1.5x theirs on the same file). Under "auto" (the default,
// flash attention on) the copy is made only where aimind's VNNI kernels do
// not run: they are faster and take half its memory.
func TestQ8ComputedAsBF16(t *testing.T) {
	skipUnderRace(t)
	cpu := llama.CPU()
	if !cpu.AVX512BF16 || cpu.AMXInt8 {
		t.Skip("skipped: the Q8_0-as-BF16 path runs only on CPUs with AVX512-BF16 and without AMX (AMX int8 is faster); this one has BF16 ", cpu.AVX512BF16, ", AMX ", cpu.AMXInt8)
	}
	for _, name := range []string{"tiny", "3x96-6heads", "wordpiece"} {
		spec := shapes[name]
		ref, err := reference.Load(testutil.MustModel(t, spec))
		if err != nil {
			t.Fatal(err)
		}
		q8 := testutil.MustQuantized(t, spec, llama.FtypeQ8_0)
		t.Run(name, func(t *testing.T) {
			stock := mustOpen(t, q8, engine.Options{FlashAttn: true, DerivedDir: t.TempDir(), Q8AsBF16: "off"})
			bf := mustOpen(t, q8, engine.Options{FlashAttn: true, DerivedDir: t.TempDir(), Q8AsBF16: "on"})
			if !strings.HasPrefix(bf.Kernel(), "BF16") || strings.HasPrefix(stock.Kernel(), "BF16") {
				t.Fatalf("kernels %q and %q", bf.Kernel(), stock.Kernel())
			}
			auto := mustOpen(t, q8, engine.Options{FlashAttn: true, DerivedDir: t.TempDir()})
			if vnni := cpu.AimindQ8VNNI; vnni == strings.HasPrefix(auto.Kernel(), "BF16") {
				t.Fatalf("auto: kernel %q with aimind's VNNI kernels %v", auto.Kernel(), vnni)
			}
			_, stockMean := worstError(t, stock, ref, -1, 0)
			worst, mean := worstError(t, bf, ref, -1, 0)
			t.Logf("Q8_0 as BF16: mean %.2e (worst %.2e); Q8_0 kernels: mean %.2e", mean, worst, stockMean)
			if mean > 1.5*stockMean+1e-3 {
				t.Errorf("mean error %.2e is more than 1.5x the Q8_0 kernels' %.2e", mean, stockMean)
			}
		})
	}
}

// TestAimindAMXKernels: where aimind's AMX kernels can run, a Q8_0 file's
// weights go to them by default (BF16 tiles), on the three reranker widths
// and on a SentencePiece (XLM-R-like) vocabulary, and the scores are as close
// to the float64 reference as ggml's stock Q8_0 kernels' (mean error at most
// 1.5x theirs). The opt-in int8 kernels are held to 3x (their measured
// error, docs/benchmarks.md). Each bound must fail when every 16th weight row
// is doubled at load (its BF16 values, its int8 scales): a wrong kernel does
// not pass.
func TestAimindAMXKernels(t *testing.T) {
	skipUnderRace(t)
	cpu := llama.CPU()
	if !cpu.AimindAMXBF16 || !cpu.AimindAMXInt8 {
		t.Skipf("skipped: aimind's AMX kernels need AMX (amx_bf16, amx_int8) in the CPU and in this build (BF16 %v, int8 %v); here Q8_0 files keep ggml's kernels", cpu.AimindAMXBF16, cpu.AimindAMXInt8)
	}
	modes := []struct {
		option, kernel string
		bound          float64 // times stock Q8_0's mean error
	}{{"", "AMX BF16, aimind kernels", 1.5}, {"int8", "AMX int8, aimind kernels", 3}}
	for _, tc := range q8KernelCases {
		t.Run(tc.name, func(t *testing.T) {
			query, docs, want, q8 := tc.setUp(t)
			stockMean, _ := meanError(t, mustOpen(t, q8, engine.Options{FlashAttn: true, NoExtraBuffers: true}), query, docs, want)
			ggmlMean, _ := meanError(t, mustOpen(t, q8, engine.Options{FlashAttn: true, AMXKernels: "off"}), query, docs, want)
			for _, mode := range modes {
				m := mustOpen(t, q8, engine.Options{FlashAttn: true, AMXKernels: mode.option})
				if !strings.HasPrefix(m.Kernel(), mode.kernel) {
					t.Fatalf("option %q: kernel %q, want %s", mode.option, m.Kernel(), mode.kernel)
				}
				undo := engine.SetAMXScaleFault(2)
				faulty := mustOpen(t, q8, engine.Options{FlashAttn: true, AMXKernels: mode.option})
				undo()
				mean, worst := meanError(t, m, query, docs, want)
				faultMean, _ := meanError(t, faulty, query, docs, want)
				bound := mode.bound*stockMean + 1e-3
				t.Logf("%s: mean error %.2e (worst %.2e); stock Q8_0 %.2e, ggml AMX %.2e; every 16th row doubled %.2e; bound %.2e",
					m.Kernel(), mean, worst, stockMean, ggmlMean, faultMean, bound)
				if mean > bound {
					t.Errorf("%s: mean error %.2e is more than %.1fx stock Q8_0's %.2e", mode.kernel, mean, mode.bound, stockMean)
				}
				if faultMean <= bound {
					t.Errorf("%s: with every 16th weight row doubled the mean error is %.2e, within the bound %.2e: the test cannot see a wrong kernel", mode.kernel, faultMean, bound)
				}
			}
		})
	}
}

// referenceScores is the float64 reference's score of each pair as m
// tokenizes it.
func referenceScores(t *testing.T, m *engine.Model, ref interface {
	Score([]int32) (float64, error)
}, query string, docs []string) []float64 {
	t.Helper()
	pairs, err := m.Tokenize(query, docs)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]float64, len(pairs))
	for i, p := range pairs {
		if want[i], err = ref.Score(p.Tokens); err != nil {
			t.Fatal(err)
		}
	}
	return want
}

// meanError scores query and docs on m and returns the mean and the largest
// absolute difference from want.
func meanError(t *testing.T, m *engine.Model, query string, docs []string, want []float64) (mean, worst float64) {
	t.Helper()
	pairs, err := m.Tokenize(query, docs)
	if err != nil {
		t.Fatal(err)
	}
	res, err := m.Score(context.Background(), pairs)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Scores) != len(want) {
		t.Fatalf("%d scores for %d references", len(res.Scores), len(want))
	}
	for i, s := range res.Scores {
		d := math.Abs(s - want[i])
		mean += d / float64(len(want))
		worst = math.Max(worst, d)
	}
	return mean, worst
}

// TestAimindVNNIKernels: on a CPU with AVX512-VNNI and no AMX, a Q8_0 file
// runs aimind's VNNI GEMM (third_party/kernels/q8vnni.cpp) by default, and
// its scores are as close to the float64 reference as ggml's stock Q8_0
// kernels' (the same arithmetic: the file's blocks, activations per
// 32-block; the bound is 1.5x stock's mean error, the issue's), on three
// shapes and on SentencePiece-tokenized multilingual pairs. Every 16th
// weight row's scales doubled at load (a wrong kernel) must break the
// bound, and "off" must give ggml's kernels back.
func TestAimindVNNIKernels(t *testing.T) {
	skipUnderRace(t)
	cpu := llama.CPU()
	if !cpu.AimindQ8VNNI || cpu.AimindAMXBF16 || cpu.AimindAMXInt8 {
		t.Skipf("skipped: aimind's VNNI kernels run on CPUs with AVX512-VNNI and without aimind's AMX kernels (VNNI kernels in this build and CPU: %v; AMX: %v)", cpu.AimindQ8VNNI, cpu.AimindAMXBF16 || cpu.AimindAMXInt8)
	}
	for _, tc := range q8KernelCases {
		t.Run(tc.name, func(t *testing.T) {
			query, docs, want, q8 := tc.setUp(t)
			stock := mustOpen(t, q8, engine.Options{FlashAttn: true, NoExtraBuffers: true})
			stockMean, _ := meanError(t, stock, query, docs, want)
			if off := mustOpen(t, q8, engine.Options{FlashAttn: true, VNNIKernels: "off"}); strings.Contains(off.Kernel(), "aimind") {
				t.Errorf("VNNIKernels off: kernel %q", off.Kernel())
			}
			m := mustOpen(t, q8, engine.Options{FlashAttn: true})
			if !strings.HasPrefix(m.Kernel(), "Q8_0 AVX512-VNNI, aimind kernels") {
				t.Fatalf("default kernel %q, want aimind's VNNI kernels", m.Kernel())
			}
			undo := engine.SetAMXScaleFault(2)
			faulty := mustOpen(t, q8, engine.Options{FlashAttn: true})
			undo()
			mean, worst := meanError(t, m, query, docs, want)
			faultMean, _ := meanError(t, faulty, query, docs, want)
			bound := 1.5*stockMean + 1e-3
			t.Logf("%s: mean error %.2e (worst %.2e); stock Q8_0 (%s) %.2e; every 16th row doubled %.2e; bound %.2e",
				m.Kernel(), mean, worst, stock.Kernel(), stockMean, faultMean, bound)
			if mean > bound {
				t.Errorf("mean error %.2e is more than 1.5x stock Q8_0's %.2e", mean, stockMean)
			}
			if faultMean <= bound {
				t.Errorf("with every 16th weight row doubled the mean error is %.2e, within the bound %.2e: the test cannot see a wrong kernel", faultMean, bound)
			}
		})
	}
}

// q8KernelCases are the shapes the Q8_0 kernels' errors are measured on:
// the three reranker widths and a SentencePiece (XLM-R-like) vocabulary.
var q8KernelCases = []q8KernelCase{
	{"768/3072", synth.Spec{Layers: 2, Hidden: 768, Heads: 12, FFN: 3072, Positions: 512, Seed: 41}},
	{"1024/4096", synth.Spec{Layers: 2, Hidden: 1024, Heads: 16, FFN: 4096, Positions: 512, Seed: 42}},
	{"384/1536", synth.Spec{Layers: 2, Hidden: 384, Heads: 6, FFN: 1536, Positions: 512, Seed: 43}},
	{"sentencepiece-384/1536", synth.Spec{Layers: 2, Hidden: 384, Heads: 6, FFN: 1536, Positions: 512, Seed: 44}},
}

type q8KernelCase struct {
	name string
	spec synth.Spec
}

// setUp returns the case's query and documents, the float64 reference's
// scores of them and the path of the Q8_0 file of the same weights. The
// SentencePiece case's pairs are multilingual, tokenized by SentencePiece
// itself and scored by the float64 forward pass.
func (c q8KernelCase) setUp(t *testing.T) (query string, docs []string, want []float64, q8 string) {
	t.Helper()
	spec := c.spec
	query, docs = "what does the giant panda eat", documents(20)
	if strings.HasPrefix(c.name, "sentencepiece") {
		sp := spmref.Trained(t)
		spec.Custom = sp.Vocab
		rng := rand.New(rand.NewPCG(7, 8))
		query = spmref.MultilingualText(rng, 6)
		docs = make([]string, 16)
		for i := range docs {
			docs[i] = spmref.MultilingualText(rng, 10+i*6)
		}
		want, _ = sp.Scores(t, testutil.MustModel(t, spec), query, docs)
	} else {
		ref, err := reference.Load(testutil.MustModel(t, spec))
		if err != nil {
			t.Fatal(err)
		}
		want = referenceScores(t, mustOpen(t, testutil.MustModel(t, spec), engine.Options{FlashAttn: true}), ref, query, docs)
	}
	return query, docs, want, testutil.MustQuantized(t, spec, llama.FtypeQ8_0)
}
