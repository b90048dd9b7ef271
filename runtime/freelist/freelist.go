// Package freelist keeps free objects for reuse: a bounded stack, safe for
// concurrent use. Unlike a sync.Pool, which the garbage collector empties
// every other cycle, it keeps what it holds: for buffers that a busy
// pipeline would otherwise allocate again after every collection, where
// collections come every few tens of milliseconds.
package freelist

import "sync"

// List is a stack of free *T. The zero List is empty and ready.
type List[T any] struct {
	mu    sync.Mutex
	items []*T
}

// Get takes the item put back last, or returns nil when there is none.
func (l *List[T]) Get() *T {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(l.items)
	if n == 0 {
		return nil
	}
	x := l.items[n-1]
	l.items[n-1] = nil
	l.items = l.items[:n-1]
	return x
}

// Put keeps x for a later Get unless max items are kept already; the caller
// must not use x afterwards either way.
func (l *List[T]) Put(x *T, max int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.items) < max {
		l.items = append(l.items, x)
	}
}
