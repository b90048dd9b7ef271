package sql

import (
	"regexp"
	"slices"
	"strings"
	"time"

	pg "github.com/pganalyze/pg_query_go/v6"

	"github.com/sluice-dev/sluice/runtime/aggregate"
	"github.com/sluice-dev/sluice/runtime/expr"
	"github.com/sluice-dev/sluice/runtime/plan"
	"github.com/sluice-dev/sluice/runtime/value"
)

// emitChanges matches the EMIT CHANGES clause that ends a query. PostgreSQL
// has no such clause, so it is taken off before parsing; it is at the end,
// so no offset before it moves.
var emitChanges = regexp.MustCompile(`(?is)\s+EMIT\s+CHANGES\s*;?\s*$`)

// splitEmit returns the query without a trailing EMIT CHANGES and whether it
// had one.
func splitEmit(query string) (string, bool) {
	loc := emitChanges.FindStringIndex(query)
	if loc == nil {
		return query, false
	}
	return query[:loc[0]], true
}

// grouping is the scope of the select list and HAVING of a GROUP BY
// query: its columns are the window bounds, the keys and the aggregates.
type grouping struct {
	agg   *plan.Aggregate
	input scope
	// keys maps a GROUP BY column to its output column, and exprs the
	// text of a GROUP BY expression (not a column) to its.
	keys  map[string]int
	exprs map[string]int
	// calls maps an aggregate call's text to its output column.
	calls map[string]int
}

// overs collects the OVER calls of a select list.
type overs struct {
	node     *plan.Over
	calls    map[string]int
	spec     string // PARTITION BY and ORDER BY of the first call
	specLoc  int32
	inputLen int
	// changes says the rows are a GROUP BY's (changesQuery), ordered by
	// ORDER BY, not by an event time.
	changes bool
}

// windowCall returns the windowing function call of a table function in
// FROM, its kind and how to write it, after checking its number of
// arguments; ok is false after an error.
func (b *binder) windowCall(rf *pg.RangeFunction) (fc *pg.FuncCall, kind plan.WindowKind, usage string, ok bool) {
	if len(rf.Functions) != 1 {
		b.errorf(firstLocation(nil), "ROWS FROM is not supported")
		return nil, 0, "", false
	}
	items := rf.Functions[0].GetList().GetItems()
	fc = items[0].GetFuncCall()
	if fc == nil {
		b.errorf(location(items[0]), "unsupported table function")
		return nil, 0, "", false
	}
	name := strings.ToLower(fc.Funcname[len(fc.Funcname)-1].GetString_().GetSval())
	kind, nargs := plan.Tumble, 3
	switch name {
	case "tumble":
	case "hop":
		kind, nargs = plan.Hop, 4
	case "session":
		kind = plan.Session
	default:
		b.errorf(fc.Location, "unknown table function %s; the windowing functions are TUMBLE, HOP and SESSION", name)
		return nil, 0, "", false
	}
	usage = map[plan.WindowKind]string{
		plan.Tumble:  "TUMBLE(source, time_column, INTERVAL 'size')",
		plan.Hop:     "HOP(source, time_column, INTERVAL 'slide', INTERVAL 'size')",
		plan.Session: "SESSION(source, time_column, INTERVAL 'gap')",
	}[kind]
	if len(fc.Args) != nargs {
		b.errorf(fc.Location, "%s takes %d arguments: %s", strings.ToUpper(name), nargs, usage)
		return nil, 0, "", false
	}
	return fc, kind, usage, true
}

// windowFunction reads a windowing table function in FROM:
// TUMBLE(source, time_column, size), HOP(source, time_column, slide, size) or
// SESSION(source, time_column, gap).
func (b *binder) windowFunction(rf *pg.RangeFunction) (*plan.Scan, *plan.Window) {
	fc, kind, usage, ok := b.windowCall(rf)
	if !ok {
		return nil, nil
	}
	src := fc.Args[0].GetColumnRef()
	if src == nil || len(src.Fields) != 1 {
		b.errorf(location(fc.Args[0]), "the first argument of %s names the source: %s", kind, usage)
		return nil, nil
	}
	table := src.Fields[0].GetString_().GetSval()
	cols, ok := b.catalog[table]
	if !ok {
		b.errorf(src.Location, "unknown source %q (the manifest defines %s)", table, b.sourceNames())
		return nil, nil
	}
	b.scope = scope{table: table, cols: cols}
	if rf.Alias != nil {
		b.scope.alias = rf.Alias.Aliasname
	}
	w := b.windowArgs(fc, kind, table)
	if w == nil {
		return nil, nil
	}
	return &plan.Scan{Source: table, Cols: cols}, w
}

