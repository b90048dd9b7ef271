package sql

import (
	pg "github.com/pganalyze/pg_query_go/v6"

	"github.com/sluice-dev/sluice/runtime/expr"
	"github.com/sluice-dev/sluice/runtime/plan"
)

// windowJoinQuery binds sel if it joins the rows of two GROUP BYs, each a
// subquery or WITH query: a window join, of two aggregations of the same
// TUMBLE or HOP windows, each of one source, matched on their windows
// and keys, as Flink's window join and Nexmark q8 write it:
//
//	SELECT P.id, P.name, P.starttime
//	FROM (SELECT id, name, window_start AS starttime FROM TUMBLE(person, dateTime, INTERVAL '10' SECOND)
//	      GROUP BY id, name, window_start, window_end) P
//	JOIN (SELECT seller, window_start AS starttime FROM TUMBLE(auction, dateTime, INTERVAL '10' SECOND)
//	      GROUP BY seller, window_start, window_end) A
//	ON P.id = A.seller AND P.starttime = A.starttime
//
// The joined rows may be filtered (WHERE) and computed (the select list).
// ok is false, and nothing reported, if sel is not such a join; emit says
// the statement ends with EMIT CHANGES, which it refuses.
func (b *binder) windowJoinQuery(sel *pg.SelectStmt, emit bool) (plan.Node, bool) {
	if sel.Op != pg.SetOperation_SETOP_NONE || len(sel.FromClause) != 1 {
		return nil, false
	}
	je := sel.FromClause[0].GetJoinExpr()
	if je == nil {
		return nil, false
	}
	for _, side := range []*pg.Node{je.Larg, je.Rarg} {
		rs := side.GetRangeSubselect()
		if q := rs.GetSubquery().GetSelectStmt(); q != nil && len(rs.GetAlias().GetColnames()) > 0 && grouped(q) {
			b.errorf(itemAt(side), "column names after a subquery's alias are not supported; name them with AS in its select list")
			return nil, true
		}
	}
	lq, lalias, lcte := queryOf(je.Larg, sel.WithClause)
	rq, ralias, rcte := queryOf(je.Rarg, sel.WithClause)
	lgrouped := lq != nil && lq.Op == pg.SetOperation_SETOP_NONE && grouped(lq)
	rgrouped := rq != nil && rq.Op == pg.SetOperation_SETOP_NONE && grouped(rq)
	switch {
	case !lgrouped && !rgrouped:
		return nil, false
	case !lgrouped || !rgrouped:
		at := itemAt(je.Larg)
		if lgrouped {
			at = itemAt(je.Rarg)
		}
		b.errorf(at, "a join of the rows of a GROUP BY joins those of another, of the same windows (a window join); a stream or a subquery without GROUP BY joined with them is not supported yet")
		return nil, true
	}
	outer, rightOuter, ok := b.joinType(je)
	if !ok {
		return nil, true
	}
	b.unsupported(sel)
	if emit {
		b.errorf(0, "EMIT CHANGES applies to GROUP BY queries; a window join writes each window's joined rows once, when both sides have closed it")
		return nil, true
	}
	at := max(firstNodeLocation(sel.TargetList), 0)
	switch overAt := findCall(sel.TargetList, true); {
	case len(sel.DistinctClause) > 0 || grouped(sel):
		b.errorf(at, "a join of two GROUP BYs' windows is not aggregated, ranked or made DISTINCT again yet: it may filter (WHERE) and compute columns of the joined rows")
		return nil, true
	case overAt >= 0:
		b.errorf(overAt, "OVER of a join of two GROUP BYs' windows is not supported yet")
		return nil, true
	}
	left, lscope := b.windowJoinSide(sel.WithClause, lq, lalias, lcte, je.Larg)
	right, rscope := b.windowJoinSide(sel.WithClause, rq, ralias, rcte, je.Rarg)
	if left == nil || right == nil || len(b.errs) > 0 {
		return nil, true
	}
	if lscope.names(rscope.table) {
		b.errorf(itemAt(je.Rarg), "both sides of the join are called %s; give one an alias", rscope.table)
		return nil, true
	}
	j := &plan.WindowJoin{Left: left, Right: right, Outer: outer, RightOuter: rightOuter}
	ls, _ := plan.WindowSideOf(left)
	rs, _ := plan.WindowSideOf(right)
	switch lw, rw := ls.Agg.Window, rs.Agg.Window; {
	case lw.Size != rw.Size || lw.Slide != rw.Slide: // a TUMBLE's slide is its size, as a HOP's may be
		b.errorf(itemAt(je.Rarg), "a window join joins the rows of the same windows: %s here is joined with %s", lw, rw)
		return nil, true
	case ls.Scan.Source == rs.Scan.Source:
		b.errorf(itemAt(je.Rarg), "both sides of the join aggregate source %s; a window join of a source with itself is not supported yet", ls.Scan.Source)
		return nil, true
	}
	rscope.offset = len(lscope.cols)
	b.scope, b.joined, b.group, b.over = *lscope, []*scope{rscope}, nil, nil
	var residual []expr.Expr
	never := func(*expr.Column) bool { return false }
	windows := -1
	for _, c := range conjuncts(je.Quals) {
		var l, r expr.Expr
		var mismatch *Error
		if b.quietly(func() (ok bool) { l, r, ok = b.keyPair(c, len(lscope.cols), never, &mismatch); return ok }) {
			lc, lcol := l.(*expr.Column)
			rc, rcol := r.(*expr.Column)
			if lcol && rcol && windows < 0 && sameBound(left, lc.Index, right, rc.Index) {
				// The windows' pair goes first: the operator joins each
				// window's rows by it.
				windows = len(j.LeftKeys)
			}
			j.LeftKeys = append(j.LeftKeys, l)
			j.RightKeys = append(j.RightKeys, r)
			continue
		}
		if e := b.expr(c); e != nil {
			residual = append(residual, e)
		}
	}
	if len(b.errs) > 0 {
		return nil, true
	}
	if windows < 0 {
		b.errorf(location(je.Quals), "a window join matches the two sides' windows: add %s.window_start = %s.window_start to ON, each side selecting its window_start (or both window_end)", lscope.table, rscope.table)
		return nil, true
	}
	j.LeftKeys[0], j.LeftKeys[windows] = j.LeftKeys[windows], j.LeftKeys[0]
	j.RightKeys[0], j.RightKeys[windows] = j.RightKeys[windows], j.RightKeys[0]
	if j.On, ok = b.conjunction(residual, location(je.Quals)); !ok {
		return nil, true
	}
	node := b.where(j, sel.WhereClause)
	if node == nil || len(b.errs) > 0 {
		return nil, true
	}
	return b.project(node, sel.TargetList), true
}

