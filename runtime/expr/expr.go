// Package expr holds compiled, typed SQL expressions. The SQL front end checks
// types once, when it plans a query, and builds a tree of these nodes; evaluating
// one against a row then does no type dispatch beyond a switch on a known kind
// and allocates nothing unless the result is a new string.
//
// Expressions are immutable once built, so one tree serves every worker.
package expr

import (
	"errors"
	"fmt"

	"github.com/sluice-dev/sluice/runtime/value"
)

// Expr is a typed expression over a row.
type Expr interface {
	// Type is the type of every non-NULL result.
	Type() value.Type
	// Eval computes the expression for row. An error is a failure of this row
	// only, such as a CAST of bad text or a division by zero.
	Eval(row value.Row) (value.Value, error)
	// String renders the expression for plans and messages.
	String() string
}

// Column reads one column of the row.
type Column struct {
	Index int
	Name  string
	T     value.Type
}

// Type implements Expr.
func (c *Column) Type() value.Type { return c.T }

// Eval implements Expr.
func (c *Column) Eval(row value.Row) (value.Value, error) { return row[c.Index], nil }

func (c *Column) String() string { return c.Name }

// Const is a constant.
type Const struct {
	V value.Value
	T value.Type
}

// NewConst returns a constant of v's own type; NULL has type null.
func NewConst(v value.Value) *Const {
	t := value.Type{Kind: v.Kind()}
	if t.Kind == value.KindDecimal {
		t = value.Decimal(value.MaxDecimalPrecision, int(v.Scale()))
	}
	return &Const{V: v, T: t}
}

// Type implements Expr.
func (c *Const) Type() value.Type { return c.T }

// Eval implements Expr.
func (c *Const) Eval(value.Row) (value.Value, error) { return c.V, nil }

func (c *Const) String() string {
	switch c.V.Kind() {
	case value.KindString:
		return "'" + c.V.Str() + "'"
	case value.KindTimestamp:
		return "TIMESTAMP '" + c.V.String() + "'"
	case value.KindInterval:
		return "INTERVAL '" + c.V.String() + "'"
	}
	return c.V.String()
}

// Fold evaluates e at plan time when every leaf of it is a constant, so that
// errors in constant expressions are found before any record is read.
func Fold(e Expr) (Expr, error) {
	if _, ok := e.(*Const); ok || !allConst(e) {
		return e, nil
	}
	v, err := e.Eval(nil)
	if err != nil {
		return nil, err
	}
	return &Const{V: v, T: e.Type()}, nil
}

// parent is a composite node: operands lists its operands, for folding and
// walking; withOperands returns a copy of it with its operands, in that
// order, replaced.
type parent interface {
	operands() []Expr
	withOperands(ops []Expr) Expr
}

// Columns appends to dst the index of each column e reads, once for each
// time it reads it.
func Columns(dst []int, e Expr) []int {
	switch n := e.(type) {
	case *Column:
		return append(dst, n.Index)
	case parent:
		for _, c := range n.operands() {
			dst = Columns(dst, c)
		}
	}
	return dst
}

// MapColumns returns e with each column it reads replaced by what f
// returns for it, e itself if none changed.
func MapColumns(e Expr, f func(*Column) Expr) Expr {
	switch n := e.(type) {
	case *Column:
		return f(n)
	case parent:
		ops := n.operands()
		out := make([]Expr, len(ops))
		changed := false
		for i, op := range ops {
			out[i] = MapColumns(op, f)
			changed = changed || out[i] != op
		}
		if changed {
			return n.withOperands(out)
		}
	}
	return e
}

// ReadsClock reports whether e reads the clock (now()), so that two
// evaluations of it over one row may differ.
func ReadsClock(e Expr) bool {
	switch n := e.(type) {
	case *Now:
		return true
	case parent:
		for _, c := range n.operands() {
			if ReadsClock(c) {
				return true
			}
		}
	}
	return false
}

func allConst(e Expr) bool {
	switch n := e.(type) {
	case *Const:
		return true
	case *Column, *Now:
		return false
	case parent:
		for _, c := range n.operands() {
			if !allConst(c) {
				return false
			}
		}
		return true
	}
	return false
}

// EvalError is a failure to evaluate an expression for one row.
type EvalError struct {
	Expr string
	Err  error
}

func (e *EvalError) Error() string { return fmt.Sprintf("evaluating %s: %v", e.Expr, e.Err) }

func (e *EvalError) Unwrap() error { return e.Err }

func evalErr(e Expr, err error) error {
	var ee *EvalError
	if errors.As(err, &ee) {
		return err
	}
	return &EvalError{Expr: e.String(), Err: err}
}

// TypeError is a type mismatch found while planning.
type TypeError struct{ Msg string }

func (e *TypeError) Error() string { return e.Msg }

func typeErrorf(format string, args ...any) error {
	return &TypeError{Msg: fmt.Sprintf(format, args...)}
}
