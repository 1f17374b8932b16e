// Package engine reranks: it lays query-document pairs out as token
// sequences, packs the pairs of all waiting requests into encoder calls under
// a token budget, and reads one relevance logit per pair. One goroutine owns
// each llama.cpp context; requests wait on their own reply channel.
package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
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
	// ErrTooLarge: a request needs more tokens than the queue may ever hold.
	ErrTooLarge = errors.New("request is larger than the queue")
)

// Defaults.
const (
	DefaultCtx         = 512 // FlagEmbedding's max_length for bge rerankers
	DefaultBatchTokens = 512 // fastest measured on 2-core Xeon, flash attention on
	// DefaultGPUBatchTokens is the budget when a GPU build offloaded the
	// model and none was given (not yet measured on a GPU).
	DefaultGPUBatchTokens = 8192
)

// Options configure a loaded model.
type Options struct {
	Ctx         int  // longest pair in tokens; 0 means DefaultCtx, capped at the model's context
	BatchTokens int  // token budget of one encoder call; 0 means DefaultBatchTokens
	Threads     int  // 0 means the number of CPUs
	FlashAttn   bool // flash attention (faster; casts K and V to F16)
	Logger      *slog.Logger

	// MaxQueueTokens bounds the tokens waiting for the encoder; a request
	// that would go past it is refused at once with ErrOverloaded, and one
	// that could never fit, even alone, with ErrTooLarge. 0 means
	// DefaultMaxQueueTokens.
	MaxQueueTokens int
	// Cache, when set, answers pairs scored before and keeps new scores.
	Cache *ScoreCache
	// Digest is the SHA-256 of the model file, hex, when known (a verified
	// download); with a cache and no digest, Open computes it.
	Digest string
	// F16AsBF16 says whether an F16 file is computed as BF16: "auto" (the
	// default) where the CPU has AVX512-BF16 and flash attention is on,
	// "on" wherever the CPU has AVX512-BF16, "off" never. The BF16 copy is
	// written once to DerivedDir.
	F16AsBF16  string
	DerivedDir string
	// Q8AsBF16 says whether a Q8_0 file is computed as BF16 (dequantized
	// once into a copy in DerivedDir) on CPUs with AVX512-BF16 and no AMX:
	// "auto" (the default, also "") where flash attention is on, "on", or
	// "off". There it is faster than the Q8_0 kernels and closer to the
	// reference (docs/benchmarks.md), at about twice the weights' memory:
	// under "auto" the models manager keeps the Q8_0 kernels when that memory
	// is not free.
	Q8AsBF16 string
	// NoExtraBuffers keeps weights out of ggml's repacked buffer types (the
	// AMX tiles): the stock CPU kernels run them.
	NoExtraBuffers bool
	// AMXKernels chooses the matrix kernels of Q8_0 weights on CPUs with
	// AMX: "auto" (the default, also "") and "bf16" run aimind's AMX-BF16
	// GEMM (weights rounded to BF16 once at load), "int8" aimind's int8
	// GEMM (activations quantized per row and Int8Group at run time; its
	// error is above the 1.5x-of-Q8_0 bar on some shapes, docs/benchmarks.md),
	// "off" ggml's kernels. A CPU without AMX keeps ggml's kernels whatever
	// it says. Int8Group 0 means DefaultInt8Group, a negative one whole rows.
	AMXKernels string
	Int8Group  int
	// GPULayers is how many layers a GPU build offloads: -1 (the default
	// through serve) all of them, 0 none. A CPU-only build ignores it.
	GPULayers int
	// Device names the GPU ("CUDA0") offloaded layers go to; "" lets
	// llama.cpp use every GPU. llama.Devices lists them.
	Device string
	// OnBatch, when set, is told about every encoder call.
	OnBatch func(pairs, tokens int, d time.Duration)
}

// DefaultInt8Group is the K-group of the int8 kernels' scales (activations
// per row and group at run time, weights per output row and group at load).
const DefaultInt8Group = 64

