// Package streamop turns a logical plan into the streaming operators that a
// partition worker runs. Each worker gets its own operator instances, so any
// state an operator keeps belongs to exactly one goroutine.
package streamop

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/runtime/expr"
	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/plan"
	"github.com/sluice-dev/sluice/runtime/value"
)

// Failures receives the rows that an operator could not process.
type Failures interface {
	// Fail reports that row i of batch in failed at stage with err.
	Fail(in *message.Batch, i int, stage string, err error)
}

// Operator processes the batches of the partitions one worker owns.
type Operator interface {
	// Process reads in and appends its results to out, which has the
	// operator's output width. It returns how many rows it filtered out.
	// Rows that fail go to fail and are neither filtered nor output.
	Process(in, out *message.Batch, fail Failures) (filtered int)
}

// Program is a compiled plan. It is immutable; each worker calls New for its
// own operator, and the stateful stage, if the plan has a stateful node,
// NewStateful and NewPost.
type Program struct {
	// Source is the source the plan scans.
	Source string
	// InputWidth is the number of columns the source's rows have.
	InputWidth int
	// Output is the schema of the results.
	Output []value.Column
	root   plan.Node
	filter *plan.Filter
	proj   *plan.Project
	// stateful is the plan's Aggregate, Over or Join node, nil for a
	// stateless plan; postFilter and postProj are the HAVING and select list above it.
	stateful   plan.Node
	postFilter *plan.Filter
	postProj   *plan.Project
	// passes, for the part below an interval join that repartitioned
	// queries run upstream (Upstream), is the join whose two sources'
	// rows the workers pass on as they are.
	passes *plan.Join
	// rank, of a window top-N of a windowed aggregation, ranks the rows
	// of postProj that rankFilter passes, and ranked are the filters and
	// projections above it, the root first; of a top-N of a source's
	// rows, the stateful node, ranked are those above it.
	rank       *plan.TopN
	rankFilter *plan.Filter
	ranked     []plan.Node
	// branches, of a UNION ALL, are the programs of its branches, by
	// source: each a stateless program.
	branches map[string]*Program
	// joined, of a stateful node over a join, is the join, and
	// joinFilter the WHERE between them; the stateful stage runs both
	// (afterJoin).
	joined     *plan.Join
	joinFilter *plan.Filter
	// inner, of an aggregation of another's rows, is the aggregation
	// below, and innerProj its select list; the stateful stage runs both
	// (changeAgg), and the stateful node is the outer aggregation.
	inner     *plan.Aggregate
	innerProj *plan.Project
}

// Root is the plan the program was compiled from.
func (p *Program) Root() plan.Node { return p.root }

