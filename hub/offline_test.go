package hub_test

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/aimind/aimind/hub"
	"github.com/aimind/aimind/hub/hubtest"
)

// TestOfflineAnswersFromCache downloads through the fake hub, stops the hub,
// and finds the same file again through hub.Offline without the network.
func TestOfflineAnswersFromCache(t *testing.T) {
	repo := fakeRepo()
	fake := hubtest.New(repo)
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
	f, err := hub.Pick(l.Files, "", "")
	if err != nil {
		t.Fatal(err)
	}
	online, err := h.Download(ctx, l, f, "main", nil)
	if err != nil {
		t.Fatal(err)
	}
	fake.Close() // from here on, any request would fail

	off := hub.Offline(h)
	ol, err := off.List(ctx, repo.ID, "main")
	if err != nil {
		t.Fatalf("offline list: %v", err)
	}
	if ol.Commit != l.Commit {
		t.Fatalf("offline commit %q, online %q", ol.Commit, l.Commit)
	}
	of, err := hub.Pick(ol.Files, "", "")
	if err != nil || of.Path != f.Path || of.SHA256 != f.SHA256 || of.Size != f.Size {
		t.Fatalf("offline pick %+v (%v), online %+v", of, err, f)
	}
	p, err := off.Download(ctx, ol, of, "main", nil)
	if err != nil || p != online {
		t.Fatalf("offline download %q (%v), want %q", p, err, online)
	}
	// A file of the repo that was never downloaded, another repo, a search.
	other, err := hub.Pick(l.Files, "", "Q4_K_M")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := off.Download(ctx, ol, other, "main", nil); !errors.Is(err, hub.ErrOffline) {
		t.Fatalf("uncached file: %v, want ErrOffline", err)
	}
	if _, err := off.List(ctx, "someone/else-GGUF", "main"); !errors.Is(err, hub.ErrOffline) {
		t.Fatalf("uncached repo: %v, want ErrOffline", err)
	}
	if _, err := off.Search(ctx, "bge", true, 5); !errors.Is(err, hub.ErrOffline) {
		t.Fatalf("search: %v, want ErrOffline", err)
	}
	if _, err := off.List(ctx, "../../etc", "main"); err == nil {
		t.Fatal("a hostile repo name was accepted")
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
}
