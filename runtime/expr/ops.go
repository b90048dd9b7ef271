package expr

import (
	"errors"
	"math"

	"github.com/sluice-dev/sluice/runtime/value"
)

// ArithOp is an arithmetic operator.
type ArithOp uint8

// The arithmetic operators.
const (
	Add ArithOp = iota
	Sub
	Mul
	Div
	Mod
)

var arithNames = [...]string{Add: "+", Sub: "-", Mul: "*", Div: "/", Mod: "%"}

func (op ArithOp) String() string { return arithNames[op] }

// Arith is a binary arithmetic expression. Its operands have been promoted to
// one kind: int, double, decimal, or timestamp and interval arithmetic.
type Arith struct {
	Op   ArithOp
	L, R Expr
	T    value.Type
	mode arithMode
}

type arithMode uint8

const (
	arithInt arithMode = iota
	arithDouble
	arithDecimal
	arithTimeInterval  // timestamp ± interval, interval ± interval
	arithTimeDiff      // timestamp - timestamp
	arithIntervalScale // interval * or / number
)

var errIntOverflow = errors.New("int out of range")

// NewArith type-checks l op r. Int op int is int (division truncates, as in
// PostgreSQL); a double makes it double; otherwise a decimal makes it decimal,
// exactly. Decimal results have precision 18 and scale max(sl,sr) for + and -,
// sl+sr (at most 18) for *, and max(6,sl,sr) for / and %, rounding half away
// from zero; a result that does not fit is an evaluation error.
func NewArith(op ArithOp, l, r Expr) (Expr, error) {
	lt, rt := l.Type(), r.Type()
	if lt.Kind == value.KindNull {
		lt = rt
	}
	if rt.Kind == value.KindNull {
		rt = lt
	}
	a := &Arith{Op: op, L: l, R: r}
	switch {
	case lt.Numeric() && rt.Numeric():
		switch {
		case lt.Kind == value.KindDouble || rt.Kind == value.KindDouble:
			a.mode, a.T = arithDouble, value.Double
		case lt.Kind == value.KindInt && rt.Kind == value.KindInt:
			a.mode, a.T = arithInt, value.Int
		default:
			ls, rs := int(lt.Scale), int(rt.Scale)
			var s int
			switch op {
			case Add, Sub:
				s = max(ls, rs)
			case Mul:
				s = min(ls+rs, value.MaxDecimalPrecision)
			default:
				s = max(6, ls, rs)
			}
			a.mode, a.T = arithDecimal, value.Decimal(value.MaxDecimalPrecision, s)
		}
	case lt.Kind == value.KindTimestamp && rt.Kind == value.KindInterval && (op == Add || op == Sub),
		lt.Kind == value.KindInterval && rt.Kind == value.KindTimestamp && op == Add:
		a.mode, a.T = arithTimeInterval, value.Timestamp
	case lt.Kind == value.KindInterval && rt.Kind == value.KindInterval && (op == Add || op == Sub):
		a.mode, a.T = arithTimeInterval, value.Interval
	case lt.Kind == value.KindTimestamp && rt.Kind == value.KindTimestamp && op == Sub:
		a.mode, a.T = arithTimeDiff, value.Interval
	case lt.Kind == value.KindInterval && rt.Numeric() && (op == Mul || op == Div):
		a.mode, a.T = arithIntervalScale, value.Interval
	default:
		return nil, typeErrorf("operator %s does not apply to %s and %s", op, lt, rt)
	}
	return Fold(a)
}

// Type implements Expr.
func (a *Arith) Type() value.Type { return a.T }

func (a *Arith) String() string {
	return "(" + a.L.String() + " " + a.Op.String() + " " + a.R.String() + ")"
}

func (a *Arith) operands() []Expr { return []Expr{a.L, a.R} }

// Eval implements Expr.
func (a *Arith) Eval(row value.Row) (value.Value, error) {
	l, err := a.L.Eval(row)
	if err != nil || l.IsNull() {
		return value.Value{}, err
	}
	r, err := a.R.Eval(row)
	if err != nil || r.IsNull() {
		return value.Value{}, err
	}
	v, err := a.eval(l, r)
	if err != nil {
		return value.Value{}, evalErr(a, err)
	}
	return v, nil
}