// Compile compiles a plan of an optional Project over an optional Filter
// over either a Scan, or a stateful node (Aggregate, Over or Join) over an
// optional Filter over a Scan, or over the two scans of a join; or of
// filters and projections over a TopN over such a plan of a tumbling or
// hopping Aggregate. An Aggregate, an Over or a TopN of rows may read a
// join, through a Filter, in place of a Scan.
func Compile(root plan.Node) (*Program, error) {
	p := &Program{Output: root.Columns(), root: root}
	if u, ok := root.(*plan.Union); ok {
		return compileUnion(p, u)
	}
	n := root
	for {
		switch m := n.(type) {
		case *plan.Project, *plan.Filter:
			p.ranked = append(p.ranked, m)
			n = m.Inputs()[0]
			continue
		case *plan.TopN:
			p.rank = m
			n = m.Input
		}
		break
	}
	switch {
	case p.rank == nil:
		p.ranked, n = nil, root
	case p.rank.Rows():
		// A top-N of a source's rows is the stateful node; the filters
		// and projections above it run after it, the workers the filter
		// below it.
		p.stateful, p.rank = p.rank, nil
		if f, ok := n.(*plan.Filter); ok {
			p.filter = f
			n = f.Input
		}
		if p.overJoin(n) {
			return p, nil
		}
		scan, ok := n.(*plan.Scan)
		if _, keyed := p.stateful.(*plan.TopN).RowKeys(); !ok || !keyed {
			return nil, fmt.Errorf("cannot run plan node %q over %q yet", p.stateful.Describe(), n.Describe())
		}
		p.Source, p.InputWidth = scan.Source, len(scan.Cols)
		return p, nil
	default:
		if agg, _, ok := p.rank.RankedAggregate(); !ok || !agg.WholeWindows() {
			return nil, fmt.Errorf("cannot run plan node %q over %q yet", p.rank.Describe(), p.rank.Input.Describe())
		}
		if f, ok := n.(*plan.Filter); ok {
			p.rankFilter = f // the ranking query's WHERE
			n = f.Input
		}
	}
	if pr, ok := n.(*plan.Project); ok {
		p.proj = pr
		n = pr.Input
	}
	if f, ok := n.(*plan.Filter); ok {
		p.filter = f
		n = f.Input
	}
	if j, ok := n.(*plan.WindowJoin); ok {
		// As for a join; the stateful stage runs each side's WHERE too.
		left, _ := plan.WindowSideOf(j.Left)
		p.stateful, p.postFilter, p.postProj = j, p.filter, p.proj
		p.filter, p.proj = nil, nil
		p.Source, p.InputWidth = left.Scan.Source, len(left.Scan.Cols)
		return p, nil
	}
	if j, ok := n.(*plan.Join); ok {
		// The workers pass each source's rows on as they are; the join and
		// everything above it run in the stateful stage.
		p.stateful, p.postFilter, p.postProj = j, p.filter, p.proj
		p.filter, p.proj = nil, nil
		p.Source = j.Left.Source
		p.InputWidth = len(j.Left.Cols)
		return p, nil
	}
	switch n.(type) {
	case *plan.Aggregate, *plan.Over:
		// What was above the stateful node runs after it; the workers run
		// the filter below it.
		p.stateful, p.postFilter, p.postProj = n, p.filter, p.proj
		p.filter, p.proj = nil, nil
		n = n.Inputs()[0]
		if inner := plan.AggregateBelow(n); inner != nil {
			// An aggregation, or OVER, of another's rows, through its
			// select list.
			proj, ok := n.(*plan.Project)
			if !ok || proj.Input != inner || plan.AggregateBelow(inner.Input) != nil {
				return nil, fmt.Errorf("cannot run plan node %q over %q yet", p.stateful.Describe(), n.Describe())
			}
			p.inner, p.innerProj = inner, proj
			n = inner.Input
		}
		if f, ok := n.(*plan.Filter); ok {
			p.filter = f
			n = f.Input
		}
		if p.overJoin(n) {
			return p, nil
		}
	}
	scan, ok := n.(*plan.Scan)
	if !ok || (p.rank != nil && p.stateful == nil) {
		return nil, fmt.Errorf("cannot run plan node %q yet", n.Describe())
	}
	p.Source = scan.Source
	p.InputWidth = len(scan.Cols)
	return p, nil
}

// overJoin makes p, whose stateful node reads n through p.filter, one
// over a join, if n is a join: the workers pass the sources' rows on as
// they are, and the stateful stage joins them, filters the joined rows
// and runs the stateful node over them.
func (p *Program) overJoin(n plan.Node) bool {
	j, ok := n.(*plan.Join)
	if !ok {
		return false
	}
	p.joined, p.joinFilter, p.filter = j, p.filter, nil
	p.Source, p.InputWidth = j.Left.Source, len(j.Left.Cols)
	return true
}

// compileUnion compiles each branch of u, a stateless program of a source
// of its own; p's Source and InputWidth are the first branch's.
func compileUnion(p *Program, u *plan.Union) (*Program, error) {
	p.branches = map[string]*Program{}
	for i, b := range u.Branches {
		bp, err := Compile(b)
		switch {
		case err != nil:
			return nil, err
		case bp.Stateful() || bp.branches != nil || p.branches[bp.Source] != nil:
			return nil, fmt.Errorf("cannot run plan node %q yet: each branch must be a stateless query of a source of its own", u.Describe())
		}
		p.branches[bp.Source] = bp
		if i == 0 {
			p.Source, p.InputWidth = bp.Source, bp.InputWidth
		}
	}
	return p, nil
}

// OutputWidth is the number of columns of a result row.
func (p *Program) OutputWidth() int { return len(p.Output) }

// WorkerWidth is the number of columns of the rows workers emit: the
// results of a stateless plan, the source's rows for a stateful one.
func (p *Program) WorkerWidth() int {
	if p.stateful != nil {
		return p.InputWidth
	}
	return p.OutputWidth()
}

// EventTime is the input column of the event time that a stateful plan
// orders by, or -1 for a stateless plan.
func (p *Program) EventTime() int {
	n := p.root
	if p.inner != nil {
		n = p.inner // the outer aggregation's rows have no time
	}
	if c := plan.EventTime(n); c != nil {
		return c.Index
	}
	return -1
}

// Stateful reports whether the plan has a stateful node.
func (p *Program) Stateful() bool { return p.stateful != nil }

