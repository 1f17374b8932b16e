package selfcheck

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
)

// Golden files: scores the original implementation (sentence-transformers)
// gives query-document pairs, which `aimind check --golden` compares a
// loaded model with.

// GoldenLine is one line of a golden file: a query, a document and the
// score the original implementation gives the pair.
type GoldenLine struct {
	Query    string   `json:"query"`
	Document string   `json:"document"`
	Score    *float64 `json:"score"`
	line     int
}

// ReadGolden reads a JSON-lines golden file; with scoresOptional lines may
// lack a score (to write this model's scores).
func ReadGolden(path string, scoresOptional bool) ([]GoldenLine, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the golden file: %w", err)
	}
	defer f.Close()
	var out []GoldenLine
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for n := 1; sc.Scan(); n++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		var g GoldenLine
		dec := json.NewDecoder(strings.NewReader(text))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&g); err != nil {
			return nil, fmt.Errorf("%s:%d: not a {query, document, score} line: %w", path, n, err)
		}
		if (g.Score == nil && !scoresOptional) || (g.Score != nil && math.IsNaN(*g.Score)) || g.Query == "" || g.Document == "" {
			return nil, fmt.Errorf("%s:%d: a line needs a query, a document and a numeric score", path, n)
		}
		g.line = n
		out = append(out, g)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("cannot read the golden file: %w", err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no lines", path)
	}
	return out, nil
}

// GoldenReport is how a model's scores compare with a golden file's.
type GoldenReport struct {
	Got              []float64 // raw scores, by line
	RelOver          int       // lines past the relative bound
	N, Queries       int       // lines with a score, distinct queries
	Worst, Sum       float64   // of |difference|
	WorstLine        GoldenLine
	WorstGot         float64
	Agree, PairCount int // document pairs of one query ordered as expected
}

// CompareGolden scores the golden lines, each query's documents in one
// request, and compares them with the expected scores.
func CompareGolden(ctx context.Context, m Scorer, lines []GoldenLine, sigmoid bool, maxRel float64) (*GoldenReport, error) {
	byQuery := map[string][]int{}
	var order []string
	for i, g := range lines {
		if _, ok := byQuery[g.Query]; !ok {
			order = append(order, g.Query)
		}
		byQuery[g.Query] = append(byQuery[g.Query], i)
	}
	rep := &GoldenReport{Queries: len(order), Got: make([]float64, len(lines))}
	for _, q := range order {
		idx := byQuery[q]
		docs := make([]string, len(idx))
		for j, i := range idx {
			docs[j] = lines[i].Document
		}
		res, err := m.Rerank(ctx, q, docs)
		if err != nil {
			return nil, fmt.Errorf("cannot score golden line %d: %w", lines[idx[0]].line, err)
		}
		for j, i := range idx {
			rep.Got[i] = res.Scores[j]
			if lines[i].Score == nil {
				continue
			}
			rep.N++
			got := res.Scores[j]
			if sigmoid {
				got = 1 / (1 + math.Exp(-got))
			}
			d := math.Abs(got - *lines[i].Score)
			if maxRel > 0 && d > maxRel*math.Abs(*lines[i].Score)+maxRel {
				rep.RelOver++
			}
			rep.Sum += d
			if d > rep.Worst || rep.WorstLine.line == 0 {
				rep.Worst, rep.WorstLine, rep.WorstGot = d, lines[i], got
			}
			for k := 0; k < j; k++ {
				if lines[idx[k]].Score == nil {
					continue
				}
				want := *lines[idx[k]].Score - *lines[i].Score
				if want == 0 {
					continue
				}
				rep.PairCount++
				if (res.Scores[k]-res.Scores[j] > 0) == (want > 0) {
					rep.Agree++
				}
			}
		}
	}
	return rep, nil
}

// Print writes the report for a person.
func (r *GoldenReport) Print(out io.Writer, path, kind string) {
	fmt.Fprintf(out, "golden %s: %d lines, %d queries, scores as %s\n", path, r.N, r.Queries, kind)
	fmt.Fprintf(out, "  mean |difference| %.4g, worst %.4g at line %d (expected %.4g, got %.4g; query %q)\n",
		r.Sum/float64(r.N), r.Worst, r.WorstLine.line, *r.WorstLine.Score, r.WorstGot, excerpt(r.WorstLine.Query))
	if r.PairCount > 0 {
		fmt.Fprintf(out, "  document pairs of one query ordered as expected: %d of %d\n", r.Agree, r.PairCount)
	}
}

// WriteScores writes the golden lines with the raw scores got, atomically.
func WriteScores(path string, lines []GoldenLine, got []float64) error {
	var b strings.Builder
	for i, g := range lines {
		line, err := json.Marshal(map[string]any{"query": g.Query, "document": g.Document, "score": got[i]})
		if err != nil {
			return err
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("cannot write the scores: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("cannot write the scores: %w", err)
	}
	return nil
}

func excerpt(s string) string {
	if r := []rune(s); len(r) > 40 {
		return string(r[:40]) + "…"
	}
	return s
}
