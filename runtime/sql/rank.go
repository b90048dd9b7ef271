package sql

import (
	"slices"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"

	"github.com/sluice-dev/sluice/runtime/expr"
	"github.com/sluice-dev/sluice/runtime/plan"
	"github.com/sluice-dev/sluice/runtime/value"
)

// A window top-N is written as Flink SQL writes it: a query of the rows
// of a subquery that ranks a windowed GROUP BY's rows with ROW_NUMBER,
// RANK or DENSE_RANK, kept by the rank:
//
//	SELECT ... FROM (
//	  SELECT ..., RANK() OVER (PARTITION BY window_start, window_end ORDER BY num DESC) AS r
//	  FROM (SELECT ... FROM HOP(...) GROUP BY window_start, window_end, ...)
//	) WHERE r <= 3
//
// Each query may be a subquery in FROM or a WITH query.

// MaxTopN bounds the N of a top-N: the rows of a window it writes for
// each partition.
const MaxTopN = 100_000

// rankFuncs are the ranking functions, by name.
var rankFuncs = map[string]plan.RankFunc{"row_number": plan.RowNumber, "rank": plan.Rank, "dense_rank": plan.DenseRank}

// rankCall returns the ranking function call of a select item, or nil.
func rankCall(n *pg.Node) *pg.FuncCall {
	fc := n.GetResTarget().GetVal().GetFuncCall()
	if fc == nil || fc.Over == nil || len(fc.Funcname) == 0 {
		return nil
	}
	if _, ok := rankFuncs[strings.ToLower(fc.Funcname[len(fc.Funcname)-1].GetString_().GetSval())]; !ok {
		return nil
	}
	return fc
}

// fromQuery returns the query that sel's one FROM item reads when it is
// a subquery, or a WITH query of with, and the name it has there; nil
// for anything else.
func fromQuery(sel *pg.SelectStmt, with *pg.WithClause) (q *pg.SelectStmt, alias, cte string) {
	if len(sel.FromClause) != 1 {
		return nil, "", ""
	}
	return queryOf(sel.FromClause[0], with)
}

// queryOf returns the query of a FROM item that is a subquery, or names
// one of the WITH queries with, as fromQuery does; nil for another.
func queryOf(item *pg.Node, with *pg.WithClause) (q *pg.SelectStmt, alias, cte string) {
	if rs := item.GetRangeSubselect(); rs != nil && !rs.Lateral && len(rs.GetAlias().GetColnames()) == 0 {
		return rs.GetSubquery().GetSelectStmt(), rs.GetAlias().GetAliasname(), ""
	}
	rv := item.GetRangeVar()
	if rv == nil || rv.Schemaname != "" || with == nil || with.Recursive {
		return nil, "", ""
	}
	for _, n := range with.Ctes {
		c := n.GetCommonTableExpr()
		if c.GetCtename() == rv.Relname && len(c.Aliascolnames) == 0 && len(rv.GetAlias().GetColnames()) == 0 {
			alias = rv.Relname
			if rv.Alias != nil {
				alias = rv.Alias.Aliasname
			}
			return c.GetCtequery().GetSelectStmt(), alias, rv.Relname
		}
	}
	return nil, "", ""
}

