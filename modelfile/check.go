// Package modelfile checks a GGUF reranker in Go before llama.cpp sees it.
// ggml aborts the whole process on files it does not expect, and llama.cpp
// has had out-of-bounds reads on crafted files, so aimind refuses anything
// damaged, oversized or not a cross-encoder reranker here, with a message that
// says what is wrong.
package modelfile

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strings"

	gguf "github.com/gpustack/gguf-parser-go"
)

// Sentinel errors; the wrapped message says what exactly.
var (
	ErrDamaged     = errors.New("damaged GGUF file")
	ErrNotReranker = errors.New("not a cross-encoder reranker")
)

// Limits on what a file may declare; well above any real reranker.
const (
	maxLayers    = 256
	maxEmbedding = 1 << 15
	maxVocab     = 1 << 20
	maxContext   = 1 << 20
	maxTensors   = 1 << 14
)

// Architectures llama.cpp runs as BERT-style encoders with rank pooling.
var architectures = map[string]bool{"bert": true, "jina-bert-v2": true}

// Tokenizer models llama.cpp supports for those architectures.
// Only these two: llama.cpp asserts (aborts) while loading BPE vocabularies that
// lack a newline token, and no BPE or SPM cross-encoder is in scope.
var tokenizers = map[string]bool{"t5": true, "bert": true}

// ggml tensor types the pinned ggml can load as weights.
var tensorTypes = map[gguf.GGMLType]bool{
	0: true, 1: true, 2: true, 3: true, 6: true, 7: true, 8: true,
	10: true, 11: true, 12: true, 13: true, 14: true,
	16: true, 17: true, 18: true, 19: true, 20: true, 21: true, 22: true, 23: true,
	29: true, 30: true, 34: true, 35: true, 39: true,
}

// Facts are what aimind learns from a file before loading it.
type Facts struct {
	// HeaderShape: architecture and shape, the part of the facts the
	// header's first bytes already give (ReadHeaderShape).
	HeaderShape
	Name          string
	Tokenizer     string // tokenizer.ggml.model
	ContextLength int
	TokenTypeRows int
	Parameters    uint64
	FileType      string // e.g. "Q8_0", "F16"
	SizeBytes     int64
	HasTemplate   bool // tokenizer.chat_template.rerank present
	Warnings      []string
}

// Check parses path and verifies it is a loadable reranker.
func Check(path string) (facts *Facts, err error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read model file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("cannot use %q as a model: not a regular file", path)
	}
	defer func() {
		// gguf-parser-go panics on some malformed input; a file must never
		// take the process down.
		if r := recover(); r != nil {
			facts, err = nil, fmt.Errorf("%w %q: %v", ErrDamaged, path, r)
		}
	}()
	f, err := gguf.ParseGGUFFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", ErrDamaged, path, err)
	}
	if err := checkFile(f, st.Size()); err != nil {
		return nil, fmt.Errorf("cannot use %q: %w", path, err)
	}
	return facts2(f, st.Size())
}

type meta struct{ kvs gguf.GGUFMetadataKVs }

func (m meta) str(key string) (string, bool) {
	v, ok := m.kvs.Get(key)
	if !ok || v.ValueType != gguf.GGUFMetadataValueTypeString {
		return "", false
	}
	return v.ValueString(), true
}

func (m meta) num(key string) (uint64, bool, error) {
	v, ok := m.kvs.Get(key)
	if !ok {
		return 0, false, nil
	}
	if !v.ValueType.IsNumeric() {
		return 0, true, fmt.Errorf("%w: %s is a %v, want a number", ErrDamaged, key, v.ValueType)
	}
	f := gguf.ValueNumeric[float64](v)
	if f < 0 || f > 1<<53 {
		return 0, true, fmt.Errorf("%w: %s = %v is out of range", ErrDamaged, key, f)
	}
	return uint64(f), true, nil
}

// need reads arch.key, which must be present, positive and at most max.
func (m meta) need(arch, key string, max uint64) (int, error) {
	v, ok, err := m.num(arch + "." + key)
	if err != nil {
		return 0, err
	}
	if !ok || v == 0 || v > max {
		return 0, fmt.Errorf("%w: %s.%s is missing or out of range (%d)", ErrDamaged, arch, key, v)
	}
	return int(v), nil
}

func (m meta) arrayLen(key string) (int, bool) {
	v, ok := m.kvs.Get(key)
	if !ok || v.ValueType != gguf.GGUFMetadataValueTypeArray {
		return 0, false
	}
	return int(v.ValueArray().Len), true
}

