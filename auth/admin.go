package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/aimind/aimind/store"
)

// Admin sentinel errors.
var (
	ErrBadPassword   = errors.New("wrong password")
	ErrRateLimited   = errors.New("too many failed logins")
	ErrNoSession     = errors.New("not logged in")
	ErrWeakPassword  = errors.New("password too short")
	ErrSamePassword  = errors.New("the new password is the current one")
	ErrNoAdminRecord = errors.New("no admin account")
)

// InitialPasswordFile is written in the data directory on first start.
const InitialPasswordFile = "initial_admin_password"

// SessionTTL is how long a login lasts.
const SessionTTL = 12 * time.Hour

// MinPasswordLen is the shortest password accepted.
const MinPasswordLen = 8

type adminRecord struct {
	Hash       string    `json:"hash"` // argon2id, PHC string
	MustChange bool      `json:"must_change"`
	Updated    time.Time `json:"updated"`
}

type sessionRecord struct {
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
	// Password is the Updated time of the password the login was checked
	// against: a session opened with a password that has changed since
	// (even while the change committed) is not valid.
	Password time.Time `json:"password"`
}

// Admin is the single admin account, its sessions and the login limiter.
type Admin struct {
	st  *store.Store
	dir string
	now func() time.Time

	mu       sync.Mutex
	failures map[string][]time.Time // client address → recent failures
	inflight map[string]int         // client address → logins being checked now
	tracked  int                    // MaxTrackedAddresses (tests lower it)
}

// argonSlots bounds the argon2id computations running at once, process
// wide: each takes 19 MiB, and 256 connections from one address would
// otherwise take about 5 GB.
var argonSlots = make(chan struct{}, 2)

// argonWait is how long a login waits for a slot before it is refused.
const argonWait = 10 * time.Second

// MaxTrackedAddresses bounds the failure table; past it the address whose
// last failure is oldest is forgotten first.
const MaxTrackedAddresses = 100_000

// Login limits: more than MaxFailures failures within FailureWindow from one
// address are answered with ErrRateLimited until the window passes.
const (
	MaxFailures   = 5
	FailureWindow = 10 * time.Minute
)

// NewAdmin manages the admin account in st; dir is the data directory.
func NewAdmin(st *store.Store, dir string) *Admin {
	return &Admin{st: st, dir: dir, now: time.Now, failures: map[string][]time.Time{}, inflight: map[string]int{}, tracked: MaxTrackedAddresses}
}

// argon2id parameters (OWASP's minimum: 19 MiB, 2 passes, 1 lane).
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
)

