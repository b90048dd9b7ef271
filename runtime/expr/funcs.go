package expr

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
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
			// A part of the string, not a copy: nothing allocated per row.
			return &call2{name: name, x: a[0], y: a[1], t: value.String, f: func(s, n value.Value) (value.Value, error) {
				str, k := s.Str(), n.Int()
				if k < 0 {
					k = max(int64(utf8.RuneCountInString(str))+k, 0)
				}
				if right {
					skip := max(int64(utf8.RuneCountInString(str))-k, 0)
					return value.StringValue(substring(str, skip+1, math.MaxInt64)), nil
				}
				return value.StringValue(substring(str, 1, k)), nil
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
		"regexp_extract": {2, 3, bindRegexpExtract},
		"regexp_replace": {3, 4, bindRegexpReplace},
		"concat":         {1, -1, func(name string, a []Expr) (Expr, error) { return &Concat{Args: a}, nil }},
		"coalesce":       {1, -1, func(name string, a []Expr) (Expr, error) { return NewCoalesce(a) }},
		"greatest":       {1, -1, func(name string, a []Expr) (Expr, error) { return newExtreme(name, a, 1) }},
		"least":          {1, -1, func(name string, a []Expr) (Expr, error) { return newExtreme(name, a, -1) }},
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
		// Flink's processing-time attribute: the time a row is processed.
		"proctime":   {0, 0, func(string, []Expr) (Expr, error) { return &Now{}, nil }},
		"date_trunc": {2, 2, bindDateTrunc},
		"date_part":  {2, 2, bindExtract},
		"extract":    {2, 2, bindExtract},
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

// MaxStringBytes bounds a string an expression builds: a record's result
// must not take the engine's memory, whatever the query or the data.
const MaxStringBytes = 16 << 20

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
