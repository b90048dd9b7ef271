package plan

import (
	"fmt"
	"slices"
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

// TopN is a top-N: of each partition of its input's rows, the rows ranked
// at most Limit by Order, each with its rank.
//
// A window top-N's partitions are each within one window (PARTITION BY
// window_start or window_end), so that a partition's rows are all known
// when their window closes, and are ranked then, once. Its input is either
// the rows of a tumbling or hopping windowed aggregation, Window nil; or,
// with Window, the rows of a source, which the top-N assigns to windows
// itself and keeps the top of.
//
// A top-N of a source's rows without a window (Rows, Window nil) ranks
// each partition's rows so far, with ROW_NUMBER, and writes a changelog:
// the row of each rank whenever it changes.
//
// Its rows are the input's columns, with Window window_start and
// window_end, then the rank; Partition and Order are over them but the
// rank.
type TopN struct {
	Input     Node
	Window    *Window
	Func      RankFunc
	Partition []expr.Expr
	Order     []SortKey
	Limit     int64
	// RankName names the rank column.
	RankName string
}

// Columns implements Node.
func (t *TopN) Columns() []value.Column {
	cols := append([]value.Column(nil), t.Input.Columns()...)
	if t.Window != nil {
		cols = append(cols, value.Column{Name: "window_start", Type: value.Timestamp}, value.Column{Name: "window_end", Type: value.Timestamp})
	}
	return append(cols, value.Column{Name: t.RankName, Type: value.Int})
}

// Rows reports whether the top-N ranks a source's rows, not a windowed
// aggregation's.
func (t *TopN) Rows() bool { return AggregateBelow(t.Input) == nil }

// RowKeys returns, of a top-N of a source's rows, the partition's
// expressions but the window bounds: what the state is keyed
// by, over the input's rows. ok is false if a partition expression reads
// the window bounds but as itself.
func (t *TopN) RowKeys() (keys []expr.Expr, ok bool) {
	width := len(t.Input.Columns())
	for _, p := range t.Partition {
		if c, isColumn := p.(*expr.Column); isColumn && c.Index >= width {
			continue
		}
		if slices.ContainsFunc(expr.Columns(nil, p), func(c int) bool { return c >= width }) {
			return nil, false
		}
		keys = append(keys, p)
	}
	return keys, true
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
	over := ""
	if t.Window != nil {
		over = " OF " + t.Window.String()
	}
	return fmt.Sprintf("TopN%s %s() <= %d PARTITION BY %s ORDER BY %s", over, t.Func, t.Limit, strings.Join(parts, ", "), strings.Join(order, ", "))
}

// RankedAggregate returns the windowed aggregation a top-N ranks the rows
// of, and the GROUP BY keys among its partition (the window aside), as
// the aggregation's key expressions: what the state is partitioned by, so
// that a partition's groups are all in one engine. ok is false if the
// plan below the top-N is not a windowed aggregation under filters and
// projections, or a partition expression is not a column of its window
// bounds or keys.
func (t *TopN) RankedAggregate() (agg *Aggregate, keys []expr.Expr, ok bool) {
	if agg = AggregateBelow(t.Input); agg == nil || t.Window != nil {
		return nil, nil, false
	}
	for _, p := range t.Partition {
		// A window bound or a key, as the aggregation writes it.
		below, i, ok := passedOn(t.Input, p)
		if !ok || below != agg || i >= 2+len(agg.Keys) {
			return nil, nil, false
		}
		if i >= 2 {
			keys = append(keys, agg.Keys[i-2])
		}
	}
	return agg, keys, true
}

// AggregateBelow is the aggregation under n's filters and projections, or
// nil.
func AggregateBelow(n Node) *Aggregate {
	switch n := n.(type) {
	case *Aggregate:
		return n
	case *Filter:
		return AggregateBelow(n.Input)
	case *Project:
		return AggregateBelow(n.Input)
	}
	return nil
}
