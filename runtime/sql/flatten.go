package sql

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// A subquery in FROM, or a WITH query that FROM names, which filters and
// computes columns of one source, is merged into the query that reads it,
// as PostgreSQL's planner pulls such subqueries up: the query then reads
// the source itself, its references to the subquery's columns replaced
// by the expressions they name, and the subquery's WHERE joined to its
// own. The rest of the binder sees one query of one source, so that
// windows, GROUP BY, DISTINCT and OVER work over a subquery as over a
// source, and errors point into the subquery's text where its
// expressions are.

// derived is a flattened subquery: the source it reads, its WHERE, and
// its columns by name.
type derived struct {
	from  *pg.Node // a RangeVar of a source
	where *pg.Node // nil: none
	names []string
	exprs []*pg.Node
	at    int32 // where the subquery is, for errors
	what  string
}

// flatten merges the WITH queries and the subquery in sel's FROM into
// sel, in place; it reports errors as the binder does and returns false
// after one. ctes are the WITH queries of enclosing queries, by name.
func (b *binder) flatten(sel *pg.SelectStmt, ctes map[string]*derived) bool {
	if w := sel.WithClause; w != nil {
		if w.Recursive {
			b.errorf(w.Location, "WITH RECURSIVE is not supported")
			return false
		}
		if ctes = maps.Clone(ctes); ctes == nil {
			ctes = map[string]*derived{}
		}
		for _, n := range w.Ctes {
			cte := n.GetCommonTableExpr()
			q := cte.GetCtequery().GetSelectStmt()
			if q == nil {
				b.errorf(cte.Location, "a WITH query must be a SELECT")
				return false
			}
			if len(cte.Aliascolnames) > 0 {
				b.errorf(cte.Location, "column names after a WITH query's name are not supported; name them with AS in its select list")
				return false
			}
			d := b.derive(q, ctes, cte.Location, fmt.Sprintf("WITH query %s", cte.Ctename))
			if d == nil {
				return false
			}
			ctes[cte.Ctename] = d
		}
		sel.WithClause = nil
	}
	if len(sel.FromClause) != 1 {
		return true // the binder says what is wrong
	}
	item := sel.FromClause[0]
	switch {
	case item.GetRangeSubselect() != nil:
		rs := item.GetRangeSubselect()
		q := rs.GetSubquery().GetSelectStmt()
		if q == nil || rs.Lateral {
			b.errorf(location(item), "unsupported subquery in FROM")
			return false
		}
		d := b.derive(q, ctes, firstNodeLocation(q.TargetList), "the subquery in FROM")
		if d == nil {
			return false
		}
		alias := ""
		if rs.Alias != nil {
			alias = rs.Alias.Aliasname
		}
		sel.FromClause[0] = proto.Clone(d.from).(*pg.Node)
		return b.merge(sel, d, alias, nil)
	case item.GetRangeVar() != nil:
		rv := item.GetRangeVar()
		d, ok := ctes[rv.Relname]
		if !ok || rv.Schemaname != "" {
			return true
		}
		alias := rv.Relname
		if rv.Alias != nil {
			alias = rv.Alias.Aliasname
		}
		sel.FromClause[0] = proto.Clone(d.from).(*pg.Node)
		return b.merge(sel, d, alias, nil)
	case item.GetRangeFunction() != nil:
		// TUMBLE(q, ts, ...) of a WITH query q: of q's source.
		rf := item.GetRangeFunction()
		if len(rf.Functions) != 1 {
			return true
		}
		items := rf.Functions[0].GetList().GetItems()
		if len(items) == 0 {
			return true
		}
		fc := items[0].GetFuncCall()
		if fc == nil || len(fc.Args) == 0 || len(fc.Funcname) == 0 {
			return true
		}
		src := fc.Args[0].GetColumnRef()
		if src == nil || len(src.Fields) != 1 {
			return true
		}
		name := src.Fields[0].GetString_().GetSval()
		d, ok := ctes[name]
		if !ok {
			return true
		}
		rv := d.from.GetRangeVar()
		src.Fields[0] = pg.MakeStrNode(rv.Relname)
		if rv.Alias != nil {
			if rf.Alias != nil {
				b.errorf(rv.Location, "%s names its source %s, and %s names it %s: give it one name", d.what, rv.Alias.Aliasname, fc.Funcname[len(fc.Funcname)-1].GetString_().GetSval(), rf.Alias.Aliasname)
				return false
			}
			rf.Alias = proto.Clone(rv.Alias).(*pg.Alias)
		}
		// The function's own arguments name q's columns too, but for the
		// first.
		return b.merge(sel, d, name, fc.Args[1:])
	case item.GetJoinExpr() != nil:
		for _, side := range []*pg.Node{item.GetJoinExpr().Larg, item.GetJoinExpr().Rarg} {
			if rv := side.GetRangeVar(); rv != nil && ctes[rv.Relname] != nil {
				b.errorf(rv.Location, "each side of a join is a source; joins of WITH queries are not supported yet")
				return false
			}
		}
	}
	return true
}