// windowArgs binds a windowing function's time column, of what it
// windows, and its intervals.
func (b *binder) windowArgs(fc *pg.FuncCall, kind plan.WindowKind, of string) *plan.Window {
	w := &plan.Window{Kind: kind}
	t := b.expr(fc.Args[1])
	if t == nil {
		return nil
	}
	col, ok := t.(*expr.Column)
	_, w.ProcTime = t.(*expr.Now)
	if !w.ProcTime && (!ok || col.T.Kind != value.KindTimestamp) {
		b.errorf(location(fc.Args[1]), "the second argument of %s is the event-time column, a timestamp column of %s, or PROCTIME()", kind, of)
		return nil
	}
	w.Time = col
	var durations []int64
	for _, a := range fc.Args[2:] {
		d, ok := b.positiveInterval(a)
		if !ok {
			return nil
		}
		durations = append(durations, d)
	}
	switch kind {
	case plan.Tumble:
		w.Size, w.Slide = durations[0], durations[0]
	case plan.Hop:
		w.Slide, w.Size = durations[0], durations[1]
		if w.Size%w.Slide != 0 {
			b.errorf(location(fc.Args[3]), "a HOP window's size must be a whole multiple of its slide")
			return nil
		}
		if n := w.Size / w.Slide; n > MaxHopWindows {
			// Each record is added to size/slide windows.
			b.errorf(location(fc.Args[3]), "a HOP window's size is %d times its slide, more than the %d allowed: each record updates that many windows", n, MaxHopWindows)
			return nil
		}
	case plan.Session:
		w.Gap = durations[0]
	}
	return w
}

// Bounds of the numbers that size a stateful query's state and work.
const (
	// MaxStateInterval bounds a window's size, slide and gap, a RANGE
	// frame and an interval join's bounds: state is kept for as long.
	MaxStateInterval = 366 * 24 * time.Hour
	// MaxHopWindows bounds a HOP window's size over its slide, the
	// windows each record updates.
	MaxHopWindows = 4096
	// MaxFrameRows bounds ROWS n PRECEDING, the rows kept per key.
	MaxFrameRows = 100_000
)

// positiveInterval binds a constant interval greater than zero and at most
// MaxStateInterval.
func (b *binder) positiveInterval(n *pg.Node) (int64, bool) {
	e := b.expr(n)
	if e == nil {
		return 0, false
	}
	c, ok := e.(*expr.Const)
	if !ok || c.V.Kind() != value.KindInterval || c.V.Nanos() <= 0 {
		b.errorf(location(n), "want a constant interval greater than zero, such as INTERVAL '1' MINUTE")
		return 0, false
	}
	if c.V.Nanos() > int64(MaxStateInterval) {
		b.errorf(location(n), "the interval is longer than the %d days allowed: state is kept for as long", MaxStateInterval/(24*time.Hour))
		return 0, false
	}
	return c.V.Nanos(), true
}

// distinctQuery plans SELECT DISTINCT over input: a continuous
// aggregation grouped by the select list, without aggregates, that writes
// each group's row once, when it starts.
func (b *binder) distinctQuery(input plan.Node, sel *pg.SelectStmt) plan.Node {
	grouped := &pg.SelectStmt{TargetList: sel.TargetList, FromClause: sel.FromClause}
	for _, item := range sel.TargetList {
		val := item.GetResTarget().GetVal()
		if cr := val.GetColumnRef(); cr != nil && isStar(cr) {
			b.errorf(cr.Location, "SELECT DISTINCT * is not supported; name the columns")
			return nil
		}
		// A constant is no key (GROUP BY refuses one).
		e, err := b.bindQuietly(val)
		if _, isConst := e.(*expr.Const); err == nil && isConst {
			continue
		}
		grouped.GroupClause = append(grouped.GroupClause, val)
	}
	return b.aggregateQuery(input, &plan.Aggregate{Window: plan.Window{Kind: plan.Continuous}, EmitChanges: true, Distinct: true}, grouped)
}

