package hub

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Repo is a search result.
type Repo struct {
	ID        string   `json:"id"`
	Downloads int64    `json:"downloads"`
	Likes     int64    `json:"likes"`
	Tags      []string `json:"tags,omitempty"`
}

// Listing is a repo's files at a resolved commit.
type Listing struct {
	Repo   string `json:"repo"`
	Commit string `json:"commit"`
	Files  []File `json:"files"`
	// FromCache: the hub could not be reached and the listing is what the
	// local cache holds (see listOrCache).
	FromCache bool `json:"from_cache,omitempty"`
}

// Progress reports a download.
type Progress struct {
	Done, Total int64
	Rate        float64 // bytes per second
}

// Hub is a model hub.
type Hub interface {
	Search(ctx context.Context, q string, gguf bool, limit int) ([]Repo, error)
	List(ctx context.Context, repo, revision string) (Listing, error)
	// Download fetches file (whose sha256 and size the listing gave) into
	// the cache and returns its path. An unfinished download resumes.
	Download(ctx context.Context, l Listing, f File, revision string, progress func(Progress)) (string, error)
	// Cached returns the path of a file already in the cache, without network.
	Cached(repo, commit, file string) (string, bool)
}

// HTTP is shared by both hubs: the token goes only to the configured host,
// never across a redirect to another.
type httpBase struct {
	base   *url.URL
	token  string
	client *http.Client
	cache  string
	kind   string
}

func newHTTPBase(endpoint, token, cache, kind string, client *http.Client) (*httpBase, error) {
	u, err := url.Parse(strings.TrimRight(endpoint, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("invalid hub endpoint %q", endpoint)
	}
	if client == nil {
		client = &http.Client{Timeout: 0}
	}
	c := *client
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return errors.New("too many redirects")
		}
		if req.URL.Host != u.Host {
			req.Header.Del("Authorization")
		}
		return nil
	}
	return &httpBase{base: u, token: token, client: &c, cache: cache, kind: kind}, nil
}

func (h *httpBase) get(ctx context.Context, path string, q url.Values, hdr http.Header) (*http.Response, error) {
	u := *h.base
	u.Path = strings.TrimRight(u.Path, "/") + path
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", "aimind")
	if h.token != "" {
		req.Header.Set("Authorization", "Bearer "+h.token)
	}
	return h.client.Do(req)
}

func (h *httpBase) getJSON(ctx context.Context, path string, q url.Values, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := h.get(ctx, path, q, nil)
	if err != nil {
		return fmt.Errorf("cannot reach %s: %w", h.kind, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return &StatusError{Hub: h.kind, Status: resp.StatusCode, What: path, Body: strings.TrimSpace(string(b))}
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(v); err != nil {
		return fmt.Errorf("cannot read %s's answer for %s: %w", h.kind, path, err)
	}
	return nil
}

// repoDir is <cache>/models--owner--name, the layout Hugging Face's tools share.
func (h *httpBase) repoDir(repo string) string {
	return filepath.Join(h.cache, "models--"+strings.ReplaceAll(repo, "/", "--"))
}

func (h *httpBase) Cached(repo, commit, file string) (string, bool) {
	if ValidRepo(repo) != nil || ValidRevision(commit) != nil || ValidFile(file) != nil {
		return "", false
	}
	p := filepath.Join(h.repoDir(repo), "snapshots", commit, filepath.FromSlash(file))
	if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
		return p, true
	}
	return "", false
}

// fetch downloads one file into the cache: blobs/<sha256>.incomplete,
// resumed with a Range request, verified, fsynced, renamed to
// blobs/<sha256>, linked from snapshots/<commit>/<file>, and refs/<revision>
// written.
func (h *httpBase) fetch(ctx context.Context, l Listing, f File, revision, urlPath string, q url.Values, progress func(Progress)) (string, error) {
	if err := ValidRepo(l.Repo); err != nil {
		return "", err
	}
	if err := ValidRevision(l.Commit); err != nil {
		return "", err
	}
	if err := ValidRevision(revision); err != nil {
		return "", err
	}
	if err := ValidFile(f.Path); err != nil {
		return "", err
	}
	if err := ValidHash(f.SHA256); err != nil {
		return "", fmt.Errorf("cannot download %s: the hub gave no usable sha256 to verify it: %w", f.Path, err)
	}
	if p, ok := h.Cached(l.Repo, l.Commit, f.Path); ok {
		return p, nil
	}
	dir := h.repoDir(l.Repo)
	blobs := filepath.Join(dir, "blobs")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return "", fmt.Errorf("cannot create cache directory: %w", err)
	}
	blob := filepath.Join(blobs, f.SHA256)
	// Held until the snapshot link is made: another download of this blob
	// waits, then finds it (and its link) complete.
	unlock, err := lockBlob(ctx, blob)
	if err != nil {
		return "", fmt.Errorf("cannot download %s: %w", f.Path, err)
	}
	defer unlock()
	if p, ok := h.Cached(l.Repo, l.Commit, f.Path); ok { // done while this one waited
		return p, nil
	}
	if _, err := os.Stat(blob); err != nil {
		if err := h.download(ctx, blob, f, urlPath, q, progress); err != nil {
			return "", err
		}
	}
	snap := filepath.Join(dir, "snapshots", l.Commit, filepath.FromSlash(f.Path))
	if err := os.MkdirAll(filepath.Dir(snap), 0o755); err != nil {
		return "", err
	}
	rel, err := filepath.Rel(filepath.Dir(snap), blob)
	if err != nil {
		return "", err
	}
	os.Remove(snap)
	if err := os.Symlink(rel, snap); err != nil {
		return "", fmt.Errorf("cannot link %s: %w", snap, err)
	}
	refs := filepath.Join(dir, "refs", filepath.FromSlash(revision))
	if err := os.MkdirAll(filepath.Dir(refs), 0o755); err == nil {
		os.WriteFile(refs, []byte(l.Commit), 0o644)
	}
	return snap, nil
}