// derive flattens q, a subquery or WITH query (what, at at), and checks it
// only filters and computes columns of one source.
func (b *binder) derive(q *pg.SelectStmt, ctes map[string]*derived, at int32, what string) *derived {
	if !b.flatten(q, ctes) {
		return nil
	}
	problem := ""
	switch {
	case q.Op != pg.SetOperation_SETOP_NONE:
		problem = "UNION, INTERSECT and EXCEPT"
	case len(q.ValuesLists) > 0:
		problem = "VALUES"
	case len(q.GroupClause) > 0 || q.HavingClause != nil || findCall(q.TargetList, false) >= 0:
		problem = "GROUP BY and aggregates"
	case findCall(q.TargetList, true) >= 0:
		problem = "OVER"
	case len(q.DistinctClause) > 0:
		problem = "DISTINCT"
	case len(q.SortClause) > 0 || q.LimitCount != nil || q.LimitOffset != nil:
		problem = "ORDER BY and LIMIT"
	case len(q.WindowClause) > 0:
		problem = "WINDOW"
	case len(q.FromClause) != 1 || q.FromClause[0].GetRangeVar() == nil:
		problem = "reading anything but one source (a join, a windowing function, several sources)"
	}
	if problem != "" {
		b.errorf(at, "%s may only filter and compute columns of one source yet: %s is not supported in it", what, problem)
		return nil
	}
	rv := q.FromClause[0].GetRangeVar()
	cols, ok := b.catalog[rv.Relname]
	if !ok || rv.Schemaname != "" {
		b.errorf(rv.Location, "unknown source %q (the manifest defines %s)", qualified(rv), b.sourceNames())
		return nil
	}
	d := &derived{from: q.FromClause[0], where: q.WhereClause, at: at, what: what}
	for _, t := range q.TargetList {
		rt := t.GetResTarget()
		if cr := rt.GetVal().GetColumnRef(); cr != nil && isStar(cr) {
			for _, c := range cols {
				d.names = append(d.names, c.Name)
				d.exprs = append(d.exprs, columnRef(c.Name, cr.Location))
			}
			continue
		}
		name := rt.Name
		if name == "" {
			name = impliedName(rt.Val)
		}
		if slices.Contains(d.names, name) {
			b.errorf(rt.Location, "%s has two columns named %s; name one apart with AS", what, name)
			return nil
		}
		d.names = append(d.names, name)
		d.exprs = append(d.exprs, rt.Val)
	}
	return d
}

