package expr

import (
	"strings"

	"github.com/sluice-dev/sluice/runtime/value"
)

func requireBool(what string, e Expr) error {
	if k := e.Type().Kind; k != value.KindBool && k != value.KindNull {
		return typeErrorf("argument of %s must be bool, not %s", what, e.Type())
	}
	return nil
}

// Logic is AND or OR over any number of operands, with SQL's three-valued
// logic: FALSE decides AND and TRUE decides OR even next to NULL.
type Logic struct {
	Or   bool
	Args []Expr
}

// NewLogic type-checks an AND (or, with or set, an OR) of args.
func NewLogic(or bool, args ...Expr) (Expr, error) {
	name := "AND"
	if or {
		name = "OR"
	}
	for _, a := range args {
		if err := requireBool(name, a); err != nil {
			return nil, err
		}
	}
	return Fold(&Logic{Or: or, Args: args})
}

// Type implements Expr.
func (l *Logic) Type() value.Type { return value.Bool }

func (l *Logic) String() string {
	op := " AND "
	if l.Or {
		op = " OR "
	}
	parts := make([]string, len(l.Args))
	for i, a := range l.Args {
		parts[i] = a.String()
	}
	return "(" + strings.Join(parts, op) + ")"
}

func (l *Logic) operands() []Expr { return l.Args }

// Eval implements Expr.
func (l *Logic) Eval(row value.Row) (value.Value, error) {
	sawNull := false
	for _, a := range l.Args {
		v, err := a.Eval(row)
		if err != nil {
			return value.Value{}, err
		}
		if v.IsNull() {
			sawNull = true
			continue
		}
		if v.Bool() == l.Or {
			return v, nil // TRUE decides OR, FALSE decides AND
		}
	}
	if sawNull {
		return value.Value{}, nil
	}
	return value.BoolValue(!l.Or), nil
}

// Not is logical negation; NOT NULL is NULL.
type Not struct{ X Expr }

// NewNot type-checks NOT x.
func NewNot(x Expr) (Expr, error) {
	if err := requireBool("NOT", x); err != nil {
		return nil, err
	}
	return Fold(&Not{X: x})
}

// Type implements Expr.
func (n *Not) Type() value.Type { return value.Bool }

func (n *Not) String() string { return "(NOT " + n.X.String() + ")" }

func (n *Not) operands() []Expr { return []Expr{n.X} }

// Eval implements Expr.
func (n *Not) Eval(row value.Row) (value.Value, error) {
	v, err := n.X.Eval(row)
	if err != nil || v.IsNull() {
		return v, err
	}
	return value.BoolValue(!v.Bool()), nil
}

// IsNull is IS [NOT] NULL.
type IsNull struct {
	X   Expr
	Not bool
}

// NewIsNull returns x IS [NOT] NULL.
func NewIsNull(x Expr, not bool) (Expr, error) { return Fold(&IsNull{X: x, Not: not}) }

// Type implements Expr.
func (n *IsNull) Type() value.Type { return value.Bool }

func (n *IsNull) String() string {
	if n.Not {
		return "(" + n.X.String() + " IS NOT NULL)"
	}
	return "(" + n.X.String() + " IS NULL)"
}

func (n *IsNull) operands() []Expr { return []Expr{n.X} }

// Eval implements Expr.
func (n *IsNull) Eval(row value.Row) (value.Value, error) {
	v, err := n.X.Eval(row)
	if err != nil {
		return value.Value{}, err
	}
	return value.BoolValue(v.IsNull() != n.Not), nil
}

// BoolTest is IS [NOT] TRUE and IS [NOT] FALSE, which never yield NULL.
type BoolTest struct {
	X    Expr
	Want bool
	Not  bool
}

// NewBoolTest type-checks x IS [NOT] TRUE/FALSE.
func NewBoolTest(x Expr, want, not bool) (Expr, error) {
	if err := requireBool("IS TRUE/FALSE", x); err != nil {
		return nil, err
	}
	return Fold(&BoolTest{X: x, Want: want, Not: not})
}

