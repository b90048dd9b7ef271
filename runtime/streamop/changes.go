package streamop

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/sluice-dev/sluice/runtime/expr"
	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/plan"
	"github.com/sluice-dev/sluice/runtime/value"
)

// changeAgg aggregates the rows of another aggregation (inner): a GROUP
// BY without a window, whose rows are a changelog, each replacing its
// group's row before, or of windows. It keeps the latest row of each
// inner group that the outer aggregation holds, and when a group's row
// changes takes the earlier one's values back out of its outer group
// before it adds the new one's (a retraction): the outer groups are then
// the batch query's over the inner groups' latest rows.
//
// It keeps, of each inner group's latest row, the outer aggregates'
// arguments, the values it added, which it takes out again as they were
// (an argument such as now() would not evaluate to them twice).
type changeAgg struct {
	innerRows
	// windows, of an inner aggregation of windows, is that aggregation:
	// the rows of a window it has let go are never written again, and
	// their arguments are forgotten, their keys in starts by their
	// windows' starts.
	windows *windowAgg
	starts  timeHeap[string]
	outer   *windowAgg
	// last is the outer aggregates' arguments of each inner group's
	// latest row, which the outer groups hold, by the group's encoded key.
	last map[string][]value.Value
	// Once a snapshot is taken or restored (tracking), the keys of last
	// set and dropped since, for AppendChanges.
	tracking  bool
	set, gone map[string]struct{}
}

// newChangeAgg returns the aggregation outer of the rows of inner, made by
// proj; innerOp is inner's operator, windows itself (or wrapped in the
// join it reads).
func newChangeAgg(inner *plan.Aggregate, proj *plan.Project, innerOp Stateful, windows, outer *windowAgg) *changeAgg {
	c := &changeAgg{innerRows: newInnerRows(inner, proj, innerOp), outer: outer, last: map[string][]value.Value{}}
	if inner.Window.Kind != plan.Continuous {
		c.windows = windows
	}
	return c
}

// innerRows is what an operator over the rows of another aggregation
// (inner), read through its select list, holds alike: an aggregation of
// them (changeAgg), or OVER (changeOver).
type innerRows struct {
	inner Stateful
	tableJoinOf
	// keys is how many leading columns of the inner rows name their
	// group: the window bounds and the GROUP BY keys; keyBuf holds a
	// row's, encoded (groupKey).
	keys   int
	keyBuf []byte
	// proj is the inner query's select list, which makes the rows the
	// operator reads, in made.
	proj []expr.Expr
	made value.Row
	// changed are the inner rows of a step; errs the failures of making
	// or taking them, which are not input records: they go to the next
	// Advance's fail.
	changed *message.Batch
	errs    pendingErrors
	// owners are the partitions the state was built from: the operator's
	// state holds rows of many, so a partition that moved away leaves
	// state no one can take apart.
	owners ownerSet
}

func newInnerRows(inner *plan.Aggregate, proj *plan.Project, innerOp Stateful) innerRows {
	c := innerRows{
		inner: innerOp, tableJoinOf: tableJoinOf{innerOp}, keys: 2 + len(inner.Keys),
		proj: proj.Exprs, made: make(value.Row, len(proj.Exprs)), changed: &message.Batch{},
	}
	c.changed.Reset(len(inner.Columns()))
	return c
}

// take passes in to the inner aggregation, whose rows go to c.changed,
// and returns its late and absorbed rows, the input's.
func (c *innerRows) take(in *message.Batch, wm Watermark, fail Failures) (late, absorbed int) {
	c.owners.add(ownerOf(in))
	return c.inner.Process(in, c.changed, wm, fail)
}

// groupKey encodes the group of row, an inner row, into c.keyBuf.
func (c *innerRows) groupKey(row value.Row) []byte {
	c.keyBuf = c.keyBuf[:0]
	for _, v := range row[:c.keys] {
		c.keyBuf = appendKey(c.keyBuf, v)
	}
	return c.keyBuf
}

// moved is the error of Moved: the inner aggregation's, or, for a
// partition the state was built from that moved away since, one saying
// why the state cannot be taken apart (holds: what holds which rows); nil
// if none moved.
func (c *innerRows) moved(holds string) error {
	if m, ok := c.inner.(interface{ Moved() error }); ok {
		if err := m.Moved(); err != nil {
			return err
		}
	}
	if !c.owners.moved() {
		return nil
	}
	return fmt.Errorf("a partition of this query moved to another engine (a consumer-group rebalance): %s, which cannot be taken apart, so the engine stops, to start again from its last commit or checkpoint; run one engine for this query", holds)
}

