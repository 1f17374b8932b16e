// Package engine reranks: it lays query-document pairs out as token
// sequences, packs the pairs of all waiting requests into encoder calls under
// a token budget, and reads one relevance logit per pair. One goroutine owns
// each llama.cpp context; requests wait on their own reply channel.
package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/aimind/aimind/engine/batch"
	"github.com/aimind/aimind/llama"
	"github.com/aimind/aimind/modelfile"
)

// The pure-Go half of the engine lives in engine/batch; its types and
// errors are the engine's own.
type (
	Pair          = batch.Pair
	Result        = batch.Result
	OverloadError = batch.OverloadError
	TooLargeError = batch.TooLargeError
	ClosedError   = batch.ClosedError
	Query         = batch.Query
	DocOptions    = batch.DocOptions
	DocPlace      = batch.DocPlace
	Prepared      = batch.Prepared
	DocScore      = batch.DocScore
	Answer        = batch.Answer
	Layout        = batch.Layout
	LayoutKind    = batch.LayoutKind
	ScoreCache    = batch.ScoreCache
	CacheStats    = batch.CacheStats
)

// Sentinel errors.
var (
	ErrClosed        = batch.ErrClosed
	ErrNonFinite     = batch.ErrNonFinite
	ErrEmpty         = batch.ErrEmpty
	ErrOverloaded    = batch.ErrOverloaded
	ErrTooLarge      = batch.ErrTooLarge
	ErrQueryTooLong  = batch.ErrQueryTooLong
	ErrNoInstruction = batch.ErrNoInstruction
)

// Pair layouts.
const (
	LayoutRoBERTa  = batch.LayoutRoBERTa
	LayoutBERT     = batch.LayoutBERT
	LayoutTemplate = batch.LayoutTemplate
	LayoutInstruct = batch.LayoutInstruct
	// Qwen3Template is Qwen3-Reranker's prompt (batch.Qwen3Template).
	Qwen3Template = batch.Qwen3Template
)

// NewScoreCache returns a cache of at most maxBytes; 0 or less: no cache (nil).
func NewScoreCache(maxBytes int64) *ScoreCache { return batch.NewScoreCache(maxBytes) }

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
	// VNNIKernels chooses aimind's Q8_0 GEMM on CPUs with AVX512-VNNI and
	// no AMX (third_party/kernels/q8vnni.cpp: the file's blocks kept
	// exactly, ggml's Q8_0 arithmetic in a faster tiling): "auto" (the
	// default, also "") and "on" run it for a Q8_0 file the CPU computes on
	// its own kernels (not as a BF16 copy, Q8AsBF16), "off" leaves the file
	// to ggml's kernels.
	VNNIKernels string
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
const DefaultMaxQueueTokens = batch.DefaultMaxQueueTokens

// Defaults of the score cache and of chunking.
const (
	DefaultCacheBytes = batch.DefaultCacheBytes
	DefaultMaxChunks  = batch.DefaultMaxChunks
	// CacheEntryBytes is what one cache entry is charged against the bound.
	CacheEntryBytes = batch.CacheEntryBytes
)

