package sql

import (
	"errors"
	"fmt"
	"math"
	"strconv"
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
	scopes := []*scope{&b.scope}
	if b.right != nil {
		scopes = append(scopes, b.right)
	}
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
			switch foundIn {
			case nil:
			case s:
				return b.fail(cr.Location, "column %q is ambiguous: %s has more than one column of that name", name, s.table)
			default:
				return b.fail(cr.Location, "column %q is in both %s and %s; qualify it, as %s.%s", name, b.scope.table, b.right.table, b.right.table, name)
			}
			foundIn = s
			qualified := name
			if b.right != nil {
				qualified = s.table + "." + name
			}
			found = &expr.Column{Index: s.offset + i, Name: qualified, T: c.Type}
		}
	}
	if found != nil {
		return found, nil
	}
	table := b.scope.table
	if b.right != nil {
		table += " or " + b.right.table
	}
	return b.fail(cr.Location, "unknown column %q in %s (it has %s)", name, table, b.columnNames())
}

func (b *binder) columnNames() string {
	var names []string
	for _, c := range b.scope.cols {
		names = append(names, c.Name)
	}
	if b.right != nil {
		for _, c := range b.right.cols {
			names = append(names, b.right.table+"."+c.Name)
		}
	}
	return strings.Join(names, ", ")
}

func (b *binder) constant(c *pg.A_Const) (expr.Expr, error) {
	switch {
	case c.Isnull:
		return &expr.Const{}, nil
	case c.GetIval() != nil:
		return expr.NewConst(value.IntValue(int64(c.GetIval().Ival))), nil
	case c.GetFval() != nil:
		s := c.GetFval().Fval
		if !strings.ContainsAny(s, ".eE") {
			if i, err := strconv.ParseInt(s, 10, 64); err == nil {
				return expr.NewConst(value.IntValue(i)), nil
			}
		}
		return decimalLiteral(s)
	case c.GetBoolval() != nil:
		return expr.NewConst(value.BoolValue(c.GetBoolval().Boolval)), nil
	case c.GetSval() != nil:
		e := expr.NewConst(value.StringValue(c.GetSval().Sval))
		if b.untyped == nil {
			b.untyped = map[expr.Expr]bool{}
		}
		b.untyped[e] = true
		return e, nil
	}
	return b.fail(c.Location, "unsupported constant")
}

// decimalLiteral types a numeric literal with a fraction as an exact decimal
// with the literal's own scale, as PostgreSQL's numeric does.
func decimalLiteral(s string) (expr.Expr, error) {
	// The scale is the digits after the point, less the exponent: 1.5e-2 is
	// 0.015, of scale 3; 2.5e1 is 25, of scale 0.
	mantissa, exp := s, 0
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mantissa = s[:i]
		e, err := strconv.Atoi(s[i+1:])
		if err != nil {
			return nil, fmt.Errorf("invalid numeric literal %s", s)
		}
		exp = e
	}
	scale := 0
	if i := strings.IndexByte(mantissa, '.'); i >= 0 {
		scale = len(mantissa) - i - 1
	}
	scale = max(scale-exp, 0)
	if scale > value.MaxDecimalPrecision {
		scale = value.MaxDecimalPrecision
	}
	u, err := value.ParseDecimal([]byte(s), uint8(scale))
	if err != nil {
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil {
			return nil, err
		}
		return expr.NewConst(value.DoubleValue(f)), nil
	}
	return expr.NewConst(value.DecimalValue(u, uint8(scale))), nil
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

func opName(a *pg.A_Expr) string {
	if len(a.Name) == 0 {
		return ""
	}
	return a.Name[len(a.Name)-1].GetString_().GetSval()
}

