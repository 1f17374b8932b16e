package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// maxArrivals bounds one schedule (and the request bodies built for it).
const maxArrivals = 1_000_000

// poissonSchedule returns the send times, as offsets from the start of a run,
// of a Poisson arrival process of rate requests per second: the gaps between
// arrivals are exponential with mean 1/rate, drawn from a PCG generator seeded
// with seed, so one seed always gives one schedule and two servers can be sent
// the same one. With n > 0 the schedule has n arrivals; otherwise it holds
// every arrival before dur.
func poissonSchedule(seed uint64, rate float64, n int, dur time.Duration) ([]time.Duration, error) {
	if !(rate > 0) || math.IsInf(rate, 0) {
		return nil, fmt.Errorf("cannot build a Poisson schedule: the rate must be a positive number of requests per second, not %v", rate)
	}
	if n < 0 || dur < 0 {
		return nil, fmt.Errorf("cannot build a Poisson schedule: negative request count or duration")
	}
	if n == 0 && dur == 0 {
		return nil, fmt.Errorf("cannot build a Poisson schedule: give a request count or a duration")
	}
	want := n
	if n == 0 {
		expected := rate * dur.Seconds()
		if expected > maxArrivals/2 {
			return nil, fmt.Errorf("cannot build a Poisson schedule: %.0f expected arrivals exceed the limit of %d", expected, maxArrivals/2)
		}
		want = int(expected + 4*math.Sqrt(expected) + 16)
	} else if n > maxArrivals {
		return nil, fmt.Errorf("cannot build a Poisson schedule: %d requests exceed the limit of %d", n, maxArrivals)
	}
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	out := make([]time.Duration, 0, want)
	t := 0.0 // seconds, kept in float64 so rounding does not accumulate
	for {
		t += r.ExpFloat64() / rate
		at := time.Duration(t * float64(time.Second))
		if n == 0 && at >= dur {
			return out, nil
		}
		out = append(out, at)
		if n > 0 && len(out) == n {
			return out, nil
		}
		if len(out) >= maxArrivals {
			return nil, fmt.Errorf("cannot build a Poisson schedule: more than %d arrivals", maxArrivals)
		}
	}
}
