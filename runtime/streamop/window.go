package streamop

import (
	"cmp"
	"fmt"
	"math"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/runtime/aggregate"
	"github.com/sluice-dev/sluice/runtime/expr"
	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/plan"
	"github.com/sluice-dev/sluice/runtime/value"
)

// windowAgg runs a windowed GROUP BY: tumbling and hopping windows keep one
// aggregate state per window and key, updated as rows arrive; session
// windows keep their rows, since sessions merge, and aggregate them when
// they close.
type windowAgg struct {
	node    *plan.Aggregate
	allowed int64 // allowed lateness, ns
	// whole writes a window's groups all in one Advance, for a top-N that
	// ranks them: none while the groups of a partition that is replaying
	// wait for its watermark, and windows in order. ranked is the end of
	// the last window written: a row of a window ranked already, from a
	// partition that replays (or came late from idleness), is late for
	// it, or the window would be ranked again of its rows alone.
	whole  bool
	ranked int64
	time   int
	keys   *keyEncoder
	args   []expr.Expr
	calls  aggregate.Calls
	argv   []value.Value
	// cmp is sameArgs' buffer.
	cmp []byte

	// Tumbling and hopping windows by start, and the starts in order.
	windows map[int64]*window
	starts  []int64
	groups  int
	dirty   []*group // EMIT CHANGES: groups changed by the current batch
	written int      // of dirty, written already: of changes written a batch at a time
	// errs are the EMIT CHANGES rows Process could not compute. Process
	// reports failures of input rows only; these go to the next Advance's
	// fail, like the rows that fail when their window closes.
	errs pendingErrors
	// Closed windows and their groups are reused, and key strings interned,
	// so that steady state allocates nothing per group either.
	freeWindows []*window
	freeGroups  []*group
	interned    map[string]string
	peak        int // most groups held since the interned strings were last cleared

	// ttl, for a continuous aggregation, drops a group that no row changed
	// for that long, in nanoseconds of the clock (processing time); 0
	// keeps every group. now is the clock at the batch being taken, idle
	// orders the groups by their last change, and expired counts the
	// groups dropped.
	ttl     int64
	clock   func() time.Time
	now     int64
	idle    idleList[group, *group]
	expired int64
	// pace, for a continuous aggregation with an emit interval, holds
	// back the groups a batch changed (dirty): each is then written once,
	// as it is.
	pace    pacer
	pending int // groups in dirty still to write
	// maxRows is StatefulOptions.MaxRows: how many rows Advance writes
	// before it keeps the rest of a window's close or of the changes held.
	maxRows int
	// processedAt, of windows of processing time, is the latest time of
	// their clock read (processingTime).
	processedAt int64
	// owners, for a continuous aggregation, are the partitions (in a
	// generation) its groups were built from: one that moved away has
	// its groups dropped, which its new owner holds.
	owners ownerSet

	// Session windows by key; keySeq numbers the keys as they appear, and
	// closing collects the sessions that close at one watermark.
	sessions map[string]*sessionKey
	keySeq   uint64
	closing  []closingSession
	held     int // rows held in sessions
	// sessionEnds queues each partition's keys (in a generation) by the
	// end of their first session as it was when queued, or earlier: Advance
	// looks at the keys the watermark may close, not at every key. A row
	// extends a session's end without queuing its key again (the key is
	// looked at early, and queued again then); one that makes an earlier
	// first session queues it again. sessionStarts queues the keys by
	// their first session's start, for Low. An entry is stale once its
	// key's has another time (sessionKey.endAt, startAt) or its key is no
	// longer held; compactQueues drops them when they outnumber the keys.
	sessionEnds   map[owner]*timeHeap[*sessionKey]
	sessionStarts timeHeap[*sessionKey]

	// Once a whole snapshot is taken or restored (tracking), what changed
	// since, for AppendChanges: the groups added to, made or fired, each
	// with its life then (groups are reused); the groups dropped from
	// windows that stay open; the windows closed; the session keys
	// changed, and those closed.
	tracking      bool
	changed       []changedGroup
	droppedGroups []droppedGroup
	closedWindows []int64
	changedKeys   []*sessionKey
	closedKeys    []string
}

// changedGroup is a group changed since the last snapshot, as of its life
// then: a group closed and reused since is another.
type changedGroup struct {
	g    *group
	life uint32
}

// droppedGroup is a group dropped from a window still open.
type droppedGroup struct {
	start int64
	key   string
}

type window struct {
	start, end int64
	groups     map[string]*group
	order      []*group // in order of first row, for a stable output
	// dropsListed says droppedGroups may list groups of the window dropped
	// by an Advance before the one that closes it (a window closed a
	// batch at a time, or whose groups waited for a replaying partition).
	dropsListed bool
}

