package streamop

import (
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/sql"
	"github.com/sluice-dev/sluice/runtime/value"
)

// bound is a stream's time bound in a join of streams: its time within
// [lo, hi] of the time of the stream ref, an earlier one; joined with
// LEFT JOIN if outer, and then only its rows of a v not divisible by 3
// (the rest of ON).
type bound struct {
	ref    int
	lo, hi time.Duration
	outer  bool
	key    int // 1 + the stream whose sym its key is equal to; 0: ref's
	// right joins it with RIGHT JOIN (with outer, FULL JOIN): the last
	// stream's only.
	right bool
}

// TestStreamJoins: a join of three or four streams writes each tuple of
// rows of one key within the bounds once, whatever the order the streams'
// rows come in, none late: rows joined so far whose earlier row, by which
// a further stream is bound, is behind the watermark when they are made
// (the second stream's row up to 5 s after the first's, the watermark 3 s
// behind) are still joined with it. No row's record could be acknowledged
// (Low) before the last tuple it is in is written. Restored from a
// snapshot midway, the operator writes what it writes.
func TestStreamJoins(t *testing.T) {
	for name, bounds := range map[string][]bound{
		// The second stream's bound is on the first's time, b.ts ∈ [a.ts, a.ts + 5 s].
		"third by a": {{0, 0, 5 * time.Second, false, 0, false}, {0, -2 * time.Second, 2 * time.Second, false, 0, false}},
		"third by b": {{0, 0, 5 * time.Second, false, 0, false}, {1, -2 * time.Second, 2 * time.Second, false, 0, false}},
		// The third far after the first, further than the second may be.
		"fourth by the third": {{0, 0, 5 * time.Second, false, 0, false}, {0, 6 * time.Second, 8 * time.Second, false, 0, false}, {2, -time.Second, time.Second, false, 0, false}},
		// The rows of the first two that pair with no third's, with NULLs.
		"third by b, RIGHT JOIN":  {{0, 0, 5 * time.Second, false, 0, false}, {1, -time.Second, time.Second, false, 0, true}},
		"third by b, FULL JOIN":   {{0, 0, 5 * time.Second, false, 0, false}, {1, -time.Second, time.Second, true, 0, true}},
		"third by b, LEFT JOIN":   {{0, 0, 5 * time.Second, false, 0, false}, {1, -time.Second, time.Second, true, 0, false}},
		"LEFT then JOIN by c.sym": {{0, 0, 5 * time.Second, false, 0, false}, {1, -time.Second, time.Second, true, 0, false}, {0, 0, 3 * time.Second, false, 3, false}},
		"LEFT then LEFT by c.sym": {{0, 0, 5 * time.Second, false, 0, false}, {1, -time.Second, time.Second, true, 0, false}, {0, 0, 3 * time.Second, true, 3, false}},
		"fourth, LEFT JOIN":       {{0, 0, 5 * time.Second, false, 0, false}, {1, -2 * time.Second, 2 * time.Second, false, 0, false}, {0, 0, time.Second, true, 0, false}},
		// The first two by an outer join: the third bound by a time it
		// leaves whole.
		"LEFT first, third by a":       {{0, 0, time.Second / 2, true, 0, false}, {0, -2 * time.Second, 2 * time.Second, false, 0, false}},
		"LEFT first, LEFT third by a":  {{0, 0, time.Second / 2, true, 0, false}, {0, -2 * time.Second, 2 * time.Second, true, 0, false}},
		"RIGHT first, third by b":      {{0, 0, time.Second / 2, false, 0, true}, {1, -time.Second, time.Second, false, 0, false}},
		"RIGHT first, RIGHT third":     {{0, 0, time.Second / 2, false, 0, true}, {1, -time.Second, time.Second, false, 0, true}},
		"LEFT first, third keyed by b": {{0, 0, time.Second / 2, true, 0, false}, {0, -2 * time.Second, 2 * time.Second, true, 2, false}},
	} {
		t.Run(name, func(t *testing.T) { streamJoins(t, bounds, false) })
	}
	// Then a table, looked up by the first stream's key: a row of a key
	// it lacks is dropped.
	for name, bounds := range map[string][]bound{
		"third by b, a table":        {{0, 0, 5 * time.Second, false, 0, false}, {1, -2 * time.Second, 2 * time.Second, false, 0, false}},
		"fourth, LEFT JOIN, a table": {{0, 0, 5 * time.Second, false, 0, false}, {1, -2 * time.Second, 2 * time.Second, false, 0, false}, {0, 0, time.Second, true, 0, false}},
	} {
		t.Run(name, func(t *testing.T) { streamJoins(t, bounds, true) })
	}
}