// aggregateQuery plans a GROUP BY query over input, which reads the
// window's source: windowed, or, with a Continuous window, of the whole
// stream. agg holds the window and how the groups are written.
func (b *binder) aggregateQuery(input plan.Node, agg *plan.Aggregate, sel *pg.SelectStmt) plan.Node {
	agg.Input = input
	w, emit := &agg.Window, agg.EmitChanges
	g := &grouping{agg: agg, input: b.scope, keys: map[string]int{}, exprs: map[string]int{}, calls: map[string]int{}}
	continuous := w.Kind == plan.Continuous
	var sawStart, sawEnd bool
	for _, item := range sel.GroupClause {
		cr := item.GetColumnRef()
		if cr != nil && isStar(cr) {
			b.errorf(location(item), "GROUP BY takes columns and expressions of %s, not *", b.scope.table)
			continue
		}
		if cr == nil {
			// An expression of the input's columns: the select list and
			// HAVING name it by writing it again.
			e := b.expr(item)
			if e == nil {
				continue
			}
			if _, isConst := e.(*expr.Const); isConst {
				b.errorf(location(item), "GROUP BY of a constant groups nothing; group by columns or expressions of %s", b.scope.table)
				continue
			}
			text := e.String()
			if _, dup := g.exprs[text]; dup {
				continue
			}
			g.exprs[text] = 2 + len(agg.Keys)
			agg.Keys, agg.KeyNames = append(agg.Keys, e), append(agg.KeyNames, text)
			continue
		}
		name := cr.Fields[len(cr.Fields)-1].GetString_().GetSval()
		bound := name == "window_start" || name == "window_end"
		switch {
		case bound && continuous && slices.ContainsFunc(b.scope.cols, func(c value.Column) bool { return c.Name == name }):
			// A column of the input: of windows that a query aggregates.
		case bound && continuous:
			b.errorf(cr.Location, "%s is a column of windowed queries: FROM TUMBLE(source, time_column, INTERVAL 'size'), HOP(...) or SESSION(...)", name)
			continue
		case name == "window_start":
			sawStart = true
			continue
		case name == "window_end":
			sawEnd = true
			continue
		}
		e, err := b.columnRef(cr)
		if err != nil {
			continue
		}
		key := groupKey(name, e)
		if _, dup := g.keys[key]; dup {
			continue
		}
		g.keys[key] = 2 + len(agg.Keys)
		agg.Keys, agg.KeyNames = append(agg.Keys, e), append(agg.KeyNames, name)
	}
	if !continuous && (!sawStart || !sawEnd) {
		at := location(sel.FromClause[0]) // HAVING without GROUP BY
		if len(sel.GroupClause) > 0 {
			at = location(sel.GroupClause[0])
		}
		b.errorf(at, "a windowed query groups by window_start and window_end: GROUP BY window_start, window_end[, columns]")
	}
	if w.Kind == plan.Session && emit {
		b.errorf(0, "EMIT CHANGES is not supported with SESSION windows")
	}
	// Aggregate calls get their output columns in order of appearance; the
	// key columns come first, so calls are numbered after the binding.
	b.group = g
	defer func() { b.group = nil }()
	var node plan.Node = agg
	var having expr.Expr
	if continuous && sel.HavingClause != nil {
		// A group that stops passing it would need a delete in the
		// changelog, which is not built yet.
		b.errorf(location(sel.HavingClause), "HAVING is not supported yet in a GROUP BY without a window (a continuous aggregation); filter its output downstream")
	} else if sel.HavingClause != nil {
		having = b.condition(sel.HavingClause, "HAVING")
	}
	proj := b.project(agg, sel.TargetList)
	if having != nil {
		node = &plan.Filter{Input: node, Predicate: having}
	}
	if p, ok := proj.(*plan.Project); ok {
		p.Input = node
		return p
	}
	return node
}

