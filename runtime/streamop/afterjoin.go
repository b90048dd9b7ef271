package streamop

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/plan"
	"github.com/sluice-dev/sluice/runtime/value"
)

// afterJoin runs a stateful operator (an aggregation, OVER or a top-N)
// over the rows of a join, filtered by the WHERE between them: the join's
// rows are a stream of their own, appended to and never taken back, which
// the second operator takes as it would a source's.
//
// Its watermark is the join's: every row the join writes from now on has
// its event times (of either side) at or after the least of the pipeline's
// watermark and the earliest row the join holds (Low), since a row the join
// takes is not late and a row it writes pairs one it takes with one it
// holds. The bound is taken before each step of the join, as a step may
// write rows of the rows it then lets go. The join judges its rows late
// by that watermark too, where a partition's own is behind it (a
// partition back from idleness): a row the windows after it have closed
// for is late once, before the join.
type afterJoin struct {
	join Stateful
	tableJoinOf
	// where is the filter between the join and top, nil for none.
	where *Map
	top   Stateful
	// span is how far apart the event times of a joined row's inputs
	// may be: an input row's results are out once the top's Low is past
	// its time by that much.
	span int64
	// topSource, of a join of more than two streams, is the source of the
	// top's own stream, whose rows go to the top directly: the top is the
	// interval join of the join's rows with it.
	topSource string
	// mark is the top's watermark; it only moves forward, and a
	// checkpoint keeps it, so that a window the top closed stays closed.
	mark        int64
	joined, mid *message.Batch
	// errs are the failures of joined rows (in WHERE or the top), which
	// are not input records: they go to the next Advance's fail, as a
	// window's result that fails.
	errs pendingErrors
	// owners are the partitions the state was built from: joined rows
	// are two partitions' each, so a partition that moved away (a
	// consumer-group rebalance) leaves state no one can take apart.
	owners ownerSet
}

func newAfterJoin(j *plan.Join, where *plan.Filter, join, top Stateful) *afterJoin {
	a := &afterJoin{join: join, tableJoinOf: tableJoinOf{join}, top: top, mark: math.MinInt64, joined: &message.Batch{}, mid: &message.Batch{}}
	width := len(j.Columns())
	a.joined.Reset(width)
	a.mid.Reset(width)
	if where != nil {
		a.where = newMap(where, nil, width)
	}
	a.span = j.Span()
	return a
}

// newStreamJoins returns the operator of n, an interval join of more than
// two streams: each further stream's interval join (plan.Join.Join) is
// the top of an afterJoin whose join is the streams' before it, reading
// the rows that one writes and its stream's rows.
func newStreamJoins(n *plan.Join) Stateful {
	first := *n
	first.Streams, first.Lookups = nil, nil // the tables after, if any, are lookupAfter's
	var op Stateful = newIntervalJoin(&first)
	before := &first
	for i, s := range n.Streams {
		a := newAfterJoin(before, nil, op, newIntervalJoin(n.Join(i)))
		a.span, a.topSource = before.Span(), s.Stream.Source
		// The rows joined so far: their columns and span are all an
		// afterJoin reads of its join's plan.
		op, before = a, &plan.Join{Kind: plan.IntervalJoin, Left: first.Left, Right: first.Right, Lower: n.Lower, Upper: n.Upper, Streams: n.Streams[:i+1]}
	}
	return op
}

// topMark is the top's watermark: the pipeline's, held back to the join's
// bound, as of before the join's next step.
type topMark struct {
	wm    Watermark
	bound int64
}

// For implements Watermark.
func (t topMark) For(o *message.Origin) int64 { return min(t.wm.For(o), t.bound) }

// joinMark is the join's watermark: a partition's own, but never behind
// the top's.
type joinMark struct {
	wm    Watermark
	floor int64
}

// For implements Watermark.
func (j joinMark) For(o *message.Origin) int64 { return max(j.wm.For(o), j.floor) }

// Replaying implements Replays.
func (j joinMark) Replaying() int64 {
	if r, ok := j.wm.(Replays); ok {
		return max(r.Replaying(), j.floor)
	}
	return math.MaxInt64
}

// step moves the top's watermark to the bound of what the join writes
// from now on, and returns it.
func (a *afterJoin) step(wm Watermark) topMark {
	a.mark = max(a.mark, min(wm.For(nil), a.join.Low()))
	return topMark{wm: wm, bound: a.mark}
}

// Process implements Stateful. The late rows and those absorbed are the
// join's input's.
func (a *afterJoin) Process(in, out *message.Batch, wm Watermark, fail Failures) (late, absorbed int) {
	mark := a.step(wm)
	a.owners.add(ownerOf(in))
	if a.topSource != "" && in.Origin != nil && in.SourceName() == a.topSource {
		// Its rows are late by the pipeline's watermark, as any
		// stream's (and as the pipeline's late-record policy judges
		// them); the top lets rows go by its own, held back.
		return a.top.Process(in, out, wm, fail)
	}
	late, absorbed = a.join.Process(in, a.joined, joinMark{wm: wm, floor: a.mark}, fail)
	a.feed(out, mark)
	return late, absorbed
}

