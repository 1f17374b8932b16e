// Package synth writes synthetic cross-encoder reranker GGUFs: the keys and
// tensors of an XLM-RoBERTa (or BERT) reranker as llama.cpp reads them, with
// seeded random weights and a small vocabulary. Tests and benchmarks use them
// because no real weights can be downloaded here.
package synth

import (
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Vocab selects the tokenizer family.
type Vocab int

// Tokenizer families.
const (
	VocabUGM Vocab = iota // SentencePiece unigram ("t5"), as XLM-R rerankers
	VocabWPM              // BERT WordPiece ("bert")
)

// Spec describes a synthetic model.
type Spec struct {
	Layers, Hidden, Heads, FFN int
	Positions                  int // rows of position_embd
	ContextLength              int // bert.context_length; 0 means Positions
	Vocab                      Vocab
	ExtraWords                 int // extra vocabulary entries, to reach realistic sizes
	Seed                       uint64
	AddSepToken                *bool  // write tokenizer.ggml.add_sep_token when set
	RerankTemplate             string // tokenizer.chat_template.rerank when set
	TokenTypeRows              int    // rows of token_types.weight; 0 means 1
	ClsOut                     int    // outputs of the head; 0 means 1
	Pooling                    uint32 // bert.pooling_type; 0 means 4 (rank)
	Architecture               string // general.architecture; "" means bert
	F16                        bool   // store matrices as F16
	NoHead                     bool   // omit the classification head
	HalfTokenTypes             bool   // store token_types.weight as F16 (a file ggml would abort on)

	// Custom replaces the generated vocabulary (Vocab is then ignored), for
	// example with a real SentencePiece model converted by XLMRVocab.
	Custom *CustomVocab
	// Edit, when set, may change each tensor's values before it is written
	// (a flipped classifier, a NaN), for tests of what catches such files.
	Edit func(name string, data []float32)

	// Crafted files (hostile-input tests): token texts replaced by index
	// after the vocabulary is built (duplicates allowed), and metadata
	// values set or added by key (uint32, int32, float32, bool or string).
	TokenEdits map[int]string
	Meta       map[string]any
}

// Tiny is a fast test shape.
func Tiny() Spec {
	return Spec{Layers: 2, Hidden: 64, Heads: 4, FFN: 128, Positions: 512, Seed: 1}
}

// Base is the bge-reranker-base shape.
func Base() Spec {
	return Spec{Layers: 12, Hidden: 768, Heads: 12, FFN: 3072, Positions: 512, Seed: 7, ExtraWords: 4000}
}

// V2M3 is the bge-reranker-v2-m3 shape.
func V2M3() Spec {
	return Spec{Layers: 24, Hidden: 1024, Heads: 16, FFN: 4096, Positions: 8192, Seed: 11, ExtraWords: 4000}
}

// Words are the whole-word pieces of the synthetic vocabularies.
var Words = strings.Fields(`the a an of to in and or is are was were be been it its this that these
those for on with as by at from about into over under after before between what which who whom
whose when where why how not no yes all any some many much more most few less least other such
only own same so than too very can will just should now panda pandas bear bears bamboo china
chinese animal animals mammal eats eat lives live forest mountain mountains black white fur
giant red cat cats dog dogs bird birds fish water river sea ocean tree trees leaf leaves green
blue sky sun moon star stars night day time year years people person man woman child children
city country world house home school work job book books paper news report data model models
search query document documents answer question server rank reranker score scores fast slow
good bad best worst big small large little long short high low new old first last next early
late hello hi thanks please help find show tell know think make take give use call see look
want need like love run runs running walk walks go goes went come comes came get gets got
computer network memory disk cpu gpu token tokens text texts word words sentence language
python go rust java code program software system systems file files cache hub download`)

// Write writes a synthetic reranker GGUF with F32 (or F16) weights to path.
func Write(path string, s Spec) error {
	if s.Layers <= 0 || s.Hidden <= 0 || s.Heads <= 0 || s.FFN <= 0 || s.Positions <= 0 {
		return fmt.Errorf("synth: incomplete spec %+v", s)
	}
	if s.ContextLength == 0 {
		s.ContextLength = s.Positions
	}
	if s.TokenTypeRows == 0 {
		s.TokenTypeRows = 1
	}
	if s.ClsOut == 0 {
		s.ClsOut = 1
	}
	if s.Pooling == 0 {
		s.Pooling = 4
	}
	if s.Architecture == "" {
		s.Architecture = "bert"
	}
	tokens, scores, types, kvs := vocabulary(s)
	if c := s.Custom; c != nil {
		if len(c.Tokens) == 0 || len(c.Scores) != len(c.Tokens) || len(c.Types) != len(c.Tokens) {
			return fmt.Errorf("synth: custom vocabulary has %d tokens, %d scores, %d types", len(c.Tokens), len(c.Scores), len(c.Types))
		}
		tokens, scores, types = slices.Clone(c.Tokens), slices.Clone(c.Scores), slices.Clone(c.Types)
		kvs = kvs[:0]
		for _, k := range slices.Sorted(maps.Keys(c.Meta)) {
			kvs = append(kvs, kv{k, c.Meta[k]})
		}
	}
	a := s.Architecture
	meta := []kv{
		{"general.architecture", a},
		{"general.name", "aimind-synthetic-reranker"},
		{"general.file_type", uint32(0)},
		{a + ".context_length", uint32(s.ContextLength)},
		{a + ".embedding_length", uint32(s.Hidden)},
		{a + ".feed_forward_length", uint32(s.FFN)},
		{a + ".block_count", uint32(s.Layers)},
		{a + ".attention.head_count", uint32(s.Heads)},
		{a + ".attention.layer_norm_epsilon", float32(1e-5)},
		{a + ".attention.causal", false},
		{a + ".pooling_type", s.Pooling},
		{"tokenizer.ggml.token_type_count", uint32(s.TokenTypeRows)},
		{"tokenizer.ggml.tokens", tokens},
		{"tokenizer.ggml.scores", scores},
		{"tokenizer.ggml.token_type", types},
	}
	if s.F16 {
		meta[2].Value = uint32(1)
	}
	meta = append(meta, kvs...)
	for i, t := range s.TokenEdits {
		if i >= 0 && i < len(tokens) {
			tokens[i] = t
		}
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
	if s.AddSepToken != nil {
		meta = append(meta, kv{"tokenizer.ggml.add_sep_token", *s.AddSepToken})
	}
	if s.RerankTemplate != "" {
		meta = append(meta, kv{"tokenizer.chat_template.rerank", s.RerankTemplate})
	}
	if s.ClsOut > 1 {
		labels := make([]string, s.ClsOut)
		for i := range labels {
			labels[i] = fmt.Sprintf("label%d", i)
		}
		meta = append(meta, kv{a + ".classifier.output_labels", labels})
	}

	rng := rand.New(rand.NewPCG(s.Seed, s.Seed^0x9e3779b97f4a7c15))
	E, F, V, P := uint64(s.Hidden), uint64(s.FFN), uint64(len(tokens)), uint64(s.Positions)
	normal := func(n uint64, std float64) []float32 {
		d := make([]float32, n)
		for i := range d {
			d[i] = float32(rng.NormFloat64() * std)
		}
		return d
	}
	around1 := func(n uint64) []float32 {
		d := normal(n, 0.05)
		for i := range d {
			d[i]++
		}
		return d
	}
	lin := func(in, out uint64) []float32 { return normal(in*out, 1/math.Sqrt(float64(in))) }
	ts := []tensor{
		{"token_embd.weight", []uint64{E, V}, normal(E*V, 1)},
		{"token_types.weight", []uint64{E, uint64(s.TokenTypeRows)}, normal(E*uint64(s.TokenTypeRows), 0.5)},
		{"position_embd.weight", []uint64{E, P}, normal(E*P, 0.5)},
		{"token_embd_norm.weight", []uint64{E}, around1(E)},
		{"token_embd_norm.bias", []uint64{E}, normal(E, 0.05)},
	}
	for l := 0; l < s.Layers; l++ {
		b := fmt.Sprintf("blk.%d.", l)
		ts = append(ts,
			tensor{b + "attn_q.weight", []uint64{E, E}, lin(E, E)},
			tensor{b + "attn_q.bias", []uint64{E}, normal(E, 0.05)},
			tensor{b + "attn_k.weight", []uint64{E, E}, lin(E, E)},
			tensor{b + "attn_k.bias", []uint64{E}, normal(E, 0.05)},
			tensor{b + "attn_v.weight", []uint64{E, E}, lin(E, E)},
			tensor{b + "attn_v.bias", []uint64{E}, normal(E, 0.05)},
			tensor{b + "attn_output.weight", []uint64{E, E}, lin(E, E)},
			tensor{b + "attn_output.bias", []uint64{E}, normal(E, 0.05)},
			tensor{b + "attn_output_norm.weight", []uint64{E}, around1(E)},
			tensor{b + "attn_output_norm.bias", []uint64{E}, normal(E, 0.05)},
			tensor{b + "ffn_up.weight", []uint64{E, F}, lin(E, F)},
			tensor{b + "ffn_up.bias", []uint64{F}, normal(F, 0.05)},
			tensor{b + "ffn_down.weight", []uint64{F, E}, lin(F, E)},
			tensor{b + "ffn_down.bias", []uint64{E}, normal(E, 0.05)},
			tensor{b + "layer_output_norm.weight", []uint64{E}, around1(E)},
			tensor{b + "layer_output_norm.bias", []uint64{E}, normal(E, 0.05)},
		)
	}
	if !s.NoHead {
		C := uint64(s.ClsOut)
		ts = append(ts,
			tensor{"cls.weight", []uint64{E, E}, lin(E, E)},
			tensor{"cls.bias", []uint64{E}, normal(E, 0.05)},
			tensor{"cls.output.weight", []uint64{E, C}, normal(E*C, 2/math.Sqrt(float64(E)))},
			tensor{"cls.output.bias", []uint64{C}, normal(C, 0.5)},
		)
	}

	return writeFile(path, meta, ts, writeOptions{f16: s.F16, halfTokenTypes: s.HalfTokenTypes}, s.Edit)
}

// writeFile lets edit change each tensor, then writes the GGUF to a
// temporary file renamed to path once complete.
func writeFile(path string, meta []kv, ts []tensor, opts writeOptions, edit func(name string, data []float32)) error {
	if edit != nil {
		for _, t := range ts {
			edit(t.Name, t.Data)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if err := writeGGUF(f, meta, ts, opts); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func vocabulary(s Spec) (tokens []string, scores []float32, types []int32, kvs []kv) {
	seen := map[string]bool{}
	add := func(t string, score float32, typ int32) {
		if seen[t] {
			return // llama.cpp aborts on duplicate tokens
		}
		seen[t] = true
		tokens = append(tokens, t)
		scores = append(scores, score)
		types = append(types, typ)
	}
	const normal, unknown, control = 1, 2, 3
	words := append([]string{}, Words...)
	for i := 0; i < s.ExtraWords; i++ {
		words = append(words, fmt.Sprintf("w%d", i))
	}
	letters := "abcdefghijklmnopqrstuvwxyz0123456789"
	punct := []string{".", ",", "?", "!", ":", ";", "-", "(", ")", "'"}
	switch s.Vocab {
	case VocabWPM:
		for _, t := range []string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"} {
			typ := int32(control)
			if t == "[UNK]" {
				typ = unknown
			}
			add(t, 0, typ)
		}
		for _, w := range words {
			add("\u2581"+w, 0, normal)
		}
		for _, c := range letters {
			add("\u2581"+string(c), 0, normal)
			add(string(c), 0, normal)
		}
		for _, p := range punct {
			add("\u2581"+p, 0, normal)
		}
		kvs = []kv{
			{"tokenizer.ggml.model", "bert"},
			{"tokenizer.ggml.pre", "bert-bge"},
			{"tokenizer.ggml.unknown_token_id", uint32(1)},
			{"tokenizer.ggml.cls_token_id", uint32(2)},
			{"tokenizer.ggml.seperator_token_id", uint32(3)},
			{"tokenizer.ggml.padding_token_id", uint32(0)},
			{"tokenizer.ggml.mask_token_id", uint32(4)},
		}
	default:
		add("<s>", 0, control)
		add("<pad>", 0, control)
		add("</s>", 0, control)
		add("<unk>", 0, unknown)
		add("\u2581", -6, normal)
		for _, w := range words {
			add("\u2581"+w, -3-float32(len(w))/10, normal)
		}
		for _, c := range letters {
			add(string(c), -9, normal)
			add("\u2581"+string(c), -8, normal)
		}
		for _, p := range punct {
			add(p, -5, normal)
		}
		add("<mask>", 0, control)
		kvs = []kv{
			{"tokenizer.ggml.model", "t5"},
			{"tokenizer.ggml.bos_token_id", uint32(0)},
			{"tokenizer.ggml.padding_token_id", uint32(1)},
			{"tokenizer.ggml.eos_token_id", uint32(2)},
			{"tokenizer.ggml.unknown_token_id", uint32(3)},
			{"tokenizer.ggml.seperator_token_id", uint32(2)},
			{"tokenizer.ggml.cls_token_id", uint32(0)},
			{"tokenizer.ggml.mask_token_id", uint32(len(tokens) - 1)},
			{"tokenizer.ggml.add_bos_token", true},
			{"tokenizer.ggml.add_eos_token", true},
			{"tokenizer.ggml.add_space_prefix", true},
		}
	}
	return tokens, scores, types, kvs
}

// Text returns n whitespace-separated vocabulary words chosen by seed, for
// benchmark and test documents.
func Text(seed uint64, n int) string {
	rng := rand.New(rand.NewPCG(seed, 1))
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(Words[rng.IntN(len(Words))])
	}
	return b.String()
}