func checkFile(f *gguf.GGUFFile, size int64) error {
	m := meta{f.Header.MetadataKV}
	if f.Header.TensorCount > maxTensors {
		return fmt.Errorf("%w: %d tensors", ErrDamaged, f.Header.TensorCount)
	}
	if a, ok, err := m.num("general.alignment"); err != nil {
		return err
	} else if ok && (a == 0 || a&(a-1) != 0 || a > 1<<16) {
		return fmt.Errorf("%w: general.alignment %d is not a power of two", ErrDamaged, a)
	}
	// Every tensor's data lies inside the file, with a known type.
	dataStart := uint64(f.TensorDataStartOffset)
	if f.TensorDataStartOffset < 0 || dataStart > uint64(size) {
		return fmt.Errorf("%w: tensor data starts past the end of the file", ErrDamaged)
	}
	for _, ti := range f.TensorInfos {
		if !tensorTypes[ti.Type] {
			return fmt.Errorf("%w: tensor %s has unsupported type %v", ErrDamaged, ti.Name, ti.Type)
		}
		if ti.NDimensions == 0 || ti.NDimensions > 4 {
			return fmt.Errorf("%w: tensor %s has %d dimensions", ErrDamaged, ti.Name, ti.NDimensions)
		}
		n := uint64(1)
		for _, d := range ti.Dimensions {
			if d == 0 || d > 1<<31 || n > (1<<62)/d {
				return fmt.Errorf("%w: tensor %s has dimensions %v", ErrDamaged, ti.Name, ti.Dimensions)
			}
			n *= d
		}
		tt, _ := ti.Type.Trait()
		if ti.Dimensions[0]%uint64(tt.BlockSize) != 0 {
			return fmt.Errorf("%w: tensor %s row of %d is not a multiple of its block size %d", ErrDamaged, ti.Name, ti.Dimensions[0], tt.BlockSize)
		}
		nbytes := n / uint64(tt.BlockSize) * uint64(tt.TypeSize)
		end := dataStart + ti.Offset + nbytes
		if ti.Offset > uint64(size) || end < dataStart || end > uint64(size) {
			return fmt.Errorf("%w: tensor %s (%d bytes at offset %d) lies outside the file of %d bytes", ErrDamaged, ti.Name, nbytes, ti.Offset, size)
		}
	}

	// llama.cpp adds biases, norm weights and a row of token_types.weight to
	// F32 activations directly; ggml aborts on an F16 (or quantized) operand.
	for _, ti := range f.TensorInfos {
		if (ti.NDimensions == 1 || ti.Name == "token_types.weight") && ti.Type != gguf.GGMLTypeF32 {
			return fmt.Errorf("%w: tensor %s is %v; it must be F32", ErrDamaged, ti.Name, ti.Type)
		}
	}

	arch, _ := m.str("general.architecture")
	switch {
	case architectures[arch]:
		return checkEncoder(f, m, arch)
	case arch == "qwen3":
		return checkQwen3(f, m)
	}
	return fmt.Errorf("%w: architecture %q; %s", ErrNotReranker, arch, Supported)
}

// Supported names the model families aimind serves, for refusals.
const Supported = "aimind runs BERT/XLM-RoBERTa cross-encoders (architectures bert, jina-bert-v2) and Qwen3 rerankers (qwen3)"

