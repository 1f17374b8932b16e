// Package selfcheck scores known-answer requests with a freshly loaded model
// and says whether its scores look like a working reranker's. A broken GGUF
// conversion (a wrong tokenizer, a flipped or missing head, NaN weights)
// loads without error and answers with confident nonsense; this is where
// aimind notices. The outcome is a warning recorded with the model, never a
// refusal to serve it.
package selfcheck

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path"
	"slices"
	"strings"

	"github.com/aimind/aimind/engine"
)

// Scorer is what the check needs of a model: *engine.Model.
type Scorer interface {
	Rerank(ctx context.Context, query string, docs []string) (*engine.Result, error)
}

// Status is the verdict.
type Status string

// Verdicts.
const (
	Passed  Status = "passed"
	Suspect Status = "suspect"
	Off     Status = "off" // --self-check=off
)

// Outcome is what a check found, as recorded with the model.
type Outcome struct {
	Status Status  `json:"status"`
	Reason string  `json:"reason,omitempty"` // the failed checks' reasons, joined
	Checks []Check `json:"checks,omitempty"`
}

// Check is one named check and what it saw.
type Check struct {
	Name   string `json:"name"`
	Passed bool   `json:"passed"`
	Detail string `json:"detail"`
}

// Triple is a query with a document that answers it and one that does not.
type Triple struct {
	Lang, Query, Relevant, Irrelevant string
}

// Triples are the built-in known answers for any reranker: easy pairs in
// several languages where the relevant document repeats the query's words,
// so that a healthy model (even one trained mostly on English) ranks it
// first in nearly all of them, while random or broken weights hit about
// half.
var Triples = []Triple{
	{"en", "What do giant pandas eat?", "Giant pandas eat bamboo: bamboo shoots and leaves are almost all of what a panda eats.", "The stock market closed higher on Tuesday after strong quarterly earnings."},
	{"en", "How tall is the Eiffel Tower?", "The Eiffel Tower in Paris is about 330 metres tall.", "Potatoes are planted in spring and harvested in autumn."},
	{"en", "Who wrote Pride and Prejudice?", "Pride and Prejudice is a novel written by Jane Austen, published in 1813.", "A healthy adult should drink water regularly throughout the day."},
	{"en", "What is the boiling point of water?", "Water boils at 100 degrees Celsius at sea level; that is its boiling point.", "The guitar has six strings and is played by plucking or strumming."},
	{"zh", "熊猫吃什么？", "大熊猫主要吃竹子，熊猫每天要吃十几公斤竹子。", "今天股市收盘上涨，科技股领涨。"},
	{"zh", "中国的首都是哪里？", "北京是中国的首都，也是中国的政治和文化中心。", "这家餐厅的面条非常好吃，价格也很便宜。"},
	{"ja", "富士山の高さは？", "富士山の高さは3776メートルで、日本で一番高い山です。", "このレストランのラーメンはとても美味しいです。"},
	{"ko", "물은 몇 도에서 끓나요?", "물은 해수면에서 섭씨 100도에서 끓습니다.", "축구 경기는 90분 동안 진행됩니다."},
	{"de", "Wie hoch ist der Eiffelturm?", "Der Eiffelturm in Paris ist etwa 330 Meter hoch.", "Kartoffeln werden im Frühjahr gepflanzt und im Herbst geerntet."},
	{"fr", "Quelle est la capitale du Japon ?", "Tokyo est la capitale du Japon et sa plus grande ville.", "Le chocolat noir contient plus de cacao que le chocolat au lait."},
	{"es", "¿Cuántos días tiene un año bisiesto?", "Un año bisiesto tiene 366 días, porque febrero tiene 29 días.", "El fútbol es el deporte más popular de Argentina."},
	{"pt", "Quem escreveu Dom Casmurro?", "Dom Casmurro foi escrito por Machado de Assis e publicado em 1899.", "O café é uma das bebidas mais consumidas no Brasil."},
	{"it", "Qual è il fiume più lungo d'Italia?", "Il Po è il fiume più lungo d'Italia, con circa 652 chilometri.", "La pizza margherita ha pomodoro, mozzarella e basilico."},
	{"ru", "Какая самая длинная река в мире?", "Самая длинная река в мире — Нил, около 6650 километров.", "Рецепт борща включает свёклу, капусту и картофель."},
	{"ar", "ما هي عاصمة مصر؟", "القاهرة هي عاصمة مصر وأكبر مدنها.", "تحتاج النباتات إلى الماء وضوء الشمس لتنمو."},
	{"tr", "Türkiye'nin başkenti neresidir?", "Türkiye'nin başkenti Ankara'dır.", "Kahvaltıda peynir, zeytin ve domates yenir."},
}