// groupedExpr resolves n, an expression of a grouped select list or
// HAVING, to the key column of the GROUP BY expression it writes again,
// if it does; ok is false for anything else, which binds as usual.
func (b *binder) groupedExpr(n *pg.Node) (e expr.Expr, ok bool) {
	g := b.group
	if g == nil || len(g.exprs) == 0 || n.GetColumnRef() != nil || n.GetAConst() != nil {
		return nil, false
	}
	// Bound over the input's rows: an aggregate in it, or anything else
	// that binds only over the groups, is no key.
	in, err := b.bindQuietly(n)
	if err != nil {
		return nil, false
	}
	i, ok := g.exprs[in.String()]
	if !ok {
		return nil, false
	}
	return &expr.Column{Index: i, Name: in.String(), T: in.Type()}, true
}

// bindQuietly binds n over the input's rows, not the groups, and drops
// the errors it records: a look at what n is, which is bound again, with
// its errors, where it stands.
func (b *binder) bindQuietly(n *pg.Node) (expr.Expr, error) {
	errs, g := len(b.errs), b.group
	b.group = nil
	e, err := b.bind(n)
	b.group, b.errs = g, b.errs[:errs]
	return e, err
}

// groupedColumn resolves a column of a grouped select list or HAVING.
func (b *binder) groupedColumn(cr *pg.ColumnRef) (expr.Expr, error) {
	g := b.group
	name := cr.Fields[len(cr.Fields)-1].GetString_().GetSval()
	switch {
	case g.agg.Window.Kind == plan.Continuous:
		// Its window bounds are the whole of time, which no query reads.
	case name == "window_start":
		return &expr.Column{Index: 0, Name: name, T: value.Timestamp}, nil
	case name == "window_end":
		return &expr.Column{Index: 1, Name: name, T: value.Timestamp}, nil
	}
	// An unknown column gets the usual message; a known one that is not
	// grouped gets this one.
	saved := b.group
	b.group = nil
	e, err := b.columnRef(cr)
	b.group = saved
	if err != nil {
		return nil, err
	}
	if i, ok := g.keys[groupKey(name, e)]; ok {
		return &expr.Column{Index: i, Name: name, T: g.agg.Keys[i-2].Type()}, nil
	}
	return b.fail(cr.Location, "column %q must be in GROUP BY or inside an aggregate function", name)
}

// groupKey names a GROUP BY column, bound to e, among the keys: by the
// column of the input it is, qualified in a join (of one table twice, or
// of two inputs with columns of one name, a.sector and b.sector are two
// keys), or by its name.
func groupKey(name string, e expr.Expr) string {
	if c, ok := e.(*expr.Column); ok {
		return c.Name
	}
	return name
}

// aggregateCall binds an aggregate function call of a grouped query and
// returns the column that holds its result.
func (b *binder) aggregateCall(fc *pg.FuncCall, name string) (expr.Expr, error) {
	g := b.group
	if len(fc.AggOrder) > 0 {
		return b.fail(fc.Location, "ORDER BY in aggregate calls is not supported")
	}
	call := plan.AggCall{}
	kind, ok := aggregate.Lookup(name, fc.AggDistinct)
	switch {
	case fc.AggStar:
		if name != "count" {
			return b.fail(fc.Location, "only count takes *")
		}
		kind, ok = aggregate.CountStar, true
	case !ok && fc.AggDistinct:
		return b.fail(fc.Location, "DISTINCT is supported in count only")
	case !ok:
		return b.fail(fc.Location, "unknown aggregate function %s", name)
	case len(fc.Args) != 1:
		return b.fail(fc.Location, "%s takes one argument", name)
	}
	if !kind.Retracts() && plan.AggregateBelow(g.agg.Input) != nil {
		return b.fail(fc.Location, "%s of the rows of a GROUP BY is not supported yet: each row of an inner group replaces the group's earlier row, whose values the outer aggregation takes back out, as count, sum and avg can", strings.ToLower(kind.String()))
	}
	// The argument, and FILTER, are over the input rows, not the groups.
	b.group = nil
	arg, f, err := b.aggregateArg(fc, name, kind)
	if err == nil && fc.AggFilter != nil {
		arg, f, err = b.aggregateFilter(fc, name, arg, f)
	}
	b.group = g
	if err != nil {
		return nil, err
	}
	call.Arg, call.Func = arg, f
	text := call.String()
	i, seen := g.calls[text]
	if !seen {
		i = 2 + len(g.agg.Keys) + len(g.agg.Aggs)
		g.calls[text] = i
		g.agg.Aggs = append(g.agg.Aggs, call)
	}
	return &expr.Column{Index: i, Name: text, T: f.Type}, nil
}