// Aggregates reports whether the plan aggregates or joins rows, so that
// its results are not the input's records.
func (p *Program) Aggregates() bool {
	if p.joined != nil {
		return true // the rows of a join are results, whatever reads them
	}
	switch p.stateful.(type) {
	case *plan.Aggregate, *plan.Join, *plan.TopN, *plan.WindowJoin:
		return true
	}
	return p.inner != nil // OVER of a GROUP BY's rows
}

// Windowed reports whether the plan aggregates tumbling or hopping windows,
// which can stay open past their end for late records.
func (p *Program) Windowed() bool {
	a, ok := p.windows().(*plan.Aggregate)
	return ok && (a.Window.Kind == plan.Tumble || a.Window.Kind == plan.Hop)
}

// ProcTime reports whether the plan aggregates windows of processing time.
func (p *Program) ProcTime() bool {
	a, ok := p.windows().(*plan.Aggregate)
	return ok && a.Window.ProcTime
}

// windows is the stateful node whose windows the plan's rows go in: of
// an aggregation of another's rows, the inner one.
func (p *Program) windows() plan.Node {
	if p.inner != nil {
		return p.inner
	}
	return p.stateful
}

// Changes reports whether the plan aggregates, or computes moving
// aggregates (OVER) of, the rows of another aggregation, each a change of
// its group's row.
func (p *Program) Changes() bool { return p.inner != nil }

// OverChangesKeys, of OVER of a GROUP BY's rows (OverChanges), describes
// the inner GROUP BY's keys, which name its rows; ok is false for other
// plans.
func (p *Program) OverChangesKeys() (keys []string, ok bool) {
	if !p.OverChanges() {
		return nil, false
	}
	for _, k := range p.inner.Keys {
		keys = append(keys, k.String())
	}
	return keys, true
}

// OverChanges reports whether the plan computes moving aggregates (OVER)
// of the rows of a GROUP BY: its rows are a changelog keyed by the inner
// groups.
func (p *Program) OverChanges() bool {
	_, over := p.stateful.(*plan.Over)
	return over && p.inner != nil
}

// HoldsRows reports whether the plan's state holds input rows whole (a
// join's, OVER's waiting rows, a top-N's of rows), rather than values
// computed from them.
func (p *Program) HoldsRows() bool {
	if p.joined != nil {
		return true
	}
	switch n := p.stateful.(type) {
	case *plan.Join:
		return true
	case *plan.Over:
		return p.inner == nil // of a GROUP BY's rows, its groups' values
	case *plan.TopN:
		return n.Rows()
	}
	return false
}

// Ranked reports whether the plan is a window top-N, which ranks each
// window's groups or rows once, when it closes.
func (p *Program) Ranked() bool {
	_, rows := p.stateful.(*plan.TopN)
	return p.rank != nil || rows
}

// NamesGroup reports whether output column name of an aggregation is
// computed from its group's keys alone, all of them, so that its values
// tell the groups apart (as far as the expression keeps them apart): not
// from an aggregate, which changes with the group's rows, nor from some
// of several keys. Of an aggregate of one group, any constant does.
func (p *Program) NamesGroup(name string) bool {
	if t, ok := p.stateful.(*plan.TopN); ok && t.Window == nil {
		return p.namesRank(t, name)
	}
	a, ok := p.stateful.(*plan.Aggregate)
	if p.OverChanges() {
		a, ok = p.inner, true // its rows are the inner groups'
	}
	if !ok || p.postProj == nil {
		return false
	}
	i := slices.Index(p.postProj.Names, name)
	if i < 0 {
		return false
	}
	cols := expr.Columns(nil, p.postProj.Exprs[i])
	if p.OverChanges() {
		// Through OVER, whose own columns are its calls', and the inner
		// query's select list.
		var below []int
		for _, c := range cols {
			if c >= len(p.innerProj.Exprs) || expr.ReadsClock(p.innerProj.Exprs[c]) {
				return false
			}
			below = expr.Columns(below, p.innerProj.Exprs[c])
		}
		cols = below
	}
	read := map[int]bool{}
	for _, c := range cols {
		if c < 2 || c >= 2+len(a.Keys) {
			return false // the window's bounds, or an aggregate
		}
		read[c] = true
	}
	return len(read) == len(a.Keys)
}

