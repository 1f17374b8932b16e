// Package testutil builds the synthetic models tests share, once per test
// binary.
package testutil

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/aimind/aimind/internal/synth"
	"github.com/aimind/aimind/llama"
)

var (
	mu    sync.Mutex
	dir   string
	cache = map[string]string{}
)

func modelDir(tb testing.TB) string {
	if dir == "" {
		d, err := os.MkdirTemp("", "aimind-models-")
		if err != nil {
			tb.Fatal(err)
		}
		dir = d
	}
	return dir
}

// Cleanup removes the shared model directory; call it from TestMain.
func Cleanup() {
	mu.Lock()
	defer mu.Unlock()
	if dir != "" {
		os.RemoveAll(dir)
	}
}

// MustModel writes (once) an F32 synthetic model for spec and returns its path.
func MustModel(tb testing.TB, s synth.Spec) string {
	tb.Helper()
	mu.Lock()
	defer mu.Unlock()
	key := fmt.Sprintf("%+v|%v|%v", s, deref(s.AddSepToken), s.RerankTemplate)
	if p, ok := cache[key]; ok {
		return p
	}
	p := filepath.Join(modelDir(tb), fmt.Sprintf("m%d.gguf", len(cache)))
	if err := synth.Write(p, s); err != nil {
		tb.Fatalf("cannot write synthetic model: %v", err)
	}
	cache[key] = p
	return p
}

// MustQuantized writes (once) spec quantized by llama.cpp to ftype.
func MustQuantized(tb testing.TB, s synth.Spec, ftype int) string {
	tb.Helper()
	src := MustModel(tb, s)
	mu.Lock()
	defer mu.Unlock()
	key := fmt.Sprintf("%s|q%d", src, ftype)
	if p, ok := cache[key]; ok {
		return p
	}
	p := filepath.Join(modelDir(tb), fmt.Sprintf("m%d-q%d.gguf", len(cache), ftype))
	if err := llama.Quantize(src, p, ftype, 2); err != nil {
		tb.Fatalf("cannot quantize: %v", err)
	}
	cache[key] = p
	return p
}

func deref(b *bool) string {
	if b == nil {
		return "nil"
	}
	return fmt.Sprint(*b)
}

// RSS is this process's resident memory in bytes; tests that check memory
// stays flat skip where /proc is missing.
func RSS(tb testing.TB) int64 {
	tb.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		tb.Skip("no /proc/self/status")
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				return kb << 10
			}
		}
	}
	tb.Skip("no VmRSS in /proc/self/status")
	return 0
}