// Type implements Expr.
func (b *BoolTest) Type() value.Type { return value.Bool }

func (b *BoolTest) String() string {
	s := " IS "
	if b.Not {
		s += "NOT "
	}
	if b.Want {
		return "(" + b.X.String() + s + "TRUE)"
	}
	return "(" + b.X.String() + s + "FALSE)"
}

func (b *BoolTest) operands() []Expr { return []Expr{b.X} }

// Eval implements Expr.
func (b *BoolTest) Eval(row value.Row) (value.Value, error) {
	v, err := b.X.Eval(row)
	if err != nil {
		return value.Value{}, err
	}
	is := !v.IsNull() && v.Bool() == b.Want
	return value.BoolValue(is != b.Not), nil
}

// When is one WHEN ... THEN ... arm of a CASE.
type When struct{ Cond, Then Expr }

// Case is a searched CASE; a simple CASE is planned as one with equality tests.
type Case struct {
	Whens []When
	Else  Expr
	T     value.Type
}

// NewCase type-checks a CASE. Every THEN and the ELSE must share a type; ints
// and decimals widen to decimal, and any double widens to double.
func NewCase(whens []When, els Expr) (Expr, error) {
	var t value.Type
	results := make([]Expr, 0, len(whens)+1)
	for _, w := range whens {
		if err := requireBool("WHEN", w.Cond); err != nil {
			return nil, err
		}
		results = append(results, w.Then)
	}
	if els != nil {
		results = append(results, els)
	}
	t, err := CommonType("CASE", results...)
	if err != nil {
		return nil, err
	}
	c := &Case{Whens: make([]When, len(whens)), T: t}
	for i, w := range whens {
		c.Whens[i] = When{Cond: w.Cond, Then: Coerce(w.Then, t)}
	}
	if els != nil {
		c.Else = Coerce(els, t)
	}
	return Fold(c)
}

// Type implements Expr.
func (c *Case) Type() value.Type { return c.T }

func (c *Case) String() string {
	var b strings.Builder
	b.WriteString("CASE")
	for _, w := range c.Whens {
		b.WriteString(" WHEN " + w.Cond.String() + " THEN " + w.Then.String())
	}
	if c.Else != nil {
		b.WriteString(" ELSE " + c.Else.String())
	}
	b.WriteString(" END")
	return b.String()
}

func (c *Case) operands() []Expr {
	var ops []Expr
	for _, w := range c.Whens {
		ops = append(ops, w.Cond, w.Then)
	}
	if c.Else != nil {
		ops = append(ops, c.Else)
	}
	return ops
}

// Eval implements Expr.
func (c *Case) Eval(row value.Row) (value.Value, error) {
	for _, w := range c.Whens {
		v, err := w.Cond.Eval(row)
		if err != nil {
			return value.Value{}, err
		}
		if !v.IsNull() && v.Bool() {
			return w.Then.Eval(row)
		}
	}
	if c.Else == nil {
		return value.Value{}, nil
	}
	return c.Else.Eval(row)
}

// CommonType finds the type that values of all exprs widen to, for CASE,
// COALESCE, IN lists, GREATEST and LEAST.
func CommonType(what string, exprs ...Expr) (value.Type, error) {
	t := value.Null
	for _, e := range exprs {
		et := e.Type()
		switch {
		case et.Kind == value.KindNull:
		case t.Kind == value.KindNull:
			t = et
		case t.Kind == et.Kind && t.Kind != value.KindDecimal:
		case t.Numeric() && et.Numeric():
			t = widen(t, et)
		default:
			return value.Type{}, typeErrorf("%s mixes %s and %s", what, t, et)
		}
	}
	return t, nil
}

func widen(a, b value.Type) value.Type {
	switch {
	case a.Kind == value.KindDouble || b.Kind == value.KindDouble:
		return value.Double
	case a.Kind == value.KindInt && b.Kind == value.KindInt:
		return value.Int
	}
	return value.Decimal(value.MaxDecimalPrecision, int(max(a.Scale, b.Scale)))
}

