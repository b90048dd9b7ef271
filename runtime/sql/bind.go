package sql

import (
	"errors"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"

	"github.com/sluice-dev/sluice/runtime/expr"
	"github.com/sluice-dev/sluice/runtime/format"
	"github.com/sluice-dev/sluice/runtime/value"
)

// aggregates are the aggregate functions' names.
var aggregates = map[string]bool{
	"count": true, "sum": true, "avg": true, "min": true, "max": true, "stddev": true,
	"first_value": true, "last_value": true, "stddev_samp": true, "stddev_pop": true,
}

// expr binds a value expression; on error it records it and returns nil.
func (b *binder) expr(n *pg.Node) expr.Expr {
	e, err := b.bind(n)
	if err != nil {
		var te *expr.TypeError
		var ee *expr.EvalError
		switch {
		case errors.As(err, &te), errors.As(err, &ee):
			b.errorf(location(n), "%v", err)
		case errors.Is(err, errReported):
		default:
			b.errorf(location(n), "%v", err)
		}
		return nil
	}
	return e
}

// errReported says the error was recorded where it was found, with a more
// precise position.
var errReported = errors.New("reported")

func (b *binder) fail(loc int32, format string, args ...any) (expr.Expr, error) {
	b.errorf(loc, format, args...)
	return nil, errReported
}

func (b *binder) bind(n *pg.Node) (expr.Expr, error) {
	if e, ok := b.groupedExpr(n); ok {
		return e, nil
	}
	switch {
	case n.GetColumnRef() != nil:
		return b.columnRef(n.GetColumnRef())
	case n.GetAConst() != nil:
		return b.constant(n.GetAConst())
	case n.GetAExpr() != nil:
		return b.aExpr(n.GetAExpr())
	case n.GetBoolExpr() != nil:
		return b.boolExpr(n.GetBoolExpr())
	case n.GetNullTest() != nil:
		t := n.GetNullTest()
		x, err := b.bind(t.Arg)
		if err != nil {
			return nil, err
		}
		return expr.NewIsNull(x, t.Nulltesttype == pg.NullTestType_IS_NOT_NULL)
	case n.GetBooleanTest() != nil:
		return b.booleanTest(n.GetBooleanTest())
	case n.GetCaseExpr() != nil:
		return b.caseExpr(n.GetCaseExpr())
	case n.GetTypeCast() != nil:
		return b.typeCast(n.GetTypeCast())
	case n.GetFuncCall() != nil:
		return b.funcCall(n.GetFuncCall())
	case n.GetCoalesceExpr() != nil:
		args, err := b.bindList(n.GetCoalesceExpr().Args)
		if err != nil {
			return nil, err
		}
		return expr.Call("coalesce", b.settle(args))
	case n.GetMinMaxExpr() != nil:
		m := n.GetMinMaxExpr()
		args, err := b.bindList(m.Args)
		if err != nil {
			return nil, err
		}
		name := "least"
		if m.Op == pg.MinMaxOp_IS_GREATEST {
			name = "greatest"
		}
		return expr.Call(name, b.settle(args))
	case n.GetSqlvalueFunction() != nil:
		switch n.GetSqlvalueFunction().Op {
		case pg.SQLValueFunctionOp_SVFOP_CURRENT_TIMESTAMP, pg.SQLValueFunctionOp_SVFOP_LOCALTIMESTAMP,
			pg.SQLValueFunctionOp_SVFOP_CURRENT_TIMESTAMP_N, pg.SQLValueFunctionOp_SVFOP_LOCALTIMESTAMP_N:
			return &expr.Now{}, nil
		}
		return b.fail(location(n), "only CURRENT_TIMESTAMP and LOCALTIMESTAMP are supported of the SQL value functions")
	case n.GetSubLink() != nil:
		return b.fail(location(n), "subqueries are not supported")
	case n.GetAIndirection() != nil, n.GetAArrayExpr() != nil:
		return b.fail(location(n), "arrays are not supported")
	case n.GetParamRef() != nil:
		return b.fail(location(n), "parameters ($1) are not supported")
	}
	return b.fail(location(n), "unsupported expression")
}

