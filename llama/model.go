//go:build cgo

package llama

/*
#include <stdlib.h>
#include "binding.h"
*/
import "C"

import (
	"fmt"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"unsafe"
)

// VocabType names the tokenizer family of a model's vocabulary.
type VocabType int

// Vocabulary types, as llama.h numbers them.
const (
	VocabNone VocabType = 0
	VocabSPM  VocabType = 1 // LLaMA SentencePiece BPE
	VocabBPE  VocabType = 2 // GPT-2 byte-level BPE
	VocabWPM  VocabType = 3 // BERT WordPiece
	VocabUGM  VocabType = 4 // T5/XLM-R SentencePiece unigram
	VocabRWKV VocabType = 5
)

func (v VocabType) String() string {
	switch v {
	case VocabSPM:
		return "spm"
	case VocabBPE:
		return "bpe"
	case VocabWPM:
		return "wpm"
	case VocabUGM:
		return "ugm"
	case VocabRWKV:
		return "rwkv"
	}
	return "none"
}

// ModelParams chooses how a model is loaded.
type ModelParams struct {
	VocabOnly bool // load the tokenizer only
	GPULayers int  // layers to offload; 0 keeps everything on the CPU
	// Device names the ggml device ("CUDA0") the offloaded layers go to;
	// "" lets llama.cpp spread them over every GPU. See Devices.
	Device string
	// NoExtraBuffers keeps weights out of ggml's repacking buffer types
	// (AMX tiles and the like): the plain CPU kernels run them.
	NoExtraBuffers bool
	// AMX puts Q8_0 weights into aimind's own kernels (third_party/kernels)
	// where the CPU has them (CPU().AimindAMXBF16, AimindAMXInt8,
	// AimindQ8VNNI); the zero value leaves them to ggml. Ignored with
	// NoExtraBuffers.
	AMX AMXKernels
	// Int8Group is the K-group of the int8 kernels' scales, activations per
	// row and group, weights per row and group (0: a whole row).
	Int8Group int
	// ScaleFault, for tests only, multiplies every 16th weight row (its
	// int8 scales, its BF16 values) by itself when nonzero: a deliberately
	// wrong kernel.
	ScaleFault float32
}

// AMXKernels chooses aimind's AMX GEMM for Q8_0 weights.
type AMXKernels int

const (
	AMXGGML AMXKernels = iota // ggml's kernels (its AMX buffer where it applies)
	AMXBF16                   // weights rounded to BF16 at load, activations at run time
	AMXInt8                   // int8 weights and activations, per-group scales
	Q8VNNI                    // the file's Q8_0 blocks on AVX512-VNNI (CPUs without AMX)
)

// Device is one of ggml's backend devices in this build.
type Device struct {
	Name, Description string
	Type              string // "CPU", "GPU", "iGPU" or "accelerator"
	FreeBytes         uint64
	TotalBytes        uint64
}

// Devices lists the devices this build of ggml can run on: the CPU, and in
// a GPU build each GPU it found.
func Devices() []Device {
	Init(nil)
	var out []Device
	name := make([]byte, 128)
	desc := make([]byte, 256)
	for i := C.int32_t(0); i < C.aimind_device_count(); i++ {
		var free, total C.uint64_t
		t := C.aimind_device(i, (*C.char)(unsafe.Pointer(&name[0])), C.int32_t(len(name)),
			(*C.char)(unsafe.Pointer(&desc[0])), C.int32_t(len(desc)), &free, &total)
		if t < 0 {
			continue
		}
		types := []string{"CPU", "GPU", "iGPU", "accelerator"}
		typ := "unknown"
		if int(t) < len(types) {
			typ = types[t]
		}
		out = append(out, Device{Name: C.GoString((*C.char)(unsafe.Pointer(&name[0]))),
			Description: C.GoString((*C.char)(unsafe.Pointer(&desc[0]))), Type: typ,
			FreeBytes: uint64(free), TotalBytes: uint64(total)})
	}
	return out
}

// Model is a loaded GGUF model. Its methods are safe for concurrent use
// except Close, which must not race with other calls.
type Model struct {
	mu    sync.RWMutex
	c     *C.struct_llama_model
	vocab *C.struct_llama_vocab

	// Buffers is the MiB of weights llama.cpp placed in each backend
	// buffer type at load ("CPU", "CPU_Mapped", "AMX", ...), from its load
	// log.
	Buffers map[string]float64
}

