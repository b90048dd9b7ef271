package expr

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/sluice-dev/sluice/runtime/value"
)

// Shared is a subexpression that one stage's expressions hold more than
// once, as regexp_extract(url, ...) in both the WHERE and the select list,
// or a WITH query's column used twice. It is evaluated once a row, where it
// is first needed, and kept in the row's column Slot for the other places:
// a row must have that column, holding value.Pending() until then. Being
// evaluated where it is first needed, it keeps the order of evaluation and
// the short circuits of AND, OR and CASE: a shared 10 / x after x <> 0 AND
// still never divides by zero.
type Shared struct {
	X    Expr
	Slot int
}

// Type implements Expr.
func (s *Shared) Type() value.Type { return s.X.Type() }

// String renders the expression it stands for.
func (s *Shared) String() string { return s.X.String() }

// Eval implements Expr. A failure is not kept: the row fails where it first
// evaluates the expression, as it would without sharing.
func (s *Shared) Eval(row value.Row) (value.Value, error) {
	if v := row[s.Slot]; !v.IsPending() {
		return v, nil
	}
	v, err := s.X.Eval(row)
	if err != nil {
		return value.Value{}, err
	}
	row[s.Slot] = v
	return v, nil
}

// Share rewrites exprs, the expressions one stage evaluates over each row
// of width columns (a nil one stays nil), so that each subexpression that
// does more than read, compare and add up a few values, and occurs more
// than once among them, is a Shared one, evaluated once a row. It returns
// the rewritten expressions and how many columns past width a row needs
// for them (0: exprs are returned as they are). Subexpressions that read
// the clock are not shared.
func Share(width int, exprs ...Expr) ([]Expr, int) {
	s := sharer{ids: map[string]int{}, nodes: map[Expr]int{}, slots: map[int]*Shared{}, width: width}
	for _, e := range exprs {
		if e != nil {
			s.id(e)
		}
	}
	// Count each subexpression where it would be evaluated: not inside the
	// second and later occurrences of a shared one, which are not.
	s.uses = make([]int, len(s.ids))
	seen := make([]bool, len(s.ids))
	for _, e := range exprs {
		if e != nil {
			s.count(e, seen)
		}
	}
	out := make([]Expr, len(exprs))
	for i, e := range exprs {
		if e != nil {
			out[i] = s.rewrite(e)
		}
	}
	if len(s.slots) == 0 {
		return exprs, 0
	}
	return out, len(s.slots)
}

// sharer numbers structurally equal subexpressions alike.
type sharer struct {
	width int
	ids   map[string]int // a node's key: its id
	nodes map[Expr]int   // a node: its id
	total []int          // by id: occurrences in the expressions
	uses  []int          // by id: occurrences evaluated
	// By id: the subexpression does more than read, compare and add up
	// values (keeping its value costs less than evaluating it again); it
	// reads the clock (two evaluations may differ: not shared).
	costly, clock []bool
	slots         map[int]*Shared
}

// id numbers e and its operands bottom up: two subexpressions get one id
// when they are of one kind and type, render alike with their operands
// named by their ids, and have operands of the same ids. The key of a node
// is linear in its own text, not its subtree's, so numbering a tree takes
// time linear in its size.
func (s *sharer) id(e Expr) int {
	var key string
	costly, clock := false, false
	switch n := e.(type) {
	case *Column:
		key = "column " + strconv.Itoa(n.Index) + " " + n.T.String()
	case *Const:
		// The value's kind: a NULL of type string renders as 'NULL' does.
		key = fmt.Sprintf("const %s %s %d %q", n.T, n.V.Kind(), n.V.Scale(), n.V.String())
	case parent:
		ops := n.operands()
		ids := make([]string, len(ops))
		holes := make([]Expr, len(ops))
		for i, op := range ops {
			id := s.id(op)
			costly = costly || s.costly[id]
			clock = clock || s.clock[id]
			ids[i] = strconv.Itoa(id)
			holes[i] = &Column{Index: -1, Name: "$" + ids[i], T: op.Type()}
		}
		key = fmt.Sprintf("%T %s %s (%s)", e, e.Type(), n.withOperands(holes), strings.Join(ids, " "))
		costly = costly || !arithmetic(e)
	default:
		key = fmt.Sprintf("%T %s", e, e)
		_, clock = e.(*Now)
	}
	id, ok := s.ids[key]
	if !ok {
		id = len(s.ids)
		s.ids[key] = id
		s.total = append(s.total, 0)
		s.costly = append(s.costly, costly)
		s.clock = append(s.clock, clock)
	}
	s.total[id]++
	s.nodes[e] = id
	return id
}

// count counts the evaluated occurrences of e's subexpressions.
func (s *sharer) count(e Expr, seen []bool) {
	id := s.nodes[e]
	s.uses[id]++
	if s.shared(id, s.total) && seen[id] {
		return
	}
	seen[id] = true
	if p, ok := e.(parent); ok {
		for _, op := range p.operands() {
			s.count(op, seen)
		}
	}
}

// rewrite returns e with the subexpressions evaluated more than once
// shared.
func (s *sharer) rewrite(e Expr) Expr {
	id := s.nodes[e]
	if s.shared(id, s.uses) {
		if sh, ok := s.slots[id]; ok {
			return sh
		}
		sh := &Shared{Slot: s.width + len(s.slots)}
		s.slots[id] = sh
		sh.X = s.rewriteOperands(e)
		return sh
	}
	return s.rewriteOperands(e)
}

