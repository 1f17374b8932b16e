// Package hubtest is a fake Hugging Face Hub and ModelScope for tests. It
// speaks the documented paths, headers and JSON (Hugging Face Hub HTTP API:
// /api/models search, /api/models/{repo}/revision/{rev}?blobs=true,
// /{repo}/resolve/{rev}/{file} answered with a redirect to a CDN on another
// host carrying X-Repo-Commit, X-Linked-Etag and X-Linked-Size; ModelScope:
// /api/v1/models/{repo}/repo/files and /api/v1/models/{repo}/repo?FilePath=),
// because the real hubs cannot be reached here.
package hubtest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// Repo is one fake repository.
type Repo struct {
	ID        string
	Commit    string
	Downloads int64
	Likes     int64
	Files     map[string][]byte // path → content
	// Hashes overrides the sha256 a listing reports (to serve wrong bytes).
	Hashes map[string]string
}

// Hub is a running fake: Hugging Face API at URL, its CDN at CDNURL (another
// host name), ModelScope API at URL too (under /api/v1).
type Hub struct {
	URL, CDNURL string

	mu    sync.Mutex
	repos map[string]*Repo
	// CutAfter, when > 0, makes the next CDN response stop after that many
	// bytes (once).
	CutAfter int64
	// Delay slows every CDN chunk of 64 KiB (to observe progress).
	Delay time.Duration
	// Seen records requests: "cdn-auth" when the CDN got an Authorization header.
	Seen map[string]int
	// Tokens seen by the API host.
	APITokens []string

	api, cdn *httptest.Server
}

// New starts a fake hub with the given repos.
func New(repos ...*Repo) *Hub {
	h := &Hub{repos: map[string]*Repo{}, Seen: map[string]int{}}
	for _, r := range repos {
		h.Add(r)
	}
	h.cdn = httptest.NewUnstartedServer(http.HandlerFunc(h.serveCDN))
	h.cdn.Start()
	// The CDN is reached by another host name than the API. Both URLs are
	// set before the API serves: its handler reads CDNURL, and a client in
	// another process gives the race detector no ordering to see.
	_, port, _ := net.SplitHostPort(h.cdn.Listener.Addr().String())
	h.CDNURL = "http://localhost:" + port
	h.api = httptest.NewUnstartedServer(http.HandlerFunc(h.serveAPI))
	h.URL = "http://" + h.api.Listener.Addr().String()
	h.api.Start()
	return h
}

// Close stops both servers.
func (h *Hub) Close() {
	h.api.Close()
	h.cdn.Close()
}

// Add adds or replaces a repo.
func (h *Hub) Add(r *Repo) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if r.Commit == "" {
		sum := sha256.Sum256([]byte(r.ID))
		r.Commit = hex.EncodeToString(sum[:20])
	}
	h.repos[r.ID] = r
}

func (h *Hub) count(k string) {
	h.mu.Lock()
	h.Seen[k]++
	h.mu.Unlock()
}

// Count returns how often k was seen.
func (h *Hub) Count(k string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.Seen[k]
}

func shaOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func (r *Repo) hash(path string) string {
	if h, ok := r.Hashes[path]; ok {
		return h
	}
	return shaOf(r.Files[path])
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func (h *Hub) serveAPI(w http.ResponseWriter, r *http.Request) {
	if a := r.Header.Get("Authorization"); a != "" {
		h.mu.Lock()
		h.APITokens = append(h.APITokens, a)
		h.mu.Unlock()
	}
	p := r.URL.Path
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case p == "/api/models":
		q := strings.ToLower(r.URL.Query().Get("search"))
		out := []map[string]any{}
		for _, repo := range h.repos {
			if !strings.Contains(strings.ToLower(repo.ID), q) {
				continue
			}
			tags := []string{"text-classification"}
			hasGGUF := false
			for f := range repo.Files {
				hasGGUF = hasGGUF || strings.HasSuffix(f, ".gguf")
			}
			if hasGGUF {
				tags = append(tags, "gguf")
			}
			if r.URL.Query().Get("filter") == "gguf" && !hasGGUF {
				continue
			}
			out = append(out, map[string]any{"id": repo.ID, "modelId": repo.ID, "downloads": repo.Downloads, "likes": repo.Likes, "tags": tags, "pipeline_tag": "text-classification"})
		}
		writeJSON(w, out)
	case strings.HasPrefix(p, "/api/models/") && strings.Contains(p, "/revision/"):
		rest := strings.TrimPrefix(p, "/api/models/")
		id := rest[:strings.Index(rest, "/revision/")]
		repo, ok := h.repos[id]
		if !ok {
			http.Error(w, `{"error":"Repository not found"}`, http.StatusNotFound)
			return
		}
		sib := []map[string]any{}
		for path, b := range repo.Files {
			sib = append(sib, map[string]any{"rfilename": path, "size": len(b), "blobId": shaOf(b)[:40],
				"lfs": map[string]any{"sha256": repo.hash(path), "size": len(b), "pointerSize": 135}})
		}
		writeJSON(w, map[string]any{"id": id, "modelId": id, "sha": repo.Commit, "siblings": sib, "tags": []string{"gguf"}})
	case strings.HasPrefix(p, "/api/v1/models/"):
		h.serveModelScope(w, r, strings.TrimPrefix(p, "/api/v1/models/"))
	case strings.Contains(p, "/resolve/"):
		parts := strings.SplitN(strings.TrimPrefix(p, "/"), "/", 5) // owner name resolve rev file
		if len(parts) != 5 {
			http.NotFound(w, r)
			return
		}
		repo, ok := h.repos[parts[0]+"/"+parts[1]]
		if !ok {
			http.NotFound(w, r)
			return
		}
		b, ok := repo.Files[parts[4]]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("X-Repo-Commit", repo.Commit)
		w.Header().Set("X-Linked-Etag", `"`+repo.hash(parts[4])+`"`)
		w.Header().Set("X-Linked-Size", fmt.Sprint(len(b)))
		http.Redirect(w, r, h.CDNURL+"/cdn/"+parts[0]+"/"+parts[1]+"/"+parts[4], http.StatusFound)
	default:
		http.NotFound(w, r)
	}
}