// ErrHashMismatch is returned when downloaded bytes do not match the hub's hash.
var ErrHashMismatch = errors.New("downloaded file does not match the hub's sha256")

func (h *httpBase) download(ctx context.Context, blob string, f File, urlPath string, q url.Values, progress func(Progress)) error {
	part := blob + ".incomplete"
	out, err := os.OpenFile(part, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", part, err)
	}
	defer out.Close()
	// Hash what is already there, then resume after it.
	sum := sha256.New()
	have, err := io.Copy(sum, out)
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", part, err)
	}
	if f.Size > 0 && have > f.Size {
		out.Truncate(0)
		out.Seek(0, io.SeekStart)
		sum.Reset()
		have = 0
	}
	if f.Size == 0 || have < f.Size {
		hdr := http.Header{}
		if have > 0 {
			hdr.Set("Range", fmt.Sprintf("bytes=%d-", have))
		}
		resp, err := h.get(ctx, urlPath, q, hdr)
		if err != nil {
			return fmt.Errorf("cannot download %s: %w", f.Path, err)
		}
		defer resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusPartialContent && have > 0:
		case resp.StatusCode == http.StatusOK:
			if have > 0 { // the server ignored Range: start over
				out.Truncate(0)
				out.Seek(0, io.SeekStart)
				sum.Reset()
				have = 0
			}
		default:
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			return fmt.Errorf("cannot download %s: %w", f.Path, &StatusError{Hub: h.kind, Status: resp.StatusCode, What: f.Path, Body: strings.TrimSpace(string(b))})
		}
		if have, err = copyWithProgress(ctx, out, resp.Body, sum, have, f.Size, progress); err != nil {
			return &CutError{File: f.Path, Have: have, Total: f.Size, Err: err}
		}
	}
	if err := out.Sync(); err != nil {
		return fmt.Errorf("cannot sync %s: %w", part, err)
	}
	st, _ := out.Stat()
	if got := hex.EncodeToString(sum.Sum(nil)); got != f.SHA256 || (f.Size > 0 && st.Size() != f.Size) {
		out.Close()
		os.Remove(part) // wrong bytes are not kept for resuming
		return fmt.Errorf("%w: %s has sha256 %s and %d bytes, the hub says %s and %d", ErrHashMismatch, f.Path, got, st.Size(), f.SHA256, f.Size)
	}
	if err := out.Close(); err != nil {
		return err
	}
	if err := os.Rename(part, blob); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(blob)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// copyWithProgress appends r to w and sum and returns the bytes now held.
func copyWithProgress(ctx context.Context, w io.Writer, r io.Reader, sum hash.Hash, have, total int64, progress func(Progress)) (int64, error) {
	buf := make([]byte, 1<<20)
	start, last := time.Now(), time.Time{}
	startHave := have
	for {
		if err := ctx.Err(); err != nil {
			return have, err
		}
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return have, werr
			}
			sum.Write(buf[:n])
			have += int64(n)
			if progress != nil && time.Since(last) > 200*time.Millisecond {
				last = time.Now()
				rate := float64(have-startHave) / time.Since(start).Seconds()
				progress(Progress{Done: have, Total: total, Rate: rate})
			}
		}
		if err == io.EOF {
			if progress != nil {
				progress(Progress{Done: have, Total: total, Rate: float64(have-startHave) / time.Since(start).Seconds()})
			}
			if total > 0 && have < total {
				return have, io.ErrUnexpectedEOF
			}
			return have, nil
		}
		if err != nil {
			return have, err
		}
	}
}

// HuggingFace speaks the Hugging Face Hub API (or a mirror's).
type HuggingFaceHub struct{ *httpBase }

// DefaultHFEndpoint is used when HF_ENDPOINT is unset.
const DefaultHFEndpoint = "https://huggingface.co"

