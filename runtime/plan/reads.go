package plan

import "github.com/sluice-dev/sluice/runtime/expr"

// ReadColumns returns, of each source a plan scans, which of its columns
// the plan reads: those an expression of some node uses, or a node passes
// on to the root's output. A source's decoder may leave the others NULL.
func ReadColumns(root Node) map[string][]bool {
	reads := map[string][]bool{}
	var need func(n Node, out []bool)
	need = func(n Node, out []bool) {
		switch n := n.(type) {
		case *Scan:
			r := reads[n.Source]
			if r == nil {
				r = make([]bool, len(n.Cols))
				reads[n.Source] = r
			}
			for i, read := range out {
				r[i] = r[i] || read
			}
		case *Filter:
			in := append([]bool(nil), out...)
			mark(in, n.Predicate)
			need(n.Input, in)
		case *Project:
			in := make([]bool, len(n.Input.Columns()))
			for i, read := range out {
				if read {
					mark(in, n.Exprs[i])
				}
			}
			need(n.Input, in)
		case *Aggregate:
			in := make([]bool, len(n.Input.Columns()))
			mark(in, n.Keys...)
			for _, c := range n.Aggs {
				if c.Arg != nil {
					mark(in, c.Arg)
				}
			}
			if n.Window.Time != nil {
				mark(in, n.Window.Time)
			}
			need(n.Input, in)
		case *Over:
			in := passed(n.Input, out)
			mark(in, n.Partition...)
			if n.Time != nil {
				mark(in, n.Time)
			}
			for _, k := range n.Order {
				mark(in, k.Expr)
			}
			for _, c := range n.Calls {
				if c.Arg != nil {
					mark(in, c.Arg)
				}
			}
			need(n.Input, in)
		case *TopN:
			in := passed(n.Input, out)
			mark(in, n.Partition...) // the window bounds and rank are the top-N's own
			for _, k := range n.Order {
				mark(in, k.Expr)
			}
			if n.Window != nil {
				mark(in, n.Window.Time)
			}
			need(n.Input, in)
		case *Union:
			for _, b := range n.Branches {
				need(b, out)
			}
		case *Join:
			joined := append([]bool(nil), out...)
			if n.On != nil {
				mark(joined, n.On)
			}
			width := len(n.Left.Cols)
			left, right := joined[:width], joined[width:]
			mark(left, n.LeftKeys...)
			mark(right, n.RightKeys...)
			if n.LeftTime != nil {
				mark(left, n.LeftTime)
			}
			if n.RightTime != nil {
				mark(right, n.RightTime)
			}
			if n.AsOf != nil {
				mark(left, n.AsOf)
				mark(right, n.TableTime)
			}
			for _, l := range n.Lookups {
				mark(joined, l.Keys...)
				if l.On != nil {
					mark(joined, l.On)
				}
			}
			for _, s := range n.Streams {
				mark(joined, s.Keys...)
				mark(joined, s.Time)
				if s.On != nil {
					mark(joined, s.On)
				}
			}
			need(n.Left, left)
			at := width + len(n.Right.Cols)
			need(n.Right, joined[width:at])
			for _, s := range n.Streams {
				stream := joined[at : at+len(s.Stream.Cols)]
				mark(stream, s.StreamKeys...)
				mark(stream, s.StreamTime)
				need(s.Stream, stream)
				at += len(s.Stream.Cols)
			}
			for _, l := range n.Lookups {
				table := joined[at : at+len(l.Table.Cols)]
				mark(table, l.TableKeys...)
				if l.TableTime != nil {
					mark(table, l.TableTime)
				}
				need(l.Table, table)
				at += len(l.Table.Cols)
			}
		default:
			// A node this walk does not know: every column below it.
			for _, in := range n.Inputs() {
				need(in, all(len(in.Columns())))
			}
		}
	}
	need(root, all(len(root.Columns())))
	return reads
}

// passed returns the columns of input that a node which passes its input's
// columns on first, then adds its own, reads for its needed ones.
func passed(input Node, out []bool) []bool {
	in := make([]bool, len(input.Columns()))
	copy(in, out)
	return in
}

// mark sets the columns of cols that exprs use; those beyond it (a
// node's own, such as a top-N's window bounds) are not its input's.
func mark(cols []bool, exprs ...expr.Expr) {
	for _, e := range exprs {
		for _, c := range expr.Columns(nil, e) {
			if c < len(cols) {
				cols[c] = true
			}
		}
	}
}

func all(n int) []bool {
	cols := make([]bool, n)
	for i := range cols {
		cols[i] = true
	}
	return cols
}