// topNQuery binds sel if it is a window top-N; ok is false, and nothing
// reported, if it is not one.
func (b *binder) topNQuery(sel *pg.SelectStmt, emit bool) (plan.Node, bool) {
	if sel.Op != pg.SetOperation_SETOP_NONE {
		return nil, false
	}
	middle, middleAlias, middleCTE := fromQuery(sel, sel.WithClause)
	if middle == nil || middle.Op != pg.SetOperation_SETOP_NONE {
		return nil, false
	}
	var call *pg.FuncCall
	var callItem int
	for i, t := range middle.TargetList {
		if fc := rankCall(t); fc != nil {
			if call != nil {
				b.errorf(fc.Location, "a top-N ranks by one ROW_NUMBER, RANK or DENSE_RANK; the first is at offset %d", call.Location)
				return nil, true
			}
			call, callItem = fc, i
		}
	}
	if call == nil {
		return nil, false
	}
	if len(middle.FromClause) != 1 {
		b.errorf(call.Location, "a top-N ranks the rows of one source, of a windowed GROUP BY or of a windowing function, in its FROM")
		return nil, true
	}
	// The WITH queries the ranking and ranked queries are not passed on
	// to the ranked one, which reads the others; a WITH query that only
	// filters a source is merged into the ranking query, as any.
	inner, innerAlias, innerCTE := fromQuery(middle, sel.WithClause)
	rf := middle.FromClause[0].GetRangeFunction()
	ofSource := rf == nil && (inner == nil || !grouped(inner))
	with := sel.WithClause
	if with != nil {
		with = &pg.WithClause{Location: with.Location, Ctes: slices.DeleteFunc(slices.Clone(with.Ctes), func(n *pg.Node) bool {
			name := n.GetCommonTableExpr().GetCtename()
			return name == middleCTE || name == innerCTE && !ofSource
		})}
		if len(with.Ctes) == 0 {
			with = nil
		}
	}
	if emit && !ofSource {
		b.errorf(call.Location, "EMIT CHANGES does not apply to a window top-N: it writes each window's top rows once, when the window closes")
		return nil, true
	}
	b.refuseRanked(sel, "the query of a top-N's ranked rows", false)
	b.refuseRanked(middle, "the query that ranks with "+strings.ToUpper(call.Funcname[len(call.Funcname)-1].GetString_().GetSval()), true)
	if len(b.errs) > 0 {
		return nil, true
	}
	var below plan.Node
	var window *plan.Window
	switch {
	case ofSource:
		// A top-N of a source's rows without a window: a changelog.
		middle.WithClause = with
		if !b.flatten(middle, nil) {
			return nil, true
		}
		// Of a source's rows or of a join's.
		node, _ := b.from(middle.FromClause)
		switch node.(type) {
		case *plan.Scan, *plan.Join:
			below = node
		case nil:
			return nil, true
		default:
			b.errorf(call.Location, "a top-N ranks the rows of one source or join, of a windowed GROUP BY or of a windowing function")
			return nil, true
		}
	case rf != nil:
		// A top-N of a source's rows, in the windows of the function.
		if src := windowSource(rf); with != nil && slices.ContainsFunc(with.Ctes, func(n *pg.Node) bool { return n.GetCommonTableExpr().GetCtename() == src }) {
			// Merging the WITH query expands * to its columns: the
			// window's bounds, which * selects too, follow them.
			var items []*pg.Node
			for _, t := range middle.TargetList {
				items = append(items, t)
				if cr := t.GetResTarget().GetVal().GetColumnRef(); cr != nil && isStar(cr) {
					for _, name := range []string{"window_start", "window_end"} {
						items = append(items, &pg.Node{Node: &pg.Node_ResTarget{ResTarget: &pg.ResTarget{Name: name, Val: columnRef(name, cr.Location), Location: cr.Location}}})
					}
				}
			}
			middle.TargetList = items
		}
		middle.WithClause = with
		if !b.flatten(middle, nil) {
			return nil, true
		}
		if b.joinWindow != nil {
			b.joinWindow = nil
			b.errorf(call.Location, "a top-N of the rows of a join's windows is not supported yet; a top-N of a join's rows without a window is")
			return nil, true
		}
		scan, w := b.windowFunction(middle.FromClause[0].GetRangeFunction())
		if scan == nil {
			return nil, true
		}
		if w.Kind == plan.Session {
			b.errorf(call.Location, "a top-N ranks the rows of TUMBLE or HOP windows, not SESSION windows, which close key by key")
			return nil, true
		}
		if w.ProcTime {
			b.errorf(call.Location, "a top-N of the rows of processing-time windows is not supported yet; a top-N of a processing-time GROUP BY is")
			return nil, true
		}
		below, window = scan, w
	default:
		switch {
		case inner.WithClause != nil && with != nil:
			b.errorf(location(inner.WithClause.Ctes[0]), "WITH inside the query a top-N ranks is not supported when the top-N has WITH queries too; move them to the outermost WITH")
			return nil, true
		}
		if with != nil {
			inner.WithClause = with
		}
		ranked := b.selectStmt(inner, false)
		if ranked == nil {
			return nil, true
		}
		if agg := plan.AggregateBelow(ranked); agg == nil || !agg.WholeWindows() {
			b.errorf(call.Location, "a top-N ranks the rows of a TUMBLE or HOP windowed GROUP BY; the query it ranks is not one")
			return nil, true
		}
		// The ranking query, over the ranked query's rows.
		b.scope = scope{table: innerAlias, cols: ranked.Columns()}
		if innerAlias == "" {
			b.scope.table = innerCTE
		}
		below = ranked
	}
	// The ranking query's WHERE filters the rows before they are ranked:
	// of a window, the source's, whose bounds it does not see.
	_, joined := below.(*plan.Join)
	below = b.where(below, middle.WhereClause)
	if window != nil {
		b.scope.cols = append(slices.Clone(below.Columns()), value.Column{Name: "window_start", Type: value.Timestamp}, value.Column{Name: "window_end", Type: value.Timestamp})
	}
	// Merging a WITH query or subquery expands * to its columns.
	callItem = slices.IndexFunc(middle.TargetList, func(n *pg.Node) bool { return rankCall(n) != nil })
	call = rankCall(middle.TargetList[callItem])
	if !joined {
		b.joined = nil
	}
	b.group, b.over = nil, nil
	top := b.rankSpec(call, below, window, ofSource)
	if top == nil {
		return nil, true
	}
	items := slices.Delete(slices.Clone(middle.TargetList), callItem, callItem+1)
	// The rank's column comes after those of the items before it.
	at := 0
	for _, t := range items[:callItem] {
		if cr := t.GetResTarget().GetVal().GetColumnRef(); cr != nil && isStar(cr) {
			for _, s := range b.starScopes(cr) {
				at += len(s.cols)
			}
		} else {
			at++
		}
	}
	var ranking *plan.Project
	errs := len(b.errs)
	if len(items) > 0 {
		ranking, _ = b.project(top, items).(*plan.Project)
	} else {
		ranking = &plan.Project{Input: top}
	}
	if ranking == nil || len(b.errs) > errs {
		return nil, true // at would not be the rank's place
	}
	rt := middle.TargetList[callItem].GetResTarget()
	top.RankName = rt.Name
	if top.RankName == "" {
		top.RankName = outputName(rt.Val)
	}
	if at := slices.Index(ranking.Names, top.RankName); at >= 0 {
		b.errorf(rt.Location, "output column %q is also produced by another item of the ranking query; give one an alias with AS", top.RankName)
		return nil, true
	}
	rank := &expr.Column{Index: len(top.Columns()) - 1, Name: top.RankName, T: value.Int}
	ranking.Exprs = slices.Insert(ranking.Exprs, at, expr.Expr(rank))
	ranking.Names = slices.Insert(ranking.Names, at, top.RankName)
	ranking.Input = top

	// The outer query, over the ranking query's rows: WHERE keeps the top
	// ranks.
	b.scope, b.joined = scope{table: middleAlias, cols: ranking.Columns()}, nil
	if middleAlias == "" {
		b.scope.table = middleCTE
	}
	var node plan.Node = ranking
	if !b.rankLimit(sel, top, at, call.Location) {
		return nil, true
	}
	if sel.WhereClause != nil && ofSource {
		// A rank's new row that it dropped would leave the rank's earlier
		// row standing in the changelog, which has no deletes.
		b.errorf(location(sel.WhereClause), "a top-N without a window takes no condition but the rank's in its outer WHERE: a rank's row it filtered out would leave the rank's earlier row in the changelog. Filter in the ranking query's WHERE, before the rows are ranked")
		return nil, true
	}
	node = b.where(node, sel.WhereClause)
	if len(b.errs) > 0 {
		return nil, true
	}
	return b.project(node, sel.TargetList), true
}

