package batch

import (
	"runtime"
	"testing"
)

// TestCacheEntryBytesCoverTheHeap: what the bound charges an entry is at
// least what an entry really takes on the Go heap, so --cache-bytes bounds
// the memory it names.
func TestCacheEntryBytesCoverTheHeap(t *testing.T) {
	const n = 200_000
	c := NewScoreCache(int64(n) * CacheEntryBytes)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := 0; i < n; i++ {
		c.put(pairKey([32]byte{}, []int32{int32(i)}), float64(i))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("%.0f bytes of heap an entry, %d charged", per, CacheEntryBytes)
	if st := c.Stats(); st.Entries != n {
		t.Fatalf("%d entries kept of %d", st.Entries, n)
	}
	if per > CacheEntryBytes {
		t.Fatalf("an entry takes %.0f bytes of heap but is charged %d", per, CacheEntryBytes)
	}
	runtime.KeepAlive(c)
}
