// Package engine reranks: it lays query-document pairs out as token
// sequences, packs the pairs of all waiting requests into encoder calls under
// a token budget, and reads one relevance logit per pair. One goroutine owns
// each llama.cpp context; requests wait on their own reply channel.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/aimind/aimind/llama"
	"github.com/aimind/aimind/modelfile"
)

// Sentinel errors.
var (
	ErrClosed    = errors.New("model is closed")
	ErrNonFinite = errors.New("model produced a non-finite score")
	ErrEmpty     = errors.New("nothing to rerank")
	// ErrOverloaded: the queue holds more tokens than MaxQueueTokens.
	ErrOverloaded = errors.New("too many tokens are queued")
)

// Defaults.
const (
	DefaultCtx         = 512 // FlagEmbedding's max_length for bge rerankers
	DefaultBatchTokens = 512 // fastest measured on 2-core Xeon, flash attention on
)

// Options configure a loaded model.
type Options struct {
	Ctx         int  // longest pair in tokens; 0 means DefaultCtx, capped at the model's context
	BatchTokens int  // token budget of one encoder call; 0 means DefaultBatchTokens
	Threads     int  // 0 means the number of CPUs
	FlashAttn   bool // flash attention (faster; casts K and V to F16)
	Logger      *slog.Logger

	// MaxQueueTokens bounds the tokens waiting for the encoder; a request
	// that would go past it is refused at once with ErrOverloaded (unless the
	// queue is empty). 0 means DefaultMaxQueueTokens.
	MaxQueueTokens int
	// OnBatch, when set, is told about every encoder call.
	OnBatch func(pairs, tokens int, d time.Duration)
}

// DefaultMaxQueueTokens is about a minute of work for a base-size model on
// two CPU cores.
const DefaultMaxQueueTokens = 64 * 1024

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

// Model is a loaded reranker ready to score.
type Model struct {
	facts  *modelfile.Facts
	info   llama.Info
	llm    *llama.Model
	lctx   *llama.Context
	layout Layout
	ctxLen int
	budget int
	log    *slog.Logger

	jobs chan *job
	quit chan struct{}
	done chan struct{}
	once sync.Once

	maxQueued int
	queued    atomic.Int64  // tokens admitted and not yet scored
	tokPerSec atomic.Uint64 // float64 bits: recent encoder throughput
	onBatch   func(pairs, tokens int, d time.Duration)
}

// Open checks the file in Go, loads it and starts its scheduler goroutine.
func Open(path string, o Options) (*Model, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	llama.Init(o.Logger)
	facts, err := modelfile.Check(path)
	if err != nil {
		return nil, err
	}
	for _, w := range facts.Warnings {
		o.Logger.Warn(w, "path", path)
	}
	llm, err := llama.LoadModel(path, llama.ModelParams{})
	if err != nil {
		return nil, err
	}
	m, err := newModel(llm, facts, o)
	if err != nil {
		llm.Close()
		return nil, fmt.Errorf("cannot load model %q: %w", path, err)
	}
	return m, nil
}

func newModel(llm *llama.Model, facts *modelfile.Facts, o Options) (*Model, error) {
	info, err := llm.Info()
	if err != nil {
		return nil, err
	}
	if info.NClsOut != 1 {
		return nil, fmt.Errorf("%w: %d outputs", modelfile.ErrNotReranker, info.NClsOut)
	}
	ctxLen := o.Ctx
	if ctxLen <= 0 {
		ctxLen = DefaultCtx
	}
	if info.NCtxTrain > 0 && ctxLen > info.NCtxTrain {
		ctxLen = info.NCtxTrain
	}
	budget := o.BatchTokens
	if budget <= 0 {
		budget = DefaultBatchTokens
	}
	threads := o.Threads
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	layout, err := chooseLayout(llm, info)
	if err != nil {
		return nil, err
	}
	lctx, err := llama.NewContext(llm, llama.ContextParams{
		Tokens:    max(budget, ctxLen),
		Sequences: llama.MaxSequences,
		Threads:   threads,
		FlashAttn: o.FlashAttn,
	})
	if err != nil {
		return nil, err
	}
	m := &Model{
		facts: facts, info: info, llm: llm, lctx: lctx, layout: layout,
		ctxLen: ctxLen, budget: budget, log: o.Logger,
		jobs: make(chan *job, 64), quit: make(chan struct{}), done: make(chan struct{}),
		maxQueued: o.MaxQueueTokens, onBatch: o.OnBatch,
	}
	if m.maxQueued <= 0 {
		m.maxQueued = DefaultMaxQueueTokens
	}
	go m.run()
	return m, nil
}