type group struct {
	w      *window
	key    string // in the window's groups
	source owner
	keys   []value.Value
	states []aggregate.State
	dirty  bool
	// fired says the group's row was written when its window closed;
	// updated that a late record changed it since (allowed lateness).
	fired, updated bool
	// changed says the group is among the operator's changed; life counts
	// its reuses.
	changed bool
	life    uint32
	// idle places it in the operator's idle list: with a ttl only.
	idle idleLinks[group]
}

func (g *group) links() *idleLinks[group] { return &g.idle }

type sessionKey struct {
	name     string // in the operator's sessions
	source   owner
	keys     []value.Value
	sessions []*session // by start
	seq      uint64     // the order of the key's first row
	changed  bool       // among the operator's changedKeys
	// endAt and startAt are the times of the key's entries in the
	// operator's queues (sessionEnds, sessionStarts), if queued: the
	// entries of other times are stale.
	endAt, startAt         int64
	endQueued, startQueued bool
}

// closingSession is a session the watermark closed, with its key.
type closingSession struct {
	key *sessionKey
	s   *session
}

type session struct {
	start, end int64 // end: the last row's event time plus the gap
	rows       []sessionRow
}

type sessionRow struct {
	ts   int64
	args []value.Value
}

func newWindowAgg(n *plan.Aggregate) *windowAgg {
	a := &windowAgg{
		node: n, time: -1, keys: newKeyEncoder(n.Keys),
		windows: map[int64]*window{}, interned: map[string]string{},
		argv: make([]value.Value, len(n.Aggs)),
	}
	if n.Window.Time != nil {
		a.time = n.Window.Time.Index
	}
	a.clearSessions()
	a.clock = time.Now
	a.pace.clock = a.clock
	funcs := make([]aggregate.Func, len(n.Aggs))
	for i, c := range n.Aggs {
		a.args = append(a.args, c.Arg)
		funcs[i] = c.Func
	}
	a.calls = aggregate.NewCalls(funcs, sameArgs(n.Aggs))
	return a
}

// sameArgs returns, for each call, the first whose argument is the same
// apart from a FILTER (CASE WHEN c THEN x END, as the binder writes the
// argument x of a call with FILTER (WHERE c)), for the COUNT(DISTINCT)
// calls of one argument to share a set. Arguments are the same if they are
// equal trees; one that holds a function value is the same as none.
func sameArgs(calls []plan.AggCall) []int {
	same := make([]int, len(calls))
	for i, c := range calls {
		same[i] = i
		for j := range i {
			if c.Arg != nil && calls[j].Arg != nil && reflect.DeepEqual(unfiltered(c.Arg), unfiltered(calls[j].Arg)) {
				same[i] = j
				break
			}
		}
	}
	return same
}

// unfiltered is an aggregate call's argument without its FILTER.
func unfiltered(arg expr.Expr) expr.Expr {
	if c, ok := arg.(*expr.Case); ok && len(c.Whens) == 1 && c.Else == nil {
		return c.Whens[0].Then
	}
	return arg
}

// evalArgs evaluates the aggregate arguments of row into a.argv.
func (a *windowAgg) evalArgs(row value.Row) error {
	for i, e := range a.args {
		if e == nil { // count(*)
			a.argv[i] = value.IntValue(1)
			continue
		}
		v, err := e.Eval(row)
		if err != nil {
			return err
		}
		a.argv[i] = v
	}
	return nil
}

// Process implements Stateful.
func (a *windowAgg) Process(in, out *message.Batch, wm Watermark, fail Failures) (late, absorbed int) {
	w := a.node.Window
	src := ownerOf(in)
	if a.ttl > 0 {
		// Before the rows: a group idle for the ttl starts again.
		a.now = a.clock().UnixNano()
		a.expire(a.now, out)
	}
	// Windows stay open for the allowed lateness past their end, so a row
	// is late only that far behind the watermark.
	watermark := Behind(wm.For(in.Origin), a.allowed)
	// Processing time is read once a batch: the batch's rows are
	// processed together, and none is late.
	var now int64
	if w.ProcTime {
		now, watermark = a.processingTime(), math.MinInt64
	}
	for i, row := range in.Rows {
		// A continuous aggregation has no event time, and no row is late
		// for it: its rows are taken in the order they come, which is
		// what first_value and last_value follow.
		var ts int64
		var err error
		switch {
		case w.ProcTime:
			ts = now
		case w.Kind != plan.Continuous:
			ts, err = eventTime(row, a.time)
			if err == nil && (ts < watermark || a.whole && ts-mod(ts, w.Slide)+w.Size <= a.ranked) {
				late++
				continue
			}
		}
		if err == nil {
			err = a.evalArgs(row)
		}
		if err == nil {
			err = a.keys.encode(row, 0)
		}
		if err == nil {
			if w.Kind == plan.Session {
				a.addToSession(ts, src)
			} else {
				err = a.addToWindows(ts, src)
			}
		}
		if err != nil {
			fail.Fail(in, i, "aggregate", err)
			continue
		}
		absorbed++
	}
	a.emitBatch(out)
	return late, absorbed
}