func (b *binder) aExpr(a *pg.A_Expr) (expr.Expr, error) {
	op := opName(a)
	switch a.Kind {
	case pg.A_Expr_Kind_AEXPR_OP:
		if a.Lexpr == nil {
			x, err := b.bind(a.Rexpr)
			if err != nil {
				return nil, err
			}
			switch op {
			case "-":
				return expr.NewNegate(x)
			case "+":
				return x, nil
			}
			return b.fail(a.Location, "unsupported prefix operator %s", op)
		}
		if op == "||" {
			// Concatenation takes the text of any type: no literal is coerced.
			args, err := b.bindList([]*pg.Node{a.Lexpr, a.Rexpr})
			if err != nil {
				return nil, err
			}
			for _, e := range args {
				delete(b.untyped, e)
			}
			return expr.Fold(&expr.Concat{Args: args, Strict: true})
		}
		l, r, err := b.operands(a)
		if err != nil {
			return nil, err
		}
		if aop, ok := arithOps[op]; ok {
			return expr.NewArith(aop, l, r)
		}
		if cop, ok := cmpOps[op]; ok {
			return expr.NewCompare(cop, l, r)
		}
		switch op {
		case "~~", "!~~", "~~*", "!~~*":
			return expr.NewLike(l, r, op[0] == '!', strings.HasSuffix(op, "*"))
		}
		return b.fail(a.Location, "unsupported operator %s", op)
	case pg.A_Expr_Kind_AEXPR_LIKE, pg.A_Expr_Kind_AEXPR_ILIKE:
		l, r, err := b.operands(a)
		if err != nil {
			return nil, err
		}
		return expr.NewLike(l, r, strings.HasPrefix(op, "!"), a.Kind == pg.A_Expr_Kind_AEXPR_ILIKE)
	case pg.A_Expr_Kind_AEXPR_IN:
		x, err := b.bind(a.Lexpr)
		if err != nil {
			return nil, err
		}
		items := a.Rexpr.GetList().GetItems()
		if items == nil {
			return b.fail(a.Location, "IN needs a list of values; subqueries are not supported")
		}
		list, err := b.bindList(items)
		if err != nil {
			return nil, err
		}
		for i := range list {
			if _, list[i], err = b.pair(x, list[i]); err != nil {
				return nil, err
			}
		}
		return expr.NewIn(x, list, op == "<>")
	case pg.A_Expr_Kind_AEXPR_BETWEEN, pg.A_Expr_Kind_AEXPR_NOT_BETWEEN,
		pg.A_Expr_Kind_AEXPR_BETWEEN_SYM, pg.A_Expr_Kind_AEXPR_NOT_BETWEEN_SYM:
		return b.between(a)
	case pg.A_Expr_Kind_AEXPR_DISTINCT, pg.A_Expr_Kind_AEXPR_NOT_DISTINCT:
		l, r, err := b.operands(a)
		if err != nil {
			return nil, err
		}
		return expr.NewDistinct(l, r, a.Kind == pg.A_Expr_Kind_AEXPR_NOT_DISTINCT)
	case pg.A_Expr_Kind_AEXPR_NULLIF:
		l, r, err := b.operands(a)
		if err != nil {
			return nil, err
		}
		return expr.Call("nullif", []expr.Expr{l, r})
	}
	return b.fail(a.Location, "unsupported operator form %s", strings.TrimPrefix(a.Kind.String(), "AEXPR_"))
}

// operands binds both sides of a binary operator, an untyped literal on one
// side taking the other side's type.
func (b *binder) operands(a *pg.A_Expr) (expr.Expr, expr.Expr, error) {
	l, err := b.bind(a.Lexpr)
	if err != nil {
		return nil, nil, err
	}
	r, err := b.bind(a.Rexpr)
	if err != nil {
		return nil, nil, err
	}
	return b.pair(l, r)
}

func (b *binder) between(a *pg.A_Expr) (expr.Expr, error) {
	x, err := b.bind(a.Lexpr)
	if err != nil {
		return nil, err
	}
	bounds, err := b.bindList(a.Rexpr.GetList().GetItems())
	if err != nil {
		return nil, err
	}
	if len(bounds) != 2 {
		return b.fail(a.Location, "BETWEEN needs two bounds")
	}
	lo, hi := bounds[0], bounds[1]
	if _, lo, err = b.pair(x, lo); err != nil {
		return nil, err
	}
	if _, hi, err = b.pair(x, hi); err != nil {
		return nil, err
	}
	within := func(lo, hi expr.Expr) (expr.Expr, error) {
		ge, err := expr.NewCompare(expr.Ge, x, lo)
		if err != nil {
			return nil, err
		}
		le, err := expr.NewCompare(expr.Le, x, hi)
		if err != nil {
			return nil, err
		}
		return expr.NewLogic(false, ge, le)
	}
	e, err := within(lo, hi)
	if err != nil {
		return nil, err
	}
	if a.Kind == pg.A_Expr_Kind_AEXPR_BETWEEN_SYM || a.Kind == pg.A_Expr_Kind_AEXPR_NOT_BETWEEN_SYM {
		swapped, err := within(hi, lo)
		if err != nil {
			return nil, err
		}
		if e, err = expr.NewLogic(true, e, swapped); err != nil {
			return nil, err
		}
	}
	if a.Kind == pg.A_Expr_Kind_AEXPR_NOT_BETWEEN || a.Kind == pg.A_Expr_Kind_AEXPR_NOT_BETWEEN_SYM {
		return expr.NewNot(e)
	}
	return e, nil
}

