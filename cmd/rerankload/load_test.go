package main

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestPoissonScheduleIsSeeded(t *testing.T) {
	a, err := poissonSchedule(11, 5, 500, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := poissonSchedule(11, 5, 500, 0)
	if err != nil {
		t.Fatal(err)
	}
	c, err := poissonSchedule(12, 5, 500, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 500 {
		t.Fatalf("got %d arrivals, want 500", len(a))
	}
	if !slices.Equal(a, b) {
		t.Fatal("the same seed gave two different schedules")
	}
	if slices.Equal(a, c) {
		t.Fatal("seeds 11 and 12 gave the same schedule")
	}
	if !slices.IsSorted(a) || a[0] <= 0 {
		t.Fatalf("arrivals must be positive and increasing: first %v", a[0])
	}
}

// The gaps of a Poisson process of rate R are exponential with mean 1/R:
// their mean is 1/R, their standard deviation equals the mean, and a gap
// exceeds the mean with probability 1/e. With 20000 gaps the standard errors
// are 0.7 % (mean), about 1 % (standard deviation) and 0.0034 (fraction), so
// the tolerances below (3 %, 4 %, 0.015) are more than four standard errors,
// for each of several seeds; evenly spaced or wrongly scaled arrivals fail.
func TestPoissonScheduleGaps(t *testing.T) {
	const n, rate = 20000, 4.0
	want := 1 / rate
	for _, seed := range []uint64{1, 2, 3, 42, 1 << 40} {
		s, err := poissonSchedule(seed, rate, n, 0)
		if err != nil {
			t.Fatal(err)
		}
		gaps := make([]float64, n)
		prev := time.Duration(0)
		for i, at := range s {
			gaps[i] = (at - prev).Seconds()
			prev = at
		}
		mean, sq, above := 0.0, 0.0, 0
		for _, g := range gaps {
			mean += g
		}
		mean /= n
		for _, g := range gaps {
			sq += (g - mean) * (g - mean)
			if g > want {
				above++
			}
		}
		sd := math.Sqrt(sq / (n - 1))
		if math.Abs(mean-want)/want > 0.03 {
			t.Errorf("seed %d: mean gap %.4f s, want %.4f s ± 3 %%", seed, mean, want)
		}
		if math.Abs(sd-want)/want > 0.04 {
			t.Errorf("seed %d: gap standard deviation %.4f s, want %.4f s ± 4 %% (exponential)", seed, sd, want)
		}
		if frac := float64(above) / n; math.Abs(frac-1/math.E) > 0.015 {
			t.Errorf("seed %d: %.3f of gaps exceed the mean, want %.3f ± 0.015 (exponential)", seed, frac, 1/math.E)
		}
	}
}

// With a duration, the schedule holds the arrivals before it: about R x T of
// them (a Poisson count, standard deviation sqrt(R x T) = 100 here).
func TestPoissonScheduleDuration(t *testing.T) {
	const rate = 10.0
	dur := 1000 * time.Second
	s, err := poissonSchedule(5, rate, 0, dur)
	if err != nil {
		t.Fatal(err)
	}
	if got := float64(len(s)); math.Abs(got-rate*dur.Seconds()) > 400 {
		t.Fatalf("%d arrivals in %v at %v/s, want %v ± 400", len(s), dur, rate, rate*dur.Seconds())
	}
	if last := s[len(s)-1]; last >= dur {
		t.Fatalf("last arrival at %v, not before %v", last, dur)
	}
}

func TestPoissonScheduleRejects(t *testing.T) {
	for _, c := range []struct {
		name string
		rate float64
		n    int
		dur  time.Duration
		want string
	}{
		{"zero rate", 0, 10, 0, "positive"},
		{"negative rate", -1, 10, 0, "positive"},
		{"NaN rate", math.NaN(), 10, 0, "positive"},
		{"infinite rate", math.Inf(1), 10, 0, "positive"},
		{"no length", 1, 0, 0, "count or a duration"},
		{"negative count", 1, -3, 0, "negative"},
		{"too many", 1e6, 0, time.Hour, "exceed"},
	} {
		_, err := poissonSchedule(1, c.rate, c.n, c.dur)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", c.name, err, c.want)
		}
	}
}

func TestPercentile(t *testing.T) {
	ten := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, c := range []struct {
		xs   []float64
		p    float64
		want float64
	}{
		{ten, 0.5, 5}, {ten, 0.95, 10}, {ten, 0.9, 9}, {ten, 0.1, 1}, {ten, 0.01, 1},
		{[]float64{7}, 0.99, 7}, {nil, 0.5, 0},
	} {
		if got := percentile(c.xs, c.p); got != c.want {
			t.Errorf("percentile(%v, %v) = %v, want %v", c.xs, c.p, got, c.want)
		}
	}
}

// A server that answers nothing until every request of the schedule has
// reached it: an open-loop client gets them all there; a client that waited
// for answers (closed loop) would stop at its concurrency and time out here.
func TestOpenLoopSendsWithoutWaitingForAnswers(t *testing.T) {
	const n = 12
	arrived := make(chan struct{}, n)
	release := make(chan struct{})
	var answered atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		answered.Add(1)
		fmt.Fprint(w, `{"results":[],"usage":{"prompt_tokens":9}}`)
	}))
	defer srv.Close()
	released := false
	defer func() {
		if !released {
			close(release)
		}
	}()

	sched, err := poissonSchedule(3, 400, n, 0)
	if err != nil {
		t.Fatal(err)
	}
	o := options{url: srv.URL, model: "m", docs: 2, qwords: 2, words: 3, requests: n, seed: 3, timeout: time.Minute}
	bodies, err := makeBodies(o)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: time.Minute}
	done := make(chan []outcome, 1)
	start := time.Now()
	go func() {
		done <- openLoop(context.Background(), start, sched, func(ctx context.Context, i int) (int, error) {
			return post(ctx, client, o, bodies[i])
		})
	}()
	deadline := time.After(30 * time.Second)
	for i := range n {
		select {
		case <-arrived:
		case <-deadline:
			t.Fatalf("only %d of %d requests reached the server while none was answered", i, n)
		}
	}
	if got := answered.Load(); got != 0 {
		t.Fatalf("%d requests were answered before the release", got)
	}
	select {
	case <-done:
		t.Fatal("the run ended before any request was answered")
	default:
	}
	close(release)
	released = true
	outs := <-done
	for i, out := range outs {
		if out.err != nil || out.tokens != 9 {
			t.Fatalf("request %d: tokens %d, error %v", i, out.tokens, out.err)
		}
		if out.sent < out.scheduled {
			t.Fatalf("request %d sent at %v, before its time %v", i, out.sent, out.scheduled)
		}
	}
}

