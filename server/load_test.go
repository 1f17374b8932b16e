package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aimind/aimind/engine"
	"github.com/aimind/aimind/internal/synth"
	"github.com/aimind/aimind/internal/testutil"
	"github.com/aimind/aimind/models"
	"github.com/aimind/aimind/server"
)

// A model heavy enough that requests take measurable time on two cores.
var loadSpec = synth.Spec{Layers: 4, Hidden: 256, Heads: 4, FFN: 1024, Positions: 512, Seed: 21}

func body(n, words int, seed uint64) string {
	docs := make([]string, n)
	for i := range docs {
		docs[i] = synth.Text(seed*1000+uint64(i), words)
	}
	b, _ := json.Marshal(map[string]any{"model": "m", "query": "panda bamboo", "documents": docs})
	return string(b)
}

// TestOverloadGets429Fast: at about eight times the queue's capacity the
// excess is refused at once with Retry-After: every 429 arrives while the
// encoder is held inside its first call, so no refusal waited on the queue;
// every accepted request completes with the same scores it gets alone;
// memory stays bounded; the server recovers.
func TestOverloadGets429Fast(t *testing.T) {
	s, gate := startGated(t, 12000)
	one := body(40, 60, 1) // ~2600 tokens: the queue holds four
	type outcome struct {
		code  int
		retry string
		body  string
	}
	const clients = 32 // eight times what the queue holds
	var alone answer
	if err := json.Unmarshal([]byte(mustPost(t, s, one)), &alone); err != nil {
		t.Fatal(err)
	}
	accepted := 12000 / alone.Usage.PromptTokens // no score cache here: each takes its tokens
	before := testutil.RSS(t)
	gate.arm()
	out := make(chan outcome, clients)
	for c := 0; c < clients; c++ {
		go func() {
			resp, err := http.Post(s.url+"/v1/rerank", "application/json", strings.NewReader(one))
			if err != nil {
				out <- outcome{code: -1, body: err.Error()}
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			out <- outcome{resp.StatusCode, resp.Header.Get("Retry-After"), string(b)}
		}()
	}
	// While the first call is held nothing can be answered but refusals:
	// wait for the call, then for every client the queue cannot hold.
	<-gate.first
	var done []outcome
	for len(done) < clients-accepted {
		select {
		case o := <-out:
			done = append(done, o)
			if o.code != 429 {
				t.Fatalf("status %d while the encoder was held: %s", o.code, o.body)
			}
			if o.retry == "" || !strings.Contains(o.body, "--max-queue-tokens") {
				t.Errorf("429 without Retry-After or the flag's name: %q %s", o.retry, o.body)
			}
		case <-time.After(time.Minute): // a bound on a hang, not a measurement
			t.Fatalf("%d of %d refusals came while the encoder was held: the others wait on the queue", len(done), clients-accepted)
		}
	}
	gate.open()
	var bodies []string
	for len(done) < clients {
		o := <-out
		done = append(done, o)
		if o.code != 200 {
			t.Fatalf("status %d after the refusals: %s", o.code, o.body)
		}
		bodies = append(bodies, o.body)
	}
	if len(bodies) != accepted || accepted == 0 {
		t.Fatalf("%d accepted, want %d: the load did not exceed the queue as planned", len(bodies), accepted)
	}
	mustPost(t, s, one) // recovered
	for _, b := range bodies {
		var a answer
		if err := json.Unmarshal([]byte(b), &a); err != nil {
			t.Fatalf("accepted request answered %q: %v", b, err)
		}
		for i := range a.Results {
			if a.Results[i].Index != alone.Results[i].Index || abs(a.Results[i].RelevanceScore-alone.Results[i].RelevanceScore) > 1e-4 {
				t.Fatalf("accepted request answered differently under load: %+v vs %+v", a.Results[i], alone.Results[i])
			}
		}
	}
	t.Logf("%d accepted, %d refused while the encoder was held", accepted, clients-accepted)
	if grow := testutil.RSS(t) - before; grow > 256<<20 {
		t.Errorf("RSS grew by %d MiB under load", grow>>20)
	}
	// What the load took goes back: nothing is held once it is over (the
	// Go runtime returns freed pages on its own schedule; asked here).
	runtime.GC()
	debug.FreeOSMemory()
	after := testutil.RSS(t)
	t.Logf("RSS %d MiB before the load, %d MiB after it", before>>20, after>>20)
	if after-before > 32<<20 {
		t.Errorf("RSS stayed %d MiB above its level before the load", (after-before)>>20)
	}
}

// encoderGate counts encoder calls (through the manager's Observe, which
// the scheduler calls after each call and before it answers) once armed,
// and holds the first one until opened.
type encoderGate struct {
	armed   atomic.Bool
	calls   atomic.Int64
	first   chan struct{}
	release chan struct{}
	once    sync.Once
}

func (g *encoderGate) arm()  { g.armed.Store(true) }
func (g *encoderGate) open() { g.once.Do(func() { close(g.release) }) }

// startGated serves the load model with a gate on its encoder calls.
func startGated(t *testing.T, maxQueue int) (*testServer, *encoderGate) {
	t.Helper()
	g := &encoderGate{first: make(chan struct{}), release: make(chan struct{})}
	t.Cleanup(g.open) // before the server's cleanup: nothing stays held
	s := startWith(t, server.Options{ReadTimeout: 2 * time.Second}, engine.Options{Threads: 2, FlashAttn: true, MaxQueueTokens: maxQueue},
		map[string]string{"m": testutil.MustModel(t, loadSpec)}, func(m *models.Manager) {
			m.Observe = func(model string, pairs, tokens int, d time.Duration) {
				server.ObserveBatch(model, pairs, tokens, d)
				if !g.armed.Load() {
					return // the self-check at load
				}
				if g.calls.Add(1) == 1 {
					close(g.first)
					<-g.release
				}
			}
		})
	s.wait(t, "m")
	return s, g
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

func startLoad(t *testing.T, maxQueue int) *testServer {
	t.Helper()
	s := startOpts(t, server.Options{ReadTimeout: 2 * time.Second}, map[string]string{"m": testutil.MustModel(t, loadSpec)}, maxQueue)
	s.wait(t, "m")
	return s
}

func mustPost(t *testing.T, s *testServer, b string) string {
	t.Helper()
	code, out, _ := s.do(t, "POST", "/v1/rerank", b)
	if code != 200 {
		t.Fatalf("status %d: %s", code, out)
	}
	return string(out)
}

// TestSmallRequestNotStuckBehindLarge: a small request that arrives while a
// large one is being scored is answered before the large one, after a few of
// the encoder calls the large one needs (counted, not timed).
func TestSmallRequestNotStuckBehindLarge(t *testing.T) {
	s, gate := startGated(t, 1<<20)
	big, small := body(300, 40, 2), body(2, 40, 3)
	bigDone := make(chan error, 1)
	gate.arm()
	go func() {
		code, _, err := post(context.Background(), s.url, big)
		if err == nil && code != 200 {
			err = fmt.Errorf("status %d", code)
		}
		bigDone <- err
	}()
	<-gate.first // the large request is in the encoder
	// The queue's tokens before the small request is sent: read after it,
	// they could already count its tokens, and the wait below would never
	// see them arrive (the encoder is held, nothing else moves).
	bigTokens := s.mgr.Engine("m").QueuedTokens()
	smallDone := make(chan int64, 1)
	go func() {
		sent := gate.calls.Load()
		code, _, err := post(context.Background(), s.url, small)
		if err != nil || code != 200 {
			sent = -1
		}
		smallDone <- gate.calls.Load() - sent
	}()
	// The small request is admitted while the first call is held: its
	// tokens join the queue. A request that ends instead (an error, the
	// large one giving up) ends the wait with a failure, not a hang.
	for s.mgr.Engine("m").QueuedTokens() == bigTokens {
		select {
		case n := <-smallDone:
			t.Fatalf("the small request ended (%d) before its tokens joined the queue", n)
		case err := <-bigDone:
			t.Fatalf("the large request ended (%v) while its first encoder call was held", err)
		default:
		}
		time.Sleep(time.Millisecond) // a look at a condition, not a wait for time to pass
	}
	gate.open()
	var smallCalls int64
	select {
	case smallCalls = <-smallDone:
	case err := <-bigDone:
		t.Fatalf("the large request (%v) was answered before the small one behind it", err)
	}
	if smallCalls < 0 {
		t.Fatal("the small request failed")
	}
	if err := <-bigDone; err != nil {
		t.Fatalf("large request: %v", err)
	}
	bigCalls := gate.calls.Load()
	t.Logf("the large request took %d encoder calls, the small one behind it %d", bigCalls, smallCalls)
	if smallCalls*4 > bigCalls {
		t.Fatalf("the small request waited %d of the large one's %d calls", smallCalls, bigCalls)
	}
}

// TestDisconnectDropsQueuedPairs: a client that goes away has its pairs
// dropped: the queue empties after the call in progress, not after the
// tens of calls the work needs (counted, not timed).
func TestDisconnectDropsQueuedPairs(t *testing.T) {
	s, gate := startGated(t, 1<<20)
	b := body(600, 60, 4) // tens of thousands of tokens: tens of calls
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	gate.arm()
	fmt.Fprintf(conn, "POST /v1/rerank HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(b), b)
	queued := func() int {
		_, out, _ := s.do(t, "GET", "/metrics", "")
		m := regexp.MustCompile(`aimind_queue_tokens\{model="m"\} (\d+)`).FindSubmatch(out)
		if m == nil {
			return -1
		}
		n, _ := strconv.Atoi(string(m[1]))
		return n
	}
	<-gate.first // queued and in the encoder
	full := queued()
	conn.Close()
	gate.open()
	// The scheduler drops the request when it sees the cancellation, before
	// its next call; the loop waits for that (each look is a /metrics read).
	deadline := time.Now().Add(time.Minute) // a bound on a hang, not a measurement
	for queued() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("queue still holds %d of %d tokens a minute after the client left (%d calls)", queued(), full, gate.calls.Load())
		}
		time.Sleep(10 * time.Millisecond) // a look at a condition, not a wait for time to pass
	}
	calls := gate.calls.Load()
	t.Logf("%d queued tokens dropped after %d encoder calls", full, calls)
	if need := int64(full / engine.DefaultBatchTokens); calls*4 > need {
		t.Fatalf("the queue emptied after %d calls of the %d the work needs", calls, need)
	}
}

// TestSlowlorisClosedAtReadTimeout: a client that trickles its headers is cut
// off at the read timeout.
func TestSlowlorisClosedAtReadTimeout(t *testing.T) {
	s := startOpts(t, server.Options{ReadTimeout: 500 * time.Millisecond}, map[string]string{"m": testutil.MustModel(t, synth.Tiny())}, 0)
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	fmt.Fprint(conn, "POST /v1/rerank HTTP/1.1\r\nHost: x\r\n")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	go func() {
		for i := 0; i < 20; i++ { // one header byte at a time, slowly
			time.Sleep(200 * time.Millisecond)
			if _, err := conn.Write([]byte("X")); err != nil {
				return
			}
		}
	}()
	_, err = io.ReadAll(bufio.NewReader(conn))
	took := time.Since(start)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the server kept a trickling connection open for 5s")
	}
	if took > 2*time.Second {
		t.Fatalf("closed after %s, read timeout 500ms", took)
	}
}