// windowJoinSide binds q, a side of a window join at item, named alias
// (or cte, the WITH query it is) in the query of with: an aggregation of
// TUMBLE or HOP windows of one source, with the scope of its columns.
func (b *binder) windowJoinSide(with *pg.WithClause, q *pg.SelectStmt, alias, cte string, item *pg.Node) (plan.Node, *scope) {
	at := max(firstNodeLocation(q.TargetList), 0)
	if !b.passWith(with, q, cte, "a side of a join") {
		return nil, nil
	}
	node := b.selectStmt(q, false)
	if node == nil || len(b.errs) > 0 {
		return nil, nil
	}
	side, ok := plan.WindowSideOf(node)
	if !ok {
		b.errorf(at, "a side of a window join is a GROUP BY of the windows of one source, with an optional WHERE and HAVING; this one is not one")
		return nil, nil
	}
	var problem string
	switch w := side.Agg.Window; {
	case w.Kind == plan.Continuous:
		problem = "it has no window; a GROUP BY without one is a changelog, whose rows change, and a window join joins the rows of TUMBLE or HOP windows, written once"
	case w.Kind != plan.Tumble && w.Kind != plan.Hop:
		problem = "its windows are " + w.Kind.String() + "; a window join joins TUMBLE or HOP windows"
	case w.ProcTime:
		problem = "its windows are of processing time; a window join joins windows of event time, which close as the watermark passes them on both sides at once"
	case side.Agg.EmitChanges:
		problem = "EMIT CHANGES writes a window's rows before it closes; a window join joins each window once, when it closes"
	}
	if problem != "" {
		b.errorf(at, "a side of a window join: %s", problem)
		return nil, nil
	}
	s := &scope{table: alias, cols: node.Columns()}
	if alias == "" {
		s.table = cte
	}
	if s.table == "" {
		b.errorf(itemAt(item), "a subquery joined needs an alias: (SELECT ...) AS name")
		return nil, nil
	}
	return node, s
}

// itemAt is where FROM item n is written: a subquery's select list, which
// its parenthesis has no offset of its own.
func itemAt(n *pg.Node) int32 {
	if q := n.GetRangeSubselect().GetSubquery().GetSelectStmt(); q != nil {
		return max(firstNodeLocation(q.TargetList), 0)
	}
	return location(n)
}

// sameBound reports whether column l of left and column r of right are
// the same bound of their windows, both the start or both the end.
func sameBound(left plan.Node, l int, right plan.Node, r int) bool {
	lb, lok := plan.WindowBound(left, l)
	rb, rok := plan.WindowBound(right, r)
	return lok && rok && lb == rb
}
