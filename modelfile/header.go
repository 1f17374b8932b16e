package modelfile

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
)

// HeaderShape is what the first bytes of a GGUF say about a model's shape:
// enough for the memory plan before the file is downloaded (the deploy
// dialog reads it with a Range request). It is not a check: Check reads the
// whole file once it is here.
type HeaderShape struct {
	Architecture                          string
	Embedding, FeedForward, Heads, Layers int
	KVHeads, HeadDim, VocabSize           int
	Decoder                               bool
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
	get := func(k string) int { return int(min(nums[s.Architecture+"."+k], 1<<24)) }
	s.Embedding, s.FeedForward, s.Heads, s.Layers = get("embedding_length"), get("feed_forward_length"), get("attention.head_count"), get("block_count")
	s.KVHeads, s.HeadDim = s.Heads, 0
	if s.Heads > 0 {
		s.HeadDim = s.Embedding / s.Heads
	}
	if v := get("attention.head_count_kv"); v > 0 {
		s.KVHeads = v
	}
	if v := get("attention.key_length"); v > 0 {
		s.HeadDim = v
	}
	s.Decoder = s.Architecture == "qwen3"
	if s.Embedding == 0 || s.Layers == 0 || s.Heads == 0 {
		return s, fmt.Errorf("%w: the header has no shape for %q", ErrDamaged, s.Architecture)
	}
	return s, nil
}
