package pipeline

import (
	"context"
	"time"

	"github.com/sluice-dev/sluice/runtime/message"
)

// edge is a bounded channel between stages, measured.
type edge[T any] struct {
	ch    chan T
	stats *EdgeStats
}

func (p *Pipeline) newEdge(name string) *edge[message.Message] {
	return newEdge[message.Message](p, name, p.capacity, false)
}

// newEdge returns an edge of p named name; input says it carries a
// source's batches to what reads them first (EdgeStats.Input), which is
// set before the edge's stats are shared with Snapshot.
func newEdge[T any](p *Pipeline, name string, capacity int, input bool) *edge[T] {
	e := &edge[T]{ch: make(chan T, capacity)}
	e.stats = &EdgeStats{Name: name, capacity: capacity, depth: func() int { return len(e.ch) }, input: input}
	p.mu.Lock()
	p.edges = append(p.edges, e.stats)
	p.mu.Unlock()
	return e
}

// send delivers m, blocking while the channel is full, unless ctx ends first.
// Only the time spent blocked is measured, so a free channel costs nothing.
func (e *edge[T]) send(ctx context.Context, m T) bool { return e.sendUnless(ctx, nil, m) }

// sendUnless is send, which also gives up, false, when unless closes.
func (e *edge[T]) sendUnless(ctx context.Context, unless <-chan struct{}, m T) bool {
	e.stats.sends.Add(1)
	select {
	case e.ch <- m:
		return true
	default:
	}
	e.stats.blocked.Add(1)
	e.stats.blockedFor.start(time.Now())
	defer func() { e.stats.blockedFor.stop(time.Now()) }()
	select {
	case e.ch <- m:
		return true
	case <-unless:
		return false
	case <-ctx.Done():
		return false
	}
}

// recv receives the next message, measuring the time spent waiting for one.
func (e *edge[T]) recv() (T, bool) {
	select {
	case m, ok := <-e.ch:
		return m, ok
	default:
	}
	e.stats.waitedFor.start(time.Now())
	m, ok := <-e.ch
	e.stats.waitedFor.stop(time.Now())
	return m, ok
}
