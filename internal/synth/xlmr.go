package synth

// CustomVocab is a vocabulary given whole: token texts, scores, GGUF token
// types (1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte)
// and the tokenizer.* metadata that goes with them.
type CustomVocab struct {
	Tokens []string
	Scores []float32
	Types  []int32
	Meta   map[string]any
}

// SentencePiece piece types, as in sentencepiece_model.proto (the same
// numbers GGUF uses for token types).
const (
	spmNormal  = 1
	spmUnknown = 2
	spmControl = 3
)

// XLMRVocab lays out a SentencePiece Unigram model the way llama.cpp's
// converter writes an XLM-RoBERTa tokenizer into GGUF: fairseq's four
// specials first (<s> 0, <pad> 1, </s> 2, <unk> 3), then SentencePiece's
// pieces from id 3 on, each one id higher than in SentencePiece (the fairseq
// offset), then <mask>. The pieces must start <unk>, <s>, </s> as XLM-R's
// sentencepiece.bpe.model does. Model "t5" selects llama.cpp's UGM tokenizer;
// the precompiled charsmap and the normaliser flags come from the model's
// normalizer_spec.
func XLMRVocab(pieces []string, scores []float32, types []int32, charsmap []byte, addDummyPrefix, removeExtraWhitespaces bool) *CustomVocab {
	v := &CustomVocab{
		Tokens: []string{"<s>", "<pad>", "</s>", "<unk>"},
		Scores: []float32{0, 0, 0, 0},
		Types:  []int32{spmControl, spmControl, spmControl, spmUnknown},
	}
	for i := 3; i < len(pieces); i++ {
		v.Tokens = append(v.Tokens, pieces[i])
		v.Scores = append(v.Scores, scores[i])
		v.Types = append(v.Types, types[i])
	}
	mask := len(v.Tokens)
	v.Tokens = append(v.Tokens, "<mask>")
	v.Scores = append(v.Scores, 0)
	v.Types = append(v.Types, spmControl)
	v.Meta = map[string]any{
		"tokenizer.ggml.model":                    "t5",
		"tokenizer.ggml.pre":                      "default",
		"tokenizer.ggml.bos_token_id":             uint32(0),
		"tokenizer.ggml.padding_token_id":         uint32(1),
		"tokenizer.ggml.eos_token_id":             uint32(2),
		"tokenizer.ggml.unknown_token_id":         uint32(3),
		"tokenizer.ggml.seperator_token_id":       uint32(2),
		"tokenizer.ggml.cls_token_id":             uint32(0),
		"tokenizer.ggml.mask_token_id":            uint32(mask),
		"tokenizer.ggml.add_bos_token":            true,
		"tokenizer.ggml.add_eos_token":            true,
		"tokenizer.ggml.add_space_prefix":         addDummyPrefix,
		"tokenizer.ggml.remove_extra_whitespaces": removeExtraWhitespaces,
	}
	if len(charsmap) > 0 {
		v.Meta["tokenizer.ggml.precompiled_charsmap"] = charsmap
	}
	return v
}

// FairseqID maps a SentencePiece id of such a model to its GGUF (fairseq)
// id: <unk> 0 → 3, <s> 1 → 0, </s> 2 → 2, every other piece one higher.
func FairseqID(spmID int) int32 {
	switch spmID {
	case 0:
		return 3
	case 1:
		return 0
	case 2:
		return 2
	}
	return int32(spmID + 1)
}
