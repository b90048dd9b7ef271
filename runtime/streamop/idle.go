package streamop

import "time"

// idleLinks place an item in an idleList: when it last changed, and its
// neighbours.
type idleLinks[E any] struct {
	touched      int64
	older, newer *E
	listed       bool
}

// idler is a pointer to an item an idleList can hold.
type idler[E any] interface {
	*E
	links() *idleLinks[E]
}

// idleList lists items (groups of a continuous aggregation, partitions of
// a top-N without a window) by their last change, the least recent
// first, so that a ttl finds the expired ones without looking at the
// others.
type idleList[E any, P idler[E]] struct {
	oldest, newest P
	lastSweep      int64 // when sweepDue last said so
}

// sweepDue reports whether it is time, at now, to look for items idle
// for the ttl: at most every sixteenth of the ttl or every second,
// whichever is shorter, so that an item goes within that of its ttl.
func (l *idleList[E, P]) sweepDue(now, ttl int64) bool {
	if now-l.lastSweep < min(ttl/16, int64(time.Second)) {
		return false
	}
	l.lastSweep = now
	return true
}

// touch makes p the most recently changed item, changed at now.
func (l *idleList[E, P]) touch(p P, now int64) {
	k := p.links()
	k.touched = now
	if l.newest == p {
		return
	}
	l.remove(p)
	k.older, k.listed = l.newest, true
	if l.newest != nil {
		l.newest.links().newer = p
	} else {
		l.oldest = p
	}
	l.newest = p
}

// remove takes p out of the list, if it is in it.
func (l *idleList[E, P]) remove(p P) {
	k := p.links()
	if !k.listed {
		return
	}
	if k.older != nil {
		P(k.older).links().newer = k.newer
	} else {
		l.oldest = k.newer
	}
	if k.newer != nil {
		P(k.newer).links().older = k.older
	} else {
		l.newest = k.older
	}
	k.older, k.newer, k.listed = nil, nil, false
}
