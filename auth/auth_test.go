package auth

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aimind/aimind/store"
)

func openStore(t *testing.T) (*store.Store, string) {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, dir
}

// grepDir reports whether any file under dir contains needle.
func grepDir(t *testing.T, dir, needle string) bool {
	t.Helper()
	found := false
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		b, _ := os.ReadFile(p)
		if bytes.Contains(b, []byte(needle)) {
			found = true
		}
		return nil
	})
	return found
}

func TestKeyLifecycle(t *testing.T) {
	st, dir := openStore(t)
	k := NewKeys(st, nil)
	if _, err := k.Authenticate(""); !errors.Is(err, ErrNoKeysYet) {
		t.Fatalf("no keys yet: %v", err)
	}
	plain, rec, err := k.Create("ci", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(plain, "aimind_"+rec.ID+"_") || len(plain) != len("aimind_")+12+1+64 || rec.Prefix != "aimind_"+rec.ID+"_" {
		t.Fatalf("key %q record %+v", plain, rec)
	}
	p, err := k.Authenticate(plain)
	if err != nil || p.ID != rec.ID || p.Allows("any") != nil {
		t.Fatalf("authenticate: %+v %v", p, err)
	}
	secret := plain[len(rec.Prefix):]
	cases := []struct {
		key  string
		want error
	}{
		{"", ErrNoKey},
		{"nonsense", ErrMalformed},
		{"Bearer " + plain, ErrMalformed},
		{plain + "0", ErrMalformed},
		{"aimind_" + rec.ID + "_" + strings.Repeat("0", 64), ErrUnknown},
		{"aimind_000000000000_" + secret, ErrUnknown},
		{strings.ToUpper(plain), ErrMalformed},
	}
	for _, tc := range cases {
		if _, err := k.Authenticate(tc.key); !errors.Is(err, tc.want) {
			t.Errorf("key %q: err %v, want %v", tc.key, err, tc.want)
		}
	}
	list, err := k.List()
	if err != nil || len(list) != 1 || list[0].Hash != "" || list[0].Name != "ci" {
		t.Fatalf("list %+v %v", list, err)
	}
	// Neither the key nor its secret is stored anywhere in the data directory.
	st.Close()
	if grepDir(t, dir, secret) || grepDir(t, dir, plain) {
		t.Fatal("the plaintext secret is in the data directory")
	}
	st2, err := store.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	k = NewKeys(st2, nil)
	if _, err := k.Authenticate(plain); err != nil {
		t.Fatalf("key lost across reopen: %v", err)
	}
	if err := k.Revoke(rec.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Authenticate(plain); !errors.Is(err, ErrUnknown) {
		t.Fatalf("revoked key: %v", err)
	}
	if err := k.Revoke(rec.ID); !errors.Is(err, ErrUnknown) {
		t.Fatalf("second revoke: %v", err)
	}
}

func TestKeyExpiryAndModels(t *testing.T) {
	st, _ := openStore(t)
	k := NewKeys(st, nil)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	k.now = func() time.Time { return now }
	plain, _, err := k.Create("short", time.Hour, []string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := k.Authenticate(plain)
	if err != nil {
		t.Fatal(err)
	}
	if p.Allows("a") != nil || !errors.Is(p.Allows("c"), ErrForbidden) {
		t.Fatal("model restriction not applied")
	}
	now = now.Add(time.Hour)
	if _, err := k.Authenticate(plain); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired key: %v", err)
	}
	for _, bad := range []string{"", "x/y", strings.Repeat("n", 65)} {
		if _, _, err := k.Create(bad, 0, nil); err == nil {
			t.Errorf("name %q accepted", bad)
		}
	}
}

func TestStaticKeys(t *testing.T) {
	st, _ := openStore(t)
	k := NewKeys(st, []string{"my-headless-key"})
	if _, err := k.Authenticate("my-headless-key"); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Authenticate(""); !errors.Is(err, ErrNoKey) {
		t.Fatalf("missing key with a static key configured: %v", err)
	}
	if _, err := k.Authenticate("my-headless-kez"); !errors.Is(err, ErrMalformed) {
		t.Fatalf("near miss: %v", err)
	}
}

func TestAdminLogin(t *testing.T) {
	st, dir := openStore(t)
	a := NewAdmin(st, dir)
	path, err := a.Bootstrap("")
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("password file %v %v", info, err)
	}
	raw, _ := os.ReadFile(path)
	initial := strings.TrimSpace(string(raw))
	// A second start keeps the account.
	if p, err := a.Bootstrap("ignored-password"); err != nil || p != "" {
		t.Fatalf("second bootstrap: %q %v", p, err)
	}
	if _, _, err := a.Login("1.2.3.4", "wrong"); !errors.Is(err, ErrBadPassword) {
		t.Fatalf("wrong password: %v", err)
	}
	id, mustChange, err := a.Login("1.2.3.4", initial)
	if err != nil || !mustChange || len(id) != 64 {
		t.Fatalf("login: %q %v %v", id, mustChange, err)
	}
	if mc, err := a.Session(id); err != nil || !mc {
		t.Fatalf("session: %v %v", mc, err)
	}
	if err := a.ChangePassword(initial, "short", ""); !errors.Is(err, ErrWeakPassword) {
		t.Fatalf("weak: %v", err)
	}
	if err := a.ChangePassword(initial, initial, ""); !errors.Is(err, ErrSamePassword) || strings.Contains(err.Error(), "short") {
		t.Fatalf("same password: %v", err)
	}
	if err := a.ChangePassword("wrong-current", "a-new-password", ""); !errors.Is(err, ErrBadPassword) {
		t.Fatalf("wrong current: %v", err)
	}
	if err := a.ChangePassword(initial, "a-new-password", id); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatal("initial password file left behind")
	}
	if mc, err := a.Session(id); err != nil || mc {
		t.Fatalf("after change: %v %v", mc, err)
	}
	a.Logout(id)
	if _, err := a.Session(id); !errors.Is(err, ErrNoSession) {
		t.Fatalf("after logout: %v", err)
	}
	// Sessions are stored hashed.
	st.Close()
	if grepDir(t, dir, id) || grepDir(t, dir, "a-new-password") {
		t.Fatal("a session id or password is stored in plaintext")
	}
}

