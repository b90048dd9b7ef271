// Package sql is Sluice's SQL front end. It parses a query with the PostgreSQL
// parser (pg_query), resolves names against the sources' schemas, checks types,
// and builds a logical plan. Every problem is reported with its byte offset in
// the query, before any record is read.
package sql

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
	pgparser "github.com/pganalyze/pg_query_go/v6/parser"

	"github.com/sluice-dev/sluice/runtime/expr"
	"github.com/sluice-dev/sluice/runtime/plan"
	"github.com/sluice-dev/sluice/runtime/value"
)

// Error is a problem in a query. Offset is the 0-based byte offset in the query
// where it was found, or -1 where the parser gave none.
type Error struct {
	Offset int
	Msg    string
}

func (e *Error) Error() string {
	if e.Offset < 0 {
		return e.Msg
	}
	return fmt.Sprintf("at offset %d: %s", e.Offset, e.Msg)
}

// Errors is every problem found in a query, in the order of the query text.
type Errors []*Error

func (es Errors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}

// AsErrors returns the query problems err holds, or nil if it holds none.
func AsErrors(err error) Errors {
	var es Errors
	if errors.As(err, &es) {
		return es
	}
	var e *Error
	if errors.As(err, &e) {
		return Errors{e}
	}
	return nil
}

// Catalog holds the schemas of the sources a query may read, by name.
type Catalog map[string][]value.Column

// Plan parses, checks and plans one SELECT statement.
func Plan(query string, catalog Catalog) (plan.Node, error) {
	return PlanTables(query, catalog, nil)
}

// Table is a source read as a table.
type Table struct {
	// Key are its key columns.
	Key []string
	// Time is the column of its rows' version time (the source's event
	// time), which a join FOR SYSTEM_TIME AS OF needs; "" if none.
	Time string
}

// Tables maps the sources read as tables to what the query needs of them.
type Tables map[string]Table

// PlanTables is Plan for a catalog some of whose sources are tables, which a
// stream can be joined with.
func PlanTables(query string, catalog Catalog, tables Tables) (plan.Node, error) {
	p, err := parse(query)
	if err != nil {
		return nil, err
	}
	b := &binder{query: p.query, catalog: catalog, tables: tables, asOfs: p.asOfs}
	node := b.selectStmt(p.sel, p.emit)
	b.unusedAsOf()
	if len(b.errs) > 0 {
		sort.SliceStable(b.errs, func(i, j int) bool { return b.errs[i].Offset < b.errs[j].Offset })
		return nil, slices.CompactFunc(b.errs, sameErrors)
	}
	return node, nil
}

// parsed is a query parsed: its one SELECT statement, whether it ends in
// EMIT CHANGES, and its FOR SYSTEM_TIME AS OF clauses, which the parser
// does not take and which are cut out of query.
type parsed struct {
	query string
	sel   *pg.SelectStmt
	emit  bool
	asOfs []*asOf
}

// CheckSyntax parses query as PlanTables does, and returns what is wrong
// with its syntax, for a query whose sources' columns are not known yet.
func CheckSyntax(query string) error {
	_, err := parse(query)
	return err
}

func parse(query string) (parsed, error) {
	query, emit := splitEmit(query)
	if at := tokenOverflow(query); at >= 0 {
		return parsed{}, Errors{{Offset: at, Msg: fmt.Sprintf("the query has more than %d tokens; PostgreSQL's parser nests chained operators in each other, and a chain this long could overflow its stack", MaxTokens)}}
	}
	query, asOfs := splitAsOf(query)
	tree, err := pg.Parse(query)
	if err != nil {
		var pe *pgparser.Error
		if errors.As(err, &pe) {
			return parsed{}, Errors{{Offset: max(pe.Cursorpos-1, -1), Msg: pe.Message}}
		}
		return parsed{}, Errors{{Offset: -1, Msg: err.Error()}}
	}
	switch len(tree.Stmts) {
	case 0:
		return parsed{}, Errors{{Offset: 0, Msg: "the query is empty"}}
	case 1:
	default:
		at := int(tree.Stmts[1].StmtLocation)
		for at < len(query) && strings.ContainsRune(" \t\r\n", rune(query[at])) {
			at++
		}
		return parsed{}, Errors{{Offset: at, Msg: "the query must be one SELECT statement, found another statement here"}}
	}
	raw := tree.Stmts[0]
	sel := raw.Stmt.GetSelectStmt()
	if sel == nil {
		return parsed{}, Errors{{Offset: int(raw.StmtLocation), Msg: "only SELECT statements are supported"}}
	}
	return parsed{query: query, sel: sel, emit: emit, asOfs: asOfs}, nil
}

