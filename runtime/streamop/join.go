package streamop

import (
	"math"
	"slices"

	"github.com/sluice-dev/sluice/runtime/expr"
	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/plan"
	"github.com/sluice-dev/sluice/runtime/value"
)

// intervalJoin joins two streams: each side keeps its rows, by key, while a
// row of the other side can still match them; a pair is emitted when the
// second of its rows arrives. Rows leave as the watermark passes the last
// time a partner could have; of a LEFT JOIN, a left row that matched
// nothing is emitted then, with NULLs, and one with a NULL key at once; a
// RIGHT JOIN's right rows alike, and a FULL JOIN's of either side.
type intervalJoin struct {
	node        *plan.Join
	left, right side
	byKey       map[string]*joinKey
	width       int   // output row width
	low         int64 // least event time held; math.MaxInt64 when none
	held        int
	sweptAt     int64 // the watermark at the last eviction sweep
	// leftDue and rightDue are the keys of each side's rows by the rows'
	// times, so that an advance visits the keys whose rows it ends, not
	// every key: one side read far ahead of the other holds many. again
	// are the entries of rows a replaying partition keeps past their end,
	// due again at the next advance.
	leftDue, rightDue dueKeys
	again             []dueAgain
	sweeps            uint64 // advances that visited keys
	// partners are the rows of the other side a row matches first,
	// marked matched once the row is taken whole.
	partners []int
}

// side is one input of a join.
type side struct {
	source string
	time   int
	width  int
	keys   *keyEncoder
	// early are the leading conjuncts of the WHERE right above the join
	// that read this side's columns alone (intervalJoin.dropEarly; a
	// table join's stream, and its table, Program.tableConjuncts): a row
	// one of them makes FALSE is dropped before it is held or joined (a
	// table row as if deleted). They read the joined row's columns: a
	// side's row after the first is placed in scratch, at its place in it.
	early   []expr.Expr
	scratch value.Row
	at      int
	// rows holds the values of an interval join's rows of this side,
	// which end about in the order they came.
	rows rowChunks
}

// dropsEarly says a conjunct of s.early makes row, of this side, FALSE,
// the ones before it TRUE or NULL.
func (s *side) dropsEarly(row value.Row) bool {
	if len(s.early) == 0 {
		return false
	}
	if s.scratch == nil {
		return falseOf(s.early, row) // the left side's columns come first
	}
	copy(s.scratch[s.at:], row)
	drop := falseOf(s.early, s.scratch)
	clear(s.scratch[s.at:]) // its strings
	return drop
}

type joinKey struct {
	left, right []joinRow
	name        string // in byKey
	// visited is the advance that last visited the key; gone, that it
	// left byKey, as due entries may still name it.
	visited uint64
	gone    bool
}

type joinRow struct {
	ts     int64
	row    value.Row
	source owner
	// matched says the row was written in a pair (kept for a side whose
	// rows that match nothing are written: a LEFT JOIN's left).
	matched bool
}

func newIntervalJoin(n *plan.Join) *intervalJoin {
	return &intervalJoin{
		node:  n,
		left:  side{source: n.Left.Source, time: n.LeftTime.Index, width: len(n.Left.Cols), keys: newKeyEncoder(n.LeftKeys)},
		right: side{source: n.Right.Source, time: n.RightTime.Index, width: len(n.Right.Cols), keys: newKeyEncoder(n.RightKeys)},
		byKey: map[string]*joinKey{}, width: len(n.Left.Cols) + len(n.Right.Cols), low: math.MaxInt64,
		sweptAt: math.MinInt64,
	}
}

// dropEarly makes each side of j, an interval join, drop its rows that a
// leading conjunct of where, the WHERE right above it, reading that
// side's columns alone, makes FALSE, before they are held (earlyConjuncts):
// the WHERE would drop every row joined with one. Only when the join
// fails no row itself (its keys are columns, no other ON condition, no
// further table: one dropped early would not fail), and only on a side
// whose rows decide no NULL row of the other: not the left of a RIGHT
// JOIN, whose right rows that match nothing are written with NULLs (a
// condition such as l.x IS NULL would then keep them), nor the right of a
// LEFT JOIN.
func (j *intervalJoin) dropEarly(where *plan.Filter) {
	n := j.node
	if !joinCannotFail(n) || !allColumns(n.RightKeys) {
		return
	}
	if !n.RightOuter {
		j.left.early = earlyConjuncts(where, 0, j.left.width)
	}
	if !n.Outer {
		j.right.early = earlyConjuncts(where, j.left.width, j.width)
		j.right.scratch, j.right.at = make(value.Row, j.width), j.left.width
	}
}