// NewHuggingFace makes a client; cache is the hub cache directory.
func NewHuggingFace(endpoint, token, cache string, client *http.Client) (*HuggingFaceHub, error) {
	b, err := newHTTPBase(endpoint, token, cache, "Hugging Face", client)
	if err != nil {
		return nil, err
	}
	return &HuggingFaceHub{b}, nil
}

// HFCacheDir is $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub.
func HFCacheDir() string {
	if d := os.Getenv("HF_HUB_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("HF_HOME"); d != "" {
		return filepath.Join(d, "hub")
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "huggingface", "hub")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "huggingface", "hub")
}

// HFToken is $HF_TOKEN or the legacy $HUGGING_FACE_HUB_TOKEN.
func HFToken() string {
	if t := os.Getenv("HF_TOKEN"); t != "" {
		return t
	}
	return os.Getenv("HUGGING_FACE_HUB_TOKEN")
}

// Search lists repos matching q, most downloaded first.
func (h *HuggingFaceHub) Search(ctx context.Context, q string, gguf bool, limit int) ([]Repo, error) {
	if limit <= 0 || limit > 100 {
		limit = 20
	}
	v := url.Values{"search": {q}, "sort": {"downloads"}, "direction": {"-1"}, "limit": {fmt.Sprint(limit)}}
	if gguf {
		v.Set("filter", "gguf")
	}
	var out []Repo
	if err := h.getJSON(ctx, "/api/models", v, &out); err != nil {
		return nil, err
	}
	valid := out[:0]
	for _, r := range out {
		if ValidRepo(r.ID) == nil {
			valid = append(valid, r)
		}
	}
	return valid, nil
}

// List reads a repo's files with sizes and LFS sha256 at revision.
func (h *HuggingFaceHub) List(ctx context.Context, repo, revision string) (Listing, error) {
	if err := ValidRepo(repo); err != nil {
		return Listing{}, err
	}
	if err := ValidRevision(revision); err != nil {
		return Listing{}, err
	}
	var info struct {
		ID       string `json:"id"`
		SHA      string `json:"sha"`
		Siblings []struct {
			RFilename string `json:"rfilename"`
			Size      int64  `json:"size"`
			LFS       *struct {
				SHA256 string `json:"sha256"`
				Size   int64  `json:"size"`
			} `json:"lfs"`
		} `json:"siblings"`
	}
	path := "/api/models/" + repo + "/revision/" + url.PathEscape(revision)
	if err := h.getJSON(ctx, path, url.Values{"blobs": {"true"}}, &info); err != nil {
		return h.listOrCache(repo, revision, err)
	}
	if err := ValidRevision(info.SHA); err != nil {
		return Listing{}, fmt.Errorf("Hugging Face gave an unusable commit for %s: %w", repo, err)
	}
	l := Listing{Repo: repo, Commit: info.SHA}
	for _, s := range info.Siblings {
		if ValidFile(s.RFilename) != nil {
			continue // never build paths from names we cannot trust
		}
		f := File{Path: s.RFilename, Size: s.Size}
		if s.LFS != nil {
			f.SHA256, f.Size = strings.ToLower(s.LFS.SHA256), s.LFS.Size
		}
		l.Files = append(l.Files, f)
	}
	return l, nil
}

// Download fetches /<repo>/resolve/<commit>/<file>.
func (h *HuggingFaceHub) Download(ctx context.Context, l Listing, f File, revision string, progress func(Progress)) (string, error) {
	return h.fetch(ctx, l, f, revision, "/"+l.Repo+"/resolve/"+l.Commit+"/"+f.Path, nil, progress)
}

// Header returns the first n bytes of a listed file (at most 16 MiB): from
// the cache when the file is there, else with a Range request to
// /<repo>/resolve/<commit>/<file>. The deploy dialog reads a model's shape
// from them before the download (modelfile.ReadHeaderShape).
func (h *HuggingFaceHub) Header(ctx context.Context, l Listing, f File, n int64) ([]byte, error) {
	n = min(max(n, 1), 16<<20)
	if p, ok := h.Cached(l.Repo, l.Commit, f.Path); ok {
		fh, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		defer fh.Close()
		b, err := io.ReadAll(io.LimitReader(fh, n))
		return b, err
	}
	if ValidRepo(l.Repo) != nil || ValidRevision(l.Commit) != nil || ValidFile(f.Path) != nil {
		return nil, fmt.Errorf("%w: %s %s %s", ErrInvalid, l.Repo, l.Commit, f.Path)
	}
	hdr := http.Header{"Range": {fmt.Sprintf("bytes=0-%d", n-1)}}
	resp, err := h.get(ctx, "/"+l.Repo+"/resolve/"+l.Commit+"/"+f.Path, nil, hdr)
	if err != nil {
		return nil, fmt.Errorf("cannot reach %s: %w", h.kind, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent && resp.StatusCode != http.StatusOK {
		return nil, &StatusError{Hub: h.kind, Status: resp.StatusCode, What: f.Path}
	}
	return io.ReadAll(io.LimitReader(resp.Body, n))
}

var _ Hub = (*HuggingFaceHub)(nil)