// tableOfKeys is the table of streamJoins' queries with a table: the v
// of each key it has.
var tableOfKeys = map[string]int64{"S0": 100, "S1": 101}

// streamJoins checks the join of streams a, b and more, each bound to an
// earlier one by bounds, and then, if table, looked up in the table t by
// a's key (tableOfKeys), against the tuples found by brute force.
func streamJoins(t *testing.T, bounds []bound, table bool) {
	names := []string{"a", "b", "c", "d"}[:len(bounds)+1]
	query := "SELECT "
	for i, n := range names {
		if i > 0 {
			query += ", "
		}
		query += n + ".v AS " + n + "v"
	}
	query += " FROM a"
	catalog := sql.Catalog{"a": testScan.Cols}
	term := func(ref string, d time.Duration) string {
		switch {
		case d > 0:
			return fmt.Sprintf("%s.ts + INTERVAL '%d milliseconds'", ref, d.Milliseconds())
		case d < 0:
			return fmt.Sprintf("%s.ts - INTERVAL '%d milliseconds'", ref, -d.Milliseconds())
		}
		return ref + ".ts"
	}
	for i, b := range bounds {
		n, ref := names[i+1], names[b.ref]
		catalog[n] = testScan.Cols
		join := "JOIN"
		switch {
		case b.outer && b.right:
			join = "FULL JOIN"
		case b.outer:
			join = "LEFT JOIN"
		case b.right:
			join = "RIGHT JOIN"
		}
		res := ""
		if b.outer {
			res = fmt.Sprintf(" AND %s.v %% 3 <> 0", n)
		}
		kref := ref
		if b.key > 0 {
			kref = names[b.key-1]
		}
		query += fmt.Sprintf(" %s %s ON %s.sym = %s.sym AND %s.ts BETWEEN %s AND %s", join, n, n, kref, n, term(ref, b.lo), term(ref, b.hi)) + res
	}
	var tables sql.Tables
	tableRows := new(message.Batch)
	tableRows.Reset(len(testScan.Cols))
	tableRows.Origin = &message.Origin{Source: "t"}
	if table {
		query = strings.Replace(query, " FROM a", ", t.v AS tv FROM a", 1) + " JOIN t ON t.sym = a.sym"
		catalog["t"], tables = testScan.Cols, sql.Tables{"t": {Key: []string{"sym"}}}
		for _, k := range slices.Sorted(maps.Keys(tableOfKeys)) {
			vals := tableRows.Append(int64(tableRows.Len()))
			vals[0], vals[1], vals[2] = value.TimestampValue(0), value.StringValue(k), value.IntValue(tableOfKeys[k])
		}
	}
	root, err := sql.PlanTables(query, catalog, tables)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(root)
	if err != nil {
		t.Fatal(err)
	}
	if !p.MoreStreams() {
		t.Fatal("MoreStreams is false")
	}
	origins := map[string]*message.Origin{}
	var list []*message.Origin
	for _, n := range names {
		origins[n] = &message.Origin{Source: n}
		list = append(list, origins[n])
	}
	rng := rand.New(rand.NewPCG(11, 12))
	type row struct {
		ts   int64
		sym  string
		v    int64
		step int
	}
	all := map[string][]row{}
	var steps []map[string]*message.Batch
	n := int64(0)
	for k := range 120 {
		now := int64(k) * int64(time.Second) / 4
		step := map[string]*message.Batch{}
		for _, src := range names {
			b := new(message.Batch)
			b.Reset(len(testScan.Cols))
			b.Origin = origins[src]
			for range rng.IntN(4) {
				// Up to 2 s out of order, the watermark 3 s behind.
				r := row{now - rng.Int64N(int64(2*time.Second)), fmt.Sprintf("S%d", rng.IntN(3)), n, k}
				n++
				all[src] = append(all[src], r)
				vals := b.Append(r.v)
				vals[0], vals[1], vals[2] = value.TimestampValue(r.ts), value.StringValue(r.sym), value.IntValue(r.v)
			}
			step[src] = b
		}
		steps = append(steps, step)
	}
	// The tuples within the bounds, each as its rows' v, -1 for the NULLs
	// of a LEFT JOIN's stream that none of its rows matched.
	var want []string
	var extend func(tuple []row)
	extend = func(tuple []row) {
		if len(tuple) == len(names) {
			vs := make([]int64, len(tuple))
			for i, r := range tuple {
				vs[i] = r.v
			}
			if tv, ok := tableOfKeys[tuple[0].sym]; ok && table {
				vs = append(vs, tv)
			} else if table {
				return // the table has no row of its key
			}
			want = append(want, fmt.Sprint(vs))
			return
		}
		b := bounds[len(tuple)-1]
		ref := tuple[b.ref]
		kr := ref
		if b.key > 0 {
			kr = tuple[b.key-1]
		}
		matched := false
		for _, r := range all[names[len(tuple)]] {
			if kr.v != -1 && (!b.outer || r.v%3 != 0) && r.sym == kr.sym && r.ts >= ref.ts+int64(b.lo) && r.ts <= ref.ts+int64(b.hi) {
				matched = true
				extend(append(slices.Clone(tuple), r))
			}
		}
		if !matched && b.outer {
			extend(append(slices.Clone(tuple), row{v: -1, step: math.MaxInt}))
		}
	}
	for _, a := range all["a"] {
		extend([]row{a})
	}
	if first := bounds[0]; first.right {
		// b's rows that pair with no row of a, with NULLs of a.
		for _, r := range all["b"] {
			paired := slices.ContainsFunc(all["a"], func(a row) bool {
				return (!first.outer || r.v%3 != 0) && r.sym == a.sym && r.ts >= a.ts+int64(first.lo) && r.ts <= a.ts+int64(first.hi)
			})
			if !paired {
				extend([]row{{v: -1, step: math.MaxInt}, r})
			}
		}
	}
	if last := bounds[len(bounds)-1]; last.right {
		// The last stream's rows that are in no tuple, with NULLs before.
		in := map[string]bool{}
		for _, w := range want {
			f := strings.Fields(strings.Trim(w, "[]"))
			in[f[len(f)-1]] = true
		}
		for _, r := range all[names[len(names)-1]] {
			if !in[fmt.Sprint(r.v)] {
				vs := make([]int64, len(names))
				for i := range vs {
					vs[i] = -1
				}
				vs[len(vs)-1] = r.v
				want = append(want, fmt.Sprint(vs))
			}
		}
	}
	slices.Sort(want)
	if bounds[len(bounds)-1].right && !slices.ContainsFunc(want, func(w string) bool { return strings.HasPrefix(w, "[-1") }) {
		t.Fatal("no row of a RIGHT JOIN's stream that matched nothing: the case tests nothing of it")
	}
	if first := bounds[0]; first.outer && !slices.ContainsFunc(want, func(w string) bool { return strings.Fields(w)[1] == "-1" }) ||
		first.right && !slices.ContainsFunc(want, func(w string) bool { return strings.HasPrefix(w, "[-1") && strings.Fields(w)[1] != "-1" }) {
		t.Fatal("no row of the first two's outer join that matched nothing: the case tests nothing of it")
	}
	// A LEFT JOIN's NULL rows stay unless an inner JOIN after it drops them.
	if bounds[len(bounds)-1].outer && !slices.ContainsFunc(want, func(w string) bool { return strings.Contains(w, "-1") }) {
		t.Fatal("no row of a LEFT JOIN that matched nothing: the case tests nothing of it")
	}
	byV := map[int64]row{}
	for _, rows := range all {
		for _, r := range rows {
			byV[r.v] = r
		}
	}
	lows := make([]int64, len(steps)) // Low after each step
	run := func(op Stateful, from, to int) (got []string) {
		for k := from; k < to; k++ {
			out := new(message.Batch)
			out.Reset(p.StatefulWidth())
			wm := fixedTime(int64(k)*int64(time.Second)/4 - int64(3*time.Second))
			var fail failures
			var errs errorList
			for _, src := range slices.Backward(names) {
				if late, _ := op.Process(steps[k][src], out, wm, &fail); late > 0 {
					t.Fatalf("step %d: %d rows of %s late", k, late, src)
				}
			}
			if k == len(steps)-1 {
				wm = fixedTime(math.MaxInt64) // the end of the input
			}
			op.Advance(wm, out, errs.add)
			if len(fail)+len(errs) > 0 {
				t.Fatalf("step %d: failures %v %v", k, fail, errs)
			}
			for _, r := range out.Rows {
				vs := make([]int64, len(names))
				if table {
					vs = append(vs, r[len(r)-1].Int())
				}
				for i := range names {
					if r[3*i+2].IsNull() {
						vs[i] = -1
						continue
					}
					vs[i] = r[3*i+2].Int()
					in := byV[vs[i]]
					for j := in.step; j < k; j++ {
						if in.ts < lows[j] {
							t.Fatalf("row %d (%s) written at step %d, its record acknowledged at step %d: Low %d", in.v, time.Duration(in.ts), k, j, lows[j])
						}
					}
				}
				got = append(got, fmt.Sprint(vs))
			}
			lows[k] = op.Low()
		}
		return got
	}
	// The table, read whole before the streams' rows are joined.
	load := func(op Stateful) {
		if !table {
			return
		}
		l := op.(interface {
			Begin([]*message.Origin)
			Loaded(*message.Origin)
		})
		l.Begin(append(list, tableRows.Origin))
		l.Loaded(tableRows.Origin)
	}
	op := p.NewStateful(StatefulOptions{})
	if table {
		var fail failures
		op.Process(tableRows, new(message.Batch), fixedTime(math.MinInt64), &fail)
		load(op)
	}
	first := run(op, 0, 60)
	snapOrigins := NewOrigins(append(list, tableRows.Origin))
	restored := p.NewStateful(StatefulOptions{})
	if err := restored.(Snapshotter).RestoreSnapshot(value.NewReader(op.(Snapshotter).AppendSnapshot(nil, snapOrigins)), snapOrigins); err != nil {
		t.Fatal(err)
	}
	load(restored)
	rest := run(op, 60, len(steps))
	if again := run(restored, 60, len(steps)); !slices.Equal(again, rest) {
		t.Errorf("restored from a snapshot, wrote %d rows; the operator %d", len(again), len(rest))
	}
	got := append(first, rest...)
	slices.Sort(got)
	if !slices.Equal(got, want) || len(want) < 100 {
		t.Errorf("%d rows written; %d tuples within the bounds", len(got), len(want))
		for i := range min(len(got), len(want)) {
			if got[i] != want[i] {
				t.Errorf("first difference: %s, want %s", got[i], want[i])
				break
			}
		}
	}
	if op.Low() != math.MaxInt64 || op.Size() != tableRows.Len() {
		t.Errorf("at the end, Low %d and %d rows held; want nothing but the table's %d", op.Low(), op.Size(), tableRows.Len())
	}
	// A partition the state was built from moves away: the engine stops,
	// tables after the streams or not.
	m := op.(interface{ Moved() error })
	if err := m.Moved(); err != nil {
		t.Fatalf("Moved() = %v before any partition moved", err)
	}
	origins["a"].Generation.Add(1)
	if err := m.Moved(); err == nil || !strings.Contains(err.Error(), "a join of more than two streams") {
		t.Errorf("Moved() = %v after a partition moved; want the engine to stop", err)
	}
}

