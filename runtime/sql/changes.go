package sql

import (
	"slices"

	pg "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"

	"github.com/sluice-dev/sluice/runtime/expr"
	"github.com/sluice-dev/sluice/runtime/plan"
)

// changesQuery binds sel if it aggregates the rows of a GROUP BY, or
// computes moving aggregates (OVER) of them, read through a subquery or
// WITH query: a GROUP BY without a window (a changelog, whose groups'
// rows each replace the one before), or, aggregated, of windows. Its
// result is a changelog, as with EMIT CHANGES, which it may say or not.
// ok is false, and nothing reported, if it is not one.
//
// Each row of the inner GROUP BY replaces the earlier row of its group,
// whose values the outer aggregation takes back out before it adds the
// new ones (a retraction), so the outer groups hold the latest row of
// each inner group: the batch query's answer over the rows read so far.
// OVER keeps each inner group's latest row in its place in its partition,
// and a change writes again the rows whose frames hold it.
func (b *binder) changesQuery(sel *pg.SelectStmt) (plan.Node, bool) {
	overAt := findCall(sel.TargetList, true)
	if sel.Op != pg.SetOperation_SETOP_NONE || (!grouped(sel) && overAt < 0) {
		return nil, false
	}
	inner, alias, cte := fromQuery(sel, sel.WithClause)
	if inner == nil || inner.Op != pg.SetOperation_SETOP_NONE || !grouped(inner) {
		return nil, false
	}
	at := max(firstNodeLocation(sel.TargetList), 0)
	what := "an aggregation of the rows of a GROUP BY"
	if !grouped(sel) {
		what = "OVER of the rows of a GROUP BY"
	}
	if len(sel.DistinctClause) > 0 {
		b.errorf(at, "SELECT DISTINCT of the rows of a GROUP BY is not supported; GROUP BY the columns instead")
		return nil, true
	}
	if grouped(sel) && overAt >= 0 {
		b.errorf(overAt, "OVER in an aggregation of the rows of a GROUP BY is not supported: OVER of a GROUP BY's rows is, in a query without GROUP BY or aggregates of its own")
		return nil, true
	}
	if sel.WhereClause != nil {
		// A changed row it filtered out would take its group's earlier
		// row out of an outer group, or a frame, which might then hold
		// none, and the changelog has no deletes.
		b.errorf(location(sel.WhereClause), "%s takes no WHERE yet: filter in the inner query, before its GROUP BY", what)
		return nil, true
	}
	b.unsupported(sel)
	if !b.passWith(sel.WithClause, inner, cte, "a query whose GROUP BY another reads") {
		return nil, true
	}
	below := b.selectStmt(inner, false)
	if below == nil || len(b.errs) > 0 {
		return nil, true
	}
	agg := plan.AggregateBelow(below)
	switch {
	case agg == nil:
		b.errorf(at, "an aggregation reads the rows of a GROUP BY in its subquery or WITH query; this one is not one")
		return nil, true
	case plan.AggregateBelow(agg.Input) != nil:
		b.errorf(at, "an aggregation of an aggregation of a GROUP BY is not supported: one level of GROUP BY over another")
		return nil, true
	}
	if proj, ok := below.(*plan.Project); !ok || proj.Input != agg {
		// A changed row it filtered out would take its group's earlier
		// row out of an outer group, which might then hold none.
		b.errorf(location(inner.HavingClause), "HAVING in a query another aggregates is not supported yet")
		return nil, true
	}
	if overAt >= 0 && agg.Window.Kind != plan.Continuous {
		// Each window's row would stay in its partition for ever.
		b.errorf(overAt, "OVER of the rows of a windowed GROUP BY is not supported yet: OVER reads the rows of a GROUP BY without a window, a changelog of its groups")
		return nil, true
	}
	b.scope, b.joined, b.group, b.over = scope{table: alias, cols: below.Columns()}, nil, nil, nil
	if alias == "" {
		b.scope.table = cte
	}
	if overAt >= 0 {
		node := b.overQuery(below, sel.TargetList, true)
		if len(b.errs) > 0 {
			return nil, true
		}
		return node, true
	}
	outer := &plan.Aggregate{Window: plan.Window{Kind: plan.Continuous}, EmitChanges: true}
	node := b.aggregateQuery(below, outer, sel)
	if len(b.errs) > 0 {
		return nil, true
	}
	// An outer group is of the inner groups' keys alone, so that every
	// row of an inner group updates one outer group: a row that moved to
	// another would leave its earlier group, which might then hold none.
	for _, item := range sel.GroupClause {
		e, err := b.bindQuietly(item)
		if err != nil {
			continue
		}
		if !readsKeysOnly(below, e) {
			b.errorf(location(item), "an aggregation of the rows of a GROUP BY groups by columns of the inner GROUP BY's keys (or window bounds), which its changes keep: a key computed from an aggregate, or from the clock (now()), would move an inner group's row from one outer group to another, leaving a group that may hold none, and the changelog has no deletes")
		}
	}
	return node, true
}