func (a *Arith) eval(l, r value.Value) (value.Value, error) {
	switch a.mode {
	case arithInt:
		return intArith(a.Op, l.Int(), r.Int())
	case arithDouble:
		return doubleArith(a.Op, l.Float(), r.Float())
	case arithDecimal:
		return decimalArith(a.Op, asDecimal(l), asDecimal(r), a.T.Scale)
	case arithTimeInterval:
		s, err := intArith(a.Op, l.Nanos(), r.Nanos())
		if err != nil {
			return value.Value{}, errTimeRange
		}
		if a.T.Kind == value.KindTimestamp {
			return value.TimestampValue(s.Int()), nil
		}
		return value.IntervalValue(s.Int()), nil
	case arithTimeDiff:
		d, err := intArith(Sub, l.Nanos(), r.Nanos())
		if err != nil {
			return value.Value{}, errTimeRange
		}
		return value.IntervalValue(d.Int()), nil
	case arithIntervalScale:
		f := r.Float()
		if a.Op == Div {
			if f == 0 {
				return value.Value{}, value.ErrDivisionByZero
			}
			f = 1 / f
		}
		ns := math.Round(float64(l.Nanos()) * f)
		// NaN, infinities and what int64 cannot hold would convert to
		// whatever the machine makes of them.
		if math.IsNaN(ns) || ns >= math.MaxInt64 || ns <= math.MinInt64 {
			return value.Value{}, errTimeRange
		}
		return value.IntervalValue(int64(ns)), nil
	}
	return value.Value{}, errors.New("bad arithmetic")
}

// asDecimal views an int as a decimal of scale 0.
func asDecimal(v value.Value) value.Value {
	if v.Kind() == value.KindInt {
		return value.DecimalValue(v.Int(), 0)
	}
	return v
}

func intArith(op ArithOp, x, y int64) (value.Value, error) {
	var r int64
	switch op {
	case Add:
		r = x + y
		if (x >= 0) == (y >= 0) && (r >= 0) != (x >= 0) {
			return value.Value{}, errIntOverflow
		}
	case Sub:
		r = x - y
		if (x >= 0) != (y >= 0) && (r >= 0) != (x >= 0) {
			return value.Value{}, errIntOverflow
		}
	case Mul:
		r = x * y
		if x != 0 && (r/x != y || (x == -1 && y == math.MinInt64)) {
			return value.Value{}, errIntOverflow
		}
	case Div:
		if y == 0 {
			return value.Value{}, value.ErrDivisionByZero
		}
		if x == math.MinInt64 && y == -1 {
			return value.Value{}, errIntOverflow
		}
		r = x / y
	case Mod:
		if y == 0 {
			return value.Value{}, value.ErrDivisionByZero
		}
		if y == -1 {
			return value.IntValue(0), nil
		}
		r = x % y
	}
	return value.IntValue(r), nil
}

func doubleArith(op ArithOp, x, y float64) (value.Value, error) {
	switch op {
	case Add:
		return value.DoubleValue(x + y), nil
	case Sub:
		return value.DoubleValue(x - y), nil
	case Mul:
		return value.DoubleValue(x * y), nil
	case Div:
		if y == 0 {
			return value.Value{}, value.ErrDivisionByZero
		}
		return value.DoubleValue(x / y), nil
	default:
		if y == 0 {
			return value.Value{}, value.ErrDivisionByZero
		}
		return value.DoubleValue(math.Mod(x, y)), nil
	}
}

func decimalArith(op ArithOp, x, y value.Value, scale uint8) (value.Value, error) {
	var u int64
	var err error
	switch op {
	case Add:
		u, err = value.AddDecimal(x.Unscaled(), x.Scale(), y.Unscaled(), y.Scale(), scale)
	case Sub:
		u, err = value.AddDecimal(x.Unscaled(), x.Scale(), -y.Unscaled(), y.Scale(), scale)
	case Mul:
		u, err = value.MulDecimal(x.Unscaled(), x.Scale(), y.Unscaled(), y.Scale(), scale)
	case Div:
		u, err = value.DivDecimal(x.Unscaled(), x.Scale(), y.Unscaled(), y.Scale(), scale)
	case Mod:
		// x - trunc(x/y)*y, exactly, at the common scale.
		s := max(x.Scale(), y.Scale())
		var a, b int64
		if a, err = value.Rescale(x.Unscaled(), x.Scale(), s); err == nil {
			b, err = value.Rescale(y.Unscaled(), y.Scale(), s)
		}
		if err == nil {
			if b == 0 {
				return value.Value{}, value.ErrDivisionByZero
			}
			u, err = value.Rescale(a%b, s, scale)
		}
	}
	if err != nil {
		return value.Value{}, err
	}
	return checkedDecimal(u, scale)
}

// Negate is unary minus.
type Negate struct{ X Expr }

// NewNegate type-checks -x.
func NewNegate(x Expr) (Expr, error) {
	t := x.Type()
	if !t.Numeric() && t.Kind != value.KindInterval && t.Kind != value.KindNull {
		return nil, typeErrorf("unary minus does not apply to %s", t)
	}
	return Fold(&Negate{X: x})
}

// Type implements Expr.
func (n *Negate) Type() value.Type { return n.X.Type() }

func (n *Negate) String() string { return "-" + n.X.String() }

func (n *Negate) operands() []Expr { return []Expr{n.X} }