// emitBatch writes, with EMIT CHANGES, the groups a batch changed, unless
// the emit interval holds them back.
func (a *windowAgg) emitBatch(out *message.Batch) {
	if a.node.EmitChanges && a.pace.afterBatch() {
		a.errs = a.emitChanged(out, a.errs)
	}
}

// change replaces, in a continuous aggregation of a changelog, the
// arguments of a row it took before, old (nil for none), by those of the
// row's new version, row, which it returns (in a.argv, good until the next
// call); changed is false if they are the same, and nothing was done. The
// outer keys are of the inner group's keys alone, so both rows are of one
// group. A new row that fails changes nothing: the group keeps the earlier
// row, as a reader of the changelog would.
func (a *windowAgg) change(old []value.Value, row value.Row) (args []value.Value, changed bool, err error) {
	if err := a.keys.encode(row, 0); err != nil {
		return nil, false, err
	}
	if err := a.evalArgs(row); err != nil {
		return nil, false, err
	}
	if old != nil && a.sameArgs(old) {
		return a.argv, false, nil
	}
	var g *group
	if win := a.windows[math.MinInt64]; win != nil {
		g = win.groups[string(a.keys.buf)]
	}
	if g == nil && old != nil {
		return nil, false, fmt.Errorf("key %v: no group holds the row to take back out", a.keys.vals)
	}
	// Every argument is checked before any state changes.
	var empty aggregate.State
	for i := range a.calls.Funcs {
		s := &empty
		if g != nil {
			s = &g.states[i]
		}
		var was value.Value
		if old != nil {
			was = old[i]
		}
		if err := a.calls.Funcs[i].CheckReplace(s, was, old != nil, a.argv[i]); err != nil {
			return nil, false, err
		}
	}
	if old != nil {
		a.touch(g)
		for i := range a.calls.Funcs {
			if err := a.calls.Funcs[i].Remove(&g.states[i], old[i]); err != nil {
				return nil, false, err
			}
		}
	}
	return a.argv, true, a.addToWindow(math.MinInt64, math.MaxInt64, 0, owner{})
}

// sameArgs reports whether a.argv are the values of args, NULLs equal.
func (a *windowAgg) sameArgs(args []value.Value) bool {
	for i, v := range a.argv {
		a.cmp = appendKey(a.cmp[:0], v)
		n := len(a.cmp)
		if a.cmp = appendKey(a.cmp, args[i]); string(a.cmp[:n]) != string(a.cmp[n:]) {
			return false
		}
	}
	return true
}

// emitChanged writes the current row of each group changed since it was
// last written, appending to errs the rows it could not compute. A
// continuous aggregation's stop once out is full (full), and the next
// Advance writes on; a window's EMIT CHANGES, whose Advance closes windows
// but writes no changes, are written all at once (as many as the rows of
// a batch times the windows each is in).
func (a *windowAgg) emitChanged(out *message.Batch, errs []error) []error {
	a.pace.written()
	continuous := a.node.Window.Kind == plan.Continuous
	for ; a.written < len(a.dirty); a.written++ {
		g := a.dirty[a.written]
		if continuous && a.full(out) {
			a.dirty, a.written = unwritten(a.dirty, a.written)
			a.pace.writtenInPart()
			return errs
		}
		if !g.dirty {
			continue // dropped since it changed, or listed again once reused
		}
		g.dirty = false
		a.pending--
		if !g.source.current() {
			continue // its partition moved away: its new owner writes it
		}
		if err := a.emit(out, g); err != nil {
			errs = append(errs, err)
		}
	}
	clear(a.dirty)
	a.dirty, a.written = a.dirty[:0], 0
	return errs
}

// full reports whether out holds the rows an Advance writes at most. A
// window whose rows are ranked together goes whole.
func (a *windowAgg) full(out *message.Batch) bool {
	return a.maxRows > 0 && !a.whole && out.Len() >= a.maxRows
}

// Flush implements Flusher.
func (a *windowAgg) Flush() bool {
	return a.pace.flushHeld(a.pending > 0)
}