// merge replaces sel's references to d's columns, named alias, by their
// expressions (in args too), expands * to them, and joins d's WHERE to
// sel's, which is then evaluated only for the rows d's passes.
func (b *binder) merge(sel *pg.SelectStmt, d *derived, alias string, args []*pg.Node) bool {
	ok := true
	replace := func(n *pg.Node) bool {
		cr := n.GetColumnRef()
		if cr == nil {
			return true
		}
		switch {
		case len(cr.Fields) == 2 && cr.Fields[0].GetString_().GetSval() != alias,
			len(cr.Fields) > 2, isStar(cr):
			return false // not d's, or expanded below
		}
		name := cr.Fields[len(cr.Fields)-1].GetString_().GetSval()
		i := slices.Index(d.names, name)
		if i < 0 {
			if len(cr.Fields) == 1 && (name == "window_start" || name == "window_end") {
				return false // a windowing function's
			}
			b.errorf(cr.Location, "column %q is not in the select list of %s (it has %s)", name, d.what, strings.Join(d.names, ", "))
			ok = false
			return false
		}
		n.Node = proto.Clone(d.exprs[i]).(*pg.Node).Node
		return false
	}
	for _, t := range sel.TargetList {
		// A column keeps its name when its expression takes its place.
		if rt := t.GetResTarget(); rt != nil && rt.Name == "" {
			if cr := rt.GetVal().GetColumnRef(); cr != nil && !isStar(cr) {
				rt.Name = impliedName(rt.Val)
			}
		}
	}
	for _, part := range [][]*pg.Node{sel.TargetList, {sel.WhereClause}, sel.GroupClause, {sel.HavingClause}, args} {
		for _, n := range part {
			if n != nil {
				eachNode(n, replace)
			}
		}
	}
	var targets []*pg.Node
	for _, t := range sel.TargetList {
		rt := t.GetResTarget()
		cr := rt.GetVal().GetColumnRef()
		if cr == nil || !isStar(cr) || len(cr.Fields) == 2 && cr.Fields[0].GetString_().GetSval() != alias {
			targets = append(targets, t)
			continue
		}
		for i, name := range d.names {
			targets = append(targets, &pg.Node{Node: &pg.Node_ResTarget{ResTarget: &pg.ResTarget{
				Name: name, Val: proto.Clone(d.exprs[i]).(*pg.Node), Location: rt.Location,
			}}})
		}
	}
	sel.TargetList = targets
	if d.where != nil {
		where := proto.Clone(d.where).(*pg.Node)
		if sel.WhereClause != nil {
			// The query's own WHERE is evaluated only where the
			// subquery's is true, as if it read the subquery's rows: AND
			// would evaluate it where that is NULL.
			isTrue := &pg.Node{Node: &pg.Node_BooleanTest{BooleanTest: &pg.BooleanTest{Arg: where, Booltesttype: pg.BoolTestType_IS_TRUE, Location: location(where)}}}
			where = &pg.Node{Node: &pg.Node_BoolExpr{BoolExpr: &pg.BoolExpr{Boolop: pg.BoolExprType_AND_EXPR, Args: []*pg.Node{isTrue, sel.WhereClause}, Location: location(d.where)}}}
		}
		sel.WhereClause = where
	}
	return ok
}

// eachNode calls f on n and each node under it, depth first; where f
// returns false, not on the nodes under that one.
func eachNode(n *pg.Node, f func(*pg.Node) bool) {
	if !f(n) {
		return
	}
	var walk func(m protoreflect.Message)
	walk = func(m protoreflect.Message) {
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			if fd.Message() == nil || fd.IsMap() {
				return true
			}
			visit := func(m protoreflect.Message) {
				if n, ok := m.Interface().(*pg.Node); ok {
					eachNode(n, f)
					return
				}
				walk(m)
			}
			if fd.IsList() {
				l := v.List()
				for i := range l.Len() {
					visit(l.Get(i).Message())
				}
				return true
			}
			visit(v.Message())
			return true
		})
	}
	walk(n.ProtoReflect())
}

// impliedName is the name PostgreSQL gives an unnamed select-list item: a
// column's own, a function's or a cast's name, else ?column?.
func impliedName(n *pg.Node) string {
	switch v := n.GetNode().(type) {
	case *pg.Node_ColumnRef:
		return v.ColumnRef.Fields[len(v.ColumnRef.Fields)-1].GetString_().GetSval()
	case *pg.Node_FuncCall:
		if len(v.FuncCall.Funcname) > 0 {
			return v.FuncCall.Funcname[len(v.FuncCall.Funcname)-1].GetString_().GetSval()
		}
	case *pg.Node_TypeCast:
		return impliedName(v.TypeCast.Arg)
	}
	return "?column?"
}

func columnRef(name string, at int32) *pg.Node {
	return &pg.Node{Node: &pg.Node_ColumnRef{ColumnRef: &pg.ColumnRef{Fields: []*pg.Node{pg.MakeStrNode(name)}, Location: at}}}
}
