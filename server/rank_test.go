package server

import (
	"testing"

	"github.com/aimind/aimind/engine"
)

// TestRankSortsByLogit: with normalize, logits above ~36.7 all become 1.0;
// the order must still follow the logits, not fall back to the index.
func TestRankSortsByLogit(t *testing.T) {
	logits := []float64{37, 45, 40, -3}
	docs := make([]doc, len(logits))
	scores := make([]engine.DocScore, len(logits))
	for i, l := range logits {
		scores[i] = engine.DocScore{Score: l}
	}
	got := rank(&rerankRequest{Normalize: true}, docs, scores)
	want := []int{1, 2, 0, 3}
	for i, r := range got {
		if r.index != want[i] {
			t.Fatalf("order %v..., want %v", got[i].index, want)
		}
		if i < 3 && r.score != 1 {
			t.Fatalf("normalized score %v, want 1 (saturated)", r.score)
		}
	}
}
