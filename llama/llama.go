//go:build cgo

// Package llama is aimind's thin cgo binding to llama.cpp. It exports Go types
// only; every C object (model, context, batch) is owned by one Go value with an
// idempotent Close. Callers validate inputs in Go before they reach C: ggml
// aborts the whole process on what it does not expect.
package llama

/*
#cgo CFLAGS: -I${SRCDIR}/../third_party/out/include
#cgo CXXFLAGS: -std=c++17 -I${SRCDIR}/../third_party/out/include
#cgo LDFLAGS: -L${SRCDIR}/../third_party/out/lib -lllama -lggml -lggml-cpu -lggml-base -lstdc++ -lm -fopenmp -lpthread
#include <stdlib.h>
#include "binding.h"
#include "ggml-cpu.h"
*/
import "C"

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Sentinel errors.
var (
	ErrClosed   = errors.New("llama: object is closed")
	ErrLoad     = errors.New("llama.cpp could not load the model")
	ErrContext  = errors.New("llama.cpp could not create a context")
	ErrEncode   = errors.New("llama.cpp encode failed")
	ErrTokenize = errors.New("llama.cpp could not tokenize the text")
	// ErrInput is an Encode input refused by the Go checks before any C
	// call (it is an ErrEncode too): what ggml would abort on, or what
	// llama.cpp would only refuse after work.
	ErrInput = fmt.Errorf("%w: input refused before llama.cpp", ErrEncode)
)

var (
	initOnce sync.Once
	logger   atomic.Pointer[slog.Logger]
	logMu    sync.Mutex
	logLine  strings.Builder
	// capture, while a load holds loadMu, collects every line llama.cpp
	// logs, so what the load reported is attributed to its model.
	capture *[]string
)

// CPUFeatures are the instruction-set extensions ggml's CPU backend was built
// for and found on this CPU (GGML_NATIVE builds for the build machine).
type CPUFeatures struct {
	AVX2, AVX512, AVX512VNNI, AVX512BF16, AVXVNNI, AMXInt8 bool
	// AimindAMXBF16, AimindAMXInt8: aimind's own AMX GEMMs
	// (third_party/kernels) are in this build and the CPU and the OS kernel
	// allow AMX tiles.
	AimindAMXBF16, AimindAMXInt8 bool
	// AimindQ8VNNI: aimind's Q8_0 GEMM for AVX512-VNNI
	// (third_party/kernels/q8vnni.cpp) is in this build and the CPU has
	// AVX512-VNNI.
	AimindQ8VNNI bool
}

// CPU reports ggml's CPU features.
func CPU() CPUFeatures {
	Init(nil)
	return CPUFeatures{
		AVX2:       C.ggml_cpu_has_avx2() != 0,
		AVX512:     C.ggml_cpu_has_avx512() != 0,
		AVX512VNNI: C.ggml_cpu_has_avx512_vnni() != 0,
		AVX512BF16: C.ggml_cpu_has_avx512_bf16() != 0,
		AVXVNNI:    C.ggml_cpu_has_avx_vnni() != 0,
		AMXInt8:    C.ggml_cpu_has_amx_int8() != 0,

		AimindAMXBF16: C.ggml_aimind_i8_available(C.int(AMXBF16)) != 0,
		AimindAMXInt8: C.ggml_aimind_i8_available(C.int(AMXInt8)) != 0,
		AimindQ8VNNI:  C.ggml_aimind_i8_available(C.int(Q8VNNI)) != 0,
	}
}

// SetAimindAttention turns aimind's tiled attention kernel
// (third_party/kernels/attn.cpp) on, the default, or off, when ggml's own
// flash-attention loop runs instead. It is process-wide and applies to the
// calls that start after it.
func SetAimindAttention(on bool) {
	v := 0
	if on {
		v = 1
	}
	C.aimind_attn_enable(C.int(v))
}

// SetAimindAttentionFault, for tests only, makes aimind's attention kernel
// deliberately wrong (the softmax scale applied twice) while on is true; the
// error tests must see it.
func SetAimindAttentionFault(on bool) {
	v := 1
	if on {
		v = 2
	}
	C.aimind_attn_enable(C.int(v))
}

// AimindAttention says whether aimind's attention kernel is on and in this
// build (heads of 64 values).
func AimindAttention() bool { return C.aimind_attn_supported(64, 64) != 0 }

// Init initialises llama.cpp's backends once and routes its log through
// logger. Later calls only replace the logger.
func Init(l *slog.Logger) {
	if l != nil {
		logger.Store(l)
	}
	initOnce.Do(func() {
		C.aimind_allocator_init()
		C.aimind_log_install()
		C.llama_backend_init()
	})
}

// SystemInfo reports the CPU features ggml was built with and uses.
func SystemInfo() string {
	Init(nil)
	return strings.TrimSpace(C.GoString(C.llama_print_system_info()))
}

// ggml log levels (ggml.h).
const (
	levelDebug = 1
	levelInfo  = 2
	levelWarn  = 3
	levelError = 4
	levelCont  = 5
)

var pendingLevel int

//export aimindGoLog
func aimindGoLog(level C.int, text *C.char) {
	s := C.GoString(text)
	logMu.Lock()
	defer logMu.Unlock()
	if int(level) != levelCont {
		pendingLevel = int(level)
	}
	logLine.WriteString(s)
	if !strings.HasSuffix(s, "\n") {
		return
	}
	msg := strings.TrimSpace(logLine.String())
	logLine.Reset()
	if msg == "" {
		return
	}
	if capture != nil {
		*capture = append(*capture, msg)
	}
	l := logger.Load()
	if l == nil {
		l = slog.Default()
	}
	switch pendingLevel {
	case levelError:
		l.Error(msg, "source", "llama.cpp")
	case levelWarn:
		l.Warn(msg, "source", "llama.cpp")
	default:
		// llama.cpp's info level prints every metadata key at load: debug for us.
		l.Debug(msg, "source", "llama.cpp")
	}
}

// callErr is the buffer a C helper copies the error text llama.cpp logged
// during that one call into (binding.cpp's err_scope).
type callErr [2048]byte

func (b *callErr) ptr() *C.char    { return (*C.char)(unsafe.Pointer(&b[0])) }
func (b *callErr) size() C.int32_t { return C.int32_t(len(b)) }

// String joins the call's error lines with "; ".
func (b *callErr) String() string {
	n := bytes.IndexByte(b[:], 0)
	if n < 0 {
		n = len(b)
	}
	var lines []string
	for _, l := range strings.Split(string(b[:n]), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "; ")
}
