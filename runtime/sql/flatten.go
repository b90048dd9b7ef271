package sql

import (
	"fmt"
	"maps"
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

// MaxMergedNodes bounds the expression nodes that merging subqueries
// copies into a query: each use of a subquery's column is a copy of its
// expression, so WITH queries that each use the one before twice would
// double the query, and its work per record, with each.
const MaxMergedNodes = 20_000

// derived is a merged subquery: the source it reads, its WHERE, and its
// columns by name (two may share one, as in PostgreSQL, until a
// reference to it is ambiguous).
type derived struct {
	from  *pg.Node // a RangeVar of a source
	where *pg.Node // nil: none
	names []string
	exprs []*pg.Node
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
		seen := map[string]bool{}
		for _, n := range w.Ctes {
			cte := n.GetCommonTableExpr()
			q := cte.GetCtequery().GetSelectStmt()
			switch {
			case q == nil:
				b.errorf(cte.GetLocation(), "a WITH query must be a SELECT")
				return false
			case seen[cte.Ctename]:
				b.errorf(cte.Location, "WITH query name %q specified more than once", cte.Ctename)
				return false
			case len(cte.Aliascolnames) > 0:
				b.errorf(cte.Location, "column names after a WITH query's name are not supported; name them with AS in its select list")
				return false
			}
			seen[cte.Ctename] = true
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
		at := max(firstNodeLocation(q.GetTargetList()), 0)
		switch {
		case q == nil:
			b.errorf(at, "unsupported subquery in FROM")
			return false
		case rs.Lateral:
			b.errorf(at, "LATERAL is not supported")
			return false
		case len(rs.GetAlias().GetColnames()) > 0:
			b.errorf(at, "column names after a subquery's alias are not supported; name them with AS in its select list")
			return false
		}
		d := b.derive(q, ctes, at, "the subquery in FROM")
		if d == nil {
			return false
		}
		sel.FromClause[0] = proto.Clone(d.from).(*pg.Node)
		return b.merge(sel, d, rs.GetAlias().GetAliasname(), nil)
	case item.GetRangeVar() != nil:
		rv := item.GetRangeVar()
		d, ok := ctes[rv.Relname]
		if !ok || rv.Schemaname != "" {
			return true
		}
		if len(rv.GetAlias().GetColnames()) > 0 {
			b.errorf(rv.Location, "column names after a WITH query's alias are not supported; name them with AS in its select list")
			return false
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
		alias := name
		if rf.Alias != nil {
			alias = rf.Alias.Aliasname
		}
		if d.from.GetJoinExpr() != nil {
			// The join is FROM's, and the windowing function over its rows
			// waits for the binder to bind it.
			sel.FromClause[0] = proto.Clone(d.from).(*pg.Node)
			b.joinWindow = rf
			return b.merge(sel, d, alias, fc.Args[1:])
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
		return b.merge(sel, d, alias, fc.Args[1:])
	case item.GetJoinExpr() != nil:
		// Every input, of a join of more than two too: the left side of
		// a join of three is a join.
		for je := item.GetJoinExpr(); je != nil; je = je.Larg.GetJoinExpr() {
			for _, side := range []*pg.Node{je.Larg, je.Rarg} {
				if rv := side.GetRangeVar(); rv != nil && ctes[rv.Relname] != nil {
					b.errorf(rv.Location, "each side of a join is a source; joins of WITH queries are not supported yet")
					return false
				}
			}
		}
	}
	return true
}

// derive flattens q, a subquery or WITH query (what, at at), checks it
// only filters and computes columns of one source, and binds its
// expressions once, so that those no one reads are checked too.
func (b *binder) derive(q *pg.SelectStmt, ctes map[string]*derived, at int32, what string) *derived {
	window := b.joinWindow
	if !b.flatten(q, ctes) {
		return nil
	}
	problem := ""
	switch {
	case b.joinWindow != window:
		b.joinWindow = window
		problem = "a windowing function"
	case q.Op != pg.SetOperation_SETOP_NONE:
		problem = "UNION ALL (the whole query may be one), INTERSECT and EXCEPT"
	case len(q.ValuesLists) > 0:
		problem = "VALUES"
	case len(q.TargetList) == 0:
		problem = "an empty select list"
	case len(q.GroupClause) > 0 || q.HavingClause != nil:
		problem = "GROUP BY and HAVING"
	case len(q.DistinctClause) > 0:
		problem = "DISTINCT"
	case len(q.SortClause) > 0 || q.LimitCount != nil || q.LimitOffset != nil:
		problem = "ORDER BY and LIMIT"
	case len(q.WindowClause) > 0:
		problem = "WINDOW"
	case len(q.FromClause) != 1 || q.FromClause[0].GetRangeVar() == nil && q.FromClause[0].GetJoinExpr() == nil:
		problem = "reading anything but one source or one join (a windowing function, several sources)"
	default:
		problem = statefulCall(q)
	}
	if problem != "" {
		b.errorf(at, "%s may only filter and compute columns of one source or join yet: %s is not supported in it", what, problem)
		return nil
	}
	d := &derived{from: q.FromClause[0], where: q.WhereClause, what: what}
	outer, outerJoined := b.scope, b.joined
	defer func() { b.scope, b.joined = outer, outerJoined }()
	if je := d.from.GetJoinExpr(); je != nil {
		// Bound here for its scope; FROM binds it again, with the query
		// it is merged into.
		if b.join(je) == nil {
			return nil
		}
	} else {
		rv := d.from.GetRangeVar()
		cols, ok := b.catalog[rv.Relname]
		if !ok || rv.Schemaname != "" {
			b.errorf(rv.Location, "unknown source %q (the manifest defines %s)", qualified(rv), b.sourceNames())
			return nil
		}
		b.scope, b.joined = scope{table: rv.Relname, cols: cols}, nil
		if rv.Alias != nil {
			b.scope.alias = rv.Alias.Aliasname
		}
	}
	errs := len(b.errs)
	if q.WhereClause != nil {
		b.expr(q.WhereClause)
	}
	for _, t := range q.TargetList {
		rt := t.GetResTarget()
		if cr := rt.GetVal().GetColumnRef(); cr != nil && isStar(cr) {
			if b.joined == nil && len(cr.Fields) == 2 && !b.scope.names(cr.Fields[0].GetString_().GetSval()) {
				b.errorf(cr.Location, "missing FROM-clause entry for table %q", cr.Fields[0].GetString_().GetSval())
				continue
			}
			for _, in := range b.starScopes(cr) {
				for _, c := range in.cols {
					d.names = append(d.names, c.Name)
					if b.joined == nil {
						d.exprs = append(d.exprs, columnRef(c.Name, cr.Location))
						continue
					}
					// A join's columns of one name are told apart by their
					// table.
					d.exprs = append(d.exprs, qualifiedRef(in, c.Name, cr.Location))
				}
			}
			continue
		}
		name := rt.GetName()
		if name == "" {
			name = outputName(rt.GetVal())
		}
		b.expr(rt.GetVal())
		val := rt.GetVal()
		if s := val.GetAConst(); s != nil && s.GetSval() != nil {
			// A string literal is text once it is a subquery's column, as
			// in PostgreSQL: its context no longer gives it a type.
			val = &pg.Node{Node: &pg.Node_TypeCast{TypeCast: &pg.TypeCast{
				Arg: val, TypeName: &pg.TypeName{Names: []*pg.Node{pg.MakeStrNode("text")}, Location: s.Location}, Location: s.Location,
			}}}
		}
		d.names = append(d.names, name)
		d.exprs = append(d.exprs, val)
	}
	if len(b.errs) > errs {
		return nil
	}
	return d
}

// statefulCall names an aggregate, OVER or subquery anywhere in q's
// select list or WHERE, or returns "".
func statefulCall(q *pg.SelectStmt) string {
	found := ""
	look := func(n *pg.Node) bool {
		switch {
		case found != "":
			return false
		case n.GetSubLink() != nil:
			found = "a subquery in an expression"
		case n.GetFuncCall() != nil:
			fc := n.GetFuncCall()
			name := ""
			if len(fc.Funcname) > 0 {
				name = strings.ToLower(fc.Funcname[len(fc.Funcname)-1].GetString_().GetSval())
			}
			switch {
			case fc.Over != nil:
				found = "OVER"
			case aggregates[name] || fc.AggStar || fc.AggFilter != nil:
				found = "an aggregate"
			}
		}
		return found == ""
	}
	for _, n := range append([]*pg.Node{q.WhereClause}, q.TargetList...) {
		if n != nil {
			eachNode(n, look)
		}
	}
	return found
}

// merge replaces sel's references to d's columns, named alias, by their
// expressions (in args too), expands * to them, and joins d's WHERE to
// sel's, which is then evaluated only for the rows d's passes.
func (b *binder) merge(sel *pg.SelectStmt, d *derived, alias string, args []*pg.Node) bool {
	ok := true
	fail := func(at int32, format string, a ...any) bool {
		b.errorf(at, format, a...)
		ok = false
		return false
	}
	copyOf := func(at int32, e *pg.Node) *pg.Node {
		c := proto.Clone(e).(*pg.Node)
		eachNode(c, func(*pg.Node) bool { b.merged++; return true })
		if b.merged > MaxMergedNodes && ok {
			fail(at, "the query's subqueries expand to more than %d expression nodes: each use of a subquery's column is a copy of its expression", MaxMergedNodes)
		}
		return c
	}
	replace := func(n *pg.Node) bool {
		cr := n.GetColumnRef()
		if cr == nil {
			return ok
		}
		var qualifier string
		switch len(cr.Fields) {
		case 1:
		case 2:
			qualifier = cr.Fields[0].GetString_().GetSval()
			if qualifier != alias {
				return fail(cr.Location, "missing FROM-clause entry for table %q", qualifier)
			}
		default:
			return false // the binder says what is wrong
		}
		if isStar(cr) {
			return false // expanded below
		}
		name := cr.Fields[len(cr.Fields)-1].GetString_().GetSval()
		var at []int
		for i, n := range d.names {
			if n == name {
				at = append(at, i)
			}
		}
		switch {
		case len(at) == 0 && (name == "window_start" || name == "window_end"):
			return false // a windowing function's
		case len(at) == 0:
			return fail(cr.Location, "column %q is not in the select list of %s (it has %s)", name, d.what, strings.Join(d.names, ", "))
		case len(at) > 1:
			return fail(cr.Location, "column reference %q is ambiguous: %s has %d columns of that name", name, d.what, len(at))
		}
		n.Node = copyOf(cr.Location, d.exprs[at[0]]).Node
		return false
	}
	for _, t := range sel.TargetList {
		// An item keeps the name it has here when a subquery's
		// expression takes the place of its columns.
		if rt := t.GetResTarget(); rt != nil && rt.Name == "" && rt.Val != nil {
			if cr := rt.Val.GetColumnRef(); cr == nil || !isStar(cr) {
				rt.Name = outputName(rt.Val)
			}
		}
	}
	for _, part := range [][]*pg.Node{sel.TargetList, {sel.WhereClause}, sel.GroupClause, {sel.HavingClause}, args} {
		for _, n := range part {
			if n != nil && ok {
				eachNode(n, replace)
			}
		}
	}
	var targets []*pg.Node
	for _, t := range sel.TargetList {
		rt := t.GetResTarget()
		cr := rt.GetVal().GetColumnRef()
		if cr == nil || !isStar(cr) || len(cr.Fields) > 2 {
			targets = append(targets, t)
			continue
		}
		for i, name := range d.names {
			targets = append(targets, &pg.Node{Node: &pg.Node_ResTarget{ResTarget: &pg.ResTarget{
				Name: name, Val: copyOf(rt.Location, d.exprs[i]), Location: rt.Location,
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

// qualifiedRef refers to column name of s, by its alias if it has one.
func qualifiedRef(s *scope, name string, at int32) *pg.Node {
	table := s.table
	if s.alias != "" {
		table = s.alias
	}
	return &pg.Node{Node: &pg.Node_ColumnRef{ColumnRef: &pg.ColumnRef{Fields: []*pg.Node{pg.MakeStrNode(table), pg.MakeStrNode(name)}, Location: at}}}
}

func columnRef(name string, at int32) *pg.Node {
	return &pg.Node{Node: &pg.Node_ColumnRef{ColumnRef: &pg.ColumnRef{Fields: []*pg.Node{pg.MakeStrNode(name)}, Location: at}}}
}

// sameErrors is whether two errors say the same at the same place: a
// subquery's expression is bound where it is, and again wherever it is
// used.
func sameErrors(a, b *Error) bool { return a.Offset == b.Offset && a.Msg == b.Msg }
