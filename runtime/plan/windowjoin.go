package plan

import (
	"strings"

	"github.com/sluice-dev/sluice/runtime/expr"
	"github.com/sluice-dev/sluice/runtime/value"
)

// WindowJoin joins the rows of two windowed aggregations of the same
// TUMBLE or HOP windows, each of one source (a window join): a row of
// each side's window with equal keys. Each side is the aggregation's
// select list over its optional HAVING, over the Aggregate, over an
// optional WHERE, over the Scan of its source. Its rows are the left
// side's columns, then the right's.
//
// A window's rows of both sides are complete once both aggregations have
// closed it, so each window is joined once, and nothing of it is kept
// after: the state is the two aggregations' open windows. An outer window
// join writes then, too, the window's rows of a side that match nothing,
// with NULL columns of the other side.
type WindowJoin struct {
	Left, Right Node
	// Outer keeps the left rows that match nothing (LEFT JOIN),
	// RightOuter the right's (RIGHT JOIN); both: FULL JOIN.
	Outer, RightOuter bool
	// LeftKeys and RightKeys are the equality keys, over each side's
	// rows; the first pair is the two sides' window bounds, both
	// window_start or both window_end columns.
	LeftKeys, RightKeys []expr.Expr
	// On is the rest of ON, over the joined row: a pair matches only where
	// it is TRUE. Nil when ON has only keys.
	On expr.Expr
}

// Columns implements Node.
func (j *WindowJoin) Columns() []value.Column {
	return append(append([]value.Column(nil), j.Left.Columns()...), j.Right.Columns()...)
}

// Inputs implements Node.
func (j *WindowJoin) Inputs() []Node { return []Node{j.Left, j.Right} }

// Describe implements Node.
func (j *WindowJoin) Describe() string {
	kind, on := joinWords(j.Outer, j.RightOuter, j.On)
	return "WindowJoin " + kind + " ON " + strings.Join(KeyPairs(j.LeftKeys, j.RightKeys), " AND ") + on
}

// WindowSide is a side of a WindowJoin, taken apart: the aggregation,
// with the WHERE below it and the HAVING and select list above it (each
// nil if absent), and the Scan it reads.
type WindowSide struct {
	Scan   *Scan
	Where  *Filter
	Agg    *Aggregate
	Having *Filter
	Proj   *Project
}

// WindowSideOf takes n, a side of a WindowJoin, apart; ok is false if it
// is not a select list over an optional HAVING over an Aggregate over an
// optional WHERE over a Scan.
func WindowSideOf(n Node) (s WindowSide, ok bool) {
	if s.Proj, ok = n.(*Project); ok {
		n = s.Proj.Input
	}
	if s.Having, ok = n.(*Filter); ok {
		n = s.Having.Input
	}
	if s.Agg, ok = n.(*Aggregate); !ok {
		return s, false
	}
	n = s.Agg.Input
	if s.Where, ok = n.(*Filter); ok {
		n = s.Where.Input
	}
	s.Scan, ok = n.(*Scan)
	return s, ok
}

// WindowBound returns which bound of the window of n's aggregation
// column c of n is, through n's filters and projections: 0 for
// window_start, 1 for window_end; ok is false for any other column.
func WindowBound(n Node, c int) (bound int, ok bool) {
	for {
		switch m := n.(type) {
		case *Project:
			col, isCol := m.Exprs[c].(*expr.Column)
			if !isCol {
				return 0, false
			}
			c, n = col.Index, m.Input
		case *Filter:
			n = m.Input
		case *Aggregate:
			return c, c < 2
		default:
			return 0, false
		}
	}
}
