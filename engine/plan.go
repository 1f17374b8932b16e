package engine

import (
	"github.com/aimind/aimind/llama"
	"github.com/aimind/aimind/modelfile"
)

// Shape is what a plan needs to know of a model file. Before a download only
// the file type (from its name) and size are known; Embedding 0 says so.
type Shape struct {
	FileType    string // "Q8_0", "F16", …
	SizeBytes   int64
	Embedding   int
	FeedForward int
	Heads       int
	// A decoder reranker (qwen3) caches keys and values for the call's
	// tokens: Layers x KVHeads x HeadDim each.
	Decoder                  bool
	Layers, KVHeads, HeadDim int
	// VocabSize: token_embd's rows, which stay in the file's type (read by
	// row, never multiplied by aimind's AMX kernels).
	VocabSize int
}

// ShapeOf is the shape a checked file declares.
func ShapeOf(f *modelfile.Facts) Shape { return ShapeFrom(f.HeaderShape, f.FileType, f.SizeBytes) }

// ShapeFrom is the shape of a file of this type and size whose header gave
// h (all of a checked file's facts, or a header read before a download).
func ShapeFrom(h modelfile.HeaderShape, fileType string, size int64) Shape {
	return Shape{FileType: fileType, SizeBytes: size, Embedding: h.Embedding, FeedForward: h.FeedForward, Heads: h.Heads,
		Decoder: h.Decoder, Layers: h.Layers, KVHeads: h.KVHeads, HeadDim: h.HeadDim, VocabSize: h.VocabSize}
}

// Plan is the one place where a model's kernel path and its memory are
// decided. The models manager's memory check and record, the load (Open)
// and the deploy dialog's estimate all read a Plan, so the number shown
// before a deploy is the one the chosen path uses.
type Plan struct {
	Options Options // as the load uses them
	Shape   Shape
	// BF16: the weights are computed from a BF16 copy of the F16 or Q8_0
	// file (written once to Options.DerivedDir).
	BF16 bool
	// Weights are the bytes of weights in memory: the file, or its BF16 copy
	// (a Q8_0 block of 34 bytes for 32 weights becomes 64 bytes).
	Weights int64
	// Work is the encoder's working memory for the largest call; from the
	// shape when known, else an allowance from the file size (workAllowance).
	Work int64
	// Memory is the estimate: Weights + Work + a fixed allowance for
	// llama.cpp's own buffers.
	Memory int64
}

// fixedOverhead covers llama.cpp's compute graph and buffers beside the
// weights and activations.
const fixedOverhead = 32 << 20

// NewPlan decides how a model of shape s runs with options o on a CPU with
// features cpu, and what memory that takes.
func NewPlan(s Shape, o Options, cpu llama.CPUFeatures) Plan {
	p := Plan{Options: o, Shape: s, BF16: usesBF16(s.FileType, o, cpu)}
	p.Weights = s.SizeBytes
	// A Q8_0 file computed as BF16 (a BF16 copy, or aimind's AMX-BF16
	// kernels rounding the weights at load): 34 bytes a block of 32 become 64.
	switch {
	case s.FileType == "Q8_0" && p.BF16:
		p.Weights = s.SizeBytes / 34 * 64
	case usesQ8VNNI(s.FileType, p.BF16, o, cpu):
		// aimind's VNNI kernels keep the file's blocks and widen each block's
		// FP16 scale to FP32: 34 bytes a block become 36; the token
		// embeddings stay as they are.
		emb := min(int64(s.VocabSize)*int64(s.Embedding)/32*34, s.SizeBytes)
		p.Weights = emb + (s.SizeBytes-emb)/34*36
	case s.FileType == "Q8_0" && usesAMXBF16(s.FileType, o, cpu):
		// The matrices the kernels multiply become BF16 at load; the token
		// embeddings stay Q8_0 (unknown before a download: all counted).
		emb := min(int64(s.VocabSize)*int64(s.Embedding)/32*34, s.SizeBytes)
		p.Weights = emb + (s.SizeBytes-emb)/34*64
	}
	tokens := int64(max(o.BatchTokens, o.Ctx, DefaultBatchTokens, DefaultCtx))
	if s.Embedding > 0 {
		e, ff, h := int64(s.Embedding), int64(s.FeedForward), int64(s.Heads)
		p.Work = tokens*(8*e+2*ff)*4 + h*tokens*tokens*4
		if s.Decoder {
			// The key/value cache of the call's tokens (F32:
			// llama.ContextParams), and SwiGLU's third matrix.
			p.Work += 2*int64(s.Layers)*tokens*int64(s.KVHeads*s.HeadDim)*4 + tokens*ff*4
		}
	} else {
		p.Work = workAllowance(s.SizeBytes)
	}
	p.Memory = p.Weights + p.Work + fixedOverhead
	return p
}

// PlanFor is NewPlan for a checked file on this machine's CPU.
func PlanFor(f *modelfile.Facts, o Options) Plan { return NewPlan(ShapeOf(f), o, llama.CPU()) }

// workAllowance stands in for the working memory of an encoder whose shape
// is not known yet (before its download): half the file, between 4 and
// 48 MiB. The working memory of a 512-token call is 24 MiB for
// MiniLM-L6, 36 MiB for a base-size XLM-RoBERTa and 48 MiB for a large one
// (bge-reranker-v2-m3), whose files are larger than 96 MiB; TestPlanBeforeDownload
// bounds the error against the shape's own figure.
func workAllowance(size int64) int64 {
	return min(max(size/2, 4<<20), 48<<20)
}

// WithoutCopy is the plan on the file's own kernels when this one computes
// a Q8_0 file as BF16 by default ("auto"): the copy is a speed-up, not a
// need, so where its memory is not free the Q8_0 kernels run the file as it
// is. ok is false when there is no such alternative.
func (p Plan) WithoutCopy(cpu llama.CPUFeatures) (alt Plan, ok bool) {
	if !p.BF16 || p.Shape.FileType != "Q8_0" || (p.Options.Q8AsBF16 != "auto" && p.Options.Q8AsBF16 != "") {
		return p, false
	}
	o := p.Options
	o.Q8AsBF16 = "off"
	return NewPlan(p.Shape, o, cpu), true
}

// UsesBF16 decides whether a model is computed as BF16 on this CPU.
func UsesBF16(f *modelfile.Facts, o Options) bool { return usesBF16(f.FileType, o, llama.CPU()) }

// usesBF16: for an F16 file "auto" follows FlashAttn: the BF16 path's error
// against the float64 reference stays within the flash-attention bounds
// (2e-2), not within the 5e-3 of the path without it (docs/benchmarks.md).
// A Q8_0 file likewise (Options.Q8AsBF16), except where the CPU has AMX,
// whose kernels beat BF16, and, under "auto", where aimind's VNNI kernels
// run (faster than the copy, at half its memory: docs/benchmarks.md).
func usesBF16(fileType string, o Options, cpu llama.CPUFeatures) bool {
	if o.DerivedDir == "" || !cpu.AVX512BF16 {
		return false
	}
	mode := o.F16AsBF16
	switch fileType {
	case "Q8_0":
		if cpu.AMXInt8 {
			return false
		}
		mode = o.Q8AsBF16
		if (mode == "auto" || mode == "") && usesQ8VNNI(fileType, false, o, cpu) {
			return false
		}
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