// addToWindows adds the row in a.argv, of key a.keys, to every window that
// contains ts; a continuous aggregation's to its one window, of all time.
func (a *windowAgg) addToWindows(ts int64, src owner) error {
	w := a.node.Window
	if w.Kind == plan.Continuous {
		return a.addToWindow(math.MinInt64, math.MaxInt64, ts, src)
	}
	// The last window containing ts starts at ts rounded down to the slide;
	// earlier ones every slide before, while they still contain ts.
	last := ts - mod(ts, w.Slide)
	for start := last; start > ts-w.Size && (!a.whole || start+w.Size > a.ranked); start -= w.Slide {
		if err := a.addToWindow(start, start+w.Size, ts, src); err != nil {
			return err
		}
	}
	return nil
}

// addToWindow adds the row in a.argv at ts, of key a.keys, to its group in
// the window from start to end.
func (a *windowAgg) addToWindow(start, end, ts int64, src owner) error {
	win := a.windows[start]
	if win == nil {
		win = a.newWindow(start, end)
		a.windows[start] = win
		i, _ := slices.BinarySearch(a.starts, start)
		a.starts = slices.Insert(a.starts, i, start)
	}
	g := win.groups[string(a.keys.buf)]
	starts := g == nil || !g.source.current()
	if g != nil && !g.source.current() {
		// Built from records of a partition that has since moved away
		// and come back: they are being read again.
		clear(g.states)
		g.source, g.fired, g.updated = src, false, false
		a.owned(src)
	}
	if g != nil && g.fired {
		g.updated = true // a late record within the allowed lateness
	}
	if g == nil {
		g = a.newGroup(win)
		g.source = src
		a.owned(src)
		g.key = a.intern(string(a.keys.buf))
		win.groups[g.key] = g
		win.order = append(win.order, g)
		a.groups++
		a.peak = max(a.peak, a.groups)
	}
	if a.ttl > 0 {
		a.idle.touch(g, a.now)
	}
	if a.node.Distinct && !starts {
		return nil // SELECT DISTINCT, a row seen before: nothing changes
	}
	// Before the aggregates take the row: a group made, or cleared, for a
	// row that then fails stays in the state, and in its changes.
	a.touch(g)
	if err := a.calls.Add(g.states, a.argv, ts); err != nil {
		return err
	}
	if a.node.EmitChanges && !g.dirty {
		g.dirty = true
		a.pending++
		a.dirty = append(a.dirty, g)
	}
	return nil
}

// touch notes, once a snapshot is taken, that g changed.
func (a *windowAgg) touch(g *group) {
	if a.tracking && !g.changed {
		g.changed = true
		a.changed = append(a.changed, changedGroup{g, g.life})
	}
}

// touchKey notes, once a snapshot is taken, that a key's sessions changed.
func (a *windowAgg) touchKey(sk *sessionKey) {
	if a.tracking && !sk.changed {
		sk.changed = true
		a.changedKeys = append(a.changedKeys, sk)
	}
}

// tracked starts, or starts again, tracking changes after a snapshot.
func (a *windowAgg) tracked() {
	for _, c := range a.changed {
		c.g.changed = false
	}
	for _, k := range a.changedKeys {
		k.changed = false
	}
	clear(a.changed)
	clear(a.changedKeys)
	clear(a.closedKeys)
	a.changed, a.changedKeys, a.closedKeys = a.changed[:0], a.changedKeys[:0], a.closedKeys[:0]
	a.droppedGroups, a.closedWindows = a.droppedGroups[:0], a.closedWindows[:0]
	a.tracking = true
}

func (a *windowAgg) newWindow(start, end int64) *window {
	n := len(a.freeWindows)
	if n == 0 {
		return &window{start: start, end: end, groups: map[string]*group{}}
	}
	win := a.freeWindows[n-1]
	a.freeWindows = a.freeWindows[:n-1]
	win.start, win.end = start, end
	return win
}

// newGroup returns a group of win for the key in a.keys.vals.
func (a *windowAgg) newGroup(win *window) *group {
	g := a.takeGroup(win)
	for i, v := range a.keys.vals {
		if v.Kind() == value.KindString {
			v = value.StringValue(a.intern(v.Str()))
		}
		g.keys[i] = v
	}
	return g
}

// takeGroup returns a group of win, without keys.
func (a *windowAgg) takeGroup(win *window) *group {
	var g *group
	if n := len(a.freeGroups); n > 0 {
		g = a.freeGroups[n-1]
		a.freeGroups = a.freeGroups[:n-1]
	} else {
		g = &group{keys: make([]value.Value, len(a.keys.vals)), states: make([]aggregate.State, len(a.calls.Funcs))}
	}
	g.w = win
	return g
}

