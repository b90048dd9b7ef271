package expr

import (
	"testing"

	"github.com/sluice-dev/sluice/runtime/value"
)

// counted is a costly expression that counts its evaluations.
type counted struct {
	x Expr
	n *int
}

func (c *counted) Type() value.Type                        { return c.x.Type() }
func (c *counted) String() string                          { return "counted(" + c.x.String() + ")" }
func (c *counted) operands() []Expr                        { return []Expr{c.x} }
func (c *counted) withOperands(ops []Expr) Expr            { return &counted{x: ops[0], n: c.n} }
func (c *counted) Eval(row value.Row) (value.Value, error) { *c.n++; return c.x.Eval(row) }

// TestShareEvaluatesOnce: a shared subexpression is evaluated once a row,
// where the expressions as written would first evaluate it, and not at all
// when they would not.
func TestShareEvaluatesOnce(t *testing.T) {
	var n int
	s := &Column{Index: 0, Name: "s", T: value.String}
	k := &Column{Index: 1, Name: "k", T: value.String}
	id := func() Expr { return &counted{x: s, n: &n} } // a new node each time, as the planner makes them
	must := func(e Expr, err error) Expr {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	isZ := must(NewCompare(Eq, k, NewConst(value.StringValue("z"))))
	// WHERE k = 'z' AND counted(s) IS NOT NULL, SELECT CASE WHEN k = 'z' THEN 'hot' ELSE counted(s) END, counted(s)
	where := must(NewLogic(false, isZ, must(NewIsNull(id(), true))))
	pick := must(NewCase([]When{{Cond: isZ, Then: NewConst(value.StringValue("hot"))}}, id()))
	exprs, shared := Share(2, where, pick, id())
	if shared != 1 {
		t.Fatalf("%d shared; want 1", shared)
	}
	for _, c := range []struct {
		k                    string
		afterWhere, inSelect int
	}{
		{k: "z", afterWhere: 1, inSelect: 0}, // the WHERE evaluates it; the select list takes its value
		{k: "y", afterWhere: 0, inSelect: 1}, // the AND stops before it; the select list evaluates it once
	} {
		row := value.Row{value.StringValue("abc"), value.StringValue(c.k), value.Pending()}
		n = 0
		if _, err := exprs[0].Eval(row); err != nil {
			t.Fatal(err)
		}
		if n != c.afterWhere {
			t.Errorf("k = %s: the WHERE evaluated it %d times; want %d", c.k, n, c.afterWhere)
		}
		n = 0
		for _, e := range exprs[1:] {
			if v, err := e.Eval(row); err != nil {
				t.Fatal(err)
			} else if c.k != "z" && v.Str() != "abc" {
				t.Errorf("k = %s: %s = %v; want abc", c.k, e, v)
			}
		}
		if n != c.inSelect {
			t.Errorf("k = %s: the select list evaluated it %d times; want %d", c.k, n, c.inSelect)
		}
	}

	// Nothing to share: the expressions as they are.
	once := []Expr{where, nil, s}
	if got, shared := Share(2, once...); shared != 0 || got[0] != where || got[1] != nil || got[2] != s {
		t.Errorf("Share of expressions that share nothing = %v, %d; want them as they are", got, shared)
	}
}
