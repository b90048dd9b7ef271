package expr

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"unsafe"

	"github.com/sluice-dev/sluice/runtime/format"
	"github.com/sluice-dev/sluice/runtime/value"
)

// Cast converts a value to type T. A conversion that fails for a row, such as
// CAST('abc' AS int), is an evaluation error of that row.
type Cast struct {
	X Expr
	T value.Type
}

// NewCast type-checks CAST(x AS t).
func NewCast(x Expr, t value.Type) (Expr, error) {
	from := x.Type().Kind
	if !castable(from, t.Kind) {
		return nil, typeErrorf("cannot cast %s to %s", x.Type(), t)
	}
	if x.Type() == t {
		return x, nil
	}
	return Fold(&Cast{X: x, T: t})
}

func castable(from, to value.Kind) bool {
	if from == to || from == value.KindNull || from == value.KindString || to == value.KindString {
		return true
	}
	num := func(k value.Kind) bool {
		return k == value.KindInt || k == value.KindDouble || k == value.KindDecimal
	}
	switch {
	case num(from) && num(to):
		return true
	case from == value.KindBool && to == value.KindInt, from == value.KindInt && to == value.KindBool:
		return true
	}
	return false
}

// Type implements Expr.
func (c *Cast) Type() value.Type { return c.T }

func (c *Cast) String() string { return "CAST(" + c.X.String() + " AS " + c.T.String() + ")" }

func (c *Cast) operands() []Expr { return []Expr{c.X} }

// Eval implements Expr.
func (c *Cast) Eval(row value.Row) (value.Value, error) {
	v, err := c.X.Eval(row)
	if err != nil || v.IsNull() {
		return value.Value{}, err
	}
	r, err := Convert(v, c.T)
	if err != nil {
		return value.Value{}, evalErr(c, err)
	}
	return r, nil
}

var errNotFinite = errors.New("value is not finite")

// Convert converts a non-NULL value to type t.
func Convert(v value.Value, t value.Type) (value.Value, error) {
	switch t.Kind {
	case value.KindString:
		if v.Kind() == value.KindString {
			return v, nil
		}
		b := v.AppendText(nil)
		return value.StringValue(unsafe.String(unsafe.SliceData(b), len(b))), nil
	case v.Kind():
		if t.Kind == value.KindDecimal {
			return decimalTo(v.Unscaled(), v.Scale(), t)
		}
		return v, nil
	}
	switch v.Kind() {
	case value.KindString:
		s := strings.TrimSpace(v.Str())
		if t.Kind == value.KindBool {
			s = strings.ToLower(s)
		}
		return format.ParseText(t, []byte(s))
	case value.KindInt:
		switch t.Kind {
		case value.KindDouble:
			return value.DoubleValue(float64(v.Int())), nil
		case value.KindDecimal:
			return decimalTo(v.Int(), 0, t)
		case value.KindBool:
			return value.BoolValue(v.Int() != 0), nil
		}
	case value.KindDouble:
		f := v.Double()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return value.Value{}, errNotFinite
		}
		switch t.Kind {
		case value.KindInt:
			r := math.Round(f)
			if r < -9.223372036854775808e18 || r >= 9.223372036854775808e18 {
				return value.Value{}, errIntOverflow
			}
			return value.IntValue(int64(r)), nil
		case value.KindDecimal:
			u, err := value.DecimalFromFloat(f, t.Scale)
			if err != nil {
				return value.Value{}, err
			}
			return decimalTo(u, t.Scale, t)
		}
	case value.KindDecimal:
		switch t.Kind {
		case value.KindInt:
			u, err := value.Rescale(v.Unscaled(), v.Scale(), 0)
			if err != nil {
				return value.Value{}, err
			}
			return value.IntValue(u), nil
		case value.KindDouble:
			return value.DoubleValue(v.Float()), nil
		}
	case value.KindBool:
		if t.Kind == value.KindInt {
			return value.IntValue(int64(v.Int())), nil
		}
	}
	return value.Value{}, fmt.Errorf("cannot cast %s to %s", v.Kind(), t)
}

// decimalTo rescales a decimal to type t and checks that it fits t's precision.
func decimalTo(u int64, scale uint8, t value.Type) (value.Value, error) {
	r, err := value.Rescale(u, scale, t.Scale)
	if err != nil || !value.FitsPrecision(r, t.Precision) {
		return value.Value{}, fmt.Errorf("value does not fit %s: %w", t, value.ErrOverflow)
	}
	return value.DecimalValue(r, t.Scale), nil
}