// windowSource names the source of a windowing function, or is "".
func windowSource(rf *pg.RangeFunction) string {
	if len(rf.Functions) != 1 {
		return ""
	}
	items := rf.Functions[0].GetList().GetItems()
	if len(items) == 0 || items[0].GetFuncCall() == nil || len(items[0].GetFuncCall().Args) == 0 {
		return ""
	}
	cr := items[0].GetFuncCall().Args[0].GetColumnRef()
	if cr == nil || len(cr.Fields) != 1 {
		return ""
	}
	return cr.Fields[0].GetString_().GetSval()
}

// grouped reports whether q aggregates.
func grouped(q *pg.SelectStmt) bool {
	return len(q.GroupClause) > 0 || q.HavingClause != nil || len(q.DistinctClause) > 0 || findCall(q.TargetList, false) >= 0
}

// refuseRanked reports what the outer or ranking query of a top-N may not
// have: they filter and compute columns of the rows below them.
func (b *binder) refuseRanked(q *pg.SelectStmt, what string, ranking bool) {
	b.unsupported(q)
	problem := ""
	switch {
	case len(q.GroupClause) > 0 || q.HavingClause != nil || findCall(q.TargetList, false) >= 0:
		problem = "GROUP BY and aggregates"
	case len(q.DistinctClause) > 0:
		problem = "DISTINCT"
	case !ranking && findCall(q.TargetList, true) >= 0:
		problem = "OVER"
	case len(q.FromClause) != 1:
		problem = "reading more than one source"
	case ranking && q.WithClause != nil:
		problem = "WITH (write it in the outermost query)"
	}
	if problem != "" {
		b.errorf(max(firstNodeLocation(q.TargetList), 0), "%s may only filter and compute columns: %s is not supported in it", what, problem)
	}
	if ranking {
		for _, t := range q.TargetList {
			if rankCall(t) == nil && findCall([]*pg.Node{t}, true) >= 0 {
				b.errorf(location(t), "%s may only filter and compute columns: OVER is not supported in it but for the ranking", what)
			}
		}
	}
}