// amxScaleFault, set by tests only (export_test.go), corrupts the weights of
// aimind's AMX kernels at load: the error tests must catch it.
var amxScaleFault float32

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

// TooLargeError says why a request can never be admitted.
type TooLargeError struct {
	Tokens int // tokens the request needs (at least)
	Limit  int // the queue's bound
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%v: it needs %d tokens and at most %d may wait (--max-queue-tokens); send fewer documents (--max-documents caps them) or shorter ones", ErrTooLarge, e.Tokens, e.Limit)
}

func (e *TooLargeError) Unwrap() error { return ErrTooLarge }

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

	cache  *ScoreCache
	digest [32]byte
	closed error // why the model closed; written before quit closes
	kernel string
	device string

	maxQueued int
	queued    atomic.Int64  // tokens admitted and not yet answered or dropped
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
	var digest [32]byte
	bf16 := UsesBF16(facts, o)
	if o.Cache != nil || bf16 {
		if digest, err = fileDigest(path, o.Digest); err != nil {
			return nil, fmt.Errorf("cannot load model %q: %w", path, err)
		}
	}
	load := path
	if bf16 {
		var err error
		if load, err = bf16Copy(path, digest, facts, o); err != nil {
			// The file itself still serves, on its own kernels.
			o.Logger.Warn("cannot compute the model as BF16; it runs on its own kernels", "path", path, "err", err)
			load, bf16 = path, false
		}
	}
	gpuLayers := o.GPULayers
	if gpuLayers < 0 {
		gpuLayers = 1 << 16 // llama.cpp caps it at the model's layers
	}
	group := o.Int8Group
	switch {
	case group == 0:
		group = DefaultInt8Group
	case group < 0:
		group = 0 // whole rows
	}
	amx := llama.AMXBF16
	switch o.AMXKernels {
	case "int8":
		amx = llama.AMXInt8
	case "off":
		amx = llama.AMXGGML
	}
	llm, err := llama.LoadModel(load, llama.ModelParams{NoExtraBuffers: o.NoExtraBuffers, GPULayers: gpuLayers, Device: o.Device,
		AMX: amx, Int8Group: group, ScaleFault: amxScaleFault})
	if err != nil {
		return nil, err
	}
	m, err := newModel(llm, facts, o)
	if err != nil {
		llm.Close()
		return nil, fmt.Errorf("cannot load model %q: %w", path, err)
	}
	m.digest = digest
	m.kernel = kernelPath(facts.FileType, bf16, llm.Buffers, llama.CPU(), amx, group)
	return m, nil
}

// bf16Copy returns the BF16 copy of path in DerivedDir, writing it when
// missing; a copy that does not pass the pre-check is written again.
func bf16Copy(path string, digest [32]byte, facts *modelfile.Facts, o Options) (string, error) {
	dst := filepath.Join(o.DerivedDir, hex.EncodeToString(digest[:])+"-bf16.gguf")
	if _, err := os.Stat(dst); err == nil {
		if _, err := modelfile.Check(dst); err == nil {
			return dst, nil
		}
		os.Remove(dst)
	}
	start := time.Now()
	if err := modelfile.WriteBF16(path, dst, facts.FileType == "Q8_0"); err != nil {
		return "", err
	}
	if _, err := modelfile.Check(dst); err != nil {
		os.Remove(dst)
		return "", fmt.Errorf("its BF16 copy does not pass the pre-check: %w", err)
	}
	o.Logger.Info("weights converted to BF16 for AVX512-BF16", "path", path, "file_type", facts.FileType, "copy", dst, "seconds", time.Since(start).Seconds())
	return dst, nil
}

