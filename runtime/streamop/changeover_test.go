package streamop

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/value"
)

// changeOverQuery is OVER of a GROUP BY's rows with frames of five
// widths, the widest of values (so that a change's last row reached
// shows), partitions and an order computed from the group's key, and an
// ORDER BY of many ties, which the groups' keys order.
const changeOverQuery = `SELECT sym, grp, n2, n, s,
		sum(s) OVER (PARTITION BY grp ORDER BY n2 DESC ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS s3,
		max(s) OVER (PARTITION BY grp ORDER BY n2 DESC ROWS BETWEEN 0 PRECEDING AND CURRENT ROW) AS m1,
		count(*) OVER (PARTITION BY grp ORDER BY n2 DESC ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS c2,
		count(DISTINCT n) OVER (PARTITION BY grp ORDER BY n2 DESC ROWS BETWEEN 3 PRECEDING AND CURRENT ROW) AS d4,
		sum(s) OVER (PARTITION BY grp ORDER BY n2 DESC ROWS BETWEEN 4 PRECEDING AND CURRENT ROW) AS s5
	FROM (SELECT sym, substr(sym, 1, 1) AS grp, length(sym) AS n2, count(*) AS n, sum(v) AS s FROM trades GROUP BY sym) g`

// changeOverModel computes changeOverQuery's rows as a batch query would,
// from each symbol's count and sum: the row of each symbol, by symbol.
func changeOverModel(counts, sums map[string]int64) map[string]string {
	parts := map[string][]string{}
	for sym := range counts {
		parts[sym[:1]] = append(parts[sym[:1]], sym)
	}
	want := map[string]string{}
	for grp, syms := range parts {
		slices.SortFunc(syms, func(a, b string) int { return cmp.Or(cmp.Compare(len(b), len(a)), cmp.Compare(a, b)) })
		for i, sym := range syms {
			var s3, s5 int64
			for j := max(i-2, 0); j <= i; j++ {
				s3 += sums[syms[j]]
			}
			for j := max(i-4, 0); j <= i; j++ {
				s5 += sums[syms[j]]
			}
			distinct := map[int64]bool{}
			for j := max(i-3, 0); j <= i; j++ {
				distinct[counts[syms[j]]] = true
			}
			c2 := i - max(i-1, 0) + 1
			want[sym] = fmt.Sprint([]any{sym, grp, len(sym), counts[sym], sums[sym], s3, sums[sym], c2, len(distinct), s5})
		}
	}
	return want
}

// TestChangeOver: after every batch of changes to random groups, the
// latest row written of each group is the batch query's over the
// groups' latest rows: a changed row and the rows after it whose frames
// hold it are written again, new groups' rows shift those after them,
// ties of ORDER BY are in the order of the groups' keys, and no row is
// written twice for one batch. An operator
// restored from a snapshot midway writes what the first writes.
func TestChangeOver(t *testing.T) {
	p := compileSQL(t, changeOverQuery)
	if !p.OverChanges() || !p.Continuous() || !p.Aggregates() || p.HoldsRows() {
		t.Fatalf("OverChanges %v, Continuous %v, Aggregates %v, HoldsRows %v; want true, true, true, false", p.OverChanges(), p.Continuous(), p.Aggregates(), p.HoldsRows())
	}
	syms := []string{"A", "AB", "ABC", "AC", "AD", "AE", "AAF", "AG", "AAAH", "AI", "B", "BB", "BC", "BBD", "C"}
	rng := rand.New(rand.NewPCG(1, 2))
	op := p.NewStateful(StatefulOptions{})
	var restored Stateful
	origins := NewOrigins(nil)
	counts, sums := map[string]int64{}, map[string]int64{}
	latest := map[string]string{}
	step := func(op Stateful, rows []testRow) (written []string) {
		t.Helper()
		out := new(message.Batch)
		out.Reset(p.StatefulWidth())
		var fail failures
		var errs errorList
		op.Process(batchOf(rows...), out, fixedTime(math.MinInt64), &fail)
		op.Advance(fixedTime(math.MinInt64), out, errs.add)
		if len(fail) > 0 || len(errs) > 0 {
			t.Fatalf("failures %v %v", fail, errs)
		}
		seen := map[string]bool{}
		for _, row := range out.Rows {
			if sym := row[0].Str(); seen[sym] {
				t.Fatalf("%s's row written twice after one batch", sym)
			} else {
				seen[sym] = true
			}
			written = append(written, fmt.Sprint(row))
			latest[row[0].Str()] = written[len(written)-1]
		}
		return written
	}
	for i := range 200 {
		var rows []testRow
		for range 1 + rng.IntN(4) {
			r := testRow{time.Second, syms[rng.IntN(len(syms))], rng.Int64N(21) - 10}
			counts[r.sym]++
			sums[r.sym] += r.v
			rows = append(rows, r)
		}
		written := step(op, rows)
		if want := changeOverModel(counts, sums); !maps.Equal(latest, want) {
			t.Fatalf("after batch %d, the latest rows written are\n%v\nwant\n%v", i, latest, want)
		}
		if restored != nil {
			if got := step(restored, rows); !slices.Equal(got, written) {
				t.Fatalf("batch %d: restored from a snapshot, the operator wrote\n%v\nwant\n%v", i, got, written)
			}
		}
		if i == 100 {
			snap := op.(Snapshotter).AppendSnapshot(nil, origins)
			restored = p.NewStateful(StatefulOptions{})
			if err := restored.(Snapshotter).RestoreSnapshot(value.NewReader(snap), origins); err != nil {
				t.Fatal(err)
			}
			if again := restored.(Snapshotter).AppendSnapshot(nil, origins); string(again) != string(snap) {
				t.Errorf("a restored snapshot taken again differs")
			}
		}
	}
	if op.Size() != 2*len(counts) {
		t.Errorf("Size %d; want %d, the inner groups and their rows", op.Size(), 2*len(counts))
	}
}

