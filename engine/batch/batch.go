// Package batch is the pure-Go half of the engine: it lays query-document
// pairs out as token sequences (layout, chunking), admits requests under a
// queue bound, schedules the pairs of all waiting requests into encoder calls
// under a token budget, keeps the score cache, and drives one Encoder from
// one goroutine. It knows nothing of llama.cpp: llama.Context satisfies
// Encoder, and the tests drive a fake.
package batch

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Encoder runs one forward pass over sequences laid out back to back in
// tokens, lens[i] tokens each, and returns one relevance logit per sequence.
// The Queue calls it from one goroutine only, and Close once, after the last
// Encode has returned.
type Encoder interface {
	Encode(tokens []int32, lens []int) ([]float32, error)
	Close() error
}

// Sentinel errors.
var (
	ErrClosed    = errors.New("model is closed")
	ErrNonFinite = errors.New("model produced a non-finite score")
	ErrEmpty     = errors.New("nothing to rerank")
	// ErrOverloaded: the queue holds more tokens than its bound.
	ErrOverloaded = errors.New("too many tokens are queued")
	// ErrTooLarge: a request needs more tokens than the queue may ever hold.
	ErrTooLarge = errors.New("request is larger than the queue")
)

// DefaultMaxQueueTokens is about a minute of work for a base-size model on
// two CPU cores.
const DefaultMaxQueueTokens = 64 * 1024

// MaxSequences is the most sequences one call holds by default (llama.cpp's
// LLAMA_MAX_SEQ).
const MaxSequences = 256

// OverloadError says how long the queue needs to drain.
type OverloadError struct {
	Queued     int
	Limit      int
	RetryAfter time.Duration
}

func (e *OverloadError) Error() string {
	return fmt.Sprintf("%v: %d queued, limit %d (--max-queue-tokens); retry in %s", ErrOverloaded, e.Queued, e.Limit, e.RetryAfter.Round(time.Second))
}

func (e *OverloadError) Unwrap() error { return ErrOverloaded }

// TooLargeError says why a request can never be admitted.
type TooLargeError struct {
	Tokens int // tokens the request needs (at least)
	Limit  int // the queue's bound
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%v: it needs %d tokens and at most %d may wait (--max-queue-tokens); send fewer documents (--max-documents caps them) or shorter ones", ErrTooLarge, e.Tokens, e.Limit)
}

func (e *TooLargeError) Unwrap() error { return ErrTooLarge }

// ClosedError is ErrClosed with what closed the model ("stopped",
// "deleted", "shutting down").
type ClosedError struct{ Reason string }

func (e *ClosedError) Error() string { return "model was " + e.Reason + " before it answered" }
func (e *ClosedError) Unwrap() error { return ErrClosed }

// Pair is one laid-out query-document pair.
type Pair struct {
	Tokens    []int32
	Truncated bool
}

// Result is the outcome of one rerank request.
type Result struct {
	Scores    []float64 // raw logits, in document order
	Truncated []bool
	Tokens    int // tokens of all pairs, cached or not
	Cached    int // pairs answered from the score cache
}

// Options configure a Queue.
type Options struct {
	// Budget is the token budget of one encoder call (> 0).
	Budget int
	// MaxSequences caps the pairs of one call; 0 means MaxSequences.
	MaxSequences int
	// MaxPairTokens is the longest pair the encoder takes (> 0).
	MaxPairTokens int
	// MaxQueueTokens bounds the tokens waiting for the encoder; 0 means
	// DefaultMaxQueueTokens.
	MaxQueueTokens int
	// Cache, when set, answers pairs scored before and keeps new scores
	// under Digest (the model file's SHA-256).
	Cache  *ScoreCache
	Digest [32]byte
	// OnBatch, when set, is told about every encoder call.
	OnBatch func(pairs, tokens int, d time.Duration)
}

// Queue admits requests, packs their pairs into calls of one Encoder and
// answers each request on its own reply channel. One goroutine owns the
// encoder.
type Queue struct {
	enc       Encoder
	budget    int
	maxSeqs   int
	maxPair   int
	maxQueued int
	cache     *ScoreCache
	digest    [32]byte
	onBatch   func(pairs, tokens int, d time.Duration)

	jobs   chan *job
	quit   chan struct{}
	done   chan struct{}
	once   sync.Once
	closed error // why the queue closed; written before quit closes

	queued    atomic.Int64  // tokens admitted and not yet answered or dropped
	tokPerSec atomic.Uint64 // float64 bits: recent encoder throughput
}

// New starts the goroutine that owns enc. Close stops it and closes enc.
func New(enc Encoder, o Options) *Queue {
	if o.Budget <= 0 || o.MaxPairTokens <= 0 {
		panic(fmt.Sprintf("BUG: batch.New with budget %d and pair limit %d", o.Budget, o.MaxPairTokens))
	}
	q := &Queue{
		enc: enc, budget: o.Budget, maxSeqs: o.MaxSequences, maxPair: o.MaxPairTokens,
		maxQueued: o.MaxQueueTokens, cache: o.Cache, digest: o.Digest, onBatch: o.OnBatch,
		jobs: make(chan *job, 64), quit: make(chan struct{}), done: make(chan struct{}),
	}
	if q.maxSeqs <= 0 {
		q.maxSeqs = MaxSequences
	}
	if q.maxQueued <= 0 {
		q.maxQueued = DefaultMaxQueueTokens
	}
	go q.run()
	return q
}

