package expr

import (
	"slices"
	"testing"

	"github.com/sluice-dev/sluice/runtime/value"
)

// TestMapColumns: each column an expression reads is replaced, inside any
// composite (here CASE, a comparison, a function call), the rest kept;
// an expression whose columns all stay is returned as it is.
func TestMapColumns(t *testing.T) {
	a := &Column{Index: 0, Name: "a", T: value.Int}
	b := &Column{Index: 5, Name: "b", T: value.Int}
	cond, err := NewCompare(Gt, a, NewConst(value.IntValue(1)))
	if err != nil {
		t.Fatal(err)
	}
	abs, err := Call("abs", []Expr{b})
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewCase([]When{{Cond: cond, Then: abs}}, a)
	if err != nil {
		t.Fatal(err)
	}
	shift := func(c *Column) Expr {
		if c.Index < 5 {
			return c
		}
		moved := *c
		moved.Index += 3
		return &moved
	}
	got := MapColumns(e, shift)
	if cols := Columns(nil, got); !slices.Equal(cols, []int{0, 8, 0}) {
		t.Errorf("columns read after the map: %v, want [0 8 0]", cols)
	}
	if got.String() != e.String() {
		t.Errorf("mapped %s, want %s", got, e)
	}
	if cols := Columns(nil, e); !slices.Equal(cols, []int{0, 5, 0}) {
		t.Errorf("the original reads %v after the map, want [0 5 0]: it changed", cols)
	}
	if same := MapColumns(cond, shift); same != cond {
		t.Errorf("an expression whose columns stay came back as another")
	}
}