// TestChangeOverEmitInterval: with an emit interval, changes are held
// (and their records not acknowledged: Low is the time before any) until
// it is up or a flush asks; then each row whose frame changed is written
// once, as it then is.
func TestChangeOverEmitInterval(t *testing.T) {
	p := compileSQL(t, changeOverQuery)
	now := time.Unix(0, 0)
	op := p.NewStateful(StatefulOptions{EmitInterval: time.Second, Clock: func() time.Time { return now }})
	out := new(message.Batch)
	out.Reset(p.StatefulWidth())
	var fail failures
	var errs errorList
	for _, v := range []int64{1, 2, 3} {
		op.Process(batchOf(testRow{time.Second, "AB", v}, testRow{time.Second, "A", v}), out, fixedTime(math.MinInt64), &fail)
		op.Advance(fixedTime(math.MinInt64), out, errs.add)
	}
	if out.Len() != 0 || op.Low() != math.MinInt64 {
		t.Fatalf("%d rows written, Low %d, within the interval; want none, and the time before any", out.Len(), op.Low())
	}
	// Restored from a snapshot taken while they are held, the rows are
	// still to be written.
	origins := NewOrigins(nil)
	restored := p.NewStateful(StatefulOptions{EmitInterval: time.Second, Clock: func() time.Time { return now }})
	if err := restored.(Snapshotter).RestoreSnapshot(value.NewReader(op.(Snapshotter).AppendSnapshot(nil, origins)), origins); err != nil {
		t.Fatal(err)
	}
	if restored.Low() != math.MinInt64 {
		t.Errorf("restored, Low %d; want the time before any, rows held", restored.Low())
	}
	var got, gotRestored []string
	for _, o := range []struct {
		op  Stateful
		got *[]string
	}{{op, &got}, {restored, &gotRestored}} {
		if !o.op.(Flusher).Flush() {
			t.Fatal("Flush reports nothing held")
		}
		out.Reset(p.StatefulWidth())
		o.op.Advance(fixedTime(math.MinInt64), out, errs.add)
		for _, row := range out.Rows {
			*o.got = append(*o.got, fmt.Sprint(row))
		}
	}
	if !slices.Equal(gotRestored, got) {
		t.Errorf("restored, written %v; want %v", gotRestored, got)
	}
	want := changeOverModel(map[string]int64{"A": 3, "AB": 3}, map[string]int64{"A": 6, "AB": 6})
	if len(got) != 2 || got[0] != want["AB"] || got[1] != want["A"] || op.Low() != math.MaxInt64 {
		t.Errorf("written %v, Low %d; want %v and %v once each, and nothing pending", got, op.Low(), want["AB"], want["A"])
	}
	now = now.Add(time.Second)
	out.Reset(p.StatefulWidth())
	op.Process(batchOf(testRow{time.Second, "A", 1}), out, fixedTime(math.MinInt64), &fail)
	if out.Len() != 1 {
		t.Errorf("%d rows written once the interval is up; want 1", out.Len())
	}
	if len(fail) > 0 || len(errs) > 0 {
		t.Fatalf("failures %v %v", fail, errs)
	}
}

// TestChangeOverKeepsEarlierRow: a group's row that cannot be made (its
// select list fails) changes nothing and is an error: the group keeps its
// earlier row, in its frames and in what is written.
func TestChangeOverKeepsEarlierRow(t *testing.T) {
	p := compileSQL(t, `SELECT sym, avg(d) OVER (ORDER BY sym ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS a
		FROM (SELECT sym, 10 / sum(v) AS d FROM trades GROUP BY sym) g`)
	op := p.NewStateful(StatefulOptions{})
	var written []string
	step := func(sym string, v int64) (failed int) {
		t.Helper()
		out := new(message.Batch)
		out.Reset(p.StatefulWidth())
		var fail failures
		var errs errorList
		op.Process(batchOf(testRow{time.Second, sym, v}), out, fixedTime(math.MinInt64), &fail)
		op.Advance(fixedTime(math.MinInt64), out, errs.add)
		for _, row := range out.Rows {
			written = append(written, fmt.Sprint(row))
		}
		return len(fail) + len(errs)
	}
	step("A", 2)
	if failed := step("A", -2); failed != 1 { // 10 / 0
		t.Errorf("%d failures of a row whose select list fails; want 1", failed)
	}
	step("B", 4)
	if want := []string{"[A 5 5]", "[B 2 3.5]"}; !slices.Equal(written, want) {
		t.Errorf("rows written %v; want %v", written, want)
	}
}
