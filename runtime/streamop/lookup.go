package streamop

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/plan"
	"github.com/sluice-dev/sluice/runtime/value"
)

// lookupAfter looks the pairs of an interval join (the rows of a join of
// more streams) up in further tables, in turn: `s1 JOIN s2 ON ... JOIN t
// ON ...`. A table join looks its rows up
// itself, as its stream rows wait for the tables; the pairs of two streams
// wait here instead, once joined, since the streams' rows are judged late
// when they come. The pairs the join writes before every further table has
// been read to its end (a Kafka table's: to where it ended when the engine
// started) wait, in order, and nothing is acknowledged meanwhile.
type lookupAfter struct {
	join    Stateful
	lookups []*lookup
	tableLoad
	width   int            // of the join's pairs
	pairs   *message.Batch // what the join wrote in one step
	waiting []value.Row
	// errs are the failures of pairs in a table's keys or ON, which are
	// not input records: they go to the next Advance's fail.
	errs pendingErrors
}

func newLookupAfter(n *plan.Join, join Stateful, reread map[string]bool) *lookupAfter {
	width := len(n.Left.Cols) + len(n.Right.Cols)
	for _, s := range n.Streams {
		width += len(s.Stream.Cols)
	}
	a := &lookupAfter{join: join, lookups: newLookups(n.Lookups, reread), width: width, pairs: &message.Batch{}}
	a.pairs.Reset(a.width)
	return a
}

// Begin tells the operator the tables' partitions, which it waits for.
func (a *lookupAfter) Begin(origins []*message.Origin) {
	a.wait(origins, func(source string) bool { return isLookup(a.lookups, source) })
}

// Process implements Stateful: a table's rows replace their key's, the
// streams' go to the join, whose pairs are looked up.
func (a *lookupAfter) Process(in, out *message.Batch, wm Watermark, fail Failures) (late, absorbed int) {
	if in.Origin != nil {
		if absorbed, ok := absorbLookups(in, a.lookups, fail, math.MinInt64); ok {
			return 0, absorbed
		}
	}
	late, absorbed = a.join.Process(in, a.pairs, wm, fail)
	a.pass(out)
	return late, absorbed
}

// Advance implements Stateful.
func (a *lookupAfter) Advance(wm Watermark, out *message.Batch, fail func(error)) (dropped int) {
	dropped = a.join.Advance(wm, a.pairs, fail)
	a.pass(out)
	a.errs.flush(fail)
	return dropped
}

// pass looks the join's new pairs up, after those that waited, once the
// tables are loaded; until then they wait.
func (a *lookupAfter) pass(out *message.Batch) {
	if !a.loaded {
		for _, row := range a.pairs.Rows {
			a.waiting = append(a.waiting, ownValues(row))
		}
	} else {
		for _, row := range a.waiting {
			a.write(out, row)
		}
		clear(a.waiting)
		a.waiting = a.waiting[:0]
		for _, row := range a.pairs.Rows {
			a.write(out, row)
		}
	}
	a.pairs.Reset(a.width)
}

// write writes pair looked up in the tables, unless one drops it.
func (a *lookupAfter) write(out *message.Batch, pair value.Row) {
	o := out.Append(0)
	copy(o, pair)
	ok, err := lookUp(o, a.width, a.lookups, asOfTime{})
	if !ok || err != nil {
		out.Truncate()
	}
	if err != nil {
		a.errs = append(a.errs, fmt.Errorf("join of a joined row: %w", err))
	}
}

// Moved is the join's: a join of more than two streams cannot follow a
// partition that moves away.
func (a *lookupAfter) Moved() error {
	if m, ok := a.join.(interface{ Moved() error }); ok {
		return m.Moved()
	}
	return nil
}

// Low implements Stateful: nothing is acknowledged while pairs wait.
func (a *lookupAfter) Low() int64 {
	if len(a.waiting) > 0 {
		return math.MinInt64
	}
	return a.join.Low()
}

// Size implements Stateful: the join's rows, the tables' and the pairs
// waiting.
func (a *lookupAfter) Size() int { return a.join.Size() + rowsOf(a.lookups) + len(a.waiting) }

// AppendSnapshot implements Snapshotter: the join's state, each table's
// rows but those read again whole, and the pairs waiting.
func (a *lookupAfter) AppendSnapshot(dst []byte, origins *Origins) []byte {
	dst = append(dst, snapshotVersion)
	dst = a.join.(Snapshotter).AppendSnapshot(dst, origins)
	dst = appendLookups(dst, a.lookups)
	dst = binary.AppendUvarint(dst, uint64(len(a.waiting)))
	for _, row := range a.waiting {
		dst = appendValues(dst, row)
	}
	return dst
}

// RestoreSnapshot implements Snapshotter. The pairs wait again for every
// table partition of this run (Begin), as a table join's stream rows do.
func (a *lookupAfter) RestoreSnapshot(r *value.Reader, origins *Origins) error {
	if v := r.Byte(); v != snapshotVersion && r.Err() == nil {
		return fmt.Errorf("state of the tables after a join of snapshot version %d; this engine reads %d", v, snapshotVersion)
	}
	if err := a.join.(Snapshotter).RestoreSnapshot(r, origins); err != nil {
		return fmt.Errorf("the join: %w", err)
	}
	if err := readLookups(r, a.lookups); err != nil {
		return err
	}
	a.waiting = a.waiting[:0]
	for range r.Count(a.width) {
		row := make(value.Row, a.width)
		readValues(r, row)
		a.waiting = append(a.waiting, row)
	}
	if err := r.Err(); err != nil {
		return fmt.Errorf("reading the state of the tables after a join: %w", err)
	}
	return nil
}