func (h *Hub) serveModelScope(w http.ResponseWriter, r *http.Request, rest string) {
	switch {
	case strings.HasSuffix(rest, "/repo/files"):
		id := strings.TrimSuffix(rest, "/repo/files")
		repo, ok := h.repos[id]
		if !ok {
			writeJSON(w, map[string]any{"Code": 10010101004, "Message": "model not found"})
			return
		}
		files := []map[string]any{}
		for path, b := range repo.Files {
			files = append(files, map[string]any{"Name": path[strings.LastIndex(path, "/")+1:], "Path": path, "Size": len(b), "Sha256": repo.hash(path), "Type": "blob", "Revision": repo.Commit})
		}
		writeJSON(w, map[string]any{"Code": 200, "Data": map[string]any{"Files": files}, "Success": true})
	case strings.HasSuffix(rest, "/repo"):
		id := strings.TrimSuffix(rest, "/repo")
		repo, ok := h.repos[id]
		if !ok {
			http.NotFound(w, r)
			return
		}
		b, ok := repo.Files[r.URL.Query().Get("FilePath")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h.mu.Unlock()
		h.serveBytes(w, r, b)
		h.mu.Lock()
	default:
		http.NotFound(w, r)
	}
}

func (h *Hub) serveCDN(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "" {
		h.count("cdn-auth")
	}
	h.count("cdn")
	parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/cdn/"), "/", 3)
	h.mu.Lock()
	repo, ok := h.repos[parts[0]+"/"+parts[1]]
	var b []byte
	if ok && len(parts) == 3 {
		b, ok = repo.Files[parts[2]]
	}
	h.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	h.serveBytes(w, r, b)
}

// serveBytes answers with Range support, honouring CutAfter and Delay.
func (h *Hub) serveBytes(w http.ResponseWriter, r *http.Request, b []byte) {
	h.mu.Lock()
	cut, delay := h.CutAfter, h.Delay
	h.CutAfter = 0
	h.mu.Unlock()
	if r.Header.Get("Range") != "" {
		h.count("range")
	}
	start := int64(0)
	if rg := r.Header.Get("Range"); rg != "" {
		fmt.Sscanf(rg, "bytes=%d-", &start)
		if start > int64(len(b)) {
			start = int64(len(b))
		}
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(b)-1, len(b)))
		w.Header().Set("Content-Length", fmt.Sprint(int64(len(b))-start))
		w.WriteHeader(http.StatusPartialContent)
	} else {
		w.Header().Set("Content-Length", fmt.Sprint(len(b)))
		w.WriteHeader(http.StatusOK)
	}
	body := b[start:]
	if cut > 0 && cut < int64(len(body)) {
		body = body[:cut]
	}
	rd := bytes.NewReader(body)
	buf := make([]byte, 64<<10)
	for {
		n, err := rd.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			if f, ok := w.(http.Flusher); ok {
				f.Flush()
			}
			if delay > 0 {
				time.Sleep(delay)
			}
		}
		if err != nil {
			break
		}
	}
	if cut > 0 {
		// Drop the connection so the client sees a short body.
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
			}
		}
	}
}