// reserveGroups makes n free groups at once, from three allocations
// rather than three each, for a restore.
func (a *windowAgg) reserveGroups(n int) {
	n -= len(a.freeGroups)
	if n <= 0 {
		return
	}
	groups := make([]group, n)
	keys := make([]value.Value, n*len(a.keys.vals))
	states := make([]aggregate.State, n*len(a.calls.Funcs))
	nk, nf := len(a.keys.vals), len(a.calls.Funcs)
	for i := range groups {
		g := &groups[i]
		g.keys, g.states = keys[i*nk:(i+1)*nk:(i+1)*nk], states[i*nf:(i+1)*nf:(i+1)*nf]
		a.freeGroups = append(a.freeGroups, g)
	}
}

// intern returns the operator's own copy of s, which does not keep the
// input buffer s points into alive.
func (a *windowAgg) intern(s string) string {
	if own, ok := a.interned[s]; ok {
		return own
	}
	own := strings.Clone(s)
	a.interned[own] = own
	return own
}

// dropGroup drops g from win, which stays open, noting it among the
// changes, and keeps it for reuse; the caller takes it out of win.order.
func (a *windowAgg) dropGroup(win *window, g *group) {
	if a.tracking {
		a.droppedGroups = append(a.droppedGroups, droppedGroup{win.start, g.key})
	}
	delete(win.groups, g.key)
	a.recycle(g)
}

// recycle keeps a closed group for reuse.
func (a *windowAgg) recycle(g *group) {
	a.idle.remove(g)
	if g.dirty {
		a.pending--
	}
	clear(g.states)
	g.w, g.dirty, g.key, g.source, g.fired, g.updated, g.changed = nil, false, "", owner{}, false, false, false
	g.life++
	a.freeGroups = append(a.freeGroups, g)
	a.groups--
}

// release recycles a closed window, whose groups are recycled already.
func (a *windowAgg) release(win *window) {
	win.order = win.order[:0]
	a.freeWindows = append(a.freeWindows, win)
	// Keys that stop appearing would stay interned forever: start afresh
	// when the table has outgrown the groups held by far.
	if len(a.interned) > 4*a.peak+4096 {
		clear(a.interned)
		a.peak = a.groups
	}
}

// mod is x mod m in [0, m), for negative x too.
func mod(x, m int64) int64 {
	r := x % m
	if r < 0 {
		r += m
	}
	return r
}

// addToSession adds the row in a.argv at ts to its key's sessions, merging
// the sessions it bridges.
func (a *windowAgg) addToSession(ts int64, src owner) {
	gap := a.node.Window.Gap
	sk := a.sessions[string(a.keys.buf)]
	if sk != nil && !sk.source.current() {
		a.unhold(sk)
		sk = nil
	}
	if sk == nil {
		sk = &sessionKey{name: string(a.keys.buf), keys: ownValues(a.keys.vals), source: src, seq: a.keySeq}
		a.keySeq++
		a.sessions[sk.name] = sk
	}
	// The row joins the largest session it touches, which takes the rows
	// of the others it bridges: copying the largest for each row would make
	// a long session quadratic.
	overlaps := func(s *session) bool { return ts < s.end && ts+gap > s.start }
	var merged *session
	for _, s := range sk.sessions {
		if overlaps(s) && (merged == nil || len(s.rows) > len(merged.rows)) {
			merged = s
		}
	}
	if merged == nil {
		merged = &session{start: ts, end: ts + gap}
	}
	kept := sk.sessions[:0]
	for _, s := range sk.sessions {
		switch {
		case s == merged:
		case overlaps(s):
			merged.start = min(merged.start, s.start)
			merged.end = max(merged.end, s.end)
			merged.rows = append(merged.rows, s.rows...)
		default:
			kept = append(kept, s)
		}
	}
	merged.start = min(merged.start, ts)
	merged.end = max(merged.end, ts+gap)
	merged.rows = append(merged.rows, sessionRow{ts: ts, args: ownValues(a.argv)})
	a.held++
	i := sort.Search(len(kept), func(i int) bool { return kept[i].start > merged.start })
	sk.sessions = slices.Insert(kept, i, merged)
	a.touchKey(sk)
	a.queue(sk)
}

// clearSessions drops every session key.
func (a *windowAgg) clearSessions() {
	a.sessions = map[string]*sessionKey{}
	a.clearQueues()
}

// clearQueues empties the queues of session keys.
func (a *windowAgg) clearQueues() {
	a.sessionEnds = map[owner]*timeHeap[*sessionKey]{}
	clear(a.sessionStarts)
	a.sessionStarts = a.sessionStarts[:0]
}

// queued is the number of entries in the queues, stale ones too.
func (a *windowAgg) queued() int {
	n := len(a.sessionStarts)
	for _, h := range a.sessionEnds {
		n += len(*h)
	}
	return n
}

