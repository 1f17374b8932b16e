package store_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aimind/aimind/store"
)

type rec struct {
	Name string `json:"name"`
}

func TestRoundTripAndTransactions(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Put("a/1", rec{"one"}); err != nil {
		t.Fatal(err)
	}
	// A failing transaction leaves nothing behind.
	boom := errors.New("boom")
	err = st.Update(func(tx *store.Tx) error {
		tx.Put("a/2", rec{"two"})
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	var r rec
	if err := st.Get("a/2", &r); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("rolled-back write visible: %v", err)
	}
	st.Close()
	st.Close() // idempotent
	st, err = store.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Get("a/1", &r); err != nil || r.Name != "one" {
		t.Fatalf("after reopen: %+v %v", r, err)
	}
	n := 0
	st.View(func(tx *store.Tx) error {
		return tx.Each("a/", func(string, func(any) error) error { n++; return nil })
	})
	if n != 1 {
		t.Fatalf("%d records", n)
	}
}

func TestSecondOpenSaysLocked(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, err = store.Open(dir, nil)
	if !errors.Is(err, store.ErrLocked) || !strings.Contains(err.Error(), "stop the other aimind") {
		t.Fatalf("second open: %v", err)
	}
}

func TestDamagedStoreIsNotWiped(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	st.Put("k", rec{"v"})
	st.Close()
	// Damage the manifest.
	manifest := filepath.Join(dir, "db", "MANIFEST")
	if err := os.WriteFile(manifest, []byte("garbage that is not a manifest"), 0o600); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadDir(filepath.Join(dir, "db"))
	_, err = store.Open(dir, nil)
	if err == nil || !strings.Contains(err.Error(), "does not repair or wipe") {
		t.Fatalf("damaged store: %v", err)
	}
	after, _ := os.ReadDir(filepath.Join(dir, "db"))
	if len(after) < len(before) {
		t.Fatalf("files removed: %d before, %d after", len(before), len(after))
	}
	if b, _ := os.ReadFile(manifest); string(b) != "garbage that is not a manifest" {
		t.Fatal("manifest rewritten")
	}
}

// TestConcurrentUpdatesRetryConflicts: read-modify-write transactions on
// one record from many goroutines all succeed (Badger's ErrConflict is
// retried) and none is lost.
func TestConcurrentUpdatesRetryConflicts(t *testing.T) {
	st, err := store.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Put("counter", 0); err != nil {
		t.Fatal(err)
	}
	const n = 20
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			errs <- st.Update(func(tx *store.Tx) error {
				var c int
				if err := tx.Get("counter", &c); err != nil {
					return err
				}
				return tx.Put("counter", c+1)
			})
		}()
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatalf("update: %v", err)
		}
	}
	var c int
	if err := st.Get("counter", &c); err != nil || c != n {
		t.Fatalf("counter %d (%v), want %d", c, err, n)
	}
}
