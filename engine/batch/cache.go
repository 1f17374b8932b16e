package batch

import (
	"container/list"
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"sync/atomic"
)

// ScoreCache remembers the logits of pairs already scored, for every model
// of the process: RAG pipelines send the same candidates again and again
// (retries, pagination, many users asking the same thing). An entry is keyed
// by the model file's digest and the exact token ids of the pair, so a
// different file, a different truncation or a different layout is a
// different key; the value is the number the engine gave. The cache is a
// least-recently-used list bounded in bytes; a nil *ScoreCache is a cache
// that is off.
type ScoreCache struct {
	max int64

	mu      sync.Mutex
	entries map[cacheKey]*list.Element
	order   list.List // front: most recently used

	used   atomic.Int64
	hits   atomic.Uint64
	misses atomic.Uint64
}

// cacheKey is SHA-256 over the model digest and the pair's token ids: a
// fixed 32 bytes whatever the pair's length.
type cacheKey [sha256.Size]byte

type cacheEntry struct {
	key   cacheKey
	score float64
}

// CacheEntryBytes is what one entry is charged against the bound: its key
// and value (40 bytes) plus the list element and the map's share: the Go
// heap grows by about 160 bytes an entry, and the rest covers the map's
// doubling (TestCacheEntryBytesCoverTheHeap measures it).
const CacheEntryBytes = 192

// DefaultCacheBytes is --cache-bytes' default.
const DefaultCacheBytes = 64 << 20

// NewScoreCache returns a cache bounded to maxBytes, or nil (off) when
// maxBytes is below one entry.
func NewScoreCache(maxBytes int64) *ScoreCache {
	if maxBytes < CacheEntryBytes {
		return nil
	}
	return &ScoreCache{max: maxBytes, entries: map[cacheKey]*list.Element{}}
}

func pairKey(digest [32]byte, tokens []int32) cacheKey {
	buf := make([]byte, 0, len(digest)+4*len(tokens))
	buf = append(buf, digest[:]...)
	for _, t := range tokens {
		buf = binary.LittleEndian.AppendUint32(buf, uint32(t))
	}
	return sha256.Sum256(buf)
}

// get returns the cached score of key and counts a hit or a miss.
func (c *ScoreCache) get(k cacheKey) (float64, bool) {
	c.mu.Lock()
	e, ok := c.entries[k]
	score := 0.0
	if ok {
		c.order.MoveToFront(e)
		score = e.Value.(*cacheEntry).score // read under the lock: put may rewrite it
	}
	c.mu.Unlock()
	if !ok {
		c.misses.Add(1)
		return 0, false
	}
	c.hits.Add(1)
	return score, true
}

// put stores a score, evicting the least recently used entries past the
// bound.
func (c *ScoreCache) put(k cacheKey, score float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[k]; ok {
		e.Value.(*cacheEntry).score = score
		c.order.MoveToFront(e)
		return
	}
	c.entries[k] = c.order.PushFront(&cacheEntry{key: k, score: score})
	used := c.used.Add(CacheEntryBytes)
	for used > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.entries, last.Value.(*cacheEntry).key)
		used = c.used.Add(-CacheEntryBytes)
	}
}

// CacheStats are the cache's counters.
type CacheStats struct {
	Hits, Misses uint64
	Bytes, Max   int64
	Entries      int
}

// Stats reads the counters; a nil cache reports zeros.
func (c *ScoreCache) Stats() CacheStats {
	if c == nil {
		return CacheStats{}
	}
	c.mu.Lock()
	n := len(c.entries)
	c.mu.Unlock()
	return CacheStats{Hits: c.hits.Load(), Misses: c.misses.Load(), Bytes: c.used.Load(), Max: c.max, Entries: n}
}
