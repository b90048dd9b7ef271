package sql

import (
	"fmt"
	"slices"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"

	"github.com/sluice-dev/sluice/runtime/expr"
	"github.com/sluice-dev/sluice/runtime/plan"
	"github.com/sluice-dev/sluice/runtime/value"
)

// join binds `left JOIN right ON ...`: an interval join of two streams, or
// a stream joined with a table, and then with further tables (lookup).
// Conditions of ON other than the keys and the time bounds decide which
// pairs match, inside the join.
func (b *binder) join(je *pg.JoinExpr) plan.Node {
	outer, rightOuter, ok := b.joinType(je)
	if !ok {
		return nil
	}
	if inner := je.Larg.GetJoinExpr(); inner != nil {
		return b.lookup(je, inner, outer, rightOuter)
	}
	left, lscope := b.joinSide(je.Larg)
	right, rscope := b.joinSide(je.Rarg)
	if left == nil || right == nil {
		return nil
	}
	if lscope.names(rscope.table) || lscope.names(rscope.alias) && rscope.alias != "" {
		b.errorf(location(je.Rarg), "both sides of the join are called %s; give one an alias", rscope.table)
		return nil
	}
	rscope.offset = len(lscope.cols)
	b.scope, b.joined = *lscope, []*scope{rscope}
	j := &plan.Join{Left: left, Right: right, Outer: outer, RightOuter: rightOuter}
	if _, isTable := b.tables[left.Source]; isTable {
		b.errorf(location(je.Larg), "%s is a table; write the stream first: stream JOIN table", left.Source)
		return nil
	}
	table, isTable := b.tables[right.Source]
	if isTable {
		j.Kind = plan.TableJoin
		if rightOuter {
			b.errorf(location(je.Rarg), "%s is a table: a join with a table is a JOIN or a LEFT JOIN, which keep the stream's rows; a RIGHT or FULL JOIN would keep the table's, which are not a stream", right.Source)
			return nil
		}
	}
	if c := b.asOfAt(je.Rarg.GetRangeVar().GetLocation()); c != nil {
		if !isTable {
			c.used = true
			b.errorf(c.at, "FOR SYSTEM_TIME AS OF applies to a table, and %s is a stream: give it table: {key: [...]} in the manifest", right.Source)
			return nil
		}
		if !b.temporal(j, c, len(lscope.cols)) {
			return nil
		}
	}
	haveTime := false
	var timeBound func(c *pg.Node) bool
	if !isTable {
		timeBound = func(c *pg.Node) bool {
			if !haveTime && b.quietly(func() bool { return b.timeBounds(c, j, len(lscope.cols)) }) {
				haveTime = true
				return true
			}
			return false
		}
	}
	var residual []expr.Expr
	j.LeftKeys, j.RightKeys, residual, ok = b.onConditions(je.Quals, len(lscope.cols), right.Source, table.Key, timeBound)
	switch {
	case !ok:
		return nil
	case len(j.LeftKeys) == 0:
		b.errorf(location(je.Quals), "a join needs at least one equality of a column of %s and one of %s in ON", left.Source, right.Source)
		return nil
	case isTable:
		if !b.wholeKey(je.Quals, right.Source, table.Key, j.RightKeys) {
			return nil
		}
	case !haveTime:
		b.errorf(location(je.Quals), "a join of two streams needs a time bound in ON: left.ts BETWEEN right.ts - INTERVAL 'a' AND right.ts + INTERVAL 'b'")
		return nil
	}
	// The rest of ON decides which pairs match, inside the join: for a
	// LEFT JOIN a stream row whose table row fails it still comes out,
	// with NULLs, which a filter after the join would drop.
	if j.On, ok = b.conjunction(residual, location(je.Quals)); !ok {
		return nil
	}
	return j
}

// joinType reports whether je keeps the left rows that match nothing
// (LEFT or FULL JOIN) and the right's (RIGHT or FULL JOIN); ok is false
// after an error, for other joins and joins without ON.
func (b *binder) joinType(je *pg.JoinExpr) (outer, rightOuter, ok bool) {
	switch je.Jointype {
	case pg.JoinType_JOIN_INNER:
	case pg.JoinType_JOIN_LEFT:
		outer = true
	case pg.JoinType_JOIN_RIGHT:
		rightOuter = true
	case pg.JoinType_JOIN_FULL:
		outer, rightOuter = true, true
	default:
		b.errorf(itemAt(je.Rarg), "only JOIN, LEFT JOIN, RIGHT JOIN and FULL JOIN are supported")
		return false, false, false
	}
	if je.IsNatural || len(je.UsingClause) > 0 || je.Quals == nil {
		b.errorf(itemAt(je.Rarg), "a join needs ON with its conditions")
		return false, false, false
	}
	return outer, rightOuter, true
}

