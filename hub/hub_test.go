package hub_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aimind/aimind/hub"
	"github.com/aimind/aimind/hub/hubtest"
)

func payload(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ seed
	}
	return b
}

func fakeRepo() *hubtest.Repo {
	return &hubtest.Repo{ID: "gpustack/bge-reranker-v2-m3-GGUF", Downloads: 1000, Likes: 42, Files: map[string][]byte{
		"bge-reranker-v2-m3-Q4_K_M.gguf": payload(1000, 1),
		"bge-reranker-v2-m3-Q8_0.gguf":   payload(300_000, 2),
		"bge-reranker-v2-m3-FP16.gguf":   payload(2000, 3),
		"README.md":                      []byte("# readme"),
	}}
}

func TestQuantTagAndPick(t *testing.T) {
	cases := map[string]string{
		"bge-reranker-v2-m3-Q8_0.gguf": "Q8_0", "x-q4_k_m.gguf": "Q4_K_M", "x.F16.gguf": "F16",
		"x-FP16.gguf": "FP16", "x-BF16.gguf": "BF16", "x-IQ4_XS.gguf": "IQ4_XS", "model.gguf": "", "x-f32.gguf": "F32",
	}
	for name, want := range cases {
		if got := hub.QuantTag(name); got != want {
			t.Errorf("QuantTag(%q) = %q, want %q", name, got, want)
		}
	}
	files := []hub.File{{Path: "a-F32.gguf"}, {Path: "a-F16.gguf"}, {Path: "a-Q4_0.gguf"}, {Path: "a-Q5_K_M.gguf"}, {Path: "notes.txt"}}
	for _, tc := range []struct{ path, quant, want string }{
		{"", "", "a-Q5_K_M.gguf"},
		{"", "q4_0", "a-Q4_0.gguf"},
		{"a-F32.gguf", "", "a-F32.gguf"},
	} {
		f, err := hub.Pick(files, tc.path, tc.quant)
		if err != nil || f.Path != tc.want {
			t.Errorf("Pick(%q, %q) = %v %v, want %s", tc.path, tc.quant, f.Path, err, tc.want)
		}
	}
	if _, err := hub.Pick(files, "", "Q6_K"); err == nil {
		t.Error("missing quantisation accepted")
	}
	if f, _ := hub.Pick([]hub.File{{Path: "b-F16.gguf"}, {Path: "b-F32.gguf"}}, "", ""); f.Path != "b-F16.gguf" {
		t.Errorf("F16 before F32: %s", f.Path)
	}
}

func TestParseSpec(t *testing.T) {
	cases := []struct {
		in   string
		want hub.Spec
		name string
	}{
		{"gpustack/bge-reranker-v2-m3-GGUF", hub.Spec{Source: hub.HuggingFace, Repo: "gpustack/bge-reranker-v2-m3-GGUF", Revision: "main"}, "bge-reranker-v2-m3"},
		{"hf:gpustack/bge-reranker-v2-m3-GGUF:Q4_K_M", hub.Spec{Source: hub.HuggingFace, Repo: "gpustack/bge-reranker-v2-m3-GGUF", Quant: "Q4_K_M", Revision: "main"}, "bge-reranker-v2-m3"},
		{"gpustack/bge-reranker-v2-m3-GGUF/bge-reranker-v2-m3-FP16.gguf", hub.Spec{Source: hub.HuggingFace, Repo: "gpustack/bge-reranker-v2-m3-GGUF", File: "bge-reranker-v2-m3-FP16.gguf", Revision: "main"}, "bge-reranker-v2-m3"},
		{"modelscope:gpustack/bge-reranker-v2-m3-GGUF", hub.Spec{Source: hub.ModelScope, Repo: "gpustack/bge-reranker-v2-m3-GGUF", Revision: "master"}, "bge-reranker-v2-m3"},
	}
	for _, tc := range cases {
		got, err := hub.ParseSpec(tc.in)
		if err != nil || got != tc.want || got.ServedName() != tc.name {
			t.Errorf("ParseSpec(%q) = %+v %v (%s)", tc.in, got, err, got.ServedName())
		}
	}
	for _, bad := range []string{"justaname", "../etc/passwd", "a/..", "owner/../x", "owner/name/../../x.gguf", "owner/name/%2e%2e/x.gguf", "/abs/path", "a/b:Q4;rm"} {
		if _, err := hub.ParseSpec(bad); !errors.Is(err, hub.ErrInvalid) {
			t.Errorf("ParseSpec(%q) accepted: %v", bad, err)
		}
	}
}

