package engine_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/aimind/aimind/engine"
	"github.com/aimind/aimind/internal/synth"
	"github.com/aimind/aimind/internal/testutil"
)

// The tokenizer parity test: a SentencePiece Unigram model trained here by
// the reference implementation (Debian's python3-sentencepiece) on a
// multilingual corpus, converted into the GGUF layout llama.cpp's converter
// writes for XLM-R, must tokenize every text exactly as SentencePiece does.

// script word lists the corpus and test texts are drawn from.
var scripts = map[string][]string{
	"latin": strings.Fields(`café naïve façade résumé crème brûlée Straße Größe über Mädchen
		Øresund smørrebrød año niño corazón São João coração Łódź żółw źdźbło Kraków
		Việt Nam tiếng phở Ñandú Ærø Þórr garçon jalapeño Zürich Ελλάδα`),
	"cjk": strings.Fields(`什么 是 熊猫 大熊猫 一种 中国 特有 的 熊科 动物 吃 竹子 生活 在 山区
		森林 你好 世界 東京 日本語 ひらがな カタカナ です ます こんにちは ありがとう
		한국어 안녕하세요 감사합니다 서울 판다 검색 문서`),
	"cyrillic": strings.Fields(`панда медведь бамбук Китай животное лес горы поиск документ
		запрос привет мир Україна їжак ґанок Ёлка щука объём`),
	"arabic": strings.Fields(`الباندا دب الخيزران الصين حيوان غابة مرحبا بالعالم بحث وثيقة
		سؤال جواب ٠١٢٣٤٥٦٧٨٩ ﻻ ﷲ`),
	"other": strings.Fields(`नमस्ते दुनिया पांडा สวัสดีชาวโลก ภาษาไทย שלום עולם გამარჯობა
		Բարեւ ሰላም ᚠᚢᚦ`),
	"emoji":     strings.Fields(`🐼 🎋 🇨🇳 👍🏽 👨‍👩‍👧 ❤️ ✨ 🔍 😀 ☕`),
	"digits":    strings.Fields(`0 1 42 2024 3.14 1,000,000 10% $5 €20 ½ ² ① Ⅻ 1st 2nd`),
	"fullwidth": strings.Fields(`ＡＢＣ ａｂｃ １２３ ！ ？ （熊猫） ｶﾀｶﾅ ﾊﾟﾝﾀﾞ Ｐａｎｄａ ＠＃`),
	"english":   synth.Words,
}

// separators include the whitespace SentencePiece's nmt_nfkc rules map.
var separators = []string{" ", " ", " ", " ", "  ", "\t", "\n", "\u00a0", "\u3000", " \n ", "", ", ", ". "}

// multilingualText draws one text from every script in a seeded mix.
func multilingualText(rng *rand.Rand, words int) string {
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range scripts {
			if !yield(k) {
				return
			}
		}
	})
	var b strings.Builder
	for i := 0; i < words; i++ {
		if i > 0 {
			b.WriteString(separators[rng.IntN(len(separators))])
		}
		list := scripts[names[rng.IntN(len(names))]]
		b.WriteString(list[rng.IntN(len(list))])
	}
	return b.String()
}

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

type spmTrained struct {
	Pieces                 []string  `json:"pieces"`
	Scores                 []float32 `json:"scores"`
	Types                  []int32   `json:"types"`
	Charsmap               string    `json:"charsmap"`
	AddDummyPrefix         bool      `json:"add_dummy_prefix"`
	RemoveExtraWhitespaces bool      `json:"remove_extra_whitespaces"`
}

var spmOnce struct {
	sync.Once
	model, gguf string
	vocab       *synth.CustomVocab
	err         error
}

// sentencePiece runs the reference helper; it needs Debian's
// python3-sentencepiece (installed by build.sh test in CI).
func sentencePiece(t *testing.T, cmd string, req, resp any) {
	t.Helper()
	in, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	c := exec.Command("/usr/bin/python3", "testdata/spm_reference.py", cmd)
	c.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		t.Fatalf("SentencePiece %s: %v\n%s", cmd, err, stderr.String())
	}
	if err := json.Unmarshal(out, resp); err != nil {
		t.Fatalf("SentencePiece %s: bad answer: %v", cmd, err)
	}
}

func requireSentencePiece(t *testing.T) {
	t.Helper()
	err := exec.Command("/usr/bin/python3", "-c", "import sentencepiece").Run()
	if err == nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("python3-sentencepiece is missing in CI, where build.sh test installs it: %v", err)
	}
	t.Skipf("skipped: the SentencePiece reference (Debian's python3-sentencepiece, /usr/bin/python3) is not installed: %v", err)
}