// bufferLine is llama.cpp's load report of one weight buffer.
var bufferLine = regexp.MustCompile(`^load_tensors:\s+(\S+) model buffer size =\s+([0-9.]+) MiB$`)

var loadMu sync.Mutex // serialises loads so the captured load report is ours

// LoadModel loads the GGUF at path. The file must have been checked in Go
// first: llama.cpp trusts much of what a file says.
func LoadModel(path string, p ModelParams) (*Model, error) {
	Init(nil)
	if p.Device != "" {
		var names []string
		found := false
		for _, d := range Devices() {
			names = append(names, d.Name)
			found = found || d.Name == p.Device
		}
		if !found {
			return nil, fmt.Errorf("%w %q: no device named %q (this build has: %s)", ErrLoad, path, p.Device, strings.Join(names, ", "))
		}
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	cdev := C.CString(p.Device)
	defer C.free(unsafe.Pointer(cdev))
	var why callErr
	loadMu.Lock()
	var lines []string
	logMu.Lock()
	capture = &lines
	logMu.Unlock()
	C.ggml_aimind_i8_configure(C.int(p.AMX), C.int(p.Int8Group), C.float(p.ScaleFault))
	c := C.aimind_model_load(cpath, C.bool(p.VocabOnly), C.int32_t(p.GPULayers), C.bool(!p.NoExtraBuffers), cdev, why.ptr(), why.size())
	C.ggml_aimind_i8_configure(0, 0, 0)
	logMu.Lock()
	capture = nil
	logMu.Unlock()
	loadMu.Unlock()
	if c == nil {
		reason := why.String()
		if reason == "" {
			reason = "no reason given"
		}
		return nil, fmt.Errorf("%w %q: %s", ErrLoad, path, reason)
	}
	m := &Model{c: c, vocab: C.llama_model_get_vocab(c), Buffers: map[string]float64{}}
	for _, l := range lines {
		if b := bufferLine.FindStringSubmatch(l); b != nil {
			mib, _ := strconv.ParseFloat(b[2], 64)
			m.Buffers[b[1]] += mib
		}
	}
	runtime.SetFinalizer(m, (*Model).Close)
	return m, nil
}

// Causal reports whether the model is a decoder reranker read on its last
// token (qwen3) rather than an encoder read on its first.
func (m *Model) Causal() bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.causalLocked()
}

func (m *Model) causalLocked() bool {
	if m.c == nil {
		return false
	}
	a, _ := m.meta("general.architecture")
	return a == "qwen3"
}

// Close frees the model. It is idempotent. Contexts made from the model must
// be closed first.
func (m *Model) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.c == nil {
		return nil
	}
	C.llama_model_free(m.c)
	m.c, m.vocab = nil, nil
	runtime.SetFinalizer(m, nil)
	return nil
}

// Tokenize returns the token ids of text, without BOS/EOS/CLS/SEP. With
// parseSpecial, control tokens written in the text (such as "<s>") become
// their ids; user text is tokenized with it off.
func (m *Model) Tokenize(text string, parseSpecial bool) ([]int32, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.c == nil {
		return nil, ErrClosed
	}
	if len(text) == 0 {
		return []int32{}, nil
	}
	if len(text) > 1<<30 {
		return nil, fmt.Errorf("%w: text of %d bytes is too long", ErrTokenize, len(text))
	}
	ctext := C.CBytes([]byte(text))
	defer C.free(ctext)
	// A token covers at least one byte, plus room for a space prefix.
	n := len(text) + 2
	out := make([]int32, n)
	var why callErr
	got := C.aimind_tokenize(m.vocab, (*C.char)(ctext), C.int32_t(len(text)),
		(*C.int32_t)(unsafe.Pointer(&out[0])), C.int32_t(n), C.bool(parseSpecial), why.ptr(), why.size())
	if got == C.INT32_MIN {
		return nil, fmt.Errorf("%w: %s", ErrTokenize, why.String())
	}
	if got < 0 {
		n = int(-got)
		out = make([]int32, n)
		got = C.aimind_tokenize(m.vocab, (*C.char)(ctext), C.int32_t(len(text)),
			(*C.int32_t)(unsafe.Pointer(&out[0])), C.int32_t(n), C.bool(parseSpecial), why.ptr(), why.size())
		if got < 0 {
			return nil, fmt.Errorf("%w: token count changed between calls", ErrTokenize)
		}
	}
	return out[:got], nil
}

