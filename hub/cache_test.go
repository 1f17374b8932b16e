package hub_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aimind/aimind/hub"
	"github.com/aimind/aimind/hub/hubtest"
)

// TestConcurrentDownloadsOfOneFile: two models deploying the same file at
// once both get it; the second waits for the first instead of writing the
// same ".incomplete" file and failing to rename it.
func TestConcurrentDownloadsOfOneFile(t *testing.T) {
	repo := fakeRepo()
	fake := hubtest.New(repo)
	defer fake.Close()
	fake.Delay = 5 * time.Millisecond // the 300 kB file takes a few chunks: the two overlap
	cache := t.TempDir()
	h, err := hub.NewHuggingFace(fake.URL, "", cache, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	l, err := h.List(ctx, repo.ID, "main")
	if err != nil {
		t.Fatal(err)
	}
	f, err := hub.Pick(l.Files, "bge-reranker-v2-m3-Q8_0.gguf", "")
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		path string
		err  error
	}
	results := make(chan result, 2)
	for range 2 {
		go func() {
			p, err := h.Download(ctx, l, f, "main", nil)
			results <- result{p, err}
		}()
	}
	for range 2 {
		r := <-results
		if r.err != nil {
			t.Fatalf("one of two downloads of one file: %v", r.err)
		}
		if b, err := os.ReadFile(r.path); err != nil || !bytes.Equal(b, repo.Files[f.Path]) {
			t.Fatalf("%s: %v", r.path, err)
		}
	}
	if n := fake.Count("cdn"); n != 1 {
		t.Fatalf("the file was fetched %d times, want once", n)
	}
	blob, err := h.BlobPath(repo.ID, f.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(blob + ".incomplete"); !os.IsNotExist(err) || filepath.Dir(blob) != filepath.Join(cache, "models--gpustack--bge-reranker-v2-m3-GGUF", "blobs") {
		t.Fatalf("blob %s, incomplete file: %v", blob, err)
	}
	if _, err := h.BlobPath("../x", f.SHA256); err == nil {
		t.Fatal("BlobPath accepted a hostile repo id")
	}
	if _, err := h.BlobPath(repo.ID, "../../etc"); err == nil {
		t.Fatal("BlobPath accepted a hostile hash")
	}
}
