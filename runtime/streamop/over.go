package streamop

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/sluice-dev/sluice/runtime/aggregate"
	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/plan"
	"github.com/sluice-dev/sluice/runtime/value"
)

// overAgg computes moving aggregates. Rows wait until the watermark passes
// their event time, so that they can be taken in event-time order with all
// their peers (rows of equal event time); then each goes through its key's
// frames and out with the results appended.
//
// A key whose frames are all RANGE frames is forgotten once the watermark
// is further past its newest row than the longest frame reaches: its next
// row would find its frames empty. A ROWS frame keeps its last rows however
// old they are, since the next row's frame holds them, so a key with one
// stays: its state is up to n+1 rows (ROWS n PRECEDING) per key ever seen.
type overAgg struct {
	node  *plan.Over
	time  int
	width int // input row width
	keys  *keyEncoder
	// groups are the calls that share a frame, so that a key has one
	// aggregate.Frame per distinct frame.
	groups []frameGroup
	byKey  map[string]*overKey
	frames int // rows held in all frames

	// rangeOnly says every frame group is a RANGE frame, so that quiet keys
	// can be forgotten; reach is the longest RANGE extent.
	rangeOnly bool
	reach     int64
	// The state of the last sweep for keys to forget: the watermark, the
	// keys left, and the rows pushed since.
	sweptAt   int64
	sweptKeys int
	pushed    int

	// pending rows wait for the watermark; their values live in slab.
	pending []pendingRow
	slab    []value.Value
	spare   []value.Value // the other slab, for compaction
	seq     uint64
	low     int64
	run     []runRow // the rows of one event time, being emitted

	// Once a snapshot is taken (tracking), the keys pushed to since
	// (dirty) and those forgotten (removed), for AppendChanges.
	tracking bool
	dirty    []*overKey
	removed  []*overKey
}

type frameGroup struct {
	spec  aggregate.FrameSpec
	calls []int // indexes into node.Calls
	funcs []aggregate.Func
	args  []value.Value
	res   []value.Value
}

// frameGroupsOf groups calls by their frames, in the order each frame
// first comes.
func frameGroupsOf(calls []plan.OverCall) []frameGroup {
	var groups []frameGroup
	for i, c := range calls {
		j := slices.IndexFunc(groups, func(g frameGroup) bool { return g.spec == c.Frame })
		if j < 0 {
			groups = append(groups, frameGroup{spec: c.Frame})
			j = len(groups) - 1
		}
		groups[j].calls = append(groups[j].calls, i)
		groups[j].funcs = append(groups[j].funcs, c.Func)
	}
	for i := range groups {
		g := &groups[i]
		g.args, g.res = make([]value.Value, len(g.calls)), make([]value.Value, len(g.calls))
	}
	return groups
}

type overKey struct {
	frames []*aggregate.Frame // per frame group
	source owner
	keys   []value.Value // the PARTITION BY values, for error messages
	newest int64         // the event time of the newest row pushed
	dirty  bool          // pushed to since the last snapshot
}

type pendingRow struct {
	ts     int64
	seq    uint64
	off    int // of its values in slab
	source owner
}

// runRow is a row of the run being emitted. The run's rows are the last
// rows of the output, in order.
type runRow struct {
	key    *overKey
	failed bool // a RANGE result failed: the row is to be removed
}

const (
	// sweepEvery is the least progress of the watermark between two sweeps
	// for quiet keys, so that the keys are not scanned at every batch.
	sweepEvery = int64(time.Second)
	// sweepRowsPerKey bounds the sweeps' cost to this many keys visited per
	// row pushed: a backlog read at many event-time seconds per second would
	// otherwise scan every key that often.
	sweepRowsPerKey = 8
	// minSweepKeys is the fewest keys for which growth alone calls a sweep.
	minSweepKeys = 64
)

func newOverAgg(n *plan.Over) *overAgg {
	o := &overAgg{
		node: n, time: n.Time.Index, width: len(n.Input.Columns()), keys: newKeyEncoder(n.Partition),
		byKey: map[string]*overKey{}, low: math.MaxInt64, sweptAt: math.MinInt64, rangeOnly: true,
	}
	o.groups = frameGroupsOf(n.Calls)
	for i := range o.groups {
		g := &o.groups[i]
		if g.spec.Range {
			o.reach = max(o.reach, g.spec.Preceding)
		} else {
			o.rangeOnly = false
		}
	}
	return o
}