// binder resolves and type-checks one statement, collecting every error.
type binder struct {
	query   string
	catalog Catalog
	errs    Errors
	scope   scope
	// untyped marks string literals whose type comes from their context, as
	// PostgreSQL's unknown-typed literals do: ts > '2024-01-01' compares
	// timestamps.
	untyped map[expr.Expr]bool
	// group, while a grouped select list or HAVING is bound, resolves its
	// columns and aggregate calls; over collects OVER calls.
	group *grouping
	over  *overs
	// joined are the tables a join joins with b.scope, its first input,
	// in order; nil without a join. tables are the sources read as
	// tables, with their key columns.
	joined []*scope
	tables Tables
	// asOfs are the query's FOR SYSTEM_TIME AS OF clauses.
	asOfs []*asOf
	// unnamed says the select list being bound names no output column:
	// a later branch of UNION ALL, named as the first, whose names may
	// repeat.
	unnamed bool
	// merged counts the expression nodes merging subqueries copied.
	merged int
	// joinWindow is the windowing function over a WITH query of a join
	// that FROM names, which was merged into the query: FROM binds it
	// over the join.
	joinWindow *pg.RangeFunction
}

func (b *binder) errorf(loc int32, format string, args ...any) {
	b.errs = append(b.errs, &Error{Offset: int(loc), Msg: fmt.Sprintf(format, args...)})
}

// scope is a table a query reads: its name, alias and columns. A join's
// further inputs have their columns after those before, from offset.
type scope struct {
	table, alias string
	cols         []value.Column
	offset       int
	// again is how many times the table was joined before this input
	// (a table joined again): its columns are named by the table and the
	// input's number, table#2, which tells them from the first's and,
	// unlike its alias, stays when the query changes the alias.
	again int
}

// names reports whether q names the table.
func (s *scope) names(q string) bool { return q == s.table || q == s.alias }

// qualifier is the name of the table's columns in a join: the table's,
// or, of a table joined again, the table's and the input's number.
func (s *scope) qualifier() string {
	if s.again > 0 {
		return fmt.Sprintf("%s#%d", s.table, s.again+1)
	}
	return s.table
}

// refName is how a query names s in a column reference: by its table, or
// by its alias when the table is joined more than once.
func (b *binder) refName(s *scope) string {
	if s.alias != "" && slices.ContainsFunc(b.joined, func(o *scope) bool { return o.table == s.table && o.again > 0 }) {
		return s.alias
	}
	return s.table
}