func TestLoginRateLimit(t *testing.T) {
	st, dir := openStore(t)
	a := NewAdmin(st, dir)
	a.Bootstrap("correct-horse")
	now := time.Now()
	a.now = func() time.Time { return now }
	for i := 0; i < MaxFailures; i++ {
		if _, _, err := a.Login("9.9.9.9", "guess"); !errors.Is(err, ErrBadPassword) {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	_, _, err := a.Login("9.9.9.9", "correct-horse")
	var ra *RetryAfter
	if !errors.As(err, &ra) || ra.Wait <= 0 || ra.Wait > FailureWindow {
		t.Fatalf("after %d failures: %v", MaxFailures, err)
	}
	// Another address is not affected; the window passing lifts the block.
	if _, _, err := a.Login("8.8.8.8", "correct-horse"); err != nil {
		t.Fatal(err)
	}
	now = now.Add(FailureWindow)
	if _, _, err := a.Login("9.9.9.9", "correct-horse"); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}

func TestSessionExpires(t *testing.T) {
	st, dir := openStore(t)
	a := NewAdmin(st, dir)
	a.Bootstrap("correct-horse")
	now := time.Now()
	a.now = func() time.Time { return now }
	id, _, err := a.Login("1.1.1.1", "correct-horse")
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(SessionTTL)
	if _, err := a.Session(id); !errors.Is(err, ErrNoSession) {
		t.Fatalf("expired session: %v", err)
	}
}

// TestParallelLoginsAreLimited: wrong passwords sent all at once from one
// address are checked at most MaxFailures times; the rest are refused
// before argon2 runs.
func TestParallelLoginsAreLimited(t *testing.T) {
	st, dir := openStore(t)
	a := NewAdmin(st, dir)
	a.Bootstrap("correct-horse")
	const n = 40
	errs := make(chan error, n)
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		go func() {
			<-start
			_, _, err := a.Login("7.7.7.7", "guess")
			errs <- err
		}()
	}
	close(start)
	checked, refused := 0, 0
	for i := 0; i < n; i++ {
		err := <-errs
		var ra *RetryAfter
		switch {
		case errors.Is(err, ErrBadPassword):
			checked++
		case errors.As(err, &ra):
			refused++
		default:
			t.Fatalf("attempt: %v", err)
		}
	}
	if checked > MaxFailures || checked+refused != n {
		t.Fatalf("%d wrong passwords checked, %d refused; the limit is %d", checked, refused, MaxFailures)
	}
}

// TestPasswordChangeEndsOtherSessions: after a change only the session that
// made it stays open.
func TestPasswordChangeEndsOtherSessions(t *testing.T) {
	st, dir := openStore(t)
	a := NewAdmin(st, dir)
	a.Bootstrap("correct-horse")
	mine, _, err := a.Login("1.1.1.1", "correct-horse")
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := a.Login("2.2.2.2", "correct-horse")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.ChangePassword("correct-horse", "battery-staple", mine); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Session(mine); err != nil {
		t.Fatalf("the changing session ended: %v", err)
	}
	if _, err := a.Session(other); !errors.Is(err, ErrNoSession) {
		t.Fatalf("another session survived the change: %v", err)
	}
}

// TestFailureTableEvictsOldest: past the table's bound the address whose
// last failure is oldest is forgotten, not everyone's counts.
func TestFailureTableEvictsOldest(t *testing.T) {
	st, dir := openStore(t)
	a := NewAdmin(st, dir)
	a.Bootstrap("correct-horse")
	a.tracked = 3
	now := time.Now()
	a.now = func() time.Time { return now }
	for _, addr := range []string{"a", "b", "c", "d"} {
		now = now.Add(time.Second)
		a.Login(addr, "guess")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.failures["a"]; ok || len(a.failures) != 3 {
		t.Fatalf("table %v: want a (the oldest) evicted and 3 left", a.failures)
	}
	for _, addr := range []string{"b", "c", "d"} {
		if len(a.failures[addr]) != 1 {
			t.Fatalf("%s lost its count", addr)
		}
	}
}

// TestSessionOfAnOldPasswordIsInvalid: a login checked against the old
// password whose session is stored after the change committed (the race
// between Login and ChangePassword) does not get a valid session.
func TestSessionOfAnOldPasswordIsInvalid(t *testing.T) {
	st, dir := openStore(t)
	a := NewAdmin(st, dir)
	a.Bootstrap("correct-horse")
	var old adminRecord
	if err := st.Get("admin/account", &old); err != nil {
		t.Fatal(err)
	}
	if err := a.ChangePassword("correct-horse", "battery-staple", ""); err != nil {
		t.Fatal(err)
	}
	id, err := a.newSession(time.Now(), old.Updated)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Session(id); !errors.Is(err, ErrNoSession) {
		t.Fatalf("a session checked against the old password is valid: %v", err)
	}
	fresh, _, err := a.Login("1.1.1.1", "battery-staple")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Session(fresh); err != nil {
		t.Fatalf("a new login's session: %v", err)
	}
}
