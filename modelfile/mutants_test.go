package modelfile_test

import (
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aimind/aimind/internal/synth"
	"github.com/aimind/aimind/modelfile"
)

// Mutants that killed llama.cpp (assert or SIGSEGV at load, or an abort at
// the first request) though the pre-check passed them: each is now refused
// with a message naming what is wrong.
func TestCheckRefusesCrashingMutants(t *testing.T) {
	base := func() synth.Spec {
		s := small()
		s.ExtraWords = 400
		return s
	}
	nan := float32(math.NaN())
	cases := []struct {
		name  string
		edit  func(*synth.Spec)
		msg   string
		valid bool // llama.cpp loads it: Check must accept it
	}{
		{"empty token beside its renaming", func(s *synth.Spec) { s.TokenEdits = map[int]string{300: "", 301: "[EMPTY_300]"} }, "[EMPTY_300]", false},
		{"tokens equal up to a NUL", func(s *synth.Spec) { s.TokenEdits = map[int]string{300: "zz\x00a", 301: "zz\x00b"} }, "appears twice", false},
		{"a token and itself with a NUL", func(s *synth.Spec) { s.TokenEdits = map[int]string{300: "qq", 301: "qq\x00"} }, "appears twice", false},
		{"WordPiece tokens equal up to a NUL", func(s *synth.Spec) {
			s.Vocab = synth.VocabWPM
			s.TokenEdits = map[int]string{300: "zz\x00a", 301: "zz\x00b"}
		}, "appears twice", false},
		{"a 60,000-byte token", func(s *synth.Spec) { s.TokenEdits = map[int]string{300: strings.Repeat("z", 60000)} }, "bytes long", false},
		{"key length 0", func(s *synth.Spec) { s.Meta = map[string]any{"bert.attention.key_length": uint32(0)} }, "key_length", false},
		{"value length not the head size", func(s *synth.Spec) { s.Meta = map[string]any{"bert.attention.value_length": uint32(7)} }, "value_length", false},
		{"no key/value heads", func(s *synth.Spec) { s.Meta = map[string]any{"bert.attention.head_count_kv": uint32(0)} }, "head_count_kv", false},
		{"layer-norm epsilon NaN", func(s *synth.Spec) { s.Meta = map[string]any{"bert.attention.layer_norm_epsilon": nan} }, "layer_norm_epsilon", false},
		{"layer-norm epsilon negative", func(s *synth.Spec) { s.Meta = map[string]any{"bert.attention.layer_norm_epsilon": float32(-1e-5)} }, "layer_norm_epsilon", false},
		{"layer-norm epsilon zero", func(s *synth.Spec) { s.Meta = map[string]any{"bert.attention.layer_norm_epsilon": float32(0)} }, "layer_norm_epsilon", false},
		{"layer-norm epsilon infinite", func(s *synth.Spec) {
			s.Meta = map[string]any{"bert.attention.layer_norm_epsilon": float32(math.Inf(1))}
		}, "layer_norm_epsilon", false},
		// Still valid: llama.cpp renames a lone empty token and loads.
		{"a lone empty token", func(s *synth.Spec) { s.TokenEdits = map[int]string{300: ""} }, "", true},
		{"key length equal to the head size", func(s *synth.Spec) { s.Meta = map[string]any{"bert.attention.key_length": uint32(16)} }, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := base()
			tc.edit(&s)
			p := filepath.Join(t.TempDir(), "m.gguf")
			if err := synth.Write(p, s); err != nil {
				t.Fatal(err)
			}
			_, err := modelfile.Check(p)
			if tc.valid {
				if err != nil {
					t.Fatalf("a valid file was refused: %v", err)
				}
				return
			}
			if !errors.Is(err, modelfile.ErrDamaged) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want ErrDamaged mentioning %q", err, tc.msg)
			}
		})
	}
}