// Guide is a known-answer request with the expected answer.
type Guide struct {
	Name         string
	Query        string
	Documents    []string
	Order        []int     // document indexes, best first
	PromptTokens int       // usage.prompt_tokens: tokens of all pairs
	Scores       []float64 // raw logits, in document order
}

// BGEM3Guide is GPUStack's guide request and the answer the guide prints for
// bge-reranker-v2-m3 (../shared/notes/rerank-api.md).
var BGEM3Guide = Guide{
	Name:         "GPUStack guide request",
	Query:        "什么是熊猫？",
	Documents:    []string{"你好", "它是一种熊", "大熊猫（Ailuropoda melanoleuca），有时被称为熊猫或熊猫熊，是中国特有的熊科动物。"},
	Order:        []int{2, 1, 0},
	PromptTokens: 69,
	Scores:       []float64{-6.157620906829834, -3.7347371578216553, 1.951932668685913},
}

// GuideTolerance is how far each of the guide's scores may be off for a
// file of the given type (llama.cpp's file type, such as "Q8_0").
//
// The guide's numbers came from one GGUF of unknown type served by another
// llama.cpp build, so even a lossless file needs room for that file's
// quantisation error and a different ggml; the bound then grows with the
// weights' quantisation error, growing from 8-bit to 6/5-bit to 4-bit and
// below. Even the widest bound (1.1) cannot let two of the guide's documents
// swap within it: their closest scores are 2.4 apart.
func GuideTolerance(fileType string) float64 {
	t := strings.ToUpper(fileType)
	switch {
	case t == "ALL_F32" || t == "F32" || t == "F16" || t == "BF16":
		return 0.15
	case strings.HasPrefix(t, "Q8"):
		return 0.3
	case strings.HasPrefix(t, "Q6") || strings.HasPrefix(t, "Q5"):
		return 0.5
	case strings.HasPrefix(t, "Q4") || strings.HasPrefix(t, "IQ4"):
		return 0.8
	}
	return 1.1
}

// Identity is what names a model: a Hugging Face repo, the file name, and
// the GGUF's general.name and file type.
type Identity struct {
	Repo, File, Name, FileType string
}

// IsBGEM3 reports whether the model is (a conversion of) bge-reranker-v2-m3,
// by repo, file name or general.name.
func IsBGEM3(id Identity) bool {
	for _, s := range []string{id.Repo, path.Base(id.File), id.Name} {
		if strings.Contains(strings.ToLower(s), "bge-reranker-v2-m3") {
			return true
		}
	}
	return false
}

// Suite is what Run checks.
type Suite struct {
	Triples []Triple
	// Guide is scored when Recognise says the model is the guide's; its
	// scores must be within Tolerance (GuideTolerance by file type when 0).
	Guide     *Guide
	Recognise func(Identity) bool
	Tolerance float64
}

// Default is the built-in suite: the triples for every model, and the
// guide's request for bge-reranker-v2-m3.
func Default() Suite {
	return Suite{Triples: Triples, Guide: &BGEM3Guide, Recognise: IsBGEM3}
}

// Run scores the suite with s. An error from the model itself (not a wrong
// answer) is returned as an error: the caller decides what a check that
// could not run means.
func Run(ctx context.Context, s Scorer, id Identity, suite Suite) (Outcome, error) {
	var checks []Check
	if len(suite.Triples) > 0 {
		c, err := triples(ctx, s, suite.Triples)
		if err != nil {
			return Outcome{}, err
		}
		checks = append(checks, c...)
	}
	if suite.Guide != nil && suite.Recognise != nil && suite.Recognise(id) {
		tol := suite.Tolerance
		if tol == 0 {
			tol = GuideTolerance(id.FileType)
		}
		c, err := guide(ctx, s, *suite.Guide, tol)
		if err != nil {
			return Outcome{}, err
		}
		checks = append(checks, c...)
	}
	out := Outcome{Status: Passed, Checks: checks}
	var reasons []string
	for _, c := range checks {
		if !c.Passed {
			reasons = append(reasons, c.Name+": "+c.Detail)
		}
	}
	if len(reasons) > 0 {
		out.Status, out.Reason = Suspect, strings.Join(reasons, "; ")
	}
	return out, nil
}