// Eval implements Expr.
func (n *Negate) Eval(row value.Row) (value.Value, error) {
	v, err := n.X.Eval(row)
	if err != nil || v.IsNull() {
		return v, err
	}
	switch v.Kind() {
	case value.KindInt:
		if v.Int() == math.MinInt64 {
			return value.Value{}, evalErr(n, errIntOverflow)
		}
		return value.IntValue(-v.Int()), nil
	case value.KindDouble:
		return value.DoubleValue(-v.Double()), nil
	case value.KindDecimal:
		return value.DecimalValue(-v.Unscaled(), v.Scale()), nil
	default:
		if v.Nanos() == math.MinInt64 {
			return value.Value{}, evalErr(n, errTimeRange)
		}
		return value.IntervalValue(-v.Nanos()), nil
	}
}

// errTimeRange is the failure of timestamp and interval arithmetic beyond
// the nanoseconds an int64 holds, about 292 years either side of 1970.
var errTimeRange = errors.New("timestamp or interval out of range")

// CmpOp is a comparison operator.
type CmpOp uint8

// The comparison operators.
const (
	Eq CmpOp = iota
	Ne
	Lt
	Le
	Gt
	Ge
)

var cmpNames = [...]string{Eq: "=", Ne: "<>", Lt: "<", Le: "<=", Gt: ">", Ge: ">="}

func (op CmpOp) String() string { return cmpNames[op] }

func (op CmpOp) holds(c int) bool {
	switch op {
	case Eq:
		return c == 0
	case Ne:
		return c != 0
	case Lt:
		return c < 0
	case Le:
		return c <= 0
	case Gt:
		return c > 0
	default:
		return c >= 0
	}
}

// Compare is a comparison; NULL on either side yields NULL.
type Compare struct {
	Op   CmpOp
	L, R Expr
	// sameInt marks int, timestamp or interval on both sides: compared as int64
	// without the general dispatch.
	sameInt bool
}

// NewCompare type-checks l op r.
func NewCompare(op CmpOp, l, r Expr) (Expr, error) {
	lt, rt := l.Type(), r.Type()
	if !value.Comparable(lt, rt) {
		return nil, typeErrorf("cannot compare %s with %s", lt, rt)
	}
	c := &Compare{Op: op, L: l, R: r}
	c.sameInt = lt.Kind == rt.Kind && (lt.Kind == value.KindInt || lt.Kind == value.KindTimestamp || lt.Kind == value.KindInterval)
	return Fold(c)
}

// Type implements Expr.
func (c *Compare) Type() value.Type { return value.Bool }

func (c *Compare) String() string {
	return "(" + c.L.String() + " " + c.Op.String() + " " + c.R.String() + ")"
}

func (c *Compare) operands() []Expr { return []Expr{c.L, c.R} }

// Eval implements Expr.
func (c *Compare) Eval(row value.Row) (value.Value, error) {
	l, err := c.L.Eval(row)
	if err != nil || l.IsNull() {
		return value.Value{}, err
	}
	r, err := c.R.Eval(row)
	if err != nil || r.IsNull() {
		return value.Value{}, err
	}
	if c.sameInt {
		x, y := l.Int(), r.Int()
		var res int
		if x < y {
			res = -1
		} else if x > y {
			res = 1
		}
		return value.BoolValue(c.Op.holds(res)), nil
	}
	return value.BoolValue(c.Op.holds(value.Compare(l, r))), nil
}

// Distinct is IS [NOT] DISTINCT FROM: a comparison in which NULL equals NULL.
type Distinct struct {
	L, R Expr
	Not  bool
}

// NewDistinct type-checks l IS [NOT] DISTINCT FROM r.
func NewDistinct(l, r Expr, not bool) (Expr, error) {
	if !value.Comparable(l.Type(), r.Type()) {
		return nil, typeErrorf("cannot compare %s with %s", l.Type(), r.Type())
	}
	return Fold(&Distinct{L: l, R: r, Not: not})
}

// Type implements Expr.
func (d *Distinct) Type() value.Type { return value.Bool }

func (d *Distinct) String() string {
	if d.Not {
		return "(" + d.L.String() + " IS NOT DISTINCT FROM " + d.R.String() + ")"
	}
	return "(" + d.L.String() + " IS DISTINCT FROM " + d.R.String() + ")"
}

func (d *Distinct) operands() []Expr { return []Expr{d.L, d.R} }

// Eval implements Expr.
func (d *Distinct) Eval(row value.Row) (value.Value, error) {
	l, err := d.L.Eval(row)
	if err != nil {
		return value.Value{}, err
	}
	r, err := d.R.Eval(row)
	if err != nil {
		return value.Value{}, err
	}
	var distinct bool
	switch {
	case l.IsNull() || r.IsNull():
		distinct = l.IsNull() != r.IsNull()
	default:
		distinct = value.Compare(l, r) != 0
	}
	return value.BoolValue(distinct != d.Not), nil
}
