package plan

import (
	"fmt"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/runtime/aggregate"
	"github.com/sluice-dev/sluice/runtime/expr"
	"github.com/sluice-dev/sluice/runtime/value"
)

// WindowKind is the kind of a windowing table function.
type WindowKind uint8

// The window kinds.
const (
	// Tumble windows are fixed-size, adjacent and disjoint.
	Tumble WindowKind = iota
	// Hop windows are fixed-size and start every slide, so they overlap
	// when the slide is shorter than the size.
	Hop
	// Session windows group a key's rows that are less than a gap apart.
	Session
	// Continuous is no window: a GROUP BY of the whole stream, whose
	// groups live for ever and whose result is a changelog, each group's
	// row written again whenever it changes.
	Continuous
)

var windowNames = [...]string{Tumble: "TUMBLE", Hop: "HOP", Session: "SESSION", Continuous: "CONTINUOUS"}

func (k WindowKind) String() string { return windowNames[k] }

// Window is a windowing table function over a source's event time, or
// its processing time, or Continuous, none.
type Window struct {
	Kind WindowKind
	// Time is the event-time column of the input; nil for Continuous and
	// for processing time.
	Time *expr.Column
	// ProcTime windows rows by the time they are processed (PROCTIME()),
	// and closes windows as the clock passes their end.
	ProcTime bool
	// Size is the window length (Tumble, Hop), Slide how often a hop window
	// starts, Gap the inactivity that ends a session; all in nanoseconds.
	Size, Slide, Gap int64
}

func (w Window) String() string {
	d := func(ns int64) string { return time.Duration(ns).String() }
	by := "PROCTIME()"
	if w.Time != nil {
		by = w.Time.Name
	}
	switch w.Kind {
	case Hop:
		return fmt.Sprintf("HOP(%s, slide %s, size %s)", by, d(w.Slide), d(w.Size))
	case Session:
		return fmt.Sprintf("SESSION(%s, gap %s)", by, d(w.Gap))
	case Continuous:
		return "CONTINUOUS"
	}
	return fmt.Sprintf("TUMBLE(%s, %s)", by, d(w.Size))
}

// AggCall is one aggregate function call: its function and argument, an
// expression over the aggregate's input; nil for COUNT(*).
type AggCall struct {
	Func aggregate.Func
	Arg  expr.Expr
}

func (a AggCall) String() string {
	if a.Arg == nil {
		return "count(*)"
	}
	if a.Func.Kind == aggregate.CountDistinct {
		return "count(DISTINCT " + a.Arg.String() + ")"
	}
	return a.Func.Kind.String() + "(" + a.Arg.String() + ")"
}

// Aggregate groups its input's rows by window and key and aggregates each
// group. Its rows are window_start, window_end, the keys, then the
// aggregates, in that order; a Continuous aggregate's window bounds are
// the least and greatest timestamps, and no query reads them.
type Aggregate struct {
	Input  Node
	Window Window
	Keys   []expr.Expr
	// KeyNames name the key columns of the output.
	KeyNames []string
	Aggs     []AggCall
	// EmitChanges emits a group's current row after every batch that
	// changed it, instead of once when the watermark closes its window.
	// A Continuous aggregate always does.
	EmitChanges bool
	// Distinct, of a Continuous aggregate with no aggregates (SELECT
	// DISTINCT), writes a group's row once, when the group starts, rather
	// than at each change: its output is a stream, not a changelog.
	Distinct bool
}

// WholeWindows reports whether a's rows of a window all come at once, when
// the window closes: of tumbling or hopping windows, without EMIT
// CHANGES. A top-N ranks only such rows.
func (a *Aggregate) WholeWindows() bool {
	return !a.EmitChanges && (a.Window.Kind == Tumble || a.Window.Kind == Hop)
}

// Columns implements Node.
func (a *Aggregate) Columns() []value.Column {
	cols := []value.Column{{Name: "window_start", Type: value.Timestamp}, {Name: "window_end", Type: value.Timestamp}}
	for i, k := range a.Keys {
		cols = append(cols, value.Column{Name: a.KeyNames[i], Type: k.Type()})
	}
	for i, c := range a.Aggs {
		cols = append(cols, value.Column{Name: fmt.Sprintf("_agg%d", i), Type: c.Func.Type})
	}
	return cols
}