func (b *binder) bindList(nodes []*pg.Node) ([]expr.Expr, error) {
	out := make([]expr.Expr, 0, len(nodes))
	var firstErr error
	for _, n := range nodes {
		e, err := b.bind(n)
		if err != nil {
			if !errors.Is(err, errReported) {
				b.errorf(location(n), "%v", err)
			}
			firstErr = errReported
			continue
		}
		out = append(out, e)
	}
	return out, firstErr
}

func (b *binder) columnRef(cr *pg.ColumnRef) (expr.Expr, error) {
	if isStar(cr) {
		return b.fail(cr.Location, "* is allowed only as a whole select item")
	}
	if b.group != nil {
		return b.groupedColumn(cr)
	}
	var qual, name string
	switch len(cr.Fields) {
	case 1:
		name = cr.Fields[0].GetString_().GetSval()
	case 2:
		qual, name = cr.Fields[0].GetString_().GetSval(), cr.Fields[1].GetString_().GetSval()
	default:
		return b.fail(cr.Location, "column reference has too many parts")
	}
	scopes := b.scopes()
	if qual != "" {
		var in []*scope
		for _, s := range scopes {
			if s.names(qual) {
				in = append(in, s)
			}
		}
		if len(in) == 0 {
			return b.fail(cr.Location, "unknown table %q in column reference %s.%s", qual, qual, name)
		}
		scopes = in
	}
	var found *expr.Column
	var foundIn *scope
	for _, s := range scopes {
		for i, c := range s.cols {
			if c.Name != name {
				continue
			}
			switch {
			case foundIn == nil:
			case foundIn == s:
				return b.fail(cr.Location, "column %q is ambiguous: %s has more than one column of that name", name, s.table)
			case foundIn.table == s.table:
				return b.fail(cr.Location, "column %q is in both inputs of table %s; qualify it by an alias, as %s.%s", name, s.table, s.alias, name)
			default:
				return b.fail(cr.Location, "column %q is in both %s and %s; qualify it, as %s.%s", name, b.refName(foundIn), b.refName(s), b.refName(s), name)
			}
			foundIn = s
			qualified := name
			if b.joined != nil {
				qualified = s.qualifier() + "." + name
			}
			found = &expr.Column{Index: s.offset + i, Name: qualified, T: c.Type}
		}
	}
	if found != nil {
		return found, nil
	}
	var tables []string
	for _, s := range b.scopes() {
		tables = append(tables, s.table)
	}
	table := strings.Join(tables, " or ")
	return b.fail(cr.Location, "unknown column %q in %s (it has %s)", name, table, b.columnNames())
}

// scopes are the tables a column may be of: the query's first, and a
// join's others.
func (b *binder) scopes() []*scope { return append([]*scope{&b.scope}, b.joined...) }

func (b *binder) columnNames() string {
	var names []string
	for _, c := range b.scope.cols {
		names = append(names, c.Name)
	}
	for _, s := range b.joined {
		for _, c := range s.cols {
			names = append(names, b.refName(s)+"."+c.Name)
		}
	}
	return strings.Join(names, ", ")
}

// settle gives untyped literals among args the type of the first typed one.
func (b *binder) settle(args []expr.Expr) []expr.Expr {
	var target value.Type
	for _, a := range args {
		if !b.untyped[a] && a.Type().Kind != value.KindNull {
			target = a.Type()
			break
		}
	}
	out := make([]expr.Expr, len(args))
	for i, a := range args {
		out[i] = a
		if b.untyped[a] && target.Kind != value.KindNull && target.Kind != value.KindString {
			if c, err := b.literalAs(a, target); err == nil {
				out[i] = c
			}
		}
	}
	return out
}

// pair coerces an untyped literal on one side to the other side's type.
func (b *binder) pair(l, r expr.Expr) (expr.Expr, expr.Expr, error) {
	var err error
	switch {
	case b.untyped[l] && !b.untyped[r] && r.Type().Kind != value.KindString && r.Type().Kind != value.KindNull:
		l, err = b.literalAs(l, r.Type())
	case b.untyped[r] && !b.untyped[l] && l.Type().Kind != value.KindString && l.Type().Kind != value.KindNull:
		r, err = b.literalAs(r, l.Type())
	}
	return l, r, err
}

