package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aimind/aimind/auth"
	"github.com/aimind/aimind/internal/synth"
	"github.com/aimind/aimind/internal/testutil"
	"github.com/aimind/aimind/server"
	"github.com/aimind/aimind/store"
)

type authServer struct {
	*testServer
	keys  *auth.Keys
	admin *auth.Admin
}

func startWithAuth(t *testing.T) *authServer {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	keys := auth.NewKeys(st, nil)
	admin := auth.NewAdmin(st, dir)
	if _, err := admin.Bootstrap("initial-password"); err != nil {
		t.Fatal(err)
	}
	s := start(t, server.Options{Keys: keys, Admin: admin}, map[string]string{
		"tiny": testutil.MustModel(t, synth.Tiny()), "other": testutil.MustModel(t, shapesSlow),
	}, nil)
	s.wait(t, "tiny", "other")
	return &authServer{testServer: s, keys: keys, admin: admin}
}

func (s *authServer) req(t *testing.T, method, path, body string, hdr map[string]string) (int, string, http.Header) {
	t.Helper()
	r, _ := http.NewRequest(method, s.url+path, strings.NewReader(body))
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, b.String(), resp.Header
}

// TestAPIKeyStatuses: each kind of bad key gets its status with a JSON
// error, never a 500; revocation works at once.
func TestAPIKeyStatuses(t *testing.T) {
	s := startWithAuth(t)
	body := `{"model":"tiny","query":"q","documents":["a"]}`
	code, msg, _ := s.req(t, "POST", "/v1/rerank", body, nil)
	if code != 401 || !strings.Contains(msg, "aimind keys create") {
		t.Fatalf("no keys yet: %d %s", code, msg)
	}
	good, rec, _ := s.keys.Create("good", 0, nil)
	limited, _, _ := s.keys.Create("limited", 0, []string{"other"})
	expired, _, _ := s.keys.Create("short", time.Millisecond, nil)
	time.Sleep(5 * time.Millisecond)
	cases := []struct {
		name   string
		hdr    map[string]string
		status int
		typ    string
	}{
		{"missing", nil, 401, "authentication_error"},
		{"malformed", map[string]string{"Authorization": "Bearer not-a-key"}, 401, "authentication_error"},
		{"wrong scheme", map[string]string{"Authorization": "Basic " + good}, 401, "authentication_error"},
		{"unknown", map[string]string{"Authorization": "Bearer aimind_0123456789ab_" + strings.Repeat("a", 64)}, 401, "authentication_error"},
		{"expired", map[string]string{"Authorization": "Bearer " + expired}, 401, "authentication_error"},
		{"wrong model", map[string]string{"Authorization": "Bearer " + limited}, 403, "permission_error"},
		{"good bearer", map[string]string{"Authorization": "Bearer " + good}, 200, ""},
		{"good x-api-key", map[string]string{"X-Api-Key": good}, 200, ""},
		{"huge header", map[string]string{"Authorization": "Bearer " + strings.Repeat("x", 8000)}, 401, "authentication_error"},
	}
	for _, tc := range cases {
		code, msg, hdr := s.req(t, "POST", "/v1/rerank", body, tc.hdr)
		if code != tc.status {
			t.Errorf("%s: %d %s", tc.name, code, msg)
			continue
		}
		if tc.typ != "" && (!strings.Contains(msg, tc.typ) || !strings.HasPrefix(hdr.Get("Content-Type"), "application/json")) {
			t.Errorf("%s: %s", tc.name, msg)
		}
	}
	// The limited key works on its own model; public routes need no key.
	if code, msg, _ := s.req(t, "POST", "/v1/rerank", `{"model":"other","query":"q","documents":["a"]}`, map[string]string{"Authorization": "Bearer " + limited}); code != 200 {
		t.Errorf("limited key on its model: %d %s", code, msg)
	}
	if code, _, _ := s.req(t, "GET", "/health", "", nil); code != 200 {
		t.Errorf("/health needs no key: %d", code)
	}
	// Revocation takes effect at once.
	s.keys.Revoke(rec.ID)
	if code, _, _ := s.req(t, "POST", "/v1/rerank", body, map[string]string{"Authorization": "Bearer " + good}); code != 401 {
		t.Errorf("revoked key: %d", code)
	}
}

func login(t *testing.T, s *authServer, password string) (string, *http.Cookie) {
	t.Helper()
	r, _ := http.NewRequest("POST", s.url+"/api/login", strings.NewReader(`{"password":"`+password+`"}`))
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == server.SessionCookie {
			return resp.Status, c
		}
	}
	return resp.Status, nil
}