// UsesBF16 decides whether a model is computed as BF16 on this CPU (the
// memory estimate asks too). For an F16 file "auto" follows FlashAttn: the
// BF16 path's error against the float64 reference stays within the
// flash-attention bounds (2e-2), not within the 5e-3 of the path without it
// (docs/benchmarks.md). A Q8_0 file likewise (Options.Q8AsBF16), except
// where the CPU has AMX, whose int8 tiles beat BF16.
func UsesBF16(f *modelfile.Facts, o Options) bool {
	cpu := llama.CPU()
	if o.DerivedDir == "" || !cpu.AVX512BF16 {
		return false
	}
	mode := o.F16AsBF16
	switch f.FileType {
	case "Q8_0":
		if cpu.AMXInt8 {
			return false
		}
		mode = o.Q8AsBF16
	case "F16":
	default:
		return false
	}
	switch mode {
	case "on":
		return true
	case "off":
		return false
	}
	return o.FlashAttn
}

// UsesAMXBF16 says whether a model's Q8_0 weights go to aimind's AMX-BF16
// kernels on this CPU, about twice their size in the file (the memory
// estimate asks).
func UsesAMXBF16(f *modelfile.Facts, o Options) bool {
	switch o.AMXKernels {
	case "", "auto", "bf16":
		return f.FileType == "Q8_0" && !o.NoExtraBuffers && llama.CPU().AimindAMXBF16
	}
	return false
}

// kernelPath names the matrix kernels a model's weights run through.
func kernelPath(fileType string, bf16 bool, buffers map[string]float64, cpu llama.CPUFeatures, mode llama.AMXKernels, int8Group int) string {
	amx, ours := 0.0, 0.0
	for name, mib := range buffers {
		switch {
		case name == int8Buffer:
			ours += mib
		case strings.Contains(name, "AMX"): // ggml names its buffer type "AMX"
			amx += mib
		}
	}
	if ours > 0 {
		s := fmt.Sprintf("AMX BF16, aimind kernels (%s weights rounded to BF16 at load; %.0f MiB of weights", fileType, ours)
		if mode == llama.AMXInt8 {
			scales := "scales per row"
			if int8Group > 0 {
				scales = fmt.Sprintf("scales per group of up to %d", int8Group)
			}
			s = fmt.Sprintf("AMX int8, aimind kernels (%s; %s; %.0f MiB of weights", fileType, scales, ours)
		}
		if amx > 0 {
			s += fmt.Sprintf(", %.0f MiB in ggml's AMX tiles", amx)
		}
		return s + ")"
	}
	if amx > 0 {
		return fmt.Sprintf("AMX int8 (%s; %.0f MiB of weights in AMX tiles)", fileType, amx)
	}
	if bf16 {
		return "BF16 AVX512-BF16 (" + fileType + " file converted at load)"
	}
	switch fileType {
	case "BF16":
		if cpu.AVX512BF16 {
			return "BF16 AVX512-BF16"
		}
		return "BF16 via FP32 FMA"
	case "F16":
		if cpu.AVX512 {
			return "F16 AVX-512 FP32 FMA"
		}
		return "F16 AVX2 FP32 FMA"
	case "F32":
		if cpu.AVX512 {
			return "F32 AVX-512"
		}
		return "F32 AVX2"
	}
	switch {
	case cpu.AVX512VNNI:
		return fileType + " AVX512-VNNI int8 (256-bit)"
	case cpu.AVXVNNI:
		return fileType + " AVX-VNNI int8"
	}
	return fileType + " AVX2 int8"
}

// int8Buffer is the buffer type of aimind's AMX kernels
// (third_party/kernels/i8gemm-ggml.cpp).
const int8Buffer = "AIMIND_AMX"

// Kernel names the matrix kernels the model runs through (for logs,
// /v1/models and /metrics).
func (m *Model) Kernel() string { return m.kernel }

// Device says where the weights are: "CPU", or the GPU buffers (for example
// "CUDA0: 1084 MiB of weights") when a GPU build offloaded layers.
func (m *Model) Device() string { return m.device }

// devicePlace names the non-CPU weight buffers from llama.cpp's load report.
func devicePlace(buffers map[string]float64) string {
	var gpu []string
	for _, name := range slices.Sorted(maps.Keys(buffers)) {
		if strings.HasPrefix(name, "CPU") || name == "AMX" || name == int8Buffer {
			continue
		}
		gpu = append(gpu, fmt.Sprintf("%s: %.0f MiB of weights", name, buffers[name]))
	}
	if len(gpu) == 0 {
		return "CPU"
	}
	return strings.Join(gpu, ", ")
}

