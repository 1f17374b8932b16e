package batch

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
)

// picked names the picks of one call as "request/pair" in call order, with
// requests named by admission order.
func picked(picks []pick) []string {
	var out []string
	for _, p := range picks {
		out = append(out, fmt.Sprintf("%d/%d", p.req.id, p.pair))
	}
	return out
}

func repeat(n, tokens int) []int {
	l := make([]int, n)
	for i := range l {
		l[i] = tokens
	}
	return l
}

// TestSchedulerNextCall: which pairs the next call takes, with every request
// admitted at a chosen clock.
func TestSchedulerNextCall(t *testing.T) {
	type arrival struct {
		at   int64
		lens []int
	}
	cases := []struct {
		name    string
		queue   []arrival
		clock   int64 // when the call is chosen
		budget  int
		maxSeqs int
		want    []string
		left    [][]int // unscheduled pairs per request afterwards
	}{
		{
			name:  "one request fits whole",
			queue: []arrival{{0, []int{100, 100, 100}}}, budget: 512, maxSeqs: 256,
			want: []string{"0/0", "0/1", "0/2"}, left: [][]int{{}},
		},
		{
			name:  "budget splits a request, in order",
			queue: []arrival{{0, []int{200, 200, 200}}}, budget: 512, maxSeqs: 256,
			want: []string{"0/0", "0/1"}, left: [][]int{{2}},
		},
		{
			name:  "arriving together: the shortest request first",
			queue: []arrival{{0, repeat(8, 100)}, {0, []int{100}}, {0, []int{100, 100}}}, budget: 300, maxSeqs: 256,
			want: []string{"1/0", "2/0", "2/1"}, left: [][]int{{0, 1, 2, 3, 4, 5, 6, 7}, {}, {}},
		},
		{
			name:  "the same size: the earlier arrival first, served whole",
			queue: []arrival{{0, repeat(4, 100)}, {50, repeat(4, 100)}}, clock: 100, budget: 300, maxSeqs: 256,
			want: []string{"0/0", "0/1", "0/2"}, left: [][]int{{3}, {0, 1, 2, 3}},
		},
		{
			name:  "what the first request leaves, the next one fills",
			queue: []arrival{{0, []int{300}}, {0, []int{100, 100, 300}}}, budget: 512, maxSeqs: 256,
			want: []string{"0/0", "1/0", "1/1"}, left: [][]int{{}, {2}},
		},
		{
			name:  "a long pair is passed over for shorter ones that fit",
			queue: []arrival{{0, []int{300, 400, 100}}}, budget: 512, maxSeqs: 256,
			want: []string{"0/0", "0/2"}, left: [][]int{{1}},
		},
		{
			name:  "a pair above budget gets a call of its own",
			queue: []arrival{{0, []int{600, 10}}}, budget: 512, maxSeqs: 256,
			want: []string{"0/0"}, left: [][]int{{1}},
		},
		{
			name:  "sequence cap",
			queue: []arrival{{0, []int{1, 1, 1}}, {0, []int{1, 1, 1, 1}}}, budget: 512, maxSeqs: 4,
			want: []string{"0/0", "0/1", "0/2", "1/0"}, left: [][]int{{}, {1, 2, 3}},
		},
		{
			// The large request has waited 800 tokens of work for its 800:
			// stretch 2. The small one, just arrived, has stretch 1 and waits.
			name:  "a large request that waited goes before a small one just arrived",
			queue: []arrival{{0, repeat(8, 100)}, {800, []int{100}}}, clock: 800, budget: 300, maxSeqs: 256,
			want: []string{"0/0", "0/1", "0/2"}, left: [][]int{{3, 4, 5, 6, 7}, {0}},
		},
		{
			// Stretch of the large one: (1000+800)/800 = 2.25; of the small
			// one (200+100)/100 = 3.
			name:  "a small request that waited longer, relative to its work, overtakes",
			queue: []arrival{{0, repeat(8, 100)}, {800, []int{100}}}, clock: 1000, budget: 300, maxSeqs: 256,
			want: []string{"1/0", "0/0", "0/1"}, left: [][]int{{2, 3, 4, 5, 6, 7}, {}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newScheduler(tc.budget, tc.maxSeqs)
			var reqs []*request
			for _, a := range tc.queue {
				s.clock = a.at
				reqs = append(reqs, s.admit(a.lens))
			}
			s.clock = max(s.clock, tc.clock)
			if got := picked(s.next()); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("picks = %v, want %v", got, tc.want)
			}
			for i, r := range reqs {
				if !slices.Equal(r.remaining, tc.left[i]) && len(r.remaining)+len(tc.left[i]) > 0 {
					t.Fatalf("request %d remaining = %v, want %v", i, r.remaining, tc.left[i])
				}
			}
		})
	}
}