// Close stops the scheduler, answers every request still waiting with a
// *ClosedError at once, and closes the encoder once the call in progress
// (if any) has returned. It is idempotent.
func (q *Queue) Close(reason string) error {
	var err error
	q.once.Do(func() {
		q.closed = &ClosedError{Reason: reason}
		close(q.quit)
		<-q.done
		err = q.enc.Close()
	})
	return err
}

// Closed is nil while the queue takes requests, else why it stopped.
func (q *Queue) Closed() error {
	select {
	case <-q.quit:
		return q.closed
	default:
		return nil
	}
}

// Closing is closed as soon as Close begins: from then on no new call
// starts.
func (q *Queue) Closing() <-chan struct{} { return q.quit }

// QueuedTokens is the number of tokens admitted and not yet answered.
func (q *Queue) QueuedTokens() int { return int(q.queued.Load()) }

// MaxQueueTokens is the queue's bound in tokens.
func (q *Queue) MaxQueueTokens() int { return q.maxQueued }

// Admit is the check before any tokenizing: a request that needs at least
// least tokens is a *TooLargeError past what the queue may ever hold, an
// *OverloadError past what it holds now, else nil.
func (q *Queue) Admit(least int) error {
	if least > q.maxQueued {
		return &TooLargeError{Tokens: least, Limit: q.maxQueued}
	}
	if n := int(q.queued.Load()); n+least > q.maxQueued {
		return &OverloadError{Queued: n, Limit: q.maxQueued, RetryAfter: q.drainTime(n)}
	}
	return nil
}

// drainTime estimates how long the queue takes to empty.
func (q *Queue) drainTime(tokens int) time.Duration {
	rate := math.Float64frombits(q.tokPerSec.Load())
	if rate <= 0 {
		rate = 500
	}
	d := time.Duration(float64(tokens) / rate * float64(time.Second))
	return max(d, time.Second)
}

// Score evaluates laid-out pairs: those the cache holds at once, the rest
// (each distinct pair once) through the scheduler.
func (q *Queue) Score(ctx context.Context, pairs []Pair) (*Result, error) {
	if len(pairs) == 0 {
		return nil, ErrEmpty
	}
	r := &Result{Scores: make([]float64, len(pairs)), Truncated: make([]bool, len(pairs))}
	for i, p := range pairs {
		if len(p.Tokens) == 0 || len(p.Tokens) > q.maxPair {
			return nil, fmt.Errorf("BUG: pair %d has %d tokens, limit %d", i, len(p.Tokens), q.maxPair)
		}
		r.Truncated[i] = p.Truncated
		r.Tokens += len(p.Tokens)
	}
	// Which pairs need the encoder: not cached, and not a repeat of one
	// earlier in this request.
	var keys []cacheKey
	todo := make([]int, 0, len(pairs)) // pair index of each job pair
	same := make([]int, len(pairs))    // for repeats: the pair they copy
	if q.cache != nil {
		keys = make([]cacheKey, len(pairs))
		first := make(map[cacheKey]int, len(pairs))
		for i, p := range pairs {
			keys[i] = pairKey(q.digest, p.Tokens)
			same[i] = -1
			if j, ok := first[keys[i]]; ok {
				same[i] = j
				continue
			}
			first[keys[i]] = i
			if s, ok := q.cache.get(keys[i]); ok {
				r.Scores[i] = s
				r.Cached++
				continue
			}
			todo = append(todo, i)
		}
	} else {
		for i := range pairs {
			todo = append(todo, i)
			same[i] = -1
		}
	}
	if len(todo) > 0 {
		j := &job{ctx: ctx, pairs: make([]Pair, len(todo)), scores: make([]float64, len(todo)), reply: make(chan error, 1)}
		for k, i := range todo {
			j.pairs[k] = pairs[i]
			j.tokens += len(pairs[i].Tokens)
		}
		if err := q.submit(ctx, j); err != nil {
			return nil, err
		}
		for k, i := range todo {
			r.Scores[i] = j.scores[k]
			if q.cache != nil {
				q.cache.put(keys[i], j.scores[k])
			}
		}
	}
	for i, j := range same {
		if j >= 0 {
			r.Scores[i] = r.Scores[j]
		}
	}
	return r, nil
}