// aggregateFilter binds the FILTER (WHERE condition) of an aggregate call
// of f over arg, and returns the call over the rows it keeps: the
// aggregates skip NULLs, so f(x) FILTER (WHERE c) is f(CASE WHEN c THEN x
// END), and count(*) FILTER (WHERE c) count(CASE WHEN c THEN 1 END).
// first_value and last_value take NULLs too, and are refused.
func (b *binder) aggregateFilter(fc *pg.FuncCall, name string, arg expr.Expr, f aggregate.Func) (expr.Expr, aggregate.Func, error) {
	pred := b.expr(fc.AggFilter)
	if pred == nil {
		return nil, f, errReported
	}
	if k := pred.Type().Kind; k != value.KindBool && k != value.KindNull {
		_, err := b.fail(location(fc.AggFilter), "FILTER (WHERE ...) must be bool, not %s", pred.Type())
		return nil, f, err
	}
	switch f.Kind {
	case aggregate.FirstValue, aggregate.LastValue:
		_, err := b.fail(fc.Location, "FILTER is not supported with %s", name)
		return nil, f, err
	case aggregate.CountStar:
		arg = expr.NewConst(value.IntValue(1))
		var err error
		if f, err = aggregate.New(aggregate.Count, value.Int); err != nil {
			_, err = b.fail(fc.Location, "%v", err)
			return nil, f, err
		}
	}
	filtered, err := expr.NewCase([]expr.When{{Cond: pred, Then: arg}}, nil)
	if err != nil {
		_, err = b.fail(location(fc.AggFilter), "%v", err)
		return nil, f, err
	}
	return filtered, f, nil
}

// aggregateArg binds the argument of an aggregate call, nil for count(*),
// and type-checks the function over it.
func (b *binder) aggregateArg(fc *pg.FuncCall, name string, kind aggregate.Kind) (expr.Expr, aggregate.Func, error) {
	argType := value.Int
	var arg expr.Expr
	if !fc.AggStar {
		if arg = b.expr(fc.Args[0]); arg == nil {
			return nil, aggregate.Func{}, errReported
		}
		if arg.Type().Kind == value.KindNull {
			_, err := b.fail(location(fc.Args[0]), "the argument of %s has no type; cast it", name)
			return nil, aggregate.Func{}, err
		}
		delete(b.untyped, arg)
		argType = arg.Type()
	}
	f, err := aggregate.New(kind, argType)
	if err != nil {
		_, err = b.fail(fc.Location, "%v", err)
		return nil, aggregate.Func{}, err
	}
	return arg, f, nil
}

// Frame option bits of PostgreSQL's WindowDef.frameOptions.
const (
	frameNonDefault          = 0x00001
	frameRange               = 0x00002
	frameRows                = 0x00004
	frameGroups              = 0x00008
	frameStartOffsetPreceded = 0x00800
	frameEndCurrentRow       = 0x00400
	frameExclude             = 0x08000 | 0x10000 | 0x20000
)

// overQuery plans a select list with moving aggregates over input; over
// the rows of a GROUP BY without a window if changes says so.
func (b *binder) overQuery(input plan.Node, targets []*pg.Node, changes bool) plan.Node {
	o := &overs{node: &plan.Over{Input: input}, calls: map[string]int{}, inputLen: len(input.Columns()), changes: changes}
	b.over = o
	defer func() { b.over = nil }()
	proj := b.project(o.node, targets)
	if p, ok := proj.(*plan.Project); ok {
		p.Input = o.node
	}
	return proj
}