// TestSchedulerDrop: a dropped request's pairs are never scheduled.
func TestSchedulerDrop(t *testing.T) {
	s := newScheduler(512, 256)
	a := s.admit([]int{100, 100})
	b := s.admit([]int{100})
	s.drop(a)
	if got := picked(s.next()); !reflect.DeepEqual(got, []string{"1/0"}) {
		t.Fatalf("picks = %v", got)
	}
	if !s.empty() || len(a.remaining) != 0 || len(b.remaining) != 0 {
		t.Fatalf("queue not empty: %d waiting", len(s.waiting))
	}
	if p := s.next(); len(p) != 0 {
		t.Fatalf("picks from an empty queue: %v", picked(p))
	}
}

// TestSchedulerDrainsEverything: repeated calls schedule every pair exactly
// once and never exceed the limits except for a lone oversize pair.
func TestSchedulerDrainsEverything(t *testing.T) {
	lens := [][]int{{5, 600, 40, 40}, {512, 1}, {300, 300, 300}, {7}}
	s := newScheduler(512, 3)
	var reqs []*request
	for _, l := range lens {
		reqs = append(reqs, s.admit(l))
	}
	seen := map[string]int{}
	for calls := 0; !s.empty(); calls++ {
		if calls > 20 {
			t.Fatal("the scheduler does not make progress")
		}
		picks := s.next()
		if len(picks) == 0 || len(picks) > 3 {
			t.Fatalf("call with %d sequences", len(picks))
		}
		tokens := 0
		for _, p := range picks {
			seen[fmt.Sprintf("%d/%d", p.req.id, p.pair)]++
			tokens += p.req.lens[p.pair]
		}
		if tokens > 512 && len(picks) > 1 {
			t.Fatalf("call with %d tokens in %d pairs", tokens, len(picks))
		}
		s.advance(tokens)
	}
	for r, l := range lens {
		for i := range l {
			if n := seen[fmt.Sprintf("%d/%d", r, i)]; n != 1 {
				t.Fatalf("pair %d/%d scheduled %d times", r, i, n)
			}
		}
	}
}

// call runs one encoder call on the scheduler: it picks, and advances the
// clock by the picked pairs' tokens.
func call(s *scheduler) []pick {
	picks := s.next()
	n := 0
	for _, p := range picks {
		n += p.req.lens[p.pair]
	}
	s.advance(n)
	return picks
}

// simClient sends requests of pairs tokens each, one after another (a closed
// loop) from clock start, until the simulation ends.
type simClient struct {
	start int64
	pairs []int
	count int // requests to send; 0: until the end
}

// simResult is one request's arrival and finish on the scheduler clock.
type simResult struct {
	client        int
	arrival, done int64
	work          int64
}

// simulate runs clients against a scheduler until limit tokens have been
// encoded (or every client is done) and returns every finished request.
func simulate(budget int, clients []simClient, limit int64) []simResult {
	s := newScheduler(budget, 256)
	type live struct {
		client int
		r      *request
		left   int
		res    simResult
	}
	active := map[*request]*live{}
	sent := make([]int, len(clients))
	nextAt := make([]int64, len(clients))
	busy := make([]bool, len(clients))
	for i, c := range clients {
		nextAt[i] = c.start
	}
	var out []simResult
	for s.clock < limit {
		for i, c := range clients {
			if !busy[i] && nextAt[i] <= s.clock && (c.count == 0 || sent[i] < c.count) {
				r := s.admit(c.pairs)
				active[r] = &live{client: i, r: r, left: len(c.pairs), res: simResult{client: i, arrival: s.clock, work: r.work}}
				busy[i] = true
				sent[i]++
			}
		}
		if s.empty() {
			next := int64(-1)
			for i, c := range clients {
				if !busy[i] && (c.count == 0 || sent[i] < c.count) && (next < 0 || nextAt[i] < next) {
					next = nextAt[i]
				}
			}
			if next < 0 {
				break
			}
			s.clock = max(s.clock, next)
			continue
		}
		for _, p := range call(s) {
			l := active[p.req]
			if l.left--; l.left == 0 {
				l.res.done = s.clock
				out = append(out, l.res)
				delete(active, p.req)
				busy[l.client] = false
				nextAt[l.client] = s.clock
			}
		}
	}
	return out
}