// namesRank reports whether output column name of a top-N without a
// window is computed from its partition's columns, all of them, and its
// rank, unless it keeps one row per partition: its values tell the ranks
// apart.
func (p *Program) namesRank(t *plan.TopN, name string) bool {
	if len(p.ranked) == 0 {
		return false
	}
	root, ok := p.ranked[0].(*plan.Project)
	i := -1
	if ok {
		i = slices.Index(root.Names, name)
	}
	if i < 0 {
		return false
	}
	// The top-N's columns the output column reads, through the
	// projections below it.
	read := expr.Columns(nil, root.Exprs[i])
	for _, n := range p.ranked[1:] {
		if pr, ok := n.(*plan.Project); ok {
			var below []int
			for _, c := range read {
				below = expr.Columns(below, pr.Exprs[c])
			}
			read = below
		}
	}
	want := map[int]bool{}
	for _, e := range t.Partition {
		c, ok := e.(*expr.Column)
		if !ok {
			return false // an expression's value may not tell keys apart
		}
		want[c.Index] = true
	}
	rank := len(t.Columns()) - 1
	if t.Limit > 1 {
		want[rank] = true
	}
	got := map[int]bool{}
	for _, c := range read {
		if !want[c] && c != rank {
			return false
		}
		got[c] = true
	}
	for c := range want {
		if !got[c] {
			return false
		}
	}
	return true
}

// RankKey, of a top-N without a window, names its rank column and says
// whether a changelog's key needs it, with more than one row per
// partition; ok is false for other plans.
func (p *Program) RankKey() (rank string, needed, ok bool) {
	t, ok := p.stateful.(*plan.TopN)
	if !ok || t.Window != nil {
		return "", false, false
	}
	return t.RankName, t.Limit > 1, true
}

// Continuous reports whether the plan is a continuous aggregation (GROUP
// BY without a window), whose result is a changelog of its groups, or a
// top-N without a window, a changelog of its ranks.
func (p *Program) Continuous() bool {
	switch n := p.stateful.(type) {
	case *plan.Aggregate:
		return n.Window.Kind == plan.Continuous
	case *plan.TopN:
		return n.Window == nil
	}
	return p.OverChanges()
}

// Distinct reports whether the plan is a SELECT DISTINCT, a continuous
// aggregation that writes each group's row once: a stream, not a changelog.
func (p *Program) Distinct() bool {
	a, ok := p.stateful.(*plan.Aggregate)
	return ok && a.Distinct
}

// StatePlan describes the stateful part of the plan: the operator and what
// is below it, which make the state. A checkpoint keeps its fingerprint,
// StateFingerprint, and a plan with another cannot read the checkpoint; the
// HAVING and select list above it do not matter to the state. (The
// conditions by which a table join keeps its table's rows, KeptTable, do,
// but a table of more rows serves: they are said apart.)
func (p *Program) StatePlan() string {
	if p.stateful == nil {
		return ""
	}
	if p.rank != nil {
		// The groups are keyed, across engines, by the ranking's keys.
		k, _ := p.StateKey()
		return plan.Explain(p.stateful) + "Ranked by " + strings.Join(k.Keys, ", ") + "\n"
	}
	return plan.Explain(p.stateful)
}

// KeptTable returns, of a table join that keeps only the table rows that
// the leading table conditions of its WHERE do not make FALSE
// (tableConjuncts), the table's source and those conditions: as SQL, and
// as expr.Describe tells them apart; none when it keeps every row.
func (p *Program) KeptTable() (table, sql string, described []string) {
	kept := p.tableConjuncts()
	if len(kept) == 0 {
		return "", "", nil
	}
	texts := make([]string, len(kept))
	described = make([]string, len(kept))
	for i, c := range kept {
		texts[i], described[i] = c.String(), expr.Describe(c)
	}
	return p.stateful.(*plan.Join).Right.Source, strings.Join(texts, " AND "), described
}

// tableConjuncts returns the leading conditions of the WHERE right above
// an inner table join that read the table's columns alone
// (earlyConjuncts), when the join fails no row itself (joinCannotFail):
// the join drops a table row one of them makes FALSE as it reads it, as if
// deleted, since the WHERE would drop every row joined with it at that
// condition, having evaluated the same ones before it over the same
// columns (q20 keeps a fifth of the auctions). A row that makes one fail,
// or NULL, is kept, for the WHERE to judge the rows joined with it.
func (p *Program) tableConjuncts() []expr.Expr {
	n, ok := p.stateful.(*plan.Join)
	if !ok || n.Kind != plan.TableJoin || n.AsOf != nil || n.Outer || n.RightOuter || !joinCannotFail(n) {
		return nil
	}
	width := len(n.Left.Cols)
	return earlyConjuncts(p.postFilter, width, width+len(n.Right.Cols))
}

// StateFingerprint is a hash of StatePlan.
func (p *Program) StateFingerprint() string { return Fingerprint(p.StatePlan()) }