// Model is a loaded reranker ready to score.
type Model struct {
	facts  *modelfile.Facts
	info   llama.Info
	llm    *llama.Model
	layout Layout
	ctxLen int
	q      *batch.Queue
	kernel string
	device string
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
	plan := PlanFor(facts, o)
	bf16 := plan.BF16
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
	if usesQ8VNNI(facts.FileType, bf16, o, llama.CPU()) {
		amx = llama.Q8VNNI
	}
	llm, err := llama.LoadModel(load, llama.ModelParams{NoExtraBuffers: o.NoExtraBuffers, GPULayers: gpuLayers, Device: o.Device,
		AMX: amx, Int8Group: group, ScaleFault: amxScaleFault})
	if err != nil {
		return nil, err
	}
	m, err := newModel(llm, facts, digest, o)
	if err != nil {
		llm.Close()
		return nil, fmt.Errorf("cannot load model %q: %w", path, err)
	}
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

// UsesAMXBF16 says whether a model's Q8_0 weights go to aimind's AMX-BF16
// kernels on this CPU, about twice their size in the file (engine.Plan
// counts them).
func UsesAMXBF16(f *modelfile.Facts, o Options) bool {
	return usesAMXBF16(f.FileType, o, llama.CPU())
}

// usesQ8VNNI: aimind's VNNI kernels run a Q8_0 file that is computed on
// its own kernels, on a CPU with AVX512-VNNI and without aimind's AMX ones.
func usesQ8VNNI(fileType string, bf16 bool, o Options, cpu llama.CPUFeatures) bool {
	if fileType != "Q8_0" || bf16 || o.NoExtraBuffers || o.VNNIKernels == "off" {
		return false
	}
	return cpu.AimindQ8VNNI && !cpu.AimindAMXBF16 && !cpu.AimindAMXInt8
}

func usesAMXBF16(fileType string, o Options, cpu llama.CPUFeatures) bool {
	switch o.AMXKernels {
	case "", "auto", "bf16":
		return fileType == "Q8_0" && !o.NoExtraBuffers && cpu.AimindAMXBF16
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
	if ours > 0 && mode == llama.Q8VNNI {
		return fmt.Sprintf("Q8_0 AVX512-VNNI, aimind kernels (the file's blocks; %.0f MiB of weights)", ours)
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

// int8Buffer is the buffer type of aimind's kernels
// (third_party/kernels/i8gemm-ggml.cpp).
const int8Buffer = "AIMIND"

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

func newModel(llm *llama.Model, facts *modelfile.Facts, digest [32]byte, o Options) (*Model, error) {
	info, err := llm.Info()
	if err != nil {
		return nil, err
	}
	causal := llm.Causal()
	if (!causal && info.NClsOut != 1) || (causal && info.NClsOut != 2) {
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
	layout, err := chooseLayout(llm, info, causal)
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
	m := &Model{facts: facts, info: info, llm: llm, layout: layout, ctxLen: ctxLen, device: device}
	m.q = batch.New(lctx, batch.Options{
		Budget: budget, MaxSequences: llama.MaxSequences, MaxPairTokens: ctxLen,
		MaxQueueTokens: o.MaxQueueTokens, Cache: o.Cache, Digest: digest, OnBatch: o.OnBatch,
	})
	return m, nil
}

func chooseLayout(llm *llama.Model, info llama.Info, causal bool) (Layout, error) {
	if causal {
		return batch.NewInstructLayout(info.RerankPrompt, llm)
	}
	if info.RerankPrompt != "" {
		return batch.NewTemplateLayout(info.RerankPrompt, llm)
	}
	sep := info.SEP
	if sep < 0 {
		sep = info.EOS
	}
	if info.VocabType == llama.VocabWPM {
		return batch.NewSpecialLayout(LayoutBERT, info.CLS, sep)
	}
	return batch.NewSpecialLayout(LayoutRoBERTa, info.BOS, sep)
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

// CloseBecause is Close, telling waiting requests why.
func (m *Model) CloseBecause(reason string) error {
	m.q.Close(reason) // closes the context once the call in progress returns
	m.llm.Close()
	return nil
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
	return m.q.Score(ctx, pairs)
}

// QueuedTokens is the number of tokens admitted and not yet answered.
func (m *Model) QueuedTokens() int { return m.q.QueuedTokens() }

// MaxQueueTokens is the queue's bound in tokens.
func (m *Model) MaxQueueTokens() int { return m.q.MaxQueueTokens() }

// Admit is the check before any tokenizing: a request of pairs pairs needs
// at least the layout's special tokens for each (texts may tokenize to
// nothing). Past what the queue may ever hold it is a *TooLargeError; past
// what it holds now, an *OverloadError; else nil.
func (m *Model) Admit(pairs int) error {
	return m.q.Admit(pairs * max(m.layout.Overhead(), 1))
}

// Prepare tokenizes and lays out every query-document pair of a request.
func (m *Model) Prepare(queries []Query, o DocOptions) (*Prepared, error) {
	if err := m.q.Closed(); err != nil {
		return nil, err
	}
	return batch.Prepare(m.llm, m.layout, m.ctxLen, m.q.MaxQueueTokens(), queries, o)
}

// Run scores a prepared request in one pass through the scheduler: every
// pair of every query and window once.
func (m *Model) Run(ctx context.Context, p *Prepared) (*Answer, error) {
	res, err := m.q.Score(ctx, p.Pairs)
	if err != nil {
		return nil, err
	}
	return batch.Assemble(p, res), nil
}

// WeightBytes is the memory llama.cpp reports for the loaded weights (all
// buffers, CPU and GPU).
func (m *Model) WeightBytes() int64 {
	total := 0.0
	for _, mib := range m.llm.Buffers {
		total += mib
	}
	return int64(total * (1 << 20))
}
