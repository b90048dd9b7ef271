package streamop

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/runtime/aggregate"
	"github.com/sluice-dev/sluice/runtime/expr"
	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/plan"
	"github.com/sluice-dev/sluice/runtime/sql"
	"github.com/sluice-dev/sluice/runtime/value"
)

// The test input: rows of (ts timestamp, sym string, v int).
var (
	testScan = &plan.Scan{Source: "trades", Cols: []value.Column{
		{Name: "ts", Type: value.Timestamp}, {Name: "sym", Type: value.String}, {Name: "v", Type: value.Int},
	}}
	colTS  = &expr.Column{Index: 0, Name: "ts", T: value.Timestamp}
	colSym = &expr.Column{Index: 1, Name: "sym", T: value.String}
	colV   = &expr.Column{Index: 2, Name: "v", T: value.Int}
)

type testRow struct {
	ts  time.Duration // since the epoch
	sym string
	v   int64
}

func batchOf(rows ...testRow) *message.Batch {
	b := new(message.Batch)
	b.Reset(len(testScan.Cols))
	for i, r := range rows {
		row := b.Append(int64(i))
		row[0] = value.TimestampValue(int64(r.ts))
		row[1] = value.StringValue(r.sym)
		row[2] = value.IntValue(r.v)
	}
	return b
}

// failures collects the input rows that fail.
type failures []error

func (f *failures) Fail(_ *message.Batch, _ int, _ string, err error) { *f = append(*f, err) }

// errorList collects the errors Advance reports.
type errorList []error

func (l *errorList) add(err error) { *l = append(*l, err) }

