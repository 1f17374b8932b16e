package engine_test

import (
	"math"
	"strings"
	"testing"

	"github.com/aimind/aimind/engine"
	"github.com/aimind/aimind/internal/synth"
	"github.com/aimind/aimind/internal/testutil"
	"github.com/aimind/aimind/llama"
	"github.com/aimind/aimind/modelfile"
)

var (
	bf16CPU = llama.CPUFeatures{AVX2: true, AVX512: true, AVX512VNNI: true, AVX512BF16: true}
	amxCPU  = llama.CPUFeatures{AVX2: true, AVX512: true, AVX512VNNI: true, AVX512BF16: true, AMXInt8: true}
	avx2CPU = llama.CPUFeatures{AVX2: true}
)

// TestPlanCountsTheBF16Copy: the estimate is the memory of the path the CPU
// takes: a Q8_0 file computed as BF16 counts its copy (64 bytes for every 34
// of the file), the same file on AMX or with the copy off does not, and the
// Q8_0 fallback of an "auto" plan is the smaller one. (Issue 21, item 4: the
// deploy dialog showed 165 MiB for a model that took 241.)
func TestPlanCountsTheBF16Copy(t *testing.T) {
	const size = 92 << 20
	q8 := engine.Shape{FileType: "Q8_0", SizeBytes: size, Embedding: 384, FeedForward: 1536, Heads: 12}
	o := engine.Options{FlashAttn: true, DerivedDir: t.TempDir()}
	off := o
	off.Q8AsBF16 = "off"
	noDerived := o
	noDerived.DerivedDir = ""
	cases := []struct {
		name    string
		shape   engine.Shape
		o       engine.Options
		cpu     llama.CPUFeatures
		bf16    bool
		weights int64
	}{
		{"Q8_0 on AVX512-BF16", q8, o, bf16CPU, true, size / 34 * 64},
		{"Q8_0 on AMX", q8, o, amxCPU, false, size},
		{"Q8_0 on AVX2", q8, o, avx2CPU, false, size},
		{"Q8_0 with the copy off", q8, off, bf16CPU, false, size},
		{"Q8_0 with nowhere to write the copy", q8, noDerived, bf16CPU, false, size},
		{"F16 on AVX512-BF16 (same size)", engine.Shape{FileType: "F16", SizeBytes: size, Embedding: 384, FeedForward: 1536, Heads: 12}, o, bf16CPU, true, size},
	}
	for _, c := range cases {
		p := engine.NewPlan(c.shape, c.o, c.cpu)
		if p.BF16 != c.bf16 || p.Weights != c.weights || p.Memory != p.Weights+p.Work+32<<20 || p.Work <= 0 {
			t.Errorf("%s: BF16 %v, weights %d, work %d, memory %d; want BF16 %v, weights %d", c.name, p.BF16, p.Weights, p.Work, p.Memory, c.bf16, c.weights)
		}
	}
	p := engine.NewPlan(q8, o, bf16CPU)
	if p.Memory < size*64/34 {
		t.Errorf("the BF16 plan's %d MiB leaves out the copy of %d MiB", p.Memory>>20, size*64/34>>20)
	}
	alt, ok := p.WithoutCopy(bf16CPU)
	if !ok || alt.BF16 || alt.Options.Q8AsBF16 != "off" || alt.Memory >= p.Memory || alt.Weights != size {
		t.Errorf("fallback %+v, %v: want the Q8_0 kernels with the file's own size", alt, ok)
	}
	on := o
	on.Q8AsBF16 = "on"
	if _, ok := engine.NewPlan(q8, on, bf16CPU).WithoutCopy(bf16CPU); ok {
		t.Error(`--q8-as-bf16 on: a fallback to Q8_0 was offered`)
	}
}

