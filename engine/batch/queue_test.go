package batch_test

import (
	"context"
	"errors"
	"math"
	"slices"
	"sync"
	"testing"

	"github.com/aimind/aimind/engine/batch"
)

// fakeEncoder is an Encoder made of function fields; unset ones score each
// sequence as the sum of its token ids and close without error.
type fakeEncoder struct {
	encode func(tokens []int32, lens []int) ([]float32, error)
	close  func() error
}

func (f *fakeEncoder) Encode(tokens []int32, lens []int) ([]float32, error) {
	if f.encode != nil {
		return f.encode(tokens, lens)
	}
	return sumScores(tokens, lens), nil
}

func (f *fakeEncoder) Close() error {
	if f.close != nil {
		return f.close()
	}
	return nil
}

// sumScores scores each sequence as the sum of its token ids: an answer that
// tells pairs apart, so a score delivered to the wrong pair shows.
func sumScores(tokens []int32, lens []int) []float32 {
	out := make([]float32, len(lens))
	at := 0
	for i, n := range lens {
		for _, t := range tokens[at : at+n] {
			out[i] += float32(t)
		}
		at += n
	}
	return out
}

func pair(tokens ...int32) batch.Pair { return batch.Pair{Tokens: tokens} }

func sum(p batch.Pair) float64 {
	s := 0.0
	for _, t := range p.Tokens {
		s += float64(t)
	}
	return s
}

func newQueue(t *testing.T, enc batch.Encoder, o batch.Options) *batch.Queue {
	t.Helper()
	if o.Budget == 0 {
		o.Budget = 8
	}
	if o.MaxPairTokens == 0 {
		o.MaxPairTokens = 8
	}
	q := batch.New(enc, o)
	t.Cleanup(func() { q.Close("closed by the test") })
	return q
}

// TestQueueScoresEveryPairInItsPlace: pairs of one request are split into
// calls under the token budget and each score comes back to its own pair.
func TestQueueScoresEveryPairInItsPlace(t *testing.T) {
	var mu sync.Mutex
	var calls [][]int
	enc := &fakeEncoder{encode: func(tokens []int32, lens []int) ([]float32, error) {
		mu.Lock()
		calls = append(calls, slices.Clone(lens))
		mu.Unlock()
		return sumScores(tokens, lens), nil
	}}
	q := newQueue(t, enc, batch.Options{Budget: 8, MaxPairTokens: 4})
	pairs := []batch.Pair{pair(1, 2, 3), pair(10, 20), pair(100, 200, 300, 400), pair(7)}
	res, err := q.Score(context.Background(), pairs)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range pairs {
		if res.Scores[i] != sum(p) {
			t.Errorf("pair %d: score %v, want %v", i, res.Scores[i], sum(p))
		}
	}
	if res.Tokens != 10 {
		t.Errorf("tokens %d, want 10", res.Tokens)
	}
	mu.Lock()
	defer mu.Unlock()
	total := 0
	for _, c := range calls {
		n := 0
		for _, l := range c {
			n += l
		}
		if n > 8 {
			t.Errorf("a call of %d tokens passed the budget of 8: %v", n, calls)
		}
		total += len(c)
	}
	if len(calls) < 2 || total != len(pairs) {
		t.Errorf("calls %v: want the 4 pairs over at least 2 calls", calls)
	}
}

// TestQueueCacheAnswersRepeats: a pair scored once is answered from the
// cache the next time and a repeat inside one request is encoded once.
func TestQueueCacheAnswersRepeats(t *testing.T) {
	var mu sync.Mutex
	encoded := 0
	enc := &fakeEncoder{encode: func(tokens []int32, lens []int) ([]float32, error) {
		mu.Lock()
		encoded += len(lens)
		mu.Unlock()
		return sumScores(tokens, lens), nil
	}}
	cache := batch.NewScoreCache(1 << 20)
	q := newQueue(t, enc, batch.Options{Cache: cache, Digest: [32]byte{1}})
	first, err := q.Score(context.Background(), []batch.Pair{pair(1, 2), pair(3), pair(1, 2)})
	if err != nil {
		t.Fatal(err)
	}
	if encoded != 2 || first.Cached != 0 {
		t.Fatalf("first request: %d pairs encoded, %d cached; want 2 and 0", encoded, first.Cached)
	}
	second, err := q.Score(context.Background(), []batch.Pair{pair(3), pair(4), pair(1, 2)})
	if err != nil {
		t.Fatal(err)
	}
	if encoded != 3 || second.Cached != 2 {
		t.Errorf("second request: %d pairs encoded in all, %d cached; want 3 and 2", encoded, second.Cached)
	}
	if want := []float64{3, 4, 3}; !slices.Equal(second.Scores, want) {
		t.Errorf("scores %v, want %v", second.Scores, want)
	}
	// Another model's digest does not see these scores.
	other := newQueue(t, enc, batch.Options{Cache: cache, Digest: [32]byte{2}})
	if r, err := other.Score(context.Background(), []batch.Pair{pair(3)}); err != nil || r.Cached != 0 {
		t.Errorf("another digest: %+v, %v; want nothing cached", r, err)
	}
}

