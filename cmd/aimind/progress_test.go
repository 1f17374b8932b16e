package main

import "testing"

// TestProgressBar: more bytes than listed, none listed, or a negative count
// draw a bar instead of panicking in strings.Repeat.
func TestProgressBar(t *testing.T) {
	cases := []struct {
		done, total int64
		pct         float64
		bar         string
	}{
		{0, 100, 0, "                         "},
		{50, 100, 50, "============             "},
		{100, 100, 100, "========================="},
		{250, 100, 100, "========================="},
		{10, 0, 0, "                         "},
		{-5, 100, 0, "                         "},
	}
	for _, tc := range cases {
		pct := percent(tc.done, tc.total)
		if pct != tc.pct {
			t.Errorf("percent(%d, %d) = %v, want %v", tc.done, tc.total, pct, tc.pct)
		}
		if bar := progressBar(pct); bar != tc.bar {
			t.Errorf("bar for %d/%d = %q, want %q", tc.done, tc.total, bar, tc.bar)
		}
	}
}
