package streamop

import "math"

// timed is an item and a time it is due at.
type timed[K any] struct {
	ts  int64
	key K
}

// timeHeap is a min-heap of items by their times: the rows of an
// interval join's side by their keys, the rows of windows an aggregation
// of a GROUP BY's rows holds.
type timeHeap[K any] []timed[K]

func (h *timeHeap[K]) push(d timed[K]) {
	*h = append(*h, d)
	s := *h
	for i := len(s) - 1; i > 0; {
		parent := (i - 1) / 2
		if s[parent].ts <= s[i].ts {
			break
		}
		s[parent], s[i] = s[i], s[parent]
		i = parent
	}
}

// pop takes the earliest item out; the heap must not be empty.
func (h *timeHeap[K]) pop() timed[K] {
	s := *h
	top := s[0]
	n := len(s) - 1
	s[0] = s[n]
	s[n] = timed[K]{}
	s = s[:n]
	for i := 0; ; {
		least, l, r := i, 2*i+1, 2*i+2
		if l < n && s[l].ts < s[least].ts {
			least = l
		}
		if r < n && s[r].ts < s[least].ts {
			least = r
		}
		if least == i {
			break
		}
		s[least], s[i] = s[i], s[least]
		i = least
	}
	*h = s
	return top
}

// low is the earliest time of an item; math.MaxInt64 when none.
func (h timeHeap[K]) low() int64 {
	if len(h) == 0 {
		return math.MaxInt64
	}
	return h[0].ts
}