// allColumns says every expression of exprs is a column.
func allColumns(exprs []expr.Expr) bool {
	return !slices.ContainsFunc(exprs, func(e expr.Expr) bool {
		_, ok := e.(*expr.Column)
		return !ok
	})
}

// Process implements Stateful.
func (j *intervalJoin) Process(in, out *message.Batch, wm Watermark, fail Failures) (late, absorbed int) {
	isLeft := in.Origin == nil || in.SourceName() == j.left.source
	s := &j.right
	if isLeft {
		s = &j.left
	}
	watermark := wm.For(in.Origin)
	src := ownerOf(in)
	for i, row := range in.Rows {
		ts, err := eventTime(row, s.time)
		if err == nil && ts < watermark {
			late++
			continue
		}
		if err == nil && s.dropsEarly(row) {
			absorbed++ // every row joined with it is dropped by the WHERE
			continue
		}
		if err == nil {
			err = s.keys.encode(row, 0)
		}
		if err != nil {
			fail.Fail(in, i, "join", err)
			continue
		}
		if hasNull(s.keys.vals) {
			absorbed++ // NULL keys match nothing
			if j.outer(isLeft) {
				j.unmatched(out, row, isLeft)
			}
			continue
		}
		k := j.byKey[string(s.keys.buf)]
		if k == nil {
			k = &joinKey{name: string(s.keys.buf)}
			j.byKey[k.name] = k
		}
		// left.ts ∈ [right.ts - Lower, right.ts + Upper]: the other side's
		// times that pair with ts are [lo, hi].
		lower, upper := j.node.Lower, j.node.Upper
		others, lo, hi := k.left, addTime(ts, -lower), addTime(ts, upper)
		if isLeft {
			others, lo, hi = k.right, addTime(ts, -upper), addTime(ts, lower)
		}
		pairs := out.Len()
		matched := false
		j.partners = j.partners[:0]
		for oi := range others {
			o := &others[oi]
			if o.ts < lo || o.ts > hi || !o.source.current() {
				continue
			}
			var ok bool
			if isLeft {
				ok, err = j.emit(out, row, o.row)
			} else {
				ok, err = j.emit(out, o.row, row)
			}
			if err != nil {
				break
			}
			if ok {
				matched = true
				if !o.matched {
					j.partners = append(j.partners, oi)
				}
			}
		}
		if err != nil {
			// The row fails as a whole: none of its pairs is written.
			for out.Len() > pairs {
				out.Truncate()
			}
			fail.Fail(in, i, "join", err)
			continue
		}
		for _, oi := range j.partners {
			others[oi].matched = true
		}
		if isLeft {
			k.left = append(k.left, joinRow{ts: ts, row: s.rows.own(row), source: src, matched: matched})
			j.leftDue.push(due{ts: ts, key: k})
		} else {
			k.right = append(k.right, joinRow{ts: ts, row: s.rows.own(row), source: src, matched: matched})
			j.rightDue.push(due{ts: ts, key: k})
		}
		j.held++
		j.low = min(j.low, ts)
		absorbed++
	}
	return late, absorbed
}

// emit writes a pair, if the rest of ON holds for it, and reports whether
// it did.
func (j *intervalJoin) emit(out *message.Batch, left, right value.Row) (bool, error) {
	row := out.Append(0)
	copy(row, left)
	copy(row[len(left):], right)
	ok, err := holds(j.node.On, row)
	if !ok {
		out.Truncate()
	}
	return ok, err
}

// outer reports whether the rows of a side that match nothing are
// written: a LEFT JOIN's left, a RIGHT JOIN's right, a FULL JOIN's both.
func (j *intervalJoin) outer(left bool) bool {
	if left {
		return j.node.Outer
	}
	return j.node.RightOuter
}

