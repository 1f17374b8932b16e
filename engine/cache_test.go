package engine_test

import (
	"context"
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/aimind/aimind/engine"
	"github.com/aimind/aimind/internal/synth"
	"github.com/aimind/aimind/internal/testutil"
)

// encoderCalls counts the pairs and tokens a model sent to llama.cpp.
type encoderCalls struct {
	mu            sync.Mutex
	pairs, tokens int
}

func (c *encoderCalls) observe(pairs, tokens int, _ time.Duration) {
	c.mu.Lock()
	c.pairs += pairs
	c.tokens += tokens
	c.mu.Unlock()
}

func (c *encoderCalls) take() (pairs, tokens int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, t := c.pairs, c.tokens
	c.pairs, c.tokens = 0, 0
	return p, t
}

func pairTokens(pairs []engine.Pair) int {
	n := 0
	for _, p := range pairs {
		n += len(p.Tokens)
	}
	return n
}

func TestScoreCache(t *testing.T) {
	path := testutil.MustModel(t, synth.Tiny())
	open := func(cache *engine.ScoreCache, calls *encoderCalls) *engine.Model {
		return mustOpen(t, path, engine.Options{FlashAttn: true, Cache: cache, OnBatch: calls.observe})
	}
	ctx := context.Background()
	docs := documents(8)

	t.Run("hit: the same numbers, no encoder call", func(t *testing.T) {
		var calls encoderCalls
		m := open(engine.NewScoreCache(1<<20), &calls)
		first, err := m.Rerank(ctx, "river fish", docs)
		if err != nil {
			t.Fatal(err)
		}
		if p, _ := calls.take(); p != len(docs) || first.Cached != 0 {
			t.Fatalf("first request: %d pairs encoded, %d cached", p, first.Cached)
		}
		again, err := m.Rerank(ctx, "river fish", docs)
		if err != nil {
			t.Fatal(err)
		}
		if p, _ := calls.take(); p != 0 || again.Cached != len(docs) {
			t.Fatalf("repeat: %d pairs encoded, %d cached", p, again.Cached)
		}
		if again.Tokens != first.Tokens {
			t.Fatalf("usage differs: %d then %d tokens", first.Tokens, again.Tokens)
		}
		for i := range docs {
			if again.Scores[i] != first.Scores[i] {
				t.Errorf("document %d: cached %v, computed %v", i, again.Scores[i], first.Scores[i])
			}
		}
		// And against a model without a cache, scoring the same pairs fresh:
		// within the batch-invariance bound.
		fresh, err := open(nil, &encoderCalls{}).Rerank(ctx, "river fish", docs)
		if err != nil {
			t.Fatal(err)
		}
		for i := range docs {
			if math.Abs(fresh.Scores[i]-again.Scores[i]) > 1e-4 {
				t.Errorf("document %d: cached %v, fresh %v", i, again.Scores[i], fresh.Scores[i])
			}
		}
	})

	t.Run("partial hit computes only the rest", func(t *testing.T) {
		var calls encoderCalls
		m := open(engine.NewScoreCache(1<<20), &calls)
		if _, err := m.Rerank(ctx, "q", docs[:5]); err != nil {
			t.Fatal(err)
		}
		calls.take()
		pairs, err := m.Tokenize("q", docs)
		if err != nil {
			t.Fatal(err)
		}
		res, err := m.Score(ctx, pairs)
		if err != nil {
			t.Fatal(err)
		}
		p, tok := calls.take()
		if p != 3 || tok != pairTokens(pairs[5:]) || res.Cached != 5 {
			t.Fatalf("encoded %d pairs, %d tokens (want 3, %d); %d cached", p, tok, pairTokens(pairs[5:]), res.Cached)
		}
	})

	t.Run("a pair repeated in one request is encoded once", func(t *testing.T) {
		var calls encoderCalls
		m := open(engine.NewScoreCache(1<<20), &calls)
		res, err := m.Rerank(ctx, "q", []string{"same text", "other text", "same text"})
		if err != nil {
			t.Fatal(err)
		}
		if p, _ := calls.take(); p != 2 || res.Scores[0] != res.Scores[2] {
			t.Fatalf("encoded %d pairs; scores %v", p, res.Scores)
		}
	})

	t.Run("another truncation misses", func(t *testing.T) {
		var calls encoderCalls
		m := open(engine.NewScoreCache(1<<20), &calls)
		long := []string{synth.Text(5, 60)}
		whole, err := m.Prepare([]engine.Query{{Text: "q", Docs: long}}, engine.DocOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Run(ctx, whole); err != nil {
			t.Fatal(err)
		}
		calls.take()
		cut, err := m.Prepare([]engine.Query{{Text: "q", Docs: long}}, engine.DocOptions{MaxDocTokens: 10})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Run(ctx, cut); err != nil {
			t.Fatal(err)
		}
		if p, _ := calls.take(); p != 1 {
			t.Fatalf("the truncated document was answered from the whole one's entry (%d pairs encoded)", p)
		}
	})

	t.Run("another model file misses, shared cache", func(t *testing.T) {
		cache := engine.NewScoreCache(1 << 20)
		var callsA, callsB encoderCalls
		a := open(cache, &callsA)
		other := synth.Tiny()
		other.Seed++
		b := mustOpen(t, testutil.MustModel(t, other), engine.Options{FlashAttn: true, Cache: cache, OnBatch: callsB.observe})
		ra, err := a.Rerank(ctx, "q", docs)
		if err != nil {
			t.Fatal(err)
		}
		rb, err := b.Rerank(ctx, "q", docs)
		if err != nil {
			t.Fatal(err)
		}
		if p, _ := callsB.take(); p != len(docs) || rb.Cached != 0 {
			t.Fatalf("second model: %d pairs encoded, %d cached", p, rb.Cached)
		}
		if ra.Scores[0] == rb.Scores[0] {
			t.Fatalf("two different models gave the same score %v", ra.Scores[0])
		}
	})

	t.Run("off with 0", func(t *testing.T) {
		if c := engine.NewScoreCache(0); c != nil {
			t.Fatal("a cache of 0 bytes is not off")
		}
		var calls encoderCalls
		m := open(engine.NewScoreCache(0), &calls)
		for i := 0; i < 2; i++ {
			res, err := m.Rerank(ctx, "q", docs)
			if err != nil {
				t.Fatal(err)
			}
			if p, _ := calls.take(); p != len(docs) || res.Cached != 0 {
				t.Fatalf("round %d: %d pairs encoded, %d cached", i, p, res.Cached)
			}
		}
	})

	t.Run("eviction by bytes, least recently used first", func(t *testing.T) {
		var calls encoderCalls
		cache := engine.NewScoreCache(3 * engine.CacheEntryBytes)
		m := open(cache, &calls)
		score := func(doc string) int {
			t.Helper()
			if _, err := m.Rerank(ctx, "q", []string{doc}); err != nil {
				t.Fatal(err)
			}
			p, _ := calls.take()
			return p
		}
		for _, d := range []string{"a", "b", "c"} {
			score(d)
		}
		if st := cache.Stats(); st.Entries != 3 || st.Bytes != 3*engine.CacheEntryBytes {
			t.Fatalf("stats %+v", st)
		}
		if score("a") != 0 { // a is now the most recently used
			t.Fatal("a was not cached")
		}
		score("d") // evicts b, the least recently used
		if st := cache.Stats(); st.Entries != 3 || st.Bytes > st.Max {
			t.Fatalf("over the bound: %+v", st)
		}
		if score("a") != 0 || score("c") != 0 || score("d") != 0 {
			t.Fatal("a recently used entry was evicted")
		}
		if score("b") != 1 {
			t.Fatal("b was not evicted")
		}
		st := cache.Stats()
		if st.Hits != 4 || st.Misses != 5 {
			t.Fatalf("hits %d misses %d, want 4 and 5", st.Hits, st.Misses)
		}
	})
}

// TestCloseAnswersQueuedRequests: closing a model answers every request it
// holds at once, those still in its intake channel included, instead of
// leaving them to their deadline.
func TestCloseAnswersQueuedRequests(t *testing.T) {
	hold := make(chan struct{})
	inCall := make(chan struct{}, 1)
	var once sync.Once
	m, err := engine.Open(testutil.MustModel(t, synth.Tiny()), engine.Options{Threads: 2, OnBatch: func(int, int, time.Duration) {
		once.Do(func() {
			inCall <- struct{}{}
			<-hold // keep the scheduler busy while the others queue up
		})
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	errs := make(chan error, 41)
	go func() { _, err := m.Rerank(ctx, "q", documents(3)); errs <- err }()
	<-inCall
	pairs, err := m.Tokenize("q", documents(3))
	if err != nil {
		t.Fatal(err)
	}
	per := pairTokens(pairs)
	base := m.QueuedTokens()
	for i := 0; i < 40; i++ {
		go func() { _, err := m.Score(ctx, pairs); errs <- err }()
	}
	// Admission counts each request before it enters the intake channel.
	for m.QueuedTokens() < base+40*per {
		select {
		case err := <-errs:
			t.Fatalf("a request returned before close: %v", err)
		default:
		}
		time.Sleep(time.Millisecond)
	}
	closed := make(chan struct{}, 1)
	go func() { m.Close(); closed <- struct{}{} }()
	hold <- struct{}{} // (close is shadowed in this package)
	<-closed
	for i := 0; i < 41; i++ {
		if err := <-errs; err != nil && !errors.Is(err, engine.ErrClosed) {
			t.Fatalf("request %d: %v, want ErrClosed at once", i, err)
		}
	}
	if ctx.Err() != nil {
		t.Fatal("requests waited for their deadline")
	}
}

// TestTooLargeRequestRefused: a request that could never fit the queue is
// refused even when the queue is empty, before it is tokenized whole.
func TestTooLargeRequestRefused(t *testing.T) {
	m := mustOpen(t, testutil.MustModel(t, synth.Tiny()), engine.Options{MaxQueueTokens: 300})
	docs := make([]string, 1000)
	for i := range docs {
		docs[i] = synth.Text(uint64(i), 40)
	}
	_, err := m.Prepare([]engine.Query{{Text: "q", Docs: docs}}, engine.DocOptions{})
	var tl *engine.TooLargeError
	if !errors.As(err, &tl) || tl.Limit != 300 || tl.Tokens <= 300 || tl.Tokens > 300+m.MaxPairTokens() {
		t.Fatalf("err = %v; want a TooLargeError stopping just past 300 tokens", err)
	}
	// Through Score too (pairs laid out elsewhere), with the queue empty.
	pairs, err := m.Prepare([]engine.Query{{Text: "q", Docs: docs[:10]}}, engine.DocOptions{MaxTokens: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Score(context.Background(), pairs.Pairs); !errors.As(err, &tl) {
		t.Fatalf("Score: %v, want TooLargeError", err)
	}
	if m.QueuedTokens() != 0 {
		t.Fatalf("%d tokens left counted", m.QueuedTokens())
	}
	if _, err := m.Rerank(context.Background(), "q", docs[:1]); err != nil {
		t.Fatalf("a request that fits: %v", err)
	}
}