func (b *binder) selectStmt(sel *pg.SelectStmt, emit bool) plan.Node {
	if sel.Op != pg.SetOperation_SETOP_NONE {
		return b.unionAll(sel, emit)
	}
	if node, ok := b.topNQuery(sel, emit); ok {
		return node
	}
	if node, ok := b.changesQuery(sel); ok {
		return node
	}
	if node, ok := b.windowJoinQuery(sel, emit); ok {
		return node
	}
	var fromAt int32 // the FROM item as written, before merging replaces it
	if len(sel.FromClause) > 0 {
		fromAt = location(sel.FromClause[0])
	}
	if !b.flatten(sel, nil) {
		return nil
	}
	if len(sel.ValuesLists) > 0 {
		b.errorf(0, "VALUES is not supported; read rows from a source")
		return nil
	}
	b.unsupported(sel)
	node, window := b.from(sel.FromClause)
	if node == nil {
		return nil
	}
	node = b.where(node, sel.WhereClause)
	aggAt := findCall(sel.TargetList, false)
	grouped := len(sel.GroupClause) > 0 || sel.HavingClause != nil || aggAt >= 0
	distinct := len(sel.DistinctClause) > 0
	switch {
	case distinct && (grouped || window != nil || emit || findCall(sel.TargetList, true) >= 0):
		b.errorf(firstNodeLocation(sel.TargetList), "SELECT DISTINCT applies to a plain SELECT of a stream, not yet to GROUP BY, windows, EMIT CHANGES or OVER")
		return nil
	case distinct:
		return b.distinctQuery(node, sel)
	case grouped && window == nil:
		// A continuous aggregation: its result is a changelog, as with
		// EMIT CHANGES, which it may say or not.
		return b.aggregateQuery(node, &plan.Aggregate{Window: plan.Window{Kind: plan.Continuous}, EmitChanges: true}, sel)
	case grouped:
		return b.aggregateQuery(node, &plan.Aggregate{Window: *window, EmitChanges: emit}, sel)
	case window != nil:
		b.errorf(fromAt, "a windowing table function needs GROUP BY window_start, window_end and aggregates")
		return nil
	case emit:
		b.errorf(0, "EMIT CHANGES applies to GROUP BY queries")
		return nil
	case findCall(sel.TargetList, true) >= 0:
		return b.overQuery(node, sel.TargetList, false)
	}
	return b.project(node, sel.TargetList)
}

// unsupported reports the clauses this version cannot run yet, each at its place.
func (b *binder) unsupported(sel *pg.SelectStmt) {
	if len(sel.DistinctClause) > 0 && sel.DistinctClause[0].GetNode() != nil {
		b.errorf(location(sel.DistinctClause[0]), "SELECT DISTINCT ON is not supported; SELECT DISTINCT is")
	}
	if len(sel.WindowClause) > 0 {
		b.errorf(location(sel.WindowClause[0]), "named windows (WINDOW) are not supported; write the window in OVER (...)")
	}
	if len(sel.SortClause) > 0 {
		b.errorf(location(sel.SortClause[0]), "ORDER BY is not supported on an unbounded stream")
	}
	if sel.LimitCount != nil || sel.LimitOffset != nil {
		n := sel.LimitCount
		if n == nil {
			n = sel.LimitOffset
		}
		b.errorf(location(n), "LIMIT and OFFSET are not supported on a stream")
	}
	if sel.IntoClause != nil {
		b.errorf(0, "SELECT INTO is not supported; the sink says where results go")
	}
}

// from binds the FROM clause: a source, or a windowing table function over
// one.
func (b *binder) from(items []*pg.Node) (plan.Node, *plan.Window) {
	if len(items) == 0 {
		b.errorf(0, "the query needs a FROM clause naming a source")
		return nil, nil
	}
	if len(items) > 1 {
		b.errorf(location(items[1]), "reading more than one source is not supported yet")
		return nil, nil
	}
	rv := items[0].GetRangeVar()
	if rv == nil {
		switch {
		case items[0].GetJoinExpr() != nil:
			j := b.join(items[0].GetJoinExpr())
			switch {
			case j == nil:
			case b.joinWindow != nil:
				if w := b.windowOverJoin(j.(*plan.Join)); w != nil {
					return j, w
				}
			default:
				return j, nil
			}
		case items[0].GetRangeSubselect() != nil:
			b.errorf(location(items[0]), "subqueries in FROM are not supported")
		case items[0].GetRangeFunction() != nil:
			// A nil *plan.Scan must not become a non-nil plan.Node.
			if scan, w := b.windowFunction(items[0].GetRangeFunction()); scan != nil {
				return scan, w
			}
		default:
			b.errorf(location(items[0]), "unsupported FROM item")
		}
		return nil, nil
	}
	cols, ok := b.catalog[rv.Relname]
	if !ok || rv.Schemaname != "" {
		b.errorf(rv.Location, "unknown source %q (the manifest defines %s)", qualified(rv), b.sourceNames())
		return nil, nil
	}
	b.scope = scope{table: rv.Relname, cols: cols}
	if rv.Alias != nil {
		b.scope.alias = rv.Alias.Aliasname
	}
	return &plan.Scan{Source: rv.Relname, Cols: cols}, nil
}