func TestAdminSessionAndCSRF(t *testing.T) {
	s := startWithAuth(t)
	status, c := login(t, s, "initial-password")
	if c == nil {
		t.Fatalf("login: %s", status)
	}
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.MaxAge <= 0 || c.Secure {
		t.Fatalf("cookie attributes %+v", c)
	}
	cookie := map[string]string{"Cookie": server.SessionCookie + "=" + c.Value}
	// The first password must be changed before anything else.
	if code, msg, _ := s.req(t, "GET", "/api/keys", "", cookie); code != 403 || !strings.Contains(msg, "password") {
		t.Fatalf("before change: %d %s", code, msg)
	}
	if code, msg, _ := s.req(t, "POST", "/api/password", `{"current_password":"initial-password","new_password":"better-password"}`, cookie); code != 200 {
		t.Fatalf("change: %d %s", code, msg)
	}
	// Same-origin requests work.
	code, msg, _ := s.req(t, "POST", "/api/keys", `{"name":"ui","expires_in":"30d"}`, cookie)
	if code != 201 {
		t.Fatalf("create: %d %s", code, msg)
	}
	var created struct {
		Key  string `json:"key"`
		Data struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(msg), &created); err != nil {
		t.Fatalf("%s: %v", msg, err)
	}
	if code, _, _ := s.req(t, "POST", "/v1/rerank", `{"model":"tiny","query":"q","documents":["a"]}`, map[string]string{"Authorization": "Bearer " + created.Key}); code != 200 {
		t.Fatalf("new key refused: %d", code)
	}
	code, msg, _ = s.req(t, "GET", "/api/keys", "", cookie)
	if code != 200 || strings.Contains(msg, created.Key) || strings.Contains(msg, "hash") {
		t.Fatalf("list: %d %s", code, msg)
	}
	// Cross-site state changes with a valid cookie are refused.
	for _, h := range []map[string]string{
		{"Origin": "https://evil.example"},
		{"Sec-Fetch-Site": "cross-site"},
		{"Sec-Fetch-Site": "same-site"},
	} {
		for k, v := range cookie {
			h[k] = v
		}
		if code, msg, _ := s.req(t, "POST", "/api/keys", `{"name":"csrf"}`, h); code != 403 {
			t.Errorf("cross-site %v: %d %s", h, code, msg)
		}
		if code, _, _ := s.req(t, "DELETE", "/api/keys/"+created.Data.ID, "", h); code != 403 {
			t.Errorf("cross-site delete %v: %d", h, code)
		}
		if code, _, _ := s.req(t, "POST", "/api/login", `{"password":"better-password"}`, h); code != 403 {
			t.Errorf("cross-site login %v: %d", h, code)
		}
	}
	// The playground rerank runs on the session, not a key.
	if code, msg, _ := s.req(t, "POST", "/api/rerank", `{"model":"tiny","query":"q","documents":["a","b"]}`, cookie); code != 200 || !strings.Contains(msg, "relevance_score") {
		t.Fatalf("playground: %d %s", code, msg)
	}
	if code, _, _ := s.req(t, "POST", "/api/rerank", `{"model":"tiny","query":"q","documents":["a"]}`, nil); code != 401 {
		t.Fatalf("playground without session: %d", code)
	}
	// Revoke through the API, then log out.
	if code, _, _ := s.req(t, "DELETE", "/api/keys/"+created.Data.ID, "", cookie); code != 200 {
		t.Fatalf("revoke: %d", code)
	}
	if code, _, _ := s.req(t, "POST", "/v1/rerank", `{"model":"tiny","query":"q","documents":["a"]}`, map[string]string{"Authorization": "Bearer " + created.Key}); code != 401 {
		t.Fatalf("revoked key: %d", code)
	}
	if code, _, _ := s.req(t, "POST", "/api/logout", "", cookie); code != 200 {
		t.Fatalf("logout: %d", code)
	}
	if code, _, _ := s.req(t, "GET", "/api/keys", "", cookie); code != 401 {
		t.Fatalf("after logout: %d", code)
	}
}

func TestBruteForceLoginIsLimited(t *testing.T) {
	s := startWithAuth(t)
	var last int
	var hdr http.Header
	for i := 0; i < auth.MaxFailures+1; i++ {
		last, _, hdr = s.req(t, "POST", "/api/login", `{"password":"guess"}`, nil)
	}
	if last != 429 || hdr.Get("Retry-After") == "" {
		t.Fatalf("after %d failures: %d, Retry-After %q", auth.MaxFailures+1, last, hdr.Get("Retry-After"))
	}
	// Even the right password waits out the window.
	if code, _, _ := s.req(t, "POST", "/api/login", `{"password":"initial-password"}`, nil); code != 429 {
		t.Fatalf("right password during the block: %d", code)
	}
}

// TestModelsListNeedsKeyAndIsScoped: /v1/models answers 401 without a key
// and lists only the models a key may use; /ready needs no key.
func TestModelsListNeedsKeyAndIsScoped(t *testing.T) {
	s := startWithAuth(t)
	all, _, _ := s.keys.Create("all", 0, nil)
	limited, _, _ := s.keys.Create("limited", 0, []string{"other"})
	if code, msg, _ := s.req(t, "GET", "/v1/models", "", nil); code != 401 || strings.Contains(msg, "tiny") {
		t.Fatalf("without a key: %d %s", code, msg)
	}
	names := func(key string) []string {
		t.Helper()
		code, msg, _ := s.req(t, "GET", "/v1/models", "", map[string]string{"Authorization": "Bearer " + key})
		if code != 200 {
			t.Fatalf("%d %s", code, msg)
		}
		var l struct {
			Data []struct {
				ID string `json:"id"`
			} `json:"data"`
		}
		if err := json.Unmarshal([]byte(msg), &l); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, d := range l.Data {
			out = append(out, d.ID)
		}
		return out
	}
	if got := names(all); len(got) != 2 {
		t.Errorf("unscoped key sees %v", got)
	}
	if got := names(limited); len(got) != 1 || got[0] != "other" {
		t.Errorf("key scoped to other sees %v", got)
	}
	if code, _, _ := s.req(t, "GET", "/ready", "", nil); code != 200 {
		t.Errorf("/ready: %d", code)
	}
}
