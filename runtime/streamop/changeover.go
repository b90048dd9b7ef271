package streamop

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/sluice-dev/sluice/runtime/aggregate"
	"github.com/sluice-dev/sluice/runtime/expr"
	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/plan"
	"github.com/sluice-dev/sluice/runtime/value"
)

// changeOver computes moving aggregates (OVER) of the rows of another
// aggregation (inner), a GROUP BY without a window, whose rows are a
// changelog, each replacing its group's row before. It keeps each inner
// group's latest row in its place in its partition, in the order of ORDER
// BY and then of the groups' keys, and when a group's row changes, or a
// new group comes, writes again the rows whose frames hold it: its own and
// as many after it as the widest frame reaches back. Its rows are a
// changelog keyed by the inner groups, whose latest rows are the batch
// query's over the inner groups' latest rows.
//
// The arguments of the calls are computed once, as a group's row
// changes, and kept with it; a row's place (its partition and ORDER BY
// values) is of its group's keys alone, which the binder checks, so that
// it never moves.
type changeOver struct {
	innerRows
	node  *plan.Over
	args  []value.Value // of the calls, computed from made
	part  *keyEncoder
	order []expr.Expr
	// ties orders rows of equal ORDER BY values by their groups' keys,
	// ascending, NULLs last.
	ties []plan.SortKey
	// groups are the calls that share a frame; frames their frames, in
	// which a run of rows is pushed again to compute each row's results.
	groups    []frameGroup
	frames    []*aggregate.Frame
	preceding int // the widest frame's rows before the current one
	results   []value.Value

	byKey map[string]*changeRow
	parts map[string]*changePart
	// dirty are the rows that changed since their partitions' rows were
	// last written, each once.
	dirty []*changeRow
	pace  pacer
	spans []span
}

// changeRow is an inner group's latest row, in its partition.
type changeRow struct {
	key  string        // the group's encoded key
	row  value.Row     // the inner select list's values
	ord  []value.Value // the ORDER BY values, then the group's keys
	args []value.Value // each call's argument, in the order of node.Calls
	part *changePart
	// dirty says the row is in changeOver.dirty; pos is where it was
	// found as the rows were written.
	dirty bool
	pos   int
}

// changePart is a partition's rows, in order.
type changePart struct {
	id   int // creation order, to write partitions in an order of their own
	rows []*changeRow
}

// span is a run of a partition's rows to write again, from..to inclusive.
type span struct {
	part     *changePart
	from, to int
}

// newChangeOver returns OVER over of the rows of inner, made by proj;
// innerOp is inner's operator (itself, or wrapped in the join it reads).
func newChangeOver(inner *plan.Aggregate, proj *plan.Project, innerOp Stateful, over *plan.Over, opts StatefulOptions) *changeOver {
	c := &changeOver{
		innerRows: newInnerRows(inner, proj, innerOp), node: over, part: newKeyEncoder(over.Partition),
		ties: make([]plan.SortKey, len(inner.Keys)), args: make([]value.Value, len(over.Calls)), results: make([]value.Value, len(over.Calls)),
		byKey: map[string]*changeRow{}, parts: map[string]*changePart{},
	}
	for _, k := range over.Order {
		c.order = append(c.order, k.Expr)
	}
	clock := opts.Clock
	if clock == nil {
		clock = time.Now
	}
	c.pace = newPacer(clock, opts.EmitInterval)
	c.groups = frameGroupsOf(over.Calls)
	for _, g := range c.groups {
		c.frames = append(c.frames, aggregate.NewFrame(g.spec, g.funcs))
		c.preceding = max(c.preceding, int(g.spec.Preceding))
	}
	return c
}

// Process implements Stateful. The late rows and those absorbed are the
// inner aggregation's input's.
func (c *changeOver) Process(in, out *message.Batch, wm Watermark, fail Failures) (late, absorbed int) {
	late, absorbed = c.take(in, wm, fail)
	c.feed()
	if c.pace.afterBatch() {
		c.write(out)
	}
	return late, absorbed
}

// Advance implements Stateful: the inner aggregation first (a join below
// it may write rows), then the rows held, when an emit interval is up.
func (c *changeOver) Advance(wm Watermark, out *message.Batch, fail func(error)) (dropped int) {
	dropped = c.inner.Advance(wm, c.changed, fail)
	c.feed()
	if c.pace.atAdvance(len(c.dirty) > 0) {
		c.write(out)
	}
	c.errs.flush(fail)
	return dropped
}

// feed puts each row the inner aggregation just wrote in its group's
// place, in the order written, and notes it to be written with the rows
// after it.
func (c *changeOver) feed() {
	for _, row := range c.changed.Rows {
		if err := c.change(row); err != nil {
			// The group keeps its earlier row, as a reader of the inner
			// query's changelog would.
			c.errs = append(c.errs, fmt.Errorf("group %v of the query OVER reads: %w", row[2:c.keys], err))
		}
	}
	c.changed.Reset(c.changed.Width())
}

