package pipeline

import (
	"math"
	"time"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/connector"
	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/streamop"
)

// watermarks tracks the event-time progress of every partition. A
// partition's watermark is the latest event time it sent less the allowed
// out-of-orderness; the pipeline's is the least over the partitions that
// are neither finished nor idle, and never goes back.
type watermarks struct {
	timing  map[string]sourceTiming
	parts   map[*message.Origin]*partMark
	current int64
	// shared says other engines read some of the sources' partitions: a
	// partition away from this engine is theirs to wait for. On one
	// engine, a partition not yet assigned (one source's, while the group
	// assigns another's) still holds the watermark back.
	shared bool
	// replaying is the least watermark of the partitions replaying that
	// are not idle, as of the last advance; math.MaxInt64 for none.
	replaying int64
	// timeless are the sources whose rows have no event time in the
	// query (a table joined as read): they never hold the watermark
	// back, though their partitions keep the input open.
	timeless map[string]bool
}

// sourceTiming is a source's event-time settings: how far out of order its
// records may come, and how long a partition of it may send nothing before
// the watermark stops waiting for it. A source without event time has
// none, and its partitions go idle after v1alpha1.DefaultIdleTimeout.
type sourceTiming struct{ bound, idle time.Duration }

// timingOf returns the timing of a source.
func (w *watermarks) timingOf(source string) sourceTiming {
	t, ok := w.timing[source]
	if !ok {
		t.idle = v1alpha1.DefaultIdleTimeout
	}
	return t
}

// shortestIdle is the shortest idle timeout of any source: the ticker
// looks at the watermark again at a quarter of it.
func (w *watermarks) shortestIdle() time.Duration {
	idle := v1alpha1.DefaultIdleTimeout
	for _, t := range w.timing {
		idle = min(idle, t.idle)
	}
	return idle
}

type partMark struct {
	max   int64
	last  time.Time
	ended bool
	// gen is the partition's generation in the batches seen; seen says a
	// batch came. replaying is set while a partition that came from
	// another engine (or back) reads again the records after its last
	// commit: they are behind the pipeline's watermark, so they are judged,
	// and their windows closed, by the partition's own until it catches up.
	gen       uint64
	seen      bool
	replaying bool
	bound     int64         // the source's allowed out-of-orderness
	idle      time.Duration // the source's idle timeout
	// floor, for a partition taken over from another engine, is that
	// engine's watermark at the partition's checkpoint: its records
	// before it were late there, and are here.
	floor int64
}

func (pm *partMark) mark() int64 { return streamop.Behind(pm.max, pm.bound) }

func newWatermarks(readers []connector.Reader, timing map[string]sourceTiming, now time.Time) watermarks {
	w := watermarks{timing: timing, parts: map[*message.Origin]*partMark{}, current: math.MinInt64, replaying: math.MaxInt64, timeless: map[string]bool{}}
	for _, r := range readers {
		pm := w.newPart(r.Origin().Source)
		pm.last = now
		w.parts[r.Origin()] = pm
	}
	return w
}

func (w *watermarks) newPart(source string) *partMark {
	t := w.timingOf(source)
	return &partMark{max: math.MinInt64, bound: int64(t.bound), idle: t.idle, floor: math.MinInt64}
}

// restore sets partition o's progress, in generation gen, from a
// checkpoint: the latest event time it had sent, as if the batch that
// brought it had just arrived.
func (w *watermarks) restore(o *message.Origin, gen uint64, maxEvt int64, now time.Time) {
	pm := w.parts[o]
	if pm == nil {
		pm = w.newPart(o.Source)
		w.parts[o] = pm
	}
	pm.max, pm.seen, pm.gen, pm.last = maxEvt, true, gen, now
}

// takeOver sets partition o's progress from the checkpoint of another
// engine, whose watermark then was floor: o's records are judged by its
// own watermark until it catches up with this engine's, as a partition
// that comes back is, and never by one below floor.
func (w *watermarks) takeOver(o *message.Origin, gen uint64, maxEvt, floor int64, now time.Time) {
	w.restore(o, gen, maxEvt, now)
	pm := w.parts[o]
	pm.floor, pm.replaying = floor, w.current != math.MinInt64
}

// arrive notes a batch of partition o, before its rows are taken.
func (w *watermarks) arrive(o *message.Origin, maxEvt int64, gen uint64, now time.Time) {
	pm := w.parts[o]
	if pm == nil {
		pm = w.newPart(o.Source)
		w.parts[o] = pm
	}
	if gen != pm.gen || !pm.seen {
		// A partition that arrives, or comes back, replays from its last
		// commit: its own watermark starts over.
		pm.gen, pm.max = gen, math.MinInt64
		pm.replaying = pm.seen || w.current != math.MinInt64
		pm.seen = true
	}
	pm.last = now
}

// progress moves partition o's watermark past a batch whose rows were
// taken.
func (w *watermarks) progress(o *message.Origin, maxEvt int64) {
	pm := w.parts[o]
	pm.max = max(pm.max, maxEvt)
	if pm.replaying && pm.mark() >= w.current {
		pm.replaying = false
	}
}

// For implements streamop.Watermark.
func (w *watermarks) For(o *message.Origin) int64 {
	pm := w.parts[o]
	if o == nil || pm == nil || o.Generation.Load() != pm.gen {
		return w.current
	}
	wm := w.current
	// A replaying partition that ended, or moved away again, waits no more.
	if pm.replaying && !pm.ended {
		wm = min(w.current, pm.mark())
	}
	return max(wm, pm.floor)
}

// Replaying implements streamop.Replays: of the partitions replaying, the
// least watermark as of the last advance. A replaying partition that went
// idle, as for the watermark, holds nothing back: it may never send
// again.
func (w *watermarks) Replaying() int64 { return w.replaying }

func (w *watermarks) ended(o *message.Origin) {
	if pm := w.parts[o]; pm != nil {
		pm.ended = true
	}
}

// advance recomputes the watermark and returns it.
func (w *watermarks) advance(now time.Time) int64 {
	replaying := int64(math.MaxInt64)
	low, active, open := int64(math.MaxInt64), false, false
	for o, pm := range w.parts {
		if pm.ended {
			continue
		}
		open = true
		if o != nil && (w.shared && o.Away.Load() || o.Generation.Load() != pm.gen) {
			// A partition another engine reads, or taken away, holds the
			// watermark back no more (nor does it end the input).
			continue
		}
		if now.Sub(pm.last) >= pm.idle || o != nil && w.timeless[o.Source] {
			continue
		}
		if pm.replaying {
			replaying = min(replaying, w.For(o))
			continue
		}
		active = true
		low = min(low, pm.mark())
	}
	w.replaying = replaying
	switch {
	case !open:
		w.current = math.MaxInt64 // every partition finished
	case active:
		w.current = max(w.current, low)
	}
	return w.current
}