func qualified(rv *pg.RangeVar) string {
	if rv.Schemaname != "" {
		return rv.Schemaname + "." + rv.Relname
	}
	return rv.Relname
}

func (b *binder) sourceNames() string {
	var names []string
	for n := range b.catalog {
		names = append(names, n)
	}
	if len(names) == 0 {
		return "none"
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func (b *binder) project(input plan.Node, targets []*pg.Node) plan.Node {
	p := &plan.Project{Input: input}
	seen := map[string]int32{}
	tooWide := false
	add := func(e expr.Expr, name string, loc int32) {
		if prev, dup := seen[name]; dup && !b.unnamed {
			b.errorf(loc, "output column %q is also produced at offset %d; give one an alias with AS", name, prev)
			return
		}
		if len(p.Exprs) == MaxOutputColumns {
			if !tooWide {
				b.errorf(loc, "a query may produce at most %d output columns", MaxOutputColumns)
			}
			tooWide = true
			return
		}
		seen[name] = loc
		p.Exprs = append(p.Exprs, e)
		p.Names = append(p.Names, name)
	}
	for _, t := range targets {
		rt := t.GetResTarget()
		if rt == nil {
			continue
		}
		if cr := rt.Val.GetColumnRef(); cr != nil && isStar(cr) {
			if b.group != nil {
				b.errorf(cr.Location, "SELECT * is not allowed in a GROUP BY query; name the window bounds, keys and aggregates")
				continue
			}
			for _, s := range b.starScopes(cr) {
				for i, c := range s.cols {
					add(&expr.Column{Index: s.offset + i, Name: c.Name, T: c.Type}, c.Name, cr.Location)
				}
			}
			continue
		}
		e := b.expr(rt.Val)
		if e == nil {
			continue
		}
		if b.untyped[e] {
			delete(b.untyped, e) // a bare literal is a string
		}
		name := rt.Name
		if name == "" {
			name = outputName(rt.Val)
		}
		add(e, name, rt.Location)
	}
	if len(p.Exprs) == 0 && len(b.errs) == 0 {
		b.errorf(0, "the query selects no columns")
	}
	return p
}

func isStar(cr *pg.ColumnRef) bool {
	last := cr.Fields[len(cr.Fields)-1]
	return last.GetAStar() != nil
}

// starScopes returns the tables whose columns * or t.* selects.
func (b *binder) starScopes(cr *pg.ColumnRef) []*scope {
	all := b.scopes()
	if len(cr.Fields) == 1 {
		return all
	}
	q := cr.Fields[0].GetString_().GetSval()
	var named []*scope
	for _, s := range all {
		if s.names(q) {
			named = append(named, s)
		}
	}
	switch len(named) {
	case 0:
		b.errorf(cr.Location, "unknown table %q in %s.*", q, q)
	case 1:
		return named
	default:
		b.errorf(cr.Location, "%s.* is ambiguous: table %s is joined more than once; name an input by its alias, as %s.*", q, q, named[len(named)-1].alias)
	}
	return nil
}

// outputName names an unaliased select item as PostgreSQL does: a column by
// its name, a function call by the function, a cast by its operand.
func outputName(n *pg.Node) string {
	switch {
	case n.GetColumnRef() != nil:
		f := n.GetColumnRef().Fields
		return f[len(f)-1].GetString_().GetSval()
	case n.GetFuncCall() != nil:
		names := n.GetFuncCall().Funcname
		return names[len(names)-1].GetString_().GetSval()
	case n.GetTypeCast() != nil:
		if inner := outputName(n.GetTypeCast().Arg); inner != "?column?" {
			return inner
		}
	case n.GetCoalesceExpr() != nil:
		return "coalesce"
	case n.GetCaseExpr() != nil:
		return "case"
	case n.GetMinMaxExpr() != nil:
		if n.GetMinMaxExpr().Op == pg.MinMaxOp_IS_GREATEST {
			return "greatest"
		}
		return "least"
	}
	return "?column?"
}