// change replaces the latest row of row's group by row.
func (c *changeOver) change(row value.Row) error {
	c.groupKey(row)
	if _, err := c.make(row); err != nil {
		return err
	}
	r := c.byKey[string(c.keyBuf)]
	if r != nil && slices.EqualFunc(r.row, c.made, value.Equal) {
		return nil // a group's row written again as it was
	}
	args := c.args
	for i, call := range c.node.Calls {
		if call.Arg == nil {
			continue // count(*)
		}
		v, err := call.Arg.Eval(c.made)
		if err != nil {
			return fmt.Errorf("%s: %w", call, err)
		}
		args[i] = v
	}
	for i := range c.groups {
		g := &c.groups[i]
		for j, call := range g.calls {
			g.args[j] = args[call]
		}
		if err := c.frames[i].Check(g.args); err != nil {
			return err
		}
	}
	if r == nil {
		var err error
		if r, err = c.place(string(c.keyBuf), row[2:c.keys]); err != nil {
			return err
		}
		r.row, r.args = make(value.Row, len(c.made)), make([]value.Value, len(args))
	}
	copy(r.row, c.made)
	copy(r.args, args)
	ownStrings(r.row, r.args)
	c.mark(r)
	return nil
}

// place makes the row of a new group of keys, key encoded, in its place
// in its partition.
func (c *changeOver) place(key string, keys []value.Value) (*changeRow, error) {
	if err := c.part.encode(c.made, 0); err != nil {
		return nil, fmt.Errorf("PARTITION BY: %w", err)
	}
	ord := make([]value.Value, 0, len(c.order)+len(keys))
	for _, e := range c.order {
		v, err := e.Eval(c.made)
		if err != nil {
			return nil, fmt.Errorf("ORDER BY: %w", err)
		}
		ord = append(ord, v)
	}
	ord = append(ord, keys...)
	ownStrings(ord)
	p := c.parts[string(c.part.buf)]
	if p == nil {
		p = &changePart{id: len(c.parts)}
		c.parts[string(c.part.buf)] = p
	}
	r := &changeRow{key: key, ord: ord, part: p}
	i := c.position(p, r)
	p.rows = slices.Insert(p.rows, i, r)
	c.byKey[key] = r
	return r, nil
}

// position returns where r's row is, or goes, in its partition p.
func (c *changeOver) position(p *changePart, r *changeRow) int {
	i, _ := slices.BinarySearchFunc(p.rows, r, func(a, b *changeRow) int { return c.compare(a.ord, b.ord) })
	return i
}

// compare orders two rows by their ORDER BY values, then their groups'
// keys.
func (c *changeOver) compare(a, b []value.Value) int {
	n := len(c.order)
	if d := compareSortKeys(c.node.Order, a[:n], b[:n]); d != 0 {
		return d
	}
	return compareSortKeys(c.ties, a[n:], b[n:])
}

// mark lists r to be written, with the rows after it whose frames hold it.
func (c *changeOver) mark(r *changeRow) {
	if !r.dirty {
		r.dirty = true
		c.dirty = append(c.dirty, r)
	}
}

// write writes the rows whose frames changed: of each row that changed,
// it and the rows after it that the widest frame reaches back to it from,
// each once, partition by partition in order, a run of them at a time.
func (c *changeOver) write(out *message.Batch) {
	c.pace.written()
	if len(c.dirty) == 0 {
		return
	}
	for _, r := range c.dirty {
		r.dirty = false
		r.pos = c.position(r.part, r)
	}
	slices.SortFunc(c.dirty, func(a, b *changeRow) int {
		return cmp.Or(cmp.Compare(a.part.id, b.part.id), cmp.Compare(a.pos, b.pos))
	})
	c.spans = c.spans[:0]
	for _, r := range c.dirty {
		to := min(r.pos+c.preceding, len(r.part.rows)-1)
		if n := len(c.spans); n > 0 && c.spans[n-1].part == r.part && r.pos <= c.spans[n-1].to+1 {
			c.spans[n-1].to = max(c.spans[n-1].to, to)
			continue
		}
		c.spans = append(c.spans, span{part: r.part, from: r.pos, to: to})
	}
	clear(c.dirty)
	c.dirty = c.dirty[:0]
	for _, s := range c.spans {
		c.writeSpan(out, s)
	}
}

