package synth

import (
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
)

// Qwen3RerankTemplate is the rerank template llama.cpp's converter writes
// into a Qwen3-Reranker GGUF (tokenizer.chat_template.rerank): the model
// card's system prompt, its default instruction, and the empty thinking block
// after which the next token is "yes" or "no".
const Qwen3RerankTemplate = "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct provided. Note that the answer can only be \"yes\" or \"no\".<|im_end|>\n" +
	"<|im_start|>user\n<Instruct>: Given a web search query, retrieve relevant passages that answer the query\n<Query>: {query}\n<Document>: {document}<|im_end|>\n" +
	"<|im_start|>assistant\n<think>\n\n</think>\n\n"

// Qwen3Spec describes a synthetic Qwen3 reranker: a decoder (RMSNorm, RoPE,
// grouped-query attention with per-head q/k norms, SwiGLU) whose rank head
// cls.output holds the "yes" and "no" rows of the language-model head, as
// llama.cpp's converter writes Qwen3-Reranker.
type Qwen3Spec struct {
	Layers, Hidden, Heads, KVHeads, HeadDim, FFN int
	ContextLength                                int // qwen3.context_length; 0 means 8192
	ExtraWords                                   int
	Seed                                         uint64
	// TiedHead takes the head's rows from token_embd (tie_word_embeddings,
	// as the 0.6B model); otherwise they are drawn on their own (4B, 8B).
	TiedHead bool
	F16      bool
	// Template replaces Qwen3RerankTemplate; "-" writes none.
	Template string
	// Edit may change each tensor's values before it is written.
	Edit func(name string, data []float32)
	// Meta sets or adds metadata values by key.
	Meta map[string]any
}

// Qwen3Tiny is a fast test shape with grouped-query attention (4 query
// heads over 2 key/value heads) and a head size unlike hidden/heads.
func Qwen3Tiny() Qwen3Spec {
	return Qwen3Spec{Layers: 2, Hidden: 64, Heads: 4, KVHeads: 2, HeadDim: 32, FFN: 96, Seed: 3, TiedHead: true}
}

// Qwen3Small is Qwen3-Reranker-0.6B's shape but 4 layers, for tests that
// want realistic widths at a test's cost.
func Qwen3Small() Qwen3Spec {
	return Qwen3Spec{Layers: 4, Hidden: 1024, Heads: 16, KVHeads: 8, HeadDim: 128, FFN: 3072, Seed: 5, TiedHead: true}
}

// Qwen3_0_6B is Qwen3-Reranker-0.6B's shape (28 layers, 1024, 16 query and
// 8 key/value heads of 128, FFN 3072) with a small vocabulary.
func Qwen3_0_6B() Qwen3Spec {
	return Qwen3Spec{Layers: 28, Hidden: 1024, Heads: 16, KVHeads: 8, HeadDim: 128, FFN: 3072, Seed: 13, TiedHead: true, ExtraWords: 4000}
}

// qwen3Specials are the control tokens of the Qwen chat format.
var qwen3Specials = []string{"<|endoftext|>", "<|im_start|>", "<|im_end|>"}

// byteSymbols is GPT-2's byte-level BPE alphabet: printable bytes stand for
// themselves, the others are moved to code points from 256 on.
func byteSymbols() [256]string {
	var out [256]string
	n := 0
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff) {
			out[b] = string(rune(b))
		} else {
			out[b] = string(rune(256 + n))
			n++
		}
	}
	return out
}

// bpeVocab builds a byte-level BPE vocabulary: the 256 byte symbols, every
// word of Words (and extras) with and without a leading space reached by a
// chain of merges, then the control tokens. Leading-space words merge first,
// so " word" becomes one token.
func bpeVocab(extra int) (tokens []string, types []int32, merges []string, ids map[string]int32) {
	ids = map[string]int32{}
	add := func(t string, typ int32) {
		if _, ok := ids[t]; ok {
			return
		}
		ids[t] = int32(len(tokens))
		tokens = append(tokens, t)
		types = append(types, typ)
	}
	sym := byteSymbols()
	for b := 0; b < 256; b++ {
		add(sym[b], 1)
	}
	seenMerge := map[string]bool{}
	chain := func(word string) {
		cur := ""
		for i := 0; i < len(word); i++ {
			s := sym[word[i]]
			if cur == "" {
				cur = s
				continue
			}
			m := cur + " " + s
			if !seenMerge[m] {
				seenMerge[m] = true
				merges = append(merges, m)
			}
			cur += s
			add(cur, 1)
		}
	}
	words := append([]string{}, Words...)
	for i := 0; i < extra; i++ {
		words = append(words, fmt.Sprintf("w%d", i))
	}
	for _, w := range words {
		chain(" " + w)
	}
	for _, w := range words {
		chain(w)
	}
	for _, t := range qwen3Specials {
		add(t, 3)
	}
	return tokens, types, merges, ids
}