// Piece returns the text of one token (for tests and diagnostics).
func (m *Model) Piece(tok int32) string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.c == nil || tok < 0 || int(tok) >= int(C.llama_vocab_n_tokens(m.vocab)) {
		return ""
	}
	buf := make([]byte, 256)
	n := C.aimind_token_to_piece(m.vocab, C.int32_t(tok), (*C.char)(unsafe.Pointer(&buf[0])), C.int32_t(len(buf)))
	if n < 0 {
		return ""
	}
	return string(buf[:n])
}

// Info describes a loaded model.
type Info struct {
	VocabType    VocabType
	VocabSize    int
	BOS, EOS     int32 // -1 when the vocabulary has none
	CLS, SEP     int32
	AddSep       bool
	NClsOut      int
	NCtxTrain    int
	NEmbd        int
	NParams      uint64
	SizeBytes    uint64
	RerankPrompt string // tokenizer.chat_template.rerank, "" when absent
	HasEncoder   bool
}

// Info reads the model's facts from llama.cpp.
func (m *Model) Info() (Info, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.c == nil {
		return Info{}, ErrClosed
	}
	info := Info{
		VocabType: VocabType(C.llama_vocab_type(m.vocab)),
		VocabSize: int(C.llama_vocab_n_tokens(m.vocab)),
		BOS:       int32(C.llama_vocab_bos(m.vocab)),
		EOS:       int32(C.llama_vocab_eos(m.vocab)),
		CLS:       int32(C.llama_vocab_bos(m.vocab)),
		SEP:       int32(C.llama_vocab_sep(m.vocab)),
		AddSep:    bool(C.llama_vocab_get_add_sep(m.vocab)),
		NClsOut:   int(C.llama_model_n_cls_out(m.c)),
		NCtxTrain: int(C.llama_model_n_ctx_train(m.c)),
		NEmbd:     int(C.llama_model_n_embd(m.c)),
		NParams:   uint64(C.llama_model_n_params(m.c)),
		SizeBytes: uint64(C.llama_model_size(m.c)),
	}
	// llama.cpp reads no CLS id (it uses BOS, 101 by default for WordPiece);
	// BERT GGUFs carry tokenizer.ggml.cls_token_id, which wins when valid.
	if v, ok := m.metaInt("tokenizer.ggml.cls_token_id"); ok && v >= 0 && v < info.VocabSize {
		info.CLS = int32(v)
	}
	cname := C.CString("rerank")
	defer C.free(unsafe.Pointer(cname))
	if t := C.llama_model_chat_template(m.c, cname); t != nil {
		info.RerankPrompt = C.GoString(t)
	}
	return info, nil
}

// meta returns a metadata value as text.
func (m *Model) meta(key string) (string, bool) {
	ckey := C.CString(key)
	defer C.free(unsafe.Pointer(ckey))
	buf := make([]byte, 256)
	n := C.llama_model_meta_val_str(m.c, ckey, (*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)))
	if n < 0 {
		return "", false
	}
	if int(n) >= len(buf) {
		buf = make([]byte, int(n)+1)
		n = C.llama_model_meta_val_str(m.c, ckey, (*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)))
	}
	return string(buf[:n]), true
}

func (m *Model) metaInt(key string) (int, bool) {
	s, ok := m.meta(key)
	if !ok {
		return 0, false
	}
	v, err := strconv.Atoi(s)
	return v, err == nil
}

// Quantize writes a copy of the model at in to out with the given llama_ftype
// (7 = Q8_0, 1 = F16, 2 = Q4_0).
func Quantize(in, out string, ftype, threads int) error {
	Init(nil)
	cin, cout := C.CString(in), C.CString(out)
	defer C.free(unsafe.Pointer(cin))
	defer C.free(unsafe.Pointer(cout))
	var why callErr
	if rc := C.aimind_quantize(cin, cout, C.int32_t(ftype), C.int32_t(threads), why.ptr(), why.size()); rc != 0 {
		return fmt.Errorf("cannot quantize %q: llama.cpp returned %d: %s", in, rc, why.String())
	}
	return nil
}

// Llama file types for Quantize.
const (
	FtypeF32  = 0
	FtypeF16  = 1
	FtypeQ4_0 = 2
	FtypeQ8_0 = 7
	FtypeBF16 = 32
)