// lookup binds `... JOIN table ON ...` after the join inner: each row it
// joins is looked up in a further table, by the table's whole key; or
// `... JOIN stream ON ...` after a join of streams (streamStep).
func (b *binder) lookup(je, inner *pg.JoinExpr, outer, rightOuter bool) plan.Node {
	j, _ := b.join(inner).(*plan.Join)
	if j == nil {
		return nil
	}
	table, tscope := b.joinSide(je.Rarg)
	if table == nil {
		return nil
	}
	key, isTable := b.tables[table.Source]
	switch {
	case !isTable && j.Kind == plan.IntervalJoin && len(j.Lookups) == 0:
		return b.streamStep(je, j, table, tscope, outer, rightOuter)
	case !isTable && j.Kind == plan.IntervalJoin:
		return b.streamAfterTables(je, j, table, tscope, outer, rightOuter)
	case !isTable:
		b.errorf(location(je.Rarg), "the inputs of a join after the first two are tables: %s is a stream (give it table: {key: [...]} in the manifest to read it as one)", table.Source)
		return nil
	case rightOuter:
		b.errorf(location(je.Rarg), "%s is a table: the tables after the first two inputs are looked up with JOIN or LEFT JOIN, not RIGHT or FULL JOIN", table.Source)
		return nil
	}
	asOf := b.asOfAt(je.Rarg.GetRangeVar().GetLocation())
	if asOf != nil {
		asOf.used = true
		switch {
		case j.Kind == plan.IntervalJoin:
			b.errorf(asOf.at, "the tables after a join of two streams are joined as read yet, not FOR SYSTEM_TIME AS OF")
			return nil
		case j.AsOf == nil:
			b.errorf(asOf.at, "a table is joined FOR SYSTEM_TIME AS OF after the first only if the first is: join %s first, and the tables joined as read after it", table.Source)
			return nil
		}
	}
	for _, s := range b.scopes() {
		switch {
		case s.table == tscope.table && b.joinedAsOf(j, table.Source):
			b.errorf(location(je.Rarg), "%s is joined FOR SYSTEM_TIME AS OF already; only a table joined as read may be joined again", tscope.table)
			return nil
		case s.table == tscope.table && asOf != nil:
			b.errorf(asOf.at, "%s is joined already; a table joined FOR SYSTEM_TIME AS OF is joined once", tscope.table)
			return nil
		case s.table == tscope.table && (tscope.alias == "" || s.alias == ""):
			b.errorf(location(je.Rarg), "%s is joined already; to join it again, give each of its inputs an alias", tscope.table)
			return nil
		case s.table == tscope.table:
			tscope.again++
		case s.names(tscope.table):
			b.errorf(location(je.Rarg), "two inputs of the join are called %s; give one another alias", tscope.table)
			return nil
		}
		if tscope.alias != "" && (s.names(tscope.alias) || tscope.alias == tscope.table && tscope.again > 0) {
			b.errorf(location(je.Rarg), "two inputs of the join are called %s; give one another alias", tscope.alias)
			return nil
		}
	}
	width := len(j.Columns())
	tscope.offset = width
	b.joined = append(b.joined, tscope)
	l := &plan.Lookup{Table: table, Outer: outer}
	var residual []expr.Expr
	var ok bool
	l.Keys, l.TableKeys, residual, ok = b.onConditions(je.Quals, width, table.Source, key.Key, nil)
	switch {
	case !ok:
		return nil
	case len(l.Keys) == 0:
		b.errorf(location(je.Quals), "a join needs at least one equality of a column of the inputs before %s and one of it in ON", table.Source)
		return nil
	case !b.wholeKey(je.Quals, table.Source, key.Key, l.TableKeys):
		return nil
	}
	if l.On, ok = b.conjunction(residual, location(je.Quals)); !ok {
		return nil
	}
	if asOf != nil {
		col := b.asOfColumn(asOf, j.Left.Source, len(j.Left.Cols))
		switch {
		case col == nil:
			return nil
		case col.Index != j.AsOf.Index:
			b.errorf(asOf.column.Location, "the tables of a join are joined as of one time, the stream row's: %s, as %s is", j.AsOf.Name, j.Right.Source)
			return nil
		}
		if l.TableTime = b.versionTime(table, asOf); l.TableTime == nil {
			return nil
		}
	}
	j.Lookups = append(j.Lookups, l)
	return j
}