// submit admits a job, hands it to the scheduler and waits for its answer.
func (q *Queue) submit(ctx context.Context, j *job) error {
	if j.tokens > q.maxQueued {
		return &TooLargeError{Tokens: j.tokens, Limit: q.maxQueued}
	}
	// Admission: refuse at once rather than queue without bound. The
	// scheduler gives the tokens back when it answers or drops the job.
	if n := q.queued.Add(int64(j.tokens)); n > int64(q.maxQueued) {
		q.queued.Add(-int64(j.tokens))
		return &OverloadError{Queued: int(n) - j.tokens, Limit: q.maxQueued, RetryAfter: q.drainTime(int(n) - j.tokens)}
	}
	select {
	case q.jobs <- j:
	case <-q.quit:
		q.queued.Add(-int64(j.tokens))
		return q.closed
	case <-ctx.Done():
		q.queued.Add(-int64(j.tokens))
		return ctx.Err()
	}
	select {
	case err := <-j.reply:
		return err
	case <-ctx.Done():
		// The scheduler sees the cancellation before its next call and
		// drops the pairs not yet scored.
		return ctx.Err()
	case <-q.done:
		// The scheduler has stopped; it answered every job it held, so a
		// reply may be waiting.
		select {
		case err := <-j.reply:
			return err
		default:
			// Sent after the scheduler drained its intake: nobody will
			// answer or count it out.
			q.queued.Add(-int64(j.tokens))
			return q.closed
		}
	}
}

// job is one request inside the scheduler.
type job struct {
	ctx    context.Context
	pairs  []Pair
	tokens int
	scores []float64
	left   int // pairs not yet scored
	req    *request
	reply  chan error
}

// answer replies once and gives the job's tokens back to the queue bound.
func (q *Queue) answer(j *job, err error) {
	q.queued.Add(-int64(j.tokens))
	j.left = 0
	j.reply <- err
}

// run is the one goroutine that owns the encoder.
func (q *Queue) run() {
	defer close(q.done)
	s := newScheduler(q.budget, q.maxSeqs)
	jobs := map[*request]*job{}
	accept := func(j *job) {
		lens := make([]int, len(j.pairs))
		for i, p := range j.pairs {
			lens[i] = len(p.Tokens)
		}
		j.left = len(j.pairs)
		j.req = s.admit(lens)
		jobs[j.req] = j
	}
	closeAll := func() {
		for _, j := range jobs {
			q.answer(j, q.closed)
		}
		for {
			select {
			case j := <-q.jobs:
				q.answer(j, q.closed)
			default:
				return
			}
		}
	}
	for {
		if s.empty() {
			select {
			case j := <-q.jobs:
				accept(j)
			case <-q.quit:
				closeAll()
				return
			}
		}
	drain:
		for {
			select {
			case j := <-q.jobs:
				accept(j)
			case <-q.quit:
				closeAll()
				return
			default:
				break drain
			}
		}
		// Drop requests whose client has gone.
		for r, j := range jobs {
			if err := j.ctx.Err(); err != nil {
				s.drop(r)
				delete(jobs, r)
				q.answer(j, err)
			}
		}
		if s.empty() {
			continue
		}
		picks := s.next()
		tokens := q.encode(s, jobs, picks)
		s.advance(tokens)
	}
}

// encode runs one call and delivers its scores; a failed call fails every
// request it held, a non-finite score the request of that pair. It returns
// the tokens encoded.
func (q *Queue) encode(s *scheduler, jobs map[*request]*job, picks []pick) int {
	var tokens []int32
	lens := make([]int, len(picks))
	for i, p := range picks {
		t := jobs[p.req].pairs[p.pair].Tokens
		tokens = append(tokens, t...)
		lens[i] = len(t)
	}
	start := time.Now()
	scores, err := q.enc.Encode(tokens, lens)
	if err == nil && len(scores) != len(picks) {
		err = fmt.Errorf("BUG: the encoder returned %d scores for %d sequences", len(scores), len(picks))
	}
	if d := time.Since(start); err == nil && d > 0 {
		rate := float64(len(tokens)) / d.Seconds()
		old := math.Float64frombits(q.tokPerSec.Load())
		if old > 0 {
			rate = 0.8*old + 0.2*rate
		}
		q.tokPerSec.Store(math.Float64bits(rate))
		if q.onBatch != nil {
			q.onBatch(len(picks), len(tokens), d)
		}
	}
	for i, p := range picks {
		j := jobs[p.req]
		if j == nil || j.left == 0 {
			continue // already failed by an earlier pair of this call
		}
		perr := err
		if perr == nil && (math.IsNaN(float64(scores[i])) || math.IsInf(float64(scores[i]), 0)) {
			perr = ErrNonFinite
		}
		if perr != nil {
			q.finish(s, jobs, j, fmt.Errorf("cannot score: %w", perr))
			continue
		}
		j.scores[p.pair] = float64(scores[i])
		if j.left--; j.left == 0 {
			q.finish(s, jobs, j, nil)
		}
	}
	return len(tokens)
}

// finish answers a job and forgets it, with any pairs of it that still wait
// in the scheduler.
func (q *Queue) finish(s *scheduler, jobs map[*request]*job, j *job, err error) {
	s.drop(j.req)
	delete(jobs, j.req)
	q.answer(j, err)
}