// TestStreamJoinsHoldAcknowledgement: a row the first join has let go,
// whose pair waits in the second for the third stream, keeps its record
// unacknowledged (Low) until the pair can meet no more rows: the pair is
// held by the second row's time, 4 s after the first's.
func TestStreamJoinsHoldAcknowledgement(t *testing.T) {
	op, feed := streamJoinsOp(t, `SELECT a.v AS av, b.v AS bv, c.v AS cv FROM a
		JOIN b ON a.sym = b.sym AND a.ts BETWEEN b.ts - INTERVAL '5' SECOND AND b.ts
		JOIN c ON c.sym = a.sym AND c.ts BETWEEN b.ts - INTERVAL '2' SECOND AND b.ts + INTERVAL '2' SECOND`, "a", "b", "c")
	s := int64(time.Second)
	feed("a", 0, -s)
	feed("b", 4*s, s)
	feed("b", 5*s+s/2+1, 5*s+s/2) // the watermark past a's row and its bound
	if low := op.Low(); low > 0 {
		t.Errorf("Low %s with a's row, at 0, in a pair waiting for c: its record would be acknowledged", time.Duration(low))
	}
	if _, n := feed("c", 5*s+8*s/10, 5*s+s/2); n != 1 {
		t.Errorf("%d rows of c's row; want the triple", n)
	}
}