// Fingerprint is the hash of a state plan that checkpoints keep.
func Fingerprint(statePlan string) string {
	sum := sha256.Sum256([]byte(statePlan))
	return hex.EncodeToString(sum[:8])
}

// Join reports whether the plan joins two sources, or is the part below
// such a join (Upstream); its workers then pass rows on unchanged.
func (p *Program) Join() bool { return p.join() != nil || p.WindowJoin() }

// WindowJoin reports whether the plan joins the rows of two windowed
// aggregations (a window join).
func (p *Program) WindowJoin() bool {
	_, ok := p.stateful.(*plan.WindowJoin)
	return ok
}

// join is the join of the plan or below which it is; nil for others.
func (p *Program) join() *plan.Join {
	if j, ok := p.stateful.(*plan.Join); ok {
		return j
	}
	if p.joined != nil {
		return p.joined
	}
	return p.passes
}

// AfterJoin reports whether the plan aggregates, ranks or computes moving
// aggregates of the rows of a join.
func (p *Program) AfterJoin() bool { return p.joined != nil }

// TableJoin reports whether the plan joins a stream with a table, or two
// streams' pairs with tables.
func (p *Program) TableJoin() bool { return len(p.JoinedTables()) > 0 }

// PairsLookedUp reports whether the plan joins two streams and then looks
// their pairs up in tables.
func (p *Program) PairsLookedUp() bool {
	j := p.join()
	return j != nil && j.Kind == plan.IntervalJoin && len(j.Lookups) > 0
}

// MoreStreams reports whether the plan joins more than two streams.
func (p *Program) MoreStreams() bool {
	j := p.join()
	return j != nil && len(j.Streams) > 0
}

// TemporalJoin reports whether the plan joins a stream with a table as of
// each row's time (FOR SYSTEM_TIME AS OF).
func (p *Program) TemporalJoin() bool {
	j := p.join()
	return j != nil && j.AsOf != nil
}

// JoinedTables are the sources a stream is joined with as tables, in
// order; nil if none.
func (p *Program) JoinedTables() []string {
	j := p.join()
	if j == nil {
		return nil
	}
	var names []string
	for _, t := range j.Tables() {
		names = append(names, t.Source)
	}
	return names
}

// JoinKeys describes an interval join's keys ("a.k = b.k"); empty for
// other plans.
func (p *Program) JoinKeys() string {
	j := p.join()
	if j == nil {
		return ""
	}
	return strings.Join(plan.KeyPairs(j.LeftKeys, j.RightKeys), ", ")
}

// StateKey is what the state of a windowed or moving aggregate is keyed
// by; ok is false for other plans.
func (p *Program) StateKey() (plan.StateKey, bool) {
	if p.rank != nil {
		return plan.StateKeyOf(p.rank)
	}
	return plan.StateKeyOf(p.stateful)
}

// Sources lists the sources the plan reads, in plan order.
func (p *Program) Sources() []string { return plan.Sources(p.root) }

// EventTimeOf is the event-time column of a source's rows, or -1.
func (p *Program) EventTimeOf(source string) int {
	if j, ok := p.stateful.(*plan.WindowJoin); ok {
		for _, side := range j.Inputs() {
			if s, _ := plan.WindowSideOf(side); s.Scan.Source == source {
				return s.Agg.Window.Time.Index
			}
		}
		return -1
	}
	if j := p.join(); j != nil {
		for _, l := range j.Lookups {
			if l.TableTime != nil && l.Table.Source == source {
				return l.TableTime.Index // a further table joined as of a time
			}
		}
		switch {
		case j.AsOf != nil && source == j.Left.Source:
			return j.AsOf.Index
		case j.AsOf != nil && source == j.Right.Source:
			return j.TableTime.Index
		case j.Kind == plan.IntervalJoin && source != j.Left.Source && source != j.Right.Source:
			for _, s := range j.Streams {
				if source == s.Stream.Source {
					return s.StreamTime.Index
				}
			}
			return -1
		case j.Kind != plan.IntervalJoin:
			// A window or OVER over a table join's rows is over the
			// stream's time.
			if t := plan.EventTime(p.windows()); p.joined != nil && source == j.Left.Source && t != nil && t.Index < len(j.Left.Cols) {
				return t.Index
			}
			return -1
		case source == j.Left.Source:
			return j.LeftTime.Index
		case source == j.Right.Source:
			return j.RightTime.Index
		}
		return -1
	}
	if source != p.Source {
		return -1
	}
	return p.EventTime()
}

// StatefulColumns are the columns of the stateful node's rows, which HAVING
// and the select list read.
func (p *Program) StatefulColumns() []value.Column { return p.stateful.Columns() }