// writeSpan writes the rows of s, each with its frames' results: the rows
// before it that its first row's frames hold are pushed first.
func (c *changeOver) writeSpan(out *message.Batch, s span) {
	for _, f := range c.frames {
		f.Reset()
	}
	for i := max(s.from-c.preceding, 0); i <= s.to; i++ {
		r := s.part.rows[i]
		c.push(r)
		if i < s.from {
			continue
		}
		if err := c.frameResults(); err != nil {
			c.errs = append(c.errs, fmt.Errorf("the row of group %v: %w", r.ord[len(c.order):], err))
			continue
		}
		row := out.Append(0)
		copy(row, r.row)
		copy(row[len(r.row):], c.results)
	}
}

// push adds r's arguments to every frame; they were checked as r changed.
func (c *changeOver) push(r *changeRow) {
	for i := range c.groups {
		g := &c.groups[i]
		for j, call := range g.calls {
			g.args[j] = r.args[call]
		}
		_ = c.frames[i].Push(0, g.args) // checked by change
	}
}

// frameResults computes each call's result over its frame into c.results.
func (c *changeOver) frameResults() error {
	for i := range c.groups {
		g := &c.groups[i]
		if err := c.frames[i].Results(g.res); err != nil {
			return err
		}
		for j, call := range g.calls {
			c.results[call] = g.res[j]
		}
	}
	return nil
}

// Moved reports a partition the state was built from that moved away
// since: the engine must start again from its last commit or checkpoint.
func (c *changeOver) Moved() error {
	return c.moved("OVER of a GROUP BY's rows holds the rows of many partitions in each frame")
}

// Low implements Stateful: the inner aggregation's, or, while rows are
// held back (an emit interval), the time before any.
func (c *changeOver) Low() int64 {
	if len(c.dirty) > 0 {
		return math.MinInt64
	}
	return c.inner.Low()
}

// Size implements Stateful: the inner groups, and their rows here.
func (c *changeOver) Size() int { return c.inner.Size() + len(c.byKey) }

// Flush implements Flusher: the rows an emit interval holds.
func (c *changeOver) Flush() bool { return c.pace.flushHeld(len(c.dirty) > 0) }

// AppendSnapshot implements Snapshotter: the inner aggregation's state,
// then each group's key, its keys' values, its latest row and arguments,
// and whether it is still to be written.
func (c *changeOver) AppendSnapshot(dst []byte, origins *Origins) []byte {
	dst = append(dst, snapshotVersion)
	dst = c.inner.(Snapshotter).AppendSnapshot(dst, origins)
	dst = binary.AppendUvarint(dst, uint64(len(c.byKey)))
	for _, p := range c.partsInOrder() {
		for _, r := range p.rows {
			dst = value.AppendBytes(dst, r.key)
			dst = appendValues(dst, r.ord[len(c.order):])
			dst = appendValues(dst, r.row)
			dst = appendValues(dst, r.args)
			dst = appendBool(dst, r.dirty)
		}
	}
	return dst
}

// partsInOrder returns the partitions in the order they were made.
func (c *changeOver) partsInOrder() []*changePart {
	parts := make([]*changePart, 0, len(c.parts))
	for _, p := range c.parts {
		parts = append(parts, p)
	}
	slices.SortFunc(parts, func(a, b *changePart) int { return cmp.Compare(a.id, b.id) })
	return parts
}

// RestoreSnapshot implements Snapshotter.
func (c *changeOver) RestoreSnapshot(r *value.Reader, origins *Origins) error {
	if v := r.Byte(); v != snapshotVersion && r.Err() == nil {
		return fmt.Errorf("state of OVER of a GROUP BY's rows of snapshot version %d; this engine reads %d", v, snapshotVersion)
	}
	if err := c.inner.(Snapshotter).RestoreSnapshot(r, origins); err != nil {
		return fmt.Errorf("the query OVER reads: %w", err)
	}
	clear(c.byKey)
	clear(c.parts)
	clear(c.dirty)
	c.dirty = c.dirty[:0]
	groupKeys := make([]value.Value, c.keys-2)
	for range r.Count(2) {
		key := r.String()
		readValues(r, groupKeys)
		readValues(r, c.made)
		args := make([]value.Value, len(c.node.Calls))
		readValues(r, args)
		dirty := r.Byte() == 1
		if r.Err() != nil {
			break
		}
		if _, twice := c.byKey[key]; twice {
			return fmt.Errorf("reading the rows OVER holds: group %v twice", groupKeys)
		}
		row, err := c.place(key, groupKeys)
		if err != nil {
			return fmt.Errorf("reading the rows OVER holds: group %v: %w", groupKeys, err)
		}
		row.row, row.args = ownValues(c.made), args
		if dirty {
			c.mark(row)
		}
	}
	if err := r.Err(); err != nil {
		return fmt.Errorf("reading the rows OVER holds: %w", err)
	}
	return nil
}