// ProcessedAt is the inner windows' processing time (ProcessedAt).
func (c *innerRows) ProcessedAt() int64 {
	if p, ok := c.inner.(interface{ ProcessedAt() int64 }); ok {
		return p.ProcessedAt()
	}
	return math.MinInt64
}

// Process implements Stateful. The late rows and those absorbed are the
// inner aggregation's input's.
func (c *changeAgg) Process(in, out *message.Batch, wm Watermark, fail Failures) (late, absorbed int) {
	late, absorbed = c.take(in, wm, fail)
	c.feed(out)
	return late, absorbed
}

// feed replaces, in the outer groups, each inner group's earlier row by
// the one the inner aggregation just wrote, in the order written, and
// then writes the outer groups that changed.
func (c *changeAgg) feed(out *message.Batch) {
	if c.changed.Len() == 0 {
		return
	}
	for _, row := range c.changed.Rows {
		c.groupKey(row)
		old := c.last[string(c.keyBuf)]
		var args []value.Value
		changed := false
		made, err := c.make(row)
		if err == nil {
			args, changed, err = c.outer.change(old, made)
		}
		switch {
		case err != nil:
			// The outer group keeps the earlier row, as a reader of the
			// inner query's changelog would.
			c.errs = append(c.errs, fmt.Errorf("group %v of the aggregated query: %w", row[2:c.keys], err))
		case !changed:
		case old != nil:
			copy(old, args)
			ownStrings(old)
			c.touch(string(c.keyBuf))
		default:
			key := string(c.keyBuf)
			c.last[key] = ownValues(args)
			c.touch(key)
			if c.windows != nil {
				c.starts.push(timed[string]{ts: row[0].Nanos(), key: key})
			}
		}
	}
	c.changed.Reset(c.changed.Width())
	c.outer.emitBatch(out)
}

// make computes the inner query's select list of one of its rows; the
// row is only good until the next.
func (c *innerRows) make(row value.Row) (value.Row, error) {
	for i, e := range c.proj {
		v, err := e.Eval(row)
		if err != nil {
			return nil, err
		}
		c.made[i] = v
	}
	return c.made, nil
}

// Advance implements Stateful: the inner aggregation first, whose windows
// may close, then the outer, whose emit interval may be up.
func (c *changeAgg) Advance(wm Watermark, out *message.Batch, fail func(error)) (dropped int) {
	dropped = c.inner.Advance(wm, c.changed, fail)
	c.feed(out)
	c.forget()
	c.outer.Advance(wm, out, fail)
	c.errs.flush(fail)
	return dropped
}

// forget drops the arguments of the rows of the windows the inner
// aggregation has let go, which it never writes again: at the end of the
// input, all of them, so that a run that reads on from its checkpoint
// adds the rest of a window to the earlier rows rather than replace them,
// as a plain windowed query writes a window that spans the two runs
// twice.
func (c *changeAgg) forget() {
	if c.windows == nil {
		return
	}
	held := c.windows.Low() // the earliest window it holds
	for c.starts.low() < held {
		key := c.starts.pop().key
		delete(c.last, key)
		if c.tracking {
			delete(c.set, key)
			c.gone[key] = struct{}{}
		}
	}
}

// touch notes, once a snapshot is taken, that key's arguments were set.
func (c *changeAgg) touch(key string) {
	if c.tracking {
		delete(c.gone, key)
		c.set[key] = struct{}{}
	}
}

// tracked starts, or starts again, tracking changes after a snapshot.
func (c *changeAgg) tracked() {
	c.tracking = true
	if c.set == nil {
		c.set, c.gone = map[string]struct{}{}, map[string]struct{}{}
	}
	clear(c.set)
	clear(c.gone)
}

// Moved reports a partition the state was built from that moved away
// since: the engine must start again from its last commit or checkpoint.
func (c *changeAgg) Moved() error {
	return c.moved("an aggregation of a GROUP BY's rows holds the rows of many partitions in each group")
}

// Low implements Stateful: the inner aggregation's, or, while the outer
// holds changes back (an emit interval), the time before any.
func (c *changeAgg) Low() int64 { return min(c.inner.Low(), c.outer.Low()) }

// Size implements Stateful: the groups of both aggregations.
func (c *changeAgg) Size() int { return c.inner.Size() + c.outer.Size() }

// Flush implements Flusher: the outer's changes an emit interval holds.
func (c *changeAgg) Flush() bool { return c.outer.Flush() }