func sumOf(t *testing.T) aggregate.Func {
	t.Helper()
	f, err := aggregate.New(aggregate.Sum, value.Int)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func newOverSum(t *testing.T, frames ...aggregate.FrameSpec) *overAgg {
	t.Helper()
	n := &plan.Over{Input: testScan, Time: colTS, Partition: []expr.Expr{colSym}}
	for _, f := range frames {
		n.Calls = append(n.Calls, plan.OverCall{Func: sumOf(t), Arg: colV, Frame: f})
	}
	return newOverAgg(n)
}

// overStep processes rows and advances to wm, checking that every absorbed
// row is written, or failed with an error that stands for it. No row is
// late, and no partition moves: the rows of the tests come no earlier than
// the last watermark, from one partition.
func overStep(t *testing.T, o *overAgg, wm time.Duration, rows ...testRow) (out *message.Batch, errs errorList) {
	t.Helper()
	out = new(message.Batch)
	out.Reset(len(testScan.Cols) + len(o.node.Calls))
	var fail failures
	pending := len(o.pending)
	late, absorbed := o.Process(batchOf(rows...), out, fixedTime(math.MinInt64), &fail)
	if late != 0 || len(fail) != 0 {
		t.Fatalf("late %d, failed %v", late, fail)
	}
	dropped := o.Advance(fixedTime(wm), out, errs.add)
	if left := len(o.pending); pending+absorbed != out.Len()+len(errs)+left {
		t.Errorf("%d rows waited and %d came, but %d were written, %d failed and %d wait", pending, absorbed, out.Len(), len(errs), left)
	}
	if dropped != 0 {
		t.Errorf("dropped %d rows; want 0, no partition moved", dropped)
	}
	return out, errs
}

// TestOverForgetsQuietKeys: a key whose frames are all RANGE frames is
// forgotten once the watermark has passed its newest row by more than the
// frame, and a row that comes for it later gets the result it would have
// got anyway.
func TestOverForgetsQuietKeys(t *testing.T) {
	o := newOverSum(t, aggregate.FrameSpec{Range: true, Preceding: int64(10 * time.Second)})
	s := time.Second
	overStep(t, o, 3*s, testRow{0, "A", 1}, testRow{s, "A", 2}, testRow{2 * s, "A", 3}, testRow{0, "B", 4})
	if got := o.Size(); got != 4 {
		t.Fatalf("Size = %d after 4 rows, want 4", got)
	}
	// B's row at 20 s pushes its row at 0 out; A is quiet, 19 s past its
	// newest row.
	overStep(t, o, 21*s, testRow{20 * s, "B", 5}, testRow{21 * s, "B", 6})
	if _, ok := o.byKey[keyOf(t, o, "A")]; ok {
		t.Error("quiet key A is still held")
	}
	if got := o.Size(); got != 2 { // B's row at 20 s and its waiting row at 21 s
		t.Errorf("Size = %d, want 2", got)
	}
	out, _ := overStep(t, o, 26*s, testRow{25 * s, "A", 7})
	want := [][3]int64{{int64(21 * s), 5 + 6, 0}, {int64(25 * s), 7, 0}}
	if got := sums(out); !equalSums(got, want) {
		t.Errorf("results %v, want %v", got, want)
	}
}

// TestOverKeepsRowsFrames: a key with a ROWS frame keeps its last rows
// however old, since its next row's frame holds them.
func TestOverKeepsRowsFrames(t *testing.T) {
	o := newOverSum(t, aggregate.FrameSpec{Preceding: 1}, aggregate.FrameSpec{Range: true, Preceding: int64(time.Second)})
	h := time.Hour
	overStep(t, o, h, testRow{0, "A", 1}, testRow{1, "A", 2})
	overStep(t, o, 3*h, testRow{2 * h, "B", 1})
	if _, ok := o.byKey[keyOf(t, o, "A")]; !ok {
		t.Fatal("key A with a ROWS frame was forgotten")
	}
	out, _ := overStep(t, o, 5*h, testRow{4 * h, "A", 10})
	// ROWS 1 PRECEDING: 2 + 10; RANGE 1 s: 10.
	if got, want := sums(out), [][3]int64{{int64(4 * h), 12, 10}}; !equalSums(got, want) {
		t.Errorf("results %v, want %v", got, want)
	}
}

// TestOverQuietKeysRandom checks moving sums against a recomputation over a
// stream whose keys come and go, with the watermark moving in steps that
// make the operator forget keys as it goes.
func TestOverQuietKeysRandom(t *testing.T) {
	const reach = 3 * time.Second
	r := rand.New(rand.NewPCG(1, 2))
	o := newOverSum(t, aggregate.FrameSpec{Range: true, Preceding: int64(reach)},
		aggregate.FrameSpec{Range: true, Preceding: int64(reach / 3)})
	var all []testRow
	var got [][3]int64
	var now time.Duration
	peak, forgot := 0, false
	for range 300 {
		var batch []testRow
		for range 1 + r.IntN(5) {
			now += time.Duration(r.IntN(4)) * 250 * time.Millisecond
			// Keys of a phase are active for a while, then go quiet.
			sym := fmt.Sprintf("K%d", int(now/(10*time.Second))*3+r.IntN(3))
			batch = append(batch, testRow{now, sym, r.Int64N(100)})
		}
		all = append(all, batch...)
		out, errs := overStep(t, o, now, batch...)
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		got = append(got, sums(out)...)
		if len(o.byKey) < peak {
			forgot = true
		}
		peak = max(peak, len(o.byKey))
	}
	if !forgot {
		t.Error("no key was forgotten")
	}
	if len(o.byKey) > 6 {
		t.Errorf("%d keys held at the end, want at most the last phase's and the one before", len(o.byKey))
	}
	// Rows before the last watermark were written, in event-time order.
	var want [][3]int64
	for _, x := range all {
		if x.ts >= now {
			continue
		}
		row := [3]int64{int64(x.ts), 0, 0}
		for _, y := range all {
			if y.sym == x.sym && y.ts <= x.ts && x.ts-y.ts <= reach {
				row[1] += y.v
				if x.ts-y.ts <= reach/3 {
					row[2] += y.v
				}
			}
		}
		want = append(want, row)
	}
	if !equalSums(got, want) {
		t.Errorf("%d results differ from a recomputation of %d", len(got), len(want))
	}
}

// keyOf returns the byKey key of a symbol.
func keyOf(t *testing.T, o *overAgg, sym string) string {
	t.Helper()
	if err := o.keys.encode(value.Row{{}, value.StringValue(sym), {}}, 0); err != nil {
		t.Fatal(err)
	}
	return string(o.keys.buf)
}

// sums returns the event time and up to two sums of each row of an OVER
// output.
func sums(out *message.Batch) [][3]int64 {
	var s [][3]int64
	for _, row := range out.Rows {
		x := [3]int64{row[0].Nanos()}
		for i, v := range row[3:] {
			x[1+i] = v.Int()
		}
		s = append(s, x)
	}
	return s
}

// equalSums compares results as multisets per event time: rows of one event
// time come in arrival order, which the recomputation does not keep.
func equalSums(got, want [][3]int64) bool {
	sort := func(s [][3]int64) [][3]int64 {
		s = slices.Clone(s)
		slices.SortFunc(s, func(x, y [3]int64) int { return slices.Compare(x[:], y[:]) })
		return s
	}
	if len(got) != len(want) {
		return false
	}
	for i := 1; i < len(got); i++ {
		if got[i][0] < got[i-1][0] {
			return false // not in event-time order
		}
	}
	return slices.Equal(sort(got), sort(want))
}

// TestOverOverflow: a result that overflows drops its row with an error, on
// a ROWS frame and on a RANGE frame alike, and the rows of the same run
// that did not fail are written in order.
func TestOverOverflow(t *testing.T) {
	s := time.Second
	rows := []testRow{
		{0, "A", math.MaxInt64}, {0, "B", 5},
		{s, "A", 1}, {s, "B", 2}, {s, "A", 0},
	}
	for _, c := range []struct {
		name  string
		frame aggregate.FrameSpec
		want  [][2]int64 // event time and sum, in order
	}{
		// Both of A's rows at 1 s see MaxInt64 + 1.
		{"Range", aggregate.FrameSpec{Range: true, Preceding: int64(10 * s)}, [][2]int64{{0, math.MaxInt64}, {0, 5}, {int64(s), 7}}},
		// A's first row at 1 s sees MaxInt64 + 1, its second 1 + 0.
		{"Rows", aggregate.FrameSpec{Preceding: 1}, [][2]int64{{0, math.MaxInt64}, {0, 5}, {int64(s), 7}, {int64(s), 1}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := newOverSum(t, c.frame)
			out, errs := overStep(t, o, 2*s, rows...)
			var got [][2]int64
			for _, row := range out.Rows {
				if row[3].IsNull() {
					t.Errorf("row %v written with a NULL result", row)
				}
				got = append(got, [2]int64{row[0].Nanos(), row[3].Int()})
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("rows %v, want %v", got, c.want)
			}
			if want := len(rows) - len(c.want); len(errs) != want {
				t.Fatalf("errors %v, want %d", errs, want)
			}
			for _, err := range errs {
				if !errors.Is(err, value.ErrOverflow) || !strings.Contains(err.Error(), "key [A]") {
					t.Errorf("error %q, want an overflow of key A", err)
				}
			}
		})
	}
}

func newSessions(t *testing.T, gap time.Duration) *windowAgg {
	t.Helper()
	return newWindowAgg(&plan.Aggregate{
		Input:  testScan,
		Window: plan.Window{Kind: plan.Session, Time: colTS, Gap: int64(gap)},
		Keys:   []expr.Expr{colSym}, KeyNames: []string{"sym"},
		Aggs: []plan.AggCall{{Func: sumOf(t), Arg: colV}},
	})
}

// TestSessionOrder: sessions closing together come out by start, then in
// the order their keys first appeared, the same in every run.
func TestSessionOrder(t *testing.T) {
	s := time.Second
	var rows []testRow
	for i := range 40 {
		sym := fmt.Sprintf("K%02d", (i*7)%40) // keys first appear out of name order
		start := time.Duration(i%3) * s       // sessions of equal start
		rows = append(rows, testRow{start, sym, 1}, testRow{start + s, sym, 1}, testRow{start + 10*s, sym, 1})
	}
	run := func() []string {
		a := newSessions(t, 2*s)
		out := new(message.Batch)
		out.Reset(4)
		var fail failures
		if _, absorbed := a.Process(batchOf(rows...), out, fixedTime(0), &fail); absorbed != len(rows) || len(fail) > 0 {
			t.Fatalf("absorbed %d of %d, failed %v", absorbed, len(rows), fail)
		}
		var errs errorList
		a.Advance(fixedTime(time.Minute), out, errs.add)
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		var got []string
		for _, row := range out.Rows {
			got = append(got, fmt.Sprintf("%d %s", row[0].Nanos()/int64(s), row[2].Str()))
		}
		return got
	}
	first := run()
	if len(first) != 80 {
		t.Fatalf("%d sessions, want 80", len(first))
	}
	var want []string
	for _, off := range []int{0, 1, 2, 10, 11, 12} {
		for i := range 40 {
			if i%3 == off%10 {
				want = append(want, fmt.Sprintf("%d K%02d", off, (i*7)%40))
			}
		}
	}
	if !slices.Equal(first, want) {
		t.Errorf("sessions in order\n%v\nwant\n%v", first, want)
	}
	for range 5 {
		if again := run(); !slices.Equal(again, first) {
			t.Fatalf("a second run wrote\n%v\nafter\n%v", again, first)
		}
	}
}

// TestEmitChangesOverflow: with EMIT CHANGES, a group whose current sum
// overflows writes no row, and its error reaches the next Advance's fail.
func TestEmitChangesOverflow(t *testing.T) {
	a := newWindowAgg(&plan.Aggregate{
		Input:  testScan,
		Window: plan.Window{Kind: plan.Tumble, Time: colTS, Size: int64(time.Minute), Slide: int64(time.Minute)},
		Keys:   []expr.Expr{colSym}, KeyNames: []string{"sym"},
		Aggs:        []plan.AggCall{{Func: sumOf(t), Arg: colV}},
		EmitChanges: true,
	})
	out := new(message.Batch)
	out.Reset(4)
	var fail failures
	in := batchOf(testRow{0, "A", math.MaxInt64}, testRow{time.Second, "A", 1}, testRow{0, "B", 2})
	if _, absorbed := a.Process(in, out, fixedTime(0), &fail); absorbed != 3 || len(fail) > 0 {
		t.Fatalf("absorbed %d of 3, failed %v", absorbed, fail)
	}
	if out.Len() != 1 || out.Rows[0][2].Str() != "B" || out.Rows[0][3].Int() != 2 {
		t.Errorf("rows %v, want B's only", out.Rows)
	}
	var errs errorList
	if dropped := a.Advance(fixedTime(0), out, errs.add); dropped != 0 {
		t.Errorf("Advance dropped %d rows, want 0: they were aggregated", dropped)
	}
	if len(errs) != 1 || !errors.Is(errs[0], value.ErrOverflow) || !strings.Contains(errs[0].Error(), "key [A]") {
		t.Fatalf("errors %v, want one overflow of key A", errs)
	}
	errs = nil
	a.Advance(fixedTime(0), out, errs.add)
	if len(errs) != 0 {
		t.Errorf("the error came again: %v", errs)
	}
}

// compileSQL compiles query over trades and quotes, two sources of
// testScan's columns.
func compileSQL(t *testing.T, query string) *Program {
	t.Helper()
	root, err := sql.Plan(query, sql.Catalog{"trades": testScan.Cols, "quotes": testScan.Cols})
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(root)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// partitionMarks is a watermark of each partition's own, and the least of
// them for the pipeline.
type partitionMarks map[*message.Origin]int64

func (w partitionMarks) For(o *message.Origin) int64 {
	if o != nil {
		return w[o]
	}
	return slices.Min(slices.Collect(maps.Values(w)))
}

// TestSessionsCloseByPartition: session windows over three partitions,
// each at a watermark of its own, its keys' rows out of order within the
// bound: each Advance closes every session its partition's watermark
// ends and none other, Low is the earliest start held, and in the end the
// sessions written are those of the rows grouped by gaps at once, but for
// the sessions of a partition that moved away (a generation later), which
// its new owner writes: none of its keys is held after the next Advance.
func TestSessionsCloseByPartition(t *testing.T) {
	const gap = int64(time.Second)
	parts := []*message.Origin{{Source: "trades", Partition: 0}, {Source: "trades", Partition: 1}, {Source: "trades", Partition: 2}}
	type row struct {
		ts  int64
		key string
		v   int64
	}
	// sessionsOf groups each key's rows by gaps, as a batch query does.
	sessionsOf := func(rows []row) []string {
		byKey := map[string][]row{}
		for _, r := range rows {
			byKey[r.key] = append(byKey[r.key], r)
		}
		var out []string
		for key, rs := range byKey {
			slices.SortFunc(rs, func(x, y row) int { return cmp.Compare(x.ts, y.ts) })
			start, end, sum := rs[0].ts, rs[0].ts+gap, int64(0)
			for _, r := range rs {
				if r.ts >= end {
					out = append(out, fmt.Sprint(start, end, key, sum))
					start, sum = r.ts, 0
				}
				end, sum = max(end, r.ts+gap), sum+r.v
			}
			out = append(out, fmt.Sprint(start, end, key, sum))
		}
		return out
	}
	rng := rand.New(rand.NewPCG(11, 11))
	a := newSessions(t, time.Duration(gap))
	marks := partitionMarks{}
	clocks := make([]int64, len(parts))
	var kept []row  // rows whose sessions are written here
	var moved []row // partition 2's rows before it moved
	var written []string
	movedAt := int64(0) // partition 2's watermark at its last Advance before the move
	for step := range 400 {
		if step == 200 {
			movedAt = marks[parts[2]]
			parts[2].Generation.Add(1)
		}
		p := step % len(parts)
		clocks[p] += rng.Int64N(gap)
		var rows []testRow
		for range rng.IntN(30) {
			// Keys of partition p only, as keyed partitions have them;
			// rows up to 2 s out of order, none behind the watermark.
			r := row{ts: clocks[p] - rng.Int64N(2*gap), key: fmt.Sprintf("K%d", p+len(parts)*rng.IntN(30)), v: rng.Int64N(100)}
			r.ts = max(r.ts, marks[parts[p]])
			rows = append(rows, testRow{time.Duration(r.ts), r.key, r.v})
			if p == 2 && step < 200 {
				moved = append(moved, r)
			} else {
				kept = append(kept, r)
			}
		}
		b := batchOf(rows...)
		b.Origin, b.Generation = parts[p], parts[p].Generation.Load()
		marks[parts[p]] = max(marks[parts[p]], clocks[p]-2*gap)
		out := new(message.Batch)
		out.Reset(4)
		var fail failures
		if late, _ := a.Process(b, out, marks, &fail); late > 0 || len(fail) > 0 {
			t.Fatalf("step %d: %d rows late, failures %v", step, late, fail)
		}
		var errs errorList
		a.Advance(marks, out, errs.add)
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		for i, r := range out.Rows {
			if i > 0 && r[0].Nanos() < out.Rows[i-1][0].Nanos() {
				t.Errorf("step %d: a session of %v written after one of %v", step, r[0], out.Rows[i-1][0])
			}
			written = append(written, fmt.Sprint(r[0].Nanos(), r[1].Nanos(), r[2].Str(), r[3].Int()))
		}
		low, held := int64(math.MaxInt64), 0
		for _, sk := range a.sessions {
			if !sk.source.current() {
				t.Fatalf("step %d: key %v of a partition that moved away still held", step, sk.keys)
			}
			for _, s := range sk.sessions {
				if s.end <= marks[sk.source.origin] {
					t.Fatalf("step %d: key %v's session %d to %d held past its partition's watermark %d", step, sk.keys, s.start, s.end, marks[sk.source.origin])
				}
				held += len(s.rows)
			}
			if len(sk.sessions) > 0 {
				low = min(low, sk.sessions[0].start)
			}
		}
		if got := a.Low(); got != low {
			t.Fatalf("step %d: Low %d, the earliest start held %d", step, got, low)
		}
		if a.Size() != held {
			t.Fatalf("step %d: Size %d, rows held %d", step, a.Size(), held)
		}
	}
	out := new(message.Batch)
	out.Reset(4)
	var errs errorList
	a.Advance(fixedTime(math.MaxInt64), out, errs.add)
	for _, r := range out.Rows {
		written = append(written, fmt.Sprint(r[0].Nanos(), r[1].Nanos(), r[2].Str(), r[3].Int()))
	}
	want, dropped := sessionsOf(kept), 0
	for _, s := range sessionsOf(moved) {
		var end int64
		fmt.Sscan(strings.Fields(s)[1], &end)
		if end <= movedAt {
			want = append(want, s) // closed before the move
		} else {
			dropped++
		}
	}
	slices.Sort(want)
	slices.Sort(written)
	if len(want) < 150 || dropped == 0 {
		t.Fatalf("only %d sessions, %d of them dropped as moved", len(want), dropped)
	}
	if !slices.Equal(written, want) {
		t.Errorf("wrote %d sessions, want %d:\n%v\nwant\n%v", len(written), len(want), written, want)
	}
}

// TestSessionQueuesBounded: a session that stays open (a key in every
// batch) keeps the queues' earliest entries where they are; the stale
// entries of the keys that come and go behind it are dropped all the
// same, so that the queues hold about as many entries as keys.
func TestSessionQueuesBounded(t *testing.T) {
	a := newSessions(t, time.Second)
	step := 100 * time.Millisecond
	for i := range 20_000 {
		ts := time.Duration(i) * step
		b := batchOf(testRow{ts, "hot", 1}, testRow{ts, fmt.Sprintf("k%d", i), 1})
		out := new(message.Batch)
		out.Reset(4)
		var fail failures
		wm := fixedTime(int64(ts - 5*step))
		a.Process(b, out, wm, &fail)
		var errs errorList
		a.Advance(wm, out, errs.add)
		if len(fail)+len(errs) > 0 {
			t.Fatal(fail, errs)
		}
		if i > 100 && len(out.Rows) != 1 {
			t.Fatalf("batch %d: %d sessions closed; want 1", i, len(out.Rows))
		}
		if n := a.queued(); n > 4*len(a.sessions)+64+4 {
			t.Fatalf("batch %d: %d entries queued for %d keys", i, n, len(a.sessions))
		}
	}
	if a.Low() != 0 {
		t.Errorf("Low %d; want 0, the start of the session still open", a.Low())
	}
}

// TestResultsInBatches: with MaxRows, a window's close and the changes an
// emit interval held back are written a batch at a time. Each Advance
// writes at most MaxRows rows (a top-N partition's ranks go whole: up to
// the limit less one more), the rows still to write hold Low back (their
// records stay unacknowledged), and Advance called again while a batch
// fills writes, in all, what the operator without MaxRows writes at once,
// in the same order.
func TestResultsInBatches(t *testing.T) {
	const maxRows = 16
	cases := []struct {
		name, query string
		emit        time.Duration
		over        int // more than maxRows a batch may hold
		// held reports whether Low holds back the rows still to write,
		// next the first of them.
		held func(low int64, next value.Row) bool
	}{
		{"tumble", `SELECT window_start, sym, count(*) AS n, sum(v) AS s
			FROM TUMBLE(trades, ts, INTERVAL '10' SECOND) GROUP BY window_start, window_end, sym`, 0, 0,
			func(low int64, next value.Row) bool { return low <= next[0].Nanos() }},
		{"hop", `SELECT window_start, sym, count(*) AS n
			FROM HOP(trades, ts, INTERVAL '5' SECOND, INTERVAL '10' SECOND) GROUP BY window_start, window_end, sym`, 0, 0,
			func(low int64, next value.Row) bool { return low <= next[0].Nanos() }},
		// A window's changes are written after each batch, all of them:
		// its Advance closes windows but writes no changes.
		{"hop changes", `SELECT window_start, sym, count(*) AS n
			FROM HOP(trades, ts, INTERVAL '5' SECOND, INTERVAL '10' SECOND) GROUP BY window_start, window_end, sym EMIT CHANGES`, 0, math.MaxInt,
			func(low int64, next value.Row) bool { return low <= next[0].Nanos() }},
		{"continuous", `SELECT sym, count(*) AS n, sum(v) AS s FROM trades GROUP BY sym`, time.Second, 0,
			func(low int64, _ value.Row) bool { return low == math.MinInt64 }},
		{"top-N", `SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY sym ORDER BY v DESC) AS r FROM trades) B
			WHERE r <= 3`, time.Second, 2,
			func(low int64, _ value.Row) bool { return low == math.MinInt64 }},
	}
	rng := rand.New(rand.NewPCG(7, 8))
	var batches []*message.Batch
	for i := range 400 {
		var rows []testRow
		for j := range 25 {
			rows = append(rows, testRow{time.Duration(i*25+j) * 5 * time.Millisecond, fmt.Sprint("s", rng.IntN(300)), rng.Int64N(1000)})
		}
		batches = append(batches, batchOf(rows...))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := compileSQL(t, c.query)
			// run feeds the batches, the clock 100 ms on each, and
			// returns the rows written and the most one Advance wrote.
			run := func(maxRows int) (written []string, most int) {
				now := time.Unix(0, 0)
				op := p.NewStateful(StatefulOptions{EmitInterval: c.emit, Clock: func() time.Time { return now }, MaxRows: maxRows})
				out := new(message.Batch)
				out.Reset(p.StatefulWidth())
				advance := func(wm fixedTime) {
					for low, more := int64(0), false; ; more = true {
						op.Advance(wm, out, func(err error) { t.Error(err) })
						if more && out.Len() > 0 && !c.held(low, out.Rows[0]) {
							t.Fatalf("low %d after a full batch, with rows still to write (%v): their records would be acknowledged", low, out.Rows[0])
						}
						most = max(most, out.Len())
						for _, row := range out.Rows {
							written = append(written, fmt.Sprint(row))
						}
						full := maxRows > 0 && out.Len() >= maxRows
						out.Reset(p.StatefulWidth())
						if !full {
							return
						}
						low = op.Low()
					}
				}
				var fails failures
				wm := fixedTime(math.MinInt64)
				for _, b := range batches {
					now = now.Add(100 * time.Millisecond)
					op.Process(b, out, wm, &fails)
					wm = fixedTime(b.Rows[b.Len()-1][0].Nanos())
					advance(wm)
				}
				if f, ok := op.(Flusher); ok {
					f.Flush()
				}
				advance(fixedTime(math.MaxInt64))
				if len(fails) > 0 {
					t.Fatal(fails)
				}
				return written, most
			}
			whole, mostWhole := run(0)
			inBatches, most := run(maxRows)
			if mostWhole < 3*maxRows {
				t.Fatalf("at most %d rows written at once without MaxRows: too few to test it", mostWhole)
			}
			if c.over < math.MaxInt && most > maxRows+c.over {
				t.Errorf("%d rows written by one Advance; want at most %d", most, maxRows+c.over)
			}
			if !slices.Equal(inBatches, whole) {
				t.Errorf("%d rows written in batches, %d at once; not the same rows in the same order", len(inBatches), len(whole))
			}
		})
	}
}