// overCall binds fn(x) OVER (PARTITION BY keys ORDER BY time frame).
func (b *binder) overCall(fc *pg.FuncCall, name string) (expr.Expr, error) {
	o := b.over
	if o == nil {
		return b.fail(fc.Location, "OVER is not allowed in a GROUP BY query or in WHERE")
	}
	wd := fc.Over
	if wd.Name != "" || wd.Refname != "" {
		return b.fail(fc.Location, "named windows are not supported; write the window in OVER (...)")
	}
	kind, ok := aggregate.Lookup(name, fc.AggDistinct)
	if fc.AggStar {
		kind, ok = aggregate.CountStar, name == "count"
	}
	if _, ranks := rankFuncs[name]; ranks {
		return b.fail(fc.Location, "%s ranks rows in a top-N only: SELECT ... FROM (SELECT ..., %s() OVER (PARTITION BY ... ORDER BY ...) AS r FROM source) WHERE r <= N (see docs/sql.md, Window top-N)", name, strings.ToUpper(name))
	}
	if !ok {
		return b.fail(fc.Location, "%s is not supported OVER a window; use count, sum, avg, min, max, stddev, first_value or last_value", name)
	}
	if fc.AggFilter != nil || len(fc.AggOrder) > 0 {
		return b.fail(fc.Location, "FILTER and ORDER BY in aggregate calls are not supported")
	}
	var partition []expr.Expr
	for _, p := range wd.PartitionClause {
		if e := b.expr(p); e != nil {
			partition = append(partition, e)
			if o.changes {
				b.keysOnly(e, location(p), "partitions")
			}
		}
	}
	order, ok := b.overOrder(wd, o)
	if !ok {
		return nil, errReported
	}
	opts := wd.FrameOptions
	const bounded = frameStartOffsetPreceded | frameEndCurrentRow
	if opts&frameNonDefault == 0 || opts&frameGroups != 0 || opts&bounded != bounded || opts&frameExclude != 0 {
		return b.fail(wd.Location, "an OVER frame must be ROWS BETWEEN n PRECEDING AND CURRENT ROW or RANGE BETWEEN INTERVAL 'd' PRECEDING AND CURRENT ROW: a stream's frames need a bound")
	}
	frame := aggregate.FrameSpec{Range: opts&frameRange != 0}
	switch {
	case frame.Range && o.changes:
		return b.fail(wd.Location, "OVER of the rows of a GROUP BY takes ROWS BETWEEN n PRECEDING AND CURRENT ROW: its rows are in the order of ORDER BY, not of an event time that RANGE would measure")
	case frame.Range:
		d, ok := b.positiveInterval(wd.StartOffset)
		if !ok {
			return nil, errReported
		}
		frame.Preceding = d
	default:
		e := b.expr(wd.StartOffset)
		c, isConst := e.(*expr.Const)
		if e == nil || !isConst || c.V.Kind() != value.KindInt || c.V.Int() < 0 || c.V.Int() > MaxFrameRows {
			return b.fail(location(wd.StartOffset), "ROWS n PRECEDING takes a whole number n from 0 to %d: each key keeps n rows", MaxFrameRows)
		}
		frame.Preceding = c.V.Int()
	}
	keys := make([]string, len(partition))
	for i, p := range partition {
		keys[i] = p.String()
	}
	spec := strings.Join(keys, ", ") + " ORDER BY " + order
	if o.spec == "" {
		o.spec, o.specLoc = spec, wd.Location
		o.node.Partition = partition
	} else if spec != o.spec {
		return b.fail(wd.Location, "every OVER of a query must have the same PARTITION BY and ORDER BY (the first, at offset %d, has PARTITION BY %s)", o.specLoc, o.spec)
	}
	if !fc.AggStar && len(fc.Args) != 1 {
		return b.fail(fc.Location, "%s takes one argument", name)
	}
	arg, f, err := b.aggregateArg(fc, name, kind)
	if err != nil {
		return nil, err
	}
	call := plan.OverCall{Frame: frame, Arg: arg, Func: f}
	text := call.String()
	i, seen := o.calls[text]
	if !seen {
		i = o.inputLen + len(o.node.Calls)
		o.calls[text] = i
		o.node.Calls = append(o.node.Calls, call)
	}
	return &expr.Column{Index: i, Name: text, T: f.Type}, nil
}

