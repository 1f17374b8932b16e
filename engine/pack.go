package engine

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

// pack chooses pairs for one encoder call: requests in arrival order, each
// request's pairs in order, while the call stays within budget tokens and
// maxSeqs sequences. A pair that does not fit is passed over so later (shorter)
// pairs can fill the call, but an older request always goes first, so its pairs
// stay together as far as the budget allows. If the call would otherwise be
// empty, the first remaining pair is taken even above budget (the context is
// sized to hold the longest allowed pair). pack removes the picked pairs from
// remaining.
func pack(queue []*pending, budget, maxSeqs int) []pick {
	var picks []pick
	used := 0
	for qi, p := range queue {
		kept := p.remaining[:0]
		for _, pi := range p.remaining {
			n := p.lens[pi]
			fits := len(picks) < maxSeqs && used+n <= budget
			if !fits && len(picks) == 0 {
				fits = true // an oversize pair gets a call of its own
			}
			if fits {
				picks = append(picks, pick{req: qi, pair: pi})
				used += n
			} else {
				kept = append(kept, pi)
			}
		}
		p.remaining = kept
		if len(picks) >= maxSeqs || used >= budget {
			break
		}
	}
	return picks
}
