package server_test

import (
	"encoding/json"
	"math"
	"path/filepath"
	"testing"

	"github.com/aimind/aimind/internal/spmref"
	"github.com/aimind/aimind/internal/synth"
	"github.com/aimind/aimind/selfcheck"
	"github.com/aimind/aimind/server"
)

// TestEveryDialectScoresTheSentencePiecePairs: the guide's request through
// each API dialect, on a model with a real SentencePiece vocabulary, gives
// the float64 reference's scores for the pairs laid out from SentencePiece's
// own ids, and the token count those pairs have: every dialect feeds the
// engine the same, correct pairs.
func TestEveryDialectScoresTheSentencePiecePairs(t *testing.T) {
	sp := spmref.Trained(t)
	spec := synth.Tiny()
	spec.Seed = 51
	spec.Custom = sp.Vocab
	path := filepath.Join(t.TempDir(), "spm.gguf")
	if err := synth.Write(path, spec); err != nil {
		t.Fatal(err)
	}
	g := selfcheck.BGEM3Guide
	want, tokens := sp.Scores(t, path, g.Query, g.Documents)
	s := start(t, server.Options{}, map[string]string{"m": path}, nil)
	s.wait(t, "m")

	q, _ := json.Marshal(g.Query)
	docs, _ := json.Marshal(g.Documents)
	objs := make([]map[string]string, len(g.Documents))
	for i, d := range g.Documents {
		objs[i] = map[string]string{"text": d}
	}
	docObjs, _ := json.Marshal(objs)
	type scored struct {
		Index int      `json:"index"`
		Rel   *float64 `json:"relevance_score"`
		Score *float64 `json:"score"`
	}
	cases := []struct {
		name, path, body string
		sigmoid          bool
		parse            func([]byte) ([]scored, int, error)
	}{
		{"guide", "/v1/rerank", `{"model":"m","query":` + string(q) + `,"documents":` + string(docs) + `}`, false,
			func(b []byte) ([]scored, int, error) {
				var r struct {
					Results []scored `json:"results"`
					Usage   struct {
						PromptTokens int `json:"prompt_tokens"`
					} `json:"usage"`
				}
				err := json.Unmarshal(b, &r)
				return r.Results, r.Usage.PromptTokens, err
			}},
		{"jina objects", "/v1/rerank", `{"model":"m","query":` + string(q) + `,"documents":` + string(docObjs) + `}`, false,
			func(b []byte) ([]scored, int, error) {
				var r struct {
					Results []scored `json:"results"`
					Usage   struct {
						TotalTokens int `json:"total_tokens"`
					} `json:"usage"`
				}
				err := json.Unmarshal(b, &r)
				return r.Results, r.Usage.TotalTokens, err
			}},
		{"cohere v2", "/v2/rerank", `{"model":"m","query":` + string(q) + `,"documents":` + string(docs) + `}`, false,
			func(b []byte) ([]scored, int, error) {
				var r struct {
					Results []scored `json:"results"`
				}
				err := json.Unmarshal(b, &r)
				return r.Results, -1, err
			}},
		{"tei", "/rerank", `{"query":` + string(q) + `,"texts":` + string(docs) + `,"raw_scores":true}`, false,
			func(b []byte) ([]scored, int, error) {
				var r []scored
				err := json.Unmarshal(b, &r)
				return r, -1, err
			}},
		{"score", "/v1/score", `{"model":"m","text_1":` + string(q) + `,"text_2":` + string(docs) + `}`, true,
			func(b []byte) ([]scored, int, error) {
				var r struct {
					Data  []scored `json:"data"`
					Usage struct {
						PromptTokens int `json:"prompt_tokens"`
					} `json:"usage"`
				}
				err := json.Unmarshal(b, &r)
				return r.Data, r.Usage.PromptTokens, err
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body, _ := s.do(t, "POST", c.path, c.body)
			if code != 200 {
				t.Fatalf("%d %s", code, body)
			}
			got, n, err := c.parse(body)
			if err != nil || len(got) != len(want) {
				t.Fatalf("cannot read %s: %v", body, err)
			}
			for _, r := range got {
				v := r.Rel
				if v == nil {
					v = r.Score
				}
				if v == nil {
					t.Fatalf("no score in %s", body)
				}
				w := want[r.Index]
				if c.sigmoid {
					w = 1 / (1 + math.Exp(-w))
				}
				if math.Abs(*v-w) > 2e-2+2e-2*math.Abs(w) {
					t.Errorf("document %d: %g, reference %g", r.Index, *v, w)
				}
			}
			if n >= 0 && n != tokens {
				t.Errorf("token count %d, SentencePiece's pairs hold %d", n, tokens)
			}
		})
	}
}
