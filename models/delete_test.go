package models_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aimind/aimind/hub"
	"github.com/aimind/aimind/internal/synth"
	"github.com/aimind/aimind/internal/testutil"
	"github.com/aimind/aimind/models"
	"github.com/aimind/aimind/store"
)

// restart ends m and st as the end of the process would, then opens them
// again (the hub online or not) and restores the stored models.
func (e *env) restart(t *testing.T, m *models.Manager, st *store.Store, online bool) (*models.Manager, *store.Store) {
	t.Helper()
	m.Close()
	st.Close()
	m, st = e.manager(t, online)
	t.Cleanup(func() {
		m.Close()
		st.Close()
	})
	if err := m.Restore(); err != nil {
		t.Fatal(err)
	}
	return m, st
}

// mustRerank scores one pair with the running model name.
func mustRerank(t *testing.T, m *models.Manager, name string) {
	t.Helper()
	eng, _, err := m.Resolve(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Rerank(t.Context(), "q", []string{"a"}); err != nil {
		t.Fatal(err)
	}
}

func exists(t *testing.T, path string) bool {
	t.Helper()
	_, err := os.Lstat(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return err == nil
}

// TestDeleteKeepsAFileAnotherModelUses: the same repo and file deployed
// under two names share one blob and one snapshot link; deleting one keeps
// them for the other, which still serves, also after an offline restart;
// deleting the last removes them. A local model pointing into the cache
// counts as a user too.
func TestDeleteKeepsAFileAnotherModelUses(t *testing.T) {
	e := newEnv(t)
	m, st := e.manager(t, true)
	req := models.Request{Source: hub.HuggingFace, Repo: e.repo.ID, File: "bge-reranker-v2-m3-Q8_0.gguf"}
	req.Name = "first"
	if _, err := m.Deploy(req, false); err != nil {
		t.Fatal(err)
	}
	first := waitStatus(t, m, "first", models.StateRunning)
	req.Name = "second"
	if _, err := m.Deploy(req, false); err != nil {
		t.Fatal(err)
	}
	second := waitStatus(t, m, "second", models.StateRunning)
	blob := filepath.Join(e.cache, "models--gpustack--bge-reranker-v2-m3-GGUF", "blobs", first.SHA256)
	if second.Path != first.Path || !exists(t, blob) {
		t.Fatalf("the two models do not share one file: %q %q", first.Path, second.Path)
	}

	d, err := m.Delete("second", true)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Removed) != 0 || !slices.Contains(d.Kept, blob) || !strings.Contains(d.Note, `"first" uses it`) {
		t.Fatalf("delete of the second answered %+v", d)
	}
	if !exists(t, blob) || !exists(t, first.Path) {
		t.Fatal("deleting the second model removed the first one's file")
	}
	mustRerank(t, m, "first")

	// Offline, from the store's records: the first still starts from the cache.
	m, _ = e.restart(t, m, st, false)
	waitStatus(t, m, "first", models.StateRunning)

	// A local model whose path is the cached snapshot keeps the file too.
	if _, err := m.Deploy(models.Request{Path: first.Path, Name: "local-copy"}, false); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, m, "local-copy", models.StateRunning)
	if d, err := m.Delete("first", true); err != nil || len(d.Removed) != 0 || !strings.Contains(d.Note, `"local-copy"`) {
		t.Fatalf("delete of the first while a local model uses its file: %+v %v", d, err)
	}
	if d, err := m.Delete("local-copy", true); err != nil || len(d.Removed) != 0 || !strings.Contains(d.Note, "is kept") {
		t.Fatalf("delete of the local model: %+v %v", d, err)
	}
	if !exists(t, blob) {
		t.Fatal("deleting a local model removed its file")
	}
}

// TestDeleteLastUserRemovesTheFile: with one user left, its delete removes
// the snapshot link and the blob.
func TestDeleteLastUserRemovesTheFile(t *testing.T) {
	e := newEnv(t)
	m, st := e.manager(t, true)
	defer st.Close()
	defer m.Close()
	for _, name := range []string{"a", "b"} {
		if _, err := m.Deploy(models.Request{Source: hub.HuggingFace, Repo: e.repo.ID, Name: name}, false); err != nil {
			t.Fatal(err)
		}
	}
	a := waitStatus(t, m, "a", models.StateRunning)
	waitStatus(t, m, "b", models.StateRunning)
	target, err := filepath.EvalSymlinks(a.Path)
	if err != nil {
		t.Fatal(err)
	}
	if d, err := m.Delete("a", true); err != nil || len(d.Removed) != 0 {
		t.Fatalf("first delete: %+v %v", d, err)
	}
	d, err := m.Delete("b", true)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(d.Removed, a.Path) || !slices.Contains(d.Removed, target) || len(d.Kept) != 0 {
		t.Fatalf("last delete answered %+v", d)
	}
	if exists(t, a.Path) || exists(t, target) {
		t.Fatal("the last delete left the file")
	}
}

// TestDeleteDuringDownloadRemovesIncomplete: a model deleted while its file
// downloads leaves no "<sha256>.incomplete" behind.
func TestDeleteDuringDownloadRemovesIncomplete(t *testing.T) {
	e := newEnv(t)
	e.fake.Delay = 20 * time.Millisecond // 64 KiB per 20 ms
	m, st := e.manager(t, true)
	defer st.Close()
	defer m.Close()
	if _, err := m.Deploy(models.Request{Source: hub.HuggingFace, Repo: e.repo.ID, Quant: "FP16", Name: "m"}, false); err != nil {
		t.Fatal(err)
	}
	var rec models.Record
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		rec, _ = m.Get("m")
		if rec.Status == models.StateDownloading && rec.Progress != nil && rec.Progress.Done > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no progress: %+v", rec)
		}
	}
	part := filepath.Join(e.cache, "models--gpustack--bge-reranker-v2-m3-GGUF", "blobs", rec.SHA256+".incomplete")
	if !exists(t, part) {
		t.Fatalf("no %s while downloading", part)
	}
	d, err := m.Delete("m", true)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(d.Removed, part) || !strings.Contains(d.Note, "unfinished download") {
		t.Fatalf("delete answered %+v", d)
	}
	if exists(t, part) {
		t.Fatal("the unfinished download is still there")
	}
}

// TestDeleteLocalModelKeepsTheFile: aimind never removes a file it did not
// download, and says so.
func TestDeleteLocalModelKeepsTheFile(t *testing.T) {
	e := newEnv(t)
	m, st := e.manager(t, false)
	defer st.Close()
	defer m.Close()
	path := testutil.MustModel(t, synth.Tiny())
	if _, err := m.Deploy(models.Request{Path: path, Name: "local"}, false); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, m, "local", models.StateRunning)
	d, err := m.Delete("local", true)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Removed) != 0 || !slices.Equal(d.Kept, []string{path}) || !strings.Contains(d.Note, path+" is kept") {
		t.Fatalf("delete answered %+v", d)
	}
	if !exists(t, path) {
		t.Fatal("a local file was removed")
	}
}
