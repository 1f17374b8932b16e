// Command synthgguf writes a synthetic reranker GGUF (seeded random weights)
// for tests, benchmarks and the GPU check, optionally quantized by llama.cpp.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/aimind/aimind/internal/synth"
	"github.com/aimind/aimind/llama"
)

func main() {
	shape := flag.String("shape", "tiny", "tiny, base (bge-reranker-base), v2m3 (bge-reranker-v2-m3), qwen3-tiny or qwen3-0.6b (Qwen3-Reranker-0.6B)")
	out := flag.String("out", "", "output .gguf path")
	typ := flag.String("type", "f32", "f32, f16, bf16, q8_0 or q4_0")
	vocab := flag.String("vocab", "ugm", "ugm (XLM-R) or wpm (BERT)")
	seed := flag.Uint64("seed", 0, "weight seed (0: the shape's default)")
	flag.Parse()
	if err := run(*shape, *out, *typ, *vocab, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "synthgguf:", err)
		os.Exit(1)
	}
}

func run(shape, out, typ, vocab string, seed uint64) error {
	if out == "" {
		return fmt.Errorf("-out is required")
	}
	switch shape {
	case "qwen3-tiny", "qwen3-small", "qwen3-0.6b":
		q := map[string]func() synth.Qwen3Spec{"qwen3-tiny": synth.Qwen3Tiny, "qwen3-small": synth.Qwen3Small, "qwen3-0.6b": synth.Qwen3_0_6B}[shape]()
		if seed != 0 {
			q.Seed = seed
		}
		return write(out, typ, func(p string, half bool) error { q.F16 = half; return synth.WriteQwen3(p, q) })
	}
	var s synth.Spec
	switch shape {
	case "tiny":
		s = synth.Tiny()
	case "base":
		s = synth.Base()
	case "v2m3":
		s = synth.V2M3()
	default:
		return fmt.Errorf("unknown shape %q", shape)
	}
	if seed != 0 {
		s.Seed = seed
	}
	if vocab == "wpm" {
		s.Vocab = synth.VocabWPM
	}
	return write(out, typ, func(p string, half bool) error { s.F16 = half; return synth.Write(p, s) })
}

// write writes the model as typ: F32 or F16 directly, other types through
// an F32 file quantized by llama.cpp.
func write(out, typ string, w func(path string, half bool) error) error {
	ftype := map[string]int{"q8_0": llama.FtypeQ8_0, "q4_0": llama.FtypeQ4_0, "bf16": llama.FtypeBF16}
	switch typ {
	case "f32", "f16":
		return w(out, typ == "f16")
	case "q8_0", "q4_0", "bf16":
		tmp := filepath.Join(filepath.Dir(out), "."+filepath.Base(out)+".f32")
		defer os.Remove(tmp)
		if err := w(tmp, false); err != nil {
			return err
		}
		return llama.Quantize(tmp, out, ftype[typ], 2)
	}
	return fmt.Errorf("unknown type %q", typ)
}
