package engine_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aimind/aimind/engine"
	"github.com/aimind/aimind/internal/reference"
	"github.com/aimind/aimind/internal/synth"
	"github.com/aimind/aimind/internal/testutil"
	"github.com/aimind/aimind/llama"
)

func TestMain(m *testing.M) {
	if path := os.Getenv("AIMIND_CHILD_LOAD"); path != "" {
		os.Exit(childLoad(path, false))
	}
	if path := os.Getenv("AIMIND_CHILD_TRUNCATE"); path != "" {
		os.Exit(childLoad(path, true))
	}
	code := m.Run()
	testutil.Cleanup()
	os.Exit(code)
}

func mustOpen(tb testing.TB, path string, o engine.Options) *engine.Model {
	tb.Helper()
	if o.Threads == 0 {
		o.Threads = 2
	}
	m, err := engine.Open(path, o)
	if err != nil {
		tb.Fatalf("cannot open %s: %v", path, err)
	}
	tb.Cleanup(func() { m.Close() })
	return m
}

// shapes the reference comparison runs over.
var shapes = map[string]synth.Spec{
	"tiny":         synth.Tiny(),
	"3x96-6heads":  {Layers: 3, Hidden: 96, Heads: 6, FFN: 192, Positions: 300, Seed: 3},
	"1x128-2heads": {Layers: 1, Hidden: 128, Heads: 2, FFN: 512, Positions: 128, Seed: 5},
	"wordpiece":    {Layers: 2, Hidden: 64, Heads: 2, FFN: 256, Positions: 512, Seed: 9, Vocab: synth.VocabWPM},
}

func documents(n int) []string {
	docs := make([]string, n)
	for i := range docs {
		docs[i] = synth.Text(uint64(i+1), 3+(i*7)%40)
	}
	return docs
}

func close(got, want, rel, abs float64) bool {
	return math.Abs(got-want) <= rel*math.Abs(want)+abs
}

// TestScoresMatchReference compares aimind's scores with an independent
// float64 forward pass on the same F32 weights and token ids. The bounds:
// ggml evaluates GELU through an F16 table (5e-3); flash attention also casts
// K and V to F16 (2e-2).
func TestScoresMatchReference(t *testing.T) {
	for name, spec := range shapes {
		path := testutil.MustModel(t, spec)
		ref, err := reference.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, fa := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/flash=%v", name, fa), func(t *testing.T) {
				rel, abs := 5e-3, 5e-3
				if fa {
					rel, abs = 2e-2, 2e-2
				}
				m := mustOpen(t, path, engine.Options{FlashAttn: fa, BatchTokens: 4096})
				query := "what does the giant panda eat"
				docs := documents(50)
				pairs, err := m.Tokenize(query, docs)
				if err != nil {
					t.Fatal(err)
				}
				want := make([]float64, len(pairs))
				for i, p := range pairs {
					if want[i], err = ref.Score(p.Tokens); err != nil {
						t.Fatal(err)
					}
				}
				// Single pairs, one call each.
				for i := 0; i < 5; i++ {
					res, err := m.Score(context.Background(), pairs[i:i+1])
					if err != nil {
						t.Fatal(err)
					}
					if !close(res.Scores[0], want[i], rel, abs) {
						t.Errorf("single pair %d: aimind %.6f, reference %.6f", i, res.Scores[0], want[i])
					}
				}
				// A packed batch of 50.
				res, err := m.Score(context.Background(), pairs)
				if err != nil {
					t.Fatal(err)
				}
				worst := 0.0
				for i := range pairs {
					worst = math.Max(worst, math.Abs(res.Scores[i]-want[i]))
					if !close(res.Scores[i], want[i], rel, abs) {
						t.Errorf("batched pair %d: aimind %.6f, reference %.6f", i, res.Scores[i], want[i])
					}
				}
				// The scores must actually discriminate, or agreement means little.
				lo, hi := math.Inf(1), math.Inf(-1)
				for _, w := range want {
					lo, hi = math.Min(lo, w), math.Max(hi, w)
				}
				if hi-lo < 0.05 {
					t.Fatalf("reference scores span only %.4f: the synthetic model is degenerate", hi-lo)
				}
				t.Logf("worst absolute error %.2e over %d pairs (scores span %.3f..%.3f)", worst, len(pairs), lo, hi)
			})
		}
	}
}

