package batch

import "sort"

// Scheduling is pure Go: which waiting pairs go into the next encoder call.
//
// The scheduler serves whole requests, not pairs: the next call goes to the
// request whose stretch (time since arrival plus its own work, divided by its
// own work) is highest, and what that request cannot fill goes to the next
// one. Two requests that arrive together (the same stretch, 1) are served
// shortest first; a request that arrived later and is no smaller never goes before an
// earlier one; and a request's stretch grows while it waits, so a large one
// is not starved by a stream of small ones: a small request overtakes it only
// while the small one's stretch is the higher, which bounds every request's
// wait to a multiple of its own work that is the same for all of them.
//
// Time is the engine's own work, counted in tokens encoded since the model
// opened: it advances only while something is being scored, so the order is
// a pure function of what arrived when and needs no clock (the table tests
// replay arrivals at chosen points of it).

// request is one waiting request: the token lengths of its pairs and which
// of them are not yet scheduled.
type request struct {
	id        uint64 // admission order, the last tie-break
	arrival   int64  // scheduler clock at admission
	work      int64  // tokens of all its pairs
	lens      []int  // tokens of each pair
	remaining []int  // indices of pairs not yet scheduled, ascending
}

// pick is one pair chosen for a call.
type pick struct {
	req  *request
	pair int
}

// scheduler holds the waiting requests of one model.
type scheduler struct {
	budget  int // tokens per call
	maxSeqs int // sequences per call
	clock   int64
	nextID  uint64
	waiting []*request
}

func newScheduler(budget, maxSeqs int) *scheduler {
	return &scheduler{budget: budget, maxSeqs: maxSeqs}
}

// admit queues a request whose pairs have the given token lengths.
func (s *scheduler) admit(lens []int) *request {
	r := &request{id: s.nextID, arrival: s.clock, lens: lens, remaining: make([]int, len(lens))}
	s.nextID++
	for i, n := range lens {
		r.remaining[i] = i
		r.work += int64(n)
	}
	s.waiting = append(s.waiting, r)
	return r
}

// drop removes a request's unscheduled pairs (its client has gone).
func (s *scheduler) drop(r *request) {
	r.remaining = nil
	for i, w := range s.waiting {
		if w == r {
			s.waiting = append(s.waiting[:i], s.waiting[i+1:]...)
			return
		}
	}
}

// empty reports whether nothing waits.
func (s *scheduler) empty() bool { return len(s.waiting) == 0 }

// advance moves the clock by the tokens a call encoded.
func (s *scheduler) advance(tokens int) { s.clock += int64(tokens) }

// before orders two waiting requests: the higher stretch first, then the
// smaller work (requests that have not waited all have stretch 1), then the
// earlier arrival, then admission order. Stretch (clock-arrival+work)/work is
// compared by cross-multiplying, exactly.
func (s *scheduler) before(a, b *request) bool {
	sa := (s.clock - a.arrival + a.work) * b.work
	sb := (s.clock - b.arrival + b.work) * a.work
	if sa != sb {
		return sa > sb
	}
	if a.work != b.work {
		return a.work < b.work
	}
	if a.arrival != b.arrival {
		return a.arrival < b.arrival
	}
	return a.id < b.id
}

// next chooses the pairs of the next encoder call, under the token budget
// and the sequence cap: requests in order of stretch, each one's pairs in
// order, a pair that does not fit passed over so shorter ones can fill the
// call. A call that would otherwise be empty takes the first pair alone even
// above budget (the context is sized for the longest allowed pair). The
// picked pairs leave their requests; requests with nothing left to schedule
// leave the queue. Picks are grouped by request in the order served.
func (s *scheduler) next() []pick {
	sort.SliceStable(s.waiting, func(i, j int) bool { return s.before(s.waiting[i], s.waiting[j]) })
	var picks []pick
	used := 0
	for _, r := range s.waiting {
		if len(picks) >= s.maxSeqs || used >= s.budget {
			break
		}
		kept := r.remaining[:0]
		for _, pi := range r.remaining {
			n := r.lens[pi]
			if len(picks) == 0 || (len(picks) < s.maxSeqs && used+n <= s.budget) {
				picks = append(picks, pick{req: r, pair: pi})
				used += n
			} else {
				kept = append(kept, pi)
			}
		}
		r.remaining = kept
	}
	live := s.waiting[:0]
	for _, r := range s.waiting {
		if len(r.remaining) > 0 {
			live = append(live, r)
		}
	}
	clear(s.waiting[len(live):])
	s.waiting = live
	return picks
}