// Process implements Stateful: rows wait, copied, for the watermark.
func (o *overAgg) Process(in, out *message.Batch, wm Watermark, fail Failures) (late, absorbed int) {
	src := ownerOf(in)
	watermark := wm.For(in.Origin)
	for i, row := range in.Rows {
		ts, err := eventTime(row, o.time)
		if err != nil {
			fail.Fail(in, i, "aggregate", err)
			continue
		}
		if ts < watermark {
			late++
			continue
		}
		o.pending = append(o.pending, pendingRow{ts: ts, seq: o.seq, off: len(o.slab), source: src})
		o.seq++
		o.slab = append(o.slab, row...)
		o.low = min(o.low, ts)
		absorbed++
	}
	return late, absorbed
}

// Advance implements Stateful: the rows before the watermark go out in
// event-time order. The rows it does not write, because their partition
// moved or because they failed, are in its count: nothing else counts them.
func (o *overAgg) Advance(wm Watermark, out *message.Batch, fail func(error)) (dropped int) {
	if o.low < wm.For(nil) {
		dropped = o.release(wm, out, fail)
	}
	o.sweep(wm)
	return dropped
}

// release emits the rows the watermark passed and returns the number it
// dropped.
func (o *overAgg) release(wm Watermark, out *message.Batch, fail func(error)) (dropped int) {
	// The rows the watermark passed, of their partition, go first, in
	// event-time order; the others keep waiting.
	slices.SortFunc(o.pending, func(x, y pendingRow) int {
		xr, yr := x.ts < wm.For(x.source.origin), y.ts < wm.For(y.source.origin)
		switch {
		case xr && !yr:
			return -1
		case !xr && yr:
			return 1
		}
		if c := cmp.Compare(x.ts, y.ts); c != 0 {
			return c
		}
		return cmp.Compare(x.seq, y.seq)
	})
	n := 0
	for n < len(o.pending) && o.pending[n].ts < wm.For(o.pending[n].source.origin) {
		n++
	}
	for start := 0; start < n; {
		end := start + 1
		for end < n && o.pending[end].ts == o.pending[start].ts {
			end++
		}
		dropped += o.emitRun(o.pending[start:end], out, fail)
		start = end
	}
	// Keep the rows still waiting in a compacted slab. They are sorted by
	// event time, not by place in the slab, so they move to the other slab
	// rather than within this one.
	rest := o.pending[n:]
	o.low = math.MaxInt64
	next := o.spare[:0]
	for i := range rest {
		off := len(next)
		next = append(next, o.slab[rest[i].off:rest[i].off+o.width]...)
		rest[i].off = off
		o.low = min(o.low, rest[i].ts)
	}
	clear(o.slab)
	o.slab, o.spare = next, o.slab[:0]
	o.pending = append(o.pending[:0], rest...)
	return dropped
}

// emitRun pushes rows of one event time through their keys' frames and
// emits them. ROWS frames give each row its result as it is pushed; RANGE
// frames include all peers, so their results are read after every row of
// the run is pushed. A row whose result cannot be computed is not emitted:
// it goes to fail, whose error event stands for it. dropped counts the rows
// whose partition moved.
func (o *overAgg) emitRun(rows []pendingRow, out *message.Batch, fail func(error)) (dropped int) {
	o.run = o.run[:0]
	base := len(out.Rows)
	ts := rows[0].ts
	for _, p := range rows {
		if !p.source.current() {
			dropped++ // its partition moved away; its new owner emits it
			continue
		}
		if err := o.add(p, out); err != nil {
			fail(err) // the stage counts the row with its error event
		}
	}
	failed := false
	for gi := range o.groups {
		g := &o.groups[gi]
		if !g.spec.Range {
			continue
		}
		for i := range o.run {
			r := &o.run[i]
			if r.failed {
				continue
			}
			if err := o.results(g, r.key.frames[gi], out.Rows[base+i]); err != nil {
				fail(rowError(ts, r.key, err))
				r.failed, failed = true, true
			}
		}
	}
	if failed {
		// Close the gaps the failed rows leave. Failures are rare, so they
		// pay for the copying rather than every run for a second pass.
		n := base
		for i, r := range o.run {
			if !r.failed {
				copy(out.Rows[n], out.Rows[base+i])
				n++
			}
		}
		for len(out.Rows) > n {
			out.Truncate()
		}
	}
	return dropped
}