// overOrder binds the ORDER BY of window definition wd, sets it on o's
// node if it is the first, and says it: of a stream, the event-time
// column; of the rows of a GROUP BY, expressions of its keys.
func (b *binder) overOrder(wd *pg.WindowDef, o *overs) (string, bool) {
	if o.changes {
		if len(wd.OrderClause) == 0 {
			b.errorf(wd.Location, "OVER of the rows of a GROUP BY needs ORDER BY columns of its keys, which give each group's row its place")
			return "", false
		}
		var order []plan.SortKey
		texts := make([]string, 0, len(wd.OrderClause))
		for _, n := range wd.OrderClause {
			sb := n.GetSortBy()
			e := b.expr(sb.Node)
			if e == nil {
				return "", false
			}
			if sb.UseOp != nil {
				b.errorf(location(n), "ORDER BY ... USING is not supported")
				return "", false
			}
			if !b.keysOnly(e, location(n), "orders") {
				return "", false
			}
			key := sortKey(e, sb)
			order, texts = append(order, key), append(texts, key.String())
		}
		if o.spec == "" {
			o.node.Order = order
		}
		return strings.Join(texts, ", "), true
	}
	if len(wd.OrderClause) != 1 {
		b.errorf(wd.Location, "OVER needs ORDER BY the event-time column")
		return "", false
	}
	sb := wd.OrderClause[0].GetSortBy()
	t := b.expr(sb.Node)
	if t == nil {
		return "", false
	}
	tc, isCol := t.(*expr.Column)
	if !isCol || tc.T.Kind != value.KindTimestamp || sb.SortbyDir == pg.SortByDir_SORTBY_DESC {
		b.errorf(location(sb.Node), "OVER orders by the event-time column, a timestamp column, ascending")
		return "", false
	}
	in := o.node.Input
	if f, ok := in.(*plan.Filter); ok {
		in = f.Input
	}
	if j, ok := in.(*plan.Join); ok && !b.joinTime(j, tc, location(sb.Node), "OVER") {
		return "", false
	}
	if o.spec == "" {
		o.node.Time = tc
	}
	return tc.Name, true
}

// keysOnly reports whether e, over the rows of a GROUP BY (b.over's
// input), is computed from its keys alone, without the clock, and says
// why not at at if not: what OVER does with it (partitions, orders).
func (b *binder) keysOnly(e expr.Expr, at int32, what string) bool {
	if readsKeysOnly(b.over.node.Input, e) {
		return true
	}
	b.errorf(at, "OVER of the rows of a GROUP BY %s them by columns of its keys, which its changes keep: a value computed from an aggregate, or from the clock (now()), would move a group's row to another place", what)
	return false
}

// findCall returns the offset of the first call in a select list of an
// aggregate (over == false) or of a function with OVER (over == true); -1
// if there is none.
func findCall(nodes []*pg.Node, over bool) int32 {
	found := int32(-1)
	var walk func(n *pg.Node)
	walk = func(n *pg.Node) {
		if n == nil || found >= 0 {
			return
		}
		if fc := n.GetFuncCall(); fc != nil {
			name := fc.Funcname[len(fc.Funcname)-1].GetString_().GetSval()
			if (fc.Over != nil) == over && (over || aggregates[name] || fc.AggStar) {
				found = fc.Location
				return
			}
			for _, a := range fc.Args {
				walk(a)
			}
			return
		}
		switch v := n.Node.(type) {
		case *pg.Node_ResTarget:
			walk(v.ResTarget.Val)
		case *pg.Node_AExpr:
			walk(v.AExpr.Lexpr)
			walk(v.AExpr.Rexpr)
		case *pg.Node_BoolExpr:
			for _, a := range v.BoolExpr.Args {
				walk(a)
			}
		case *pg.Node_TypeCast:
			walk(v.TypeCast.Arg)
		case *pg.Node_CoalesceExpr:
			for _, a := range v.CoalesceExpr.Args {
				walk(a)
			}
		case *pg.Node_CaseExpr:
			for _, w := range v.CaseExpr.Args {
				walk(w.GetCaseWhen().Expr)
				walk(w.GetCaseWhen().Result)
			}
			walk(v.CaseExpr.Defresult)
		case *pg.Node_MinMaxExpr:
			for _, a := range v.MinMaxExpr.Args {
				walk(a)
			}
		case *pg.Node_NullTest:
			walk(v.NullTest.Arg)
		case *pg.Node_List:
			for _, a := range v.List.Items {
				walk(a)
			}
		}
	}
	for _, n := range nodes {
		walk(n)
	}
	return found
}
