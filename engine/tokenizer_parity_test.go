package engine_test

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/aimind/aimind/engine"
	"github.com/aimind/aimind/internal/spmref"
	"github.com/aimind/aimind/internal/synth"
	"github.com/aimind/aimind/internal/testutil"
)

// The tokenizer parity test: a SentencePiece Unigram model trained here by
// the reference implementation (Debian's python3-sentencepiece) on a
// multilingual corpus, converted into the GGUF layout llama.cpp's converter
// writes for XLM-R, must tokenize every text exactly as SentencePiece does.

// edgeTexts are written by hand: normalisation, whitespace and unknowns.
var edgeTexts = []string{
	"", " ", "   ", "\t\n", "\u3000", "a", " a", "a ", "  a  b  ", "a\tb\nc",
	"什么是熊猫？", "什么是熊猫?", "ＡＢＣ　ｄｅｆ", "ｶﾞｷﾞｸﾞ", "e\u0301", "é", "ﬁne ﬂow",
	"①②③", "x²+y²", "¼ ½ ¾", "Å Å", "ǅ", "™ ℃ ㎏", "㈱", "\u200b\u200bzero width",
	"a\u200db", "<s>", "</s>", "<unk> <pad> <mask>", "▁", "▁▁a", "😀😀😀", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
	"\u0000", "a\u0007b", "\ufeffbom", "\ufffd", "𐍈𐌰𐌹", "ꙮ", "ᚠᛇᚻ᛫ᛒᛦᚦ", "x ˘ y", "x¨",
	"The giant panda (Ailuropoda melanoleuca) is a bear species endemic to China.",
	"大熊猫是一种中国特有的熊科动物，主要栖息在四川、陕西和甘肃的山区。",
	"Панда — млекопитающее семейства медвежьих.", "الباندا العملاقة حيوان ثديي",
	strings.Repeat("ab", 200), strings.Repeat("熊", 150), strings.Repeat(" ", 100) + "x",
}

// parityTexts are the ≥1,000 texts compared: generated multilingual texts of
// several lengths, then the hand-written edge cases.
func parityTexts() []string {
	rng := rand.New(rand.NewPCG(7, 7))
	texts := make([]string, 0, 1100)
	for i := 0; i < 1050; i++ {
		texts = append(texts, spmref.MultilingualText(rng, 1+rng.IntN(25)))
	}
	// Random code points from blocks where normalisation does work:
	// combining marks, Hangul jamo (NFKC composes them), compatibility
	// forms, variation selectors, presentation forms, symbols.
	blocks := [][2]rune{{0x20, 0x7e}, {0xa0, 0x24f}, {0x300, 0x36f}, {0x1100, 0x11ff}, {0x2000, 0x206f},
		{0x2150, 0x218f}, {0x2460, 0x24ff}, {0x3000, 0x30ff}, {0x3200, 0x33ff}, {0xfb00, 0xfb4f},
		{0xfe00, 0xfe0f}, {0xfe30, 0xfe6f}, {0xfe70, 0xfeff}, {0xff00, 0xffef}, {0x1d400, 0x1d7ff}, {0x1f300, 0x1f6ff}}
	for i := 0; i < 300; i++ {
		var b strings.Builder
		for n := 1 + rng.IntN(12); n > 0; n-- {
			bl := blocks[rng.IntN(len(blocks))]
			r := bl[0] + rune(rng.IntN(int(bl[1]-bl[0]+1)))
			if utf8.ValidRune(r) {
				b.WriteRune(r)
			}
		}
		texts = append(texts, b.String())
	}
	return append(texts, edgeTexts...)
}

// parityQuery is the other side of every compared pair.
const parityQuery = "什么是熊猫？"

