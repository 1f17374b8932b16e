package server_test

import (
	"strings"
	"testing"
	"time"

	"github.com/aimind/aimind/engine"
	"github.com/aimind/aimind/internal/synth"
	"github.com/aimind/aimind/internal/testutil"
	"github.com/aimind/aimind/server"
)

// TestTokenizeWaitIsBounded: with every tokenizing slot busy a request waits
// --tokenize-wait, then gets a 503 with Retry-After that names the flag, in
// its dialect's shape, and the refusal is counted in /metrics; once a slot is
// free the same request is scored.
func TestTokenizeWaitIsBounded(t *testing.T) {
	s := startWith(t, server.Options{TokenizeWait: time.Millisecond}, engine.Options{Threads: 1, FlashAttn: true},
		map[string]string{"m": testutil.MustModel(t, synth.Tiny())}, nil)
	s.wait(t, "m")
	release := server.HoldTokenizers(s.srv)
	const guide = `{"model":"m","query":"q","documents":["a","b"]}`
	code, body, hdr := s.do(t, "POST", "/v1/rerank", guide)
	if code != 503 || hdr.Get("Retry-After") == "" || !strings.Contains(string(body), "--tokenize-wait") || !strings.Contains(string(body), `"error"`) {
		t.Errorf("guide request with the tokenizers busy: %d %q %s", code, hdr.Get("Retry-After"), body)
	}
	code, body, _ = s.do(t, "POST", "/rerank", `{"model":"m","query":"q","texts":["a"]}`)
	if code != 503 || !strings.Contains(string(body), `"error_type":"Unhealthy"`) {
		t.Errorf("TEI request with the tokenizers busy: %d %s", code, body)
	}
	_, metrics, _ := s.do(t, "GET", "/metrics", "")
	if !strings.Contains(string(metrics), "aimind_tokenize_refused_total ") || !strings.Contains(string(metrics), "aimind_tokenize_wait_seconds_bucket") {
		t.Errorf("/metrics lacks the tokenizing wait and refusals")
	}
	release()
	if code, body, _ := s.do(t, "POST", "/v1/rerank", guide); code != 200 {
		t.Errorf("with a slot free: %d %s", code, body)
	}
}
