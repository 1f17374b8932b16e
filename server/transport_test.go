package server_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aimind/aimind/internal/synth"
	"github.com/aimind/aimind/internal/testutil"
	"github.com/aimind/aimind/server"
)

// TestTransportErrorsEchoNothing: requests fasthttp cannot read get a fixed
// JSON message; none echoes the request, its bearer key least of all.
func TestTransportErrorsEchoNothing(t *testing.T) {
	s := startOpts(t, server.Options{}, map[string]string{"m": testutil.MustModel(t, synth.Tiny())}, 0)
	const secret = "aimind_0123456789_deadbeefcafe"
	big := strings.Repeat("x", 64<<10)
	cases := []struct {
		name, raw string
		want      int
	}{
		{"huge header", "POST /v1/rerank HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + secret + "\r\nX-Pad: " + big + "\r\nContent-Length: 2\r\n\r\n{}", 431},
		{"duplicate Content-Length", "POST /v1/rerank HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + secret + "\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400},
		{"bad Content-Length", "POST /v1/rerank HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + secret + "\r\nContent-Length: -5\r\n\r\n{}", 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", strings.TrimPrefix(s.url, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			go func() { io.WriteString(conn, tc.raw) }() // the server may answer before reading it all
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(body), secret) || strings.Contains(string(body), "Bearer") {
				t.Fatalf("the answer echoes the request: %s", body)
			}
			var e struct {
				Error struct {
					Message string `json:"message"`
					Code    int    `json:"code"`
				} `json:"error"`
			}
			if err := json.Unmarshal(body, &e); err != nil || e.Error.Message == "" {
				t.Fatalf("not a JSON error (%v): %s", err, body)
			}
			if resp.StatusCode != tc.want || e.Error.Code != tc.want {
				t.Fatalf("status %d (body code %d), want %d: %s", resp.StatusCode, e.Error.Code, tc.want, body)
			}
			if resp.Header.Get("X-Request-Id") == "" {
				t.Error("no X-Request-Id")
			}
		})
	}
}

// TestHeaderTimeoutShorterThanBody: a client that trickles its headers is
// cut off at the header timeout; one that has sent its headers may take
// longer than that (up to the read timeout) for its body.
func TestHeaderTimeoutShorterThanBody(t *testing.T) {
	s := startOpts(t, server.Options{ReadTimeout: 5 * time.Second, HeaderTimeout: 300 * time.Millisecond},
		map[string]string{"m": testutil.MustModel(t, synth.Tiny())}, 0)
	s.wait(t, "m")
	addr := strings.TrimPrefix(s.url, "http://")

	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	io.WriteString(slow, "POST /v1/rerank HTTP/1.1\r\nHost: x\r\n") // and no more
	start := time.Now()
	slow.SetReadDeadline(time.Now().Add(4 * time.Second))
	n, _ := io.Copy(io.Discard, slow) // ends when the server closes (it may answer 408 first)
	if waited := time.Since(start); waited > 3*time.Second {
		t.Fatalf("a client sending no more headers held its connection %s (read %d bytes)", waited, n)
	}

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b := `{"query":"q","documents":["a","b"]}`
	fmt.Fprintf(c, "POST /v1/rerank HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(b))
	time.Sleep(time.Second) // the stimulus: a body slower than the header timeout
	io.WriteString(c, b)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("slow body: status %d", resp.StatusCode)
	}
}
