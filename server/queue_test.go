package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aimind/aimind/server"
)

// post sends a rerank body from any goroutine; failures come back as values.
func post(ctx context.Context, url, b string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", url+"/v1/rerank", strings.NewReader(b))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out), err
}

// TestAnswerWaitsOnNoTimer: while a request waits for the engine, the
// disconnect watcher sleeps in the network poller; it looks at the socket
// once, not on every tick of a timer, and finishing the request does not wait
// for one. (The request takes hundreds of milliseconds of engine work; a
// 50 ms ticker took a look every 50 ms.)
func TestAnswerWaitsOnNoTimer(t *testing.T) {
	s := startLoad(t, 1<<20)
	b := body(150, 60, 9) // ~10,000 tokens
	mustPost(t, s, body(1, 5, 1))
	before := server.WatchPeeks.Load()
	start := time.Now()
	mustPost(t, s, b)
	took := time.Since(start)
	peeks := server.WatchPeeks.Load() - before
	t.Logf("request took %s; the watcher looked %d times", took, peeks)
	if peeks > 2 {
		t.Fatalf("the watcher looked at the socket %d times during one request: it polls", peeks)
	}
	if peeks == 0 {
		t.Fatal("the watcher never looked: disconnects would go unseen")
	}
}

// TestOversizeRequestIs413: a request that can never fit the queue is
// refused at once with 413 naming both flags, even with the queue empty, and
// does not lock anyone out.
func TestOversizeRequestIs413(t *testing.T) {
	s := startLoad(t, 12000)
	code, out, _ := s.do(t, "POST", "/v1/rerank", body(400, 60, 5)) // ~26k tokens
	if code != 413 || !strings.Contains(string(out), "--max-queue-tokens") || !strings.Contains(string(out), "--max-documents") {
		t.Fatalf("status %d: %s", code, out)
	}
	var e struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(out, &e); err != nil || e.Error.Message == "" {
		t.Fatalf("not a JSON error: %s (%v)", out, err)
	}
	mustPost(t, s, body(2, 20, 6))
}

// TestStopAnswersQueuedRequests: stopping a model answers every request it
// holds with 503 naming its state, instead of leaving them to the request
// timeout.
func TestStopAnswersQueuedRequests(t *testing.T) {
	s := startLoad(t, 1<<20)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	type reply struct {
		code int
		body string
		err  error
	}
	replies := make(chan reply, 12)
	m := s.mgr.Engine("m")
	total := 0
	for i := 0; i < 12; i++ {
		b := body(40, 60, uint64(10+i))
		var req struct {
			Query     string   `json:"query"`
			Documents []string `json:"documents"`
		}
		if err := json.Unmarshal([]byte(b), &req); err != nil {
			t.Fatal(err)
		}
		pairs, err := m.Tokenize(req.Query, req.Documents)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pairs {
			total += len(p.Tokens)
		}
		go func() {
			code, out, err := post(ctx, s.url, b)
			replies <- reply{code, out, err}
		}()
	}
	// Wait until the model holds them all: admission counts every token
	// until the request is answered.
	// A request answered meanwhile leaves the queue and the count would
	// never reach the total: the wait ends there too, and its reply is
	// counted below with the others.
	var early []reply
wait:
	for m.QueuedTokens() < total {
		select {
		case r := <-replies:
			early = append(early, r)
			break wait
		default:
		}
		time.Sleep(time.Millisecond) // a look at a condition, not a wait for time to pass
	}
	if _, err := s.mgr.Stop("m"); err != nil {
		t.Fatal(err)
	}
	unloaded := 0
	for i := 0; i < 12; i++ {
		var r reply
		if i < len(early) {
			r = early[i]
		} else {
			r = <-replies
		}
		switch {
		case r.err != nil:
			t.Fatalf("request %d: %v", i, r.err)
		case r.code == 200: // finished before the stop
		case r.code == 503 && strings.Contains(r.body, "stopped"):
			unloaded++
		default:
			t.Fatalf("request %d: status %d: %s", i, r.code, r.body)
		}
	}
	if ctx.Err() != nil {
		t.Fatal("requests waited for their deadline")
	}
	if unloaded == 0 {
		t.Fatal("every request finished before the stop: the test did not test")
	}
	t.Logf("%d of 12 requests answered 503 at the stop", unloaded)
}