// TestRowChunks: a row copied into chunks holds its own strings, an
// empty one included (not a pointer into the input, which it would keep
// alive), and appending to it does not write over the next.
func TestRowChunks(t *testing.T) {
	var c rowChunks
	input := []byte("hello, world")
	str := unsafe.String(&input[0], len(input))
	a := c.own(value.Row{value.StringValue(str[:5]), value.StringValue(str[5:5]), value.IntValue(1)})
	b := c.own(value.Row{value.StringValue(str[7:]), value.IntValue(2)})
	copy(input, "XXXXXXXXXXXX")
	if a[0].Str() != "hello" || b[0].Str() != "world" {
		t.Errorf("held %q and %q after the input changed; want hello and world", a[0].Str(), b[0].Str())
	}
	if p := unsafe.StringData(a[1].Str()); p != nil && uintptr(unsafe.Pointer(p)) >= uintptr(unsafe.Pointer(&input[0])) && uintptr(unsafe.Pointer(p)) < uintptr(unsafe.Pointer(&input[0]))+uintptr(len(input)) {
		t.Error("the empty string points into the input")
	}
	_ = append(a, value.IntValue(9))
	if b[0].Str() != "world" {
		t.Errorf("appending to a row wrote over the next: %v", b)
	}
}

// TestStreamJoinsLateFurther: a further stream's row behind the
// pipeline's watermark is late, as any stream's (and as the late-record
// policy, which judges records before the operator, says), though the
// first join still holds an earlier row it would pair with.
func TestStreamJoinsLateFurther(t *testing.T) {
	_, feed := streamJoinsOp(t, `SELECT a.v AS av, b.v AS bv, c.v AS cv FROM a
		JOIN b ON a.sym = b.sym AND a.ts BETWEEN b.ts - INTERVAL '5' SECOND AND b.ts
		JOIN c ON c.sym = a.sym AND c.ts BETWEEN a.ts AND a.ts + INTERVAL '10' SECOND`, "a", "b", "c")
	s := int64(time.Second)
	feed("a", 0, -10*s)
	feed("b", 4*s, -10*s)
	if late, n := feed("c", 2*s, 3*s); late != 1 || n != 0 {
		t.Errorf("c's row at 2 s, the watermark at 3 s: %d late, %d rows; want it late, none", late, n)
	}
	if late, n := feed("c", 3*s, 3*s); late != 0 || n != 1 {
		t.Errorf("c's row at 3 s, the watermark at 3 s: %d late, %d rows; want the triple", late, n)
	}
}