// compactQueues queues the keys held again, without the stale entries,
// once these may outnumber them: a stale entry below a live one stays
// until that one goes (a session open for long, a partition behind), and
// keeps its key's rows.
func (a *windowAgg) compactQueues() {
	if n := a.queued(); n < 64 || n <= 4*len(a.sessions) {
		return
	}
	a.clearQueues()
	for _, sk := range a.sessions {
		sk.endQueued, sk.startQueued = false, false
		a.queue(sk)
	}
}

// queue keeps a key's entries in the queues up to date with its first
// session, after its sessions changed. Its end entry stays while the end
// only grew: that key is looked at early, and queued again then.
func (a *windowAgg) queue(sk *sessionKey) {
	if len(sk.sessions) == 0 {
		return
	}
	first := sk.sessions[0]
	if !sk.endQueued || first.end < sk.endAt {
		h := a.sessionEnds[sk.source]
		if h == nil {
			h = &timeHeap[*sessionKey]{}
			a.sessionEnds[sk.source] = h
		}
		h.push(timed[*sessionKey]{ts: first.end, key: sk})
		sk.endAt, sk.endQueued = first.end, true
	}
	if !sk.startQueued || first.start != sk.startAt {
		a.sessionStarts.push(timed[*sessionKey]{ts: first.start, key: sk})
		sk.startAt, sk.startQueued = first.start, true
	}
}

// holdsKey says a key is the operator's, not one closed or replaced since.
func (a *windowAgg) holdsKey(sk *sessionKey) bool { return a.sessions[sk.name] == sk }

// Advance implements Stateful. It drops no rows uncounted: every row it
// absorbed was counted then.
func (a *windowAgg) Advance(wm Watermark, out *message.Batch, fail func(error)) (dropped int) {
	if a.ttl > 0 {
		a.expire(a.clock().UnixNano(), out)
	}
	a.errs.flush(fail)
	if a.node.Window.Kind == plan.Continuous {
		// Its one window never closes, not even at the end of the input:
		// a checkpoint then still holds every group, for a run that
		// reads on.
		a.dropMoved()
		if a.pace.atAdvance(a.pending > 0) {
			for _, err := range a.emitChanged(out, nil) {
				fail(err)
			}
		}
		return 0
	}
	if a.node.Window.ProcTime && wm.For(nil) != math.MaxInt64 {
		// Windows of processing time close as the clock passes their end;
		// at the end of the input, all of them.
		wm = fixedTime(a.processingTime())
	}
	if a.node.Window.Kind == plan.Session {
		a.closeSessions(wm, out, fail)
		return 0
	}
	watermark := wm.For(nil)
	kept := a.starts[:0]
	for i, start := range a.starts {
		win := a.windows[start]
		if win.end > watermark {
			// Windows end in the order they start: the rest are open too.
			kept = append(kept, a.starts[i:]...)
			break
		}
		// The groups of a partition that is replaying wait for its own
		// watermark; the others are written, and dropped once the allowed
		// lateness has passed too. A group a late record updated is
		// written again.
		if a.whole {
			if a.waits(win, wm) {
				kept = append(kept, a.starts[i:]...)
				break
			}
			a.ranked = win.end
		}
		waiting, drops := win.order[:0], len(a.droppedGroups)
		full := false
		for j, g := range win.order {
			if a.full(out) {
				// The rest wait for the next Advance, this window and
				// those after it open till then.
				waiting, full = append(waiting, win.order[j:]...), true
				break
			}
			mark := wm.For(g.source.origin)
			switch {
			case !g.source.current():
				// Its partition moved away: the new owner writes it. Its rows
				// were counted as aggregated when they came.
			case mark < win.end:
				waiting = append(waiting, g)
				continue
			default:
				if !g.fired || g.updated {
					if !a.node.EmitChanges {
						if err := a.emit(out, g); err != nil {
							fail(err)
						}
					}
					g.fired, g.updated = true, false
					a.touch(g)
				}
				if mark < win.end+a.allowed {
					waiting = append(waiting, g)
					continue
				}
			}
			a.dropGroup(win, g)
		}
		clear(win.order[len(waiting):])
		win.order = waiting
		win.dropsListed = win.dropsListed || len(a.droppedGroups) > drops
		if full {
			kept = append(kept, a.starts[i:]...)
			break
		}
		if len(waiting) > 0 {
			kept = append(kept, start)
			continue
		}
		if a.tracking {
			// The window's close says its groups' drops.
			a.droppedGroups = a.droppedGroups[:drops]
			if win.dropsListed {
				a.droppedGroups = slices.DeleteFunc(a.droppedGroups, func(d droppedGroup) bool { return d.start == start })
			}
			a.closedWindows = append(a.closedWindows, start)
		}
		delete(a.windows, start)
		a.release(win)
	}
	a.starts = kept
	return 0
}