// unmatched writes a row of an outer side that matched nothing, with NULLs
// for the other side's columns.
func (j *intervalJoin) unmatched(out *message.Batch, r value.Row, left bool) {
	row := out.Append(0)
	if left {
		copy(row, r)
		clear(row[j.left.width:j.width])
		return
	}
	clear(row[:j.left.width])
	copy(row[j.left.width:], r)
}

// holds reports whether a join's rest of ON is TRUE for a joined row.
func holds(on expr.Expr, row value.Row) (bool, error) {
	if on == nil {
		return true, nil
	}
	v, err := on.Eval(row)
	if err != nil {
		return false, err
	}
	return v.Kind() == value.KindBool && v.Bool(), nil
}

// Advance implements Stateful: rows that no future row can match leave. A
// left row matches right rows up to its time plus Lower, a right row left
// rows up to its time plus Upper; rows before the watermark are late.
func (j *intervalJoin) Advance(wm Watermark, out *message.Batch, fail func(error)) (dropped int) {
	watermark := wm.For(nil)
	if watermark == j.sweptAt {
		return 0
	}
	j.sweptAt = watermark
	j.sweeps++
	j.expire(&j.leftDue, wm, watermark, j.node.Lower, out)
	j.expire(&j.rightDue, wm, watermark, j.node.Upper, out)
	for _, a := range j.again {
		a.side.push(a.due)
	}
	clear(j.again)
	j.again = j.again[:0]
	j.low = min(j.leftDue.low(), j.rightDue.low())
	return 0
}

// dueAgain is an entry to push again once an advance's visits are done.
type dueAgain struct {
	side *dueKeys
	due
}

// expire visits the keys of a side's rows that the watermark ended (reach
// after their time), each once, and drops the rows of both sides no
// future row can match, writing an outer side's rows that matched none to
// out.
func (j *intervalJoin) expire(d *dueKeys, wm Watermark, watermark, reach int64, out *message.Batch) {
	end := endedBefore(watermark, reach)
	for len(*d) > 0 && (*d)[0].ts < end {
		k := d.pop().key
		if k.gone || k.visited == j.sweeps {
			continue
		}
		k.visited = j.sweeps
		k.left = j.keep(k.left, true, &j.leftDue, k, wm, endedBefore(watermark, j.node.Lower), j.node.Lower, out)
		k.right = j.keep(k.right, false, &j.rightDue, k, wm, endedBefore(watermark, j.node.Upper), j.node.Upper, out)
		if len(k.left) == 0 && len(k.right) == 0 {
			delete(j.byKey, k.name)
			k.gone = true
		}
	}
}

// keep drops the rows of k's side (left, or the right) no future row can
// match and returns the rest; end is when the pipeline's watermark ends
// rows. A row a partition replaying keeps past it is due again at the
// next advance, by its time, which Low then still covers. Of an outer
// side, a row that ends unmatched is written to out with NULLs; one whose
// partition moved away is its new owner's.
func (j *intervalJoin) keep(rows []joinRow, left bool, d *dueKeys, k *joinKey, wm Watermark, end, reach int64, out *message.Batch) []joinRow {
	kept := rows[:0]
	for _, r := range rows {
		current := r.source.current()
		if current && r.ts+reach >= wm.For(r.source.origin) {
			if r.ts < end {
				j.again = append(j.again, dueAgain{side: d, due: due{ts: r.ts, key: k}})
			}
			kept = append(kept, r)
			continue
		}
		if current && !r.matched && j.outer(left) {
			j.unmatched(out, r.row, left)
		}
		j.held--
	}
	clear(rows[len(kept):])
	return kept
}

// addTime is t + d within the int64 range.
func addTime(t, d int64) int64 {
	switch {
	case d > 0 && t > math.MaxInt64-d:
		return math.MaxInt64
	case d < 0 && t < math.MinInt64-d:
		return math.MinInt64
	}
	return t + d
}