// joinedAsOf reports whether j joins source FOR SYSTEM_TIME AS OF, as its
// first table or a further one.
func (b *binder) joinedAsOf(j *plan.Join, source string) bool {
	if j.AsOf != nil && j.Right.Source == source {
		return true
	}
	for _, l := range j.Lookups {
		if l.TableTime != nil && l.Table.Source == source {
			return true
		}
	}
	return false
}

// streamStep binds `... JOIN stream ON ...` (or an outer join) after j,
// an interval join of two streams or more: the rows j joins pair with the
// stream's of equal keys within a time bound on an event time of an input
// before it that no outer join leaves NULL.
func (b *binder) streamStep(je *pg.JoinExpr, j *plan.Join, stream *plan.Scan, sscope *scope, outer, rightOuter bool) plan.Node {
	for _, s := range b.scopes() {
		name := ""
		switch {
		case s.table == sscope.table || s.names(sscope.table):
			name = sscope.table
		case sscope.alias != "" && s.names(sscope.alias):
			name = sscope.alias
		default:
			continue
		}
		b.errorf(location(je.Rarg), "two inputs of the join are called %s; a stream is joined once, each input with its own name", name)
		return nil
	}
	width := len(j.Columns())
	sscope.offset = width
	b.joined = append(b.joined, sscope)
	// The event times of the inputs before it, in the rows j joins; and
	// those an outer join leaves NULL in some: a LEFT JOIN's stream's, the
	// inputs' before a RIGHT JOIN's stream.
	var times, nullable []int
	for _, t := range []struct {
		at   int
		null bool
	}{{j.LeftTime.Index, j.RightOuter}, {len(j.Left.Cols) + j.RightTime.Index, j.Outer}} {
		if t.null {
			nullable = append(nullable, t.at)
		} else {
			times = append(times, t.at)
		}
	}
	at := len(j.Left.Cols) + len(j.Right.Cols)
	for _, s := range j.Streams {
		if s.RightOuter {
			nullable, times = append(nullable, times...), nil
		}
		if s.Outer {
			nullable = append(nullable, at+s.StreamTime.Index)
		} else {
			times = append(times, at+s.StreamTime.Index)
		}
		at += len(s.Stream.Cols)
	}
	bound := &plan.Join{}
	haveTime := false
	timeBound := func(c *pg.Node) bool {
		if !haveTime && b.quietly(func() bool { return b.timeBounds(c, bound, width) }) {
			haveTime = true
			return true
		}
		return false
	}
	step := &plan.StreamStep{Stream: stream, Outer: outer, RightOuter: rightOuter}
	var residual []expr.Expr
	var ok bool
	step.Keys, step.StreamKeys, residual, ok = b.onConditions(je.Quals, width, stream.Source, nil, timeBound)
	switch {
	case !ok:
		return nil
	case len(step.Keys) == 0:
		b.errorf(location(je.Quals), "a join needs at least one equality of a column of the inputs before %s and one of it in ON", stream.Source)
		return nil
	case !haveTime:
		b.errorf(location(je.Quals), "a join of streams needs a time bound in ON: %s.ts BETWEEN ts - INTERVAL 'a' AND ts + INTERVAL 'b', ts the event time of an input before it", stream.Source)
		return nil
	case slices.Contains(nullable, bound.LeftTime.Index):
		b.errorf(location(je.Quals), "the time bound of %s is on %s, which an outer join before it leaves NULL in the rows it writes with NULLs: bound it by the time of an input no outer join leaves NULL", stream.Source, bound.LeftTime.Name)
		return nil
	case !slices.Contains(times, bound.LeftTime.Index):
		// The watermark follows the inputs' event times: a row joined
		// so far is late, and leaves the join's state, by them.
		b.errorf(location(je.Quals), "the time bound of %s is on %s, which is no input's event time: bound it by the time of an input before it, that of its own time bound", stream.Source, bound.LeftTime.Name)
		return nil
	}
	step.Time, step.StreamTime, step.Lower, step.Upper = bound.LeftTime, bound.RightTime, bound.Lower, bound.Upper
	if step.On, ok = b.conjunction(residual, location(je.Quals)); !ok {
		return nil
	}
	j.Streams = append(j.Streams, step)
	return j
}

