// Package store is aimind's embedded database: Badger v4 in the data
// directory. Every write is synced, every logical change is one transaction,
// and every record carries a schema version. A store that cannot be opened is
// reported with what to do; it is never wiped.
package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	badger "github.com/dgraph-io/badger/v4"
)

// SchemaVersion is written into every record.
const SchemaVersion = 1

// Sentinel errors.
var (
	ErrNotFound = errors.New("not found")
	ErrLocked   = errors.New("the data directory is in use by another aimind")
	ErrSchema   = errors.New("record written by a newer aimind")
)

// DefaultDir is $XDG_DATA_HOME/aimind, else ~/.local/share/aimind.
func DefaultDir() string {
	if x := os.Getenv("XDG_DATA_HOME"); x != "" {
		return filepath.Join(x, "aimind")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(".", "aimind-data")
	}
	return filepath.Join(home, ".local", "share", "aimind")
}

// Store is an open database.
type Store struct {
	db  *badger.DB
	dir string
}

type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any) {
	b.l.Error(strings.TrimSpace(fmt.Sprintf(f, a...)), "source", "badger")
}
func (b badgerLogger) Warningf(f string, a ...any) {
	b.l.Warn(strings.TrimSpace(fmt.Sprintf(f, a...)), "source", "badger")
}
func (b badgerLogger) Infof(f string, a ...any) {
	b.l.Debug(strings.TrimSpace(fmt.Sprintf(f, a...)), "source", "badger")
}
func (b badgerLogger) Debugf(f string, a ...any) {}

// Open opens (creating if needed) the store in dir/db.
func Open(dir string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.Default()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create data directory %s: %w", dir, err)
	}
	path := filepath.Join(dir, "db")
	opts := badger.DefaultOptions(path).
		WithSyncWrites(true).
		WithLogger(badgerLogger{log}).
		WithNumVersionsToKeep(1).
		WithMemTableSize(8 << 20).
		WithValueLogFileSize(64 << 20).
		WithBlockCacheSize(8 << 20).
		WithIndexCacheSize(4 << 20)
	db, err := badger.Open(opts)
	if err != nil {
		if strings.Contains(err.Error(), "Cannot acquire directory lock") || strings.Contains(err.Error(), "resource temporarily unavailable") {
			return nil, fmt.Errorf("cannot open the store in %s: %w; stop the other aimind (or use another --data-dir)", path, ErrLocked)
		}
		return nil, fmt.Errorf("cannot open the store in %s: %v; aimind does not repair or wipe it: move the directory aside to start fresh, or restore a backup", path, err)
	}
	return &Store{db: db, dir: dir}, nil
}

// Dir is the data directory.
func (s *Store) Dir() string { return s.dir }

// Close flushes and closes the database. It is idempotent.
func (s *Store) Close() error {
	if s == nil || s.db == nil || s.db.IsClosed() {
		return nil
	}
	return s.db.Close()
}

type envelope struct {
	V    int             `json:"v"`
	Data json.RawMessage `json:"data"`
}

// Tx is one transaction: a logical change commits whole or not at all.
type Tx struct{ txn *badger.Txn }

// Get reads key into v; ErrNotFound when absent.
func (t *Tx) Get(key string, v any) error {
	item, err := t.txn.Get([]byte(key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", key, err)
	}
	return item.Value(func(b []byte) error { return decode(key, b, v) })
}

func decode(key string, b []byte, v any) error {
	var e envelope
	if err := json.Unmarshal(b, &e); err != nil {
		return fmt.Errorf("cannot decode %s: %w", key, err)
	}
	if e.V > SchemaVersion {
		return fmt.Errorf("%s: %w (schema %d, this aimind knows %d)", key, ErrSchema, e.V, SchemaVersion)
	}
	return json.Unmarshal(e.Data, v)
}

// Put writes v at key.
func (t *Tx) Put(key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b, _ := json.Marshal(envelope{V: SchemaVersion, Data: data})
	return t.txn.Set([]byte(key), b)
}

// Delete removes key; ErrNotFound when absent.
func (t *Tx) Delete(key string) error {
	if _, err := t.txn.Get([]byte(key)); errors.Is(err, badger.ErrKeyNotFound) {
		return ErrNotFound
	}
	return t.txn.Delete([]byte(key))
}

// Each calls fn with the raw value of every key under prefix, in key order;
// decode with the given function.
func (t *Tx) Each(prefix string, fn func(key string, decode func(v any) error) error) error {
	it := t.txn.NewIterator(badger.DefaultIteratorOptions)
	defer it.Close()
	p := []byte(prefix)
	for it.Seek(p); it.ValidForPrefix(p); it.Next() {
		item := it.Item()
		key := string(item.KeyCopy(nil))
		err := item.Value(func(b []byte) error {
			return fn(key, func(v any) error { return decode(key, b, v) })
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// Update runs fn in one read-write transaction and commits it (synced).
//
// Badger refuses a transaction that read a key another one changed meanwhile
// (ErrConflict): Update runs fn again then, a few times, so that two
// callers touching one record (a key's last use and its revocation) both
// succeed. fn must therefore be safe to run more than once.
func (s *Store) Update(fn func(*Tx) error) error {
	var err error
	for attempt := 0; attempt < 100; attempt++ {
		err = s.db.Update(func(txn *badger.Txn) error { return fn(&Tx{txn}) })
		if !errors.Is(err, badger.ErrConflict) {
			return err
		}
	}
	return err
}

// View runs fn in a read-only transaction.
func (s *Store) View(fn func(*Tx) error) error {
	return s.db.View(func(txn *badger.Txn) error { return fn(&Tx{txn}) })
}

// Get is View + Tx.Get.
func (s *Store) Get(key string, v any) error {
	return s.View(func(t *Tx) error { return t.Get(key, v) })
}

// Put is Update + Tx.Put.
func (s *Store) Put(key string, v any) error {
	return s.Update(func(t *Tx) error { return t.Put(key, v) })
}
