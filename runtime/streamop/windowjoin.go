package streamop

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/sluice-dev/sluice/runtime/expr"
	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/plan"
	"github.com/sluice-dev/sluice/runtime/value"
)

// windowJoin runs a window join (plan.WindowJoin). Each side's rows go,
// through the side's WHERE, to its windowed aggregation, whose rows go,
// through its HAVING and select list, to wait by window until neither
// aggregation can write a row of the window any more: the watermark has
// passed its end, and neither holds it. Then the window's rows of the two
// sides are joined by their keys, written, and let go, so the state is
// the two aggregations' open windows, and the rows of a window one side
// has written while the other still holds it.
type windowJoin struct {
	sides [2]*windowSide
	node  *plan.WindowJoin
	size  int64 // of the windows, the same on both sides
	// owners are the partitions the state was built from: a window's
	// joined rows are two sources' partitions' each, so a partition that
	// moved away (a consumer-group rebalance) leaves windows no one can
	// join whole.
	owners ownerSet
	// errs are the failures of the aggregations' rows (in HAVING, the
	// select lists or ON), which are not input records: they go to the
	// next Advance's fail, as a window's result that fails.
	errs pendingErrors
}

// windowSide is one side of a window join.
type windowSide struct {
	source string
	where  expr.Expr // nil: none
	agg    *windowAgg
	post   *Map
	keys   *keyEncoder
	// end says the window key is the window's end, not its start.
	end            bool
	aggOut, posted *message.Batch
	// held are the rows written, by window start, not joined yet.
	held map[int64][]value.Row
	rows int
}

// newWindowJoin returns the operator of n, each side's aggregation made
// by newAgg.
func newWindowJoin(n *plan.WindowJoin, newAgg func(*plan.Aggregate) *windowAgg) *windowJoin {
	j := &windowJoin{node: n}
	for i, side := range []plan.Node{n.Left, n.Right} {
		ws, _ := plan.WindowSideOf(side)
		keys := n.LeftKeys
		if i == 1 {
			keys = n.RightKeys
		}
		bound, _ := plan.WindowBound(side, keys[0].(*expr.Column).Index)
		s := &windowSide{
			source: ws.Scan.Source, agg: newAgg(ws.Agg),
			post: newMap(ws.Having, ws.Proj, len(ws.Agg.Columns())), keys: newKeyEncoder(keys), end: bound == 1,
			aggOut: &message.Batch{}, posted: &message.Batch{}, held: map[int64][]value.Row{},
		}
		// A window goes out all at once, when no partition replaying (one
		// back from another engine, or late from the start, judged by its
		// own watermark) can bring rows to it any more, as for a top-N:
		// the other side's rows of it are let go once it is joined.
		s.agg.whole = true
		if ws.Where != nil {
			s.where = ws.Where.Predicate
		}
		s.aggOut.Reset(len(ws.Agg.Columns()))
		s.posted.Reset(len(side.Columns()))
		j.sides[i] = s
		j.size = ws.Agg.Window.Size
	}
	return j
}

// side is the side that reads in's source; nil for none.
func (j *windowJoin) side(in *message.Batch) *windowSide {
	for _, s := range j.sides {
		if s.source == in.SourceName() {
			return s
		}
	}
	return nil
}

// Filter implements Filterer: a side's WHERE, before its rows are judged
// late, as the workers run a query's WHERE.
func (j *windowJoin) Filter(in *message.Batch, fail Failures) (filtered int) {
	s := j.side(in)
	if s == nil || s.where == nil {
		return 0
	}
	kept := 0
	for i, row := range in.Rows {
		ok, err := holds(s.where, row)
		switch {
		case err != nil:
			fail.Fail(in, i, "filter", err)
			continue
		case !ok:
			filtered++
			continue
		}
		in.Rows[kept], in.Offsets[kept] = row, in.Offsets[i]
		kept++
	}
	in.Rows, in.Offsets = in.Rows[:kept], in.Offsets[:kept]
	return filtered
}

