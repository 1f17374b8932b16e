// Package auth decides who may do what: API keys for the rerank API, the
// admin password and sessions for the UI and /api/*, and the login rate
// limit. Secrets are random, shown once, and stored only as hashes.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aimind/aimind/store"
)

// KeyPrefix starts every API key aimind makes: aimind_<id>_<secret>.
const KeyPrefix = "aimind"

// Sentinel errors: the first five are 401s, ErrForbidden a 403.
var (
	ErrNoKey     = errors.New("missing API key")
	ErrMalformed = errors.New("malformed API key")
	ErrUnknown   = errors.New("unknown or revoked API key")
	ErrExpired   = errors.New("expired API key")
	ErrNoKeysYet = errors.New("no API key exists yet")
	ErrForbidden = errors.New("this API key may not use the model")
)

// APIKey is what the store keeps of a key: never the secret.
type APIKey struct {
	ID       string     `json:"id"`
	Name     string     `json:"name"`
	Prefix   string     `json:"prefix"` // aimind_<id>_, safe to show
	Hash     string     `json:"hash"`   // hex SHA-256 of the whole key
	Created  time.Time  `json:"created"`
	Expires  *time.Time `json:"expires,omitempty"`
	LastUsed *time.Time `json:"last_used,omitempty"`
	Models   []string   `json:"models,omitempty"` // empty: every model
}

// Keys manages API keys.
type Keys struct {
	st     *store.Store
	static [][sha256.Size]byte // keys given with --api-key / AIMIND_API_KEY
	file   *KeysFile           // keys shared by replicas (--keys-file); nil: none
	now    func() time.Time

	mu       sync.Mutex
	lastSeen map[string]time.Time // when last_used was last written, per id
}

// NewKeys manages the keys in st plus keys given at start.
func NewKeys(st *store.Store, static []string) *Keys {
	k := &Keys{st: st, now: time.Now, lastSeen: map[string]time.Time{}}
	for _, s := range static {
		if s = strings.TrimSpace(s); s != "" {
			k.static = append(k.static, sha256.Sum256([]byte(s)))
		}
	}
	return k
}

// UseFile accepts the keys in f too, beside the stored ones.
func (k *Keys) UseFile(f *KeysFile) { k.file = f }

var (
	keyPattern  = regexp.MustCompile(`^` + KeyPrefix + `_([0-9a-f]{12})_([0-9a-f]{64})$`)
	namePattern = regexp.MustCompile(`^[\p{L}\p{N} ._-]{1,64}$`)
)

func hashKey(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:])
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("BUG: crypto/rand failed: " + err.Error())
	}
	return hex.EncodeToString(b)
}

// Create makes a key and returns its plaintext, which is never stored or
// shown again.
func (k *Keys) Create(name string, ttl time.Duration, models []string) (string, APIKey, error) {
	plain, rec, err := NewKeyRecord(name, ttl, models, k.now())
	if err != nil {
		return "", APIKey{}, err
	}
	id := rec.ID
	err = k.st.Update(func(tx *store.Tx) error {
		var existing APIKey
		if err := tx.Get("apikey/"+id, &existing); err == nil {
			return errors.New("BUG: key id collision")
		}
		return tx.Put("apikey/"+id, rec)
	})
	if err != nil {
		return "", APIKey{}, fmt.Errorf("cannot create API key: %w", err)
	}
	return plain, rec, nil
}

// List returns every stored key, oldest first, without hashes.
func (k *Keys) List() ([]APIKey, error) {
	out, err := k.Records()
	for i := range out {
		out[i].Hash = ""
	}
	return out, err
}

// Records returns every stored key with its hash (for a keys file), oldest
// first.
func (k *Keys) Records() ([]APIKey, error) {
	var out []APIKey
	err := k.st.View(func(tx *store.Tx) error {
		return tx.Each("apikey/", func(_ string, decode func(any) error) error {
			var a APIKey
			if err := decode(&a); err != nil {
				return err
			}
			out = append(out, a)
			return nil
		})
	})
	slices.SortFunc(out, func(a, b APIKey) int { return a.Created.Compare(b.Created) })
	return out, err
}

// Revoke deletes a key; it stops working at once.
func (k *Keys) Revoke(id string) error {
	err := k.st.Update(func(tx *store.Tx) error { return tx.Delete("apikey/" + id) })
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("cannot revoke API key %q: %w", id, ErrUnknown)
	}
	return err
}

// Any reports whether any key (stored or given at start) exists.
func (k *Keys) Any() bool {
	if len(k.static) > 0 || k.file != nil && k.file.Len() > 0 {
		return true
	}
	found := false
	k.st.View(func(tx *store.Tx) error {
		return tx.Each("apikey/", func(string, func(any) error) error { found = true; return errStop })
	})
	return found
}

var errStop = errors.New("stop")

// Principal is an authenticated API key.
type Principal struct {
	ID     string   // empty for keys given at start
	Models []string // empty: every model
}

// Allows reports whether the key may use model.
func (p *Principal) Allows(model string) error {
	if len(p.Models) > 0 && !slices.Contains(p.Models, model) {
		return fmt.Errorf("%w %q", ErrForbidden, model)
	}
	return nil
}

// Authenticate checks key. Stored keys are found by id and their hashes
// compared in constant time; keys given at start are compared the same way.
func (k *Keys) Authenticate(key string) (*Principal, error) {
	if key == "" {
		if !k.Any() {
			return nil, ErrNoKeysYet
		}
		return nil, ErrNoKey
	}
	h := sha256.Sum256([]byte(key))
	for _, s := range k.static {
		if subtle.ConstantTimeCompare(h[:], s[:]) == 1 {
			return &Principal{}, nil
		}
	}
	m := keyPattern.FindStringSubmatch(key)
	if m == nil {
		return nil, ErrMalformed
	}
	var rec APIKey
	stored := true
	if err := k.st.Get("apikey/"+m[1], &rec); errors.Is(err, store.ErrNotFound) {
		var ok bool
		if k.file != nil {
			rec, ok = k.file.Get(m[1])
		}
		if !ok {
			return nil, ErrUnknown
		}
		stored = false
	} else if err != nil {
		return nil, fmt.Errorf("cannot check API key: %w", err)
	}
	want, err := hex.DecodeString(rec.Hash)
	if err != nil || subtle.ConstantTimeCompare(h[:], want) != 1 {
		return nil, ErrUnknown
	}
	now := k.now()
	if rec.Expires != nil && !now.Before(*rec.Expires) {
		return nil, ErrExpired
	}
	if stored { // a keys file is read-only here: its keys keep no last use
		k.touch(rec.ID, now)
	}
	return &Principal{ID: rec.ID, Models: rec.Models}, nil
}

// touch records last use at most once a minute per key, so that a busy key
// does not turn every request into a synced write.
func (k *Keys) touch(id string, now time.Time) {
	k.mu.Lock()
	last, ok := k.lastSeen[id]
	if ok && now.Sub(last) < time.Minute {
		k.mu.Unlock()
		return
	}
	k.lastSeen[id] = now
	k.mu.Unlock()
	go k.st.Update(func(tx *store.Tx) error {
		var rec APIKey
		if err := tx.Get("apikey/"+id, &rec); err != nil {
			return nil // revoked meanwhile
		}
		t := now.UTC()
		rec.LastUsed = &t
		return tx.Put("apikey/"+id, rec)
	})
}
