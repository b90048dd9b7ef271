package streamop

import (
	"slices"

	"github.com/sluice-dev/sluice/runtime/expr"
	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/plan"
	"github.com/sluice-dev/sluice/runtime/value"
)

// ranker runs a window top-N over the rows of windows that closed: a
// batch holds every row of each partition it has rows of (the windowed
// aggregation writes a window's groups in one Advance), so it ranks each
// batch on its own.
type ranker struct {
	node  *plan.TopN
	exprs []expr.Expr // the partition, then the order
	parts int
	// vals holds the evaluated exprs of row rows[k] at k*len(exprs), and
	// sorted the k in rank order.
	vals   []value.Value
	rows   []int
	sorted []int
}

func newRanker(n *plan.TopN) *ranker {
	r := &ranker{node: n, exprs: slices.Clone(n.Partition), parts: len(n.Partition)}
	for _, k := range n.Order {
		r.exprs = append(r.exprs, k.Expr)
	}
	return r
}

// Process implements Operator. Its rows come out by partition, each in
// rank order, the rank appended; it filters none.
func (r *ranker) Process(in, out *message.Batch, fail Failures) (filtered int) {
	w := len(r.exprs)
	r.vals, r.rows, r.sorted = r.vals[:0], r.rows[:0], r.sorted[:0]
rows:
	for i, row := range in.Rows {
		for _, e := range r.exprs {
			v, err := e.Eval(row)
			if err != nil {
				r.vals = r.vals[:len(r.rows)*w]
				fail.Fail(in, i, "rank", err)
				continue rows
			}
			r.vals = append(r.vals, v)
		}
		r.sorted = append(r.sorted, len(r.rows))
		r.rows = append(r.rows, i)
	}
	// Stable: ROW_NUMBER numbers ties in the order the rows came.
	slices.SortStableFunc(r.sorted, func(a, b int) int {
		if c := r.comparePartition(a, b); c != 0 {
			return c
		}
		return r.compareOrder(a, b)
	})
	var ranks rankCounter
	for j, k := range r.sorted {
		if j == 0 || r.comparePartition(r.sorted[j-1], k) != 0 {
			ranks = rankCounter{fn: r.node.Func}
		}
		n := ranks.next(ranks.pos > 0 && r.compareOrder(r.sorted[j-1], k) == 0)
		if n > r.node.Limit {
			continue // ranks only grow within a partition: skip to the next
		}
		i := r.rows[k]
		dst := out.Append(in.Offsets[i])
		copy(dst, in.Rows[i])
		dst[len(in.Rows[i])] = value.IntValue(n)
	}
	clear(r.vals) // drop string references
	return 0
}

// rankCounter numbers a partition's rows, in rank order, by its function.
type rankCounter struct {
	fn               plan.RankFunc
	pos, rank, dense int64
}

// next returns the rank of the partition's next row, which ties with the
// one before or not.
func (r *rankCounter) next(tie bool) int64 {
	r.pos++
	if !tie {
		r.rank, r.dense = r.pos, r.dense+1
	}
	switch r.fn {
	case plan.Rank:
		return r.rank
	case plan.DenseRank:
		return r.dense
	}
	return r.pos
}

// comparePartition orders the rows k1 and k2 by their partition.
func (r *ranker) comparePartition(k1, k2 int) int {
	w := len(r.exprs)
	for j := range r.parts {
		if c := compareNulls(r.vals[k1*w+j], r.vals[k2*w+j], false); c != 0 {
			return c
		}
	}
	return 0
}

// compareOrder orders the rows k1 and k2 of one partition by rank.
func (r *ranker) compareOrder(k1, k2 int) int {
	w := len(r.exprs)
	return compareSortKeys(r.node.Order, r.vals[k1*w+r.parts:(k1+1)*w], r.vals[k2*w+r.parts:(k2+1)*w])
}

// compareNulls orders two values of one type, NULLs equal to each other
// and before or after every other value.
func compareNulls(a, b value.Value, nullsFirst bool) int {
	an, bn := a.IsNull(), b.IsNull()
	switch {
	case an && bn:
		return 0
	case an == bn:
		return value.Compare(a, b)
	case an == nullsFirst:
		return -1
	}
	return 1
}

// chain runs operators one after the other, each over the rows of the one
// before. The rows it fails are reported as the rows of its input they
// came from, whose columns the failures name: each intermediate row
// carries the index of its input row for an offset.
type chain struct {
	ops    []Operator
	widths []int // of each operator's rows
	index  []int64
	mids   []*message.Batch
}

// Process implements Operator.
func (c *chain) Process(in, out *message.Batch, fail Failures) (filtered int) {
	c.index = c.index[:0]
	for i := range in.Rows {
		c.index = append(c.index, int64(i))
	}
	view := *in
	view.Offsets = c.index
	if c.mids == nil {
		c.mids = make([]*message.Batch, len(c.ops)-1)
		for i := range c.mids {
			c.mids[i] = &message.Batch{}
		}
	}
	start := out.Len()
	from, back := &view, inputRows{in: in, fail: fail}
	for i, op := range c.ops {
		dst := out
		if i < len(c.mids) {
			dst = c.mids[i]
			dst.Reset(c.widths[i])
		}
		filtered += op.Process(from, dst, back)
		from = dst
	}
	for i := start; i < out.Len(); i++ {
		out.Offsets[i] = in.Offsets[out.Offsets[i]]
	}
	for _, m := range c.mids {
		m.Reset(0) // drop string references
	}
	return filtered
}

// inputRows reports a failed row of a chain's intermediate batch as the
// row of the chain's input it came from.
type inputRows struct {
	in   *message.Batch
	fail Failures
}

// Fail implements Failures.
func (r inputRows) Fail(in *message.Batch, i int, stage string, err error) {
	r.fail.Fail(r.in, int(in.Offsets[i]), stage, err)
}
