package auth

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// addKey puts a new key into the keys file at path and returns its plaintext.
func addKey(t *testing.T, path, name string, ttl time.Duration) (string, APIKey) {
	t.Helper()
	plain, rec, err := NewKeyRecord(name, ttl, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := UpdateKeysFile(path, func(keys []APIKey) ([]APIKey, error) { return append(keys, rec), nil }); err != nil {
		t.Fatal(err)
	}
	return plain, rec
}

func removeKey(t *testing.T, path, id string) {
	t.Helper()
	err := UpdateKeysFile(path, func(keys []APIKey) ([]APIKey, error) {
		out := keys[:0]
		for _, k := range keys {
			if k.ID != id {
				out = append(out, k)
			}
		}
		return out, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestKeysFileWorksBesideStore(t *testing.T) {
	st, _ := openStore(t)
	path := filepath.Join(t.TempDir(), "keys.json")
	plain, rec := addKey(t, path, "shared", 0)
	if data, _ := os.ReadFile(path); bytes.Contains(data, []byte(plain)) || !bytes.Contains(data, []byte(rec.Hash)) {
		t.Fatalf("the keys file must hold the hash and never the key:\n%s", data)
	}
	kf, err := OpenKeysFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	k := NewKeys(st, nil)
	if _, err := k.Authenticate(plain); !errors.Is(err, ErrUnknown) {
		t.Fatalf("before UseFile: %v, want ErrUnknown", err)
	}
	k.UseFile(kf)
	if p, err := k.Authenticate(plain); err != nil || p.ID != rec.ID {
		t.Fatalf("file key: %v %+v", err, p)
	}
	storedPlain, _, err := k.Create("stored", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Authenticate(storedPlain); err != nil {
		t.Fatalf("stored key beside the file: %v", err)
	}
	// Same id, wrong secret: still refused.
	forged := rec.Prefix + strings.Repeat("0", 64)
	if _, err := k.Authenticate(forged); !errors.Is(err, ErrUnknown) {
		t.Fatalf("forged secret: %v", err)
	}
}

func TestKeysFileExpiryAndModels(t *testing.T) {
	st, _ := openStore(t)
	path := filepath.Join(t.TempDir(), "keys.json")
	plain, rec, err := NewKeyRecord("limited", time.Hour, []string{"a"}, time.Now().Add(-2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	plain2, rec2, _ := NewKeyRecord("model-a", 0, []string{"a"}, time.Now())
	if err := UpdateKeysFile(path, func([]APIKey) ([]APIKey, error) { return []APIKey{rec, rec2}, nil }); err != nil {
		t.Fatal(err)
	}
	kf, err := OpenKeysFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	k := NewKeys(st, nil)
	k.UseFile(kf)
	if _, err := k.Authenticate(plain); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired file key: %v", err)
	}
	p, err := k.Authenticate(plain2)
	if err != nil || p.Allows("a") != nil || !errors.Is(p.Allows("b"), ErrForbidden) {
		t.Fatalf("model-limited file key: %v %+v", err, p)
	}
}

func TestKeysFileReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json")
	plain1, rec1 := addKey(t, path, "one", 0)
	kf, err := OpenKeysFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	plain2, rec2 := addKey(t, path, "two", 0)
	if changed, err := kf.Reload(); err != nil || !changed {
		t.Fatalf("after adding a key: changed %v, %v", changed, err)
	}
	if _, ok := kf.Get(rec2.ID); !ok {
		t.Fatal("the added key is not in force")
	}
	if changed, err := kf.Reload(); err != nil || changed {
		t.Fatalf("unchanged file: changed %v, %v", changed, err)
	}
	removeKey(t, path, rec1.ID)
	kf.Reload()
	if _, ok := kf.Get(rec1.ID); ok {
		t.Fatal("a key removed from the file is still in force")
	}
	// A broken file keeps the last good keys and says why.
	if err := os.WriteFile(path, []byte(`{"aimind_keys": 1, "keys": [`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := kf.Reload(); !errors.Is(err, ErrKeysFile) {
		t.Fatalf("broken file: %v, want ErrKeysFile", err)
	}
	if _, ok := kf.Get(rec2.ID); !ok {
		t.Fatal("a broken file dropped the last good keys")
	}
	if _, err := kf.Reload(); err != nil {
		t.Fatalf("the same broken bytes again should be no news: %v", err)
	}
	_ = plain1
	_ = plain2
}

// TestKeysFileSecretSymlinkSwap lays the file out as a Kubernetes Secret
// volume does (keys.json -> ..data/keys.json, ..data -> ..<timestamp>) and
// updates it the way the kubelet does: a new timestamped directory, then an
// atomic rename of the ..data symlink.
func TestKeysFileSecretSymlinkSwap(t *testing.T) {
	vol := t.TempDir()
	write := func(gen string, keys []APIKey) {
		dir := filepath.Join(vol, "..2026_"+gen)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "keys.json"), MarshalKeysFile(keys), 0o644); err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(vol, "..data_tmp")
		if err := os.Symlink(filepath.Base(dir), tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(vol, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	_, rec1, _ := NewKeyRecord("one", 0, nil, time.Now())
	_, rec2, _ := NewKeyRecord("two", 0, nil, time.Now())
	write("1", []APIKey{rec1})
	if err := os.Symlink("..data/keys.json", filepath.Join(vol, "keys.json")); err != nil {
		t.Fatal(err)
	}
	kf, err := OpenKeysFile(filepath.Join(vol, "keys.json"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); kf.Watch(ctx, 10*time.Millisecond) }()
	defer func() { cancel(); wg.Wait() }()

	write("2", []APIKey{rec2}) // rec1 revoked, rec2 added
	waitFor(t, 2*time.Second, func() bool {
		_, has1 := kf.Get(rec1.ID)
		_, has2 := kf.Get(rec2.ID)
		return !has1 && has2
	})
}

func waitFor(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestUpdateKeysFileIsAtomicAndSerialised(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json")
	const writers = 8
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := 0; i < writers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, rec, err := NewKeyRecord("w", 0, nil, time.Now())
			if err == nil {
				err = UpdateKeysFile(path, func(keys []APIKey) ([]APIKey, error) { return append(keys, rec), nil })
			}
			errs <- err
		}()
	}
	// Readers meanwhile must always see a whole file.
	stop := make(chan struct{})
	readErr := make(chan error, 1)
	go func() {
		defer close(readErr)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if data, err := os.ReadFile(path); err == nil {
				if _, err := ParseKeysFile(data); err != nil {
					readErr <- err
					return
				}
			}
		}
	}()
	wg.Wait()
	close(stop)
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := <-readErr; err != nil {
		t.Fatalf("a reader saw a partial file: %v", err)
	}
	data, _ := os.ReadFile(path)
	keys, err := ParseKeysFile(data)
	if err != nil || len(keys) != writers {
		t.Fatalf("%d keys after %d writers (%v): an update was lost", len(keys), writers, err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v, want 0640", st.Mode().Perm())
	}
	matches, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".keys.json.tmp-*"))
	if len(matches) > 0 {
		t.Fatalf("temporary files left: %v", matches)
	}
}

func TestParseKeysFileRefuses(t *testing.T) {
	_, good, _ := NewKeyRecord("good", 0, nil, time.Now())
	valid := string(MarshalKeysFile([]APIKey{good}))
	cases := map[string]string{
		"not json":          `keys`,
		"wrong version":     `{"aimind_keys": 2, "keys": []}`,
		"no version":        `{"keys": []}`,
		"plaintext key":     strings.Replace(valid, `"hash"`, `"key": "aimind_x", "hash"`, 1),
		"short hash":        strings.Replace(valid, good.Hash, good.Hash[:10], 1),
		"upper-case hash":   strings.Replace(valid, good.Hash, strings.ToUpper(good.Hash), 1),
		"bad id":            strings.ReplaceAll(valid, good.ID, "../../etc/pw"),
		"prefix mismatch":   strings.Replace(valid, good.Prefix, "aimind_000000000000_", 1),
		"duplicate id":      `{"aimind_keys": 1, "keys": [` + mustRecord(good) + `,` + mustRecord(good) + `]}`,
		"trailing document": valid + `{}`,
	}
	if _, err := ParseKeysFile([]byte(valid)); err != nil {
		t.Fatalf("valid file refused: %v", err)
	}
	for name, data := range cases {
		if _, err := ParseKeysFile([]byte(data)); !errors.Is(err, ErrKeysFile) {
			t.Errorf("%s: %v, want ErrKeysFile", name, err)
		}
	}
}

func mustRecord(k APIKey) string {
	s := string(MarshalKeysFile([]APIKey{k}))
	start := strings.Index(s, "[")
	end := strings.LastIndex(s, "]")
	return s[start+1 : end]
}

func TestOpenKeysFileMissing(t *testing.T) {
	if _, err := OpenKeysFile(filepath.Join(t.TempDir(), "none.json"), nil); err == nil || !strings.Contains(err.Error(), "cannot read keys file") {
		t.Fatalf("missing file: %v", err)
	}
}

func FuzzParseKeysFile(f *testing.F) {
	_, good, _ := NewKeyRecord("good", time.Hour, []string{"m"}, time.Now())
	f.Add(MarshalKeysFile([]APIKey{good}))
	f.Add([]byte(`{"aimind_keys": 1, "keys": null}`))
	f.Add([]byte(`{"aimind_keys": 1, "keys": [{}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, err := ParseKeysFile(data)
		if err != nil {
			return
		}
		// Whatever parses survives a round trip unchanged in meaning.
		again, err := ParseKeysFile(MarshalKeysFile(keys))
		if err != nil || len(again) != len(keys) {
			t.Fatalf("round trip: %v, %d keys, want %d", err, len(again), len(keys))
		}
	})
}