// endedBefore is the time before which a row that matches rows up to
// reach after it can match no more under watermark: watermark - reach,
// held within the int64 range (reach is negative for bounds such as
// BETWEEN r.ts + INTERVAL '1' MINUTE AND ...).
func endedBefore(watermark, reach int64) int64 { return addTime(watermark, -reach) }

// due is a held row's time and its key.
type due = timed[*joinKey]

// dueKeys is a min-heap of one side's rows' keys by the rows' times. Rows
// come mostly in time order, so a push seldom moves. An entry whose row
// is gone stays until its time comes: its key is then visited for
// nothing.
type dueKeys = timeHeap[*joinKey]

// rebuild makes the entries those of the rows j holds, after a restore.
func (j *intervalJoin) rebuild() {
	j.leftDue, j.rightDue = j.leftDue[:0], j.rightDue[:0]
	for name, k := range j.byKey {
		k.name = name
		for _, r := range k.left {
			j.leftDue.push(due{ts: r.ts, key: k})
		}
		for _, r := range k.right {
			j.rightDue.push(due{ts: r.ts, key: k})
		}
	}
}

// Low implements Stateful. Of a LEFT JOIN, a right row's record waits
// too while a left row it may have paired with is held, up to Upper after
// it: were the left row's record read again alone (a restart without a
// checkpoint), it would be written with NULLs besides its pair. Of a
// RIGHT JOIN, a left row's record waits alike for the right rows it may
// have paired with, up to Lower after it; of a FULL JOIN, both.
func (j *intervalJoin) Low() int64 {
	low := j.low
	if left := j.leftDue.low(); j.node.Outer && left != math.MaxInt64 {
		low = min(low, Behind(left, max(j.node.Upper, 0)))
	}
	if right := j.rightDue.low(); j.node.RightOuter && right != math.MaxInt64 {
		low = min(low, Behind(right, max(j.node.Lower, 0)))
	}
	return low
}

// Size implements Stateful: the rows held on both sides.
func (j *intervalJoin) Size() int { return j.held }

// tableJoin looks the rows of a stream up in a table: the latest row per
// key of the table source; then, for a join of more than two inputs, the
// rows joined so far in each further table (lookups). Stream rows wait
// until the tables have been read to their end once (a Kafka table: to
// where each partition ended when it opened), so that every row sees the
// whole tables; after that, table rows update them as they come, and
// tombstones (Batch.Deletes) delete.
type tableJoin struct {
	node    *plan.Join
	stream  side
	table   side
	rows    map[string]value.Row
	lookups []*lookup
	tableLoad
	// waiting are the stream rows that came before the tables were
	// loaded, or while others waited, which go out an Advance at a time,
	// at most maxRows rows (StatefulOptions.MaxRows) an Advance if set.
	waiting []joinRow
	maxRows int
	nulls   value.Row
	// reread leaves the table's rows out of snapshots
	// (StatefulOptions.RereadTables).
	reread bool
}

// earlyConjuncts returns the conjuncts of f's predicate, a WHERE over a
// join's rows, from the first up to one that reads a column outside
// [from, to) (the stream's columns come first, then the table's) or the
// clock. The WHERE drops a row that one of them makes FALSE at that
// conjunct, having evaluated the same ones before it over the same
// columns: dropping it before the join writes the same rows and fails the
// same records, without joining a row to drop it (q3 joins every auction
// to keep a tenth). A row that makes one fail, or NULL, is joined, for
// the WHERE to judge.
func earlyConjuncts(f *plan.Filter, from, to int) []expr.Expr {
	if f == nil {
		return nil
	}
	conjuncts := []expr.Expr{f.Predicate}
	if l, ok := f.Predicate.(*expr.Logic); ok && !l.Or {
		conjuncts = l.Args
	}
	var early []expr.Expr
	for _, c := range conjuncts {
		if expr.ReadsClock(c) || slices.ContainsFunc(expr.Columns(nil, c), func(i int) bool { return i < from || i >= to }) {
			break
		}
		early = append(early, c)
	}
	return early
}