// spmModel trains the SentencePiece model once per test binary and writes
// the GGUF converted from it.
func spmModel(t *testing.T) (model, gguf string) {
	t.Helper()
	requireSentencePiece(t)
	spmOnce.Do(func() {
		dir, err := os.MkdirTemp("", "aimind-spm-")
		if err != nil {
			spmOnce.err = err
			return
		}
		rng := rand.New(rand.NewPCG(2026, 11))
		var corpus strings.Builder
		for i := 0; i < 4000; i++ {
			corpus.WriteString(strings.ReplaceAll(multilingualText(rng, 3+rng.IntN(12)), "\n", " "))
			corpus.WriteByte('\n')
		}
		corpusPath := filepath.Join(dir, "corpus.txt")
		if err := os.WriteFile(corpusPath, []byte(corpus.String()), 0o644); err != nil {
			spmOnce.err = err
			return
		}
		var tr spmTrained
		sentencePiece(t, "train", map[string]any{"corpus": corpusPath, "prefix": filepath.Join(dir, "m"), "vocab_size": 3000}, &tr)
		if len(tr.Pieces) < 4 || tr.Pieces[0] != "<unk>" || tr.Pieces[1] != "<s>" || tr.Pieces[2] != "</s>" {
			spmOnce.err = fmt.Errorf("trained model does not start <unk> <s> </s>: %q", tr.Pieces[:min(4, len(tr.Pieces))])
			return
		}
		charsmap, err := base64.StdEncoding.DecodeString(tr.Charsmap)
		if err != nil || len(charsmap) == 0 {
			spmOnce.err = fmt.Errorf("trained model has no precompiled charsmap (%d bytes, %v)", len(charsmap), err)
			return
		}
		spec := synth.Tiny()
		spec.Seed = 17
		spec.Custom = synth.XLMRVocab(tr.Pieces, tr.Scores, tr.Types, charsmap, tr.AddDummyPrefix, tr.RemoveExtraWhitespaces)
		spmOnce.vocab = spec.Custom
		spmOnce.model = filepath.Join(dir, "m.model")
		spmOnce.gguf = testutil.MustModel(t, spec)
	})
	if spmOnce.err != nil {
		t.Fatal(spmOnce.err)
	}
	return spmOnce.model, spmOnce.gguf
}

// parityTexts are the ≥1,000 texts compared: generated multilingual texts of
// several lengths, then the hand-written edge cases.
func parityTexts() []string {
	rng := rand.New(rand.NewPCG(7, 7))
	texts := make([]string, 0, 1100)
	for i := 0; i < 1050; i++ {
		texts = append(texts, multilingualText(rng, 1+rng.IntN(25)))
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

// spmReference is SentencePiece's answer for texts, in GGUF (fairseq) ids.
func spmReference(t *testing.T, spmPath string, texts []string) (want [][]int32, unknowns int) {
	t.Helper()
	var ref struct {
		IDs [][]int `json:"ids"`
	}
	sentencePiece(t, "encode", map[string]any{"model": spmPath, "texts": texts}, &ref)
	if len(ref.IDs) != len(texts) {
		t.Fatalf("SentencePiece answered %d of %d texts", len(ref.IDs), len(texts))
	}
	want = make([][]int32, len(texts))
	for i, ids := range ref.IDs {
		want[i] = make([]int32, len(ids))
		for j, id := range ids {
			want[i][j] = synth.FairseqID(id)
			if id == 0 {
				unknowns++
			}
		}
	}
	return want, unknowns
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
		check(i, parityQuery, text, slices.Concat([]int32{0}, want[qi], []int32{2, 2}, want[i], []int32{2}), "document")
		check(i, text, parityQuery, slices.Concat([]int32{0}, want[i], []int32{2, 2}, want[qi], []int32{2}), "query")
	}
	return bad
}

// TestTokenizerMatchesSentencePiece compares aimind's token ids, laid out as
// the XLM-R pair <s> q </s></s> d </s> the engine scores, with
// SentencePiece's own ids (shifted by the fairseq offset) for every text,
// both as a query and as a document.
func TestTokenizerMatchesSentencePiece(t *testing.T) {
	spmPath, gguf := spmModel(t)
	m := mustOpen(t, gguf, engine.Options{Ctx: 512})
	if k := m.Layout().Kind; k != engine.LayoutRoBERTa {
		t.Fatalf("a UGM vocabulary should get the RoBERTa pair layout, got %s", k)
	}
	texts := parityTexts()
	want, unknowns := spmReference(t, spmPath, texts)
	// The texts must reach the parts of the tokenizer that can differ:
	// characters the model does not cover (merged <unk> runs) among them.
	if unknowns == 0 {
		t.Fatal("no text holds a character outside the model: <unk> handling is untested")
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
}

// TestTokenizerParityNeedsTheCharsmap is the comparison's control: the same
// vocabulary without its precompiled charsmap (NFKC folding of full-width
// forms, ligatures and the like) must be caught by it.
func TestTokenizerParityNeedsTheCharsmap(t *testing.T) {
	spmPath, _ := spmModel(t)
	texts := parityTexts()
	want, _ := spmReference(t, spmPath, texts)
	spec := synth.Tiny()
	spec.Seed = 17
	spec.Custom = spmOnce.vocab
	spec.Custom = &synth.CustomVocab{Tokens: spec.Custom.Tokens, Scores: spec.Custom.Scores, Types: spec.Custom.Types, Meta: maps.Clone(spec.Custom.Meta)}
	delete(spec.Custom.Meta, "tokenizer.ggml.precompiled_charsmap")
	m := mustOpen(t, testutil.MustModel(t, spec), engine.Options{Ctx: 512})
	bad := pairMismatches(t, m, texts, want)
	if len(bad) == 0 {
		t.Fatal("a vocabulary without its charsmap tokenized every text as SentencePiece does: the comparison cannot see normalisation")
	}
	t.Logf("without the charsmap, %d of %d pairs differ, for example %s", len(bad), 2*len(texts), bad[0])
}