// readsKeysOnly reports whether e, over the rows of node, is computed
// from the window bounds and keys of the Aggregate below it alone,
// through the filters and projections above it, without the clock.
func readsKeysOnly(node plan.Node, e expr.Expr) bool {
	if expr.ReadsClock(e) {
		return false
	}
	cols := expr.Columns(nil, e)
	for {
		switch n := node.(type) {
		case *plan.Project:
			var below []int
			for _, c := range cols {
				if expr.ReadsClock(n.Exprs[c]) {
					return false
				}
				below = expr.Columns(below, n.Exprs[c])
			}
			cols, node = below, n.Input
		case *plan.Filter:
			node = n.Input
		case *plan.Aggregate:
			return !slices.ContainsFunc(cols, func(c int) bool { return c >= 2+len(n.Keys) })
		default:
			return false
		}
	}
}

// passWith gives inner, a subquery of a query with WITH queries with, or
// its WITH query named cte, the WITH queries it may read: a WITH query
// those before it, a subquery all of them. what names inner in the error
// when it has WITH queries of its own too; it returns false after one.
func (b *binder) passWith(with *pg.WithClause, inner *pg.SelectStmt, cte, what string) bool {
	if with == nil {
		return true
	}
	ctes := with.Ctes
	if i := slices.IndexFunc(ctes, func(n *pg.Node) bool { return n.GetCommonTableExpr().GetCtename() == cte }); cte != "" && i >= 0 {
		ctes = ctes[:i]
	}
	switch {
	case len(ctes) == 0:
		return true
	case inner.WithClause != nil:
		b.errorf(location(inner.WithClause.Ctes[0]), "WITH inside %s is not supported when the outer query has WITH queries too; move them to the outermost WITH", what)
		return false
	default:
		// Copies: binding a query merges its WITH queries in place, and
		// the two sides of a join may read the same ones. A GROUP BY the
		// query does not name is left out: it would merge it, and cannot
		// (one it names is refused there, with the reason).
		inner.WithClause = &pg.WithClause{Location: with.Location}
		for _, n := range ctes {
			c := n.GetCommonTableExpr()
			if q := c.GetCtequery().GetSelectStmt(); q == nil || !grouped(q) || names(inner, c.Ctename) {
				inner.WithClause.Ctes = append(inner.WithClause.Ctes, proto.Clone(n).(*pg.Node))
			}
		}
	}
	return true
}

// names reports whether q reads a source or WITH query called name: a
// FROM item of it, or a windowing function's first argument.
func names(q *pg.SelectStmt, name string) bool {
	found := false
	eachNode(&pg.Node{Node: &pg.Node_SelectStmt{SelectStmt: q}}, func(n *pg.Node) bool {
		if rv := n.GetRangeVar(); rv != nil && rv.Relname == name {
			found = true
		}
		if cr := n.GetColumnRef(); cr != nil && len(cr.Fields) == 1 && cr.Fields[0].GetString_().GetSval() == name {
			found = true
		}
		return !found
	})
	return found
}