// streamAfterTables binds `... JOIN stream ON ...` after tables looked up
// in the rows of a join of streams: the stream is joined with the
// streams' rows, and the tables looked up in its rows after, where its
// columns come before theirs. That is the same join, as neither reads the
// other's columns: its ON may read no table's (refused), and the tables'
// lookups, bound before it, read none of its. A RIGHT or FULL JOIN, which
// keeps the stream's rows that matched none, would keep those that
// matched only rows a table then drops: refused.
func (b *binder) streamAfterTables(je *pg.JoinExpr, j *plan.Join, stream *plan.Scan, sscope *scope, outer, rightOuter bool) plan.Node {
	if rightOuter {
		b.errorf(location(je.Rarg), "%s is a stream after a table, joined by RIGHT or FULL JOIN: join it before the tables", stream.Source)
		return nil
	}
	width := len(j.Columns())
	tables := 0
	for _, l := range j.Lookups {
		tables += len(l.Table.Cols)
	}
	streams := width - tables // where the tables' columns start
	if b.streamStep(je, j, stream, sscope, outer, false) == nil {
		return nil
	}
	step := j.Streams[len(j.Streams)-1]
	readsTable := func(e expr.Expr) bool {
		return slices.ContainsFunc(expr.Columns(nil, e), func(i int) bool { return i >= streams && i < width })
	}
	// (Its time bound is on a stream's time: streamStep saw to it.)
	if slices.ContainsFunc(step.Keys, readsTable) || step.On != nil && readsTable(step.On) {
		b.errorf(location(je.Quals), "the ON of %s reads a table's column, which a stream after a table may not: join it before the tables", stream.Source)
		return nil
	}
	// Its columns go before the tables', which move after them.
	n := len(stream.Cols)
	move := func(c *expr.Column) expr.Expr {
		moved := *c
		switch {
		case c.Index >= width:
			moved.Index -= tables
		case c.Index >= streams:
			moved.Index += n
		default:
			return c
		}
		return &moved
	}
	if step.On != nil {
		step.On = expr.MapColumns(step.On, move)
	}
	for _, l := range j.Lookups {
		for i, k := range l.Keys {
			l.Keys[i] = expr.MapColumns(k, move)
		}
		if l.On != nil {
			l.On = expr.MapColumns(l.On, move)
		}
	}
	for _, s := range b.joined {
		if s != sscope && s.offset >= streams {
			s.offset += n
		}
	}
	sscope.offset = streams
	return j
}

// onConditions sorts the conditions of a join's ON, whose right input,
// source, has its columns from leftWidth: the equality keys, each a pair
// of an expression over the rows before and one over the right input's
// own; the time bound, which timeBound (nil for a table) recognises; and
// the rest. keys are a table's key columns, nil for a stream. ok is false
// after an error.
func (b *binder) onConditions(quals *pg.Node, leftWidth int, source string, keys []string, timeBound func(*pg.Node) bool) (left, right, residual []expr.Expr, ok bool) {
	for _, c := range conjuncts(quals) {
		// A condition that is neither a key nor the time bound is bound
		// again as a plain condition, which reports its errors: the
		// recognisers' own are dropped.
		var l, r expr.Expr
		// A table's key column not matched yet may be matched by an
		// expression of the columns before it.
		freeKey := func(col *expr.Column) bool {
			name := unqualified(col.Name)
			return slices.Contains(keys, name) && !slices.ContainsFunc(right, func(k expr.Expr) bool { return keyColumn(k).Name == col.Name })
		}
		var mismatch *Error
		if b.quietly(func() (ok bool) { l, r, ok = b.keyPair(c, leftWidth, freeKey, &mismatch); return ok }) {
			left = append(left, l)
			right = append(right, r)
			continue
		}
		if mismatch != nil {
			b.errs = append(b.errs, mismatch)
			return nil, nil, nil, false
		}
		if timeBound != nil && timeBound(c) {
			continue
		}
		if e := b.expr(c); e != nil {
			residual = append(residual, e)
		}
	}
	return left, right, residual, true
}

