package modelfile_test

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/aimind/aimind/internal/synth"
	"github.com/aimind/aimind/modelfile"
)

// TestReadHeaderShape: the shape read from a file's first bytes (what the
// deploy dialog fetches with a Range request) is the one Check reads from
// the whole file, for an encoder and a decoder; a header cut short says so,
// and no prefix of a file, nor random bytes, makes it panic.
func TestReadHeaderShape(t *testing.T) {
	bert, bertBytes := write(t, synth.Spec{Layers: 2, Hidden: 64, Heads: 4, FFN: 128, Positions: 64, Seed: 3})
	qp := filepath.Join(t.TempDir(), "q.gguf")
	if err := synth.WriteQwen3(qp, synth.Qwen3Tiny()); err != nil {
		t.Fatal(err)
	}
	qwen, qwenBytes := qp, mustRead(t, qp)
	for _, c := range []struct {
		path string
		b    []byte
	}{{bert, bertBytes}, {qwen, qwenBytes}} {
		f, err := modelfile.Check(c.path)
		if err != nil {
			t.Fatal(err)
		}
		h, err := modelfile.ReadHeaderShape(c.b[:min(len(c.b), 1<<20)])
		if err != nil {
			t.Fatal(err)
		}
		if want := f.HeaderShape; h != want || h.Embedding == 0 || h.VocabSize == 0 {
			t.Errorf("%s: header %+v, Check %+v", f.Architecture, h, want)
		}
		if _, err := modelfile.ReadHeaderShape(c.b[:40]); !errors.Is(err, modelfile.ErrShortHeader) {
			t.Errorf("%s: 40 bytes: %v, want ErrShortHeader", f.Architecture, err)
		}
		for n := 0; n < min(len(c.b), 4096); n += 7 {
			_, _ = modelfile.ReadHeaderShape(c.b[:n])
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		b := append([]byte{}, bertBytes[:256]...)
		for j := 0; j < 4; j++ {
			b[rng.IntN(len(b))] = byte(rng.Uint32())
		}
		_, _ = modelfile.ReadHeaderShape(b)
	}
	if _, err := modelfile.ReadHeaderShape([]byte("not a gguf file at all")); !errors.Is(err, modelfile.ErrDamaged) {
		t.Errorf("text: %v, want ErrDamaged", err)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