// TestBatchInvariance: a document's score does not depend on what it is
// batched with: within 1e-4 on the default (flash attention) path. Without
// flash attention ggml multiplies the softmax by V over every key of the call,
// masked ones included, so the F32 summation order depends on where the pair
// sits in the call; ggml's F16-table GELU can then turn a 1-ulp difference
// into one F16 step. Measured up to 1.6e-4 on this model, so that path gets
// 5e-4.
func TestBatchInvariance(t *testing.T) {
	for _, fa := range []bool{false, true} {
		bound := 1e-4
		if !fa {
			bound = 5e-4
		}
		t.Run(fmt.Sprintf("flash=%v", fa), func(t *testing.T) {
			m := mustOpen(t, testutil.MustModel(t, synth.Tiny()), engine.Options{FlashAttn: fa, BatchTokens: 2048})
			docs := documents(40)
			all, err := m.Rerank(context.Background(), "panda bamboo forest", docs)
			if err != nil {
				t.Fatal(err)
			}
			for i, d := range docs {
				one, err := m.Rerank(context.Background(), "panda bamboo forest", []string{d})
				if err != nil {
					t.Fatal(err)
				}
				if math.Abs(one.Scores[0]-all.Scores[i]) > bound {
					t.Errorf("document %d: alone %.7f, in batch %.7f", i, one.Scores[0], all.Scores[i])
				}
			}
		})
	}
}

// TestConcurrentRequestsShareCalls: many requests at once all get the same
// scores they get alone.
func TestConcurrentRequests(t *testing.T) {
	m := mustOpen(t, testutil.MustModel(t, synth.Tiny()), engine.Options{FlashAttn: true})
	docs := documents(12)
	alone, err := m.Rerank(context.Background(), "river fish", docs)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 16)
	for c := 0; c < 16; c++ {
		go func() {
			r, err := m.Rerank(context.Background(), "river fish", docs)
			if err == nil {
				for i := range docs {
					if math.Abs(r.Scores[i]-alone.Scores[i]) > 1e-4 {
						err = fmt.Errorf("document %d: %.6f concurrent, %.6f alone", i, r.Scores[i], alone.Scores[i])
						break
					}
				}
			}
			errs <- err
		}()
	}
	for c := 0; c < 16; c++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func tokenize(t *testing.T, m *llama.Model, s string) []int32 {
	t.Helper()
	toks, err := m.Tokenize(s, false)
	if err != nil {
		t.Fatal(err)
	}
	return toks
}