func hashPassword(pw string) string {
	salt := make([]byte, 16)
	rand.Read(salt)
	key := argon2.IDKey([]byte(pw), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

func verifyPassword(encoded, pw string) bool {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	want, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || m > 1<<20 || t > 10 || p == 0 {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

func randomPassword() string {
	b := make([]byte, 18)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Bootstrap makes the admin account on first start: with password when given,
// else a random one written to <dir>/initial_admin_password (0600). It
// returns the file path when it wrote one.
func (a *Admin) Bootstrap(password string) (string, error) {
	var rec adminRecord
	if err := a.st.Get("admin/account", &rec); err == nil {
		return "", nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	return a.setPassword(password, true)
}

// ResetPassword replaces the password (offline recovery) and forces a change
// at next login; with password empty a random one is written to the file.
func (a *Admin) ResetPassword(password string) (string, error) {
	path, err := a.setPassword(password, true)
	if err != nil {
		return "", err
	}
	// Sessions made with the old password end.
	return path, a.endSessions("")
}

func (a *Admin) setPassword(password string, mustChange bool) (string, error) {
	path := ""
	if password == "" {
		password = randomPassword()
		path = filepath.Join(a.dir, InitialPasswordFile)
		if err := writeSecretFile(path, password+"\n"); err != nil {
			return "", fmt.Errorf("cannot write %s: %w", path, err)
		}
	} else if len(password) < MinPasswordLen {
		return "", fmt.Errorf("%w: use at least %d characters", ErrWeakPassword, MinPasswordLen)
	}
	rec := adminRecord{Hash: hashPassword(password), MustChange: mustChange, Updated: a.now().UTC()}
	if err := a.st.Put("admin/account", rec); err != nil {
		return "", fmt.Errorf("cannot store the admin password: %w", err)
	}
	return path, nil
}

func writeSecretFile(path, content string) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// RetryAfter is returned with ErrRateLimited.
type RetryAfter struct{ Wait time.Duration }

func (r *RetryAfter) Error() string {
	return fmt.Sprintf("%v: try again in %s", ErrRateLimited, r.Wait.Round(time.Second))
}
func (r *RetryAfter) Unwrap() error { return ErrRateLimited }

func (a *Admin) recentFailures(addr string, now time.Time) []time.Time {
	kept := a.failures[addr][:0]
	for _, t := range a.failures[addr] {
		if now.Sub(t) < FailureWindow {
			kept = append(kept, t)
		}
	}
	if len(kept) == 0 {
		delete(a.failures, addr)
		return nil
	}
	a.failures[addr] = kept
	return kept
}

// Login checks the password for a client address and opens a session. It
// returns the session id (for the cookie) and whether the password must be
// changed.
func (a *Admin) Login(addr, password string) (string, bool, error) {
	now := a.now()
	// Failures and attempts still being checked count together, under one
	// lock: parallel attempts cannot slip past the limit while argon2 runs.
	a.mu.Lock()
	f := a.recentFailures(addr, now)
	if len(f)+a.inflight[addr] >= MaxFailures {
		a.mu.Unlock()
		wait := time.Second
		if len(f) > 0 {
			wait = FailureWindow - now.Sub(f[0])
		}
		return "", false, &RetryAfter{Wait: wait}
	}
	a.inflight[addr]++
	a.mu.Unlock()
	ok, checked, err := a.check(password)
	a.mu.Lock()
	if a.inflight[addr]--; a.inflight[addr] <= 0 {
		delete(a.inflight, addr)
	}
	if err == nil && !ok {
		a.failures[addr] = append(a.failures[addr], now)
		a.evict(now)
	}
	if ok {
		delete(a.failures, addr)
	}
	a.mu.Unlock()
	switch {
	case err != nil:
		return "", false, err
	case !ok:
		return "", false, ErrBadPassword
	}
	id, err := a.newSession(now, checked.Updated)
	return id, checked.MustChange, err
}

// check verifies password against the stored hash, holding one of the
// process's argon2 slots.
func (a *Admin) check(password string) (bool, adminRecord, error) {
	var rec adminRecord
	select {
	case argonSlots <- struct{}{}:
	case <-time.After(argonWait):
		return false, rec, &RetryAfter{Wait: time.Second}
	}
	defer func() { <-argonSlots }()
	if err := a.st.Get("admin/account", &rec); err != nil {
		return false, rec, fmt.Errorf("%w: %v", ErrNoAdminRecord, err)
	}
	return verifyPassword(rec.Hash, password), rec, nil
}

// evict keeps the failure table within MaxTrackedAddresses, forgetting the
// addresses whose last failure is oldest. Holds a.mu.
func (a *Admin) evict(now time.Time) {
	for len(a.failures) > a.tracked {
		oldest, when := "", now
		for addr, f := range a.failures {
			if last := f[len(f)-1]; last.Before(when) || oldest == "" {
				oldest, when = addr, last
			}
		}
		delete(a.failures, oldest)
	}
}

func (a *Admin) newSession(now, password time.Time) (string, error) {
	id := randomHex(32)
	s := sessionRecord{Created: now.UTC(), Expires: now.Add(SessionTTL).UTC(), Password: password}
	if err := a.st.Put("session/"+sessionKey(id), s); err != nil {
		return "", fmt.Errorf("cannot store the session: %w", err)
	}
	return id, nil
}

func sessionKey(id string) string {
	h := sha256.Sum256([]byte(id))
	return hex.EncodeToString(h[:])
}

// Session checks a session id; it returns whether the password must still
// be changed.
func (a *Admin) Session(id string) (mustChange bool, err error) {
	if id == "" || len(id) > 128 {
		return false, ErrNoSession
	}
	var s sessionRecord
	if err := a.st.Get("session/"+sessionKey(id), &s); err != nil {
		return false, ErrNoSession
	}
	if !a.now().Before(s.Expires) {
		a.st.Update(func(tx *store.Tx) error { return tx.Delete("session/" + sessionKey(id)) })
		return false, ErrNoSession
	}
	var rec adminRecord
	if err := a.st.Get("admin/account", &rec); err != nil || !s.Password.Equal(rec.Updated) {
		return false, ErrNoSession
	}
	return rec.MustChange, nil
}

// Logout ends a session.
func (a *Admin) Logout(id string) {
	a.st.Update(func(tx *store.Tx) error { return tx.Delete("session/" + sessionKey(id)) })
}

// ChangePassword sets a new password after checking the current one,
// removes the initial password file, and ends every session but keep (the
// one that made the change; "" ends them all).
func (a *Admin) ChangePassword(current, next, keep string) error {
	var rec adminRecord
	if err := a.st.Get("admin/account", &rec); err != nil {
		return fmt.Errorf("%w: %v", ErrNoAdminRecord, err)
	}
	if !verifyPassword(rec.Hash, current) {
		return ErrBadPassword
	}
	if len(next) < MinPasswordLen {
		return fmt.Errorf("%w: use at least %d characters", ErrWeakPassword, MinPasswordLen)
	}
	if next == current {
		return fmt.Errorf("%w: choose a different one", ErrSamePassword)
	}
	if _, err := a.setPassword(next, false); err != nil {
		return err
	}
	os.Remove(filepath.Join(a.dir, InitialPasswordFile))
	return a.endSessions(keep)
}

// endSessions deletes every session record except keep's.
func (a *Admin) endSessions(keep string) error {
	kept := ""
	if keep != "" {
		kept = "session/" + sessionKey(keep)
	}
	return a.st.Update(func(tx *store.Tx) error {
		var rec adminRecord
		if err := tx.Get("admin/account", &rec); err != nil {
			return err
		}
		var ended []string
		var keptSession *sessionRecord
		err := tx.Each("session/", func(key string, decode func(any) error) error {
			if key != kept {
				ended = append(ended, key)
				return nil
			}
			keptSession = &sessionRecord{}
			return decode(keptSession)
		})
		if err != nil {
			return err
		}
		for _, k := range ended {
			if err := tx.Delete(k); err != nil {
				return err
			}
		}
		if keptSession != nil { // the changer's session goes on, under the new password
			keptSession.Password = rec.Updated
			return tx.Put(kept, keptSession)
		}
		return nil
	})
}