// StatefulWidth is the width of the stateful node's rows.
func (p *Program) StatefulWidth() int { return len(p.stateful.Columns()) }

// StatefulOptions configure a stateful operator.
type StatefulOptions struct {
	// AllowedLateness keeps tumbling and hopping windows open this long
	// past their end (ns): late records update them, and they are written
	// again.
	AllowedLateness int64
	// TTL drops a continuous aggregation's group that no row changed for
	// that long (spec.state.ttl); 0 keeps every group. Clock reads the
	// time it is measured in; nil is time.Now.
	TTL   time.Duration
	Clock func() time.Time
	// EmitInterval holds back a continuous aggregation's changed rows
	// for that long (spec.runtime.emitInterval), each group's latest then
	// written once; 0 writes them after every batch.
	EmitInterval time.Duration
	// RereadTables are the sources of a table join's tables read again
	// from their start in every run (a Kafka topic's, which no checkpoint
	// starts after), whose rows are left out of snapshots: restored, a row
	// whose tombstone compaction removed meanwhile would come back for
	// good.
	RereadTables map[string]bool
	// MaxRows, if positive, is how many rows the operator writes to one
	// output before it keeps the rest for the next Advance (a batch's
	// size): a window's close, and the changes of a continuous aggregation
	// or of a top-N without a window (after a batch, or held back by an
	// emit interval), go out a batch at a time, and the caller calls
	// Advance again while one fills its output. A top-N partition's ranks
	// go whole, so a batch may hold a few rows more; a table join's
	// stream rows that waited for its tables go a batch at a time too. A
	// session's close, a window's EMIT CHANGES, an interval join's and an
	// OVER's rows, and a window whose rows are ranked together are written
	// at once.
	MaxRows int
}

// Flusher is a stateful operator that may hold back results for a while
// (an emit interval).
type Flusher interface {
	// Flush makes the next Advance write what is held back; it reports
	// whether anything is.
	Flush() bool
}

// NewStateful returns a fresh stateful operator; nil for a stateless plan.
func (p *Program) NewStateful(opts StatefulOptions) Stateful {
	var inner Stateful
	var windows *windowAgg
	if p.inner != nil {
		// The inner aggregation writes every change at once: the outer's
		// emit interval holds back what it writes.
		innerOpts := opts
		innerOpts.EmitInterval = 0
		windows = p.newStateful(p.inner, innerOpts).(*windowAgg)
		inner = windows
		if p.joined != nil {
			inner = newAfterJoin(p.joined, p.joinFilter, p.newStateful(p.joined, opts), windows)
		}
		if o, ok := p.stateful.(*plan.Over); ok {
			return newChangeOver(p.inner, p.innerProj, inner, o, opts)
		}
	}
	top := p.newStateful(p.stateful, opts)
	// Only the operator whose rows are the results stops at MaxRows: a
	// wrapper reads all its inner operators write.
	switch t := top.(type) {
	case *windowAgg:
		t.maxRows = opts.MaxRows
	case *topRows:
		t.maxRows = opts.MaxRows
	case *tableJoin:
		t.maxRows = opts.MaxRows
	}
	if p.inner != nil {
		c := newChangeAgg(p.inner, p.innerProj, inner, windows, top.(*windowAgg))
		if p.joined != nil {
			return c // a join writes whole snapshots only
		}
		return changeDeltas{c}
	}
	if p.joined == nil {
		return top
	}
	return newAfterJoin(p.joined, p.joinFilter, p.newStateful(p.joined, opts), top)
}

