package modelfile_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aimind/aimind/internal/synth"
	"github.com/aimind/aimind/modelfile"
)

func write(t testing.TB, s synth.Spec) (string, []byte) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "m.gguf")
	if err := synth.Write(p, s); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return p, b
}

func small() synth.Spec {
	return synth.Spec{Layers: 1, Hidden: 32, Heads: 2, FFN: 64, Positions: 64, Seed: 1}
}

func TestCheckAcceptsReranker(t *testing.T) {
	p, _ := write(t, small())
	f, err := modelfile.Check(p)
	if err != nil {
		t.Fatal(err)
	}
	if f.Architecture != "bert" || f.Embedding != 32 || f.Layers != 1 || f.ContextLength != 64 || f.Tokenizer != "t5" || f.FileType != "F32" {
		t.Fatalf("facts %+v", f)
	}
	if len(f.Warnings) != 0 {
		t.Fatalf("warnings %v", f.Warnings)
	}
}

func TestCheckWarnsOnTokenTypes(t *testing.T) {
	s := small()
	s.TokenTypeRows = 2
	p, _ := write(t, s)
	f, err := modelfile.Check(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Warnings) != 1 || !strings.Contains(f.Warnings[0], "token type") {
		t.Fatalf("warnings %v", f.Warnings)
	}
}

// patchKV rewrites the first occurrence of old in the file with new of the
// same length (crafting files from a valid one).
func patch(t *testing.T, b []byte, old, new []byte) []byte {
	t.Helper()
	i := bytes.Index(b, old)
	if i < 0 || len(old) != len(new) {
		t.Fatalf("cannot patch %q", old)
	}
	c := append([]byte{}, b...)
	copy(c[i:], new)
	return c
}

func u32kv(key string, v uint32) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, uint64(len(key)))
	b.WriteString(key)
	binary.Write(&b, binary.LittleEndian, uint32(4))
	binary.Write(&b, binary.LittleEndian, v)
	return b.Bytes()
}

func TestCheckRefuses(t *testing.T) {
	_, good := write(t, small())
	two := small()
	two.ClsOut = 2
	_, twoOut := write(t, two)
	nohead := small()
	nohead.NoHead = true
	_, noHead := write(t, nohead)
	fewPos := small()
	fewPos.ContextLength = 128 // more than the 64 position rows
	_, fewPositions := write(t, fewPos)
	gpt := small()
	gpt.Architecture = "llama"
	_, notBert := write(t, gpt)

	halfTypes := small()
	halfTypes.HalfTokenTypes = true
	_, halfTokenTypes := write(t, halfTypes)
	cases := []struct {
		name string
		data []byte
		want error
		msg  string
	}{
		{"empty file", nil, modelfile.ErrDamaged, ""},
		{"not gguf", []byte("hello, this is not a model at all"), modelfile.ErrDamaged, ""},
		{"truncated header", good[:100], modelfile.ErrDamaged, ""},
		{"truncated data", good[:len(good)-1000], modelfile.ErrDamaged, ""},
		{"embedding pooling", patch(t, good, u32kv("bert.pooling_type", 4), u32kv("bert.pooling_type", 1)), modelfile.ErrNotReranker, "pooling"},
		{"two outputs", twoOut, modelfile.ErrNotReranker, "2 outputs"},
		{"no head", noHead, modelfile.ErrNotReranker, "classification head"},
		{"fewer positions than context", fewPositions, modelfile.ErrDamaged, "position_embd"},
		{"F16 token types", halfTokenTypes, modelfile.ErrDamaged, "must be F32"},
		{"other architecture", notBert, modelfile.ErrNotReranker, "architecture"},
		{"heads do not divide width", patch(t, good, u32kv("bert.attention.head_count", 2), u32kv("bert.attention.head_count", 3)), modelfile.ErrDamaged, "multiple"},
		{"huge block count", patch(t, good, u32kv("bert.block_count", 1), u32kv("bert.block_count", 1<<30)), modelfile.ErrDamaged, "block_count"},
		{"missing layer", patch(t, good, u32kv("bert.block_count", 1), u32kv("bert.block_count", 2)), modelfile.ErrDamaged, "layer 1"},
		{"special id outside vocabulary", patch(t, good, u32kv("tokenizer.ggml.eos_token_id", 2), u32kv("tokenizer.ggml.eos_token_id", 1<<20)), modelfile.ErrDamaged, "outside the vocabulary"},
		{"wrong tokenizer", patch(t, good, []byte("\x02\x00\x00\x00\x00\x00\x00\x00t5"), []byte("\x02\x00\x00\x00\x00\x00\x00\x00x5")), modelfile.ErrNotReranker, "tokenizer"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "bad.gguf")
			if err := os.WriteFile(p, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := modelfile.Check(p)
			if tc.want == nil {
				return // only must not panic
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err %q does not mention %q", err, tc.msg)
			}
		})
	}
}

func TestCheckRefusesDuplicateTokens(t *testing.T) {
	_, good := write(t, small())
	// Token strings are a u64 length and the bytes: turn "▁dog" into a second "▁cat".
	bad := patch(t, good, []byte("\x06\x00\x00\x00\x00\x00\x00\x00\u2581dog"), []byte("\x06\x00\x00\x00\x00\x00\x00\x00\u2581cat"))
	p := filepath.Join(t.TempDir(), "dup.gguf")
	os.WriteFile(p, bad, 0o644)
	_, err := modelfile.Check(p)
	if !errors.Is(err, modelfile.ErrDamaged) || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("err = %v", err)
	}
}

func TestCheckRefusesDirectory(t *testing.T) {
	if _, err := modelfile.Check(t.TempDir()); err == nil {
		t.Fatal("a directory was accepted")
	}
	if _, err := modelfile.Check(filepath.Join(t.TempDir(), "missing.gguf")); err == nil {
		t.Fatal("a missing file was accepted")
	}
}

// FuzzCheck: no byte sequence makes the pre-parser panic or hang.
func FuzzCheck(f *testing.F) {
	// A narrow model keeps the seed small; Go's fuzzer slows down on large inputs.
	_, good := write(f, synth.Spec{Layers: 1, Hidden: 8, Heads: 2, FFN: 8, Positions: 8, Seed: 1})
	f.Add(good)
	f.Add(good[:200])
	f.Add([]byte("GGUF\x03\x00\x00\x00"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "fuzz.gguf")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		modelfile.Check(p) // must return, never panic
	})
}