// TestQueueRefusesNonFiniteScores: NaN or Inf from the encoder fails the
// request that owns the pair with ErrNonFinite (the queue's own check, not
// the encoder's), never reaches the cache, and leaves other requests of the
// same call answered.
func TestQueueRefusesNonFiniteScores(t *testing.T) {
	for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
		enc := &fakeEncoder{encode: func(tokens []int32, lens []int) ([]float32, error) {
			out := sumScores(tokens, lens)
			for i := range out {
				if out[i] == 66 { // the poisoned pair
					out[i] = bad
				}
			}
			return out, nil
		}}
		cache := batch.NewScoreCache(1 << 20)
		q := newQueue(t, enc, batch.Options{Budget: 64, Cache: cache})
		_, err := q.Score(context.Background(), []batch.Pair{pair(1), pair(66), pair(2)})
		if !errors.Is(err, batch.ErrNonFinite) {
			t.Errorf("%v from the encoder: error %v, want ErrNonFinite", bad, err)
		}
		if st := cache.Stats(); st.Entries != 0 {
			t.Errorf("%v: %d entries cached from a refused request", bad, st.Entries)
		}
		res, err := q.Score(context.Background(), []batch.Pair{pair(1), pair(2)})
		if err != nil || !slices.Equal(res.Scores, []float64{1, 2}) {
			t.Errorf("%v: a healthy request afterwards: %+v, %v", bad, res, err)
		}
		if n := q.QueuedTokens(); n != 0 {
			t.Errorf("%v: %d tokens still counted as queued", bad, n)
		}
	}
}

// TestQueueEncoderErrorFailsTheCall: an encoder error fails the requests of
// that call, wrapped, and the queue goes on.
func TestQueueEncoderErrorFailsTheCall(t *testing.T) {
	boom := errors.New("encoder refused")
	fail := true
	enc := &fakeEncoder{encode: func(tokens []int32, lens []int) ([]float32, error) {
		if fail {
			fail = false
			return nil, boom
		}
		return sumScores(tokens, lens), nil
	}}
	q := newQueue(t, enc, batch.Options{})
	if _, err := q.Score(context.Background(), []batch.Pair{pair(5)}); !errors.Is(err, boom) {
		t.Fatalf("error %v, want the encoder's", err)
	}
	if res, err := q.Score(context.Background(), []batch.Pair{pair(5)}); err != nil || res.Scores[0] != 5 {
		t.Fatalf("after the failure: %+v, %v", res, err)
	}
}

// blockingEncoder holds each call until the test releases it, and reports
// every call's token ids.
type blockingEncoder struct {
	calls   chan []int32
	release chan struct{}
}

func newBlockingEncoder() *blockingEncoder {
	return &blockingEncoder{calls: make(chan []int32, 16), release: make(chan struct{})}
}

func (b *blockingEncoder) encoder() *fakeEncoder {
	return &fakeEncoder{encode: func(tokens []int32, lens []int) ([]float32, error) {
		b.calls <- slices.Clone(tokens)
		<-b.release
		return sumScores(tokens, lens), nil
	}}
}

