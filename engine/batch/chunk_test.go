package batch

import (
	"fmt"
	"testing"
)

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
