package server

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/aimind/aimind/auth"
)

// SessionCookie names the admin session cookie.
const SessionCookie = "aimind_session"

// apiKey reads the key from Authorization: Bearer or X-Api-Key.
func apiKey(ctx *fasthttp.RequestCtx) string {
	if h := ctx.Request.Header.Peek("Authorization"); len(h) > 0 {
		if len(h) > 7 && strings.EqualFold(string(h[:7]), "bearer ") {
			return strings.TrimSpace(string(h[7:]))
		}
		return "\x00malformed" // an Authorization header of another scheme
	}
	return strings.TrimSpace(string(ctx.Request.Header.Peek("X-Api-Key")))
}

// authenticateKey answers 401 and returns nil when the request carries no
// valid API key. With auth off it returns an all-models principal.
func (s *Server) authenticateKey(ctx *fasthttp.RequestCtx) *auth.Principal {
	if s.opts.NoAuth || s.opts.Keys == nil {
		return &auth.Principal{}
	}
	p, err := s.opts.Keys.Authenticate(apiKey(ctx))
	if err == nil {
		return p
	}
	ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="aimind"`)
	switch {
	case errors.Is(err, auth.ErrNoKeysYet):
		writeError(ctx, fasthttp.StatusUnauthorized, typeAuth,
			"no API key exists yet: create one with `aimind keys create --name NAME` or on the web UI's API Keys page, "+
				"then send it as `Authorization: Bearer <key>` (or start aimind with --api-key KEY, or --no-auth)")
	case errors.Is(err, auth.ErrNoKey):
		writeError(ctx, fasthttp.StatusUnauthorized, typeAuth, "missing API key: send `Authorization: Bearer <key>` or `X-Api-Key: <key>`")
	case errors.Is(err, auth.ErrMalformed), errors.Is(err, auth.ErrUnknown), errors.Is(err, auth.ErrExpired):
		writeError(ctx, fasthttp.StatusUnauthorized, typeAuth, err.Error())
	default:
		s.opts.Logger.Error("cannot check API key", "err", err)
		writeError(ctx, fasthttp.StatusInternalServerError, typeServer, "cannot check the API key")
	}
	return nil
}

// clientIP is the connection's address, or, when the connection comes from
// a trusted proxy, the nearest untrusted address in X-Forwarded-For.
func (s *Server) clientIP(ctx *fasthttp.RequestCtx) net.IP {
	ip := ctx.RemoteIP()
	if !s.trusted(ip) {
		return ip
	}
	xff := string(ctx.Request.Header.Peek("X-Forwarded-For"))
	hops := strings.Split(xff, ",")
	for i := len(hops) - 1; i >= 0; i-- {
		h := net.ParseIP(strings.TrimSpace(hops[i]))
		if h == nil {
			break
		}
		if !s.trusted(h) {
			return h
		}
		ip = h
	}
	return ip
}

func (s *Server) trusted(ip net.IP) bool {
	for _, n := range s.opts.TrustedProxies {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// secure reports whether the client reached us over HTTPS.
func (s *Server) secure(ctx *fasthttp.RequestCtx) bool {
	if ctx.IsTLS() || s.opts.TLS {
		return true
	}
	return s.trusted(ctx.RemoteIP()) && strings.EqualFold(string(ctx.Request.Header.Peek("X-Forwarded-Proto")), "https")
}

// sameOrigin refuses state-changing requests sent from another site: the
// browser's Sec-Fetch-Site, else Origin against Host.
func sameOrigin(ctx *fasthttp.RequestCtx) bool {
	if site := string(ctx.Request.Header.Peek("Sec-Fetch-Site")); site != "" {
		return site == "same-origin" || site == "none"
	}
	origin := string(ctx.Request.Header.Peek("Origin"))
	if origin == "" {
		return true // not a browser request
	}
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, string(ctx.Host()))
}

// session checks the admin session cookie. allowMustChange lets through the
// few routes a user needs before changing the first password.
func (s *Server) session(ctx *fasthttp.RequestCtx, allowMustChange bool) bool {
	if s.opts.Admin == nil {
		writeError(ctx, fasthttp.StatusNotFound, typeNotFound, "the admin API is not enabled")
		return false
	}
	m := ctx.Method()
	if !bytes.Equal(m, []byte("GET")) && !bytes.Equal(m, []byte("HEAD")) && !sameOrigin(ctx) {
		writeError(ctx, fasthttp.StatusForbidden, typePermission, "cross-site request refused")
		return false
	}
	mustChange, err := s.opts.Admin.Session(string(ctx.Request.Header.Cookie(SessionCookie)))
	if err != nil {
		writeError(ctx, fasthttp.StatusUnauthorized, typeAuth, "log in first")
		return false
	}
	if mustChange && !allowMustChange {
		writeError(ctx, fasthttp.StatusForbidden, typePermission, "change the initial admin password first (POST /api/password)")
		return false
	}
	return true
}

func (s *Server) setSessionCookie(ctx *fasthttp.RequestCtx, id string, maxAge time.Duration) {
	c := fasthttp.AcquireCookie()
	defer fasthttp.ReleaseCookie(c)
	c.SetKey(SessionCookie)
	c.SetValue(id)
	c.SetPath("/")
	c.SetHTTPOnly(true)
	c.SetSameSite(fasthttp.CookieSameSiteStrictMode)
	c.SetSecure(s.secure(ctx))
	if maxAge > 0 {
		c.SetMaxAge(int(maxAge.Seconds()))
	} else {
		c.SetExpire(fasthttp.CookieExpireDelete)
	}
	ctx.Response.Header.SetCookie(c)
}

func (s *Server) handleLogin(ctx *fasthttp.RequestCtx) {
	if s.opts.Admin == nil {
		writeError(ctx, fasthttp.StatusNotFound, typeNotFound, "the admin API is not enabled")
		return
	}
	if !sameOrigin(ctx) {
		writeError(ctx, fasthttp.StatusForbidden, typePermission, "cross-site request refused")
		return
	}
	var body struct {
		Password string `json:"password"`
	}
	if err := decodeJSON(ctx.PostBody(), &body); err != nil {
		writeError(ctx, fasthttp.StatusBadRequest, typeInvalid, err.Error())
		return
	}
	id, mustChange, err := s.opts.Admin.Login(s.clientIP(ctx).String(), body.Password)
	var ra *auth.RetryAfter
	switch {
	case errors.As(err, &ra):
		ctx.Response.Header.Set("Retry-After", strconv.Itoa(int(ra.Wait.Seconds())+1))
		writeError(ctx, fasthttp.StatusTooManyRequests, typeRateLimit, err.Error())
		return
	case errors.Is(err, auth.ErrBadPassword):
		writeError(ctx, fasthttp.StatusUnauthorized, typeAuth, "wrong password")
		return
	case err != nil:
		s.opts.Logger.Error("login failed", "err", err)
		writeError(ctx, fasthttp.StatusInternalServerError, typeServer, "cannot log in")
		return
	}
	s.setSessionCookie(ctx, id, auth.SessionTTL)
	writeJSON(ctx, fasthttp.StatusOK, map[string]any{"must_change_password": mustChange})
}

func (s *Server) handleLogout(ctx *fasthttp.RequestCtx) {
	if !s.session(ctx, true) {
		return
	}
	s.opts.Admin.Logout(string(ctx.Request.Header.Cookie(SessionCookie)))
	s.setSessionCookie(ctx, "", 0)
	writeJSON(ctx, fasthttp.StatusOK, map[string]any{"ok": true})
}

func (s *Server) handleMe(ctx *fasthttp.RequestCtx) {
	if s.opts.Admin == nil {
		writeError(ctx, fasthttp.StatusNotFound, typeNotFound, "the admin API is not enabled")
		return
	}
	mustChange, err := s.opts.Admin.Session(string(ctx.Request.Header.Cookie(SessionCookie)))
	if err != nil {
		writeError(ctx, fasthttp.StatusUnauthorized, typeAuth, "log in first")
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, map[string]any{"user": "admin", "must_change_password": mustChange})
}

func (s *Server) handlePassword(ctx *fasthttp.RequestCtx) {
	if !s.session(ctx, true) {
		return
	}
	var body struct {
		Current string `json:"current_password"`
		New     string `json:"new_password"`
	}
	if err := decodeJSON(ctx.PostBody(), &body); err != nil {
		writeError(ctx, fasthttp.StatusBadRequest, typeInvalid, err.Error())
		return
	}
	err := s.opts.Admin.ChangePassword(body.Current, body.New, string(ctx.Request.Header.Cookie(SessionCookie)))
	switch {
	case errors.Is(err, auth.ErrBadPassword):
		writeError(ctx, fasthttp.StatusBadRequest, typeInvalid, "the current password is wrong")
	case errors.Is(err, auth.ErrWeakPassword), errors.Is(err, auth.ErrSamePassword):
		writeError(ctx, fasthttp.StatusBadRequest, typeInvalid, err.Error())
	case err != nil:
		writeError(ctx, fasthttp.StatusInternalServerError, typeServer, "cannot change the password: "+err.Error())
	default:
		writeJSON(ctx, fasthttp.StatusOK, map[string]any{"ok": true})
	}
}

type keyView struct {
	ID       string     `json:"id"`
	Name     string     `json:"name"`
	Prefix   string     `json:"prefix"`
	Created  time.Time  `json:"created"`
	Expires  *time.Time `json:"expires,omitempty"`
	LastUsed *time.Time `json:"last_used,omitempty"`
	Models   []string   `json:"models"`
}

func viewKey(k auth.APIKey) keyView {
	m := k.Models
	if m == nil {
		m = []string{}
	}
	return keyView{ID: k.ID, Name: k.Name, Prefix: k.Prefix, Created: k.Created, Expires: k.Expires, LastUsed: k.LastUsed, Models: m}
}

// keysAPI serves /api/keys and /api/keys/{id}; the caller has checked the
// session (or the local socket).
func (s *Server) keysAPI(ctx *fasthttp.RequestCtx) {
	path := string(ctx.Path())
	method := string(ctx.Method())
	switch {
	case path == "/api/keys" && method == "GET":
		keys, err := s.opts.Keys.List()
		if err != nil {
			writeError(ctx, fasthttp.StatusInternalServerError, typeServer, "cannot list API keys: "+err.Error())
			return
		}
		out := make([]keyView, 0, len(keys))
		for _, k := range keys {
			out = append(out, viewKey(k))
		}
		writeJSON(ctx, fasthttp.StatusOK, map[string]any{"data": out})
	case path == "/api/keys" && method == "POST":
		var body struct {
			Name      string   `json:"name"`
			ExpiresIn string   `json:"expires_in"` // e.g. "30d", "12h"; empty: never
			Models    []string `json:"models"`
		}
		if err := decodeJSON(ctx.PostBody(), &body); err != nil {
			writeError(ctx, fasthttp.StatusBadRequest, typeInvalid, err.Error())
			return
		}
		ttl, err := ParseExpiry(body.ExpiresIn)
		if err != nil {
			writeError(ctx, fasthttp.StatusBadRequest, typeInvalid, err.Error())
			return
		}
		plain, rec, err := s.opts.Keys.Create(body.Name, ttl, body.Models)
		if err != nil {
			writeError(ctx, fasthttp.StatusBadRequest, typeInvalid, err.Error())
			return
		}
		s.opts.Logger.Info("API key created", "id", rec.ID, "name", rec.Name)
		writeJSON(ctx, fasthttp.StatusCreated, map[string]any{"key": plain, "data": viewKey(rec)})
	case strings.HasPrefix(path, "/api/keys/") && method == "DELETE":
		id := strings.TrimPrefix(path, "/api/keys/")
		if err := s.opts.Keys.Revoke(id); errors.Is(err, auth.ErrUnknown) {
			writeError(ctx, fasthttp.StatusNotFound, typeNotFound, fmt.Sprintf("no API key %q", id))
			return
		} else if err != nil {
			writeError(ctx, fasthttp.StatusInternalServerError, typeServer, err.Error())
			return
		}
		s.opts.Logger.Info("API key revoked", "id", id)
		writeJSON(ctx, fasthttp.StatusOK, map[string]any{"ok": true})
	default:
		writeError(ctx, fasthttp.StatusMethodNotAllowed, typeInvalid, fmt.Sprintf("%s does not accept %s", path, method))
	}
}

func (s *Server) handleKeys(ctx *fasthttp.RequestCtx) {
	if !s.session(ctx, false) {
		return
	}
	if s.opts.Keys == nil {
		writeError(ctx, fasthttp.StatusNotFound, typeNotFound, "API keys are not enabled")
		return
	}
	s.keysAPI(ctx)
}

// ParseExpiry reads "30d", "12h", "90m" or "" (never).
func ParseExpiry(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "never" {
		return 0, nil
	}
	if strings.HasSuffix(s, "d") {
		n, err := strconv.Atoi(strings.TrimSuffix(s, "d"))
		if err != nil || n <= 0 || n > 36500 {
			return 0, fmt.Errorf("expiry %q: use a positive number of days such as 30d", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("expiry %q: use a duration such as 30d or 12h", s)
	}
	return d, nil
}