// newStateful returns a fresh operator of stateful node n.
func (p *Program) newStateful(n plan.Node, opts StatefulOptions) Stateful {
	switch n := n.(type) {
	case *plan.Aggregate:
		a := newWindowAgg(n)
		a.whole, a.ranked = p.rank != nil, math.MinInt64
		switch n.Window.Kind {
		case plan.Tumble, plan.Hop:
			a.allowed = opts.AllowedLateness
		case plan.Continuous:
			a.ttl = int64(opts.TTL)
		}
		if opts.Clock != nil {
			a.clock = opts.Clock
		}
		var every time.Duration
		if n.Window.Kind == plan.Continuous && !n.Distinct {
			every = opts.EmitInterval
		}
		a.pace = newPacer(a.clock, every)
		return a
	case *plan.Over:
		return newOverAgg(n)
	case *plan.Join:
		if n.AsOf != nil {
			return newTemporalJoin(n, opts.RereadTables)
		}
		if n.Kind == plan.TableJoin {
			t := newTableJoin(n, opts.RereadTables)
			t.stream.time = p.EventTimeOf(n.Left.Source) // of a window or OVER over the join's rows
			if p.stateful == plan.Node(n) && joinCannotFail(n) {
				// The WHERE right above the join, not one over the rows
				// of an aggregation of them.
				t.stream.early = earlyConjuncts(p.postFilter, 0, len(n.Left.Cols))
			}
			if t.table.early = p.tableConjuncts(); len(t.table.early) > 0 {
				t.table.scratch, t.table.at = make(value.Row, t.stream.width+t.table.width), t.stream.width
			}
			return t
		}
		if len(n.Lookups) > 0 && len(n.Streams) > 0 {
			return newLookupAfter(n, newStreamJoins(n), opts.RereadTables)
		}
		if len(n.Lookups) > 0 {
			return newLookupAfter(n, newIntervalJoin(n), opts.RereadTables)
		}
		if len(n.Streams) > 0 {
			return newStreamJoins(n)
		}
		j := newIntervalJoin(n)
		if p.stateful == plan.Node(n) {
			// The WHERE right above the join, not one over the rows of
			// an aggregation of them.
			j.dropEarly(p.postFilter)
		}
		return j
	case *plan.TopN:
		if n.Window == nil {
			return newTopRows(n, opts)
		}
		return newWindowRank(n)
	case *plan.WindowJoin:
		return newWindowJoin(n, func(a *plan.Aggregate) *windowAgg { return p.newStateful(a, opts).(*windowAgg) })
	}
	return nil
}

// NewPost returns the operator for the stateful node's rows: HAVING and the
// select list, and of a top-N the ranking and what is above it.
func (p *Program) NewPost() Operator {
	c := &chain{}
	width := p.StatefulWidth()
	if p.postFilter != nil || p.postProj != nil || (p.rank == nil && len(p.ranked) == 0) {
		if p.postProj != nil {
			width = len(p.postProj.Exprs)
		}
		c.ops, c.widths = append(c.ops, newMap(p.postFilter, p.postProj, p.StatefulWidth())), append(c.widths, width)
	}
	if p.rankFilter != nil {
		c.ops, c.widths = append(c.ops, newMap(p.rankFilter, nil, width)), append(c.widths, width)
	}
	if p.rank != nil {
		c.ops, c.widths = append(c.ops, newRanker(p.rank)), append(c.widths, len(p.rank.Columns()))
	}
	for i := len(p.ranked) - 1; i >= 0; i-- {
		switch n := p.ranked[i].(type) {
		case *plan.Filter:
			c.ops = append(c.ops, newMap(n, nil, len(n.Columns())))
		case *plan.Project:
			c.ops = append(c.ops, newMap(nil, n, len(n.Input.Columns())))
		}
		c.widths = append(c.widths, len(p.ranked[i].Columns()))
	}
	if len(c.ops) == 1 {
		return c.ops[0]
	}
	return c
}

// New returns a fresh operator for one worker.
func (p *Program) New() Operator {
	if p.branches != nil {
		u := unionMap{}
		for source, b := range p.branches {
			u[source] = b.New().(*Map)
		}
		return u
	}
	return newMap(p.filter, p.proj, p.InputWidth)
}

// unionMap runs each source's rows through its UNION ALL branch.
type unionMap map[string]*Map

// Process implements Operator.
func (u unionMap) Process(in, out *message.Batch, fail Failures) (filtered int) {
	m := u[in.SourceName()]
	if m == nil {
		err := fmt.Errorf("no branch of UNION ALL reads source %q", in.SourceName())
		for i := range in.Rows {
			fail.Fail(in, i, "project", err)
		}
		return 0
	}
	return m.Process(in, out, fail)
}

func newMap(filter *plan.Filter, proj *plan.Project, inputWidth int) *Map {
	m := &Map{identity: proj == nil, width: inputWidth}
	if filter != nil {
		m.Predicate = filter.Predicate
	}
	if proj != nil {
		m.Exprs = proj.Exprs
		// A projection of the input columns in order is the identity.
		m.identity = len(m.Exprs) == inputWidth
		for i, e := range m.Exprs {
			if c, ok := e.(*expr.Column); !ok || c.Index != i {
				m.identity = false
			}
		}
	}
	exprs, shared := expr.Share(inputWidth, append([]expr.Expr{m.Predicate}, m.Exprs...)...)
	if shared > 0 {
		m.Predicate, m.Exprs = exprs[0], exprs[1:]
		m.pending = make(value.Row, shared)
		for i := range m.pending {
			m.pending[i] = value.Pending()
		}
	}
	return m
}