// Coerce converts e to type t if it has another type; numbers widen only.
func Coerce(e Expr, t value.Type) Expr {
	if e.Type() == t || e.Type().Kind == value.KindNull && t.Kind == value.KindNull {
		return e
	}
	if c, ok := e.(*Const); ok && c.V.IsNull() {
		return &Const{T: t}
	}
	return &Cast{X: e, T: t}
}

// In is x [NOT] IN (list). With NULLs it follows SQL: no match and a NULL in
// the list (or a NULL x) yields NULL.
type In struct {
	X    Expr
	List []Expr
	Not  bool
	// consts holds the list when every item is a non-NULL constant.
	consts    []value.Value
	constNull bool
}

// NewIn type-checks x [NOT] IN (list).
func NewIn(x Expr, list []Expr, not bool) (Expr, error) {
	for _, item := range list {
		if !value.Comparable(x.Type(), item.Type()) {
			return nil, typeErrorf("IN compares %s with %s", x.Type(), item.Type())
		}
	}
	in := &In{X: x, List: list, Not: not}
	allConsts := true
	for _, item := range list {
		c, ok := item.(*Const)
		if !ok {
			allConsts = false
			break
		}
		if c.V.IsNull() {
			in.constNull = true
		} else {
			in.consts = append(in.consts, c.V)
		}
	}
	if !allConsts {
		in.consts, in.constNull = nil, false
	}
	return Fold(in)
}

// Type implements Expr.
func (in *In) Type() value.Type { return value.Bool }

func (in *In) String() string {
	parts := make([]string, len(in.List))
	for i, e := range in.List {
		parts[i] = e.String()
	}
	op := " IN ("
	if in.Not {
		op = " NOT IN ("
	}
	return "(" + in.X.String() + op + strings.Join(parts, ", ") + "))"
}

func (in *In) operands() []Expr { return append([]Expr{in.X}, in.List...) }

// Eval implements Expr.
func (in *In) Eval(row value.Row) (value.Value, error) {
	x, err := in.X.Eval(row)
	if err != nil || x.IsNull() {
		return value.Value{}, err
	}
	found, sawNull := false, false
	if in.consts != nil || in.constNull {
		sawNull = in.constNull
		for _, c := range in.consts {
			if value.Compare(x, c) == 0 {
				found = true
				break
			}
		}
	} else {
		for _, e := range in.List {
			v, err := e.Eval(row)
			if err != nil {
				return value.Value{}, err
			}
			if v.IsNull() {
				sawNull = true
				continue
			}
			if value.Compare(x, v) == 0 {
				found = true
				break
			}
		}
	}
	switch {
	case found:
		return value.BoolValue(!in.Not), nil
	case sawNull:
		return value.Value{}, nil
	}
	return value.BoolValue(in.Not), nil
}

// Coalesce returns its first non-NULL argument.
type Coalesce struct {
	Args []Expr
	T    value.Type
}

// NewCoalesce type-checks COALESCE(args...).
func NewCoalesce(args []Expr) (Expr, error) {
	t, err := CommonType("COALESCE", args...)
	if err != nil {
		return nil, err
	}
	c := &Coalesce{T: t, Args: make([]Expr, len(args))}
	for i, a := range args {
		c.Args[i] = Coerce(a, t)
	}
	return Fold(c)
}

// Type implements Expr.
func (c *Coalesce) Type() value.Type { return c.T }

func (c *Coalesce) String() string { return "coalesce(" + joinExprs(c.Args) + ")" }

func (c *Coalesce) operands() []Expr { return c.Args }

// Eval implements Expr.
func (c *Coalesce) Eval(row value.Row) (value.Value, error) {
	for _, a := range c.Args {
		v, err := a.Eval(row)
		if err != nil || !v.IsNull() {
			return v, err
		}
	}
	return value.Value{}, nil
}

func joinExprs(es []Expr) string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.String()
	}
	return strings.Join(parts, ", ")
}