func (b *binder) boolExpr(be *pg.BoolExpr) (expr.Expr, error) {
	args, err := b.bindList(be.Args)
	if err != nil {
		return nil, err
	}
	switch be.Boolop {
	case pg.BoolExprType_NOT_EXPR:
		return expr.NewNot(args[0])
	case pg.BoolExprType_OR_EXPR:
		return expr.NewLogic(true, args...)
	}
	return expr.NewLogic(false, args...)
}

func (b *binder) booleanTest(t *pg.BooleanTest) (expr.Expr, error) {
	x, err := b.bind(t.Arg)
	if err != nil {
		return nil, err
	}
	switch t.Booltesttype {
	case pg.BoolTestType_IS_TRUE:
		return expr.NewBoolTest(x, true, false)
	case pg.BoolTestType_IS_NOT_TRUE:
		return expr.NewBoolTest(x, true, true)
	case pg.BoolTestType_IS_FALSE:
		return expr.NewBoolTest(x, false, false)
	case pg.BoolTestType_IS_NOT_FALSE:
		return expr.NewBoolTest(x, false, true)
	case pg.BoolTestType_IS_UNKNOWN:
		return expr.NewIsNull(x, false)
	}
	return expr.NewIsNull(x, true)
}

func (b *binder) caseExpr(c *pg.CaseExpr) (expr.Expr, error) {
	var subject expr.Expr
	if c.Arg != nil {
		var err error
		if subject, err = b.bind(c.Arg); err != nil {
			return nil, err
		}
	}
	var whens []expr.When
	var thens []expr.Expr
	for _, n := range c.Args {
		w := n.GetCaseWhen()
		cond, err := b.bind(w.Expr)
		if err != nil {
			return nil, err
		}
		if subject != nil {
			s, v, err := b.pair(subject, cond)
			if err != nil {
				return nil, err
			}
			if cond, err = expr.NewCompare(expr.Eq, s, v); err != nil {
				return nil, err
			}
		}
		then, err := b.bind(w.Result)
		if err != nil {
			return nil, err
		}
		whens = append(whens, expr.When{Cond: cond, Then: then})
		thens = append(thens, then)
	}
	var els expr.Expr
	if c.Defresult != nil {
		var err error
		if els, err = b.bind(c.Defresult); err != nil {
			return nil, err
		}
		thens = append(thens, els)
	}
	settled := b.settle(thens)
	for i := range whens {
		whens[i].Then = settled[i]
	}
	if els != nil {
		els = settled[len(settled)-1]
	}
	return expr.NewCase(whens, els)
}

func (b *binder) typeCast(tc *pg.TypeCast) (expr.Expr, error) {
	t, mask, err := b.typeName(tc.TypeName)
	if err != nil {
		return nil, err
	}
	x, err := b.bind(tc.Arg)
	if err != nil {
		return nil, err
	}
	if t.Kind == value.KindInterval {
		c, ok := x.(*expr.Const)
		if !ok || c.V.Kind() != value.KindString {
			return b.fail(tc.Location, "INTERVAL needs a constant string, e.g. INTERVAL '15' MINUTE")
		}
		d, err := parseInterval(c.V.Str(), mask)
		if err != nil {
			return b.fail(location(tc.Arg), "%v", err)
		}
		return expr.NewConst(value.IntervalValue(d)), nil
	}
	if b.untyped[x] {
		delete(b.untyped, x)
	}
	return expr.NewCast(x, t)
}