// Moved reports a partition the state was built from that moved away
// since: the engine must start again from its last commit or checkpoint.
func (a *afterJoin) Moved() error {
	if !a.owners.moved() {
		return nil
	}
	what := "an aggregation, OVER or top-N of a join's rows"
	if a.topSource != "" {
		what = "a join of more than two streams"
	}
	return fmt.Errorf("a partition of this query moved to another engine (a consumer-group rebalance): the state of %s holds rows of several partitions each, which cannot be taken apart, so the engine stops, to start again from its last commit or checkpoint; run one engine for this query", what)
}

// feed passes the join's rows, through WHERE, to the top. A joined row
// the top finds late, which none should be, as the join wrote it behind
// its own bound, is an error, not a record.
func (a *afterJoin) feed(out *message.Batch, mark topMark) {
	if a.joined.Len() == 0 {
		return
	}
	rows := a.joined
	if a.where != nil {
		a.mid.Reset(a.joined.Width())
		a.where.Process(a.joined, a.mid, a)
		rows = a.mid
	}
	if late, _ := a.top.Process(rows, out, mark, a); late > 0 {
		a.errs = append(a.errs, fmt.Errorf("%d joined rows came behind the watermark of what reads the join, and were left out", late))
	}
	a.joined.Reset(a.joined.Width())
}

// Fail implements Failures for the joined rows.
func (a *afterJoin) Fail(_ *message.Batch, _ int, stage string, err error) {
	a.errs = append(a.errs, fmt.Errorf("%s of a joined row: %w", stage, err))
}

// Advance implements Stateful: the join first, then the top, up to the
// bound of what the join writes after it. The rows the join drops for a
// partition that moved are input rows; the top's are joined rows, never
// counted.
func (a *afterJoin) Advance(wm Watermark, out *message.Batch, fail func(error)) (dropped int) {
	mark := a.step(wm)
	dropped = a.join.Advance(joinMark{wm: wm, floor: a.mark}, a.joined, fail)
	a.feed(out, mark)
	// The join let rows go: what it writes next may be later still.
	a.top.Advance(a.step(wm), out, fail)
	a.errs.flush(fail)
	return dropped
}

// Low implements Stateful: the earliest input row whose results are still
// to come, in the join, or in the top, where a joined row's time may be
// span after the time of the input row it came from.
func (a *afterJoin) Low() int64 {
	low := a.top.Low()
	if low != math.MaxInt64 {
		low = Behind(low, a.span)
	}
	return min(low, a.join.Low())
}

// Size implements Stateful: the rows the join holds and the top's groups
// or rows.
func (a *afterJoin) Size() int { return a.join.Size() + a.top.Size() }

// tableJoinOf passes a table join's partitions on, to the operator that
// runs it (tableLoader), and tells what it holds back.
type tableJoinOf struct{ op Stateful }

// Begin passes the partitions on.
func (t tableJoinOf) Begin(origins []*message.Origin) {
	if l, ok := t.op.(interface{ Begin([]*message.Origin) }); ok {
		l.Begin(origins)
	}
}

// Loaded tells a table join that a table partition is loaded.
func (t tableJoinOf) Loaded(o *message.Origin) {
	if l, ok := t.op.(interface{ Loaded(*message.Origin) }); ok {
		l.Loaded(o)
	}
}

// Pending is the stream rows a table join holds back: restored, they are
// written without being read again.
func (t tableJoinOf) Pending() int {
	if p, ok := t.op.(interface{ Pending() int }); ok {
		return p.Pending()
	}
	return 0
}

// Expired implements Expirer: the top's groups that a TTL dropped.
func (a *afterJoin) Expired() int64 {
	if e, ok := a.top.(Expirer); ok {
		return e.Expired()
	}
	return 0
}

// Flush implements Flusher: the top's changes an emit interval holds.
func (a *afterJoin) Flush() bool {
	f, ok := a.top.(Flusher)
	return ok && f.Flush()
}

// AppendSnapshot implements Snapshotter: the top's watermark, the join's
// state, the top's.
func (a *afterJoin) AppendSnapshot(dst []byte, origins *Origins) []byte {
	dst = append(dst, snapshotVersion)
	dst = binary.AppendVarint(dst, a.mark)
	dst = a.join.(Snapshotter).AppendSnapshot(dst, origins)
	return a.top.(Snapshotter).AppendSnapshot(dst, origins)
}

// RestoreSnapshot implements Snapshotter.
func (a *afterJoin) RestoreSnapshot(r *value.Reader, origins *Origins) error {
	if v := r.Byte(); v != snapshotVersion && r.Err() == nil {
		return fmt.Errorf("state after a join of snapshot version %d; this engine reads %d", v, snapshotVersion)
	}
	a.mark = r.Varint()
	if err := r.Err(); err != nil {
		return fmt.Errorf("reading the state after a join: %w", err)
	}
	if err := a.join.(Snapshotter).RestoreSnapshot(r, origins); err != nil {
		return fmt.Errorf("the join: %w", err)
	}
	if err := a.top.(Snapshotter).RestoreSnapshot(r, origins); err != nil {
		return fmt.Errorf("after the join: %w", err)
	}
	return nil
}