// The share of triples a healthy model must rank right, and at or below
// which the model is taken to rank backwards.
const (
	healthyShare  = 0.75
	invertedShare = 0.25
)

func triples(ctx context.Context, s Scorer, ts []Triple) ([]Check, error) {
	var all []float64
	right, nonFinite := 0, 0
	var wrongLangs []string
	for _, t := range ts {
		r, err := s.Rerank(ctx, t.Query, []string{t.Relevant, t.Irrelevant})
		if errors.Is(err, engine.ErrNonFinite) {
			// The engine refuses to answer with NaN or Inf.
			nonFinite += 2
			all = append(all, math.NaN(), math.NaN())
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("self-check: cannot score the %s triple: %w", t.Lang, err)
		}
		rel, irr := r.Scores[0], r.Scores[1]
		for _, v := range r.Scores {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				nonFinite++
			}
		}
		all = append(all, rel, irr)
		if rel > irr {
			right++
		} else {
			wrongLangs = append(wrongLangs, t.Lang)
		}
	}
	n := len(ts)
	finite := Check{Name: "finite scores", Passed: nonFinite == 0,
		Detail: fmt.Sprintf("%d of %d scores are NaN or infinite", nonFinite, len(all))}
	if nonFinite > 0 {
		return []Check{finite}, nil // ranking NaNs says nothing more
	}
	lo, hi := slices.Min(all), slices.Max(all)
	scale := max(1, math.Abs(lo), math.Abs(hi))
	varied := Check{Name: "varied scores", Passed: hi-lo > 1e-4*scale,
		Detail: fmt.Sprintf("scores span %.4g to %.4g over %d pairs", lo, hi, len(all))}
	if !varied.Passed {
		varied.Detail = fmt.Sprintf("every pair scores about %.4g: the model does not look at the text", lo)
		return []Check{finite, varied}, nil
	}
	share := float64(right) / float64(n)
	rank := Check{Name: "relevant first", Passed: share >= healthyShare,
		Detail: fmt.Sprintf("the relevant document ranks first in %d of %d multilingual triples", right, n)}
	switch {
	case share <= invertedShare:
		rank.Name = "inverted"
		rank.Detail = fmt.Sprintf("the irrelevant document ranks first in %d of %d triples: scores look inverted (a flipped classifier sign?)", n-right, n)
	case !rank.Passed:
		rank.Detail += fmt.Sprintf(" (a healthy reranker: at least %d); wrong for %s", int(math.Ceil(healthyShare*float64(n))), strings.Join(wrongLangs, ", "))
	}
	return []Check{finite, varied, rank}, nil
}

func guide(ctx context.Context, s Scorer, g Guide, tol float64) ([]Check, error) {
	r, err := s.Rerank(ctx, g.Query, g.Documents)
	if errors.Is(err, engine.ErrNonFinite) {
		return []Check{{Name: g.Name + " scores", Detail: "the model produced NaN or infinite scores"}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("self-check: cannot score the %s: %w", g.Name, err)
	}
	order := make([]int, len(r.Scores))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case r.Scores[a] > r.Scores[b]:
			return -1
		case r.Scores[a] < r.Scores[b]:
			return 1
		}
		return 0
	})
	worst := 0.0
	for i, v := range r.Scores {
		d := math.Abs(v - g.Scores[i])
		if math.IsNaN(d) {
			d = math.Inf(1)
		}
		worst = max(worst, d)
	}
	return []Check{
		{Name: g.Name + " order", Passed: slices.Equal(order, g.Order),
			Detail: fmt.Sprintf("documents ranked %v, expected %v", order, g.Order)},
		{Name: g.Name + " prompt_tokens", Passed: r.Tokens == g.PromptTokens,
			Detail: fmt.Sprintf("%d tokens, expected %d (a different count means a different tokenizer)", r.Tokens, g.PromptTokens)},
		{Name: g.Name + " scores", Passed: worst <= tol,
			Detail: fmt.Sprintf("scores %s, expected %s within ±%.2g (worst difference %.3g)", fmtScores(r.Scores), fmtScores(g.Scores), tol, worst)},
	}, nil
}

func fmtScores(v []float64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprintf("%.2f", x)
	}
	return strings.Join(s, "/")
}