// typeName maps a SQL type name to a value type; for INTERVAL it also returns
// the field mask of forms like INTERVAL '15' MINUTE.
func (b *binder) typeName(tn *pg.TypeName) (value.Type, int32, error) {
	name := tn.Names[len(tn.Names)-1].GetString_().GetSval()
	var mods []int64
	for _, m := range tn.Typmods {
		c := m.GetAConst()
		if c == nil || c.GetIval() == nil {
			_, err := b.fail(tn.Location, "type modifiers must be integer constants")
			return value.Type{}, 0, err
		}
		mods = append(mods, int64(c.GetIval().Ival))
	}
	if len(tn.ArrayBounds) > 0 {
		_, err := b.fail(tn.Location, "array types are not supported")
		return value.Type{}, 0, err
	}
	switch name {
	case "int2", "int4", "int8", "integer", "bigint", "smallint":
		return value.Int, 0, nil
	case "float4", "float8", "real":
		return value.Double, 0, nil
	case "numeric", "decimal":
		p, s := int64(value.MaxDecimalPrecision), int64(0)
		if len(mods) > 0 {
			p = mods[0]
		}
		if len(mods) > 1 {
			s = mods[1]
		}
		t, err := value.DecimalType(int(p), int(s))
		if err != nil {
			_, err = b.fail(tn.Location, "%v", err)
		}
		return t, 0, err
	case "text", "varchar", "bpchar", "char", "string":
		return value.String, 0, nil
	case "bool", "boolean":
		return value.Bool, 0, nil
	case "timestamp", "timestamptz":
		return value.Timestamp, 0, nil
	case "interval":
		var mask int32
		if len(mods) > 0 {
			mask = int32(mods[0])
		}
		return value.Interval, mask, nil
	}
	t, err := value.ParseType(name)
	if err != nil {
		_, err = b.fail(tn.Location, "unsupported type %s", name)
	}
	return t, 0, err
}

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
			return b.fail(fc.Location, "aggregate function %s is allowed only in the select list and HAVING of a windowed GROUP BY query, or with OVER", name)
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

// parseInterval reads '15 minutes', '1 hour 30 minutes', '1.5 hours',
// 'hh:mm:ss' or, with a field mask, a bare number of that field's unit.
// Months and years have no fixed length and are not supported.
func parseInterval(s string, mask int32) (int64, error) {
	if mask&(maskMonth|maskYear) != 0 && mask != intervalFullRange {
		return 0, errors.New("interval months and years have no fixed length; use days")
	}
	fields := strings.Fields(strings.ToLower(s))
	if len(fields) == 0 {
		return 0, errors.New("empty interval")
	}
	if len(fields) == 1 && strings.Count(fields[0], ":") == 2 {
		var h, m int64
		var sec float64
		parts := strings.Split(fields[0], ":")
		var err1, err2, err3 error
		h, err1 = strconv.ParseInt(parts[0], 10, 64)
		m, err2 = strconv.ParseInt(parts[1], 10, 64)
		sec, err3 = strconv.ParseFloat(parts[2], 64)
		if err1 != nil || err2 != nil || err3 != nil {
			return 0, errors.New("invalid interval " + strconv.Quote(s))
		}
		return intervalNanos(s, float64(h)*3600e9+float64(m)*60e9+sec*1e9)
	}
	if len(fields) == 1 {
		unit := int64(0)
		switch {
		case mask&maskSecond != 0:
			unit = 1e9
		case mask&maskMinute != 0:
			unit = 60e9
		case mask&maskHour != 0:
			unit = 3600e9
		case mask&maskDay != 0:
			unit = 86400e9
		}
		if unit != 0 {
			f, err := strconv.ParseFloat(fields[0], 64)
			if err != nil {
				return 0, errors.New("invalid interval " + strconv.Quote(s))
			}
			return intervalNanos(s, f*float64(unit))
		}
	}
	if len(fields)%2 != 0 {
		return 0, errors.New("invalid interval " + strconv.Quote(s) + ": want pairs of number and unit, e.g. '15 minutes'")
	}
	var total float64
	for i := 0; i < len(fields); i += 2 {
		f, err := strconv.ParseFloat(fields[i], 64)
		if err != nil {
			return 0, errors.New("invalid interval " + strconv.Quote(s) + ": " + strconv.Quote(fields[i]) + " is not a number")
		}
		unit, ok := intervalUnits[fields[i+1]]
		if !ok {
			if strings.HasPrefix(fields[i+1], "month") || strings.HasPrefix(fields[i+1], "year") {
				return 0, errors.New("interval months and years have no fixed length; use days")
			}
			return 0, errors.New("invalid interval unit " + strconv.Quote(fields[i+1]))
		}
		total += f * float64(unit)
	}
	return intervalNanos(s, total)
}

// maxIntervalDays bounds an interval literal, so that its nanoseconds fit an
// int64 with room to spare.
const maxIntervalDays = 100_000

// intervalNanos rounds an interval computed in floating point to whole
// nanoseconds, refusing what is not a number or beyond ±maxIntervalDays.
func intervalNanos(s string, ns float64) (int64, error) {
	if math.IsNaN(ns) || math.Abs(ns) > maxIntervalDays*86400e9 {
		return 0, fmt.Errorf("interval %q is beyond the ±%d days an interval may span", s, maxIntervalDays)
	}
	return int64(math.Round(ns)), nil
}
