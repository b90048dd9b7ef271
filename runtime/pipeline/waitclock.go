package pipeline

import (
	"sync"
	"time"
)

// waitClock sums the time goroutines spend waiting, counting waits still in
// progress when it is read. Counting a wait only when it ends made a scrape
// after a long wait see all of it at once: a rate above 100% of the time
// that followed minutes at zero. The sum is the integral of the number of
// waiters over time, so concurrent senders on one edge add up, and every
// read is at least the one before.
//
// Only waits take the lock; a send or receive that does not wait never
// touches it.
type waitClock struct {
	mu      sync.Mutex
	waiters int
	since   time.Time     // the last change of waiters
	total   time.Duration // the integral up to since
}

// start marks a wait beginning now.
func (c *waitClock) start(now time.Time) {
	c.mu.Lock()
	c.advance(now)
	c.waiters++
	c.mu.Unlock()
}

// stop marks a wait ending now.
func (c *waitClock) stop(now time.Time) {
	c.mu.Lock()
	c.advance(now)
	c.waiters--
	c.mu.Unlock()
}

// read returns the total waited up to now, waits in progress included.
func (c *waitClock) read(now time.Time) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.advance(now)
	return c.total
}

func (c *waitClock) advance(now time.Time) {
	// A clock read concurrently can be a little behind since; time never
	// runs backwards in the sum.
	if d := now.Sub(c.since); d > 0 {
		c.total += time.Duration(c.waiters) * d
		c.since = now
	}
}