func chooseLayout(llm *llama.Model, info llama.Info) (Layout, error) {
	if info.RerankPrompt != "" {
		return NewTemplateLayout(info.RerankPrompt, llm)
	}
	sep := info.SEP
	if sep < 0 {
		sep = info.EOS
	}
	if info.VocabType == llama.VocabWPM {
		return NewSpecialLayout(LayoutBERT, info.CLS, sep)
	}
	return NewSpecialLayout(LayoutRoBERTa, info.BOS, sep)
}

// Facts returns what the model file declares.
func (m *Model) Facts() *modelfile.Facts { return m.facts }

// Layout returns the pair layout in use.
func (m *Model) Layout() Layout { return m.layout }

// MaxPairTokens is the longest pair evaluated.
func (m *Model) MaxPairTokens() int { return m.ctxLen }

// Close stops the scheduler, fails waiting requests and frees the context and
// model. It is idempotent.
func (m *Model) Close() error {
	m.once.Do(func() {
		close(m.quit)
		<-m.done
		m.lctx.Close()
		m.llm.Close()
	})
	return nil
}

// Pair is one laid-out query-document pair.
type Pair struct {
	Tokens    []int32
	Truncated bool
}

// Tokenize lays out query with each document, cut at the document's end to
// the pair limit. It runs on the caller's goroutine: llama.cpp's tokenizer
// only reads the vocabulary.
func (m *Model) Tokenize(query string, docs []string) ([]Pair, error) {
	prep, err := m.Prepare([]Query{{Text: query, Docs: docs}}, DocOptions{})
	if err != nil {
		return nil, err
	}
	return prep.Pairs, nil
}

func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// Result is the outcome of one rerank request.
type Result struct {
	Scores    []float64 // raw logits, in document order
	Truncated []bool
	Tokens    int // tokens evaluated
}

// Rerank scores each document against query.
func (m *Model) Rerank(ctx context.Context, query string, docs []string) (*Result, error) {
	if len(docs) == 0 {
		return nil, ErrEmpty
	}
	pairs, err := m.Tokenize(query, docs)
	if err != nil {
		return nil, err
	}
	return m.Score(ctx, pairs)
}

// Score evaluates laid-out pairs.
func (m *Model) Score(ctx context.Context, pairs []Pair) (*Result, error) {
	if len(pairs) == 0 {
		return nil, ErrEmpty
	}
	j := &job{ctx: ctx, pairs: pairs, scores: make([]float64, len(pairs)), reply: make(chan error, 1)}
	tokens := 0
	for i, p := range pairs {
		if len(p.Tokens) == 0 || len(p.Tokens) > m.ctxLen {
			return nil, fmt.Errorf("BUG: pair %d has %d tokens, limit %d", i, len(p.Tokens), m.ctxLen)
		}
		tokens += len(p.Tokens)
	}
	// Admission: refuse at once rather than queue without bound.
	if q := m.queued.Add(int64(tokens)); q > int64(m.maxQueued) && q != int64(tokens) {
		m.queued.Add(-int64(tokens))
		return nil, &OverloadError{Queued: int(q) - tokens, Limit: m.maxQueued, RetryAfter: m.drainTime(int(q) - tokens)}
	}
	defer m.queued.Add(-int64(tokens))
	select {
	case m.jobs <- j:
	case <-m.quit:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case err := <-j.reply:
		if err != nil {
			return nil, err
		}
	case <-ctx.Done():
		// The scheduler sees the cancellation and drops the pending pairs.
		return nil, ctx.Err()
	}
	r := &Result{Scores: j.scores, Truncated: make([]bool, len(pairs))}
	for i, p := range pairs {
		r.Truncated[i] = p.Truncated
		r.Tokens += len(p.Tokens)
	}
	return r, nil
}

