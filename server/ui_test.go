package server_test

import (
	"bytes"
	"testing"

	"github.com/aimind/aimind/server"
)

// TestFavicon: /favicon.ico answers with the embedded icon (browsers ask for
// it on every page), a real ICO, not the 404 JSON.
func TestFavicon(t *testing.T) {
	s := start(t, server.Options{}, nil, nil)
	code, body, h := s.do(t, "GET", "/favicon.ico", "")
	if code != 200 || h.Get("Content-Type") != "image/x-icon" || !bytes.HasPrefix(body, []byte{0, 0, 1, 0}) {
		t.Fatalf("favicon: %d %q % x", code, h.Get("Content-Type"), body[:min(len(body), 8)])
	}
	if code, _, _ := s.do(t, "POST", "/favicon.ico", ""); code != 405 {
		t.Fatalf("POST /favicon.ico: %d", code)
	}
}
