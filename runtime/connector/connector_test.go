package connector

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/connector/schemas"
	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/value"
)

var cols = []value.Column{{Name: "a", Type: value.Int}, {Name: "s", Type: value.String}}

func readAll(t *testing.T, r Reader, max int) ([]*message.Batch, []message.ErrorEvent) {
	t.Helper()
	var pool message.Pool
	var batches []*message.Batch
	var events []message.ErrorEvent
	for range 1000 {
		b := pool.Get(len(cols))
		var eb message.ErrorBatch
		err := r.Read(context.Background(), b, max, time.Millisecond, &eb)
		events = append(events, eb.Events...)
		if b.Len() > 0 {
			batches = append(batches, b)
		}
		if err == io.EOF {
			return batches, events
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Fatal("the reader never reached EOF")
	return nil, nil
}

// TestLineReader covers line endings, a last line without a newline, batch
// boundaries, and a line over the size limit followed by good lines.
func TestLineReader(t *testing.T) {
	long := `{"a":1,"s":"` + strings.Repeat("y", 200<<10) + `"}`
	input := "{\"a\":1,\"s\":\"x\"}\r\n{\"a\":2}\n" + long + "\n{\"a\":4}\n\n{\"a\":6}"
	r := NewLineReader("t", "in.jsonl", strings.NewReader(input), v1alpha1.FormatJSON, cols, 100<<10, false)
	batches, events := readAll(t, r, 2)
	var got []string
	var offsets []int64
	for _, b := range batches {
		for i, row := range b.Rows {
			got = append(got, row[0].String()+":"+row[1].String())
			offsets = append(offsets, b.Offsets[i])
		}
	}
	if want := []string{"1:x", "2:NULL", "4:NULL", "6:NULL"}; !slices.Equal(got, want) {
		t.Errorf("rows %q; want %q", got, want)
	}
	if want := []int64{1, 2, 4, 6}; !slices.Equal(offsets, want) {
		t.Errorf("offsets %v; want the line numbers %v", offsets, want)
	}
	if len(events) != 2 || events[0].Source.Offset != 3 || events[1].Source.Offset != 5 {
		t.Fatalf("error events %+v; want lines 3 (too long) and 5 (empty)", events)
	}
	if !strings.Contains(events[0].Error, "more than maxRecordBytes") || len(events[0].Payload) > message.MaxDecodePayload {
		t.Errorf("long line event: %q with %d payload bytes", events[0].Error, len(events[0].Payload))
	}
	if last := batches[len(batches)-1]; last.LastOffset != 6 {
		t.Errorf("last batch covers up to line %d; want 6", last.LastOffset)
	}
}

// TestStreamSendsPartialBatches: on a pipe, a batch goes out as soon as no
// more input is waiting, instead of waiting for it to fill.
func TestStreamSendsPartialBatches(t *testing.T) {
	pr, pw := io.Pipe()
	r := NewLineReader("t", "-", pr, v1alpha1.FormatJSON, cols, 0, true)
	go func() {
		pw.Write([]byte("{\"a\":1}\n{\"a\":2}\n"))
		time.Sleep(50 * time.Millisecond)
		pw.Write([]byte("{\"a\":3}\n"))
		pw.Close()
	}()
	var pool message.Pool
	b := pool.Get(len(cols))
	if err := r.Read(context.Background(), b, 100, time.Second, &message.ErrorBatch{}); err != nil {
		t.Fatalf("Read = %v", err)
	}
	if b.Len() != 2 {
		t.Fatalf("first batch has %d rows; want the 2 that had arrived", b.Len())
	}
	b = pool.Get(len(cols))
	if err := r.Read(context.Background(), b, 100, time.Second, &message.ErrorBatch{}); err != nil || b.Len() != 1 {
		t.Fatalf("second Read = %v with %d rows; want the third record", err, b.Len())
	}
	b = pool.Get(len(cols))
	if err := r.Read(context.Background(), b, 100, time.Second, &message.ErrorBatch{}); err != io.EOF || b.Len() != 0 {
		t.Fatalf("third Read = %v with %d rows; want EOF", err, b.Len())
	}
}

// TestCSVHeaderError: a header naming no schema column fails the source,
// since no record after it can be read.
func TestCSVHeaderError(t *testing.T) {
	r := NewLineReader("t", "in.csv", strings.NewReader("x,y\n1,2\n"), v1alpha1.FormatCSV, cols, 0, false)
	var pool message.Pool
	err := r.Read(context.Background(), pool.Get(len(cols)), 10, 0, &message.ErrorBatch{})
	if err == nil || err == io.EOF || !strings.Contains(err.Error(), "in.csv line 1: csv header") {
		t.Errorf("Read = %v; want the header error at line 1", err)
	}
}

func datagenRows(t *testing.T, spec *v1alpha1.DatagenSource, part int32, schema []value.Column) []string {
	t.Helper()
	d, err := NewDatagen("trades", spec, part, schema)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	var pool message.Pool
	for {
		b := pool.Get(len(schema))
		err := d.Read(context.Background(), b, 64, time.Millisecond, &message.ErrorBatch{})
		for _, r := range b.Rows {
			parts := make([]string, len(r))
			for i, v := range r {
				parts[i] = v.String()
			}
			out = append(out, strings.Join(parts, ","))
		}
		if err == io.EOF {
			return out
		}
	}
}

// TestDatagen: deterministic per seed, unique ids across partitions, and a
// declared schema may pick and reorder the generator's columns.
func TestDatagen(t *testing.T) {
	spec := &v1alpha1.DatagenSource{Generator: "trades", Count: 300, Partitions: 3, Seed: 5, Keys: 20}
	a, b := datagenRows(t, spec, 1, schemas.Trades), datagenRows(t, spec, 1, schemas.Trades)
	if len(a) != 300 || !slices.Equal(a, b) {
		t.Fatalf("two runs of partition 1 differ or have %d rows", len(a))
	}
	spec2 := *spec
	spec2.Seed = 6
	if slices.Equal(a, datagenRows(t, &spec2, 1, schemas.Trades)) {
		t.Error("another seed generated the same trades")
	}
	ids := map[string]bool{}
	symbols := map[string]bool{}
	for p := range int32(3) {
		for _, r := range datagenRows(t, spec, p, schemas.Trades) {
			f := strings.Split(r, ",")
			if ids[f[0]] {
				t.Fatalf("trade_id %s generated twice", f[0])
			}
			ids[f[0]] = true
			symbols[f[1]] = true
		}
	}
	if len(symbols) != 20 {
		t.Errorf("%d symbols; want 20 keys", len(symbols))
	}
	picked := []value.Column{{Name: "ts", Type: value.Timestamp}, {Name: "symbol", Type: value.String}}
	rows := datagenRows(t, spec, 0, picked)
	if !strings.HasPrefix(rows[0], "2024-01-02T09:30:00Z,") {
		t.Errorf("first row %q; want ts first", rows[0])
	}
	if _, err := NewDatagen("trades", spec, 0, []value.Column{{Name: "volume", Type: value.Int}}); err == nil {
		t.Error("a schema column the generator lacks was accepted")
	}
}

// TestDatagenRateLingers: a throttled partition sends what it has when the
// linger passes instead of holding a batch until it is full.
func TestDatagenRateLingers(t *testing.T) {
	d, err := NewDatagen("trades", &v1alpha1.DatagenSource{Generator: "trades", Rate: 1000}, 0, schemas.Trades)
	if err != nil {
		t.Fatal(err)
	}
	var pool message.Pool
	b := pool.Get(len(schemas.Trades))
	if err := d.Read(context.Background(), b, 1000, 10*time.Millisecond, &message.ErrorBatch{}); err != nil {
		t.Fatal(err)
	}
	if b.Len() == 0 || b.Len() >= 1000 {
		t.Errorf("a throttled batch has %d rows; want it sent partly full", b.Len())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b = pool.Get(len(schemas.Trades))
	if err := d.Read(ctx, b, 1_000_000, time.Hour, &message.ErrorBatch{}); err != nil || b.Len() >= 1_000_000 {
		t.Errorf("Read on a cancelled context = %v with %d rows; want it to return at once", err, b.Len())
	}
}

// TestSkipThrough: a reader told to start after an offset gives the records
// after it, with their offsets, as a reader that read from the start would:
// lines (a CSV header still read), generated trades, whose prices walk
// from the ones skipped, and Nexmark events.
func TestSkipThrough(t *testing.T) {
	csvCols := []value.Column{{Name: "a", Type: value.Int}, {Name: "s", Type: value.String}}
	input := "a,s\n1,x\n2,y\nbad\n4,z\n5,w\n"
	rows := func(skip int64) (got []string) {
		r := NewLineReader("t", "in.csv", strings.NewReader(input), v1alpha1.FormatCSV, csvCols, 1<<10, false)
		if skip >= 0 {
			r.SkipThrough(skip)
		}
		batches, events := readAll(t, r, 2)
		for _, b := range batches {
			for i, row := range b.Rows {
				got = append(got, fmt.Sprintf("%d:%s", b.Offsets[i], row[1]))
			}
		}
		for _, ev := range events {
			got = append(got, fmt.Sprintf("%d:error", ev.Source.Offset))
		}
		return got
	}
	if got, want := rows(4), []string{"5:z", "6:w"}; !slices.Equal(got, want) {
		t.Errorf("CSV lines after line 4: %q; want %q", got, want)
	}
	all := rows(-1)
	if got := rows(0); !slices.Equal(got, all) {
		t.Errorf("skipping through line 0 gave %q; want everything, %q", got, all)
	}

	for _, tc := range []struct {
		spec   *v1alpha1.DatagenSource
		part   int32
		schema []value.Column
	}{
		{&v1alpha1.DatagenSource{Generator: "trades", Count: 300, Seed: 5, Keys: 20}, 0, schemas.Trades},
		// Each Nexmark event is made from its number alone.
		{&v1alpha1.DatagenSource{Generator: "nexmark-bid", Count: 300, Partitions: 2}, 1, schemas.NexmarkBid},
	} {
		whole := datagenRows(t, tc.spec, tc.part, tc.schema)
		d, err := NewDatagen("t", tc.spec, tc.part, tc.schema)
		if err != nil {
			t.Fatal(err)
		}
		d.SkipThrough(99)
		var rest []string
		for err := error(nil); err != io.EOF; {
			b := new(message.Batch)
			b.Reset(len(tc.schema))
			err = d.Read(context.Background(), b, 64, time.Millisecond, &message.ErrorBatch{})
			if b.Len() > 0 && b.Offsets[0] != int64(100+len(rest)) {
				t.Fatalf("%s: a batch starts at offset %d; want %d", tc.spec.Generator, b.Offsets[0], 100+len(rest))
			}
			for _, row := range b.Rows {
				parts := make([]string, len(row))
				for i, v := range row {
					parts[i] = v.String()
				}
				rest = append(rest, strings.Join(parts, ","))
			}
		}
		if !slices.Equal(rest, whole[100:]) {
			t.Errorf("%s: after skipping 100 records, %d records differ from the whole run's last 200", tc.spec.Generator, len(rest))
		}
	}
}

// TestDatagenPrune: a Nexmark generator told which columns are read makes
// those as it would all, and leaves the others NULL.
func TestDatagenPrune(t *testing.T) {
	spec := &v1alpha1.DatagenSource{Generator: "nexmark-bid", Count: 500}
	cols := schemas.NexmarkBid
	read := make([]bool, len(cols))
	read[0], read[2], read[5] = true, true, true // auction, price, datetime
	whole, err := NewDatagen("bid", spec, 0, cols)
	if err != nil {
		t.Fatal(err)
	}
	pruned, err := NewDatagen("bid", spec, 0, cols)
	if err != nil {
		t.Fatal(err)
	}
	pruned.Prune(read)
	all, some := new(message.Batch), new(message.Batch)
	all.Reset(len(cols))
	some.Reset(len(cols))
	if err := whole.Read(context.Background(), all, 500, 0, nil); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	if err := pruned.Read(context.Background(), some, 500, 0, nil); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	if all.Len() != 500 || some.Len() != 500 {
		t.Fatalf("%d and %d rows; want 500 each", all.Len(), some.Len())
	}
	for i := range all.Rows {
		for c := range cols {
			want := value.NullValue()
			if read[c] {
				want = all.Rows[i][c]
			}
			if got := some.Rows[i][c]; got.String() != want.String() {
				t.Fatalf("row %d column %s: %v; want %v", i, cols[c].Name, got, want)
			}
		}
	}
}