// TestStreamJoinsHoldAcknowledgementFour: of four streams, the rows of
// the first three waiting for the fourth keep the first's record
// unacknowledged though the third is 7.9 s after it, further than the
// first two's bound: each further stream's bound adds to how far apart a
// row's times may be.
func TestStreamJoinsHoldAcknowledgementFour(t *testing.T) {
	op, feed := streamJoinsOp(t, `SELECT a.v AS av, d.v AS dv FROM a
		JOIN b ON a.sym = b.sym AND a.ts BETWEEN b.ts - INTERVAL '5' SECOND AND b.ts
		JOIN c ON c.sym = a.sym AND c.ts BETWEEN a.ts + INTERVAL '6' SECOND AND a.ts + INTERVAL '8' SECOND
		JOIN d ON d.sym = c.sym AND d.ts BETWEEN c.ts - INTERVAL '1' SECOND AND c.ts + INTERVAL '1' SECOND`, "a", "b", "c", "d")
	ms := int64(time.Millisecond)
	feed("a", 0, -ms)
	feed("b", 0, -ms)
	feed("c", 7900*ms, -ms)
	feed("b", 8500*ms, 8500*ms) // the first two joins let their rows go
	if low := op.Low(); low > 0 {
		t.Errorf("Low %s with a's row, at 0, in the rows waiting for d: its record would be acknowledged", time.Duration(low))
	}
	if _, n := feed("d", 8600*ms, 8500*ms); n != 1 {
		t.Errorf("%d rows of d's row; want the four joined", n)
	}
}

// streamJoinsOp returns the operator of query, a join of streams named
// names of testScan's columns, and a function that feeds it one row of
// src at time ts under watermark wm and returns the rows late and the
// rows written.
func streamJoinsOp(t *testing.T, query string, names ...string) (Stateful, func(src string, ts, wm int64) (late, written int)) {
	t.Helper()
	catalog := sql.Catalog{}
	for _, n := range names {
		catalog[n] = testScan.Cols
	}
	root, err := sql.Plan(query, catalog)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(root)
	if err != nil {
		t.Fatal(err)
	}
	op := p.NewStateful(StatefulOptions{})
	return op, func(src string, ts, wm int64) (late, written int) {
		t.Helper()
		b := batchOf(testRow{time.Duration(ts), "X", 1})
		b.Origin = &message.Origin{Source: src}
		out := new(message.Batch)
		out.Reset(p.StatefulWidth())
		var fail failures
		var errs errorList
		late, _ = op.Process(b, out, fixedTime(wm), &fail)
		op.Advance(fixedTime(wm), out, errs.add)
		if len(fail)+len(errs) > 0 {
			t.Fatal(fail, errs)
		}
		return late, out.Len()
	}
}