// Inputs implements Node.
func (a *Aggregate) Inputs() []Node { return []Node{a.Input} }

// Describe implements Node.
func (a *Aggregate) Describe() string {
	var b strings.Builder
	b.WriteString("Aggregate " + a.Window.String())
	if len(a.Keys) > 0 {
		parts := make([]string, len(a.Keys))
		for i, k := range a.Keys {
			parts[i] = k.String()
		}
		b.WriteString(" BY " + strings.Join(parts, ", "))
	}
	if a.Distinct {
		b.WriteString(" DISTINCT")
	}
	if len(a.Aggs) > 0 {
		parts := make([]string, len(a.Aggs))
		for i, c := range a.Aggs {
			parts[i] = c.String()
		}
		b.WriteString(" COMPUTE " + strings.Join(parts, ", "))
	}
	if a.EmitChanges && a.Window.Kind != Continuous {
		b.WriteString(" EMIT CHANGES")
	}
	return b.String()
}

// OverCall is one moving aggregate: a function over its argument within a
// frame of the rows of the same partition key before the current row.
type OverCall struct {
	Func  aggregate.Func
	Arg   expr.Expr // nil for COUNT(*)
	Frame aggregate.FrameSpec
}

func (o OverCall) String() string {
	arg := "*"
	if o.Arg != nil {
		arg = o.Arg.String()
	}
	frame := fmt.Sprintf("ROWS %d PRECEDING", o.Frame.Preceding)
	if o.Frame.Range {
		frame = fmt.Sprintf("RANGE %s PRECEDING", time.Duration(o.Frame.Preceding))
	}
	return fmt.Sprintf("%s(%s) OVER (%s)", o.Func.Kind, arg, frame)
}

// Over appends to each input row the moving aggregates of its partition
// key, over the rows in event-time order. Its rows are the input's columns,
// then one column per call.
//
// Over the rows of a GROUP BY without a window (a changelog, each row
// replacing its group's earlier one), Time is nil and the rows are in
// Order, then in the order of their groups' keys: each group's latest row
// has its place in its partition, and a change rewrites the rows whose
// frames hold it.
type Over struct {
	Input     Node
	Time      *expr.Column
	Order     []SortKey
	Partition []expr.Expr
	Calls     []OverCall
}

// Columns implements Node.
func (o *Over) Columns() []value.Column {
	cols := append([]value.Column(nil), o.Input.Columns()...)
	for i, c := range o.Calls {
		cols = append(cols, value.Column{Name: fmt.Sprintf("_over%d", i), Type: c.Func.Type})
	}
	return cols
}

// Inputs implements Node.
func (o *Over) Inputs() []Node { return []Node{o.Input} }

// Describe implements Node.
func (o *Over) Describe() string {
	parts := make([]string, len(o.Partition))
	for i, k := range o.Partition {
		parts[i] = k.String()
	}
	calls := make([]string, len(o.Calls))
	for i, c := range o.Calls {
		calls[i] = c.String()
	}
	var order string
	if o.Time != nil {
		order = o.Time.Name
	} else {
		keys := make([]string, len(o.Order))
		for i, k := range o.Order {
			keys[i] = k.String()
		}
		order = strings.Join(keys, ", ")
	}
	return fmt.Sprintf("Over PARTITION BY %s ORDER BY %s COMPUTE %s", strings.Join(parts, ", "), order, strings.Join(calls, ", "))
}

// EventTime returns the event-time column of a plan's stateful node, or nil
// for a stateless plan and a continuous aggregation, which needs none.
func EventTime(n Node) *expr.Column {
	switch n := n.(type) {
	case *Aggregate:
		return n.Window.Time
	case *Over:
		return n.Time
	case *Join:
		if n.AsOf != nil {
			return n.AsOf
		}
		return n.LeftTime
	case *TopN:
		if n.Window != nil {
			return n.Window.Time
		}
	}
	for _, in := range n.Inputs() {
		if c := EventTime(in); c != nil {
			return c
		}
	}
	return nil
}
