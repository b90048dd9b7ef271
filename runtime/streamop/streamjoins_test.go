package streamop

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/sql"
	"github.com/sluice-dev/sluice/runtime/value"
)

// TestStreamJoins: a join of three streams writes each triple of rows of
// one key within the bounds once, whatever the order the streams' rows
// come in, none late: a pair of the first two whose earlier row, by
// which the third is bound, is behind the watermark when its later one
// comes (the later up to 5 s after, the watermark 3 s behind) is still
// joined with the third stream. No row's record could be acknowledged
// (Low) before the last triple it is in is written. Restored from a
// snapshot midway, the operator writes what it writes.
func TestStreamJoins(t *testing.T) {
	// The third stream bound by the first's time, then by the second's.
	for _, by := range []string{"a", "b"} {
		t.Run("by "+by, func(t *testing.T) { streamJoins(t, by) })
	}
}

func streamJoins(t *testing.T, by string) {
	query := `SELECT a.v AS av, b.v AS bv, c.v AS cv FROM a
		JOIN b ON a.sym = b.sym AND a.ts BETWEEN b.ts - INTERVAL '5' SECOND AND b.ts
		JOIN c ON c.sym = a.sym AND c.ts BETWEEN ` + by + `.ts - INTERVAL '2' SECOND AND ` + by + `.ts + INTERVAL '2' SECOND`
	root, err := sql.Plan(query, sql.Catalog{"a": testScan.Cols, "b": testScan.Cols, "c": testScan.Cols})
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
	origins := map[string]*message.Origin{"a": {Source: "a"}, "b": {Source: "b"}, "c": {Source: "c"}}
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
		for _, src := range []string{"a", "b", "c"} {
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
	var want []string
	for _, a := range all["a"] {
		for _, b := range all["b"] {
			if a.sym != b.sym || a.ts < b.ts-int64(5*time.Second) || a.ts > b.ts {
				continue
			}
			at := a.ts
			if by == "b" {
				at = b.ts
			}
			for _, c := range all["c"] {
				if c.sym == a.sym && c.ts >= at-int64(2*time.Second) && c.ts <= at+int64(2*time.Second) {
					want = append(want, fmt.Sprint(a.v, b.v, c.v))
				}
			}
		}
	}
	slices.Sort(want)
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
			for _, src := range []string{"b", "c", "a"} {
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
				got = append(got, fmt.Sprint(r[2].Int(), r[5].Int(), r[8].Int()))
				for _, c := range []int{2, 5, 8} {
					in := byV[r[c].Int()]
					for j := in.step; j < k; j++ {
						if in.ts < lows[j] {
							t.Fatalf("row %d (%s) written at step %d, its record acknowledged at step %d: Low %d", in.v, time.Duration(in.ts), k, j, lows[j])
						}
					}
				}
			}
			lows[k] = op.Low()
		}
		return got
	}
	op := p.NewStateful(StatefulOptions{})
	first := run(op, 0, 60)
	snapOrigins := NewOrigins([]*message.Origin{origins["a"], origins["b"], origins["c"]})
	restored := p.NewStateful(StatefulOptions{})
	if err := restored.(Snapshotter).RestoreSnapshot(value.NewReader(op.(Snapshotter).AppendSnapshot(nil, snapOrigins)), snapOrigins); err != nil {
		t.Fatal(err)
	}
	rest := run(op, 60, len(steps))
	if again := run(restored, 60, len(steps)); !slices.Equal(again, rest) {
		t.Errorf("restored from a snapshot, wrote %d rows; the operator %d", len(again), len(rest))
	}
	got := append(first, rest...)
	slices.Sort(got)
	if !slices.Equal(got, want) || len(want) < 100 {
		t.Errorf("%d rows written; %d triples within the bounds", len(got), len(want))
		for i := range min(len(got), len(want)) {
			if got[i] != want[i] {
				t.Errorf("first difference: %s, want %s", got[i], want[i])
				break
			}
		}
	}
	if op.Low() != math.MaxInt64 || op.Size() != 0 {
		t.Errorf("at the end, Low %d and %d rows held; want nothing", op.Low(), op.Size())
	}
}

// TestStreamJoinsHoldAcknowledgement: a row the first join has let go,
// whose pair waits in the second for the third stream, keeps its record
// unacknowledged (Low) until the pair can meet no more rows: the pair is
// held by the second row's time, 4 s after the first's.
func TestStreamJoinsHoldAcknowledgement(t *testing.T) {
	root, err := sql.Plan(`SELECT a.v AS av, b.v AS bv, c.v AS cv FROM a
		JOIN b ON a.sym = b.sym AND a.ts BETWEEN b.ts - INTERVAL '5' SECOND AND b.ts
		JOIN c ON c.sym = a.sym AND c.ts BETWEEN b.ts - INTERVAL '2' SECOND AND b.ts + INTERVAL '2' SECOND`,
		sql.Catalog{"a": testScan.Cols, "b": testScan.Cols, "c": testScan.Cols})
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(root)
	if err != nil {
		t.Fatal(err)
	}
	op := p.NewStateful(StatefulOptions{})
	s := int64(time.Second)
	feed := func(src string, ts, wm int64) int {
		t.Helper()
		b := batchOf(testRow{time.Duration(ts), "X", 1})
		b.Origin = &message.Origin{Source: src}
		out := new(message.Batch)
		out.Reset(p.StatefulWidth())
		var fail failures
		var errs errorList
		op.Process(b, out, fixedTime(wm), &fail)
		op.Advance(fixedTime(wm), out, errs.add)
		if len(fail)+len(errs) > 0 {
			t.Fatal(fail, errs)
		}
		return out.Len()
	}
	feed("a", 0, -s)
	feed("b", 4*s, s)
	feed("b", 5*s+s/2+1, 5*s+s/2) // the watermark past a's row and its bound
	if low := op.Low(); low > 0 {
		t.Errorf("Low %s with a's row, at 0, in a pair waiting for c: its record would be acknowledged", time.Duration(low))
	}
	if n := feed("c", 5*s+8*s/10, 5*s+s/2); n != 1 {
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
