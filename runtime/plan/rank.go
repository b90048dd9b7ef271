package plan

import (
	"fmt"
	"strings"

	"github.com/sluice-dev/sluice/runtime/expr"
	"github.com/sluice-dev/sluice/runtime/value"
)

// RankFunc is the ranking function of a top-N.
type RankFunc uint8

// The ranking functions.
const (
	// RowNumber numbers a partition's rows 1, 2, 3, …; ties are numbered
	// in the order the rows came.
	RowNumber RankFunc = iota
	// Rank gives tied rows the same rank, and the next row the rank its
	// position gives: 1, 1, 3.
	Rank
	// DenseRank gives tied rows the same rank, and the next row the next
	// rank: 1, 1, 2.
	DenseRank
)

var rankNames = [...]string{RowNumber: "ROW_NUMBER", Rank: "RANK", DenseRank: "DENSE_RANK"}

func (f RankFunc) String() string { return rankNames[f] }

// SortKey is one ORDER BY item.
type SortKey struct {
	Expr expr.Expr
	Desc bool
	// NullsFirst puts NULLs before every value; PostgreSQL's default is
	// NULLS LAST ascending, NULLS FIRST descending.
	NullsFirst bool
}

func (k SortKey) String() string {
	s := k.Expr.String()
	if k.Desc {
		s += " DESC"
	}
	if k.NullsFirst != k.Desc {
		if k.NullsFirst {
			s += " NULLS FIRST"
		} else {
			s += " NULLS LAST"
		}
	}
	return s
}

// TopN is a window top-N: of each partition of its input's rows, the rows
// ranked at most Limit by Order, each with its rank. Its input is the rows
// of a tumbling or hopping windowed aggregation, and its partitions are
// each within one window (PARTITION BY window_start or window_end), so
// that a partition's rows all come when their window closes, and are
// ranked then, once. Its rows are the input's columns, then the rank.
type TopN struct {
	Input     Node
	Func      RankFunc
	Partition []expr.Expr
	Order     []SortKey
	Limit     int64
	// RankName names the rank column.
	RankName string
}

// Columns implements Node.
func (t *TopN) Columns() []value.Column {
	return append(append([]value.Column(nil), t.Input.Columns()...), value.Column{Name: t.RankName, Type: value.Int})
}

// Inputs implements Node.
func (t *TopN) Inputs() []Node { return []Node{t.Input} }

// Describe implements Node.
func (t *TopN) Describe() string {
	parts := make([]string, len(t.Partition))
	for i, p := range t.Partition {
		parts[i] = p.String()
	}
	order := make([]string, len(t.Order))
	for i, o := range t.Order {
		order[i] = o.String()
	}
	return fmt.Sprintf("TopN %s() <= %d PARTITION BY %s ORDER BY %s", t.Func, t.Limit, strings.Join(parts, ", "), strings.Join(order, ", "))
}

// RankedAggregate returns the windowed aggregation a top-N ranks the rows
// of, and the GROUP BY keys among its partition (the window aside), as
// the aggregation's key expressions: what the state is partitioned by, so
// that a partition's groups are all in one engine. ok is false if the
// plan below the top-N is not a windowed aggregation under filters and
// projections, or a partition expression is not a column of its window
// bounds or keys.
func (t *TopN) RankedAggregate() (agg *Aggregate, keys []expr.Expr, ok bool) {
	if agg = aggregateBelow(t.Input); agg == nil {
		return nil, nil, false
	}
	for _, p := range t.Partition {
		i, ok := aggregateColumn(t.Input, p)
		if !ok {
			return nil, nil, false
		}
		if i >= 2 {
			keys = append(keys, agg.Keys[i-2])
		}
	}
	return agg, keys, true
}

// aggregateColumn traces e, a column of n's rows, through filters and
// projections that pass columns on unchanged, to the column of the
// aggregation below that it is, if that is a window bound or a key.
func aggregateColumn(n Node, e expr.Expr) (int, bool) {
	col, isColumn := e.(*expr.Column)
	if !isColumn {
		return 0, false
	}
	switch n := n.(type) {
	case *Aggregate:
		return col.Index, col.Index < 2+len(n.Keys)
	case *Filter:
		return aggregateColumn(n.Input, e)
	case *Project:
		return aggregateColumn(n.Input, n.Exprs[col.Index])
	}
	return 0, false
}

// aggregateBelow is the aggregation under n's filters and projections, or
// nil.
func aggregateBelow(n Node) *Aggregate {
	switch n := n.(type) {
	case *Aggregate:
		return n
	case *Filter:
		return aggregateBelow(n.Input)
	case *Project:
		return aggregateBelow(n.Input)
	}
	return nil
}
