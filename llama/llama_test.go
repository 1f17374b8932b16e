package llama_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/aimind/aimind/internal/synth"
	"github.com/aimind/aimind/internal/testutil"
	"github.com/aimind/aimind/llama"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testutil.Cleanup()
	os.Exit(code)
}

// TestLoadUnloadKeepsMemoryFlat loads a ~10 MB model with a context many
// times; a leaked model or context would grow RSS by that much each time.
func TestLoadUnloadKeepsMemoryFlat(t *testing.T) {
	spec := synth.Spec{Layers: 2, Hidden: 256, Heads: 4, FFN: 1024, Positions: 512, Seed: 2, ExtraWords: 3000}
	path := testutil.MustModel(t, spec)
	cycle := func() {
		m, err := llama.LoadModel(path, llama.ModelParams{})
		if err != nil {
			t.Fatal(err)
		}
		c, err := llama.NewContext(m, llama.ContextParams{Tokens: 512, Sequences: 64, Threads: 2, FlashAttn: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Encode([]int32{0, 5, 2, 2, 7, 2}, []int{6}); err != nil {
			t.Fatal(err)
		}
		c.Close()
		c.Close() // idempotent
		m.Close()
		m.Close()
	}
	for i := 0; i < 5; i++ {
		cycle() // warm up allocators and thread pools
	}
	before := testutil.RSS(t)
	for i := 0; i < 40; i++ {
		cycle()
	}
	after := testutil.RSS(t)
	st, _ := os.Stat(path)
	t.Logf("RSS %d MiB -> %d MiB over 40 cycles of a %d MiB model", before>>20, after>>20, st.Size()>>20)
	if grow := after - before; grow > 4*st.Size() {
		t.Fatalf("RSS grew by %d MiB over 40 load/unload cycles", grow>>20)
	}
}

// TestEncodeRefusesHostileInput: every limit ggml would abort on is checked in
// Go first and returned as an error; ErrInput says the Go check refused it,
// not llama.cpp (which refuses a token past the vocabulary itself, so only
// this tells whether the Go guard is there).
func TestEncodeRefusesHostileInput(t *testing.T) {
	m, err := llama.LoadModel(testutil.MustModel(t, synth.Tiny()), llama.ModelParams{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	c, err := llama.NewContext(m, llama.ContextParams{Tokens: 64, Sequences: 4, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	info, _ := m.Info()
	long := make([]int32, 65)
	cases := []struct {
		name   string
		tokens []int32
		lens   []int
	}{
		{"no sequences", nil, nil},
		{"more tokens than the context", long, []int{65}},
		{"more sequences than the context", []int32{1, 1, 1, 1, 1}, []int{1, 1, 1, 1, 1}},
		{"empty sequence", []int32{1}, []int{1, 0}},
		{"lengths do not add up", []int32{1, 2, 3}, []int{2}},
		{"negative token", []int32{0, -1}, []int{2}},
		{"token past the vocabulary", []int32{0, int32(info.VocabSize)}, []int{2}},
	}
	for _, tc := range cases {
		if _, err := c.Encode(tc.tokens, tc.lens); !errors.Is(err, llama.ErrInput) || !errors.Is(err, llama.ErrEncode) {
			t.Errorf("%s: err = %v, want ErrInput (refused in Go, an ErrEncode)", tc.name, err)
		}
	}
	if _, err := c.Encode([]int32{0, 5, 2}, []int{3}); err != nil {
		t.Fatalf("context unusable after refusals: %v", err)
	}
	c.Close()
	if _, err := c.Encode([]int32{0, 5, 2}, []int{3}); !errors.Is(err, llama.ErrClosed) {
		t.Fatalf("closed context: err = %v", err)
	}
}

func TestLoadErrors(t *testing.T) {
	if _, err := llama.LoadModel(filepath.Join(t.TempDir(), "missing.gguf"), llama.ModelParams{}); !errors.Is(err, llama.ErrLoad) {
		t.Fatalf("err = %v", err)
	}
}

// TestWordPieceMatchesHuggingFace tokenizes llama.cpp's published test texts
// for the bge WordPiece vocabulary and compares with the ids Hugging Face's
// tokenizer gives. The files live in ../shared/testdata (absent in a plain
// clone: then the test skips).
func TestWordPieceMatchesHuggingFace(t *testing.T) {
	dir := filepath.Join("..", "..", "shared", "testdata", "vocab-bert-bge")
	vocab := filepath.Join(dir, "ggml-vocab-bert-bge.gguf")
	if _, err := os.Stat(vocab); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("no %s in CI, where ../shared sits beside the clone: %v", vocab, err)
		}
		t.Skipf("skipped: no %s (../shared/testdata is beside the clone in CI): %v", vocab, err)
	}
	inp, err := os.ReadFile(vocab + ".inp")
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.ReadFile(vocab + ".out")
	if err != nil {
		t.Fatal(err)
	}
	// Each text is followed by a separator line.
	texts := strings.Split(string(inp), "\n__ggml_vocab_test__\n")
	texts = texts[:len(texts)-1]
	want := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(texts) != len(want) {
		t.Fatalf("%d texts, %d expected lines", len(texts), len(want))
	}
	m, err := llama.LoadModel(vocab, llama.ModelParams{VocabOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	info, _ := m.Info()
	if info.VocabType != llama.VocabWPM || info.CLS != 101 || info.SEP != 102 {
		t.Fatalf("vocabulary %v CLS %d SEP %d, want wpm 101 102", info.VocabType, info.CLS, info.SEP)
	}
	for i, text := range texts {
		got, err := m.Tokenize(text, false)
		if err != nil {
			t.Fatal(err)
		}
		var wantIDs []int32
		for _, f := range strings.Fields(want[i]) {
			v, _ := strconv.Atoi(f)
			wantIDs = append(wantIDs, int32(v))
		}
		if len(got) == 0 && len(wantIDs) == 0 {
			continue
		}
		if !reflect.DeepEqual(got, wantIDs) {
			t.Errorf("text %d %q: got %v, want %v", i, text, got, wantIDs)
		}
	}
}

type captureHandler struct {
	mu   sync.Mutex
	msgs []string
}

func (h *captureHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *captureHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.msgs = append(h.msgs, r.Message)
	h.mu.Unlock()
	return nil
}
func (h *captureHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *captureHandler) WithGroup(string) slog.Handler      { return h }

// TestPatch0001KeepsFirstTokenOutputs: with third_party/patches/0001 applied,
// llama.cpp honours a batch that marks only each sequence's first token as an
// output and computes the last layer for those rows only (it says how many);
// stock llama.cpp overrides the flags and computes every token.
func TestPatch0001KeepsFirstTokenOutputs(t *testing.T) {
	h := &captureHandler{}
	llama.Init(slog.New(h))
	defer llama.Init(slog.Default())
	m, err := llama.LoadModel(testutil.MustModel(t, synth.Tiny()), llama.ModelParams{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	c, err := llama.NewContext(m, llama.ContextParams{Tokens: 64, Sequences: 4, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Encode([]int32{0, 5, 2, 2, 7, 2, 0, 9, 2, 2, 2}, []int{6, 5}); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	kept := false
	for _, msg := range h.msgs {
		if strings.Contains(msg, "not marked as outputs") {
			t.Fatalf("llama.cpp overrode the first-token outputs (patch 0001 not applied?): %s", msg)
		}
		// The patched encode reports how many rows its last layer computed:
		// one per sequence, two here, of the call's eleven tokens.
		if strings.Contains(msg, "aimind rank pooling: last layer for 2 first tokens of 11") {
			kept = true
		}
	}
	if !kept {
		t.Fatalf("no report of the first-token outputs (patch 0001 not applied?); llama.cpp said:\n%s", strings.Join(h.msgs, "\n"))
	}
}

// TestDevices: the CPU is always a device; a device the build does not have
// is refused in Go, naming the ones it has, before llama.cpp sees the file.
func TestDevices(t *testing.T) {
	devs := llama.Devices()
	cpu := false
	for _, d := range devs {
		cpu = cpu || d.Type == "CPU"
	}
	if !cpu {
		t.Fatalf("no CPU device in %+v", devs)
	}
	_, err := llama.LoadModel(testutil.MustModel(t, synth.Tiny()), llama.ModelParams{Device: "CUDA7", GPULayers: 99})
	if !errors.Is(err, llama.ErrLoad) || !strings.Contains(err.Error(), `no device named "CUDA7"`) || !strings.Contains(err.Error(), devs[0].Name) {
		t.Fatalf("unknown device: %v", err)
	}
	t.Logf("devices: %+v", devs)
}

// TestErrorsStayWithTheirCall: llama.cpp's error text reaches the call that
// caused it, even when calls fail at the same time on other goroutines (it
// is collected per call on the calling thread, not from a process-wide
// last error).
func TestErrorsStayWithTheirCall(t *testing.T) {
	dir := t.TempDir()
	const workers, rounds = 8, 300
	errs := make(chan error, workers*rounds)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				in := filepath.Join(dir, fmt.Sprintf("missing-%d-%d.gguf", w, r))
				err := llama.Quantize(in, in+".out", llama.FtypeQ8_0, 1)
				if err == nil {
					errs <- fmt.Errorf("quantizing the missing %s succeeded", in)
					continue
				}
				// The text after "llama.cpp returned N:" is llama.cpp's own.
				msg := err.Error()
				if w == 0 && r == 0 {
					t.Log(msg)
				}
				own := msg[strings.Index(msg, "returned"):]
				if !strings.Contains(own, in) || strings.Count(own, "missing-") != strings.Count(own, filepath.Base(in)) {
					errs <- fmt.Errorf("the error of %s carries other text: %s", filepath.Base(in), own)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