// Process implements Stateful: the rows of a side's source, which Filter
// passed, go to its aggregation.
func (j *windowJoin) Process(in, out *message.Batch, wm Watermark, fail Failures) (late, absorbed int) {
	s := j.side(in)
	if s == nil {
		err := fmt.Errorf("no side of the window join reads source %q", in.SourceName())
		for i := range in.Rows {
			fail.Fail(in, i, "join", err)
		}
		return 0, 0
	}
	j.owners.add(ownerOf(in))
	late, absorbed = s.agg.Process(in, s.aggOut, wm, fail)
	j.take(s)
	return late, absorbed
}

// Moved reports a partition the state was built from that moved away
// since: the engine must start again from its last commit or checkpoint.
func (j *windowJoin) Moved() error {
	if !j.owners.moved() {
		return nil
	}
	return errors.New("a partition of this query moved to another engine (a consumer-group rebalance): a window join holds each window's rows of two sources' partitions until both sides close it, which another engine cannot take up, so the engine stops, to start again from its last commit or checkpoint; run one engine for a window join")
}

// take passes the rows the side's aggregation wrote through its HAVING
// and select list, and holds them by window.
func (j *windowJoin) take(s *windowSide) {
	if s.aggOut.Len() == 0 {
		return
	}
	s.posted.Reset(s.posted.Width())
	s.post.Process(s.aggOut, s.posted, j)
	s.aggOut.Reset(s.aggOut.Width())
	for i, row := range s.posted.Rows {
		if err := s.keys.encode(row, 0); err != nil {
			j.Fail(s.posted, i, "join", err)
			continue
		}
		start := s.keys.vals[0].Nanos()
		if s.end {
			start -= j.size
		}
		s.held[start] = append(s.held[start], ownValues(row))
		s.rows++
	}
}

// Fail implements Failures for the aggregations' rows.
func (j *windowJoin) Fail(_ *message.Batch, _ int, stage string, err error) {
	j.errs = append(j.errs, fmt.Errorf("%s of a window's row: %w", stage, err))
}

// Advance implements Stateful: both aggregations close what the
// watermark completes, and every window neither can write a row of any
// more is joined.
func (j *windowJoin) Advance(wm Watermark, out *message.Batch, fail func(error)) (dropped int) {
	for _, s := range j.sides {
		s.agg.Advance(wm, s.aggOut, fail)
		j.take(s)
	}
	watermark := wm.For(nil)
	var done []int64
	for _, s := range j.sides {
		for start := range s.held {
			if start <= Behind(watermark, j.size) && !replayBefore(wm, start+j.size) && !j.sides[0].agg.holds(start) && !j.sides[1].agg.holds(start) && !slices.Contains(done, start) {
				done = append(done, start)
			}
		}
	}
	slices.Sort(done)
	for _, start := range done {
		j.join(start, out)
	}
	j.errs.flush(fail)
	return 0
}