// AppendSnapshot implements Snapshotter: the inner aggregation's state,
// the arguments of each inner group's latest row, the outer's state.
func (c *changeAgg) AppendSnapshot(dst []byte, origins *Origins) []byte {
	dst = append(dst, snapshotVersion)
	dst = c.inner.(Snapshotter).AppendSnapshot(dst, origins)
	dst = binary.AppendUvarint(dst, uint64(len(c.last)))
	for key, args := range c.last {
		dst = value.AppendBytes(dst, key)
		dst = appendValues(dst, args)
	}
	c.tracked()
	return c.outer.AppendSnapshot(dst, origins)
}

// RestoreSnapshot implements Snapshotter.
func (c *changeAgg) RestoreSnapshot(r *value.Reader, origins *Origins) error {
	if v := r.Byte(); v != snapshotVersion && r.Err() == nil {
		return fmt.Errorf("state of an aggregation of a GROUP BY's rows of snapshot version %d; this engine reads %d", v, snapshotVersion)
	}
	if err := c.inner.(Snapshotter).RestoreSnapshot(r, origins); err != nil {
		return fmt.Errorf("the aggregated query: %w", err)
	}
	clear(c.last)
	if err := c.readLast(r, c.last); err != nil {
		return err
	}
	c.starts = c.starts[:0]
	for key := range c.last {
		if err := c.pushStart(key); err != nil {
			return err
		}
	}
	c.tracked()
	if err := c.outer.RestoreSnapshot(r, origins); err != nil {
		return fmt.Errorf("the aggregation of its rows: %w", err)
	}
	return nil
}

// readLast reads entries of last, each a key and its arguments, into m.
func (c *changeAgg) readLast(r *value.Reader, m map[string][]value.Value) error {
	width := len(c.outer.calls.Funcs)
	for range r.Count(1 + width) {
		key := r.String()
		args := make([]value.Value, width)
		readValues(r, args)
		m[key] = args
	}
	if err := r.Err(); err != nil {
		return fmt.Errorf("reading the aggregated query's rows: %w", err)
	}
	return nil
}

// pushStart lists key, of an inner window's row, by its window's start.
func (c *changeAgg) pushStart(key string) error {
	if c.windows == nil {
		return nil
	}
	// A window row's key starts with its window's start, as appendKey
	// writes a timestamp: its kind, then 8 bytes.
	if len(key) < 9 {
		return fmt.Errorf("reading the aggregated query's rows: a window's key of %d bytes", len(key))
	}
	c.starts.push(timed[string]{ts: int64(binary.LittleEndian.Uint64([]byte(key[1:9]))), key: key})
	return nil
}

// changeDeltas is a changeAgg whose inner aggregation writes its changes
// since a snapshot (a windowAgg, not a join): its checkpoints may be
// deltas too.
type changeDeltas struct{ *changeAgg }

// AppendChanges implements IncrementalSnapshotter: the inner aggregation's
// changes, the arguments set and dropped, the outer's changes.
func (c changeDeltas) AppendChanges(dst []byte, origins *Origins) []byte {
	dst = append(dst, snapshotVersion)
	dst = c.inner.(IncrementalSnapshotter).AppendChanges(dst, origins)
	dst = binary.AppendUvarint(dst, uint64(len(c.set)))
	for key := range c.set {
		dst = value.AppendBytes(dst, key)
		dst = appendValues(dst, c.last[key])
	}
	dst = binary.AppendUvarint(dst, uint64(len(c.gone)))
	for key := range c.gone {
		dst = value.AppendBytes(dst, key)
	}
	c.tracked()
	return c.outer.AppendChanges(dst, origins)
}

// ApplyChanges implements IncrementalSnapshotter.
func (c changeDeltas) ApplyChanges(r *value.Reader, origins *Origins) error {
	if v := r.Byte(); v != snapshotVersion && r.Err() == nil {
		return fmt.Errorf("changes of an aggregation of a GROUP BY's rows of version %d; this engine reads %d", v, snapshotVersion)
	}
	if err := c.inner.(IncrementalSnapshotter).ApplyChanges(r, origins); err != nil {
		return fmt.Errorf("the aggregated query: %w", err)
	}
	set := make(map[string][]value.Value)
	if err := c.readLast(r, set); err != nil {
		return err
	}
	for key, args := range set {
		if _, held := c.last[key]; !held {
			if err := c.pushStart(key); err != nil {
				return err
			}
		}
		c.last[key] = args
	}
	for range r.Count(1) {
		delete(c.last, r.String())
	}
	if err := r.Err(); err != nil {
		return fmt.Errorf("reading the aggregated query's rows: %w", err)
	}
	// A key dropped leaves its start behind, which forget pops at its
	// window's end as it would the key's: a key names its window.
	c.tracked()
	if err := c.outer.ApplyChanges(r, origins); err != nil {
		return fmt.Errorf("the aggregation of its rows: %w", err)
	}
	return nil
}
