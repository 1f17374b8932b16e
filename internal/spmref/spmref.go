// Package spmref runs the reference SentencePiece library (Debian's
// python3-sentencepiece) for tests: it trains a small XLM-R-like Unigram
// model on a multilingual corpus, converts it to llama.cpp's GGUF vocabulary
// layout, and encodes texts with it, so that aimind's tokenizer and anything
// built on token counts can be checked against an independent tokenizer.
package spmref

import (
	"bytes"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aimind/aimind/internal/reference"
	"github.com/aimind/aimind/internal/synth"
	"github.com/aimind/aimind/selfcheck"
)

//go:embed spm_reference.py
var script []byte

const python = "/usr/bin/python3"

// Require skips tb when the reference library is missing, and fails it in
// CI, where build.sh test installs it.
func Require(tb testing.TB) {
	tb.Helper()
	err := exec.Command(python, "-c", "import sentencepiece").Run()
	if err == nil {
		return
	}
	if os.Getenv("CI") != "" {
		tb.Fatalf("python3-sentencepiece is missing in CI, where build.sh test installs it: %v", err)
	}
	tb.Skipf("skipped: the SentencePiece reference (Debian's python3-sentencepiece, %s) is not installed: %v", python, err)
}

// Model is a trained SentencePiece model and its GGUF vocabulary.
type Model struct {
	Path  string             // the .model file
	Vocab *synth.CustomVocab // converted as llama.cpp's converter does
}

var trained struct {
	sync.Once
	m   *Model
	err error
}

type trainAnswer struct {
	Pieces                 []string  `json:"pieces"`
	Scores                 []float32 `json:"scores"`
	Types                  []int32   `json:"types"`
	Charsmap               string    `json:"charsmap"`
	AddDummyPrefix         bool      `json:"add_dummy_prefix"`
	RemoveExtraWhitespaces bool      `json:"remove_extra_whitespaces"`
}

// call runs one command of the helper script with req as JSON on stdin.
func call(cmd string, req, resp any) error {
	dir, err := os.MkdirTemp("", "aimind-spmref-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	sp := filepath.Join(dir, "spm_reference.py")
	if err := os.WriteFile(sp, script, 0o644); err != nil {
		return err
	}
	in, err := json.Marshal(req)
	if err != nil {
		return err
	}
	c := exec.Command(python, sp, cmd)
	c.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		return fmt.Errorf("SentencePiece %s: %v\n%s", cmd, err, stderr.String())
	}
	if err := json.Unmarshal(out, resp); err != nil {
		return fmt.Errorf("SentencePiece %s: bad answer: %v", cmd, err)
	}
	return nil
}

// Trained returns the model trained once per test binary (4,000 lines of
// MultilingualText, 3,000 pieces, nmt_nfkc).
func Trained(tb testing.TB) *Model {
	tb.Helper()
	Require(tb)
	trained.Do(func() { trained.m, trained.err = train() })
	if trained.err != nil {
		tb.Fatal(trained.err)
	}
	return trained.m
}

func train() (*Model, error) {
	dir, err := os.MkdirTemp("", "aimind-spm-")
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(2026, 11))
	var corpus strings.Builder
	for i := 0; i < 4000; i++ {
		corpus.WriteString(strings.ReplaceAll(MultilingualText(rng, 3+rng.IntN(12)), "\n", " "))
		corpus.WriteByte('\n')
	}
	// GPUStack's guide request, so that a stand-in for bge-reranker-v2-m3
	// tokenizes it into learnt pieces.
	g := selfcheck.BGEM3Guide
	for _, t := range append([]string{g.Query}, g.Documents...) {
		corpus.WriteString(t)
		corpus.WriteByte('\n')
	}
	corpusPath := filepath.Join(dir, "corpus.txt")
	if err := os.WriteFile(corpusPath, []byte(corpus.String()), 0o644); err != nil {
		return nil, err
	}
	var tr trainAnswer
	if err := call("train", map[string]any{"corpus": corpusPath, "prefix": filepath.Join(dir, "m"), "vocab_size": 3000}, &tr); err != nil {
		return nil, err
	}
	if len(tr.Pieces) < 4 || tr.Pieces[0] != "<unk>" || tr.Pieces[1] != "<s>" || tr.Pieces[2] != "</s>" {
		return nil, fmt.Errorf("trained model does not start <unk> <s> </s>: %q", tr.Pieces[:min(4, len(tr.Pieces))])
	}
	charsmap, err := base64.StdEncoding.DecodeString(tr.Charsmap)
	if err != nil || len(charsmap) == 0 {
		return nil, fmt.Errorf("trained model has no precompiled charsmap (%d bytes, %v)", len(charsmap), err)
	}
	return &Model{
		Path:  filepath.Join(dir, "m.model"),
		Vocab: synth.XLMRVocab(tr.Pieces, tr.Scores, tr.Types, charsmap, tr.AddDummyPrefix, tr.RemoveExtraWhitespaces),
	}, nil
}

// Encode returns SentencePiece's ids for texts, in GGUF (fairseq) ids, and
// how many <unk> pieces they hold.
func (m *Model) Encode(tb testing.TB, texts []string) (ids [][]int32, unknowns int) {
	tb.Helper()
	var ref struct {
		IDs [][]int `json:"ids"`
	}
	if err := call("encode", map[string]any{"model": m.Path, "texts": texts}, &ref); err != nil {
		tb.Fatal(err)
	}
	if len(ref.IDs) != len(texts) {
		tb.Fatalf("SentencePiece answered %d of %d texts", len(ref.IDs), len(texts))
	}
	ids = make([][]int32, len(texts))
	for i, spm := range ref.IDs {
		ids[i] = make([]int32, len(spm))
		for j, id := range spm {
			ids[i][j] = synth.FairseqID(id)
			if id == 0 {
				unknowns++
			}
		}
	}
	return ids, unknowns
}

// RoBERTaPair is the XLM-R pair <s> q </s></s> d </s> in GGUF ids.
func RoBERTaPair(q, d []int32) []int32 {
	return slices.Concat([]int32{0}, q, []int32{2, 2}, d, []int32{2})
}

// Scores is an answer computed without aimind: query and each document
// tokenized by SentencePiece, laid out as XLM-R pairs and scored by the
// float64 forward pass on the GGUF at path; and the tokens those pairs hold
// (usage.prompt_tokens).
func (m *Model) Scores(tb testing.TB, path, query string, docs []string) (scores []float64, tokens int) {
	tb.Helper()
	ref, err := reference.Load(path)
	if err != nil {
		tb.Fatal(err)
	}
	ids, _ := m.Encode(tb, append([]string{query}, docs...))
	for _, d := range ids[1:] {
		pair := RoBERTaPair(ids[0], d)
		tokens += len(pair)
		s, err := ref.Score(pair)
		if err != nil {
			tb.Fatal(err)
		}
		scores = append(scores, s)
	}
	return scores, tokens
}

// scripts are the word lists the corpus and test texts are drawn from.
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

// MultilingualText draws words from every script in a seeded mix.
func MultilingualText(rng *rand.Rand, words int) string {
	names := make([]string, 0, len(scripts))
	for k := range scripts {
		names = append(names, k)
	}
	slices.Sort(names)
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