// joinCannotFail says a join fails no row of its left input itself: its
// left keys (a table join's stream's) are columns, and it has no other ON
// condition and no further table, whose expressions could fail a row that
// the WHERE would drop (one dropped early would not fail). Of an interval
// join, the right's keys must be columns too.
func joinCannotFail(n *plan.Join) bool {
	return n.On == nil && len(n.Lookups) == 0 && allColumns(n.LeftKeys)
}

// falseOf says a conjunct of conjuncts makes row FALSE, the ones before
// it TRUE or NULL.
func falseOf(conjuncts []expr.Expr, row value.Row) bool {
	for _, c := range conjuncts {
		v, err := c.Eval(row)
		switch {
		case err != nil:
			return false // the WHERE's to fail, after the join
		case !v.IsNull() && !v.Bool():
			return true
		}
	}
	return false
}

// lookup is a further table of a join (plan.Lookup): the rows joined
// before it are looked up in it by keys, an encoder over their columns.
type lookup struct {
	*plan.Lookup
	table side
	keys  *keyEncoder
	// rows are the table's, by key; versions, of a table joined as of a
	// time, its versions instead.
	rows     map[string]value.Row
	versions *versioned
	nulls    value.Row
	reread   bool
}

// newTableJoin returns a join of n's stream with its tables. Its stream
// has no event time, unless a window or OVER over the join's rows sets
// stream.time: the join then drops the stream's late rows, as an interval
// join does. The tables of reread are read again whole after a restore.
func newTableJoin(n *plan.Join, reread map[string]bool) *tableJoin {
	return &tableJoin{
		node: n, reread: reread[n.Right.Source],
		stream:  side{source: n.Left.Source, time: -1, width: len(n.Left.Cols), keys: newKeyEncoder(n.LeftKeys)},
		table:   side{source: n.Right.Source, width: len(n.Right.Cols), keys: newKeyEncoder(n.RightKeys)},
		rows:    map[string]value.Row{},
		lookups: newLookups(n.Lookups, reread),
		nulls:   make(value.Row, len(n.Right.Cols)),
	}
}

// newLookups returns a join's further tables; those of reread are read
// again whole after a restore.
func newLookups(list []*plan.Lookup, reread map[string]bool) []*lookup {
	var lookups []*lookup
	for _, l := range list {
		lk := &lookup{
			Lookup: l, reread: reread[l.Table.Source],
			table: side{source: l.Table.Source, width: len(l.Table.Cols), keys: newKeyEncoder(l.TableKeys)},
			keys:  newKeyEncoder(l.Keys), rows: map[string]value.Row{}, nulls: make(value.Row, len(l.Table.Cols)),
		}
		if l.TableTime != nil {
			lk.versions, lk.table.time = newVersioned(l.Table), l.TableTime.Index
		}
		lookups = append(lookups, lk)
	}
	return lookups
}

// Begin tells the join the tables' partitions, which it waits for.
func (t *tableJoin) Begin(origins []*message.Origin) {
	t.wait(origins, func(source string) bool { return source == t.table.source || isLookup(t.lookups, source) })
}

// absorb takes in, if it is a batch of one of the join's tables, into
// each of its inputs of that table (a table may be joined twice), and
// reports whether it was.
func (t *tableJoin) absorb(in *message.Batch, fail Failures) (absorbed int, ok bool) {
	absorbed, ok = absorbLookups(in, t.lookups, fail, math.MinInt64)
	if in.Origin.Source == t.table.source {
		if ok {
			fail = noFailures{} // told already
		}
		var drop func(value.Row) bool
		if len(t.table.early) > 0 {
			drop = t.table.dropsEarly
		}
		absorbed, ok = absorbTable(in, t.rows, &t.table, fail, drop), true
	}
	return absorbed, ok
}

// isLookup reports whether source is a further table of a join.
func isLookup(lookups []*lookup, source string) bool {
	return slices.ContainsFunc(lookups, func(l *lookup) bool { return l.table.source == source })
}

