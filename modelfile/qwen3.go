package modelfile

import (
	"fmt"
	"math"
	"strings"

	gguf "github.com/gpustack/gguf-parser-go"
)

// checkQwen3 checks a Qwen3 reranker as llama.cpp's converter writes
// Qwen3-Reranker: a decoder read on the last token, whose rank head
// cls.output holds the language-model rows of "yes" and "no" (labels
// yes, no), byte-level BPE vocabulary. Everything llama.cpp would assert on
// is refused here with what is wrong.
func checkQwen3(f *gguf.GGUFFile, m meta) error {
	const arch = "qwen3"
	pooling, ok, err := m.num(arch + ".pooling_type")
	if err != nil {
		return err
	}
	if !ok || pooling != 4 {
		return fmt.Errorf("%w: qwen3.pooling_type is %d, want 4 (rank): this is a Qwen3 language or embedding model, not Qwen3-Reranker", ErrNotReranker, pooling)
	}
	if _, err := m.need(arch, "context_length", maxContext); err != nil {
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
	heads, err := m.need(arch, "attention.head_count", maxEmbedding)
	if err != nil {
		return err
	}
	ff, err := m.need(arch, "feed_forward_length", 1<<20)
	if err != nil {
		return err
	}
	kvHeads := heads
	if v, ok, err := m.num(arch + ".attention.head_count_kv"); err != nil {
		return err
	} else if ok {
		kvHeads = int(v)
	}
	if kvHeads == 0 || heads%kvHeads != 0 {
		return fmt.Errorf("%w: %d attention heads are not a multiple of %d key/value heads", ErrDamaged, heads, kvHeads)
	}
	headDim := embd / heads
	if v, ok, err := m.num(arch + ".attention.key_length"); err != nil {
		return err
	} else if ok {
		headDim = int(v)
	}
	if headDim == 0 || headDim > maxEmbedding || headDim%2 != 0 {
		return fmt.Errorf("%w: head size %d (it must be even and positive for rotary positions)", ErrDamaged, headDim)
	}
	// llama.cpp asserts that values, keys and the rotary dimension have one size.
	for _, k := range []string{"attention.value_length", "rope.dimension_count"} {
		if v, ok, err := m.num(arch + "." + k); err != nil {
			return err
		} else if ok && int(v) != headDim {
			return fmt.Errorf("%w: %s.%s = %d, want the head size %d", ErrDamaged, arch, k, v, headDim)
		}
	}
	for _, k := range []string{"attention.layer_norm_rms_epsilon", "rope.freq_base"} {
		key := arch + "." + k
		v, ok := m.kvs.Get(key)
		if !ok {
			if k == "rope.freq_base" {
				continue
			}
			return fmt.Errorf("%w: %s is missing", ErrDamaged, key)
		}
		if !v.ValueType.IsNumeric() {
			return fmt.Errorf("%w: %s is a %v, want a number", ErrDamaged, key, v.ValueType)
		}
		x := gguf.ValueNumeric[float64](v)
		if math.IsNaN(x) || math.IsInf(x, 0) || x <= 0 || (k == "attention.layer_norm_rms_epsilon" && x >= 1) {
			return fmt.Errorf("%w: %s = %v is out of range", ErrDamaged, key, x)
		}
	}

	tok, _ := m.str("tokenizer.ggml.model")
	if tok != "gpt2" {
		return fmt.Errorf("%w: a Qwen3 reranker has a byte-level BPE vocabulary (tokenizer.ggml.model gpt2), this file says %q", ErrNotReranker, tok)
	}
	nTokens, err := checkVocab(m)
	if err != nil {
		return err
	}
	if n, ok := m.arrayLen("tokenizer.ggml.merges"); !ok || n == 0 {
		return fmt.Errorf("%w: tokenizer.ggml.merges is missing", ErrDamaged)
	}
	// llama.cpp asserts while loading a BPE vocabulary without a newline
	// token (byte 0x0A is the symbol U+010A in the byte-level alphabet).
	if v, ok := m.kvs.Get("tokenizer.ggml.tokens"); ok {
		found := false
		for _, t := range v.ValueArray().ValuesString() {
			if t == "\u010a" {
				found = true
				break
			}
		}
		if !found {
			return fmt.Errorf("%w: the BPE vocabulary has no newline token (Ċ)", ErrDamaged)
		}
	}

	dims := tensorDims(f)
	te, err := dims("token_embd.weight")
	if err != nil {
		return err
	}
	if len(te) != 2 || te[0] != uint64(embd) || te[1] != uint64(nTokens) {
		return fmt.Errorf("%w: token_embd.weight is %v, want [%d %d]", ErrDamaged, te, embd, nTokens)
	}
	od, err := dims("cls.output.weight")
	if err != nil {
		return fmt.Errorf("%w: no rank head cls.output.weight (a Qwen3 reranker converted by llama.cpp carries the yes/no rows there): %v", ErrNotReranker, err)
	}
	if len(od) != 2 || od[0] != uint64(embd) || od[1] != 2 {
		return fmt.Errorf("%w: cls.output.weight is %v, want [%d 2] (the rows of yes and no)", ErrNotReranker, od, embd)
	}
	if v, ok := m.kvs.Get(arch + ".classifier.output_labels"); ok {
		if v.ValueType != gguf.GGUFMetadataValueTypeArray || v.ValueArray().Type != gguf.GGUFMetadataValueTypeString {
			return fmt.Errorf("%w: qwen3.classifier.output_labels is not a list of strings", ErrDamaged)
		}
		labels := v.ValueArray().ValuesString()
		if len(labels) != 2 || !strings.EqualFold(labels[0], "yes") || !strings.EqualFold(labels[1], "no") {
			return fmt.Errorf("%w: classifier labels %q, want [yes no]", ErrNotReranker, labels)
		}
	}
	if t, ok := m.str("tokenizer.chat_template.rerank"); ok {
		if strings.Count(t, "{query}") != 1 || strings.Count(t, "{document}") != 1 || strings.Index(t, "{query}") > strings.Index(t, "{document}") {
			return fmt.Errorf("%w: tokenizer.chat_template.rerank must hold {query} and then {document}, once each", ErrDamaged)
		}
	}
	q := uint64(heads * headDim)
	kv := uint64(kvHeads * headDim)
	E, F := uint64(embd), uint64(ff)
	for l := 0; l < layers; l++ {
		for name, want := range map[string][]uint64{
			"attn_q.weight": {E, q}, "attn_k.weight": {E, kv}, "attn_v.weight": {E, kv}, "attn_output.weight": {q, E},
			"ffn_gate.weight": {E, F}, "ffn_up.weight": {E, F}, "ffn_down.weight": {F, E},
			"attn_q_norm.weight": {uint64(headDim)}, "attn_k_norm.weight": {uint64(headDim)},
		} {
			full := fmt.Sprintf("blk.%d.%s", l, name)
			d, err := dims(full)
			if err != nil {
				return fmt.Errorf("%w: layer %d of %d is incomplete: %v", ErrDamaged, l, layers, err)
			}
			if fmt.Sprint(d) != fmt.Sprint(want) {
				return fmt.Errorf("%w: %s is %v, want %v", ErrDamaged, full, d, want)
			}
		}
	}
	return nil
}
