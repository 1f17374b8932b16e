package selfcheck_test

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aimind/aimind/engine"
	"github.com/aimind/aimind/selfcheck"
)

// scorerFunc is a Scorer made of a function.
type scorerFunc func(query string, docs []string) []float64

func (f scorerFunc) Rerank(_ context.Context, query string, docs []string) (*engine.Result, error) {
	return &engine.Result{Scores: f(query, docs)}, nil
}

func writeFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "golden.jsonl")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCompareGolden: the report's worst and mean difference, the pairs
// ordered as expected, the lines past the relative bound, and sigmoid
// golden scores compared in that space.
func TestCompareGolden(t *testing.T) {
	path := writeFile(t, `{"query": "q1", "document": "a", "score": 2}
{"query": "q1", "document": "b", "score": -1}
{"query": "q2", "document": "c", "score": 0.5}
`)
	lines, err := selfcheck.ReadGolden(path, false)
	if err != nil {
		t.Fatal(err)
	}
	// a and c are scored exactly, b 0.25 off; the order of a and b is kept.
	model := scorerFunc(func(q string, docs []string) []float64 {
		out := make([]float64, len(docs))
		for i, d := range docs {
			out[i] = map[string]float64{"a": 2, "b": -0.75, "c": 0.5}[d]
		}
		return out
	})
	rep, err := selfcheck.CompareGolden(context.Background(), model, lines, false, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	if rep.N != 3 || rep.Queries != 2 || rep.Worst != 0.25 || math.Abs(rep.Sum-0.25) > 1e-12 || rep.Agree != 1 || rep.PairCount != 1 || rep.RelOver != 1 {
		t.Errorf("report %+v", rep)
	}
	if rep.Got[1] != -0.75 {
		t.Errorf("raw scores %v", rep.Got)
	}
	var b strings.Builder
	rep.Print(&b, path, "logit")
	if !strings.Contains(b.String(), "worst 0.25 at line 2") || !strings.Contains(b.String(), "1 of 1") {
		t.Errorf("printed:\n%s", b.String())
	}

	// The same logits against sigmoid golden scores: compared as sigmoid.
	sig := writeFile(t, `{"query": "q2", "document": "c", "score": 0.6224593312018546}`)
	lines, err = selfcheck.ReadGolden(sig, false)
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := selfcheck.CompareGolden(context.Background(), model, lines, true, 0); err != nil || rep.Worst > 1e-12 {
		t.Errorf("sigmoid: %+v, %v", rep, err)
	}
}

// TestReadGoldenRefusesBadLines: lines without a score (unless scores are
// optional), with unknown fields or empty texts are refused with the line.
func TestReadGoldenRefusesBadLines(t *testing.T) {
	cases := []struct {
		text     string
		optional bool
		want     string
	}{
		{`{"query": "q", "document": "d"}`, false, ":1: a line needs"},
		{`{"query": "q", "document": "d", "score": 1, "extra": 2}`, false, ":1: not a {query, document, score} line"},
		{"\n" + `{"query": "", "document": "d", "score": 1}`, false, ":2: a line needs"},
		{"", false, "holds no lines"},
	}
	for _, c := range cases {
		if _, err := selfcheck.ReadGolden(writeFile(t, c.text), c.optional); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.text, err, c.want)
		}
	}
	if lines, err := selfcheck.ReadGolden(writeFile(t, `{"query": "q", "document": "d"}`), true); err != nil || len(lines) != 1 || lines[0].Score != nil {
		t.Errorf("a line without a score where scores are optional: %v, %v", lines, err)
	}
}
