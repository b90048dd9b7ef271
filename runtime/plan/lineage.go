package plan

import "github.com/sluice-dev/sluice/runtime/expr"

// SourceColumn traces e, an expression over n's rows, to the source column
// it passes on unchanged: through filters, and projections that keep the
// column as it is. ok is false for anything computed.
func SourceColumn(n Node, e expr.Expr) (source, column string, ok bool) {
	below, i, ok := passedOn(n, e)
	scan, isScan := below.(*Scan)
	if !ok || !isScan {
		return "", "", false
	}
	return scan.Source, scan.Cols[i].Name, true
}

// passedOn traces e, a column of n's rows, through filters and
// projections that pass it on unchanged, to the node below them and its
// column there. ok is false for anything computed.
func passedOn(n Node, e expr.Expr) (below Node, column int, ok bool) {
	col, isColumn := e.(*expr.Column)
	if !isColumn {
		return nil, 0, false
	}
	switch n := n.(type) {
	case *Filter:
		return passedOn(n.Input, e)
	case *Project:
		return passedOn(n.Input, n.Exprs[col.Index])
	}
	return n, col.Index, true
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
	input, keys, ok := stateKeys(n)
	if !ok {
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

// KeyExprs returns the expressions the state of n (as StateKeyOf's) is
// keyed by, over the rows of the source below it.
func KeyExprs(n Node) (keys []expr.Expr, ok bool) {
	_, keys, ok = stateKeys(n)
	return keys, ok
}

// stateKeys returns the expressions the state of n is keyed by, and the
// node over whose rows they are.
func stateKeys(n Node) (input Node, keys []expr.Expr, ok bool) {
	switch n := n.(type) {
	case *Aggregate:
		return n.Input, n.Keys, true
	case *Over:
		return n.Input, n.Partition, true
	case *TopN:
		// Its partition's groups, or rows, must be in one engine, so that
		// it ranks them all: they are keyed by the partition's keys.
		if n.Rows() {
			keys, ok := n.RowKeys()
			return n.Input, keys, ok
		}
		agg, keys, ok := n.RankedAggregate()
		if !ok {
			return nil, nil, false
		}
		return agg.Input, keys, true
	}
	return nil, nil, false
}