// processingTime reads the clock of windows of processing time, which
// never goes back, even when the wall clock does: a row never goes to a
// window already written.
func (a *windowAgg) processingTime() int64 {
	a.processedAt = max(a.processedAt, a.clock().UnixNano())
	return a.processedAt
}

// ProcessedAt is the processing time of the last batch taken, the time of
// its rows' windows: its records are acknowledged once the windows open at
// that time are written.
func (a *windowAgg) ProcessedAt() int64 { return a.processedAt }

// fixedTime is a watermark that is the same for every partition: the
// clock, for windows of processing time.
type fixedTime int64

// For implements Watermark.
func (t fixedTime) For(*message.Origin) int64 { return int64(t) }

// waits reports whether a group of win waits for the watermark of a
// partition that is replaying, or such a partition may still bring rows
// to win.
func (a *windowAgg) waits(win *window, wm Watermark) bool {
	if replayBefore(wm, win.end) {
		return true
	}
	for _, g := range win.order {
		if g.source.current() && wm.For(g.source.origin) < win.end {
			return true
		}
	}
	return false
}

// expire drops the groups of a continuous aggregation that no row changed
// for the ttl: a reader of the changelog keeps their last rows (a change
// the emit interval holds back is written to out first), and a row of the
// key later starts its group again, from nothing. It looks at most
// every sixteenth of the ttl or every second, whichever is shorter, so a
// group goes within that of its ttl.
func (a *windowAgg) expire(now int64, out *message.Batch) {
	if !a.idle.sweepDue(now, a.ttl) {
		return
	}
	var win *window
	for g := a.idle.oldest; g != nil && now-g.idle.touched >= a.ttl; g = a.idle.oldest {
		win = g.w
		if g.dirty && g.source.current() {
			// A change the emit interval held back goes out with it.
			if err := a.emit(out, g); err != nil {
				a.errs = append(a.errs, err)
			}
		}
		a.dropGroup(win, g) // its w is now nil: taken out of the order below
		a.expired++
	}
	if win == nil {
		return
	}
	win.order = slices.DeleteFunc(win.order, func(g *group) bool { return g.w == nil })
	// The keys of the groups dropped would stay interned for ever.
	if len(a.interned) > 4*a.peak+4096 {
		clear(a.interned)
		a.peak = a.groups
	}
	if a.groups*4 < a.peak {
		// Memory follows the groups held, not their peak: a map grown for
		// four times as many, and free groups beyond a quarter of those
		// held, go.
		groups := make(map[string]*group, len(win.groups))
		for k, g := range win.groups {
			groups[k] = g
		}
		win.groups = groups
		if keep := a.groups/4 + 1024; len(a.freeGroups) > keep {
			clear(a.freeGroups[keep:])
			a.freeGroups = a.freeGroups[:keep]
		}
		clear(a.interned)
		a.peak = a.groups
	}
}

// owned notes, for a continuous aggregation, that a group was built from
// src.
func (a *windowAgg) owned(src owner) {
	if a.node.Window.Kind != plan.Continuous {
		return
	}
	a.owners.add(src)
}

// dropMoved drops the groups of a continuous aggregation built from a
// partition that has since moved to another engine, which holds them: a
// window that closes drops such groups, but its never does. It looks at
// the groups only when a partition moved.
func (a *windowAgg) dropMoved() {
	if !a.owners.moved() {
		return
	}
	for _, win := range a.windows {
		n := len(win.order)
		for _, g := range win.order {
			if g.source.current() {
				continue
			}
			a.dropGroup(win, g) // its w is now nil: taken out of the order below
		}
		if len(win.groups) < n {
			win.order = slices.DeleteFunc(win.order, func(g *group) bool { return g.w == nil })
		}
	}
}

// Expired implements Expirer.
func (a *windowAgg) Expired() int64 { return a.expired }

// emit appends a group's row: window bounds, keys, aggregates. If an
// aggregate cannot be computed, it appends nothing and returns the error.
func (a *windowAgg) emit(out *message.Batch, g *group) error {
	row := out.Append(0)
	row[0], row[1] = value.TimestampValue(g.w.start), value.TimestampValue(g.w.end)
	copy(row[2:], g.keys)
	for i := range a.calls.Funcs {
		v, err := a.calls.Funcs[i].Result(&g.states[i])
		if err != nil {
			if a.node.Window.Kind == plan.Continuous {
				err = fmt.Errorf("key %v: %s: %w", g.keys, a.node.Aggs[i], err)
			} else {
				err = fmt.Errorf("window %s–%s key %v: %s: %w", row[0], row[1], g.keys, a.node.Aggs[i], err)
			}
			out.Truncate()
			return err
		}
		row[2+len(g.keys)+i] = v
	}
	return nil
}

