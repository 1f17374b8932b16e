package modelfile

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
)

// HeaderShape is a model's architecture and shape, from the metadata keys
// at the start of its GGUF: enough for the memory plan. Check reads it with
// the rest of the facts (Facts embeds it); ReadHeaderShape reads it from a
// file's first bytes alone, before a download (the deploy dialog fetches
// them with a Range request), without checking the file.
type HeaderShape struct {
	Architecture                          string
	Embedding, FeedForward, Heads, Layers int
	VocabSize                             int
	// Decoder marks a causal reranker read on its last token (qwen3):
	// it needs a key/value cache of KVHeads*HeadDim per token and layer.
	Decoder          bool
	KVHeads, HeadDim int
}

// shapeFrom derives the shape from an architecture's keys (get returns 0
// for a missing key): the head size and key/value heads default to the
// multi-head ones. VocabSize is not among the keys and is left to the
// caller.
func shapeFrom(arch string, get func(key string) int) HeaderShape {
	s := HeaderShape{Architecture: arch, Embedding: get("embedding_length"), FeedForward: get("feed_forward_length"),
		Heads: get("attention.head_count"), Layers: get("block_count"), Decoder: arch == "qwen3"}
	s.KVHeads = s.Heads
	if s.Heads > 0 {
		s.HeadDim = s.Embedding / s.Heads
	}
	if v := get("attention.head_count_kv"); v > 0 {
		s.KVHeads = v
	}
	if v := get("attention.key_length"); v > 0 {
		s.HeadDim = v
	}
	return s
}

// ErrShortHeader: the bytes ended before the shape's keys did.
var ErrShortHeader = errors.New("the GGUF header continues past the bytes read")

// ReadHeaderShape reads the metadata keys at the start of a GGUF (b may be
// only its first bytes) up to the vocabulary's length, and returns the
// shape. Values are read, never trusted beyond their range: anything
// unusual is an error, never a panic.
func ReadHeaderShape(b []byte) (HeaderShape, error) {
	var s HeaderShape
	c := &countingReader{r: bufio.NewReader(bytes.NewReader(b))}
	magic, err := c.u32()
	if err != nil || magic != 0x46554747 { // "GGUF"
		return s, fmt.Errorf("%w: not a GGUF header", ErrDamaged)
	}
	if v, err := c.u32(); err != nil || v < 2 || v > 3 {
		return s, fmt.Errorf("%w: GGUF version %d", ErrDamaged, v)
	}
	if _, err := c.u64(); err != nil { // tensor count
		return s, ErrShortHeader
	}
	kvs, err := c.u64()
	if err != nil {
		return s, ErrShortHeader
	}
	if kvs > 1<<16 {
		return s, fmt.Errorf("%w: %d metadata keys", ErrDamaged, kvs)
	}
	nums := map[string]uint64{}
	for i := uint64(0); i < kvs; i++ {
		key, err := c.str()
		if err != nil {
			return s, ErrShortHeader
		}
		typ, err := c.u32()
		if err != nil {
			return s, ErrShortHeader
		}
		switch {
		case key == "general.architecture" && typ == 8:
			if s.Architecture, err = c.str(); err != nil {
				return s, ErrShortHeader
			}
			continue
		case key == "tokenizer.ggml.tokens" && typ == 9:
			// Its length is all the plan needs; the keys that matter come
			// before the tokenizer's in every converter's order.
			if _, err := c.u32(); err != nil {
				return s, ErrShortHeader
			}
			n, err := c.u64()
			if err != nil {
				return s, ErrShortHeader
			}
			s.VocabSize = int(min(n, 1<<24))
			return s.finish(nums)
		}
		v, err := c.skipValue(typ)
		if err != nil {
			if errors.Is(err, errUnknownType) {
				return s, fmt.Errorf("%w: %v", ErrDamaged, err)
			}
			return s, ErrShortHeader
		}
		if typ != 8 && typ != 9 {
			nums[key] = v
		}
	}
	return s.finish(nums)
}

func (s HeaderShape) finish(nums map[string]uint64) (HeaderShape, error) {
	if s.Architecture == "" {
		return s, fmt.Errorf("%w: no general.architecture before the tokenizer", ErrDamaged)
	}
	vocab := s.VocabSize
	s = shapeFrom(s.Architecture, func(k string) int { return int(min(nums[s.Architecture+"."+k], 1<<24)) })
	s.VocabSize = vocab
	if s.Embedding == 0 || s.Layers == 0 || s.Heads == 0 {
		return s, fmt.Errorf("%w: the header has no shape for %q", ErrDamaged, s.Architecture)
	}
	return s, nil
}