// Map is a fused filter and projection: one pass over each row.
type Map struct {
	Predicate expr.Expr
	Exprs     []expr.Expr
	identity  bool
	width     int // of the input rows
	// pending holds a value.Pending() for each subexpression the predicate
	// and the select list share (expr.Share): a row is copied into wide
	// and pending appended, the columns where they keep their values.
	pending, wide value.Row
}

// PassesThrough reports whether the Map leaves every row as it is: no
// WHERE, and a select list of the input columns in their order.
func (m *Map) PassesThrough() bool { return m.identity && m.Predicate == nil }

// Process implements Operator.
func (m *Map) Process(in, out *message.Batch, fail Failures) (filtered int) {
rows:
	for i, row := range in.Rows {
		if m.pending != nil {
			m.wide = append(append(m.wide[:0], row[:m.width]...), m.pending...)
			row = m.wide
		}
		if m.Predicate != nil {
			v, err := m.Predicate.Eval(row)
			if err != nil {
				fail.Fail(in, i, "filter", err)
				continue
			}
			if v.Kind() != value.KindBool || !v.Bool() {
				filtered++
				continue
			}
		}
		dst := out.Append(in.Offsets[i])
		if m.identity {
			copy(dst, row)
			continue
		}
		for j, e := range m.Exprs {
			v, err := e.Eval(row)
			if err != nil {
				out.Truncate()
				fail.Fail(in, i, "project", err)
				continue rows
			}
			dst[j] = v
		}
	}
	clear(m.wide) // the last row's strings, which the batch no longer holds
	return filtered
}

// StateInputs are the inputs of the stateful node: what a repartitioned
// query passes through its repartition topic, one per source of a join;
// nil for a stateless plan.
func (p *Program) StateInputs() []plan.Node {
	if p.stateful == nil {
		return nil
	}
	return p.stateful.Inputs()
}

// KeysOf describes what the state of source's rows is keyed by: GROUP BY
// or PARTITION BY, or an interval join's keys on its side.
func (p *Program) KeysOf(source string) string {
	if j := p.join(); j != nil {
		exprs := j.LeftKeys
		if source == j.Right.Source {
			exprs = j.RightKeys
		}
		keys := make([]string, len(exprs))
		for i, e := range exprs {
			keys[i] = e.String()
		}
		return strings.Join(keys, ", ")
	}
	k, _ := p.StateKey()
	return strings.Join(k.Keys, ", ")
}

// Upstream returns the stateless part below a windowed or moving
// aggregate (its filter over the scan), or below an interval join (the
// scans of its two sources, whose rows it passes on as they are), which
// engines run over the partitions they read before they repartition its
// rows by the state's key; ok is false for other plans.
func (p *Program) Upstream() (up *Program, ok bool) {
	switch n := p.stateful.(type) {
	case *plan.Aggregate, *plan.Over, *plan.TopN:
	case *plan.Join:
		if n.Kind != plan.IntervalJoin {
			return nil, false
		}
		return &Program{Source: n.Left.Source, InputWidth: len(n.Left.Cols), root: n, passes: n}, true
	default:
		return nil, false
	}
	up, err := Compile(p.StateInputs()[0])
	return up, err == nil
}

// PartitionKey returns the function that appends the identity of the
// state key (GROUP BY, PARTITION BY; not the window; an interval join's
// keys on the side of source) of one of source's rows to dst: equal keys,
// and only they, append equal bytes, on either side of a join too, so a
// hash of them sends each key to one partition. A key that fails to
// evaluate appends nothing; the stateful operator fails the row again,
// with its error. It is safe for concurrent use. ok is false for plans
// other than windowed and moving aggregates and interval joins, and for a
// source the plan does not key.
func (p *Program) PartitionKey(source string) (key func(dst []byte, row value.Row) []byte, ok bool) {
	var exprs []expr.Expr
	switch {
	case p.rank != nil:
		exprs, _ = plan.KeyExprs(p.rank)
	case p.stateful != nil:
		exprs, _ = plan.KeyExprs(p.stateful)
	}
	if j := p.join(); j != nil && j.Kind == plan.IntervalJoin {
		switch source {
		case j.Left.Source:
			exprs = j.LeftKeys
		case j.Right.Source:
			exprs = j.RightKeys
		}
	} else if source != p.Source {
		exprs = nil
	}
	if exprs == nil {
		return nil, false
	}
	return func(dst []byte, row value.Row) []byte {
		start := len(dst)
		for _, e := range exprs {
			v, err := e.Eval(row)
			if err != nil {
				return dst[:start]
			}
			dst = appendKey(dst, v)
		}
		return dst
	}, true
}