// TestSchedulerAgingBoundsWaits: a 200-pair request beside four clients that
// keep the engine saturated with 5-pair requests (issue load (c)). Pure
// shortest-first would starve the large request for as long as the small
// ones keep coming; here it finishes, and every request's stretch (latency
// over its own work) stays within a small factor of the others'.
func TestSchedulerAgingBoundsWaits(t *testing.T) {
	clients := []simClient{
		{start: 0, pairs: repeat(200, 135), count: 1},
		{start: 0, pairs: repeat(5, 135)},
		{start: 100, pairs: repeat(5, 135)},
		{start: 200, pairs: repeat(5, 135)},
		{start: 300, pairs: repeat(5, 135)},
	}
	work := int64(200 * 135)
	res := simulate(512, clients, 8*work)
	var big *simResult
	maxSmall := 0.0
	for i := range res {
		r := &res[i]
		stretch := float64(r.done-r.arrival) / float64(r.work)
		if r.client == 0 {
			big = r
			continue
		}
		maxSmall = max(maxSmall, stretch)
	}
	if big == nil {
		t.Fatal("the large request never finished: starved by the small ones")
	}
	bigStretch := float64(big.done-big.arrival) / float64(big.work)
	// Five clients share the engine: a fair share gives each a stretch near
	// 5. Neither side may be pushed far past that.
	if bigStretch > 8 {
		t.Errorf("large request stretch %.2f (latency %d tokens of work for its %d)", bigStretch, big.done-big.arrival, big.work)
	}
	if maxSmall > 8 {
		t.Errorf("a small request's stretch reached %.2f", maxSmall)
	}
	t.Logf("large request stretch %.2f, worst small stretch %.2f, %d requests", bigStretch, maxSmall, len(res))
}

// TestSchedulerLaterLargerNeverOvertakes: over seeded random traces of
// arrivals and calls, no call is led by a request while an earlier one with
// no more work waits, and every pair is scheduled in the end.
func TestSchedulerLaterLargerNeverOvertakes(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		rng := seed
		rand := func(n int) int { // xorshift, deterministic
			rng ^= rng << 13
			rng ^= rng >> 7
			rng ^= rng << 17
			return int(rng % uint64(n))
		}
		s := newScheduler(512, 256)
		var reqs []*request
		for i := 0; i < 40; i++ {
			s.clock += int64(rand(400))
			lens := make([]int, 1+rand(30))
			for j := range lens {
				lens[j] = 20 + rand(200)
			}
			reqs = append(reqs, s.admit(lens))
			// Serve one call between some arrivals.
			if rand(2) == 0 && !s.empty() {
				checkOrder(t, seed, s)
				call(s)
			}
		}
		for !s.empty() {
			checkOrder(t, seed, s)
			call(s)
		}
		for _, r := range reqs {
			if len(r.remaining) != 0 {
				t.Fatalf("seed %d: request %d left unscheduled", seed, r.id)
			}
		}
	}
}

// checkOrder asserts that the request the next call would lead with is not
// a later arrival with at least as much work as one still waiting. It leaves
// the queue as it found it.
func checkOrder(t *testing.T, seed uint64, s *scheduler) {
	t.Helper()
	waiting := slices.Clone(s.waiting)
	picks := s.next()
	// Undo: put the picks back so the caller's next() sees the same queue.
	for _, p := range picks {
		p.req.remaining = append(p.req.remaining, p.pair)
		slices.Sort(p.req.remaining)
	}
	s.waiting = waiting
	first := picks[0].req
	for _, w := range waiting {
		if w != first && w.arrival < first.arrival && w.work <= first.work {
			t.Fatalf("seed %d: request %d (arrived %d, work %d) served before request %d (arrived %d, work %d)",
				seed, first.id, first.arrival, first.work, w.id, w.arrival, w.work)
		}
	}
}