// checkEncoder checks a BERT-style cross-encoder: rank pooling on the first
// token through a one-output head.
func checkEncoder(f *gguf.GGUFFile, m meta, arch string) error {
	pooling, ok, err := m.num(arch + ".pooling_type")
	if err != nil {
		return err
	}
	if !ok || pooling != 4 {
		return fmt.Errorf("%w: %s.pooling_type is %d, want 4 (rank); this looks like an embedding model", ErrNotReranker, arch, pooling)
	}
	ctxLen, err := m.need(arch, "context_length", maxContext)
	if err != nil {
		return err
	}
	embd, err := m.need(arch, "embedding_length", maxEmbedding)
	if err != nil {
		return err
	}
	layers, err := m.need(arch, "block_count", maxLayers)
	if err != nil {
		return err
	}
	heads, err := m.need(arch, "attention.head_count", uint64(embd))
	if err != nil {
		return err
	}
	if embd%heads != 0 {
		return fmt.Errorf("%w: embedding length %d is not a multiple of %d heads", ErrDamaged, embd, heads)
	}
	if _, err := m.need(arch, "feed_forward_length", 1<<20); err != nil {
		return err
	}
	if err := checkHparams(m, arch, embd, heads); err != nil {
		return err
	}

	tok, _ := m.str("tokenizer.ggml.model")
	if !tokenizers[tok] {
		return fmt.Errorf("%w: tokenizer.ggml.model %q is not supported", ErrNotReranker, tok)
	}
	nTokens, err := checkVocab(m)
	if err != nil {
		return err
	}

	dims := tensorDims(f)
	te, err := dims("token_embd.weight")
	if err != nil {
		return err
	}
	if len(te) != 2 || te[0] != uint64(embd) || te[1] != uint64(nTokens) {
		return fmt.Errorf("%w: token_embd.weight is %v, want [%d %d]", ErrDamaged, te, embd, nTokens)
	}
	pe, err := dims("position_embd.weight")
	if err != nil && arch == "bert" {
		return err
	}
	if err == nil && (len(pe) != 2 || pe[0] != uint64(embd) || pe[1] < uint64(ctxLen)) {
		return fmt.Errorf("%w: position_embd.weight is %v, fewer rows than the context length %d", ErrDamaged, pe, ctxLen)
	}
	if tt, err := dims("token_types.weight"); err == nil && (len(tt) < 1 || tt[0] != uint64(embd)) {
		return fmt.Errorf("%w: token_types.weight is %v", ErrDamaged, tt)
	}
	// The head: tanh(cls) then cls.output with exactly one output.
	outputs := uint64(0)
	// ggml's own GGUF writer drops trailing dimensions of 1, so a one-output
	// head may be stored as a 1-D [E] tensor.
	if od, err := dims("cls.output.weight"); err == nil {
		if len(od) > 2 || od[0] != uint64(embd) {
			return fmt.Errorf("%w: cls.output.weight is %v", ErrDamaged, od)
		}
		outputs = 1
		if len(od) == 2 {
			outputs = od[1]
		}
		if cd, err := dims("cls.weight"); err == nil && (len(cd) != 2 || cd[0] != uint64(embd) || cd[1] != uint64(embd)) {
			return fmt.Errorf("%w: cls.weight is %v, want [%d %d]", ErrDamaged, cd, embd, embd)
		}
	} else if cd, err := dims("cls.weight"); err == nil {
		if len(cd) > 2 || cd[0] != uint64(embd) {
			return fmt.Errorf("%w: cls.weight is %v", ErrDamaged, cd)
		}
		outputs = 1
		if len(cd) == 2 {
			outputs = cd[1]
		}
	} else {
		return fmt.Errorf("%w: no classification head (cls.output.weight or cls.weight)", ErrNotReranker)
	}
	if outputs != 1 {
		return fmt.Errorf("%w: the classification head has %d outputs, aimind needs exactly 1 relevance score", ErrNotReranker, outputs)
	}
	if n, ok := m.arrayLen(arch + ".classifier.output_labels"); ok && n != 1 {
		return fmt.Errorf("%w: %d classifier labels, aimind needs exactly 1", ErrNotReranker, n)
	}
	for l := 0; l < layers; l++ {
		if _, err := dims(fmt.Sprintf("blk.%d.ffn_down.weight", l)); err != nil {
			return fmt.Errorf("%w: layer %d of %d is incomplete", ErrDamaged, l, layers)
		}
	}
	return nil
}

// tensorDims returns a lookup of tensor dimensions; a missing tensor is
// ErrNotReranker.
func tensorDims(f *gguf.GGUFFile) func(name string) ([]uint64, error) {
	return func(name string) ([]uint64, error) {
		ti, ok := f.TensorInfos.Get(name)
		if !ok {
			return nil, fmt.Errorf("%w: tensor %s is missing", ErrNotReranker, name)
		}
		return ti.Dimensions, nil
	}
}

// checkVocab checks the vocabulary as llama.cpp reads it and returns its
// size.
func checkVocab(m meta) (int, error) {
	nTokens, ok := m.arrayLen("tokenizer.ggml.tokens")
	if !ok || nTokens == 0 || nTokens > maxVocab {
		return 0, fmt.Errorf("%w: tokenizer.ggml.tokens is missing or has %d entries", ErrDamaged, nTokens)
	}
	// llama.cpp aborts (GGML_ASSERT) on a vocabulary with duplicate tokens,
	// as it reads them: each as a C string (cut at its first NUL), an empty
	// one renamed "[EMPTY_<index>]". A very long token overflows the stack
	// while it builds its tokenizer.
	if v, ok := m.kvs.Get("tokenizer.ggml.tokens"); ok {
		av := v.ValueArray()
		if av.Type != gguf.GGUFMetadataValueTypeString {
			return 0, fmt.Errorf("%w: tokenizer.ggml.tokens is not a string array", ErrDamaged)
		}
		seen := make(map[string]int, nTokens)
		for i, t := range av.ValuesString() {
			if len(t) > MaxTokenBytes {
				return 0, fmt.Errorf("%w: token %d is %d bytes long (at most %d)", ErrDamaged, i, len(t), MaxTokenBytes)
			}
			as := t
			if k := strings.IndexByte(as, 0); k >= 0 {
				as = as[:k]
			}
			if as == "" {
				as = fmt.Sprintf("[EMPTY_%d]", i)
			}
			if j, dup := seen[as]; dup {
				return 0, fmt.Errorf("%w: token %d (%q) appears twice in the vocabulary as llama.cpp reads it: %q, like token %d (%q)", ErrDamaged, i, t, as, j, av.ValuesString()[j])
			}
			seen[as] = i
		}
	}
	for _, k := range []string{"tokenizer.ggml.scores", "tokenizer.ggml.token_type"} {
		if n, ok := m.arrayLen(k); ok && n != nTokens {
			return 0, fmt.Errorf("%w: %s has %d entries for %d tokens", ErrDamaged, k, n, nTokens)
		}
	}
	for _, k := range []string{"bos", "eos", "unknown", "seperator", "padding", "cls", "mask"} {
		key := "tokenizer.ggml." + k + "_token_id"
		if v, ok, err := m.num(key); err != nil {
			return 0, err
		} else if ok && v >= uint64(nTokens) && v != 0xFFFFFFFF {
			return 0, fmt.Errorf("%w: %s = %d is outside the vocabulary of %d", ErrDamaged, key, v, nTokens)
		}
	}

	return nTokens, nil
}