// where filters input by a WHERE clause, n, if there is one.
func (b *binder) where(input plan.Node, n *pg.Node) plan.Node {
	if n == nil {
		return input
	}
	if pred := b.condition(n, "WHERE"); pred != nil {
		return &plan.Filter{Input: input, Predicate: pred}
	}
	return input
}

// condition binds a condition of clause (WHERE, HAVING), which must be
// bool.
func (b *binder) condition(n *pg.Node, clause string) expr.Expr {
	pred := b.expr(n)
	if pred == nil {
		return nil
	}
	if k := pred.Type().Kind; k != value.KindBool && k != value.KindNull {
		b.errorf(location(n), "%s must be bool, not %s", clause, pred.Type())
		return nil
	}
	return pred
}

// rankSpec binds the ranking call over below's rows: a windowed
// aggregation's, or with window a source's, which the scope has with
// their window bounds, or of a source without a window (changelog).
func (b *binder) rankSpec(fc *pg.FuncCall, below plan.Node, window *plan.Window, changelog bool) *plan.TopN {
	name := strings.ToLower(fc.Funcname[len(fc.Funcname)-1].GetString_().GetSval())
	wd := fc.Over
	switch {
	case len(fc.Args) > 0 || fc.AggStar:
		b.errorf(fc.Location, "%s takes no arguments", name)
		return nil
	case fc.AggFilter != nil || len(fc.AggOrder) > 0 || fc.AggDistinct:
		b.errorf(fc.Location, "%s is not an aggregate; FILTER, ORDER BY and DISTINCT do not apply", name)
		return nil
	case wd.Name != "" || wd.Refname != "":
		b.errorf(fc.Location, "named windows are not supported; write the window in OVER (...)")
		return nil
	case wd.FrameOptions&frameNonDefault != 0:
		b.errorf(wd.Location, "%s ranks a whole partition: a frame (ROWS, RANGE) does not apply", name)
		return nil
	case len(wd.OrderClause) == 0:
		b.errorf(wd.Location, "%s needs ORDER BY: a top-N ranks each partition's rows by it", name)
		return nil
	case changelog && rankFuncs[name] != plan.RowNumber:
		b.errorf(fc.Location, "a top-N without a window writes the row of each rank whenever it changes, keyed by the partition and rank: it ranks with ROW_NUMBER, whose ranks are each one row's; %s ranks the rows of windows", strings.ToUpper(name))
		return nil
	}
	top := &plan.TopN{Input: below, Window: window, Func: rankFuncs[name]}
	width := len(below.Columns()) // the window bounds' columns follow, with window
	bound := func(e expr.Expr) bool {
		c, ok := e.(*expr.Column)
		return ok && c.Index >= width
	}
	readsBounds := func(e expr.Expr) bool {
		return slices.ContainsFunc(expr.Columns(nil, e), func(c int) bool { return c >= width })
	}
	var byWindow bool
	for _, p := range wd.PartitionClause {
		e := b.expr(p)
		if e == nil {
			continue
		}
		top.Partition = append(top.Partition, e)
		if changelog {
			continue
		}
		if window != nil {
			if !bound(e) && readsBounds(e) {
				b.errorf(location(p), "a top-N partitions by window_start, window_end and expressions of the source's columns; %s computes with the window's bounds", e)
			}
			byWindow = byWindow || bound(e)
			continue
		}
		probe := &plan.TopN{Input: below, Partition: []expr.Expr{e}}
		_, keys, ok := probe.RankedAggregate()
		if !ok {
			b.errorf(location(p), "a top-N partitions by window_start, window_end and GROUP BY keys of the query it ranks, each as its column; %s is not one", e)
			continue
		}
		byWindow = byWindow || len(keys) == 0
	}
	if !byWindow && !changelog && len(b.errs) == 0 {
		b.errorf(wd.Location, "a top-N ranks the rows of each window: PARTITION BY window_start, window_end[, keys]")
	}
	for _, o := range wd.OrderClause {
		sb := o.GetSortBy()
		e := b.expr(sb.Node)
		if e == nil {
			continue
		}
		if sb.UseOp != nil {
			b.errorf(location(o), "ORDER BY ... USING is not supported")
			continue
		}
		if window != nil && readsBounds(e) {
			b.errorf(location(o), "a top-N of a source's rows orders them by the source's columns: the window's bounds are the same for every row of a window")
			continue
		}
		top.Order = append(top.Order, sortKey(e, sb))
	}
	if len(b.errs) > 0 {
		return nil
	}
	return top
}

