// Package plan holds logical query plans: trees of relational nodes whose
// leaves are source scans. The SQL front end builds them; the streamop package
// turns them into streaming operators that partition workers run.
package plan

import (
	"fmt"
	"slices"
	"strings"

	"github.com/sluice-dev/sluice/runtime/expr"
	"github.com/sluice-dev/sluice/runtime/value"
)

// Node is one relational operator of a plan.
type Node interface {
	// Columns is the node's output schema.
	Columns() []value.Column
	// Inputs are the nodes it reads.
	Inputs() []Node
	// Describe is a one-line description for EXPLAIN output.
	Describe() string
}

// Scan reads a source.
type Scan struct {
	Source string
	Cols   []value.Column
}

// Columns implements Node.
func (s *Scan) Columns() []value.Column { return s.Cols }

// Inputs implements Node.
func (s *Scan) Inputs() []Node { return nil }

// Describe implements Node.
func (s *Scan) Describe() string {
	return fmt.Sprintf("Scan %s [%s]", s.Source, describeColumns(s.Cols))
}

// Filter keeps the rows for which Predicate is TRUE; FALSE and NULL drop them.
type Filter struct {
	Input     Node
	Predicate expr.Expr
}

// Columns implements Node.
func (f *Filter) Columns() []value.Column { return f.Input.Columns() }

// Inputs implements Node.
func (f *Filter) Inputs() []Node { return []Node{f.Input} }

// Describe implements Node.
func (f *Filter) Describe() string { return "Filter " + f.Predicate.String() }

// Project computes one output column per expression.
type Project struct {
	Input Node
	Exprs []expr.Expr
	Names []string
}

// Columns implements Node.
func (p *Project) Columns() []value.Column {
	cols := make([]value.Column, len(p.Exprs))
	for i, e := range p.Exprs {
		cols[i] = value.Column{Name: p.Names[i], Type: e.Type()}
	}
	return cols
}

// Inputs implements Node.
func (p *Project) Inputs() []Node { return []Node{p.Input} }

// Describe implements Node.
func (p *Project) Describe() string {
	parts := make([]string, len(p.Exprs))
	for i, e := range p.Exprs {
		parts[i] = e.String() + " AS " + p.Names[i]
	}
	return "Project " + strings.Join(parts, ", ")
}

func describeColumns(cols []value.Column) string {
	parts := make([]string, len(cols))
	for i, c := range cols {
		parts[i] = c.Name + " " + c.Type.String()
	}
	return strings.Join(parts, ", ")
}

// Explain renders a plan as an indented tree, the root first, with its output
// schema.
func Explain(n Node) string { return ExplainSteps(n, nil) }

// ExplainSteps is Explain with steps the engine runs between nodes: the
// line of steps[n] comes where n would, and n under it.
func ExplainSteps(n Node, steps map[Node]string) string {
	var b strings.Builder
	var walk func(n Node, depth int)
	walk = func(n Node, depth int) {
		if step, ok := steps[n]; ok {
			b.WriteString(strings.Repeat("  ", depth))
			b.WriteString(step)
			b.WriteByte('\n')
			depth++
		}
		b.WriteString(strings.Repeat("  ", depth))
		b.WriteString(n.Describe())
		b.WriteByte('\n')
		for _, in := range n.Inputs() {
			walk(in, depth+1)
		}
	}
	fmt.Fprintf(&b, "Output [%s]\n", describeColumns(n.Columns()))
	walk(n, 1)
	return b.String()
}

// Sources lists the names of the sources a plan scans, in plan order,
// each once.
func Sources(n Node) []string {
	if s, ok := n.(*Scan); ok {
		return []string{s.Source}
	}
	var out []string
	for _, in := range n.Inputs() {
		for _, s := range Sources(in) {
			if !slices.Contains(out, s) { // a table joined twice is read once
				out = append(out, s)
			}
		}
	}
	return out
}