// QueuedTokens is the number of tokens admitted and not yet answered.
func (m *Model) QueuedTokens() int { return int(m.queued.Load()) }

// drainTime estimates how long the queue takes to empty.
func (m *Model) drainTime(tokens int) time.Duration {
	rate := math.Float64frombits(m.tokPerSec.Load())
	if rate <= 0 {
		rate = 500
	}
	d := time.Duration(float64(tokens) / rate * float64(time.Second))
	return max(d, time.Second)
}

// job is one request inside the scheduler.
type job struct {
	ctx    context.Context
	pairs  []Pair
	scores []float64
	left   int
	reply  chan error
	state  pending
}

// run is the one goroutine that owns the llama context.
func (m *Model) run() {
	defer close(m.done)
	var queue []*job
	accept := func(j *job) {
		j.left = len(j.pairs)
		j.state.lens = make([]int, len(j.pairs))
		j.state.remaining = make([]int, len(j.pairs))
		for i, p := range j.pairs {
			j.state.lens[i] = len(p.Tokens)
			j.state.remaining[i] = i
		}
		queue = append(queue, j)
	}
	for {
		if len(queue) == 0 {
			select {
			case j := <-m.jobs:
				accept(j)
			case <-m.quit:
				return
			}
		}
	drain:
		for {
			select {
			case j := <-m.jobs:
				accept(j)
			case <-m.quit:
				for _, j := range queue {
					j.reply <- ErrClosed
				}
				return
			default:
				break drain
			}
		}
		// Drop requests whose client has gone.
		live := queue[:0]
		for _, j := range queue {
			if err := j.ctx.Err(); err != nil {
				j.reply <- err
				continue
			}
			live = append(live, j)
		}
		queue = live
		if len(queue) == 0 {
			continue
		}
		states := make([]*pending, len(queue))
		for i, j := range queue {
			states[i] = &j.state
		}
		picks := pack(states, m.budget, llama.MaxSequences)
		m.encode(queue, picks)
		live = queue[:0]
		for _, j := range queue {
			if j.left > 0 {
				live = append(live, j)
			}
		}
		queue = live
	}
}

// encode runs one call and delivers its scores; a failed call fails every
// request it held.
func (m *Model) encode(queue []*job, picks []pick) {
	var tokens []int32
	lens := make([]int, len(picks))
	for i, p := range picks {
		t := queue[p.req].pairs[p.pair].Tokens
		tokens = append(tokens, t...)
		lens[i] = len(t)
	}
	start := time.Now()
	scores, err := m.lctx.Encode(tokens, lens)
	if d := time.Since(start); err == nil && d > 0 {
		rate := float64(len(tokens)) / d.Seconds()
		old := math.Float64frombits(m.tokPerSec.Load())
		if old > 0 {
			rate = 0.8*old + 0.2*rate
		}
		m.tokPerSec.Store(math.Float64bits(rate))
		if m.onBatch != nil {
			m.onBatch(len(picks), len(tokens), d)
		}
	}
	failed := map[*job]bool{}
	for i, p := range picks {
		j := queue[p.req]
		if failed[j] || j.left == 0 {
			continue
		}
		perr := err
		if perr == nil && (math.IsNaN(float64(scores[i])) || math.IsInf(float64(scores[i]), 0)) {
			perr = ErrNonFinite
		}
		if perr != nil {
			failed[j] = true
			j.left = 0
			j.reply <- fmt.Errorf("cannot score: %w", perr)
			continue
		}
		j.scores[p.pair] = float64(scores[i])
		j.left--
		if j.left == 0 {
			j.reply <- nil
		}
	}
}
