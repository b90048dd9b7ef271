package streamop

import (
	"slices"
	"sort"

	"github.com/sluice-dev/sluice/runtime/expr"
	"github.com/sluice-dev/sluice/runtime/plan"
	"github.com/sluice-dev/sluice/runtime/value"
)

// rowRanking keeps, of partitions of a source's rows, the rows that rank
// within a top-N's limit, in rank order: the part the top-Ns of rows with
// and without windows share.
type rowRanking struct {
	node  *plan.TopN
	width int // of the input rows
	keys  *keyEncoder
	order []expr.Expr
	// column, of each order expression that is a column of the row, is
	// its index, else -1: a held row's order value is then its column's.
	column []int
	ord    []value.Value // the order values of the row being taken
	rows   int           // rows held
	free   []*rankedRow
}

// rankedRow is a row a top-N holds.
type rankedRow struct {
	row value.Row     // the input row, its strings the operator's own
	ord []value.Value // its order values
	src owner
}

func newRowRanking(n *plan.TopN) rowRanking {
	keys, _ := n.RowKeys()
	r := rowRanking{node: n, width: len(n.Input.Columns()), keys: newKeyEncoder(keys)}
	for _, k := range n.Order {
		r.order = append(r.order, k.Expr)
		c, ok := k.Expr.(*expr.Column)
		if !ok || c.Index >= r.width {
			r.column = append(r.column, -1)
		} else {
			r.column = append(r.column, c.Index)
		}
	}
	r.ord = make([]value.Value, len(r.order))
	return r
}

// eval evaluates the partition key of row into r.keys and its order
// values into r.ord.
func (r *rowRanking) eval(row value.Row) error {
	if err := r.keys.encode(row, 0); err != nil {
		return err
	}
	for j, e := range r.order {
		v, err := e.Eval(row)
		if err != nil {
			return err
		}
		r.ord[j] = v
	}
	return nil
}

// position is where a row of order values ord goes in rows: after the
// rows it is not better than, so that ties keep the order they came in.
func (r *rowRanking) position(rows []*rankedRow, ord []value.Value) int {
	at, _ := slices.BinarySearchFunc(rows, ord, func(held *rankedRow, ord []value.Value) int {
		if r.compare(held.ord, ord) <= 0 {
			return -1
		}
		return 1
	})
	return at
}

// insert puts h at at in rows and drops the rows that then rank past the
// limit.
func (r *rowRanking) insert(rows []*rankedRow, at int, h *rankedRow) []*rankedRow {
	r.rows++
	return r.trim(slices.Insert(rows, at, h))
}

// past reports whether a row of order values ord, after rows, would rank
// past the limit.
func (r *rowRanking) past(rows []*rankedRow, ord []value.Value) bool {
	n := int64(len(rows))
	tie := r.compare(rows[n-1].ord, ord) == 0
	switch r.node.Func {
	case plan.RowNumber:
		return n >= r.node.Limit
	case plan.Rank:
		return !tie && n >= r.node.Limit
	}
	return false // DENSE_RANK: trim decides
}

// trim drops the rows that rank past the limit.
func (r *rowRanking) trim(rows []*rankedRow) []*rankedRow {
	limit := r.node.Limit
	keep := len(rows)
	switch r.node.Func {
	case plan.RowNumber:
		keep = int(min(limit, int64(keep)))
	case plan.Rank:
		// The rows tied with the limit's row rank within it too.
		if int64(keep) > limit {
			keep = r.tiesEnd(rows, int(limit)-1)
		}
	case plan.DenseRank:
		// Each rank is a run of ties: found by binary search, so that
		// many ties cost no more than a few.
		i := 0
		for dense := int64(1); i < len(rows) && dense <= limit; dense++ {
			i = r.tiesEnd(rows, i)
		}
		keep = i
	}
	for _, dropped := range rows[keep:] {
		r.release(dropped)
	}
	clear(rows[keep:])
	return rows[:keep]
}

// tiesEnd is the end of the run of rows tied with rows[i].
func (r *rowRanking) tiesEnd(rows []*rankedRow, i int) int {
	return i + 1 + sort.Search(len(rows)-i-1, func(j int) bool { return r.compare(rows[i].ord, rows[i+1+j].ord) != 0 })
}

// maxFree bounds the held rows kept for reuse.
const maxFree = 1024

// take returns a held row of row, its order values r.ord.
func (r *rowRanking) take(row value.Row, src owner) *rankedRow {
	var h *rankedRow
	if n := len(r.free); n > 0 {
		h, r.free = r.free[n-1], r.free[:n-1]
	} else {
		vals := make([]value.Value, r.width+len(r.order))
		h = &rankedRow{row: vals[:r.width:r.width], ord: vals[r.width:]}
	}
	h.src = src
	if row == nil {
		return h // a restore reads its values
	}
	// Its strings are copied, all into one allocation: state must not
	// keep input buffers alive. The order values of plain columns share
	// the row's.
	copy(h.row, row)
	for j, v := range r.ord {
		if r.column[j] < 0 {
			h.ord[j] = v
		} else {
			h.ord[j] = value.Value{}
		}
	}
	ownStrings(h.row, h.ord)
	for j, c := range r.column {
		if c >= 0 {
			h.ord[j] = h.row[c]
		}
	}
	return h
}

// appendRow appends a held row's values, then its order values, to a
// snapshot; readRow reads them.
func appendRow(dst []byte, h *rankedRow) []byte {
	return appendValues(appendValues(dst, h.row), h.ord)
}

// readRow reads a held row of src that appendRow wrote; nil when the
// reader fails.
func (r *rowRanking) readRow(rd *value.Reader, src owner) *rankedRow {
	h := r.take(nil, src)
	readValues(rd, h.row)
	readValues(rd, h.ord)
	if rd.Err() != nil {
		r.recycle(h)
		return nil
	}
	for j, c := range r.column {
		if c >= 0 {
			h.ord[j] = h.row[c] // its column's string, not a second copy
		}
	}
	return h
}

func (r *rowRanking) release(h *rankedRow) {
	r.recycle(h)
	r.rows--
}

// recycle keeps h, not held, for reuse.
func (r *rowRanking) recycle(h *rankedRow) {
	clear(h.row)
	clear(h.ord)
	h.src = owner{}
	if len(r.free) < maxFree {
		r.free = append(r.free, h)
	}
}

// prune releases the rows of a partition's earlier generation: its new
// owner, or this engine reading it again, ranks them anew.
func (r *rowRanking) prune(rows []*rankedRow) []*rankedRow {
	kept := rows[:0]
	for _, h := range rows {
		if h.src.current() {
			kept = append(kept, h)
		} else {
			r.release(h)
		}
	}
	clear(rows[len(kept):])
	return kept
}

// compare orders two rows' order values: negative if a ranks first.
func (r *rowRanking) compare(a, b []value.Value) int { return compareSortKeys(r.node.Order, a, b) }

// compareSortKeys orders two rows' values of keys: negative if a comes
// first.
func compareSortKeys(keys []plan.SortKey, a, b []value.Value) int {
	for j, key := range keys {
		x, y := a[j], b[j]
		if x.IsNull() || y.IsNull() {
			if c := compareNulls(x, y, key.NullsFirst); c != 0 {
				return c
			}
			continue
		}
		c := value.Compare(x, y)
		if key.Desc {
			c = -c
		}
		if c != 0 {
			return c
		}
	}
	return 0
}
