package hub

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"os"
	"strings"
)

// ModelScopeHub speaks ModelScope's public file API.
type ModelScopeHub struct{ *httpBase }

// DefaultModelScopeEndpoint is used when MODELSCOPE_DOMAIN is unset.
const DefaultModelScopeEndpoint = "https://www.modelscope.cn"

// ModelScopeEndpoint is https://$MODELSCOPE_DOMAIN, else the default.
func ModelScopeEndpoint() string {
	if d := os.Getenv("MODELSCOPE_DOMAIN"); d != "" {
		if strings.HasPrefix(d, "http://") || strings.HasPrefix(d, "https://") {
			return d
		}
		return "https://" + d
	}
	return DefaultModelScopeEndpoint
}

// NewModelScope makes a client; files are cached under cache in the same
// layout as Hugging Face's.
func NewModelScope(endpoint, token, cache string, client *http.Client) (*ModelScopeHub, error) {
	b, err := newHTTPBase(endpoint, token, cache, "ModelScope", client)
	if err != nil {
		return nil, err
	}
	return &ModelScopeHub{b}, nil
}

// ErrNoSearch is returned where a hub has no public search API aimind uses.
var ErrNoSearch = errors.New("search is not available for this hub; enter the repo id (owner/name)")

// Search is not offered: ModelScope documents no stable public search API.
func (m *ModelScopeHub) Search(ctx context.Context, q string, gguf bool, limit int) ([]Repo, error) {
	return nil, ErrNoSearch
}

// List reads a repo's files with sizes and sha256.
func (m *ModelScopeHub) List(ctx context.Context, repo, revision string) (Listing, error) {
	if err := ValidRepo(repo); err != nil {
		return Listing{}, err
	}
	if err := ValidRevision(revision); err != nil {
		return Listing{}, err
	}
	var out struct {
		Code int `json:"Code"`
		Data struct {
			Files []struct {
				Name     string `json:"Name"`
				Path     string `json:"Path"`
				Size     int64  `json:"Size"`
				Sha256   string `json:"Sha256"`
				Type     string `json:"Type"`
				Revision string `json:"Revision"`
			} `json:"Files"`
		} `json:"Data"`
	}
	q := url.Values{"Revision": {revision}, "Recursive": {"true"}}
	if err := m.getJSON(ctx, "/api/v1/models/"+repo+"/repo/files", q, &out); err != nil {
		return m.listOrCache(repo, revision, err)
	}
	// ModelScope names no commit for a branch; the revision stands for it.
	l := Listing{Repo: repo, Commit: revision}
	for _, f := range out.Data.Files {
		if f.Type == "tree" || ValidFile(f.Path) != nil {
			continue
		}
		l.Files = append(l.Files, File{Path: f.Path, Size: f.Size, SHA256: strings.ToLower(f.Sha256)})
	}
	return l, nil
}

// Download fetches /api/v1/models/<repo>/repo?Revision=&FilePath=.
func (m *ModelScopeHub) Download(ctx context.Context, l Listing, f File, revision string, progress func(Progress)) (string, error) {
	q := url.Values{"Revision": {revision}, "FilePath": {f.Path}}
	return m.fetch(ctx, l, f, revision, "/api/v1/models/"+l.Repo+"/repo", q, progress)
}

var _ Hub = (*ModelScopeHub)(nil)