// fileDigest decodes a known hex SHA-256 or computes the file's.
func fileDigest(path, known string) ([32]byte, error) {
	var d [32]byte
	if b, err := hex.DecodeString(known); err == nil && len(b) == len(d) {
		copy(d[:], b)
		return d, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return d, fmt.Errorf("cannot read the file for its digest: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return d, fmt.Errorf("cannot read the file for its digest: %w", err)
	}
	h.Sum(d[:0])
	return d, nil
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
	device := devicePlace(llm.Buffers)
	budget := o.BatchTokens
	if budget <= 0 {
		budget = DefaultBatchTokens
		if device != "CPU" {
			// A GPU wants large calls: up to 256 pairs (llama.cpp's
			// sequence limit) of a reranker's typical length.
			budget = DefaultGPUBatchTokens
		}
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
		maxQueued: o.MaxQueueTokens, onBatch: o.OnBatch, cache: o.Cache, device: device,
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

// Close stops the scheduler, answers every request still waiting with
// ErrClosed at once, and frees the context and model once the call in
// progress (if any) has returned. It is idempotent.
func (m *Model) Close() error { return m.CloseBecause("closed") }

// ClosedError is ErrClosed with what closed the model ("stopped",
// "deleted", "shutting down").
type ClosedError struct{ Reason string }

func (e *ClosedError) Error() string { return "model was " + e.Reason + " before it answered" }
func (e *ClosedError) Unwrap() error { return ErrClosed }

// CloseBecause is Close, telling waiting requests why.
func (m *Model) CloseBecause(reason string) error {
	m.once.Do(func() {
		m.closed = &ClosedError{Reason: reason}
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
	Tokens    int // tokens of all pairs, cached or not
	Cached    int // pairs answered from the score cache
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

// Score evaluates laid-out pairs: those the cache holds at once, the rest
// (each distinct pair once) through the scheduler.
func (m *Model) Score(ctx context.Context, pairs []Pair) (*Result, error) {
	if len(pairs) == 0 {
		return nil, ErrEmpty
	}
	r := &Result{Scores: make([]float64, len(pairs)), Truncated: make([]bool, len(pairs))}
	for i, p := range pairs {
		if len(p.Tokens) == 0 || len(p.Tokens) > m.ctxLen {
			return nil, fmt.Errorf("BUG: pair %d has %d tokens, limit %d", i, len(p.Tokens), m.ctxLen)
		}
		r.Truncated[i] = p.Truncated
		r.Tokens += len(p.Tokens)
	}
	// Which pairs need the encoder: not cached, and not a repeat of one
	// earlier in this request.
	var keys []cacheKey
	todo := make([]int, 0, len(pairs)) // pair index of each job pair
	same := make([]int, len(pairs))    // for repeats: the pair they copy
	if m.cache != nil {
		keys = make([]cacheKey, len(pairs))
		first := make(map[cacheKey]int, len(pairs))
		for i, p := range pairs {
			keys[i] = pairKey(m.digest, p.Tokens)
			same[i] = -1
			if j, ok := first[keys[i]]; ok {
				same[i] = j
				continue
			}
			first[keys[i]] = i
			if s, ok := m.cache.get(keys[i]); ok {
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
		if err := m.submit(ctx, j); err != nil {
			return nil, err
		}
		for k, i := range todo {
			r.Scores[i] = j.scores[k]
			if m.cache != nil {
				m.cache.put(keys[i], j.scores[k])
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
func (m *Model) submit(ctx context.Context, j *job) error {
	if j.tokens > m.maxQueued {
		return &TooLargeError{Tokens: j.tokens, Limit: m.maxQueued}
	}
	// Admission: refuse at once rather than queue without bound. The
	// scheduler gives the tokens back when it answers or drops the job.
	if q := m.queued.Add(int64(j.tokens)); q > int64(m.maxQueued) {
		m.queued.Add(-int64(j.tokens))
		return &OverloadError{Queued: int(q) - j.tokens, Limit: m.maxQueued, RetryAfter: m.drainTime(int(q) - j.tokens)}
	}
	select {
	case m.jobs <- j:
	case <-m.quit:
		m.queued.Add(-int64(j.tokens))
		return m.closed
	case <-ctx.Done():
		m.queued.Add(-int64(j.tokens))
		return ctx.Err()
	}
	select {
	case err := <-j.reply:
		return err
	case <-ctx.Done():
		// The scheduler sees the cancellation before its next call and
		// drops the pairs not yet scored.
		return ctx.Err()
	case <-m.done:
		// The scheduler has stopped; it answered every job it held, so a
		// reply may be waiting.
		select {
		case err := <-j.reply:
			return err
		default:
			// Sent after the scheduler drained its intake: nobody will
			// answer or count it out.
			m.queued.Add(-int64(j.tokens))
			return m.closed
		}
	}
}

// QueuedTokens is the number of tokens admitted and not yet answered.
func (m *Model) QueuedTokens() int { return int(m.queued.Load()) }

// MaxQueueTokens is the queue's bound in tokens.
func (m *Model) MaxQueueTokens() int { return m.maxQueued }

// Admit is the check before any tokenizing: a request of pairs pairs needs
// at least the layout's special tokens for each (texts may tokenize to
// nothing). Past what the queue may ever hold it is a *TooLargeError; past
// what it holds now, an *OverloadError; else nil.
func (m *Model) Admit(pairs int) error {
	least := pairs * max(m.layout.Overhead(), 1)
	if least > m.maxQueued {
		return &TooLargeError{Tokens: least, Limit: m.maxQueued}
	}
	if q := int(m.queued.Load()); q+least > m.maxQueued {
		return &OverloadError{Queued: q, Limit: m.maxQueued, RetryAfter: m.drainTime(q)}
	}
	return nil
}

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
	tokens int
	scores []float64
	left   int // pairs not yet scored
	req    *request
	reply  chan error
}

// answer replies once and gives the job's tokens back to the queue bound.
func (m *Model) answer(j *job, err error) {
	m.queued.Add(-int64(j.tokens))
	j.left = 0
	j.reply <- err
}

// run is the one goroutine that owns the llama context.
func (m *Model) run() {
	defer close(m.done)
	s := newScheduler(m.budget, llama.MaxSequences)
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
			m.answer(j, m.closed)
		}
		for {
			select {
			case j := <-m.jobs:
				m.answer(j, m.closed)
			default:
				return
			}
		}
	}
	for {
		if s.empty() {
			select {
			case j := <-m.jobs:
				accept(j)
			case <-m.quit:
				closeAll()
				return
			}
		}
	drain:
		for {
			select {
			case j := <-m.jobs:
				accept(j)
			case <-m.quit:
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
				m.answer(j, err)
			}
		}
		if s.empty() {
			continue
		}
		picks := s.next()
		tokens := m.encode(s, jobs, picks)
		s.advance(tokens)
	}
}

// encode runs one call and delivers its scores; a failed call fails every
// request it held. It returns the tokens encoded.
func (m *Model) encode(s *scheduler, jobs map[*request]*job, picks []pick) int {
	var tokens []int32
	lens := make([]int, len(picks))
	for i, p := range picks {
		t := jobs[p.req].pairs[p.pair].Tokens
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
			m.finish(s, jobs, j, fmt.Errorf("cannot score: %w", perr))
			continue
		}
		j.scores[p.pair] = float64(scores[i])
		if j.left--; j.left == 0 {
			m.finish(s, jobs, j, nil)
		}
	}
	return len(tokens)
}

// finish answers a job and forgets it, with any pairs of it that still wait
// in the scheduler.
func (m *Model) finish(s *scheduler, jobs map[*request]*job, j *job, err error) {
	s.drop(j.req)
	delete(jobs, j.req)
	m.answer(j, err)
}
