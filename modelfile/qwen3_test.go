package modelfile_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aimind/aimind/internal/synth"
	"github.com/aimind/aimind/modelfile"
)

func writeQwen3(t *testing.T, s synth.Qwen3Spec) (string, []byte) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "q.gguf")
	if err := synth.WriteQwen3(p, s); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return p, b
}

func TestCheckAcceptsQwen3Reranker(t *testing.T) {
	p, _ := writeQwen3(t, synth.Qwen3Tiny())
	f, err := modelfile.Check(p)
	if err != nil {
		t.Fatal(err)
	}
	if f.Architecture != "qwen3" || !f.Decoder || f.KVHeads != 2 || f.HeadDim != 32 || f.Heads != 4 || f.Tokenizer != "gpt2" || !f.HasTemplate {
		t.Fatalf("facts %+v", f)
	}
	if len(f.Warnings) != 0 {
		t.Fatalf("warnings %v", f.Warnings)
	}
	noTemplate := synth.Qwen3Tiny()
	noTemplate.Template = "-"
	p, _ = writeQwen3(t, noTemplate)
	if f, err = modelfile.Check(p); err != nil || len(f.Warnings) != 1 || !strings.Contains(f.Warnings[0], "template") {
		t.Fatalf("without a template: %v, %+v", err, f)
	}
}

func TestCheckRefusesQwen3(t *testing.T) {
	_, good := writeQwen3(t, synth.Qwen3Tiny())
	threeLabels := synth.Qwen3Tiny()
	threeLabels.Meta = map[string]any{"qwen3.classifier.output_labels": []string{"yes", "no", "maybe"}}
	_, labels3 := writeQwen3(t, threeLabels)
	swapped := synth.Qwen3Tiny()
	swapped.Meta = map[string]any{"qwen3.classifier.output_labels": []string{"no", "yes"}}
	_, labelsSwapped := writeQwen3(t, swapped)
	badTemplate := synth.Qwen3Tiny()
	badTemplate.Template = "{document} then {query}"
	_, templateOrder := writeQwen3(t, badTemplate)
	oddHead := synth.Qwen3Tiny()
	oddHead.Meta = map[string]any{"qwen3.rope.dimension_count": uint32(16)}
	_, ropeDim := writeQwen3(t, oddHead)
	gemma := synth.Qwen3Tiny()
	gemma.Meta = map[string]any{"general.architecture": "gemma"}
	_, gemmaArch := writeQwen3(t, gemma)
	cases := []struct {
		name string
		data []byte
		want error
		msg  string
	}{
		{"language model pooling", patch(t, good, u32kv("qwen3.pooling_type", 4), u32kv("qwen3.pooling_type", 0)), modelfile.ErrNotReranker, "not Qwen3-Reranker"},
		{"heads not a multiple of kv heads", patch(t, good, u32kv("qwen3.attention.head_count_kv", 2), u32kv("qwen3.attention.head_count_kv", 3)), modelfile.ErrDamaged, "key/value heads"},
		{"zero kv heads", patch(t, good, u32kv("qwen3.attention.head_count_kv", 2), u32kv("qwen3.attention.head_count_kv", 0)), modelfile.ErrDamaged, "key/value heads"},
		{"odd head size", patch(t, good, u32kv("qwen3.attention.key_length", 32), u32kv("qwen3.attention.key_length", 31)), modelfile.ErrDamaged, "head size"},
		{"value size differs", patch(t, good, u32kv("qwen3.attention.value_length", 32), u32kv("qwen3.attention.value_length", 16)), modelfile.ErrDamaged, "value_length"},
		{"rope dimension differs", ropeDim, modelfile.ErrDamaged, "rope.dimension_count"},
		{"missing layer", patch(t, good, u32kv("qwen3.block_count", 2), u32kv("qwen3.block_count", 3)), modelfile.ErrDamaged, "layer 2"},
		{"three labels", labels3, modelfile.ErrNotReranker, "labels"},
		{"labels swapped", labelsSwapped, modelfile.ErrNotReranker, "labels"},
		{"template order", templateOrder, modelfile.ErrDamaged, "{query} and then {document}"},
		{"gemma named with the supported list", gemmaArch, modelfile.ErrNotReranker, "qwen3"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "bad.gguf")
			if err := os.WriteFile(p, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := modelfile.Check(p)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err %q does not mention %q", err, tc.msg)
			}
		})
	}
}
