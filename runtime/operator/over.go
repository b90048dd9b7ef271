package operator

import (
	"math"
	"slices"

	"github.com/sluice-dev/sluice/runtime/aggregate"
	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/plan"
	"github.com/sluice-dev/sluice/runtime/value"
)

// overAgg computes moving aggregates. Rows wait until the watermark passes
// their event time, so that they can be taken in event-time order with all
// their peers (rows of equal event time); then each goes through its key's
// frames and out with the results appended.
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

	// pending rows wait for the watermark; their values live in slab.
	pending []pendingRow
	slab    []value.Value
	spare   []value.Value // the other slab, for compaction
	seq     uint64
	low     int64
	run     []runRow // the rows of one event time, being emitted
}

type frameGroup struct {
	spec  aggregate.FrameSpec
	calls []int // indexes into node.Calls
	funcs []aggregate.Func
	args  []value.Value
	res   []value.Value
}

type overKey struct {
	frames []*aggregate.Frame // per frame group
	source owner
}

type pendingRow struct {
	ts     int64
	seq    uint64
	off    int // of its values in slab
	source owner
}

type runRow struct {
	key *overKey
	row int // index of the output row: appending may move rows
}

func newOverAgg(n *plan.Over) *overAgg {
	o := &overAgg{
		node: n, time: n.Time.Index, width: len(n.Input.Columns()), keys: newKeyEncoder(n.Partition),
		byKey: map[string]*overKey{}, low: math.MaxInt64,
	}
	for i, c := range n.Calls {
		j := slices.IndexFunc(o.groups, func(g frameGroup) bool { return g.spec == c.Frame })
		if j < 0 {
			o.groups = append(o.groups, frameGroup{spec: c.Frame})
			j = len(o.groups) - 1
		}
		g := &o.groups[j]
		g.calls = append(g.calls, i)
		g.funcs = append(g.funcs, c.Func)
	}
	for i := range o.groups {
		g := &o.groups[i]
		g.args = make([]value.Value, len(g.calls))
		g.res = make([]value.Value, len(g.calls))
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
// event-time order.
func (o *overAgg) Advance(wm Watermark, out *message.Batch, fail func(error)) (dropped int) {
	if o.low >= wm.For(nil) {
		return 0
	}
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
		if c := cmpInt64(x.ts, y.ts); c != 0 {
			return c
		}
		return cmpInt64(int64(x.seq), int64(y.seq))
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
// the run is pushed.
func (o *overAgg) emitRun(rows []pendingRow, out *message.Batch, fail func(error)) (dropped int) {
	o.run = o.run[:0]
	for _, p := range rows {
		if !p.source.current() {
			dropped++ // its partition moved away; its new owner emits it
			continue
		}
		in := value.Row(o.slab[p.off : p.off+o.width])
		if err := o.keys.encode(in, 0); err != nil {
			fail(err)
			continue
		}
		k := o.byKey[string(o.keys.buf)]
		if k != nil && !k.source.current() {
			// The frames hold rows of a partition that moved away and came
			// back: its rows are being read again from the committed offset.
			for _, f := range k.frames {
				o.frames -= f.Len()
			}
			k = nil
		}
		if k == nil {
			k = &overKey{source: p.source}
			for _, g := range o.groups {
				k.frames = append(k.frames, aggregate.NewFrame(g.spec, g.funcs))
			}
			o.byKey[string(o.keys.buf)] = k
		}
		row := out.Append(0)
		copy(row, in)
		ok := true
		for gi := range o.groups {
			g := &o.groups[gi]
			for j, ci := range g.calls {
				g.args[j] = value.IntValue(1) // count(*)
				if arg := o.node.Calls[ci].Arg; arg != nil {
					v, err := arg.Eval(in)
					if err != nil {
						fail(err)
						ok = false
						break
					}
					g.args[j] = v
				}
			}
			if !ok {
				break
			}
			f := k.frames[gi]
			before := f.Len()
			if err := f.Push(p.ts, g.args); err != nil {
				fail(err)
				ok = false
				break
			}
			o.frames += f.Len() - before
			if !g.spec.Range {
				if err := o.results(g, f, row); err != nil {
					fail(err)
					ok = false
					break
				}
			}
		}
		if !ok {
			out.Truncate()
			continue
		}
		o.run = append(o.run, runRow{key: k, row: len(out.Rows) - 1})
	}
	for gi := range o.groups {
		g := &o.groups[gi]
		if !g.spec.Range {
			continue
		}
		for _, r := range o.run {
			if err := o.results(g, r.key.frames[gi], out.Rows[r.row]); err != nil {
				fail(err)
			}
		}
	}
	return dropped
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