// MaxTokenBytes bounds one vocabulary entry (real vocabularies stay under
// a hundred bytes; llama.cpp's tokenizer build recursed out of stack on a
// 60,000-byte one).
const MaxTokenBytes = 1024

// checkHparams mirrors what llama.cpp asserts about the encoder's optional
// hyperparameters: a head size it would divide by or compare with, a
// layer-norm epsilon that ggml's norm asserts on at the first request.
func checkHparams(m meta, arch string, embd, heads int) error {
	for _, k := range []string{"attention.key_length", "attention.value_length"} {
		v, ok, err := m.num(arch + "." + k)
		if err != nil {
			return err
		}
		if ok && int(v) != embd/heads {
			return fmt.Errorf("%w: %s.%s = %d, want the head size %d (embedding %d / %d heads)", ErrDamaged, arch, k, v, embd/heads, embd, heads)
		}
	}
	if v, ok, err := m.num(arch + ".attention.head_count_kv"); err != nil {
		return err
	} else if ok && (v == 0 || int(v) != heads) {
		return fmt.Errorf("%w: %s.attention.head_count_kv = %d, want %d (an encoder has as many key/value heads as heads)", ErrDamaged, arch, v, heads)
	}
	key := arch + ".attention.layer_norm_epsilon"
	if v, ok := m.kvs.Get(key); ok {
		if !v.ValueType.IsNumeric() {
			return fmt.Errorf("%w: %s is a %v, want a number", ErrDamaged, key, v.ValueType)
		}
		eps := gguf.ValueNumeric[float64](v)
		if math.IsNaN(eps) || math.IsInf(eps, 0) || eps <= 0 || eps >= 1 {
			return fmt.Errorf("%w: %s = %v, want a small positive number", ErrDamaged, key, eps)
		}
	}
	return nil
}

func facts2(f *gguf.GGUFFile, size int64) (*Facts, error) {
	m := meta{f.Header.MetadataKV}
	arch, _ := m.str("general.architecture")
	get := func(k string) int { v, _, _ := m.num(arch + "." + k); return int(v) }
	fc := &Facts{
		HeaderShape:   shapeFrom(arch, get),
		ContextLength: get("context_length"),
		SizeBytes:     size,
		Parameters:    uint64(f.ModelParameters),
		TokenTypeRows: 1,
	}
	if fc.Decoder {
		if _, ok := m.str("tokenizer.chat_template.rerank"); !ok {
			fc.Warnings = append(fc.Warnings, "the file has no rerank template (tokenizer.chat_template.rerank); aimind uses Qwen3-Reranker's from its model card")
		}
	}
	fc.Name, _ = m.str("general.name")
	fc.Tokenizer, _ = m.str("tokenizer.ggml.model")
	fc.VocabSize, _ = m.arrayLen("tokenizer.ggml.tokens")
	_, fc.HasTemplate = m.str("tokenizer.chat_template.rerank")
	fc.FileType = strings.TrimPrefix(f.TensorInfos.GetFileType().String(), "MOSTLY_")
	if ti, ok := f.TensorInfos.Get("token_types.weight"); ok && len(ti.Dimensions) == 2 {
		fc.TokenTypeRows = int(ti.Dimensions[1])
	}
	if fc.TokenTypeRows > 1 {
		fc.Warnings = append(fc.Warnings, fmt.Sprintf(
			"token_types.weight has %d rows but llama.cpp gives every token type 0; scores may differ from Hugging Face's for this model",
			fc.TokenTypeRows))
	}
	return fc, nil
}