func TestMetricsReadyAndRequestID(t *testing.T) {
	loading := make(chan struct{})
	var once sync.Once
	s := startHook(t, map[string]string{"m": testutil.MustModel(t, synth.Tiny())}, loading)
	if code, _, _ := s.do(t, "GET", "/ready", ""); code != 503 {
		t.Fatalf("/ready while loading: %d", code)
	}
	once.Do(func() { close(loading) })
	s.wait(t, "m")
	if code, _, _ := s.do(t, "GET", "/ready", ""); code != 200 {
		t.Fatalf("/ready when running: %d", code)
	}
	req, _ := http.NewRequest("POST", s.url+"/v1/rerank", strings.NewReader(`{"query":"q","documents":["a","b"]}`))
	req.Header.Set("X-Request-Id", "trace-123")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("X-Request-Id") != "trace-123" {
		t.Fatalf("request id %q", resp.Header.Get("X-Request-Id"))
	}
	_, _, hdr := s.do(t, "GET", "/health", "")
	if len(hdr.Get("X-Request-Id")) != 16 {
		t.Fatalf("generated request id %q", hdr.Get("X-Request-Id"))
	}
	if _, models, _ := s.do(t, "GET", "/v1/models", ""); !strings.Contains(string(models), `"kernel":"`) {
		t.Errorf("/v1/models does not name the kernel path: %s", models)
	} else if !strings.Contains(string(models), `"self_check":{"status":"suspect","reason":"relevant first: `) {
		t.Errorf("/v1/models does not say the synthetic model's self-check found it suspect: %s", models)
	}
	code, out, _ := s.do(t, "GET", "/metrics", "")
	for _, want := range []string{
		`aimind_http_requests_total{route="/v1/rerank",code="200"}`,
		`aimind_http_request_duration_seconds_bucket{route="/v1/rerank"`,
		`aimind_tokens_total{model="m"}`,
		`aimind_batch_pairs_bucket{model="m"`,
		`aimind_queue_tokens{model="m"} 0`,
		`aimind_models{state="running"} 1`,
		`aimind_model_kernel{model="m",kernel="`,
		`aimind_model_suspect{model="m"} 1`,
		`aimind_model_device{model="m",device="CPU"} 1`,
		`aimind_scoring_requests_in_flight 0`,
		`aimind_score_cache_hits_total`,
		`aimind_score_cache_max_bytes`,
		`process_resident_memory_bytes`,
	} {
		if code != 200 || !strings.Contains(string(out), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestConnectionCapPerIP: connections past the per-address cap are closed
// at once; the others keep working.
func TestConnectionCapPerIP(t *testing.T) {
	s := startOpts(t, server.Options{MaxConnsPerIP: 2}, map[string]string{"m": testutil.MustModel(t, synth.Tiny())}, 0)
	addr := strings.TrimPrefix(s.url, "http://")
	var conns []net.Conn
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	// The read blocks until the listener accepts the third connection and
	// closes it: no sleep needed (connections are accepted in dial order).
	conns[2].SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conns[2].Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("third connection: %v, want EOF", err)
	}
	fmt.Fprint(conns[0], "GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conns[0]), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("first connection: %v %v", resp, err)
	}
}

// TestLargeBodiesRefusedBeforeTokenizing: while the queue is nearly full,
// requests of 1000 documents (about 360 KB each) get 429 from the count of
// their documents alone, before any text is tokenized: memory barely moves
// (they raised RSS by about 500 MB when tokenized first).
func TestLargeBodiesRefusedBeforeTokenizing(t *testing.T) {
	s := startLoad(t, 12000)
	m := s.mgr.Engine("m")
	hold := body(150, 60, 7) // about 10k tokens: admitted, keeps the queue busy
	held := make(chan error, 1)
	go func() {
		code, b, err := post(context.Background(), s.url, hold)
		if err == nil && code != 200 {
			err = fmt.Errorf("status %d: %s", code, b)
		}
		held <- err
	}()
	for m.QueuedTokens() == 0 {
		select {
		case err := <-held:
			t.Fatalf("the request meant to keep the queue busy ended (%v) before it was seen queued", err)
		default:
		}
		time.Sleep(time.Millisecond) // a look at a condition, not a wait for time to pass
	}
	big := body(1000, 60, 8)
	runtime.GC()
	before := testutil.RSS(t)
	codes := make(chan int, 6)
	for i := 0; i < 6; i++ {
		go func() {
			code, _, err := post(context.Background(), s.url, big)
			if err != nil {
				code = -1
			}
			codes <- code
		}()
	}
	for i := 0; i < 6; i++ {
		if c := <-codes; c != 429 {
			t.Fatalf("a 1000-document request beside a nearly full queue got %d, want 429", c)
		}
	}
	grow := testutil.RSS(t) - before
	t.Logf("%d KB bodies: RSS grew by %d MiB", len(big)>>10, grow>>20)
	if grow > 64<<20 {
		t.Fatalf("six refused requests grew RSS by %d MiB", grow>>20)
	}
	if err := <-held; err != nil {
		t.Fatal(err)
	}
}