// add pushes the pending row p through its key's frames and appends it to
// out, and to o.run, with the results of its ROWS frames; those of its RANGE
// frames wait for the rest of the run. A row that fails is not appended.
func (o *overAgg) add(p pendingRow, out *message.Batch) error {
	in := value.Row(o.slab[p.off : p.off+o.width])
	if err := o.keys.encode(in, 0); err != nil {
		return rowError(p.ts, nil, err)
	}
	k := o.key(p.source)
	// Every argument is evaluated before any is pushed, so that one that
	// fails leaves all of the key's frames as they were.
	for gi := range o.groups {
		g := &o.groups[gi]
		for j, ci := range g.calls {
			g.args[j] = value.IntValue(1) // count(*)
			if arg := o.node.Calls[ci].Arg; arg != nil {
				v, err := arg.Eval(in)
				if err != nil {
					return rowError(p.ts, k, err)
				}
				g.args[j] = v
			}
		}
	}
	o.pushed++
	if o.tracking && !k.dirty {
		k.dirty = true
		o.dirty = append(o.dirty, k)
	}
	// Set before pushing: a push that fails leaves the newest row as it
	// was, and keeping the key longer than needed is harmless.
	k.newest = max(k.newest, p.ts)
	row := out.Append(0)
	copy(row, in)
	for gi := range o.groups {
		g := &o.groups[gi]
		f := k.frames[gi]
		before := f.Len()
		err := f.Push(p.ts, g.args)
		o.frames += f.Len() - before
		if err == nil && !g.spec.Range {
			err = o.results(g, f, row)
		}
		if err != nil {
			out.Truncate()
			return rowError(p.ts, k, err)
		}
	}
	o.run = append(o.run, runRow{key: k})
	return nil
}

// key returns the state of the key in o.keys, made anew if there is none or
// if it was built from a partition that has since moved.
func (o *overAgg) key(src owner) *overKey {
	k := o.byKey[string(o.keys.buf)]
	if k != nil && !k.source.current() {
		// The frames hold rows of a partition that moved away and came
		// back: its rows are being read again from the committed offset.
		o.forget(k)
		k = nil
	}
	if k == nil {
		k = &overKey{source: src, keys: ownValues(o.keys.vals), newest: math.MinInt64}
		for _, g := range o.groups {
			k.frames = append(k.frames, aggregate.NewFrame(g.spec, g.funcs))
		}
		o.byKey[string(o.keys.buf)] = k
	}
	return k
}

// forget takes the rows of k's frames out of the state size; the caller
// removes or replaces k in byKey.
func (o *overAgg) forget(k *overKey) {
	for _, f := range k.frames {
		o.frames -= f.Len()
	}
	if o.tracking {
		o.removed = append(o.removed, k)
	}
}

// sweep forgets the keys no later row can find anything in: those of
// partitions that moved, and, if every frame is a RANGE frame, those whose
// newest row is further behind the watermark than the longest frame
// reaches. Scanning every key costs, so it runs once the watermark has
// moved by sweepEvery and enough rows have been pushed to pay for it, or
// when the keys have doubled since the last sweep.
func (o *overAgg) sweep(wm Watermark) {
	w := wm.For(nil)
	moved := w > o.sweptAt && uint64(w)-uint64(o.sweptAt) >= uint64(sweepEvery)
	paid := o.pushed*sweepRowsPerKey >= len(o.byKey)
	grown := len(o.byKey) >= max(2*o.sweptKeys, minSweepKeys)
	if !(moved && paid) && !grown {
		return
	}
	for s, k := range o.byKey {
		if k.source.current() {
			if !o.rangeOnly {
				continue
			}
			// A later row is one waiting now, at o.low or after, or one yet
			// to come, at its partition's watermark or after.
			next := min(wm.For(k.source.origin), o.low)
			if next <= k.newest || uint64(next)-uint64(k.newest) <= uint64(o.reach) {
				continue
			}
		}
		o.forget(k)
		delete(o.byKey, s)
	}
	o.sweptAt, o.sweptKeys, o.pushed = w, len(o.byKey), 0
}

// rowError says which row failed: its event time and, if known, its key.
// The error event of an OVER row has no payload to tell, since the row is
// not written.
func rowError(ts int64, k *overKey, err error) error {
	if k == nil || len(k.keys) == 0 {
		return fmt.Errorf("OVER row at %s: %w", value.TimestampValue(ts), err)
	}
	return fmt.Errorf("OVER row at %s key %v: %w", value.TimestampValue(ts), k.keys, err)
}

// results writes a frame's aggregates into their columns of row.
func (o *overAgg) results(g *frameGroup, f *aggregate.Frame, row value.Row) error {
	err := f.Results(g.res)
	for j, ci := range g.calls {
		row[o.width+ci] = g.res[j]
	}
	return err
}

// Low implements Stateful.
func (o *overAgg) Low() int64 { return o.low }

// Size implements Stateful: rows waiting and rows in frames.
func (o *overAgg) Size() int { return len(o.pending) + o.frames }

// Pending returns the number of rows waiting for the watermark: input
// records not written yet.
func (o *overAgg) Pending() int { return len(o.pending) }