// rankLimit takes from sel's WHERE the condition on the rank, rank <= N,
// rank < N or rank = 1, as top's Limit, and leaves the rest. Without a
// WHERE, it reports its absence at the ranking call, callAt.
func (b *binder) rankLimit(sel *pg.SelectStmt, top *plan.TopN, rankColumn int, callAt int32) bool {
	var conjuncts []*pg.Node
	var split func(n *pg.Node)
	split = func(n *pg.Node) {
		if be := n.GetBoolExpr(); be != nil && be.Boolop == pg.BoolExprType_AND_EXPR {
			for _, a := range be.Args {
				split(a)
			}
			return
		}
		conjuncts = append(conjuncts, n)
	}
	if sel.WhereClause != nil {
		split(sel.WhereClause)
	}
	found := -1
	for i, c := range conjuncts {
		a := c.GetAExpr()
		if a == nil || a.Kind != pg.A_Expr_Kind_AEXPR_OP {
			continue
		}
		op := opName(a)
		l, r := a.Lexpr, a.Rexpr
		if b.isColumn(r, rankColumn) {
			l, r = r, l
			op = map[string]string{">=": "<=", ">": "<", "=": "=", "<=": ">=", "<": ">"}[op]
		}
		if !b.isColumn(l, rankColumn) {
			continue
		}
		if found >= 0 {
			b.errorf(location(c), "a top-N takes one condition on its rank in WHERE; the first is at offset %d", location(conjuncts[found]))
			return false
		}
		found = i
		e := b.expr(r)
		n, isConst := e.(*expr.Const)
		switch {
		case e == nil:
			return false
		case !isConst || n.V.Kind() != value.KindInt:
			b.errorf(location(r), "a top-N keeps the ranks up to a whole number: %s <= N", top.RankName)
			return false
		}
		limit := n.V.Int()
		switch op {
		case "<=":
		case "<":
			limit--
		case "=":
			if limit != 1 {
				b.errorf(location(c), "a top-N keeps the top ranks: %s <= %d, not %s = %d", top.RankName, limit, top.RankName, limit)
				return false
			}
		default:
			b.errorf(location(c), "a top-N keeps the top ranks: %s <= N, %s < N or %s = 1", top.RankName, top.RankName, top.RankName)
			return false
		}
		if limit < 1 || limit > MaxTopN {
			b.errorf(location(r), "a top-N keeps from 1 to %d ranks of each partition", MaxTopN)
			return false
		}
		top.Limit = limit
	}
	if found < 0 {
		if sel.WhereClause != nil {
			// Its own errors first: a misnamed rank column, say.
			errs := len(b.errs)
			if b.expr(sel.WhereClause); len(b.errs) > errs {
				return false
			}
		}
		at := callAt
		if sel.WhereClause != nil {
			at = location(sel.WhereClause)
		}
		b.errorf(at, "a top-N needs WHERE %s <= N, which bounds the rows it keeps of each partition", top.RankName)
		return false
	}
	conjuncts = slices.Delete(conjuncts, found, found+1)
	switch len(conjuncts) {
	case 0:
		sel.WhereClause = nil
	case 1:
		sel.WhereClause = conjuncts[0]
	default:
		sel.WhereClause = &pg.Node{Node: &pg.Node_BoolExpr{BoolExpr: &pg.BoolExpr{Boolop: pg.BoolExprType_AND_EXPR, Args: conjuncts, Location: location(conjuncts[0])}}}
	}
	return true
}

// isColumn reports whether n is a reference to the column at index col of
// the scope, without reporting anything.
func (b *binder) isColumn(n *pg.Node, col int) bool {
	cr := n.GetColumnRef()
	if cr == nil || isStar(cr) {
		return false
	}
	e, err := b.bindQuietly(n)
	c, ok := e.(*expr.Column)
	return err == nil && ok && c.Index == col
}

// sortKey is the ORDER BY item sb, whose expression is e: NULLs last
// ascending and first descending unless it says, as in PostgreSQL.
func sortKey(e expr.Expr, sb *pg.SortBy) plan.SortKey {
	key := plan.SortKey{Expr: e, Desc: sb.SortbyDir == pg.SortByDir_SORTBY_DESC}
	switch sb.SortbyNulls {
	case pg.SortByNulls_SORTBY_NULLS_FIRST:
		key.NullsFirst = true
	case pg.SortByNulls_SORTBY_NULLS_LAST:
	default:
		key.NullsFirst = key.Desc
	}
	return key
}
