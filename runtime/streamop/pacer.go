package streamop

import "time"

// pacer paces the rows of a changelog (a continuous aggregation's groups,
// a top-N's ranks) by an emit interval (spec.runtime.emitInterval): the
// changes of batches are held back and written at most once an interval,
// each row as it then is, or at the next Advance after a flush.
type pacer struct {
	clock func() time.Time
	// every is the interval, in nanoseconds of the clock; 0 writes the
	// changes after every batch. last is when they were last written.
	every, last int64
	// flush makes the next Advance write the changes held, due or not.
	flush bool
}

// newPacer returns a pacer of interval every whose first interval starts
// now.
func newPacer(clock func() time.Time, every time.Duration) pacer {
	return pacer{clock: clock, every: int64(every), last: clock().UnixNano()}
}

// afterBatch reports whether a batch's changes are written at once.
func (p *pacer) afterBatch() bool { return p.every == 0 || p.due() }

func (p *pacer) due() bool { return p.clock().UnixNano()-p.last >= p.every }

// written notes that the changes held were written.
func (p *pacer) written() {
	if p.every > 0 {
		p.last = p.clock().UnixNano()
	}
}

// unwritten returns list and written, the place in it up to which it is
// written, once written in part: once written passes half the list, what
// is left is moved to the front, so that changes made while a backlog is
// written a batch at a time do not grow the list without end, at a
// constant cost a change.
func unwritten[T any](list []*T, written int) ([]*T, int) {
	if written <= len(list)/2 {
		return list, written
	}
	n := copy(list, list[written:])
	clear(list[n:])
	return list[:n], 0
}

// writtenInPart notes that the changes held were written in part (a
// batch's worth): the next Advance writes on, due or not.
func (p *pacer) writtenInPart() { p.flush = true }

// atAdvance reports whether an Advance writes the changes held, if held
// says there are any: when a flush asks for them, or they are due.
func (p *pacer) atAdvance(held bool) bool {
	write := held && (p.flush || p.due())
	p.flush = false
	return write
}

// flushHeld makes the next Advance write the changes held, if held says
// there are any, and reports whether there are.
func (p *pacer) flushHeld(held bool) bool {
	p.flush = held
	return held
}