func (s *sharer) rewriteOperands(e Expr) Expr {
	p, ok := e.(parent)
	if !ok {
		return e
	}
	ops := p.operands()
	changed := false
	out := make([]Expr, len(ops))
	for i, op := range ops {
		out[i] = s.rewrite(op)
		changed = changed || out[i] != op
	}
	if !changed {
		return e
	}
	return p.withOperands(out)
}

// shared reports whether subexpression id is shared, given how many
// times each subexpression occurs.
func (s *sharer) shared(id int, occurs []int) bool {
	return occurs[id] > 1 && s.costly[id] && !s.clock[id]
}

// arithmetic reports whether e, an operator, costs no more than a look at
// a row's column beside reading its operands.
func arithmetic(e Expr) bool {
	switch e.(type) {
	case *Arith, *Compare, *Negate, *Logic, *Not, *IsNull, *BoolTest, *Distinct:
		return true
	}
	return false
}

// Every composite node is a parent: one that lacked withOperands would
// fall out of folding and sharing unnoticed.
var _ = []parent{
	(*Shared)(nil), (*Cast)(nil), (*call1)(nil), (*call2)(nil), (*call3)(nil),
	(*NullIf)(nil), (*Extreme)(nil), (*Like)(nil), (*Logic)(nil), (*Not)(nil),
	(*IsNull)(nil), (*BoolTest)(nil), (*In)(nil), (*Coalesce)(nil), (*Arith)(nil),
	(*Negate)(nil), (*Compare)(nil), (*Distinct)(nil), (*RegexpMatch)(nil),
	(*Concat)(nil), (*Case)(nil), (*regexpExtract)(nil), (*regexpReplace)(nil),
}

func (s *Shared) operands() []Expr             { return []Expr{s.X} }
func (s *Shared) withOperands(ops []Expr) Expr { return &Shared{X: ops[0], Slot: s.Slot} }
func (c *Cast) withOperands(ops []Expr) Expr   { n := *c; n.X = ops[0]; return &n }
func (c *call1) withOperands(ops []Expr) Expr  { n := *c; n.x = ops[0]; return &n }
func (c *call2) withOperands(ops []Expr) Expr  { n := *c; n.x, n.y = ops[0], ops[1]; return &n }
func (c *call3) withOperands(ops []Expr) Expr {
	n := *c
	n.x, n.y, n.z = ops[0], ops[1], ops[2]
	return &n
}
func (c *NullIf) withOperands(ops []Expr) Expr   { return &NullIf{X: ops[0], Y: ops[1]} }
func (c *Extreme) withOperands(ops []Expr) Expr  { n := *c; n.Args = ops; return &n }
func (c *Like) withOperands(ops []Expr) Expr     { n := *c; n.X, n.Pattern = ops[0], ops[1]; return &n }
func (c *Logic) withOperands(ops []Expr) Expr    { return &Logic{Or: c.Or, Args: ops} }
func (c *Not) withOperands(ops []Expr) Expr      { return &Not{X: ops[0]} }
func (c *IsNull) withOperands(ops []Expr) Expr   { return &IsNull{X: ops[0], Not: c.Not} }
func (c *BoolTest) withOperands(ops []Expr) Expr { n := *c; n.X = ops[0]; return &n }
func (c *In) withOperands(ops []Expr) Expr       { n := *c; n.X, n.List = ops[0], ops[1:]; return &n }
func (c *Coalesce) withOperands(ops []Expr) Expr { return &Coalesce{Args: ops, T: c.T} }
func (c *Arith) withOperands(ops []Expr) Expr    { n := *c; n.L, n.R = ops[0], ops[1]; return &n }
func (c *Negate) withOperands(ops []Expr) Expr   { return &Negate{X: ops[0]} }
func (c *Compare) withOperands(ops []Expr) Expr  { n := *c; n.L, n.R = ops[0], ops[1]; return &n }
func (c *Distinct) withOperands(ops []Expr) Expr { n := *c; n.L, n.R = ops[0], ops[1]; return &n }
func (c *RegexpMatch) withOperands(ops []Expr) Expr {
	n := *c
	n.X, n.Pattern = ops[0], ops[1]
	return &n
}
func (c *Concat) withOperands(ops []Expr) Expr { return &Concat{Args: ops, Strict: c.Strict} }

func (c *Case) withOperands(ops []Expr) Expr {
	n := &Case{Whens: make([]When, len(c.Whens)), T: c.T}
	for i := range c.Whens {
		n.Whens[i] = When{Cond: ops[2*i], Then: ops[2*i+1]}
	}
	if c.Else != nil {
		n.Else = ops[2*len(c.Whens)]
	}
	return n
}

func (e *regexpExtract) withOperands(ops []Expr) Expr {
	n := *e
	n.x, n.pattern = ops[0], ops[1]
	if e.group != nil {
		n.group = ops[2]
	}
	return &n
}

func (e *regexpReplace) withOperands(ops []Expr) Expr {
	n := *e
	n.x, n.pattern, n.replacement = ops[0], ops[1], ops[2]
	if e.flags != nil {
		n.flags = ops[3]
	}
	return &n
}

// Describe returns a description of e by which two expressions are alike
// only when they compute alike: each subexpression's kind, type and text
// with its operands named by number, its constants' types and values
// quoted (Share's numbering). String, which renders SQL, tells apart less:
// an integer division and a double one of the same text.
func Describe(e Expr) string {
	s := sharer{ids: map[string]int{}, nodes: map[Expr]int{}}
	s.id(e)
	keys := make([]string, len(s.ids))
	for k, id := range s.ids {
		keys[id] = k
	}
	return strings.Join(keys, "; ")
}
