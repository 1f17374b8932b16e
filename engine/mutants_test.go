package engine_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aimind/aimind/engine"
	"github.com/aimind/aimind/internal/synth"
	"github.com/aimind/aimind/internal/testutil"
	"github.com/aimind/aimind/modelfile"
)

// childLoad runs in a child test process (AIMIND_CHILD_LOAD=path): it
// loads the file and scores one request; with truncate, it first cuts the
// file to half its size under the loaded model. Exit 0: scored; 3: refused
// with an error. Anything else (a signal, an abort) is the crash the parent
// looks for.
func childLoad(path string, truncate bool) int {
	m, err := engine.Open(path, engine.Options{Threads: 1, FlashAttn: true})
	if err != nil {
		fmt.Println("refused:", err)
		return 3
	}
	defer m.Close()
	if truncate {
		st, err := os.Stat(path)
		if err != nil || os.Truncate(path, st.Size()/2) != nil {
			fmt.Println("cannot truncate:", err)
			return 4
		}
	}
	res, err := m.Rerank(context.Background(), "what does the giant panda eat", []string{"bamboo", "fish"})
	if err != nil {
		fmt.Println("refused:", err)
		return 3
	}
	fmt.Println("scored:", res.Scores)
	return 0
}

// TestMutantsNeverCrash: a seeded set of crafted files (every encoder
// hyperparameter and special token id at 0, 1, odd, huge, negative, NaN;
// vocabulary entries emptied, cut by NULs, duplicated, oversized). Each is
// refused by the pre-check with a message, or loaded and scored by llama.cpp
// in a child process; none may end that process with a crash.
func TestMutantsNeverCrash(t *testing.T) {
	keys := []string{
		"bert.context_length", "bert.embedding_length", "bert.feed_forward_length", "bert.block_count",
		"bert.attention.head_count", "bert.attention.head_count_kv", "bert.attention.key_length",
		"bert.attention.value_length", "bert.attention.layer_norm_epsilon", "bert.pooling_type",
		"tokenizer.ggml.token_type_count", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
		"tokenizer.ggml.seperator_token_id", "tokenizer.ggml.cls_token_id", "tokenizer.ggml.unknown_token_id",
		"tokenizer.ggml.padding_token_id",
	}
	values := []any{uint32(0), uint32(1), uint32(7), uint32(1 << 31), int32(-1), float32(math.NaN()), float32(-1), float32(1e30)}
	type mutant struct {
		name string
		spec synth.Spec
	}
	base := synth.Spec{Layers: 1, Hidden: 32, Heads: 2, FFN: 64, Positions: 64, Seed: 3, ExtraWords: 300}
	var mutants []mutant
	for _, k := range keys {
		for _, v := range values {
			s := base
			s.Meta = map[string]any{k: v}
			mutants = append(mutants, mutant{fmt.Sprintf("%s=%v(%T)", k, v, v), s})
		}
	}
	tokenEdits := []map[int]string{
		{5: ""}, {5: "", 6: "[EMPTY_5]"}, {5: "a\x00"}, {5: "\x00"}, {5: "\x00", 6: ""},
		{5: "zz\x00a", 6: "zz\x00b"}, {5: strings.Repeat("y", 1025)}, {5: strings.Repeat("y", 1024)},
		{5: "\xff\xfe"}, {0: ""}, {1: ""}, {2: ""},
	}
	for i, e := range tokenEdits {
		for _, vocab := range []synth.Vocab{synth.VocabUGM, synth.VocabWPM} {
			s := base
			s.Vocab = vocab
			s.TokenEdits = e
			mutants = append(mutants, mutant{fmt.Sprintf("tokens-%d-vocab-%d", i, vocab), s})
		}
	}
	dir := t.TempDir()
	refused, loaded, scored := 0, 0, 0
	for i, mu := range mutants {
		p := filepath.Join(dir, fmt.Sprintf("m%d.gguf", i))
		if err := synth.Write(p, mu.spec); err != nil {
			t.Fatal(err)
		}
		if _, err := modelfile.Check(p); err != nil {
			if !errors.Is(err, modelfile.ErrDamaged) && !errors.Is(err, modelfile.ErrNotReranker) {
				t.Errorf("%s: refused without a sentinel: %v", mu.name, err)
			}
			refused++
			continue
		}
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "AIMIND_CHILD_LOAD="+p)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		switch {
		case err == nil:
			scored++
		case errors.As(err, &ee) && ee.ExitCode() == 3:
			loaded++
		default:
			t.Errorf("%s: the process died loading or scoring it: %v\n%s", mu.name, err, tail(out))
		}
	}
	t.Logf("%d mutants: %d refused by the pre-check, %d refused by llama.cpp, %d loaded and scored", len(mutants), refused, loaded, scored)
}

func tail(b []byte) string {
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// TestFileTruncatedUnderServedModel: cutting a served GGUF in place (a
// download tool rewriting it, a full disk) must not kill the process at the
// next request, as it did through llama.cpp's mmap (SIGBUS).
func TestFileTruncatedUnderServedModel(t *testing.T) {
	src, err := os.ReadFile(testutil.MustModel(t, synth.Spec{Layers: 2, Hidden: 256, Heads: 4, FFN: 1024, Positions: 128, Seed: 8}))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "served.gguf")
	if err := os.WriteFile(p, src, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "AIMIND_CHILD_TRUNCATE="+p)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the process serving a truncated file died: %v\n%s", err, tail(out))
	}
	if !strings.Contains(string(out), "scored:") {
		t.Fatalf("no score: %s", tail(out))
	}
}
