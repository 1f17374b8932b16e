package server

// Hugging Face TEI (/rerank with "texts"): a bare array of results.

type teiResult struct {
	Index int     `json:"index"`
	Score float64 `json:"score"`
	Text  *string `json:"text,omitempty"`
}

func teiAnswer(req *rerankRequest, docs []doc, results []ranked) []teiResult {
	out := make([]teiResult, len(results))
	for i, r := range results {
		out[i] = teiResult{Index: r.index, Score: r.score}
		if req.ReturnText {
			t := docs[r.index].text
			out[i].Text = &t
		}
	}
	return out
}