// WriteQwen3 writes a synthetic Qwen3 reranker GGUF with F32 (or F16)
// weights to path.
func WriteQwen3(path string, s Qwen3Spec) error {
	if s.Layers <= 0 || s.Hidden <= 0 || s.Heads <= 0 || s.KVHeads <= 0 || s.HeadDim <= 0 || s.FFN <= 0 || s.Heads%s.KVHeads != 0 || s.HeadDim%2 != 0 {
		return fmt.Errorf("synth: incomplete or inconsistent Qwen3 spec %+v", s)
	}
	if s.ContextLength == 0 {
		s.ContextLength = 8192
	}
	tokens, types, merges, ids := bpeVocab(s.ExtraWords)
	const a = "qwen3"
	meta := []kv{
		{"general.architecture", a},
		{"general.name", "aimind-synthetic-qwen3-reranker"},
		{"general.file_type", uint32(0)},
		{a + ".context_length", uint32(s.ContextLength)},
		{a + ".embedding_length", uint32(s.Hidden)},
		{a + ".feed_forward_length", uint32(s.FFN)},
		{a + ".block_count", uint32(s.Layers)},
		{a + ".attention.head_count", uint32(s.Heads)},
		{a + ".attention.head_count_kv", uint32(s.KVHeads)},
		{a + ".attention.key_length", uint32(s.HeadDim)},
		{a + ".attention.value_length", uint32(s.HeadDim)},
		{a + ".rope.dimension_count", uint32(s.HeadDim)},
		{a + ".rope.freq_base", float32(1e6)},
		{a + ".attention.layer_norm_rms_epsilon", float32(1e-6)},
		{a + ".pooling_type", uint32(4)},
		{a + ".classifier.output_labels", []string{"yes", "no"}},
		{"tokenizer.ggml.model", "gpt2"},
		{"tokenizer.ggml.pre", "qwen2"},
		{"tokenizer.ggml.tokens", tokens},
		{"tokenizer.ggml.token_type", types},
		{"tokenizer.ggml.merges", merges},
		{"tokenizer.ggml.eos_token_id", uint32(ids["<|im_end|>"])},
		{"tokenizer.ggml.padding_token_id", uint32(ids["<|endoftext|>"])},
		{"tokenizer.ggml.bos_token_id", uint32(ids["<|endoftext|>"])},
		{"tokenizer.ggml.add_bos_token", false},
	}
	if s.F16 {
		meta[2].Value = uint32(1)
	}
	switch s.Template {
	case "":
		meta = append(meta, kv{"tokenizer.chat_template.rerank", Qwen3RerankTemplate})
	case "-":
	default:
		meta = append(meta, kv{"tokenizer.chat_template.rerank", s.Template})
	}
	for _, k := range slices.Sorted(maps.Keys(s.Meta)) {
		v := s.Meta[k]
		found := false
		for i := range meta {
			if meta[i].Key == k {
				meta[i].Value, found = v, true
			}
		}
		if !found {
			meta = append(meta, kv{k, v})
		}
	}

	rng := rand.New(rand.NewPCG(s.Seed, s.Seed^0x51ed2701a3c4e5f7))
	E, F, V := uint64(s.Hidden), uint64(s.FFN), uint64(len(tokens))
	Q, KV, D := uint64(s.Heads*s.HeadDim), uint64(s.KVHeads*s.HeadDim), uint64(s.HeadDim)
	normal := func(n uint64, std float64) []float32 {
		d := make([]float32, n)
		for i := range d {
			d[i] = float32(rng.NormFloat64() * std)
		}
		return d
	}
	around1 := func(n uint64) []float32 {
		d := normal(n, 0.1)
		for i := range d {
			d[i]++
		}
		return d
	}
	lin := func(in, out uint64) []float32 { return normal(in*out, 1/math.Sqrt(float64(in))) }
	// Embeddings (and so a tied head) at 2/sqrt(E), as an untied head: the
	// yes and no logits then land in a few units, as a real reranker's do.
	emb := normal(E*V, 2/math.Sqrt(float64(E)))
	ts := []tensor{{"token_embd.weight", []uint64{E, V}, emb}}
	for l := 0; l < s.Layers; l++ {
		b := fmt.Sprintf("blk.%d.", l)
		ts = append(ts,
			tensor{b + "attn_norm.weight", []uint64{E}, around1(E)},
			tensor{b + "attn_q.weight", []uint64{E, Q}, lin(E, Q)},
			tensor{b + "attn_k.weight", []uint64{E, KV}, lin(E, KV)},
			tensor{b + "attn_v.weight", []uint64{E, KV}, lin(E, KV)},
			tensor{b + "attn_output.weight", []uint64{Q, E}, lin(Q, E)},
			tensor{b + "attn_q_norm.weight", []uint64{D}, around1(D)},
			tensor{b + "attn_k_norm.weight", []uint64{D}, around1(D)},
			tensor{b + "ffn_norm.weight", []uint64{E}, around1(E)},
			tensor{b + "ffn_gate.weight", []uint64{E, F}, lin(E, F)},
			tensor{b + "ffn_up.weight", []uint64{E, F}, lin(E, F)},
			tensor{b + "ffn_down.weight", []uint64{F, E}, lin(F, E)},
		)
	}
	head := make([]float32, 2*E)
	if s.TiedHead {
		yes, no := uint64(ids[" yes"]), uint64(ids[" no"])
		if _, ok := ids["yes"]; ok {
			yes, no = uint64(ids["yes"]), uint64(ids["no"])
		}
		copy(head[:E], emb[yes*E:(yes+1)*E])
		copy(head[E:], emb[no*E:(no+1)*E])
	} else {
		head = normal(2*E, 2/math.Sqrt(float64(E)))
	}
	ts = append(ts,
		tensor{"output_norm.weight", []uint64{E}, around1(E)},
		tensor{"cls.output.weight", []uint64{E, 2}, head},
	)
	return writeFile(path, meta, ts, writeOptions{f16: s.F16}, s.Edit)
}