// TestQueueDropsCancelledRequests: a request whose context ends while an
// earlier call runs returns at once with the context's error, its pairs
// never reach the encoder, and its tokens are given back.
func TestQueueDropsCancelledRequests(t *testing.T) {
	b := newBlockingEncoder()
	q := newQueue(t, b.encoder(), batch.Options{Budget: 4, MaxPairTokens: 4})
	firstDone := make(chan error, 1)
	go func() {
		_, err := q.Score(context.Background(), []batch.Pair{pair(1, 1, 1, 1)})
		firstDone <- err
	}()
	if got := <-b.calls; !slices.Equal(got, []int32{1, 1, 1, 1}) {
		t.Fatalf("first call %v", got)
	}
	// The encoder is busy: this request waits in the queue.
	ctx, cancel := context.WithCancel(context.Background())
	secondDone := make(chan error, 1)
	go func() {
		_, err := q.Score(ctx, []batch.Pair{pair(9, 9, 9, 9)})
		secondDone <- err
	}()
	cancel()
	if err := <-secondDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled request: %v, want context.Canceled", err)
	}
	close(b.release)
	if err := <-firstDone; err != nil {
		t.Fatal(err)
	}
	// A third request goes through; the cancelled pairs never did.
	if res, err := q.Score(context.Background(), []batch.Pair{pair(2)}); err != nil || res.Scores[0] != 2 {
		t.Fatalf("third request: %+v, %v", res, err)
	}
	for {
		select {
		case got := <-b.calls:
			if slices.Contains(got, 9) {
				t.Fatalf("the cancelled request's pair reached the encoder: %v", got)
			}
			continue
		default:
		}
		break
	}
	if n := q.QueuedTokens(); n != 0 {
		t.Errorf("%d tokens still counted as queued", n)
	}
}

// TestQueueAdmission: a request past the bound is refused at once, one that
// could never fit with TooLargeError, and Admit says the same before any
// work.
func TestQueueAdmission(t *testing.T) {
	b := newBlockingEncoder()
	q := newQueue(t, b.encoder(), batch.Options{Budget: 4, MaxPairTokens: 4, MaxQueueTokens: 6})
	if _, err := q.Score(context.Background(), []batch.Pair{pair(1, 1, 1, 1), pair(1, 1, 1)}); !errors.Is(err, batch.ErrTooLarge) {
		t.Errorf("7 tokens against a bound of 6: %v, want ErrTooLarge", err)
	}
	if err := q.Admit(7); !errors.Is(err, batch.ErrTooLarge) {
		t.Errorf("Admit(7): %v, want ErrTooLarge", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := q.Score(context.Background(), []batch.Pair{pair(1, 1, 1, 1)})
		done <- err
	}()
	<-b.calls // 4 tokens admitted and in the encoder
	var over *batch.OverloadError
	if _, err := q.Score(context.Background(), []batch.Pair{pair(1, 1, 1)}); !errors.As(err, &over) || over.Queued != 4 || over.Limit != 6 {
		t.Errorf("3 more tokens with 4 of 6 queued: %v, want an OverloadError", err)
	}
	if err := q.Admit(3); !errors.Is(err, batch.ErrOverloaded) {
		t.Errorf("Admit(3) with 4 of 6 queued: %v, want ErrOverloaded", err)
	}
	if err := q.Admit(2); err != nil {
		t.Errorf("Admit(2) with 4 of 6 queued: %v", err)
	}
	close(b.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestQueueCloseAnswersWaitingRequests: Close answers the waiting requests
// with a ClosedError carrying the reason, waits for the call in progress,
// closes the encoder once, and refuses later requests.
func TestQueueCloseAnswersWaitingRequests(t *testing.T) {
	b := newBlockingEncoder()
	closes := 0
	enc := b.encoder()
	enc.close = func() error { closes++; return nil }
	q := batch.New(enc, batch.Options{Budget: 4, MaxPairTokens: 4})
	running := make(chan error, 1)
	go func() {
		_, err := q.Score(context.Background(), []batch.Pair{pair(1, 1, 1, 1)})
		running <- err
	}()
	<-b.calls
	waiting := make(chan error, 1)
	go func() {
		_, err := q.Score(context.Background(), []batch.Pair{pair(2)})
		waiting <- err
	}()
	closed := make(chan struct{})
	go func() {
		q.Close("stopped")
		close(closed)
	}()
	<-q.Closing() // no call starts from here on
	close(b.release)
	<-closed
	if err := <-running; err != nil && !errors.Is(err, batch.ErrClosed) {
		t.Errorf("request in the encoder at close: %v", err)
	}
	var ce *batch.ClosedError
	if err := <-waiting; !errors.As(err, &ce) || ce.Reason != "stopped" {
		t.Errorf("request waiting at close: %v, want a ClosedError saying stopped", err)
	}
	q.Close("again")
	if closes != 1 {
		t.Errorf("encoder closed %d times, want 1", closes)
	}
	_, err := q.Score(context.Background(), []batch.Pair{pair(1)})
	if !errors.As(err, &ce) || ce.Reason != "stopped" {
		t.Errorf("after close: %v, want a ClosedError saying stopped", err)
	}
	if q.Closed() == nil {
		t.Error("Closed() is nil after Close")
	}
}
