// Command rerankload drives a /v1/rerank endpoint (aimind, llama-server or any
// peer with the same API) and prints throughput and latency, so that every
// side of a comparison is measured by the same client.
//
// Closed loop (default): -c clients each send their next request when the
// previous one is answered. Open loop (-rate R): requests arrive as a Poisson
// process of R per second for -duration (or -n requests), sent whether or not
// earlier ones are answered, latency counted from each request's scheduled
// time. See docs/benchmarks.md for why the open loop is the latency figure.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"os"
	"strings"
	"time"
)

var words = strings.Fields("what is a panda bear it hello giant the of and in to is animal china native family black white eats bamboo cute large mammal")

func text(r *rand.Rand, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(words[r.Intn(len(words))])
	}
	return b.String()
}

type options struct {
	url, key, model     string
	clients, requests   int
	docs, qwords, words int
	warmup              int
	same, jsonOut       bool
	seed                int64
	rate                float64
	duration, timeout   time.Duration
	raw                 string
}

func main() {
	var o options
	flag.StringVar(&o.url, "url", "http://127.0.0.1:8080/v1/rerank", "endpoint")
	flag.StringVar(&o.key, "key", "", "bearer key")
	flag.StringVar(&o.model, "model", "bge-reranker-v2-m3", "model name")
	flag.IntVar(&o.clients, "c", 4, "concurrent clients (closed loop)")
	flag.IntVar(&o.requests, "n", 40, "requests (with -rate and -duration: ignored)")
	flag.IntVar(&o.docs, "docs", 20, "documents per request")
	flag.IntVar(&o.qwords, "qwords", 12, "words per query")
	flag.IntVar(&o.words, "dwords", 120, "words per document")
	flag.IntVar(&o.warmup, "warmup", 2, "warm-up requests, sent one by one first and not counted")
	flag.BoolVar(&o.jsonOut, "json", false, "print one JSON line")
	flag.BoolVar(&o.same, "same", false, "send one identical request every time (a cache's best case)")
	flag.Int64Var(&o.seed, "seed", 7, "seed of the generated texts and of the arrival times")
	flag.Float64Var(&o.rate, "rate", 0, "open loop: Poisson arrivals of this many requests per second")
	flag.DurationVar(&o.duration, "duration", 0, "open loop: length of the arrival schedule (0: -n requests)")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Minute, "per-request timeout")
	flag.StringVar(&o.raw, "raw", "", "write one JSON line per request to this file")
	flag.Parse()
	if err := run(context.Background(), o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "rerankload:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, stdout io.Writer) error {
	if o.docs < 1 || o.qwords < 1 || o.words < 1 || o.warmup < 0 {
		return fmt.Errorf("cannot run: -docs, -qwords and -dwords must be at least 1, -warmup at least 0")
	}
	open := o.rate != 0
	var sched []time.Duration
	if open {
		n := o.requests
		if o.duration > 0 {
			n = 0
		}
		var err error
		if sched, err = poissonSchedule(uint64(o.seed), o.rate, n, o.duration); err != nil {
			return err
		}
		o.requests = len(sched)
	} else if o.clients < 1 || o.requests < 1 {
		return fmt.Errorf("cannot run: -c and -n must be at least 1")
	}
	bodies, err := makeBodies(o)
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: o.timeout, Transport: &http.Transport{MaxIdleConnsPerHost: max(o.clients*2, 64)}}
	send := func(ctx context.Context, i int) (int, error) { return post(ctx, client, o, bodies[i]) }
	for i := range o.warmup {
		if _, err := send(ctx, o.requests+i); err != nil {
			return fmt.Errorf("cannot warm up: %w", err)
		}
	}
	start := time.Now()
	var outs []outcome
	if open {
		outs = openLoop(ctx, start, sched, send)
	} else {
		outs = closedLoop(ctx, start, o.clients, o.requests, send)
	}
	wall := time.Since(start)
	s := summarize(outs, wall, o.docs)
	s.Seed = o.seed
	if open {
		s.Mode, s.Rate = "open", o.rate
		s.DurationS = o.duration.Seconds()
		if len(sched) > 0 {
			s.ScheduleEndS = sched[len(sched)-1].Seconds()
			s.OfferedRate = float64(len(sched)) / sched[len(sched)-1].Seconds()
		}
	} else {
		s.Mode, s.Clients = "closed", o.clients
	}
	if o.raw != "" {
		if err := writeRaw(o.raw, outs); err != nil {
			return err
		}
	}
	if o.jsonOut {
		b, err := json.Marshal(s)
		if err != nil {
			return fmt.Errorf("cannot encode the summary: %w", err)
		}
		fmt.Fprintln(stdout, string(b))
	} else {
		fmt.Fprintf(stdout, "%s: ok=%d errors=%d wall=%.2fs rate=%.3f/s pairs/s=%.2f tokens/s=%.1f p50=%.0fms p95=%.0fms p99=%.0fms max=%.0fms send-lag-p99=%.1fms\n",
			s.Mode, s.OK, s.Errors, s.WallS, s.AchievedRate, s.PairsPerS, s.TokensPerS, s.P50, s.P95, s.P99, s.Max, s.SendLagP99)
	}
	if s.FirstError != "" {
		fmt.Fprintln(os.Stderr, "first error:", s.FirstError)
	}
	return nil
}

// makeBodies builds the requests (then the warm-ups) from the seeded texts.
func makeBodies(o options) ([][]byte, error) {
	r := rand.New(rand.NewSource(o.seed))
	bodies := make([][]byte, o.requests+o.warmup)
	for i := range bodies {
		if o.same && i > 0 {
			bodies[i] = bodies[0]
			continue
		}
		ds := make([]string, o.docs)
		for j := range ds {
			ds[j] = text(r, o.words)
		}
		b, err := json.Marshal(map[string]any{"model": o.model, "query": text(r, o.qwords), "documents": ds, "top_n": 3})
		if err != nil {
			return nil, fmt.Errorf("cannot encode a request: %w", err)
		}
		bodies[i] = b
	}
	return bodies, nil
}

// post sends one request and returns the server's usage.prompt_tokens.
func post(ctx context.Context, client *http.Client, o options, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.url, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("cannot build the request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if o.key != "" {
		req.Header.Set("Authorization", "Bearer "+o.key)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("cannot read the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("status %d: %.200s", resp.StatusCode, b)
	}
	var out struct {
		Usage struct {
			PromptTokens int `json:"prompt_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return 0, fmt.Errorf("cannot decode the answer: %w", err)
	}
	return out.Usage.PromptTokens, nil
}

// writeRaw writes one JSON line per request: offsets and latency in ms.
func writeRaw(path string, outs []outcome) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("cannot write raw results: %w", err)
	}
	enc := json.NewEncoder(f)
	for i, o := range outs {
		line := map[string]any{"i": i, "scheduled_ms": ms(o.scheduled), "sent_ms": ms(o.sent), "latency_ms": ms(o.latency), "tokens": o.tokens}
		if o.err != nil {
			line["error"] = o.err.Error()
		}
		if err := enc.Encode(line); err != nil {
			f.Close()
			return fmt.Errorf("cannot write raw results: %w", err)
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("cannot write raw results: %w", err)
	}
	return nil
}