// join writes the pairs of window start's rows of the two sides with
// equal keys, and of an outer join the rows of a side that match nothing
// (a NULL key matches nothing), with NULL columns of the other, and lets
// the window's rows go. A row a pair of which fails in ON is that
// failure's: it is not written with NULLs.
func (j *windowJoin) join(start int64, out *message.Batch) {
	left, right := j.sides[0], j.sides[1]
	rights := right.held[start]
	byKey := map[string][]int{}
	for i, row := range rights {
		if right.keys.encode(row, 0) == nil && !hasNull(right.keys.vals) {
			byKey[string(right.keys.buf)] = append(byKey[string(right.keys.buf)], i)
		}
	}
	var rightDone []bool // matched or failed, by index in rights
	if j.node.RightOuter {
		rightDone = make([]bool, len(rights))
	}
	width := out.Width()
	for _, l := range left.held[start] {
		done := false
		if left.keys.encode(l, 0) == nil && !hasNull(left.keys.vals) {
			for _, i := range byKey[string(left.keys.buf)] {
				row := out.Append(0)
				copy(row, l)
				copy(row[len(l):], rights[i])
				ok, err := holds(j.node.On, row)
				if err != nil {
					j.errs = append(j.errs, fmt.Errorf("ON of a window's joined row: %w", err))
				}
				if !ok || err != nil {
					out.Truncate()
				}
				if ok || err != nil {
					done = true
					if rightDone != nil {
						rightDone[i] = true
					}
				}
			}
		}
		if !done && j.node.Outer {
			row := out.Append(0)
			copy(row, l)
			clear(row[len(l):width])
		}
	}
	for i, r := range rights {
		if rightDone != nil && !rightDone[i] {
			row := out.Append(0)
			at := width - len(r)
			clear(row[:at])
			copy(row[at:], r)
		}
	}
	for _, s := range j.sides {
		s.rows -= len(s.held[start])
		delete(s.held, start)
		// Joined once: a row of it that comes now, from a partition
		// judged by a watermark of its own (one that first sends only
		// now), is late on either side, as on the side that wrote it,
		// rather than open it again to be joined alone.
		s.agg.ranked = max(s.agg.ranked, start+j.size)
	}
}

// holds reports whether the aggregation holds the window that starts at
// start, whose rows it may still write.
func (a *windowAgg) holds(start int64) bool {
	_, ok := a.windows[start]
	return ok
}

// Low implements Stateful: the earliest open window of either side, or
// held to be joined.
func (j *windowJoin) Low() int64 {
	low := int64(math.MaxInt64)
	for _, s := range j.sides {
		low = min(low, s.agg.Low())
		for start := range s.held {
			low = min(low, start)
		}
	}
	return low
}

// Size implements Stateful: both sides' groups and rows held.
func (j *windowJoin) Size() int {
	n := 0
	for _, s := range j.sides {
		n += s.agg.Size() + s.rows
	}
	return n
}

// AppendSnapshot implements Snapshotter: each side's aggregation, then
// the rows it holds, by window.
func (j *windowJoin) AppendSnapshot(dst []byte, origins *Origins) []byte {
	dst = append(dst, snapshotVersion)
	for _, s := range j.sides {
		dst = s.agg.AppendSnapshot(dst, origins)
		starts := make([]int64, 0, len(s.held))
		for start := range s.held {
			starts = append(starts, start)
		}
		slices.Sort(starts)
		dst = binary.AppendUvarint(dst, uint64(len(starts)))
		for _, start := range starts {
			dst = binary.AppendVarint(dst, start)
			dst = binary.AppendUvarint(dst, uint64(len(s.held[start])))
			for _, row := range s.held[start] {
				dst = appendValues(dst, row)
			}
		}
	}
	return dst
}

// RestoreSnapshot implements Snapshotter.
func (j *windowJoin) RestoreSnapshot(r *value.Reader, origins *Origins) error {
	if v := r.Byte(); v != snapshotVersion && r.Err() == nil {
		return fmt.Errorf("window join state of snapshot version %d; this engine reads %d", v, snapshotVersion)
	}
	for i, s := range j.sides {
		if err := s.agg.RestoreSnapshot(r, origins); err != nil {
			return fmt.Errorf("side %d of the window join: %w", i+1, err)
		}
		clear(s.held)
		s.rows = 0
		width := s.posted.Width()
		for range r.Count(2) {
			start := r.Varint()
			n := r.Count(width)
			rows := make([]value.Row, n)
			for k := range rows {
				rows[k] = make(value.Row, width)
				readValues(r, rows[k])
			}
			if r.Err() != nil {
				break
			}
			s.held[start] = rows
			s.rows += n
		}
	}
	if err := r.Err(); err != nil {
		return fmt.Errorf("reading the window join's state: %w", err)
	}
	return nil
}