// wholeKey reports whether the right keys of a join with table source
// equate every column of its key, and reports an error at quals if not.
func (b *binder) wholeKey(quals *pg.Node, source string, keys []string, right []expr.Expr) bool {
	var got []string
	for _, k := range right {
		got = append(got, unqualified(keyColumn(k).Name))
	}
	slices.Sort(got)
	want := slices.Sorted(slices.Values(keys))
	if !slices.Equal(got, want) {
		b.errorf(location(quals), "a join with table %s matches its whole key, %v, with equalities in ON; found %v", source, want, got)
		return false
	}
	return true
}

// unqualified is a join's column name without its table's qualifier,
// which may have dots (a quoted alias); a column's name has none.
func unqualified(name string) string { return name[strings.LastIndexByte(name, '.')+1:] }

// keyColumn is the right input's column of a join key over its rows,
// which keyPair may have widened to the left's type with a cast.
func keyColumn(k expr.Expr) *expr.Column {
	if c, ok := k.(*expr.Cast); ok {
		k = c.X
	}
	return k.(*expr.Column)
}

// conjunction is the AND of conds, the rest of a join's ON at at; nil for
// none. ok is false after an error.
func (b *binder) conjunction(conds []expr.Expr, at int32) (e expr.Expr, ok bool) {
	switch len(conds) {
	case 0:
		return nil, true
	case 1:
		return conds[0], true
	}
	e, err := expr.NewLogic(false, conds...)
	if err != nil {
		b.errorf(at, "%v", err)
		return nil, false
	}
	return e, true
}

// quietly runs a recogniser of a join condition, and drops the errors it
// recorded when it did not recognise the condition.
func (b *binder) quietly(recognise func() bool) bool {
	n := len(b.errs)
	ok := recognise()
	if !ok {
		b.errs = b.errs[:n]
	}
	return ok
}

// joinSide binds one side of a join: a source, with an optional alias.
func (b *binder) joinSide(n *pg.Node) (*plan.Scan, *scope) {
	rv := n.GetRangeVar()
	if rv == nil {
		b.errorf(location(n), "each side of a join is a source, joined left to right; joins of subqueries and of joins in parentheses are not supported")
		return nil, nil
	}
	cols, ok := b.catalog[rv.Relname]
	if !ok || rv.Schemaname != "" {
		b.errorf(rv.Location, "unknown source %q (the manifest defines %s)", qualified(rv), b.sourceNames())
		return nil, nil
	}
	s := &scope{table: rv.Relname, cols: cols}
	if rv.Alias != nil {
		s.alias = rv.Alias.Aliasname
	}
	return &plan.Scan{Source: rv.Relname, Cols: cols}, s
}

// conjuncts flattens a condition's ANDs.
func conjuncts(n *pg.Node) []*pg.Node {
	if be := n.GetBoolExpr(); be != nil && be.Boolop == pg.BoolExprType_AND_EXPR {
		var out []*pg.Node
		for _, a := range be.Args {
			out = append(out, conjuncts(a)...)
		}
		return out
	}
	return []*pg.Node{n}
}

