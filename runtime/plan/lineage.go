package plan

import "github.com/sluice-dev/sluice/runtime/expr"

// SourceColumn traces e, an expression over n's rows, to the source column
// it passes on unchanged: through filters, and projections that keep the
// column as it is. ok is false for anything computed.
func SourceColumn(n Node, e expr.Expr) (source, column string, ok bool) {
	col, isColumn := e.(*expr.Column)
	if !isColumn {
		return "", "", false
	}
	switch n := n.(type) {
	case *Scan:
		return n.Source, n.Cols[col.Index].Name, true
	case *Filter:
		return SourceColumn(n.Input, e)
	case *Project:
		return SourceColumn(n.Input, n.Exprs[col.Index])
	}
	return "", "", false
}

// StateKey is what the state of a plan's stateful node is keyed by, which
// decides whether engines that each read some partitions of its source
// each hold whole keys.
type StateKey struct {
	// Keys are the key expressions as written (GROUP BY, PARTITION BY),
	// for messages; empty for an aggregate of all rows.
	Keys []string
	// Source is the source the rows come from, and Columns the source
	// columns that are among the keys as they are.
	Source  string
	Columns []string
}

// StateKeyOf returns the key of the state of n, a windowed aggregation, a
// top-N of one or a moving aggregate; ok is false for any other node (a join keys two
// sources' states).
func StateKeyOf(n Node) (k StateKey, ok bool) {
	var input Node
	var keys []expr.Expr
	switch n := n.(type) {
	case *Aggregate:
		input, keys = n.Input, n.Keys
	case *Over:
		input, keys = n.Input, n.Partition
	case *TopN:
		// Its partition's groups, or rows, must be in one engine, so that
		// it ranks them all: they are keyed by the partition's keys.
		if n.Rows() {
			rowKeys, ok := n.RowKeys()
			if !ok {
				return StateKey{}, false
			}
			input, keys = n.Input, rowKeys
			break
		}
		agg, rankKeys, ok := n.RankedAggregate()
		if !ok {
			return StateKey{}, false
		}
		input, keys = agg.Input, rankKeys
	default:
		return StateKey{}, false
	}
	if srcs := Sources(input); len(srcs) == 1 {
		k.Source = srcs[0]
	}
	for _, e := range keys {
		k.Keys = append(k.Keys, e.String())
		if src, col, ok := SourceColumn(input, e); ok && src == k.Source {
			k.Columns = append(k.Columns, col)
		}
	}
	return k, true
}