// pairMismatches lays out every text with parityQuery, as the document and
// as the query, and describes each pair whose ids differ from want's.
func pairMismatches(t *testing.T, m *engine.Model, texts []string, want [][]int32) []string {
	t.Helper()
	qi := slices.Index(texts, parityQuery)
	if qi < 0 {
		t.Fatal("the query must be one of the texts")
	}
	var bad []string
	check := func(i int, query, doc string, exp []int32, role string) {
		pairs, err := m.Tokenize(query, []string{doc})
		if err != nil {
			bad = append(bad, fmt.Sprintf("text %d %q as the %s: %v", i, texts[i], role, err))
			return
		}
		if got := pairs[0].Tokens; !slices.Equal(got, exp) {
			bad = append(bad, fmt.Sprintf("text %d %q as the %s:\n aimind        %v\n SentencePiece %v", i, texts[i], role, got, exp))
		}
	}
	for i, text := range texts {
		check(i, parityQuery, text, spmref.RoBERTaPair(want[qi], want[i]), "document")
		check(i, text, parityQuery, spmref.RoBERTaPair(want[i], want[qi]), "query")
	}
	return bad
}

// TestTokenizerMatchesSentencePiece compares aimind's token ids, laid out as
// the XLM-R pair <s> q </s></s> d </s> the engine scores, with
// SentencePiece's own ids (shifted by the fairseq offset) for every text,
// both as a query and as a document.
func TestTokenizerMatchesSentencePiece(t *testing.T) {
	ref := spmref.Trained(t)
	texts := parityTexts()
	want, unknowns := ref.Encode(t, texts)
	// The texts must reach the parts of the tokenizer that can differ:
	// characters the model does not cover (merged <unk> runs) among them.
	if unknowns == 0 {
		t.Fatal("no text holds a character outside the model: <unk> handling is untested")
	}
	// Both ways a pair is laid out for a UGM vocabulary: the RoBERTa layout
	// aimind builds from the special ids, and a GGUF's rerank template
	// (tokenized with its special tokens parsed) spelling the same layout.
	for _, c := range []struct {
		template string
		kind     engine.LayoutKind
	}{{"", engine.LayoutRoBERTa}, {"<s>{query}</s></s>{document}</s>", engine.LayoutTemplate}} {
		t.Run(string(c.kind), func(t *testing.T) {
			spec := synth.Tiny()
			spec.Custom = ref.Vocab
			spec.RerankTemplate = c.template
			m := mustOpen(t, testutil.MustModel(t, spec), engine.Options{Ctx: 512})
			if k := m.Layout().Kind; k != c.kind {
				t.Fatalf("pair layout %s, want %s", k, c.kind)
			}
			bad := pairMismatches(t, m, texts, want)
			for i, b := range bad {
				if i == 20 {
					t.Errorf("... and %d more", len(bad)-20)
					break
				}
				t.Error(b)
			}
			t.Logf("%d texts compared with SentencePiece as query and as document (%d <unk> pieces among them): %d mismatches", len(texts), unknowns, len(bad))
		})
	}
}

// TestTokenizerParityNeedsTheCharsmap is the comparison's control: the same
// vocabulary without its precompiled charsmap (NFKC folding of full-width
// forms, ligatures and the like) must be caught by it.
func TestTokenizerParityNeedsTheCharsmap(t *testing.T) {
	ref := spmref.Trained(t)
	texts := parityTexts()
	want, _ := ref.Encode(t, texts)
	spec := synth.Tiny()
	spec.Custom = ref.Vocab
	spec.Custom = &synth.CustomVocab{Tokens: spec.Custom.Tokens, Scores: spec.Custom.Scores, Types: spec.Custom.Types, Meta: maps.Clone(spec.Custom.Meta)}
	delete(spec.Custom.Meta, "tokenizer.ggml.precompiled_charsmap")
	m := mustOpen(t, testutil.MustModel(t, spec), engine.Options{Ctx: 512})
	bad := pairMismatches(t, m, texts, want)
	if len(bad) == 0 {
		t.Fatal("a vocabulary without its charsmap tokenized every text as SentencePiece does: the comparison cannot see normalisation")
	}
	t.Logf("without the charsmap, %d of %d pairs differ, for example %s", len(bad), 2*len(texts), bad[0])
}