// closeSessions emits and drops the sessions the watermark ends. They come
// out in the order of their start, and sessions that start together in the
// order their keys appeared, so that the output does not depend on the
// order of a map.
func (a *windowAgg) closeSessions(wm Watermark, out *message.Batch, fail func(error)) {
	a.compactQueues()
	for src, h := range a.sessionEnds {
		if !src.current() {
			// The partition moved away: its new owner holds its keys,
			// each of which has a live entry here among the stale.
			for _, e := range *h {
				if sk := e.key; a.holdsKey(sk) {
					a.unhold(sk)
					a.closeKey(sk.name)
				}
			}
			delete(a.sessionEnds, src)
			continue
		}
		watermark := wm.For(src.origin)
		for len(*h) > 0 && h.low() <= watermark {
			e := h.pop()
			sk := e.key
			if !sk.endQueued || sk.endAt != e.ts || !a.holdsKey(sk) {
				continue
			}
			sk.endQueued = false
			n := 0
			for _, s := range sk.sessions {
				if s.end > watermark {
					break
				}
				a.closing = append(a.closing, closingSession{key: sk, s: s})
				a.held -= len(s.rows)
				n++
			}
			clear(sk.sessions[:n])
			sk.sessions = sk.sessions[n:]
			if len(sk.sessions) == 0 {
				a.closeKey(sk.name)
				continue
			}
			if n > 0 {
				a.touchKey(sk)
			}
			a.queue(sk)
		}
		if len(*h) == 0 {
			delete(a.sessionEnds, src)
		}
	}
	a.sessionLow() // drops the stale entries of the keys closed
	if len(a.closing) == 0 {
		return
	}
	slices.SortFunc(a.closing, func(x, y closingSession) int {
		if c := cmp.Compare(x.s.start, y.s.start); c != 0 {
			return c
		}
		return cmp.Compare(x.key.seq, y.key.seq)
	})
	states := make([]aggregate.State, len(a.calls.Funcs))
	for _, c := range a.closing {
		s, sk := c.s, c.key
		// Rows in event-time order; equal times keep their arrival order,
		// which FIRST_VALUE and LAST_VALUE depend on.
		slices.SortStableFunc(s.rows, func(x, y sessionRow) int { return cmp.Compare(x.ts, y.ts) })
		clear(states)
		var err error
		for _, r := range s.rows {
			if err = a.calls.Add(states, r.args, r.ts); err != nil {
				break
			}
		}
		if err == nil {
			g := &group{w: &window{start: s.start, end: s.end}, keys: sk.keys, states: states}
			err = a.emit(out, g)
		} else {
			err = fmt.Errorf("session %s key %v: %w", value.TimestampValue(s.start), sk.keys, err)
		}
		if err != nil {
			fail(err)
		}
	}
	clear(a.closing)
	a.closing = a.closing[:0]
}

// unhold takes a key's session rows out of the rows held, for a key
// dropped or replaced, and lets them go: a stale entry of the queues may
// keep the key a while.
func (a *windowAgg) unhold(sk *sessionKey) {
	for _, s := range sk.sessions {
		a.held -= len(s.rows)
	}
	sk.sessions = nil
}

// closeKey drops a session key whose sessions are all closed.
func (a *windowAgg) closeKey(key string) {
	delete(a.sessions, key)
	if a.tracking {
		a.closedKeys = append(a.closedKeys, key)
	}
}

// Low implements Stateful. A continuous aggregation has written the
// results of every row it took: its groups' rows go out after each batch,
// and no window is to close.
func (a *windowAgg) Low() int64 {
	low := int64(math.MaxInt64)
	if a.node.Window.Kind == plan.Continuous {
		if a.pending > 0 {
			// Changes held back by the emit interval: the rows that made
			// them are not handled until they are written.
			return math.MinInt64
		}
		return low
	}
	if a.node.Window.Kind != plan.Session {
		if len(a.starts) > 0 {
			low = a.starts[0]
		}
		return low
	}
	return a.sessionLow()
}

// sessionLow is the earliest start of a session held, math.MaxInt64 when
// none is; it drops the stale entries it passes.
func (a *windowAgg) sessionLow() int64 {
	for h := &a.sessionStarts; len(*h) > 0; h.pop() {
		if e := (*h)[0]; e.key.startQueued && e.key.startAt == e.ts && a.holdsKey(e.key) {
			return e.ts
		}
	}
	return math.MaxInt64
}

// Size implements Stateful: groups of open windows, or rows of open sessions.
func (a *windowAgg) Size() int {
	if a.node.Window.Kind == plan.Session {
		return a.held
	}
	return a.groups
}
