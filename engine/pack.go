package engine

import "sort"

// Packing is pure Go: which pending pairs go into the next encoder call.

// pending is a request waiting in the scheduler: the token lengths of its
// pairs and which of them are not yet scheduled.
type pending struct {
	lens      []int // tokens of each pair
	remaining []int // indices of pairs not yet scheduled, ascending
}

// pick is one pair chosen for a call.
type pick struct {
	req  int // index into the queue
	pair int // index of the pair within its request
}

// pack chooses pairs for one encoder call under budget tokens and maxSeqs
// sequences, in two passes. The first gives every waiting request a fair
// share of the budget (budget / requests, at least one pair), in arrival
// order, so a small request is not stuck behind a large one; the second fills
// what is left, oldest request first. Each request's pairs go in order, and a
// pair that does not fit is passed over so shorter ones can fill the call. If
// the call would otherwise be empty, the first remaining pair is taken even
// above budget (the context is sized to hold the longest allowed pair). pack
// removes the picked pairs from remaining.
func pack(queue []*pending, budget, maxSeqs int) []pick {
	var picks []pick
	used := 0
	full := func() bool { return len(picks) >= maxSeqs || used >= budget }
	take := func(qi int, p *pending, limit, pairLimit int) {
		kept := p.remaining[:0]
		got, gotPairs := 0, 0
		for _, pi := range p.remaining {
			n := p.lens[pi]
			fits := len(picks) < maxSeqs && used+n <= budget && (got == 0 || got+n <= limit) && gotPairs < pairLimit
			if !fits && len(picks) == 0 {
				fits = true // an oversize pair gets a call of its own
			}
			if fits {
				picks = append(picks, pick{req: qi, pair: pi})
				used += n
				got += n
				gotPairs++
			} else {
				kept = append(kept, pi)
			}
		}
		p.remaining = kept
	}
	waiting := 0
	for _, p := range queue {
		if len(p.remaining) > 0 {
			waiting++
		}
	}
	if waiting > 1 {
		share, pairShare := max(budget/waiting, 1), max(maxSeqs/waiting, 1)
		for qi, p := range queue {
			if full() {
				break
			}
			take(qi, p, share, pairShare)
		}
	}
	for qi, p := range queue {
		if full() {
			break
		}
		take(qi, p, budget, maxSeqs)
	}
	sort.Slice(picks, func(a, b int) bool {
		if picks[a].req != picks[b].req {
			return picks[a].req < picks[b].req
		}
		return picks[a].pair < picks[b].pair
	})
	return picks
}
