package models_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/aimind/aimind/engine"
	"github.com/aimind/aimind/hub"
	"github.com/aimind/aimind/models"
	"github.com/aimind/aimind/store"
)

// TestDeleteOfflineRemovesIncomplete: under --offline (hub.Offline) a delete
// still finds the cache's blobs, so an unfinished download of the model's
// file goes with it.
func TestDeleteOfflineRemovesIncomplete(t *testing.T) {
	e := newEnv(t)
	m, st := e.manager(t, true)
	if _, err := m.Deploy(models.Request{Source: hub.HuggingFace, Repo: e.repo.ID, Name: "m"}, false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := m.WaitFor(ctx, "m"); err != nil {
		t.Fatal(err)
	}
	rec, _ := m.Get("m")
	m.Close()
	st.Close()
	// An unfinished download of the same blob, as a re-download cut short
	// leaves it.
	part := filepath.Join(e.cache, "models--gpustack--bge-reranker-v2-m3-GGUF", "blobs", rec.SHA256+".incomplete")
	if err := os.WriteFile(part, []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}

	st, err := store.Open(e.dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	hf, _ := hub.NewHuggingFace("http://127.0.0.1:1", "", e.cache, nil)
	m = models.NewManager(engine.Options{Threads: 1, FlashAttn: true}, st, map[hub.Source]hub.Hub{hub.HuggingFace: hub.Offline(hf)}, nil)
	defer m.Close()
	if err := m.Restore(); err != nil {
		t.Fatal(err)
	}
	d, err := m.Delete("m", true)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(d.Removed, part) || exists(t, part) {
		t.Fatalf("delete under --offline left %s: %+v", part, d)
	}
}
