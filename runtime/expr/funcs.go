package expr

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sluice-dev/sluice/runtime/value"
)

// Call binds a call of the named scalar function to its arguments, checking
// their number and types.
func Call(name string, args []Expr) (Expr, error) {
	f, ok := functions[strings.ToLower(name)]
	if !ok {
		return nil, typeErrorf("unknown function %s (see docs/sql.md for the supported functions)", name)
	}
	if len(args) < f.min || (f.max >= 0 && len(args) > f.max) {
		want := fmt.Sprintf("%d", f.min)
		switch {
		case f.max < 0:
			want = fmt.Sprintf("at least %d", f.min)
		case f.max != f.min:
			want = fmt.Sprintf("%d to %d", f.min, f.max)
		}
		return nil, typeErrorf("%s takes %s arguments, got %d", name, want, len(args))
	}
	e, err := f.bind(strings.ToLower(name), args)
	if err != nil {
		return nil, err
	}
	return Fold(e)
}

// Functions lists the names of the supported scalar functions, sorted.
func Functions() []string {
	names := make([]string, 0, len(functions))
	for n := range functions {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

type funcDef struct {
	min, max int // max < 0: variadic
	bind     func(name string, args []Expr) (Expr, error)
}

var functions map[string]funcDef

func init() {
	str1 := func(f func(string) string) funcDef {
		return funcDef{1, 1, func(name string, a []Expr) (Expr, error) {
			if err := wantKinds(name, a, value.KindString); err != nil {
				return nil, err
			}
			return &call1{name: name, x: a[0], t: value.String, f: func(v value.Value) (value.Value, error) {
				return value.StringValue(f(v.Str())), nil
			}}, nil
		}}
	}
	trim := func(left, right bool) funcDef {
		return funcDef{1, 2, func(name string, a []Expr) (Expr, error) {
			if err := wantKinds(name, a, value.KindString, value.KindString); err != nil {
				return nil, err
			}
			cut := func(s, chars string) string {
				if left {
					s = strings.TrimLeft(s, chars)
				}
				if right {
					s = strings.TrimRight(s, chars)
				}
				return s
			}
			if len(a) == 1 {
				return &call1{name: name, x: a[0], t: value.String, f: func(v value.Value) (value.Value, error) {
					return value.StringValue(cut(v.Str(), " ")), nil
				}}, nil
			}
			return &call2{name: name, x: a[0], y: a[1], t: value.String, f: func(v, w value.Value) (value.Value, error) {
				return value.StringValue(cut(v.Str(), w.Str())), nil
			}}, nil
		}}
	}
	length := funcDef{1, 1, func(name string, a []Expr) (Expr, error) {
		if err := wantKinds(name, a, value.KindString); err != nil {
			return nil, err
		}
		return &call1{name: name, x: a[0], t: value.Int, f: func(v value.Value) (value.Value, error) {
			return value.IntValue(int64(utf8.RuneCountInString(v.Str()))), nil
		}}, nil
	}}
	substr := funcDef{2, 3, func(name string, a []Expr) (Expr, error) {
		if err := wantKinds(name, a, value.KindString, value.KindInt, value.KindInt); err != nil {
			return nil, err
		}
		if len(a) == 2 {
			return &call2{name: name, x: a[0], y: a[1], t: value.String, f: func(s, start value.Value) (value.Value, error) {
				return value.StringValue(substring(s.Str(), start.Int(), math.MaxInt64)), nil
			}}, nil
		}
		return &call3{name: name, x: a[0], y: a[1], z: a[2], t: value.String, f: func(s, start, n value.Value) (value.Value, error) {
			if n.Int() < 0 {
				return value.Value{}, errors.New("negative substring length not allowed")
			}
			return value.StringValue(substring(s.Str(), start.Int(), n.Int())), nil
		}}, nil
	}}
	strpos := funcDef{2, 2, func(name string, a []Expr) (Expr, error) {
		if err := wantKinds(name, a, value.KindString, value.KindString); err != nil {
			return nil, err
		}
		return &call2{name: name, x: a[0], y: a[1], t: value.Int, f: func(s, sub value.Value) (value.Value, error) {
			i := strings.Index(s.Str(), sub.Str())
			if i < 0 {
				return value.IntValue(0), nil
			}
			return value.IntValue(int64(utf8.RuneCountInString(s.Str()[:i]) + 1)), nil
		}}, nil
	}}
	leftRight := func(right bool) funcDef {
		return funcDef{2, 2, func(name string, a []Expr) (Expr, error) {
			if err := wantKinds(name, a, value.KindString, value.KindInt); err != nil {
				return nil, err
			}
			return &call2{name: name, x: a[0], y: a[1], t: value.String, f: func(s, n value.Value) (value.Value, error) {
				r := []rune(s.Str())
				k := int(n.Int())
				if k < 0 {
					k = max(len(r)+k, 0)
				}
				k = min(k, len(r))
				if right {
					return value.StringValue(string(r[len(r)-k:])), nil
				}
				return value.StringValue(string(r[:k])), nil
			}}, nil
		}}
	}
	mathFn := func(f func(float64) float64, domain func(float64) bool) funcDef {
		return funcDef{1, 1, func(name string, a []Expr) (Expr, error) {
			if !a[0].Type().Numeric() && a[0].Type().Kind != value.KindNull {
				return nil, typeErrorf("%s takes a number, not %s", name, a[0].Type())
			}
			return &call1{name: name, x: a[0], t: value.Double, f: func(v value.Value) (value.Value, error) {
				x := v.Float()
				if domain != nil && !domain(x) {
					return value.Value{}, fmt.Errorf("%s(%v) is undefined", name, x)
				}
				return value.DoubleValue(f(x)), nil
			}}, nil
		}}
	}
	positive := func(x float64) bool { return x > 0 }
	functions = map[string]funcDef{
		"lower":            str1(strings.ToLower),
		"upper":            str1(strings.ToUpper),
		"reverse":          str1(reverseString),
		"initcap":          str1(initcap),
		"length":           length,
		"char_length":      length,
		"character_length": length,
		"btrim":            trim(true, true),
		"trim":             trim(true, true),
		"ltrim":            trim(true, false),
		"rtrim":            trim(false, true),
		"substr":           substr,
		"substring":        substr,
		"strpos":           strpos,
		"position":         {2, 2, func(name string, a []Expr) (Expr, error) { return strpos.bind(name, []Expr{a[0], a[1]}) }},
		"left":             leftRight(false),
		"right":            leftRight(true),
		"replace": {3, 3, func(name string, a []Expr) (Expr, error) {
			if err := wantKinds(name, a, value.KindString, value.KindString, value.KindString); err != nil {
				return nil, err
			}
			return &call3{name: name, x: a[0], y: a[1], z: a[2], t: value.String, f: func(s, from, to value.Value) (value.Value, error) {
				if from.Str() == "" {
					return s, nil // as in PostgreSQL: nothing to replace
				}
				// Nested replaces multiply a string's length: bound it
				// before building it.
				n := int64(strings.Count(s.Str(), from.Str()))
				if size := int64(len(s.Str())) + n*(int64(len(to.Str()))-int64(len(from.Str()))); size > MaxStringBytes {
					return value.Value{}, errStringTooLong(name, size)
				}
				return value.StringValue(strings.ReplaceAll(s.Str(), from.Str(), to.Str())), nil
			}}, nil
		}},
		"starts_with": {2, 2, func(name string, a []Expr) (Expr, error) {
			if err := wantKinds(name, a, value.KindString, value.KindString); err != nil {
				return nil, err
			}
			return &call2{name: name, x: a[0], y: a[1], t: value.Bool, f: func(s, p value.Value) (value.Value, error) {
				return value.BoolValue(strings.HasPrefix(s.Str(), p.Str())), nil
			}}, nil
		}},
		"split_part": {3, 3, func(name string, a []Expr) (Expr, error) {
			if err := wantKinds(name, a, value.KindString, value.KindString, value.KindInt); err != nil {
				return nil, err
			}
			return &call3{name: name, x: a[0], y: a[1], z: a[2], t: value.String, f: splitPart}, nil
		}},
		"concat":   {1, -1, func(name string, a []Expr) (Expr, error) { return &Concat{Args: a}, nil }},
		"coalesce": {1, -1, func(name string, a []Expr) (Expr, error) { return NewCoalesce(a) }},
		"greatest": {1, -1, func(name string, a []Expr) (Expr, error) { return newExtreme(name, a, 1) }},
		"least":    {1, -1, func(name string, a []Expr) (Expr, error) { return newExtreme(name, a, -1) }},
		"nullif": {2, 2, func(name string, a []Expr) (Expr, error) {
			if !value.Comparable(a[0].Type(), a[1].Type()) {
				return nil, typeErrorf("nullif compares %s with %s", a[0].Type(), a[1].Type())
			}
			return &NullIf{X: a[0], Y: a[1]}, nil
		}},
		"abs":     {1, 1, bindNumeric1(absValue)},
		"sign":    {1, 1, bindNumeric1(signValue)},
		"ceil":    {1, 1, bindRounding(math.Ceil)},
		"ceiling": {1, 1, bindRounding(math.Ceil)},
		"floor":   {1, 1, bindRounding(math.Floor)},
		"trunc":   {1, 1, bindRounding(math.Trunc)},
		"round":   {1, 2, bindRound},
		"sqrt":    mathFn(math.Sqrt, func(x float64) bool { return x >= 0 }),
		"exp":     mathFn(math.Exp, nil),
		"ln":      mathFn(math.Log, positive),
		"log10":   mathFn(math.Log10, positive),
		"log":     mathFn(math.Log10, positive),
		"power":   {2, 2, bindPower},
		"pow":     {2, 2, bindPower},
		"mod": {2, 2, func(name string, a []Expr) (Expr, error) {
			return NewArith(Mod, a[0], a[1])
		}},
		"now":               {0, 0, func(string, []Expr) (Expr, error) { return &Now{}, nil }},
		"current_timestamp": {0, 0, func(string, []Expr) (Expr, error) { return &Now{}, nil }},
		"date_trunc":        {2, 2, bindDateTrunc},
		"date_part":         {2, 2, bindExtract},
		"extract":           {2, 2, bindExtract},
		"to_timestamp": {1, 1, func(name string, a []Expr) (Expr, error) {
			if !a[0].Type().Numeric() && a[0].Type().Kind != value.KindNull {
				return nil, typeErrorf("to_timestamp takes seconds since the epoch, not %s", a[0].Type())
			}
			return &call1{name: name, x: a[0], t: value.Timestamp, f: func(v value.Value) (value.Value, error) {
				s := v.Float()
				if math.IsNaN(s) || math.Abs(s) > 9.2e9 {
					return value.Value{}, errors.New("timestamp out of range")
				}
				return value.TimestampValue(int64(math.Round(s * 1e9))), nil
			}}, nil
		}},
	}
}

// wantKinds checks argument kinds; NULL literals pass any check.
func wantKinds(name string, args []Expr, kinds ...value.Kind) error {
	for i, a := range args {
		k := a.Type().Kind
		if k != kinds[i] && k != value.KindNull {
			return typeErrorf("argument %d of %s must be %s, not %s", i+1, name, kinds[i], a.Type())
		}
	}
	return nil
}

// call1, call2 and call3 are strict scalar functions: a NULL argument yields
// NULL without calling f. Fixed arities keep arguments off the heap.
type call1 struct {
	name  string
	lead  string // constant arguments before x, as written, e.g. "'hour', "
	trail string // constant arguments after x, e.g. ", 2"
	x     Expr
	t     value.Type
	f     func(value.Value) (value.Value, error)
}

func (c *call1) Type() value.Type { return c.t }
func (c *call1) String() string   { return c.name + "(" + c.lead + c.x.String() + c.trail + ")" }
func (c *call1) operands() []Expr { return []Expr{c.x} }
func (c *call1) Eval(row value.Row) (value.Value, error) {
	x, err := c.x.Eval(row)
	if err != nil || x.IsNull() {
		return value.Value{}, err
	}
	v, err := c.f(x)
	if err != nil {
		return value.Value{}, evalErr(c, err)
	}
	return v, nil
}

type call2 struct {
	name string
	x, y Expr
	t    value.Type
	f    func(x, y value.Value) (value.Value, error)
}

func (c *call2) Type() value.Type { return c.t }
func (c *call2) String() string {
	return c.name + "(" + c.x.String() + ", " + c.y.String() + ")"
}
func (c *call2) operands() []Expr { return []Expr{c.x, c.y} }
func (c *call2) Eval(row value.Row) (value.Value, error) {
	x, err := c.x.Eval(row)
	if err != nil || x.IsNull() {
		return value.Value{}, err
	}
	y, err := c.y.Eval(row)
	if err != nil || y.IsNull() {
		return value.Value{}, err
	}
	v, err := c.f(x, y)
	if err != nil {
		return value.Value{}, evalErr(c, err)
	}
	return v, nil
}

type call3 struct {
	name    string
	x, y, z Expr
	t       value.Type
	f       func(x, y, z value.Value) (value.Value, error)
}

func (c *call3) Type() value.Type { return c.t }
func (c *call3) String() string {
	return c.name + "(" + c.x.String() + ", " + c.y.String() + ", " + c.z.String() + ")"
}
func (c *call3) operands() []Expr { return []Expr{c.x, c.y, c.z} }
func (c *call3) Eval(row value.Row) (value.Value, error) {
	x, err := c.x.Eval(row)
	if err != nil || x.IsNull() {
		return value.Value{}, err
	}
	y, err := c.y.Eval(row)
	if err != nil || y.IsNull() {
		return value.Value{}, err
	}
	z, err := c.z.Eval(row)
	if err != nil || z.IsNull() {
		return value.Value{}, err
	}
	v, err := c.f(x, y, z)
	if err != nil {
		return value.Value{}, evalErr(c, err)
	}
	return v, nil
}

// Concat joins the text of its arguments, skipping NULLs, as PostgreSQL's
// concat does; the || operator is planned as Concat too, but NULL-strict.
type Concat struct {
	Args   []Expr
	Strict bool
}

// Type implements Expr.
func (c *Concat) Type() value.Type { return value.String }

func (c *Concat) String() string {
	if c.Strict {
		parts := make([]string, len(c.Args))
		for i, a := range c.Args {
			parts[i] = a.String()
		}
		return "(" + strings.Join(parts, " || ") + ")"
	}
	return "concat(" + joinExprs(c.Args) + ")"
}

func (c *Concat) operands() []Expr { return c.Args }

// Eval implements Expr.
func (c *Concat) Eval(row value.Row) (value.Value, error) {
	var b []byte
	for _, a := range c.Args {
		v, err := a.Eval(row)
		if err != nil {
			return value.Value{}, err
		}
		if v.IsNull() {
			if c.Strict {
				return value.Value{}, nil
			}
			continue
		}
		b = v.AppendText(b)
		if len(b) > MaxStringBytes {
			return value.Value{}, errStringTooLong("concatenation", int64(len(b)))
		}
	}
	return value.StringValue(string(b)), nil
}

// MaxStringBytes bounds a string an expression builds: a record's result
// must not take the engine's memory, whatever the query or the data.
const MaxStringBytes = 16 << 20

func errStringTooLong(what string, size int64) error {
	return fmt.Errorf("the result of %s would be %d bytes, more than the %d a string may hold", what, size, MaxStringBytes)
}

// NullIf is NULLIF(x, y): NULL when x = y, else x.
type NullIf struct{ X, Y Expr }

// Type implements Expr.
func (n *NullIf) Type() value.Type { return n.X.Type() }

func (n *NullIf) String() string   { return "nullif(" + n.X.String() + ", " + n.Y.String() + ")" }
func (n *NullIf) operands() []Expr { return []Expr{n.X, n.Y} }

// Eval implements Expr.
func (n *NullIf) Eval(row value.Row) (value.Value, error) {
	x, err := n.X.Eval(row)
	if err != nil || x.IsNull() {
		return x, err
	}
	y, err := n.Y.Eval(row)
	if err != nil {
		return value.Value{}, err
	}
	if !y.IsNull() && value.Compare(x, y) == 0 {
		return value.Value{}, nil
	}
	return x, nil
}

// Extreme is GREATEST or LEAST, ignoring NULLs.
type Extreme struct {
	name string
	Args []Expr
	sign int
	T    value.Type
}

func newExtreme(name string, args []Expr, sign int) (Expr, error) {
	t, err := CommonType(name, args...)
	if err != nil {
		return nil, err
	}
	e := &Extreme{name: name, sign: sign, T: t, Args: make([]Expr, len(args))}
	for i, a := range args {
		e.Args[i] = Coerce(a, t)
	}
	return e, nil
}

// Type implements Expr.
func (e *Extreme) Type() value.Type { return e.T }

func (e *Extreme) String() string   { return e.name + "(" + joinExprs(e.Args) + ")" }
func (e *Extreme) operands() []Expr { return e.Args }

// Eval implements Expr.
func (e *Extreme) Eval(row value.Row) (value.Value, error) {
	var best value.Value
	for _, a := range e.Args {
		v, err := a.Eval(row)
		if err != nil {
			return value.Value{}, err
		}
		if !v.IsNull() && (best.IsNull() || value.Compare(v, best)*e.sign > 0) {
			best = v
		}
	}
	return best, nil
}

// Now is the current time, read once per evaluation.
type Now struct{}

// Type implements Expr.
func (*Now) Type() value.Type { return value.Timestamp }

func (*Now) String() string { return "now()" }

// Eval implements Expr.
func (*Now) Eval(value.Row) (value.Value, error) { return value.TimeValue(time.Now()), nil }

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

func substring(s string, start, n int64) string {
	// 1-based, counting characters; positions before 1 shorten the length, as
	// in PostgreSQL.
	end := int64(math.MaxInt64)
	if n != math.MaxInt64 && (start <= 0 || n <= math.MaxInt64-start) {
		end = start + n // else beyond any string: to its end, as PostgreSQL
	}
	if start < 1 {
		start = 1
	}
	if end <= start {
		return ""
	}
	i := int64(1)
	from, to := len(s), len(s)
	for pos := range s {
		if i == start {
			from = pos
		}
		if i == end {
			to = pos
			break
		}
		i++
	}
	if from > to {
		return ""
	}
	return s[from:to]
}

func splitPart(s, delim, n value.Value) (value.Value, error) {
	k := n.Int()
	if k == 0 {
		return value.Value{}, errors.New("field position must not be zero")
	}
	var parts []string
	if delim.Str() == "" {
		parts = []string{s.Str()}
	} else {
		parts = strings.Split(s.Str(), delim.Str())
	}
	if k < 0 {
		k = int64(len(parts)) + k + 1
	}
	if k < 1 || k > int64(len(parts)) {
		return value.StringValue(""), nil
	}
	return value.StringValue(parts[k-1]), nil
}

func reverseString(s string) string {
	r := []rune(s)
	slices.Reverse(r)
	return string(r)
}

func initcap(s string) string {
	prevLetter := false
	return strings.Map(func(r rune) rune {
		l := unicode.IsLetter(r) || unicode.IsDigit(r)
		defer func() { prevLetter = l }()
		if l && !prevLetter {
			return unicode.ToUpper(r)
		}
		return unicode.ToLower(r)
	}, s)
}

// checkedDecimal returns a decimal result if it fits 18 digits.
func checkedDecimal(u int64, scale uint8) (value.Value, error) {
	if !value.FitsPrecision(u, value.MaxDecimalPrecision) {
		return value.Value{}, value.ErrOverflow
	}
	return value.DecimalValue(u, scale), nil
}
