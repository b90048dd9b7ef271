package pipeline

import (
	"testing"
	"time"

	"github.com/sluice-dev/sluice/runtime/bench"
)

// TestWaitClock: a wait counts while it lasts, concurrent waits add up, and
// no read is less than the one before, so a counter built on it never
// resets and never jumps when a long wait ends.
func TestWaitClock(t *testing.T) {
	var c waitClock
	t0 := time.Unix(1000, 0)
	c.start(t0)
	if got := c.read(t0.Add(2 * time.Second)); got != 2*time.Second {
		t.Fatalf("read %v two seconds into a wait; want 2s before the wait ends", got)
	}
	c.start(t0.Add(3 * time.Second)) // a second waiter
	if got := c.read(t0.Add(4 * time.Second)); got != 5*time.Second {
		t.Fatalf("read %v; want 5s: 4s of one wait and 1s of another", got)
	}
	c.stop(t0.Add(5 * time.Second))
	c.stop(t0.Add(6 * time.Second))
	if got := c.read(t0.Add(9 * time.Second)); got != 8*time.Second {
		t.Fatalf("read %v after both waits ended; want 8s (5s and 3s)", got)
	}
	// A read with a clock behind the last change does not go back.
	if got := c.read(t0.Add(5 * time.Second)); got != 8*time.Second {
		t.Fatalf("read %v with an earlier clock; want 8s still", got)
	}
}

// TestStatefulReceiveWait: the stateful stage, which also wakes for its
// timer, measures the time it waits for the workers, and a wait in
// progress shows before it ends.
func TestStatefulReceiveWait(t *testing.T) {
	spec := bench.Spec(bench.Config{
		Query:   tumblingQuery,
		Records: 0, Rate: 50, Partitions: 1, Parallelism: 1, ChannelCapacity: 4, BatchSize: 10, Linger: time.Millisecond,
	}) // 50 records/s: the stages wait most of the time
	p, err := New(spec, Options{Sink: &collectSink{}})
	if err != nil {
		t.Fatal(err)
	}
	runUntilTestEnds(t, p)
	wait := func(edge string) float64 {
		for _, e := range p.Snapshot().Edges {
			if e.Name == edge {
				return e.ReceiveWaitSeconds
			}
		}
		t.Fatalf("no edge %s in %+v", edge, p.Snapshot().Edges)
		return 0
	}
	time.Sleep(time.Second)
	first := wait("workers->stateful")
	if first < 0.3 {
		t.Fatalf("workers->stateful receive wait %.3fs after 1s of a trickle of input; want most of the second", first)
	}
	time.Sleep(300 * time.Millisecond)
	if second := wait("workers->stateful"); second <= first {
		t.Fatalf("workers->stateful receive wait went from %.3fs to %.3fs in 300ms of waiting; want it to grow", first, second)
	}
}
