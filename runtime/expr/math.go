package expr

import (
	"errors"
	"math"

	"github.com/sluice-dev/sluice/runtime/value"
)

func bindNumeric1(f func(value.Value) (value.Value, error)) func(string, []Expr) (Expr, error) {
	return func(name string, a []Expr) (Expr, error) {
		t := a[0].Type()
		if !t.Numeric() && t.Kind != value.KindNull {
			return nil, typeErrorf("%s takes a number, not %s", name, t)
		}
		if t.Kind == value.KindInt && name == "sign" {
			t = value.Int
		}
		return &call1{name: name, x: a[0], t: t, f: f}, nil
	}
}

func absValue(v value.Value) (value.Value, error) {
	switch v.Kind() {
	case value.KindInt:
		if v.Int() == math.MinInt64 {
			return value.Value{}, errIntOverflow
		}
		if v.Int() < 0 {
			return value.IntValue(-v.Int()), nil
		}
	case value.KindDouble:
		return value.DoubleValue(math.Abs(v.Double())), nil
	case value.KindDecimal:
		if v.Unscaled() < 0 {
			return value.DecimalValue(-v.Unscaled(), v.Scale()), nil
		}
	}
	return v, nil
}

func signValue(v value.Value) (value.Value, error) {
	var s int64
	switch v.Kind() {
	case value.KindInt:
		s = int64(cmpZero(float64(v.Int())))
		return value.IntValue(s), nil
	case value.KindDouble:
		return value.DoubleValue(float64(cmpZero(v.Double()))), nil
	default:
		return value.DecimalValue(int64(cmpZero(float64(v.Unscaled())))*value.Pow10(v.Scale()), v.Scale()), nil
	}
}

func cmpZero(f float64) int {
	switch {
	case f > 0:
		return 1
	case f < 0:
		return -1
	}
	return 0
}

// bindRounding binds ceil, floor and trunc: ints pass through, decimals keep
// their type with a zero fraction, exactly, doubles stay doubles.
func bindRounding(f func(float64) float64) func(string, []Expr) (Expr, error) {
	return func(name string, a []Expr) (Expr, error) {
		t := a[0].Type()
		if !t.Numeric() && t.Kind != value.KindNull {
			return nil, typeErrorf("%s takes a number, not %s", name, t)
		}
		return &call1{name: name, x: a[0], t: t, f: func(v value.Value) (value.Value, error) {
			switch v.Kind() {
			case value.KindDouble:
				return value.DoubleValue(f(v.Double())), nil
			case value.KindDecimal:
				// Only the sign of the dropped fraction matters: f of ±0.5
				// says which way this function moves a number with one.
				p := value.Pow10(v.Scale())
				u := v.Unscaled()
				q, r := u/p, u%p
				switch {
				case r > 0:
					q += int64(f(0.5))
				case r < 0:
					q += int64(f(-0.5))
				}
				return checkedDecimal(q*p, v.Scale())
			}
			return v, nil
		}}, nil
	}
}

// bindRound binds round(x) and round(x, digits): half away from zero, exactly
// for decimals; the digits must be a constant for a decimal x.
func bindRound(name string, a []Expr) (Expr, error) {
	t := a[0].Type()
	if !t.Numeric() && t.Kind != value.KindNull {
		return nil, typeErrorf("round takes a number, not %s", t)
	}
	if len(a) == 1 {
		return &call1{name: name, x: a[0], t: t, f: func(v value.Value) (value.Value, error) {
			switch v.Kind() {
			case value.KindDouble:
				return value.DoubleValue(math.Round(v.Double())), nil
			case value.KindDecimal:
				u, err := value.Rescale(v.Unscaled(), v.Scale(), 0)
				if err != nil {
					return value.Value{}, err
				}
				return checkedDecimal(u*value.Pow10(v.Scale()), v.Scale())
			}
			return v, nil
		}}, nil
	}
	if a[1].Type().Kind != value.KindInt {
		return nil, typeErrorf("the digits of round must be int, not %s", a[1].Type())
	}
	if t.Kind == value.KindDecimal || t.Kind == value.KindInt {
		c, ok := a[1].(*Const)
		if !ok || c.V.IsNull() {
			return nil, typeErrorf("the digits of round over a decimal must be a constant")
		}
		d := c.V.Int()
		if d < 0 || d > value.MaxDecimalPrecision {
			return nil, typeErrorf("round digits %d out of range 0 to %d", d, value.MaxDecimalPrecision)
		}
		rt := value.Decimal(value.MaxDecimalPrecision, int(d))
		return &call1{name: name, x: a[0], trail: ", " + c.String(), t: rt, f: func(v value.Value) (value.Value, error) {
			v = asDecimal(v)
			u, err := value.Rescale(v.Unscaled(), v.Scale(), uint8(d))
			if err != nil {
				return value.Value{}, err
			}
			return checkedDecimal(u, uint8(d))
		}}, nil
	}
	return &call2{name: name, x: a[0], y: a[1], t: value.Double, f: func(v, d value.Value) (value.Value, error) {
		p := math.Pow10(int(d.Int()))
		return value.DoubleValue(math.Round(v.Float()*p) / p), nil
	}}, nil
}

func bindPower(name string, a []Expr) (Expr, error) {
	for _, e := range a {
		if !e.Type().Numeric() && e.Type().Kind != value.KindNull {
			return nil, typeErrorf("%s takes numbers, not %s", name, e.Type())
		}
	}
	return &call2{name: name, x: a[0], y: a[1], t: value.Double, f: func(x, y value.Value) (value.Value, error) {
		r := math.Pow(x.Float(), y.Float())
		if math.IsNaN(r) {
			return value.Value{}, errors.New("a negative number raised to a non-integer power is not a real number")
		}
		return value.DoubleValue(r), nil
	}}, nil
}

// checkedDecimal returns a decimal result if it fits 18 digits.
func checkedDecimal(u int64, scale uint8) (value.Value, error) {
	if !value.FitsPrecision(u, value.MaxDecimalPrecision) {
		return value.Value{}, value.ErrOverflow
	}
	return value.DecimalValue(u, scale), nil
}
