package engine

import (
	"fmt"
	"reflect"
	"testing"
)

func TestPack(t *testing.T) {
	type req struct {
		lens []int
		done []int // pairs already scheduled
	}
	cases := []struct {
		name    string
		queue   []req
		budget  int
		maxSeqs int
		want    []pick
		left    [][]int // remaining per request after the call
	}{
		{
			name:   "one request fits whole",
			queue:  []req{{lens: []int{100, 100, 100}}},
			budget: 512, maxSeqs: 256,
			want: []pick{{0, 0}, {0, 1}, {0, 2}},
			left: [][]int{{}},
		},
		{
			name:   "budget splits a request, in order",
			queue:  []req{{lens: []int{200, 200, 200}}},
			budget: 512, maxSeqs: 256,
			want: []pick{{0, 0}, {0, 1}},
			left: [][]int{{2}},
		},
		{
			name:   "oldest request first, next one fills the rest",
			queue:  []req{{lens: []int{300}}, {lens: []int{100, 100, 300}}},
			budget: 512, maxSeqs: 256,
			want: []pick{{0, 0}, {1, 0}, {1, 1}},
			left: [][]int{{}, {2}},
		},
		{
			name:   "a long pair is passed over for shorter ones that fit",
			queue:  []req{{lens: []int{300, 400, 100}}},
			budget: 512, maxSeqs: 256,
			want: []pick{{0, 0}, {0, 2}},
			left: [][]int{{1}},
		},
		{
			name:   "a pair above budget gets a call of its own",
			queue:  []req{{lens: []int{600, 10}}},
			budget: 512, maxSeqs: 256,
			want: []pick{{0, 0}},
			left: [][]int{{1}},
		},
		{
			name:   "sequence cap, shared",
			queue:  []req{{lens: []int{1, 1, 1}}, {lens: []int{1}}},
			budget: 512, maxSeqs: 2,
			want: []pick{{0, 0}, {1, 0}},
			left: [][]int{{1, 2}, {}},
		},
		{
			name:   "a small request is not stuck behind a large one",
			queue:  []req{{lens: []int{100, 100, 100, 100, 100, 100, 100, 100}}, {lens: []int{100}}},
			budget: 512, maxSeqs: 256,
			want: []pick{{0, 0}, {0, 1}, {0, 2}, {0, 3}, {1, 0}},
			left: [][]int{{4, 5, 6, 7}, {}},
		},
		{
			name:   "three requests share a call",
			queue:  []req{{lens: []int{200, 200, 200}}, {lens: []int{200, 200}}, {lens: []int{100, 100}}},
			budget: 600, maxSeqs: 256,
			want: []pick{{0, 0}, {1, 0}, {2, 0}, {2, 1}},
			left: [][]int{{1, 2}, {1}, {}},
		},
		{
			name:   "already scheduled pairs are skipped",
			queue:  []req{{lens: []int{100, 100, 100}, done: []int{0}}},
			budget: 512, maxSeqs: 256,
			want: []pick{{0, 1}, {0, 2}},
			left: [][]int{{}},
		},
		{
			name:   "exact budget",
			queue:  []req{{lens: []int{256, 256, 1}}},
			budget: 512, maxSeqs: 256,
			want: []pick{{0, 0}, {0, 1}},
			left: [][]int{{2}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var q []*pending
			for _, r := range tc.queue {
				p := &pending{lens: r.lens}
				done := map[int]bool{}
				for _, d := range r.done {
					done[d] = true
				}
				for i := range r.lens {
					if !done[i] {
						p.remaining = append(p.remaining, i)
					}
				}
				q = append(q, p)
			}
			got := pack(q, tc.budget, tc.maxSeqs)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("picks = %v, want %v", got, tc.want)
			}
			for i, p := range q {
				if len(p.remaining) != len(tc.left[i]) || (len(p.remaining) > 0 && !reflect.DeepEqual(p.remaining, tc.left[i])) {
					t.Fatalf("request %d remaining = %v, want %v", i, p.remaining, tc.left[i])
				}
			}
		})
	}
}

// TestPackDrainsEverything checks that repeated calls schedule every pair
// exactly once and never exceed the limits except for a lone oversize pair.
func TestPackDrainsEverything(t *testing.T) {
	lens := [][]int{{5, 600, 40, 40}, {512, 1}, {300, 300, 300}, {7}}
	var q []*pending
	for _, l := range lens {
		p := &pending{lens: l}
		for i := range l {
			p.remaining = append(p.remaining, i)
		}
		q = append(q, p)
	}
	seen := map[pick]int{}
	for calls := 0; ; calls++ {
		if calls > 20 {
			t.Fatal("pack does not make progress")
		}
		picks := pack(q, 512, 3)
		if len(picks) == 0 {
			break
		}
		if len(picks) > 3 {
			t.Fatalf("call with %d sequences", len(picks))
		}
		tokens := 0
		for _, p := range picks {
			seen[p]++
			tokens += q[p.req].lens[p.pair]
		}
		if tokens > 512 && len(picks) > 1 {
			t.Fatalf("call with %d tokens in %d pairs", tokens, len(picks))
		}
	}
	for r, l := range lens {
		for i := range l {
			if seen[pick{r, i}] != 1 {
				t.Fatalf("pair %d/%d scheduled %d times", r, i, seen[pick{r, i}])
			}
		}
	}
}

func TestChunkWindows(t *testing.T) {
	seq := func(n int) []int32 {
		s := make([]int32, n)
		for i := range s {
			s[i] = int32(i)
		}
		return s
	}
	cases := []struct {
		n, size, limit int
		starts         []int32
		more           bool
	}{
		{10, 10, 10, []int32{0}, false},
		{10, 4, 10, []int32{0, 3, 6}, false},  // stride 3, last window ends at the end
		{20, 8, 10, []int32{0, 6, 12}, false}, // stride 6
		{100, 8, 3, []int32{0, 6, 12}, true},  // capped
		{100, 8, 1, []int32{0}, true},         // one window only
		{9, 8, 10, []int32{0, 1}, false},      // the last window overlaps most of the first
	}
	for _, tc := range cases {
		w, more := chunk(seq(tc.n), tc.size, tc.limit)
		var starts []int32
		for _, x := range w {
			if len(x) != min(tc.size, tc.n) {
				t.Errorf("n=%d size=%d: window of %d", tc.n, tc.size, len(x))
			}
			starts = append(starts, x[0])
		}
		if fmt.Sprint(starts) != fmt.Sprint(tc.starts) || more != tc.more {
			t.Errorf("n=%d size=%d limit=%d: starts %v more %v, want %v %v", tc.n, tc.size, tc.limit, starts, more, tc.starts, tc.more)
		}
		if !more && w[len(w)-1][len(w[len(w)-1])-1] != int32(tc.n-1) {
			t.Errorf("n=%d: the last window does not reach the end", tc.n)
		}
	}
}