func cat(parts ...[]int32) []int32 {
	var out []int32
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// TestPairLayoutTokens pins the token sequence of each model family against
// the Hugging Face tokenizer's pair encoding.
func TestPairLayoutTokens(t *testing.T) {
	yes, no := true, false
	const q, d = "what is a panda", "the giant panda eats bamboo"
	ugm := func(s synth.Spec) synth.Spec { return s }
	cases := []struct {
		name string
		spec synth.Spec
		want func(q, d []int32) []int32
	}{
		// XLM-R: <s> q </s></s> d </s> (ids 0 and 2), whatever add_sep says.
		{"xlmr without add_sep", ugm(synth.Tiny()), func(q, d []int32) []int32 { return cat([]int32{0}, q, []int32{2, 2}, d, []int32{2}) }},
		{"xlmr add_sep=false", func() synth.Spec { s := synth.Tiny(); s.AddSepToken = &no; return s }(), func(q, d []int32) []int32 { return cat([]int32{0}, q, []int32{2, 2}, d, []int32{2}) }},
		{"xlmr add_sep=true", func() synth.Spec { s := synth.Tiny(); s.AddSepToken = &yes; return s }(), func(q, d []int32) []int32 { return cat([]int32{0}, q, []int32{2, 2}, d, []int32{2}) }},
		// BERT WordPiece: [CLS] q [SEP] d [SEP] (ids 2 and 3 in the synthetic vocabulary).
		{"bert wordpiece", shapes["wordpiece"], func(q, d []int32) []int32 { return cat([]int32{2}, q, []int32{3}, d, []int32{3}) }},
		// A rerank template in the GGUF wins.
		{"template", func() synth.Spec { s := synth.Tiny(); s.RerankTemplate = "<s>{document}</s>{query}</s>"; return s }(),
			func(q, d []int32) []int32 { return cat([]int32{0}, d, []int32{2}, q, []int32{2}) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := testutil.MustModel(t, tc.spec)
			m := mustOpen(t, path, engine.Options{})
			vocab, err := llama.LoadModel(path, llama.ModelParams{VocabOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer vocab.Close()
			qt, dt := tokenize(t, vocab, q), tokenize(t, vocab, d)
			if len(qt) != 4 || len(dt) != 5 {
				t.Fatalf("synthetic vocabulary should give one token per word: %v %v", qt, dt)
			}
			pairs, err := m.Tokenize(q, []string{d})
			if err != nil {
				t.Fatal(err)
			}
			if want := tc.want(qt, dt); !reflect.DeepEqual(pairs[0].Tokens, want) {
				t.Fatalf("pair tokens %v, want %v", pairs[0].Tokens, want)
			}
		})
	}
}

// TestTruncation: a long document is cut to the pair limit at its end; a query
// that cannot fit is refused.
func TestTruncation(t *testing.T) {
	m := mustOpen(t, testutil.MustModel(t, synth.Tiny()), engine.Options{Ctx: 64})
	long := synth.Text(3, 500)
	res, err := m.Rerank(context.Background(), "panda", []string{long, "short doc"})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Truncated[0] || res.Truncated[1] {
		t.Fatalf("truncated = %v, want [true false]", res.Truncated)
	}
	pairs, _ := m.Tokenize("panda", []string{long})
	if len(pairs[0].Tokens) != 64 || pairs[0].Tokens[63] != 2 || pairs[0].Tokens[0] != 0 {
		t.Fatalf("truncated pair has %d tokens, ends %d", len(pairs[0].Tokens), pairs[0].Tokens[len(pairs[0].Tokens)-1])
	}
	if m.MaxPairTokens() != 64 {
		t.Fatalf("MaxPairTokens = %d", m.MaxPairTokens())
	}
	_, err = m.Rerank(context.Background(), synth.Text(4, 100), []string{"x"})
	if !errors.Is(err, engine.ErrQueryTooLong) {
		t.Fatalf("long query: err = %v", err)
	}
}

// TestCtxCappedAtModelContext: --ctx above the model's context is capped.
func TestCtxCappedAtModelContext(t *testing.T) {
	spec := shapes["1x128-2heads"] // 128 positions
	m := mustOpen(t, testutil.MustModel(t, spec), engine.Options{Ctx: 4096})
	if m.MaxPairTokens() != 128 {
		t.Fatalf("MaxPairTokens = %d, want 128", m.MaxPairTokens())
	}
	res, err := m.Rerank(context.Background(), "q", []string{synth.Text(1, 1000)})
	if err != nil || !res.Truncated[0] {
		t.Fatalf("err %v, truncated %v", err, res)
	}
}

// TestCancelledRequestIsDropped: a cancelled request returns at once, none
// of its pairs reaches the encoder (counted by the encoder hook, not by the
// caller), its tokens leave the queue, and the model keeps serving.
func TestCancelledRequestIsDropped(t *testing.T) {
	var calls encoderCalls
	m := mustOpen(t, testutil.MustModel(t, synth.Tiny()), engine.Options{OnBatch: calls.observe})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.Rerank(ctx, "q", documents(200)); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if _, err := m.Rerank(context.Background(), "q", documents(3)); err != nil {
		t.Fatal(err)
	}
	// The scheduler answers in order: by the time the second request is
	// scored, the first was either refused before the queue or dropped.
	if p, _ := calls.take(); p != 3 {
		t.Fatalf("%d pairs encoded, want only the 3 of the live request", p)
	}
	if q := m.QueuedTokens(); q != 0 {
		t.Fatalf("%d tokens still queued", q)
	}
}

// TestInvalidUTF8AndOddText: no text can crash the tokenizer.
func TestOddText(t *testing.T) {
	m := mustOpen(t, testutil.MustModel(t, synth.Tiny()), engine.Options{})
	odd := []string{"", " ", "\x00\x00", "\xff\xfe\xfd", strings.Repeat("\u00e9", 300), "<s></s><pad><mask>", "\u200b\u2028\ufeff", "🦙🦙", strconv.Itoa(1 << 30)}
	res, err := m.Rerank(context.Background(), "\xc3\x28 query", odd)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range res.Scores {
		if math.IsNaN(s) || math.IsInf(s, 0) {
			t.Errorf("document %d: score %v", i, s)
		}
	}
	// Special-token text in a document is text, not control tokens.
	pairs, _ := m.Tokenize("q", []string{"<s></s>"})
	for _, tok := range pairs[0].Tokens[4 : len(pairs[0].Tokens)-1] {
		if tok == 0 || tok == 2 {
			t.Fatalf("document text became control tokens: %v", pairs[0].Tokens)
		}
	}
}

// TestStoredTypesCloseToReference: llama.cpp's Q8_0 quantization and an F16
// file of the same weights score near the float64 reference on the F32
// weights (the F16 path aborted in ggml before modelfile required F32 token
// types).
func TestStoredTypesCloseToReference(t *testing.T) {
	spec := shapes["3x96-6heads"]
	ref, err := reference.Load(testutil.MustModel(t, spec))
	if err != nil {
		t.Fatal(err)
	}
	half := spec
	half.F16 = true
	cases := []struct {
		fileType string
		path     string
		bound    float64
	}{
		{"Q8_0", testutil.MustQuantized(t, spec, llama.FtypeQ8_0), 5e-2},
		{"F16", testutil.MustModel(t, half), 3e-2},
	}
	for _, tc := range cases {
		t.Run(tc.fileType, func(t *testing.T) {
			m := mustOpen(t, tc.path, engine.Options{FlashAttn: true})
			if m.Facts().FileType != tc.fileType {
				t.Fatalf("file type %q", m.Facts().FileType)
			}
			worstError(t, m, ref, tc.bound, tc.bound)
		})
	}
}

// TestOverloadIsRefusedAtOnce: past MaxQueueTokens a request is refused
// immediately with a retry hint; admitted requests all complete.
func TestOverloadIsRefusedAtOnce(t *testing.T) {
	spec := synth.Spec{Layers: 4, Hidden: 256, Heads: 4, FFN: 1024, Positions: 512, Seed: 12}
	probe := mustOpen(t, testutil.MustModel(t, spec), engine.Options{})
	docs := documents(60)
	pairs, _ := probe.Tokenize("q", docs)
	per := 0
	for _, p := range pairs {
		per += len(p.Tokens)
	}
	limit := per * 5 / 2 // two requests fit, a third does not
	m := mustOpen(t, testutil.MustModel(t, spec), engine.Options{MaxQueueTokens: limit})
	first := make(chan error, 2)
	for i := 0; i < 2; i++ {
		go func() { _, err := m.Rerank(context.Background(), "q", docs); first <- err }()
	}
	// Wait until both are queued.
	for deadline := time.Now().Add(10 * time.Second); m.QueuedTokens() < 2*per; time.Sleep(100 * time.Microsecond) {
		if time.Now().After(deadline) {
			t.Fatalf("queue never filled: %d", m.QueuedTokens())
		}
	}
	start := time.Now()
	_, err := m.Rerank(context.Background(), "q", docs)
	var oe *engine.OverloadError
	if !errors.As(err, &oe) || oe.RetryAfter < time.Second || oe.Limit != limit {
		t.Fatalf("third request: %v", err)
	}
	if waited := time.Since(start); waited > 500*time.Millisecond {
		t.Fatalf("refusal took %s", waited)
	}
	for i := 0; i < 2; i++ {
		if err := <-first; err != nil {
			t.Fatalf("admitted request failed: %v", err)
		}
	}
	if m.QueuedTokens() != 0 {
		t.Fatalf("%d tokens still counted", m.QueuedTokens())
	}
	if _, err := m.Rerank(context.Background(), "q", docs); err != nil {
		t.Fatalf("after the load: %v", err)
	}
}

// skipUnderRace skips a numeric comparison with the float64 reference under
// the race detector (see raceEnabled), saying so.
func skipUnderRace(t *testing.T) {
	t.Helper()
	if raceEnabled {
		t.Skip("skipped under -race: a numeric comparison with the float64 reference and no goroutines of its own; it runs in build.sh test's plain pass")
	}
}
