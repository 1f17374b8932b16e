package selfcheck_test

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aimind/aimind/engine"
	"github.com/aimind/aimind/internal/reference"
	"github.com/aimind/aimind/internal/spmref"
	"github.com/aimind/aimind/internal/synth"
	"github.com/aimind/aimind/internal/testutil"
	"github.com/aimind/aimind/modelfile"
	"github.com/aimind/aimind/selfcheck"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testutil.Cleanup()
	os.Exit(code)
}

func open(t *testing.T, path string) *engine.Model {
	t.Helper()
	m, err := engine.Open(path, engine.Options{Threads: 2})
	if err != nil {
		t.Fatalf("cannot open %s: %v", path, err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func refScores(t *testing.T, ref *reference.Model, pairs []engine.Pair) []float64 {
	t.Helper()
	out := make([]float64, len(pairs))
	for i, p := range pairs {
		v, err := ref.Score(p.Tokens)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = v
	}
	return out
}

// knownTriples are triples whose answers the float64 reference gives for the
// model at path: "relevant" is the document the reference scores higher, by
// a margin well above the engine's error against it (2e-2).
func knownTriples(t *testing.T, path string) []selfcheck.Triple {
	t.Helper()
	ref, err := reference.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	m := open(t, path)
	var ts []selfcheck.Triple
	for seed := uint64(1); len(ts) < 16; seed++ {
		if seed > 200 {
			t.Fatal("cannot find 16 triples with a clear answer")
		}
		q, a, b := synth.Text(seed, 5), synth.Text(1000+seed, 9), synth.Text(2000+seed, 9)
		pairs, err := m.Tokenize(q, []string{a, b})
		if err != nil {
			t.Fatal(err)
		}
		s := refScores(t, ref, pairs)
		if math.Abs(s[0]-s[1]) < 0.2 {
			continue
		}
		if s[1] > s[0] {
			a, b = b, a
		}
		ts = append(ts, selfcheck.Triple{Lang: "synthetic", Query: q, Relevant: a, Irrelevant: b})
	}
	return ts
}

func run(t *testing.T, path string, id selfcheck.Identity, suite selfcheck.Suite) selfcheck.Outcome {
	t.Helper()
	out, err := selfcheck.Run(context.Background(), open(t, path), id, suite)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func failed(out selfcheck.Outcome) []string {
	var names []string
	for _, c := range out.Checks {
		if !c.Passed {
			names = append(names, c.Name)
		}
	}
	return names
}

// TestKnownAnswers: the same synthetic weights, healthy and broken in the
// ways the check exists for, against answers from the float64 reference.
func TestKnownAnswers(t *testing.T) {
	good := synth.Tiny()
	good.Seed = 21
	goodPath := testutil.MustModel(t, good)
	suite := selfcheck.Suite{Triples: knownTriples(t, goodPath)}

	out := run(t, goodPath, selfcheck.Identity{}, suite)
	if out.Status != selfcheck.Passed {
		t.Errorf("a model that gives the reference's answers is %s: %s", out.Status, out.Reason)
	}

	cases := []struct {
		name   string
		edit   func(name string, data []float32)
		failed string
	}{
		{"classifier sign flipped", func(name string, d []float32) {
			if strings.HasPrefix(name, "cls.output.") {
				for i := range d {
					d[i] = -d[i]
				}
			}
		}, "inverted"},
		{"NaN in the head's bias", func(name string, d []float32) {
			if name == "cls.output.bias" {
				d[0] = float32(math.NaN())
			}
		}, "finite scores"},
		{"head that ignores the text", func(name string, d []float32) {
			if name == "cls.output.weight" {
				clear(d)
			}
		}, "varied scores"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			spec := good
			spec.Edit = c.edit
			out := run(t, testutil.MustModel(t, spec), selfcheck.Identity{}, suite)
			if out.Status != selfcheck.Suspect || !slices.Contains(failed(out), c.failed) {
				t.Fatalf("want suspect with %q failed; got %s, failed %v: %s", c.failed, out.Status, failed(out), out.Reason)
			}
			t.Logf("flagged: %s", out.Reason)
		})
	}
}

// TestRandomWeightsAreFlagged: a synthetic model ranks the built-in
// multilingual triples at chance, and the default suite says so.
func TestRandomWeightsAreFlagged(t *testing.T) {
	for _, spec := range []synth.Spec{synth.Tiny(), {Layers: 2, Hidden: 64, Heads: 2, FFN: 256, Positions: 512, Seed: 9, Vocab: synth.VocabWPM}} {
		out := run(t, testutil.MustModel(t, spec), selfcheck.Identity{Name: "aimind-synthetic-reranker"}, selfcheck.Default())
		if out.Status != selfcheck.Suspect {
			t.Errorf("random weights (seed %d) passed the built-in triples: %+v", spec.Seed, out.Checks)
		}
		for _, c := range out.Checks {
			if strings.Contains(c.Name, "guide") {
				t.Errorf("the guide request ran for a model that is not bge-reranker-v2-m3: %+v", c)
			}
		}
		t.Logf("seed %d: %s", spec.Seed, out.Reason)
	}
}

// TestBGEM3Rule: a stand-in carrying bge-reranker-v2-m3's name, with a real
// SentencePiece vocabulary, is held to the guide's request with answers from
// independent references: SentencePiece's token count and the float64
// forward pass's scores. With the real model's numbers it is flagged.
func TestBGEM3Rule(t *testing.T) {
	sp := spmref.Trained(t)
	g := selfcheck.BGEM3Guide
	path := filepath.Join(t.TempDir(), "bge-reranker-v2-m3-F32.gguf")
	var want selfcheck.Guide
	// Weights whose three scores are apart by more than the engine's error
	// against the reference (2e-2), so that the order is the reference's.
	for seed := uint64(33); ; seed++ {
		if seed > 60 {
			t.Fatal("no seed gives three well-separated scores")
		}
		spec := synth.Tiny()
		spec.Seed = seed
		spec.Custom = sp.Vocab
		if err := synth.Write(path, spec); err != nil {
			t.Fatal(err)
		}
		want = selfcheck.Guide{Name: g.Name, Query: g.Query, Documents: g.Documents}
		want.Scores, want.PromptTokens = sp.Scores(t, path, g.Query, g.Documents)
		s := slices.Sorted(slices.Values(want.Scores))
		if s[1]-s[0] > 0.2 && s[2]-s[1] > 0.2 {
			break
		}
	}
	facts, err := modelfile.Check(path)
	if err != nil {
		t.Fatal(err)
	}
	id := selfcheck.Identity{File: path, Name: facts.Name, FileType: facts.FileType}
	if !selfcheck.IsBGEM3(id) {
		t.Fatal("the stand-in is not recognised by its file name")
	}
	want.Order = []int{0, 1, 2}
	slices.SortFunc(want.Order, func(a, b int) int {
		if want.Scores[a] > want.Scores[b] {
			return -1
		}
		return 1
	})

	suite := selfcheck.Suite{Guide: &want, Recognise: selfcheck.IsBGEM3}
	out := run(t, path, id, suite)
	if out.Status != selfcheck.Passed || len(out.Checks) != 3 {
		t.Fatalf("the stand-in with its own reference answers: %s %+v", out.Status, out.Checks)
	}
	t.Logf("stand-in: %d prompt tokens, scores %v, tolerance %.2g for %s", want.PromptTokens, want.Scores, selfcheck.GuideTolerance(facts.FileType), facts.FileType)

	// The guide's real numbers: a model that answers otherwise is suspect,
	// with its token count and scores named.
	suite.Guide = &selfcheck.BGEM3Guide
	out = run(t, path, id, suite)
	if out.Status != selfcheck.Suspect || !strings.Contains(out.Reason, "scores") {
		t.Fatalf("the stand-in passed as the real bge-reranker-v2-m3: %+v", out)
	}
	if want.PromptTokens != 69 && !strings.Contains(out.Reason, "prompt_tokens") {
		t.Errorf("a token count of %d is not flagged against the guide's 69: %s", want.PromptTokens, out.Reason)
	}
	t.Logf("flagged: %s", out.Reason)

	// Not recognised: the guide is not applied.
	out = run(t, path, selfcheck.Identity{File: "other-reranker.gguf"}, suite)
	if len(out.Checks) != 0 {
		t.Errorf("the guide ran for a model of another name: %+v", out.Checks)
	}
}

func TestGuideTolerance(t *testing.T) {
	prev := 0.0
	for _, ft := range []string{"F16", "Q8_0", "Q6_K", "Q4_K_M", "Q2_K"} {
		tol := selfcheck.GuideTolerance(ft)
		if tol <= prev {
			t.Errorf("tolerance for %s (%g) is not above the finer type's (%g)", ft, tol, prev)
		}
		prev = tol
	}
	// The widest bound keeps the guide's order: its closest scores are 2.4 apart.
	if s := selfcheck.BGEM3Guide.Scores; 2*prev >= s[1]-s[0] {
		t.Errorf("tolerance %g lets the guide's documents swap", prev)
	}
}