// A client that sends late (here: a run whose schedule started one second
// ago, so every request is already due) must count the lateness in the
// latency, even though the server answers at once.
func TestOpenLoopLatencyCountsFromScheduledTime(t *testing.T) {
	sched := []time.Duration{0, time.Millisecond, 2 * time.Millisecond}
	start := time.Now().Add(-time.Second)
	outs := openLoop(context.Background(), start, sched, func(context.Context, int) (int, error) { return 1, nil })
	for i, o := range outs {
		if o.err != nil {
			t.Fatal(o.err)
		}
		if o.latency < time.Second-sched[i] {
			t.Errorf("request %d: latency %v; it was due %v before it was sent", i, o.latency, time.Second-sched[i])
		}
		if lag := o.sent - o.scheduled; lag < time.Second-sched[i] {
			t.Errorf("request %d: send lag %v, want at least %v", i, lag, time.Second-sched[i])
		}
	}
	s := summarize(outs, time.Second, 1)
	if s.P50 < 990 || s.SendLagP99 < 990 || s.OK != 3 {
		t.Fatalf("summary hides the lateness: %+v", s)
	}
}

// A cancelled run does not send the requests that are not yet due.
func TestOpenLoopStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	sched := []time.Duration{0, time.Hour}
	var sent atomic.Int32
	outs := openLoop(ctx, time.Now(), sched, func(context.Context, int) (int, error) {
		sent.Add(1)
		cancel()
		return 1, nil
	})
	if sent.Load() != 1 || outs[0].err != nil || outs[1].err == nil {
		t.Fatalf("sent %d, outcomes %+v", sent.Load(), outs)
	}
}

func TestSummarizeCountsErrors(t *testing.T) {
	outs := []outcome{
		{latency: 10 * time.Millisecond, tokens: 5},
		{latency: 30 * time.Millisecond, tokens: 5},
		{err: fmt.Errorf("status 500: boom")},
	}
	s := summarize(outs, 2*time.Second, 4)
	if s.OK != 2 || s.Errors != 1 || s.Requests != 3 || s.FirstError != "status 500: boom" {
		t.Fatalf("counts: %+v", s)
	}
	if s.AchievedRate != 1 || s.PairsPerS != 4 || s.TokensPerS != 5 || s.Mean != 20 || s.Max != 30 || s.P50 != 10 {
		t.Fatalf("figures: %+v", s)
	}
}