// keyPair recognises `a = b` between a left and a right column, and returns
// each side's column over its own rows.
func (b *binder) keyPair(n *pg.Node, leftWidth int, freeKey func(*expr.Column) bool, mismatch **Error) (l, r expr.Expr, ok bool) {
	a := n.GetAExpr()
	if a == nil || a.Kind != pg.A_Expr_Kind_AEXPR_OP || opName(a) != "=" {
		return nil, nil, false
	}
	if a.Lexpr.GetColumnRef() == nil || a.Rexpr.GetColumnRef() == nil {
		return b.expressionKey(a, leftWidth, freeKey, mismatch)
	}
	x, errX := b.columnRef(a.Lexpr.GetColumnRef())
	y, errY := b.columnRef(a.Rexpr.GetColumnRef())
	if errX != nil || errY != nil {
		return nil, nil, false
	}
	cx, cy := x.(*expr.Column), y.(*expr.Column)
	if cx.Index >= leftWidth {
		cx, cy = cy, cx
	}
	if cx.Index >= leftWidth || cy.Index < leftWidth {
		return nil, nil, false // both on one side: a filter
	}
	if !value.Comparable(cx.T, cy.T) {
		return nil, nil, false // bound again as a condition, which says why
	}
	right := *cy
	right.Index -= leftWidth
	if cx.T == cy.T || cx.T.Kind == value.KindNull || cy.T.Kind == value.KindNull {
		return cx, &right, true
	}
	// Numbers of two kinds or scales: a key's bytes are its value's, of
	// its type, so both widen to one type, as a comparison would. A
	// table's key keeps its own type: the stream's column must be cast.
	if freeKey(cy) {
		*mismatch = &Error{Offset: int(location(n)), Msg: fmt.Sprintf("the table's key %s is %s and %s is %s: cast %[3]s to %[2]s", cy.Name, cy.T, cx, cx.T)}
		return nil, nil, false
	}
	t, err := expr.CommonType("a join key", cx, &right)
	if err != nil {
		return nil, nil, false
	}
	return expr.Coerce(cx, t), expr.Coerce(&right, t), true
}

// expressionKey recognises a table join's key of an expression of the
// stream's columns and a key column of the table not matched yet (free),
// of one kind and scale: mod(b.auction, 10000) = s.key. The stream's rows
// look up the table by the expression's value. Any other equality is a
// condition of ON.
func (b *binder) expressionKey(a *pg.A_Expr, leftWidth int, free func(*expr.Column) bool, mismatch **Error) (l, r expr.Expr, ok bool) {
	x, errX := b.bind(a.Lexpr)
	y, errY := b.bind(a.Rexpr)
	if errX != nil || errY != nil {
		return nil, nil, false
	}
	ofStream := func(e expr.Expr) bool {
		cols := expr.Columns(nil, e)
		return len(cols) > 0 && slices.Max(cols) < leftWidth
	}
	col, isCol := y.(*expr.Column)
	if !isCol || col.Index < leftWidth {
		x, y = y, x
		col, isCol = y.(*expr.Column)
	}
	if !isCol || col.Index < leftWidth || !ofStream(x) || !free(col) {
		return nil, nil, false // bound again as a condition
	}
	if t := x.Type(); t.Kind != col.T.Kind || t.Scale != col.T.Scale {
		// The key's bytes are its value's, of its type: a value of
		// another kind or scale would match nothing.
		*mismatch = &Error{Offset: int(location(&pg.Node{Node: &pg.Node_AExpr{AExpr: a}})), Msg: fmt.Sprintf("the table's key %s is %s and %s is %s: cast the expression to %[2]s", col.Name, col.T, x, t)}
		return nil, nil, false
	}
	right := *col
	right.Index -= leftWidth
	return x, &right, true
}

// timeBounds recognises the time condition of an interval join:
// `l.ts BETWEEN r.ts - INTERVAL 'a' AND r.ts + INTERVAL 'b'`, either side
// first, and sets j's time columns and bounds.
func (b *binder) timeBounds(n *pg.Node, j *plan.Join, leftWidth int) bool {
	a := n.GetAExpr()
	if a == nil || a.Kind != pg.A_Expr_Kind_AEXPR_BETWEEN {
		return false
	}
	bounds := a.Rexpr.GetList().GetItems()
	if len(bounds) != 2 || a.Lexpr.GetColumnRef() == nil {
		return false
	}
	subj, err := b.columnRef(a.Lexpr.GetColumnRef())
	if err != nil {
		return false
	}
	lo, loOff, ok1 := b.timeBound(bounds[0])
	hi, hiOff, ok2 := b.timeBound(bounds[1])
	s := subj.(*expr.Column)
	if !ok1 || !ok2 || lo.Index != hi.Index || s.T.Kind != value.KindTimestamp || lo.T.Kind != value.KindTimestamp {
		return false
	}
	if (s.Index < leftWidth) == (lo.Index < leftWidth) {
		return false // both on one side
	}
	if loOff > hiOff {
		b.errorf(a.Location, "the lower time bound is above the upper one")
		return true // recognised, and wrong: the error stays
	}
	// s ∈ [o + loOff, o + hiOff]; the plan wants left ∈ [right - Lower, right + Upper].
	if s.Index < leftWidth {
		j.LeftTime, j.RightTime, j.Lower, j.Upper = s, lo, -loOff, hiOff
	} else {
		// right ∈ [left + loOff, left + hiOff] ⟺ left ∈ [right - hiOff, right - loOff]
		j.LeftTime, j.RightTime, j.Lower, j.Upper = lo, s, hiOff, -loOff
	}
	right := *j.RightTime
	right.Index -= leftWidth
	j.RightTime = &right
	return true
}

