// Package bench drives a running aimind (or any server speaking the rerank
// API) with concurrent rerank requests and reports throughput and latency.
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/aimind/aimind/internal/synth"
)

// Config is one benchmark run.
type Config struct {
	URL       string // base URL, e.g. http://127.0.0.1:8080
	Path      string // default /v1/rerank
	Model     string
	APIKey    string
	Clients   int // concurrent clients
	Requests  int // requests per client
	Documents int // documents per request
	DocWords  int // words per document (~1 token each with the synthetic vocabularies)
	Warmup    int // requests sent (sequentially) before measuring
}

// Report is what a run measured.
type Report struct {
	Clients      int
	Requests     int
	Pairs        int
	Tokens       int
	Seconds      float64
	PairsPerSec  float64
	TokensPerSec float64
	P50, P95     time.Duration
	Max          time.Duration
	Errors       int
}

func (r Report) String() string {
	return fmt.Sprintf("clients=%d requests=%d pairs=%d tokens=%d seconds=%.2f pairs/s=%.2f tokens/s=%.1f p50=%s p95=%s max=%s errors=%d",
		r.Clients, r.Requests, r.Pairs, r.Tokens, r.Seconds, r.PairsPerSec, r.TokensPerSec,
		r.P50.Round(time.Millisecond), r.P95.Round(time.Millisecond), r.Max.Round(time.Millisecond), r.Errors)
}

type body struct {
	Model     string   `json:"model,omitempty"`
	Query     string   `json:"query"`
	Documents []string `json:"documents"`
}

// Run executes the benchmark.
func Run(ctx context.Context, c Config) (Report, error) {
	if c.Path == "" {
		c.Path = "/v1/rerank"
	}
	if c.Clients < 1 || c.Requests < 1 || c.Documents < 1 {
		return Report{}, fmt.Errorf("bench: clients, requests and documents must be positive")
	}
	client := &http.Client{Timeout: 30 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: c.Clients}}
	send := func(seed uint64) (int, time.Duration, error) {
		b := body{Model: c.Model, Query: synth.Text(seed, 8)}
		for d := 0; d < c.Documents; d++ {
			b.Documents = append(b.Documents, synth.Text(seed*1000+uint64(d)+1, c.DocWords))
		}
		raw, _ := json.Marshal(b)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL+c.Path, bytes.NewReader(raw))
		if err != nil {
			return 0, 0, err
		}
		req.Header.Set("Content-Type", "application/json")
		if c.APIKey != "" {
			req.Header.Set("Authorization", "Bearer "+c.APIKey)
		}
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, 0, err
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		lat := time.Since(start)
		if resp.StatusCode != http.StatusOK {
			return 0, lat, fmt.Errorf("bench: HTTP %d: %s", resp.StatusCode, out)
		}
		var r struct {
			Usage struct {
				TotalTokens int `json:"total_tokens"`
			} `json:"usage"`
		}
		if err := json.Unmarshal(out, &r); err != nil {
			return 0, lat, err
		}
		return r.Usage.TotalTokens, lat, nil
	}
	for i := 0; i < c.Warmup; i++ {
		if _, _, err := send(uint64(1_000_000 + i)); err != nil {
			return Report{}, fmt.Errorf("bench: warm-up failed: %w", err)
		}
	}
	var (
		mu   sync.Mutex
		lats []time.Duration
		rep  = Report{Clients: c.Clients}
		wg   sync.WaitGroup
	)
	start := time.Now()
	for cl := 0; cl < c.Clients; cl++ {
		wg.Add(1)
		go func(cl int) {
			defer wg.Done()
			for i := 0; i < c.Requests; i++ {
				tokens, lat, err := send(uint64(cl*100_000 + i + 1))
				mu.Lock()
				if err != nil {
					rep.Errors++
				} else {
					rep.Requests++
					rep.Pairs += c.Documents
					rep.Tokens += tokens
					lats = append(lats, lat)
				}
				mu.Unlock()
			}
		}(cl)
	}
	wg.Wait()
	rep.Seconds = time.Since(start).Seconds()
	if len(lats) == 0 {
		return rep, fmt.Errorf("bench: every request failed")
	}
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	rep.P50 = lats[len(lats)/2]
	rep.P95 = lats[min(len(lats)-1, (len(lats)*95+99)/100-1)]
	rep.Max = lats[len(lats)-1]
	rep.PairsPerSec = float64(rep.Pairs) / rep.Seconds
	rep.TokensPerSec = float64(rep.Tokens) / rep.Seconds
	return rep, nil
}
