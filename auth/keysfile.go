package auth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"syscall"
	"time"
)

// A keys file shares API keys between replicas: the same records the store
// keeps (id, name, prefix, SHA-256 of the key, expiry, models), never a
// plaintext key. Every replica reads it with --keys-file and reloads it when
// its bytes change; one writer (`aimind keys create --to-file`) edits it.
//
//	{"aimind_keys": 1, "keys": [{"id": "…", "name": "…", "prefix": "aimind_…_", "hash": "…", "created": "…"}]}

// KeysFileVersion is the format's version, written as "aimind_keys".
const KeysFileVersion = 1

// KeysFileInterval is how often a replica rereads its keys file. Reading a
// small file is cheap, and rereading (rather than watching for events)
// follows every way the file can change: an in-place write, a rename over
// it, and the symlink swap of a Kubernetes Secret volume.
const KeysFileInterval = 500 * time.Millisecond

// ErrKeysFile marks a keys file that cannot be used.
var ErrKeysFile = errors.New("invalid keys file")

type keysFileDoc struct {
	Version int      `json:"aimind_keys"`
	Keys    []APIKey `json:"keys"`
}

var (
	idPattern   = regexp.MustCompile(`^[0-9a-f]{12}$`)
	hashPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// ParseKeysFile reads a keys file's bytes. Unknown fields are refused, so a
// plaintext key put in by mistake (or a misspelt field) stops the load
// instead of being ignored.
func ParseKeysFile(data []byte) ([]APIKey, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var doc keysFileDoc
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKeysFile, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the JSON object", ErrKeysFile)
	}
	if doc.Version != KeysFileVersion {
		return nil, fmt.Errorf("%w: \"aimind_keys\" is %d, want %d", ErrKeysFile, doc.Version, KeysFileVersion)
	}
	seen := map[string]bool{}
	for i, k := range doc.Keys {
		switch {
		case !idPattern.MatchString(k.ID):
			return nil, fmt.Errorf("%w: key %d: id %q is not 12 hex digits", ErrKeysFile, i, k.ID)
		case seen[k.ID]:
			return nil, fmt.Errorf("%w: key id %s appears twice", ErrKeysFile, k.ID)
		case !hashPattern.MatchString(k.Hash):
			return nil, fmt.Errorf("%w: key %s: hash must be 64 lowercase hex digits (the SHA-256 of the key)", ErrKeysFile, k.ID)
		case k.Prefix != KeyPrefix+"_"+k.ID+"_":
			return nil, fmt.Errorf("%w: key %s: prefix %q does not match its id", ErrKeysFile, k.ID, k.Prefix)
		case !namePattern.MatchString(k.Name):
			return nil, fmt.Errorf("%w: key %s: name %q must be 1-64 letters, digits, spaces, '.', '_' or '-'", ErrKeysFile, k.ID, k.Name)
		case k.LastUsed != nil:
			return nil, fmt.Errorf("%w: key %s: last_used is not kept in a keys file", ErrKeysFile, k.ID)
		}
		seen[k.ID] = true
	}
	return doc.Keys, nil
}

// MarshalKeysFile writes keys in the file's format, sorted by creation.
func MarshalKeysFile(keys []APIKey) []byte {
	keys = slices.Clone(keys)
	slices.SortStableFunc(keys, func(a, b APIKey) int { return a.Created.Compare(b.Created) })
	for i := range keys {
		keys[i].LastUsed = nil
	}
	if keys == nil {
		keys = []APIKey{}
	}
	b, err := json.MarshalIndent(keysFileDoc{Version: KeysFileVersion, Keys: keys}, "", "  ")
	if err != nil {
		panic("BUG: cannot marshal keys: " + err.Error())
	}
	return append(b, '\n')
}

// KeysFile is a keys file as a replica sees it: the last good contents,
// reread every KeysFileInterval by Watch.
type KeysFile struct {
	path string
	log  *slog.Logger

	mu   sync.RWMutex
	byID map[string]APIKey
	sum  [sha256.Size]byte // of the bytes loaded last (good or bad)
}