// absorbLookups takes in, if it is a batch of a further table, into each
// lookup of that table (a table may be joined twice), and reports whether
// it was. A row that fails, fails in each alike (the key columns are the
// table's): it is told once.
func absorbLookups(in *message.Batch, lookups []*lookup, fail Failures, floor int64) (absorbed int, ok bool) {
	for _, l := range lookups {
		if l.table.source != in.Origin.Source {
			continue
		}
		if l.versions != nil {
			absorbed = l.versions.absorb(in, &l.table, fail, floor)
		} else {
			absorbed = absorbTable(in, l.rows, &l.table, fail, nil)
		}
		fail, ok = noFailures{}, true
	}
	return absorbed, ok
}

// noFailures drops the failures told already.
type noFailures struct{}

// Fail implements Failures.
func (noFailures) Fail(*message.Batch, int, string, error) {}

// tableLoad is the table partitions a join waits for, each until it holds
// what it held when its source opened.
type tableLoad struct {
	parts  map[*message.Origin]bool // not yet loaded
	loaded bool
}

// wait adds the partitions of origins whose source isTable says is a
// table to those waited for.
func (l *tableLoad) wait(origins []*message.Origin, isTable func(source string) bool) {
	if l.parts == nil {
		l.parts = map[*message.Origin]bool{}
	}
	for _, o := range origins {
		if isTable(o.Source) {
			l.parts[o] = true
		}
	}
	l.loaded = len(l.parts) == 0
}

// Loaded tells the join that table partition o holds what it will hold
// at the start: it ended, or was read to where it ended when it opened.
func (l *tableLoad) Loaded(o *message.Origin) {
	if l.parts[o] {
		delete(l.parts, o)
		l.loaded = len(l.parts) == 0
	}
}

// Process implements Stateful.
func (t *tableJoin) Process(in, out *message.Batch, wm Watermark, fail Failures) (late, absorbed int) {
	if in.Origin != nil {
		if absorbed, ok := t.absorb(in, fail); ok {
			return 0, absorbed
		}
	}
	watermark := wm.For(in.Origin)
	for i, row := range in.Rows {
		if t.stream.time >= 0 {
			ts, err := eventTime(row, t.stream.time)
			switch {
			case err != nil:
				fail.Fail(in, i, "join", err)
				continue
			case ts < watermark:
				late++
				continue
			}
		}
		if t.stream.dropsEarly(row) {
			absorbed++ // the WHERE drops every row joined with it
			continue
		}
		if !t.loaded || len(t.waiting) > 0 {
			// Behind the rows waiting, in order.
			t.waiting = append(t.waiting, joinRow{row: ownValues(row), source: ownerOf(in)})
			absorbed++
			continue
		}
		if err := t.lookup(out, row); err != nil {
			fail.Fail(in, i, "join", err)
			continue
		}
		absorbed++
	}
	return late, absorbed
}

// lookup emits row joined with its table row, or with NULLs for LEFT JOIN
// (a row the WHERE above drops, Process drops first: dropsEarly).
func (t *tableJoin) lookup(out *message.Batch, row value.Row) error {
	if err := t.stream.keys.encode(row, 0); err != nil {
		return err
	}
	var match value.Row
	if !hasNull(t.stream.keys.vals) {
		match = t.rows[string(t.stream.keys.buf)]
	}
	return t.emit(out, row, match, asOfTime{})
}

// emit writes row joined with match, its table row, then with the row of
// each further table the row joined so far looks up.
func (t *tableJoin) emit(out *message.Batch, row, match value.Row, when asOfTime) error {
	o := out.Append(0)
	copy(o, row)
	ok, err := joinMatch(o, len(row), match, t.nulls, t.node.Outer, t.node.On)
	if ok && err == nil {
		ok, err = lookUp(o, len(row)+t.table.width, t.lookups, when)
	}
	if !ok || err != nil {
		out.Truncate()
	}
	return err
}

// lookUp writes into o, from at, the row of each further table that the
// row joined before it, o[:at] and then more, looks up, the version at
// when's time of those joined as of a time; ok is false if one of them
// drops the row (a JOIN that finds none), and after an error.
func lookUp(o value.Row, at int, lookups []*lookup, when asOfTime) (ok bool, err error) {
	for _, l := range lookups {
		if err = l.keys.encode(o, 0); err != nil {
			return false, err
		}
		var match value.Row
		switch {
		case hasNull(l.keys.vals):
		case l.versions != nil:
			match = l.versions.at(l.keys.buf, when.ts, when.floor)
		default:
			match = l.rows[string(l.keys.buf)]
		}
		if ok, err = joinMatch(o, at, match, l.nulls, l.Outer, l.On); !ok || err != nil {
			return false, err
		}
		at += l.table.width
	}
	return true, nil
}