func TestValidators(t *testing.T) {
	for _, bad := range []string{"../x.gguf", "a/../../x.gguf", "/etc/passwd", "a//b.gguf", "a\\b.gguf", "", "./a.gguf", "a/./b.gguf"} {
		if hub.ValidFile(bad) == nil {
			t.Errorf("ValidFile(%q) accepted", bad)
		}
	}
	for _, bad := range []string{"..", "main/../x", "/main", "main/", ""} {
		if hub.ValidRevision(bad) == nil {
			t.Errorf("ValidRevision(%q) accepted", bad)
		}
	}
}

func newHF(t *testing.T, h *hubtest.Hub, token string) (*hub.HuggingFaceHub, string) {
	cache := t.TempDir()
	c, err := hub.NewHuggingFace(h.URL, token, cache, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c, cache
}

func TestSearchListDownload(t *testing.T) {
	repo := fakeRepo()
	other := &hubtest.Repo{ID: "someone/not-gguf", Files: map[string][]byte{"model.safetensors": []byte("x")}}
	fake := hubtest.New(repo, other)
	defer fake.Close()
	c, cache := newHF(t, fake, "hf_secret_token")
	ctx := context.Background()
	res, err := c.Search(ctx, "reranker", true, 10)
	if err != nil || len(res) != 1 || res[0].ID != repo.ID || res[0].Downloads != 1000 || res[0].Likes != 42 {
		t.Fatalf("search: %+v %v", res, err)
	}
	l, err := c.List(ctx, repo.ID, "main")
	if err != nil || l.Commit != repo.Commit || len(l.Files) != 4 {
		t.Fatalf("list: %+v %v", l, err)
	}
	f, err := hub.Pick(l.Files, "", "")
	if err != nil || f.Path != "bge-reranker-v2-m3-Q8_0.gguf" || f.Size != 300_000 {
		t.Fatalf("default pick: %+v %v", f, err)
	}
	var last hub.Progress
	path, err := c.Download(ctx, l, f, "main", func(p hub.Progress) { last = p })
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if !bytes.Equal(got, repo.Files[f.Path]) || last.Done != 300_000 || last.Total != 300_000 {
		t.Fatalf("downloaded %d bytes, progress %+v", len(got), last)
	}
	// Hugging Face's cache layout: blob by hash, snapshot link, ref.
	dir := filepath.Join(cache, "models--gpustack--bge-reranker-v2-m3-GGUF")
	if _, err := os.Stat(filepath.Join(dir, "blobs", f.SHA256)); err != nil {
		t.Fatal(err)
	}
	if target, err := os.Readlink(filepath.Join(dir, "snapshots", l.Commit, f.Path)); err != nil || !strings.Contains(target, "blobs/"+f.SHA256) {
		t.Fatalf("snapshot link %q %v", target, err)
	}
	if ref, _ := os.ReadFile(filepath.Join(dir, "refs", "main")); string(ref) != l.Commit {
		t.Fatalf("refs/main = %q", ref)
	}
	if p, ok := c.Cached(repo.ID, l.Commit, f.Path); !ok || p != path {
		t.Fatalf("Cached: %q %v", p, ok)
	}
	// The token reached the API host but never the CDN host the redirect led to.
	if fake.Count("cdn-auth") != 0 {
		t.Fatal("the token was sent across a redirect to another host")
	}
	if len(fake.APITokens) == 0 || fake.APITokens[0] != "Bearer hf_secret_token" {
		t.Fatalf("API tokens %v", fake.APITokens)
	}
	// A second download is served from the cache.
	before := fake.Count("cdn")
	if _, err := c.Download(ctx, l, f, "main", nil); err != nil || fake.Count("cdn") != before {
		t.Fatalf("cached download went to the network: %v", err)
	}
}

func TestResumeAfterCut(t *testing.T) {
	repo := fakeRepo()
	fake := hubtest.New(repo)
	defer fake.Close()
	c, cache := newHF(t, fake, "")
	ctx := context.Background()
	l, _ := c.List(ctx, repo.ID, "main")
	f, _ := hub.Pick(l.Files, "", "Q8_0")
	fake.CutAfter = 100_000
	_, err := c.Download(ctx, l, f, "main", nil)
	if err == nil {
		t.Fatal("a cut stream was accepted")
	}
	part := filepath.Join(cache, "models--gpustack--bge-reranker-v2-m3-GGUF", "blobs", f.SHA256+".incomplete")
	st, err := os.Stat(part)
	if err != nil || st.Size() != 100_000 {
		t.Fatalf("incomplete blob: %v %v", st, err)
	}
	if _, ok := c.Cached(repo.ID, l.Commit, f.Path); ok {
		t.Fatal("a partial file is presented as complete")
	}
	path, err := c.Download(ctx, l, f, "main", nil)
	if err != nil {
		t.Fatal(err)
	}
	if fake.Count("range") != 1 {
		t.Fatalf("resume did not use a Range request (%d)", fake.Count("range"))
	}
	got, _ := os.ReadFile(path)
	if !bytes.Equal(got, repo.Files[f.Path]) {
		t.Fatal("resumed file differs")
	}
}

func TestWrongBytesRefused(t *testing.T) {
	repo := fakeRepo()
	repo.Hashes = map[string]string{"bge-reranker-v2-m3-Q8_0.gguf": strings.Repeat("ab", 32)}
	fake := hubtest.New(repo)
	defer fake.Close()
	c, cache := newHF(t, fake, "")
	ctx := context.Background()
	l, _ := c.List(ctx, repo.ID, "main")
	f, _ := hub.Pick(l.Files, "", "Q8_0")
	if _, err := c.Download(ctx, l, f, "main", nil); !errors.Is(err, hub.ErrHashMismatch) {
		t.Fatalf("wrong bytes: %v", err)
	}
	blobs := filepath.Join(cache, "models--gpustack--bge-reranker-v2-m3-GGUF", "blobs")
	entries, _ := os.ReadDir(blobs)
	if len(entries) != 0 {
		t.Fatalf("files left behind: %v", entries)
	}
}

func TestHostileNamesFromTheHub(t *testing.T) {
	repo := &hubtest.Repo{ID: "evil/repo", Files: map[string][]byte{
		"../../../escape.gguf": payload(10, 1), "/abs.gguf": payload(10, 2), "ok-Q8_0.gguf": payload(10, 3),
	}}
	fake := hubtest.New(repo)
	defer fake.Close()
	c, cache := newHF(t, fake, "")
	l, err := c.List(context.Background(), repo.ID, "main")
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Files) != 1 || l.Files[0].Path != "ok-Q8_0.gguf" {
		t.Fatalf("hostile names listed: %+v", l.Files)
	}
	bad := hub.File{Path: "../../escape.gguf", SHA256: strings.Repeat("0", 64), Size: 10}
	if _, err := c.Download(context.Background(), l, bad, "main", nil); !errors.Is(err, hub.ErrInvalid) {
		t.Fatalf("download of %q: %v", bad.Path, err)
	}
	if _, err := c.Download(context.Background(), hub.Listing{Repo: "evil/repo", Commit: "../../x"}, l.Files[0], "main", nil); !errors.Is(err, hub.ErrInvalid) {
		t.Fatalf("hostile commit: %v", err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(cache), "escape.gguf")); err == nil {
		t.Fatal("a file escaped the cache")
	}
}

func TestModelScope(t *testing.T) {
	repo := fakeRepo()
	fake := hubtest.New(repo)
	defer fake.Close()
	c, err := hub.NewModelScope(fake.URL, "", t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	l, err := c.List(ctx, repo.ID, "master")
	if err != nil || len(l.Files) != 4 {
		t.Fatalf("list %+v %v", l, err)
	}
	f, _ := hub.Pick(l.Files, "", "")
	path, err := c.Download(ctx, l, f, "master", nil)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if !bytes.Equal(got, repo.Files[f.Path]) {
		t.Fatal("ModelScope download differs")
	}
	if _, err := c.Search(ctx, "x", true, 5); !errors.Is(err, hub.ErrNoSearch) {
		t.Fatalf("search: %v", err)
	}
}
