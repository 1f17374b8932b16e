package server

// Cohere v2 (/v2/rerank): results without the guide's model and usage.

type cohereV2Response struct {
	ID      string        `json:"id"`
	Results []guideResult `json:"results"`
	Meta    cohereMeta    `json:"meta"`
}

// cohereV2Answer follows Cohere's v2 reference: documents only when asked.
func cohereV2Answer(req *rerankRequest, docs []doc, results []ranked) cohereV2Response {
	withDocs := req.ReturnDocuments != nil && bool(*req.ReturnDocuments)
	out := cohereV2Response{ID: newID(), Results: make([]guideResult, len(results)), Meta: meta("2", len(docs))}
	for i, r := range results {
		out.Results[i] = guideResultOf(req, docs, r, withDocs)
	}
	return out
}