// TestPlanBeforeDownload: the deploy dialog knows a file's type and size
// only; its estimate (an allowance for the working memory) stays within 20 %
// of the estimate from the file's own shape for real reranker shapes, and
// within 5 % for base size and up.
func TestPlanBeforeDownload(t *testing.T) {
	shapes := []struct {
		name            string
		params          float64
		embd, ff, heads int
		tolerance       float64
	}{
		{"synthetic tiny", 0.3e6, 64, 128, 4, 0.20},
		{"ms-marco-MiniLM-L6", 22.7e6, 384, 1536, 12, 0.20},
		{"bge-reranker-base", 278e6, 768, 3072, 12, 0.05},
		{"bge-reranker-v2-m3", 568e6, 1024, 4096, 16, 0.05},
	}
	for _, s := range shapes {
		for _, ft := range []struct {
			name          string
			bytesPerParam float64
		}{{"F16", 2}, {"Q8_0", 34.0 / 32}} {
			for _, cpu := range []llama.CPUFeatures{bf16CPU, amxCPU, avx2CPU} {
				size := int64(s.params * ft.bytesPerParam)
				o := engine.Options{FlashAttn: true, DerivedDir: t.TempDir()}
				known := engine.NewPlan(engine.Shape{FileType: ft.name, SizeBytes: size, Embedding: s.embd, FeedForward: s.ff, Heads: s.heads}, o, cpu)
				before := engine.NewPlan(engine.Shape{FileType: ft.name, SizeBytes: size}, o, cpu)
				if before.BF16 != known.BF16 {
					t.Errorf("%s %s: the dialog's plan takes another path", s.name, ft.name)
				}
				if d := math.Abs(float64(before.Memory-known.Memory)) / float64(known.Memory); d > s.tolerance {
					t.Errorf("%s %s (BF16 copy %v): before download %d MiB, from the shape %d MiB: %.0f %% apart, more than %.0f %%",
						s.name, ft.name, known.BF16, before.Memory>>20, known.Memory>>20, d*100, s.tolerance*100)
				}
			}
		}
	}
}

// TestPlanWeightsAreWhatLlamaCppLoads: the plan's weights are within 10 % of
// what llama.cpp reports for the loaded weights, for an F32, an F16 and a Q8_0 file on
// the path this CPU takes.
func TestPlanWeightsAreWhatLlamaCppLoads(t *testing.T) {
	spec := synth.Tiny()
	spec.Hidden, spec.FFN = 256, 1024 // weights large beside the vocabulary
	for _, c := range []struct {
		name string
		path string
	}{
		{"F32", testutil.MustModel(t, spec)},
		{"F16", testutil.MustQuantized(t, spec, llama.FtypeF16)},
		{"Q8_0", testutil.MustQuantized(t, spec, llama.FtypeQ8_0)},
	} {
		facts, err := modelfile.Check(c.path)
		if err != nil {
			t.Fatal(err)
		}
		o := engine.Options{Threads: 1, FlashAttn: true, DerivedDir: t.TempDir()}
		plan := engine.PlanFor(facts, o)
		m, err := engine.Open(c.path, o)
		if err != nil {
			t.Fatal(err)
		}
		loaded := m.WeightBytes()
		m.Close()
		// aimind's AMX-BF16 kernels take only the matrices whose shape
		// they tile; the plan counts every matrix but the token embeddings
		// as BF16, so it may be above what loads (a safe side), not below.
		over := 0.10
		if strings.HasPrefix(m.Kernel(), "AMX BF16, aimind") {
			over = 0.20
		}
		if d := float64(plan.Weights-loaded) / float64(loaded); d > over || d < -0.10 {
			t.Errorf("%s (%s, BF16 copy %v): plan %d KiB of weights, llama.cpp loaded %d KiB", c.name, facts.FileType, plan.BF16, plan.Weights>>10, loaded>>10)
		} else {
			t.Logf("%s (%s, BF16 copy %v, kernel %s): plan %d KiB of weights, llama.cpp loaded %d KiB", c.name, facts.FileType, plan.BF16, m.Kernel(), plan.Weights>>10, loaded>>10)
		}
	}
}