// absorbTable takes the rows of in, a table's batch, into rows by the
// table's key: the latest row per key. A tombstone (Batch.Deletes)
// deletes its key's row, and so does a row that drop (if set) says no row
// the join writes would keep. It returns the rows it took.
func absorbTable(in *message.Batch, rows map[string]value.Row, table *side, fail Failures, drop func(value.Row) bool) (absorbed int) {
	deletes := tombstones(in.Deletes)
	for i, row := range in.Rows {
		deleted := deletes.at(in.Offsets[i])
		if err := table.keys.encode(row, 0); err != nil {
			fail.Fail(in, i, "join", err)
			continue
		}
		if deleted || drop != nil && drop(row) {
			delete(rows, string(table.keys.buf))
		} else {
			rows[string(table.keys.buf)] = ownValues(row)
		}
		absorbed++
	}
	return absorbed
}

// joinMatch writes match, a table's row for the row joined so far,
// o[:at], into o from at; with none (nil), or one the rest of ON, on,
// fails, a LEFT JOIN (outer) writes NULLs and a JOIN nothing: ok is false
// then, and after an error.
func joinMatch(o value.Row, at int, match, nulls value.Row, outer bool, on expr.Expr) (ok bool, err error) {
	if match == nil {
		copy(o[at:], nulls)
		return outer, nil
	}
	copy(o[at:], match)
	pass, err := holds(on, o)
	switch {
	case err != nil:
		return false, err
	case !pass && outer:
		copy(o[at:], nulls)
	}
	return pass || outer, nil
}

// Advance implements Stateful: once the table is loaded, the stream rows
// that waited for it go out, in the order they came, a batch at a time
// (maxRows) if set: the caller calls Advance again while out fills.
func (t *tableJoin) Advance(wm Watermark, out *message.Batch, fail func(error)) (dropped int) {
	if !t.loaded || len(t.waiting) == 0 {
		return 0
	}
	n := 0
	for ; n < len(t.waiting) && (t.maxRows <= 0 || out.Len() < t.maxRows); n++ {
		r := t.waiting[n]
		if !r.source.current() {
			continue // counted as aggregated when it came; its new owner joins it
		}
		if err := t.lookup(out, r.row); err != nil {
			fail(err)
		}
	}
	clear(t.waiting[:n])
	t.waiting = t.waiting[n:]
	return dropped
}

// Low implements Stateful: nothing is acknowledged while stream rows wait
// for the table.
func (t *tableJoin) Low() int64 {
	if len(t.waiting) > 0 {
		return math.MinInt64
	}
	return math.MaxInt64
}

// Size implements Stateful: the tables' rows and the stream rows waiting.
func (t *tableJoin) Size() int { return len(t.rows) + len(t.waiting) + rowsOf(t.lookups) }

// rowsOf is the number of rows the tables of lookups hold.
func rowsOf(lookups []*lookup) int {
	n := 0
	for _, l := range lookups {
		n += len(l.rows)
		if l.versions != nil {
			n += l.versions.held
		}
	}
	return n
}

// Pending is the number of stream rows waiting: restored, they are
// written without being read again.
func (t *tableJoin) Pending() int { return len(t.waiting) }

// tombstones are the offsets of a table batch's deletions (Batch.Deletes),
// ascending, read along with its rows.
type tombstones []int64

// at reports whether the row at offset off, after the rows asked about
// before, is a deletion. Offsets of rows a stage dropped are passed over.
func (t *tombstones) at(off int64) bool {
	for len(*t) > 0 && (*t)[0] < off {
		*t = (*t)[1:]
	}
	return len(*t) > 0 && (*t)[0] == off
}

func hasNull(vals []value.Value) bool {
	for _, v := range vals {
		if v.IsNull() {
			return true
		}
	}
	return false
}
