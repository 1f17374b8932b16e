//go:build cgo

package llama

/*
#include <stdlib.h>
#include "binding.h"
*/
import "C"

import (
	"fmt"
	"math"
	"runtime"
	"sync"
	"unsafe"
)

// MaxSequences is llama.cpp's LLAMA_MAX_SEQ: the most sequences one call holds.
const MaxSequences = 256

// ContextParams sizes an encoder context.
type ContextParams struct {
	Tokens    int  // tokens one Encode call may hold (n_ctx = n_batch = n_ubatch)
	Sequences int  // sequences one Encode call may hold, at most MaxSequences
	Threads   int  // CPU threads for ggml
	FlashAttn bool // flash attention (casts K and V to F16)
}

// Context is an encoder context with its batch. It is not safe for
// concurrent use: one goroutine owns it.
type Context struct {
	mu      sync.Mutex
	model   *Model
	c       *C.struct_llama_context
	batch   C.struct_llama_batch
	params  ContextParams
	nClsOut int
	nVocab  int
	// causal: a decoder reranker (qwen3), decoded on an emptied cache and
	// read on each sequence's last token, whose two outputs are the
	// softmax of the "yes" and "no" logits.
	causal bool
}

// NewContext creates a context for rank-pooled encoding on m.
func NewContext(m *Model, p ContextParams) (*Context, error) {
	if p.Tokens <= 0 || p.Sequences <= 0 || p.Sequences > MaxSequences || p.Threads <= 0 {
		return nil, fmt.Errorf("%w: invalid parameters %+v", ErrContext, p)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.c == nil {
		return nil, ErrClosed
	}
	var why callErr
	// A causal model's keys and values go through a cache, F16 by default in
	// llama.cpp: F32 keeps its scores as close to the reference as an
	// encoder's (the cache is emptied every call, so it is small).
	c := C.aimind_context_new(m.c, C.uint32_t(p.Tokens), C.uint32_t(p.Sequences), C.int32_t(p.Threads), C.bool(p.FlashAttn), C.bool(m.causalLocked()), why.ptr(), why.size())
	if c == nil {
		return nil, fmt.Errorf("%w: %s", ErrContext, why.String())
	}
	ctx := &Context{
		model:   m,
		c:       c,
		batch:   C.llama_batch_init(C.int32_t(p.Tokens), 0, 1),
		params:  p,
		nClsOut: int(C.llama_model_n_cls_out(m.c)),
		nVocab:  int(C.llama_vocab_n_tokens(m.vocab)),
	}
	if ctx.nClsOut < 1 {
		ctx.nClsOut = 1
	}
	ctx.causal = m.causalLocked()
	if ctx.causal && ctx.nClsOut != 2 {
		ctx.Close()
		return nil, fmt.Errorf("%w: a causal reranker needs the two outputs yes and no, this model has %d", ErrContext, ctx.nClsOut)
	}
	runtime.SetFinalizer(ctx, (*Context).Close)
	return ctx, nil
}

// Params returns the parameters the context was made with.
func (c *Context) Params() ContextParams { return c.params }

// Close frees the context and its batch. It is idempotent.
func (c *Context) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.c == nil {
		return nil
	}
	C.llama_batch_free(c.batch)
	C.llama_free(c.c)
	c.c = nil
	runtime.SetFinalizer(c, nil)
	return nil
}

// Encode runs one pass over sequences laid out back to back in tokens,
// seqLens[i] tokens each, and returns the raw relevance logit of each
// sequence: the first rank output of an encoder, the log-odds of "yes" of a
// causal reranker. Every limit is checked here so that no
// input can reach one of ggml's aborts.
func (c *Context) Encode(tokens []int32, seqLens []int) ([]float32, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.c == nil {
		return nil, ErrClosed
	}
	if len(seqLens) == 0 {
		return nil, fmt.Errorf("%w: no sequences", ErrInput)
	}
	if len(seqLens) > c.params.Sequences {
		return nil, fmt.Errorf("%w: %d sequences, the context holds %d", ErrInput, len(seqLens), c.params.Sequences)
	}
	total := 0
	for i, n := range seqLens {
		if n <= 0 {
			return nil, fmt.Errorf("%w: sequence %d is empty", ErrInput, i)
		}
		total += n
	}
	if total != len(tokens) {
		return nil, fmt.Errorf("%w: sequence lengths add to %d, got %d tokens", ErrInput, total, len(tokens))
	}
	if total > c.params.Tokens {
		return nil, fmt.Errorf("%w: %d tokens, the context holds %d", ErrInput, total, c.params.Tokens)
	}
	for i, t := range tokens {
		if t < 0 || int(t) >= c.nVocab {
			return nil, fmt.Errorf("%w: token %d at %d is outside the vocabulary", ErrInput, t, i)
		}
	}
	lens := make([]int32, len(seqLens))
	for i, n := range seqLens {
		lens[i] = int32(n)
	}
	// Go memory is passed for the length of the call only (cgo pointer rules).
	out := make([]float32, len(seqLens)*c.nClsOut)
	var why callErr
	rc := C.aimind_encode(c.c, &c.batch,
		(*C.int32_t)(unsafe.Pointer(&tokens[0])), (*C.int32_t)(unsafe.Pointer(&lens[0])), C.int32_t(len(lens)),
		(*C.float)(unsafe.Pointer(&out[0])), C.int32_t(c.nClsOut), C.bool(c.causal), why.ptr(), why.size())
	runtime.KeepAlive(tokens)
	runtime.KeepAlive(lens)
	if rc != 0 {
		return nil, fmt.Errorf("%w: code %d: %s", ErrEncode, int(rc), why.String())
	}
	if c.nClsOut == 1 {
		return out, nil
	}
	scores := make([]float32, len(seqLens))
	for i := range scores {
		if c.causal {
			// log(p(yes)/p(no)) = logit(yes) - logit(no): the log-odds the
			// model card's sigmoid turns back into p(yes).
			scores[i] = float32(math.Log(float64(out[i*2])) - math.Log(float64(out[i*2+1])))
			continue
		}
		scores[i] = out[i*c.nClsOut]
	}
	return scores, nil
}