// TestChangesListBounded: a continuous aggregation (and a top-N of rows)
// whose changes an emit interval held back, then written a batch
// (MaxRows) at a time while each batch changes as many new groups, never
// drains its list of changes to the end: the list (dirty, changed) stays
// about the size of the backlog, not growing by every change made.
func TestChangesListBounded(t *testing.T) {
	const maxRows = 16
	for _, c := range []struct{ name, query string }{
		{"continuous", `SELECT sym, count(*) AS n FROM trades GROUP BY sym`},
		{"top-N", `SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY sym ORDER BY v DESC) AS r FROM trades) B WHERE r <= 3`},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := compileSQL(t, c.query)
			now := time.Unix(0, 0)
			op := p.NewStateful(StatefulOptions{EmitInterval: time.Second, Clock: func() time.Time { return now }, MaxRows: maxRows})
			listLen := func() (int, int) {
				switch o := op.(type) {
				case *windowAgg:
					return len(o.dirty), o.pending
				case *topRows:
					return len(o.changed), len(o.changed) - o.written
				}
				t.Fatalf("%T", op)
				return 0, 0
			}
			out := new(message.Batch)
			out.Reset(p.StatefulWidth())
			var fails failures
			key := 0
			peakBacklog := 0
			for i := range 3000 {
				now = now.Add(100 * time.Millisecond)
				var rows []testRow
				for range maxRows {
					rows = append(rows, testRow{time.Duration(i) * time.Millisecond, fmt.Sprint("k", key), int64(key)})
					key++
				}
				op.Process(batchOf(rows...), out, fixedTime(math.MinInt64), &fails)
				op.Advance(fixedTime(math.MinInt64), out, func(err error) { t.Error(err) })
				out.Reset(p.StatefulWidth())
				_, backlog := listLen()
				peakBacklog = max(peakBacklog, backlog)
			}
			n, backlog := listLen()
			t.Logf("list of changes %d long, %d of them still to write (peak %d)", n, backlog, peakBacklog)
			if n > 4*peakBacklog+4*maxRows {
				t.Errorf("list of changes %d long for %d still to write: it grows by every change while a backlog lasts", n, backlog)
			}
		})
	}
}