// literalAs converts an untyped string literal to t at plan time.
func (b *binder) literalAs(e expr.Expr, t value.Type) (expr.Expr, error) {
	s := e.(*expr.Const).V.Str()
	if t.Kind == value.KindInterval {
		d, err := parseInterval(s, 0)
		if err != nil {
			return nil, err
		}
		return expr.NewConst(value.IntervalValue(d)), nil
	}
	v, err := format.ParseText(t, []byte(strings.TrimSpace(s)))
	if err != nil {
		return nil, &expr.TypeError{Msg: "literal '" + s + "' is not a valid " + t.String() + ": " + err.Error()}
	}
	return &expr.Const{V: v, T: t}, nil
}

var arithOps = map[string]expr.ArithOp{"+": expr.Add, "-": expr.Sub, "*": expr.Mul, "/": expr.Div, "%": expr.Mod}

var cmpOps = map[string]expr.CmpOp{"=": expr.Eq, "<>": expr.Ne, "!=": expr.Ne, "<": expr.Lt, "<=": expr.Le, ">": expr.Gt, ">=": expr.Ge}

func (b *binder) funcCall(fc *pg.FuncCall) (expr.Expr, error) {
	name := fc.Funcname[len(fc.Funcname)-1].GetString_().GetSval()
	if len(fc.Funcname) == 2 && fc.Funcname[0].GetString_().GetSval() != "pg_catalog" {
		return b.fail(fc.Location, "unknown function %s.%s", fc.Funcname[0].GetString_().GetSval(), name)
	}
	if fc.Over != nil {
		return b.overCall(fc, name)
	}
	if aggregates[name] || fc.AggStar {
		if b.group == nil {
			return b.fail(fc.Location, "aggregate function %s is allowed only in the select list and HAVING of a GROUP BY query, or with OVER", name)
		}
		return b.aggregateCall(fc, name)
	}
	if fc.AggFilter != nil || len(fc.AggOrder) > 0 || fc.AggDistinct {
		return b.fail(fc.Location, "%s is not an aggregate; FILTER, ORDER BY and DISTINCT do not apply", name)
	}
	args, err := b.bindList(fc.Args)
	if err != nil {
		return nil, err
	}
	// Untyped literals in calls are strings (date_trunc('hour', ts)), except
	// where a typed argument beside them says otherwise.
	switch name {
	case "coalesce", "greatest", "least", "nullif":
		args = b.settle(args)
	}
	for _, a := range args {
		delete(b.untyped, a)
	}
	if name == "position" && len(args) == 2 && len(fc.Args) == 2 {
		// POSITION(sub IN s) parses as position(s, sub): strpos has the same order.
		name = "strpos"
	}
	e, err := expr.Call(name, args)
	if err != nil {
		return b.fail(fc.Location, "%v", err)
	}
	return e, nil
}

// Interval field masks in PostgreSQL's typmod for INTERVAL '15' MINUTE.
const (
	maskMonth  = 1 << 1
	maskYear   = 1 << 2
	maskDay    = 1 << 3
	maskHour   = 1 << 10
	maskMinute = 1 << 11
	maskSecond = 1 << 12
	// intervalFullRange is the mask of an INTERVAL without fields.
	intervalFullRange = 0x7FFF
)

var intervalUnits = map[string]int64{
	"microsecond": 1e3, "microseconds": 1e3, "us": 1e3,
	"millisecond": 1e6, "milliseconds": 1e6, "ms": 1e6,
	"second": 1e9, "seconds": 1e9, "sec": 1e9, "secs": 1e9, "s": 1e9,
	"minute": 60e9, "minutes": 60e9, "min": 60e9, "mins": 60e9, "m": 60e9,
	"hour": 3600e9, "hours": 3600e9, "h": 3600e9,
	"day": 86400e9, "days": 86400e9, "d": 86400e9,
	"week": 7 * 86400e9, "weeks": 7 * 86400e9,
}

// maxIntervalDays bounds an interval literal, so that its nanoseconds fit an
// int64 with room to spare.
const maxIntervalDays = 100_000