// OpenKeysFile loads path; a missing or invalid file is an error, so that a
// replica never starts without the keys it was told to use.
func OpenKeysFile(path string, log *slog.Logger) (*KeysFile, error) {
	if log == nil {
		log = slog.Default()
	}
	f := &KeysFile{path: path, log: log}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read keys file: %w", err)
	}
	if err := f.load(data); err != nil {
		return nil, fmt.Errorf("cannot use keys file %s: %w", path, err)
	}
	return f, nil
}

func (f *KeysFile) load(data []byte) error {
	sum := sha256.Sum256(data)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sum = sum
	keys, err := ParseKeysFile(data)
	if err != nil {
		return err
	}
	byID := make(map[string]APIKey, len(keys))
	for _, k := range keys {
		byID[k.ID] = k
	}
	f.byID = byID
	return nil
}

// Reload rereads the file if its bytes changed. A file that cannot be read
// or parsed leaves the last good keys in force (a writer that is not atomic
// must not lock everyone out) and is reported.
func (f *KeysFile) Reload() (changed bool, err error) {
	data, err := os.ReadFile(f.path)
	if err != nil {
		return false, fmt.Errorf("cannot reread keys file: %w", err)
	}
	sum := sha256.Sum256(data)
	f.mu.RLock()
	same := sum == f.sum
	f.mu.RUnlock()
	if same {
		return false, nil
	}
	if err := f.load(data); err != nil {
		return false, fmt.Errorf("cannot use the new keys file %s (the previous keys stay in force): %w", f.path, err)
	}
	return true, nil
}

// Watch rereads the file every interval until ctx ends.
func (f *KeysFile) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	lastErr := "" // a lasting failure (a deleted file) is logged once, not twice a second
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		changed, err := f.Reload()
		if err != nil {
			if err.Error() != lastErr {
				f.log.Error("keys file", "path", f.path, "err", err)
				lastErr = err.Error()
			}
			continue
		}
		lastErr = ""
		if changed {
			f.log.Info("keys file reloaded", "path", f.path, "keys", f.Len())
		}
	}
}

// Get returns the record of key id.
func (f *KeysFile) Get(id string) (APIKey, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	k, ok := f.byID[id]
	return k, ok
}

// Len is the number of keys in force.
func (f *KeysFile) Len() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return len(f.byID)
}

// UpdateKeysFile changes the keys file at path with change (which gets the
// current keys, none when the file does not exist) and replaces the file
// atomically: a temporary file in the same directory, fsynced, renamed over
// path, the directory fsynced. Readers see the old or the new file, never a
// part. An advisory lock (path + ".lock") keeps two writers on one machine
// from losing each other's change; writers on different machines must take
// turns themselves (the single-writer rule).
func UpdateKeysFile(path string, change func([]APIKey) ([]APIKey, error)) error {
	lock, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("cannot lock keys file: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("cannot lock keys file: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)

	var keys []APIKey
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("cannot read keys file: %w", err)
	default:
		if keys, err = ParseKeysFile(data); err != nil {
			return fmt.Errorf("cannot update keys file %s: %w", path, err)
		}
	}
	if keys, err = change(keys); err != nil {
		return err
	}
	return writeFileAtomic(path, MarshalKeysFile(keys), 0o640)
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("cannot write keys file: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing to remove
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("cannot write keys file: %w", err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("cannot write keys file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("cannot write keys file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("cannot write keys file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("cannot replace keys file: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// NewKeyRecord makes a key without a store: its plaintext and the record to
// keep (in a keys file).
func NewKeyRecord(name string, ttl time.Duration, models []string, now time.Time) (string, APIKey, error) {
	if !namePattern.MatchString(name) {
		return "", APIKey{}, fmt.Errorf("cannot create API key: name %q must be 1-64 letters, digits, spaces, '.', '_' or '-'", name)
	}
	if ttl < 0 {
		return "", APIKey{}, errors.New("cannot create API key: expiry must be in the future")
	}
	id := randomHex(6)
	plain := KeyPrefix + "_" + id + "_" + randomHex(32) // 256 bits
	rec := APIKey{ID: id, Name: name, Prefix: KeyPrefix + "_" + id + "_", Hash: hashKey(plain), Created: now.UTC(), Models: models}
	if ttl > 0 {
		exp := rec.Created.Add(ttl)
		rec.Expires = &exp
	}
	return plain, rec, nil
}
