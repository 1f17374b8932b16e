package main

import (
	"context"
	"math"
	"sort"
	"sync"
	"time"
)

// sendFunc sends request i and returns the prompt tokens the server counted.
type sendFunc func(ctx context.Context, i int) (tokens int, err error)

// outcome is one request of a run. Offsets are from the run's start.
type outcome struct {
	scheduled time.Duration // when the request was due (open loop) or handed to a client (closed loop)
	sent      time.Duration // when the client actually started sending it
	latency   time.Duration // completion minus scheduled: queueing in the client counts
	tokens    int
	err       error
}

// openLoop sends request i at start+sched[i] whether or not earlier requests
// have been answered: each send runs in its own goroutine, so a slow server
// makes requests pile up instead of slowing the arrivals (no coordinated
// omission). A request's latency runs from its scheduled time, not from the
// moment the client got round to sending it, so a late client cannot hide
// queueing either. It returns when every sent request has finished; when ctx
// ends, requests not yet due are not sent and count as errors.
func openLoop(ctx context.Context, start time.Time, sched []time.Duration, send sendFunc) []outcome {
	out := make([]outcome, len(sched))
	var wg sync.WaitGroup
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for i, at := range sched {
		out[i].scheduled = at
		if wait := time.Until(start.Add(at)); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
				for j := i; j < len(sched); j++ {
					out[j].scheduled = sched[j]
					out[j].err = ctx.Err()
				}
				wg.Wait()
				return out
			}
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			o := &out[i]
			o.sent = time.Since(start)
			o.tokens, o.err = send(ctx, i)
			o.latency = time.Since(start) - o.scheduled
		}(i)
	}
	wg.Wait()
	return out
}

// closedLoop runs n requests through c clients, each sending its next request
// when the previous one has been answered. The mean latency of such a run is
// fixed by Little's law (c x wall / n); see docs/benchmarks.md.
func closedLoop(ctx context.Context, start time.Time, c, n int, send sendFunc) []outcome {
	out := make([]outcome, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				o := &out[i]
				o.scheduled = time.Since(start)
				o.sent = o.scheduled
				o.tokens, o.err = send(ctx, i)
				o.latency = time.Since(start) - o.scheduled
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}

// percentile is the nearest-rank p-quantile (0 < p <= 1) of sorted values:
// the smallest value with at least p of the values at or below it.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	k := int(math.Ceil(p*float64(len(sorted)))) - 1
	k = max(0, min(k, len(sorted)-1))
	return sorted[k]
}

// summary is the JSON line a run prints.
type summary struct {
	Mode         string  `json:"mode"`
	Rate         float64 `json:"rate,omitempty"`           // offered requests/s (open loop)
	OfferedRate  float64 `json:"offered_rate,omitempty"`   // arrivals / span of the schedule, as drawn
	AchievedRate float64 `json:"achieved_rate"`            // answered requests / wall
	Clients      int     `json:"clients,omitempty"`        // closed loop
	Requests     int     `json:"requests"`                 // sent or due
	OK           int     `json:"ok"`                       // answered with 200
	Errors       int     `json:"errors"`                   // transport errors and non-200 answers
	WallS        float64 `json:"wall_s"`                   // start to the last completion
	PairsPerS    float64 `json:"pairs_per_s"`              // answered pairs / wall
	TokensPerS   float64 `json:"tokens_per_s"`             // server-counted tokens / wall
	P50          float64 `json:"p50_ms"`                   // of answered requests
	P95          float64 `json:"p95_ms"`                   //
	P99          float64 `json:"p99_ms"`                   //
	Max          float64 `json:"max_ms"`                   //
	Mean         float64 `json:"mean_ms"`                  //
	SendLagP99   float64 `json:"send_lag_p99_ms"`          // sent minus scheduled: the client's own delay
	SendLagMax   float64 `json:"send_lag_max_ms"`          //
	FirstError   string  `json:"first_error,omitempty"`    //
	Seed         int64   `json:"seed"`                     //
	DurationS    float64 `json:"duration_s,omitempty"`     // the schedule's requested length (open loop)
	ScheduleEndS float64 `json:"schedule_end_s,omitempty"` // the last arrival's offset (open loop)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// summarize computes a run's figures; docs is the documents per request.
func summarize(outs []outcome, wall time.Duration, docs int) summary {
	var s summary
	var lats, lags []float64
	tokens := 0
	for _, o := range outs {
		if o.err != nil {
			s.Errors++
			if s.FirstError == "" {
				s.FirstError = o.err.Error()
			}
			continue
		}
		lats = append(lats, ms(o.latency))
		lags = append(lags, ms(o.sent-o.scheduled))
		tokens += o.tokens
	}
	sort.Float64s(lats)
	sort.Float64s(lags)
	s.Requests = len(outs)
	s.OK = len(lats)
	s.WallS = wall.Seconds()
	if s.WallS > 0 {
		s.AchievedRate = float64(s.OK) / s.WallS
		s.PairsPerS = float64(s.OK*docs) / s.WallS
		s.TokensPerS = float64(tokens) / s.WallS
	}
	s.P50, s.P95, s.P99 = percentile(lats, 0.50), percentile(lats, 0.95), percentile(lats, 0.99)
	s.SendLagP99 = percentile(lags, 0.99)
	if len(lats) > 0 {
		s.Max = lats[len(lats)-1]
		s.SendLagMax = lags[len(lags)-1]
		sum := 0.0
		for _, l := range lats {
			sum += l
		}
		s.Mean = sum / float64(len(lats))
	}
	return s
}