// timeBound reads `col`, `col + INTERVAL 'd'` or `col - INTERVAL 'd'`.
func (b *binder) timeBound(n *pg.Node) (*expr.Column, int64, bool) {
	if cr := n.GetColumnRef(); cr != nil {
		e, err := b.columnRef(cr)
		if err != nil {
			return nil, 0, false
		}
		return e.(*expr.Column), 0, true
	}
	a := n.GetAExpr()
	if a == nil || a.Kind != pg.A_Expr_Kind_AEXPR_OP || a.Lexpr.GetColumnRef() == nil {
		return nil, 0, false
	}
	sign := int64(1)
	switch opName(a) {
	case "+":
	case "-":
		sign = -1
	default:
		return nil, 0, false
	}
	e, err := b.columnRef(a.Lexpr.GetColumnRef())
	if err != nil {
		return nil, 0, false
	}
	d, ok := b.positiveInterval(a.Rexpr)
	if !ok {
		return nil, 0, false
	}
	return e.(*expr.Column), sign * d, true
}

// windowOverJoin binds the windowing function over a WITH query of a join
// (b.joinWindow) over j's rows. Its time column must be one the watermark
// follows: the time bound's column of either stream of an interval join,
// the AS OF column of a join as of a time, a column of the stream of a
// table join.
func (b *binder) windowOverJoin(j *plan.Join) *plan.Window {
	rf := b.joinWindow
	b.joinWindow = nil
	fc, kind, _, ok := b.windowCall(rf)
	if !ok {
		return nil
	}
	w := b.windowArgs(fc, kind, "the join")
	if w == nil {
		return nil
	}
	if w.ProcTime {
		b.errorf(location(fc.Args[1]), "a window over a join is over the event time of one of its streams; processing-time windows of a join's rows are not supported yet")
		return nil
	}
	if !b.joinTime(j, w.Time, location(fc.Args[1]), "a window") {
		return nil
	}
	return w
}

// joinTime reports whether t, the time column of a window or OVER (what)
// over j's rows, at at, is one the watermark follows: the time bound's
// column of either stream of an interval join, the AS OF column of a join
// as of a time, a column of the stream of a table join.
func (b *binder) joinTime(j *plan.Join, t *expr.Column, at int32, what string) bool {
	leftWidth := len(j.Left.Cols)
	var times []*expr.Column
	switch {
	case j.AsOf != nil:
		times = []*expr.Column{j.AsOf}
	case j.Kind == plan.TableJoin:
		if t.Index < leftWidth {
			return true
		}
		b.errorf(at, "%s over a join with a table is over the time of the stream, %s; %s is the table's", what, j.Left.Source, t.Name)
		return false
	case j.Outer && j.RightOuter:
		b.errorf(at, "%s over a FULL JOIN's rows is not supported: each stream's time is NULL in the other's rows that matched nothing, and the watermark follows the two", what)
		return false
	case slices.ContainsFunc(j.Streams, func(s *plan.StreamStep) bool { return s.RightOuter }):
		b.errorf(at, "%s over a join with a stream joined by RIGHT or FULL JOIN is not supported: the times of the inputs before it are NULL in its rows that matched nothing", what)
		return false
	case j.Outer:
		// The right's time of a left row that matched nothing is NULL.
		times = []*expr.Column{j.LeftTime}
	case j.RightOuter:
		right := *j.RightTime
		right.Index += leftWidth
		times = []*expr.Column{&right}
	default:
		right := *j.RightTime
		right.Index += leftWidth
		times = []*expr.Column{j.LeftTime, &right}
	}
	var names []string
	for _, c := range times {
		if c.Index == t.Index {
			return true
		}
		names = append(names, c.Name)
	}
	b.errorf(at, "%s over a join is over the event time of one of its streams, which the watermark follows: %s, not %s", what, strings.Join(names, " or "), t.Name)
	return false
}
