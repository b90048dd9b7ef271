package pipeline

import (
	"context"
	"fmt"
	"io"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/connector"
	"github.com/sluice-dev/sluice/runtime/connector/schemas"
	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/value"
)

// TestWatermarks: the pipeline watermark is the least over partitions that
// are neither finished nor idle, less the allowed out-of-orderness; it
// never goes back, waits for partitions that sent nothing until they are
// idle, and is the end of time once every partition finished.
func TestWatermarks(t *testing.T) {
	a, b := &message.Origin{Source: "s", Partition: 0}, &message.Origin{Source: "s", Partition: 1}
	t0 := time.Unix(1000, 0)
	w := newWatermarks([]connector.Reader{originReader{a}, originReader{b}}, map[string]sourceTiming{"s": {bound: 5, idle: 10 * time.Second}}, t0)
	w.arrive(a, 100, 0, t0)
	w.progress(a, 100)
	if got := w.advance(t0); got != math.MinInt64 {
		t.Fatalf("watermark %d while partition 1 has sent nothing and is not idle; want none", got)
	}
	w.arrive(b, 50, 0, t0.Add(time.Second))
	w.progress(b, 50)
	if got := w.advance(t0.Add(time.Second)); got != 45 {
		t.Fatalf("watermark %d; want 45, partition 1's 50 less the bound of 5", got)
	}
	w.arrive(a, 200, 0, t0.Add(5*time.Second))
	w.progress(a, 200)
	if got := w.advance(t0.Add(12 * time.Second)); got != 195 {
		t.Fatalf("watermark %d once partition 1 is idle; want 195, partition 0's alone", got)
	}
	w.arrive(b, 60, 0, t0.Add(13*time.Second))
	w.progress(b, 60) // back from idle, behind
	if got := w.advance(t0.Add(13 * time.Second)); got != 195 {
		t.Fatalf("watermark %d after an idle partition came back behind it; want it not to go back from 195", got)
	}
	w.ended(a)
	w.ended(b)
	if got := w.advance(t0.Add(14 * time.Second)); got != math.MaxInt64 {
		t.Fatalf("watermark %d once every partition ended; want the end of time", got)
	}
}

// TestWatermarksTimeless: the partitions of a source whose rows have no
// event time in the query (a table joined as read, updated all the while)
// never hold the watermark back, but keep the input open.
func TestWatermarksTimeless(t *testing.T) {
	trades, table := &message.Origin{Source: "trades"}, &message.Origin{Source: "symbols"}
	t0 := time.Unix(1000, 0)
	w := newWatermarks([]connector.Reader{originReader{trades}, originReader{table}}, map[string]sourceTiming{"trades": {idle: time.Minute}}, t0)
	w.timeless["symbols"] = true
	for i := range 5 {
		now := t0.Add(time.Duration(i) * time.Second)
		w.arrive(table, math.MinInt64, 0, now)
		w.progress(table, math.MinInt64)
		w.arrive(trades, int64(100*(i+1)), 0, now)
		w.progress(trades, int64(100*(i+1)))
		if got := w.advance(now); got != int64(100*(i+1)) {
			t.Fatalf("watermark %d while the table is read; want the trades' %d", got, 100*(i+1))
		}
	}
	w.ended(trades)
	if got := w.advance(t0.Add(6 * time.Second)); got != 500 {
		t.Fatalf("watermark %d once the trades ended and the table goes on; want 500, the input still open", got)
	}
}

// TestWatermarksReplaying: a partition that first sends after the
// watermark moved on (idle until then) replays by its own watermark, and
// Replaying says how far behind it is until it catches up, or goes idle.
func TestWatermarksReplaying(t *testing.T) {
	a, b := &message.Origin{Source: "s", Partition: 0}, &message.Origin{Source: "s", Partition: 1}
	t0 := time.Unix(1000, 0)
	w := newWatermarks([]connector.Reader{originReader{a}, originReader{b}}, map[string]sourceTiming{"s": {idle: time.Second}}, t0)
	w.arrive(a, 100, 0, t0.Add(2*time.Second))
	w.progress(a, 100)
	if got := w.advance(t0.Add(2 * time.Second)); got != 100 {
		t.Fatalf("watermark %d with partition 1 idle; want 100", got)
	}
	if got := w.Replaying(); got != math.MaxInt64 {
		t.Fatalf("replaying %d before partition 1 sent anything; want none", got)
	}
	w.arrive(b, 40, 0, t0.Add(3*time.Second))
	w.progress(b, 40)
	w.advance(t0.Add(3 * time.Second))
	if got := w.Replaying(); got != 40 {
		t.Fatalf("replaying %d; want partition 1's own watermark, 40", got)
	}
	w.arrive(a, 200, 0, t0.Add(5*time.Second))
	w.progress(a, 200)
	w.advance(t0.Add(5 * time.Second))
	if got := w.Replaying(); got != math.MaxInt64 {
		t.Fatalf("replaying %d once partition 1 is idle; want none: it may never send again", got)
	}
	w.arrive(b, 250, 0, t0.Add(6*time.Second))
	w.progress(b, 250)
	w.advance(t0.Add(6 * time.Second))
	if got := w.Replaying(); got != math.MaxInt64 {
		t.Fatalf("replaying %d once partition 1 caught up; want none", got)
	}
}

// TestWatermarksAway: a partition not assigned to this engine holds the
// watermark back on one engine, where it is only not assigned yet (a
// join's second topic, whose group assignment comes after the first's),
// and not when several engines share the partitions, where another reads
// it.
func TestWatermarksAway(t *testing.T) {
	for _, shared := range []bool{false, true} {
		a, b := &message.Origin{Source: "trades"}, &message.Origin{Source: "marks"}
		b.Away.Store(true)
		t0 := time.Unix(1000, 0)
		w := newWatermarks([]connector.Reader{originReader{a}, originReader{b}}, map[string]sourceTiming{"trades": {idle: time.Minute}, "marks": {idle: time.Minute}}, t0)
		w.shared = shared
		w.arrive(a, 100, 0, t0)
		w.progress(a, 100)
		want := int64(math.MinInt64)
		if shared {
			want = 100
		}
		if got := w.advance(t0); got != want {
			t.Errorf("shared %v: watermark %d with marks not assigned here; want %d", shared, got, want)
		}
	}
}

// TestWatermarksIdlePerSource: each source's partitions go idle after that
// source's own idleTimeout, so a join of a bursty stream with a steady one
// can set each apart.
func TestWatermarksIdlePerSource(t *testing.T) {
	bursty, steady := &message.Origin{Source: "bursty"}, &message.Origin{Source: "steady"}
	t0 := time.Unix(1000, 0)
	w := newWatermarks([]connector.Reader{originReader{bursty}, originReader{steady}},
		map[string]sourceTiming{"bursty": {idle: time.Hour}, "steady": {idle: time.Second}}, t0)
	w.arrive(bursty, 100, 0, t0)
	w.progress(bursty, 100)
	w.arrive(steady, 300, 0, t0)
	w.progress(steady, 300)
	if got := w.advance(t0.Add(2 * time.Second)); got != 100 {
		t.Fatalf("watermark %d two seconds on; want 100: the bursty source waits an hour before it is idle, whatever the other's timeout", got)
	}
	w.arrive(bursty, 200, 0, t0.Add(3*time.Second))
	w.progress(bursty, 200)
	if got := w.advance(t0.Add(3 * time.Second)); got != 200 {
		t.Fatalf("watermark %d; want 200: the steady source, silent for 3s, is idle after its own second", got)
	}
	if got := w.shortestIdle(); got != time.Second {
		t.Errorf("shortest idle timeout %v; want 1s", got)
	}
}

// TestWindowAcksFollowResults: a Kafka-like source's batches are
// acknowledged only once the window results derived from them are written,
// so that a committed offset never covers a record whose window result
// could be lost in a crash.
func TestWindowAcksFollowResults(t *testing.T) {
	const partitions, count = 2, 20_000
	const window = 100 * time.Millisecond // 100 trades per partition
	spec := datagenSpec("SELECT window_start, symbol, count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '100 milliseconds') GROUP BY window_start, window_end, symbol",
		count, partitions, 2, 2, 64)
	sink := &collectSink{}
	var mu sync.Mutex
	var violations []string
	acks := 0
	readers := make([]connector.Reader, partitions)
	for i := range readers {
		d, err := connector.NewDatagen("trades", spec.Sources[0].Datagen, int32(i), schemas.Trades)
		if err != nil {
			t.Fatal(err)
		}
		d.Origin().Acked = func(a message.Ack) {
			last := a.LastOffset
			// The record at sequence number last has event time epoch+last ms;
			// its window starts at that rounded down to the window.
			ts := time.Date(2024, 1, 2, 9, 30, 0, 0, time.UTC).Add(time.Duration(last) * time.Millisecond)
			start := value.TimeValue(ts.Truncate(window)).String() + ","
			mu.Lock()
			defer mu.Unlock()
			acks++
			if !slices.ContainsFunc(sink.Rows(), func(r string) bool { return strings.HasPrefix(r, start) }) {
				violations = append(violations, fmt.Sprintf("partition %d acknowledged up to %d (window %s) before that window's results were written", i, last, start))
			}
		}
		readers[i] = d
	}
	p, err := runPipeline(t, spec, Options{Sink: sink, Readers: readers})
	if err != nil {
		t.Fatal(err)
	}
	if len(violations) > 0 {
		t.Fatalf("%d early acknowledgements of %d, first: %s", len(violations), acks, violations[0])
	}
	c := p.Snapshot().Counts
	if acks == 0 || c.Aggregated != partitions*count || c.Results == 0 || c.Out != 0 {
		t.Errorf("acks %d, counts %+v; want every record aggregated, results written, none out as itself", acks, c)
	}
	checkIdentity(t, c)
	if s := p.Snapshot(); s.StateRows != 0 {
		t.Errorf("state rows %d after the end; want every window closed", s.StateRows)
	}
}

// TestEmitChanges: with EMIT CHANGES a group's row is written after every
// batch that changed it, and its last update equals the final result of the
// same query without it.
func TestEmitChanges(t *testing.T) {
	const query = "SELECT window_start, symbol, count(*) AS n, sum(quantity) AS q FROM TUMBLE(trades, ts, INTERVAL '1' SECOND) GROUP BY window_start, window_end, symbol"
	run := func(q string) []string {
		spec := datagenSpec(q, 5000, 1, 1, 4, 100)
		sink := &collectSink{}
		if _, err := runPipeline(t, spec, Options{Sink: sink}); err != nil {
			t.Fatal(err)
		}
		return sink.Rows()
	}
	final := run(query)
	changes := run(query + " EMIT CHANGES")
	if len(changes) <= len(final) {
		t.Fatalf("%d updates for %d groups; want several updates per group", len(changes), len(final))
	}
	last := map[string]string{}
	for _, r := range changes {
		f := strings.SplitN(r, ",", 3)
		last[f[0]+","+f[1]] = r
	}
	for _, r := range final {
		f := strings.SplitN(r, ",", 3)
		if got := last[f[0]+","+f[1]]; got != r {
			t.Errorf("group %s,%s: last update %q, final result %q", f[0], f[1], got, r)
		}
	}
	if len(last) != len(final) {
		t.Errorf("%d groups updated, %d final results", len(last), len(final))
	}
}

// originReader is a reader that only has an origin, for watermark tests.
type originReader struct{ o *message.Origin }

func (r originReader) Origin() *message.Origin { return r.o }
func (originReader) Close() error              { return nil }
func (originReader) Read(context.Context, *message.Batch, int, time.Duration, *message.ErrorBatch) error {
	return io.EOF
}

// TestLateRecordsToErrorPolicy: with lateRecords: ErrorPolicy a record
// behind the watermark becomes an error event of stage late, which the
// DeadLetter policy writes, instead of a count; the others are aggregated.
func TestLateRecordsToErrorPolicy(t *testing.T) {
	path := writeFile(t, "late.json", `{"symbol":"A","ts":"2024-01-02T09:30:10Z"}
{"symbol":"A","ts":"2024-01-02T09:30:20Z"}
{"symbol":"A","ts":"2024-01-02T09:30:05Z"}
{"symbol":"A","ts":"2024-01-02T09:30:21Z"}
`)
	spec := fileSpec(path, v1alpha1.FormatJSON, "SELECT window_start, count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '10' SECOND) GROUP BY window_start, window_end", v1alpha1.DeadLetter)
	spec.Sources[0].Schema = []v1alpha1.Column{{Name: "symbol", Type: "string"}, {Name: "ts", Type: "timestamp"}}
	spec.Sources[0].EventTime = &v1alpha1.EventTime{Column: "ts", LateRecords: v1alpha1.LateErrorPolicy}
	spec.Runtime = v1alpha1.RuntimeSpec{Mode: v1alpha1.Direct, BatchSize: 1}
	sink, dlq := &collectSink{}, &memDeadLetter{}
	p, err := runPipeline(t, spec, Options{Sink: sink, DeadLetter: dlq})
	if err != nil {
		t.Fatal(err)
	}
	c := p.Snapshot().Counts
	if len(dlq.events) != 1 || dlq.events[0].Stage != "late" || !strings.Contains(dlq.events[0].Error, "behind the watermark") || dlq.events[0].Source.Offset != 3 {
		t.Fatalf("dead letters %+v; want the record of line 3, stage late", dlq.events)
	}
	if c.DeadLettered != 1 || c.Late != 0 || c.Aggregated != 3 {
		t.Errorf("counts %+v; want 1 dead-lettered, none counted late, 3 aggregated", c)
	}
	checkIdentity(t, c)
	want := []string{"2024-01-02T09:30:10Z,1", "2024-01-02T09:30:20Z,2"}
	if got := sink.Rows(); !slices.Equal(got, want) {
		t.Errorf("results %q; want %q: the late record of 09:30:05 in no window", got, want)
	}
}

// TestOverFailureAccounted: a moving aggregate that overflows drops its row
// as an error event of stage aggregate, which the error policy accounts for
// like any failed record.
func TestOverFailureAccounted(t *testing.T) {
	path := writeFile(t, "over.json", `{"symbol":"A","quantity":9223372036854775807,"ts":"2024-01-02T09:30:00Z"}
{"symbol":"A","quantity":1,"ts":"2024-01-02T09:30:01Z"}
{"symbol":"A","quantity":2,"ts":"2024-01-02T09:30:02Z"}
`)
	spec := fileSpec(path, v1alpha1.FormatJSON, "SELECT symbol, sum(quantity) OVER (PARTITION BY symbol ORDER BY ts ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS s FROM trades", v1alpha1.Skip)
	spec.Sources[0].Schema = []v1alpha1.Column{{Name: "symbol", Type: "string"}, {Name: "quantity", Type: "int"}, {Name: "ts", Type: "timestamp"}}
	sink := &collectSink{}
	p, err := runPipeline(t, spec, Options{Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	c := p.Snapshot().Counts
	if want := []string{"A,9223372036854775807", "A,3"}; !slices.Equal(sink.Rows(), want) {
		t.Errorf("rows %q; want %q", sink.Rows(), want)
	}
	if c.Out != 2 || c.Skipped != 1 || c.Revoked != 0 {
		t.Errorf("counts %+v; want 2 out and the overflowing row skipped", c)
	}
	checkIdentity(t, c)
}

// TestAllowedLateness: a window stays open for the allowed lateness past its
// end; a late record within it updates the window, which is written again,
// and a record later than that is late.
func TestAllowedLateness(t *testing.T) {
	path := writeFile(t, "lateness.json", `{"symbol":"A","ts":"2024-01-02T09:30:10Z"}
{"symbol":"A","ts":"2024-01-02T09:30:20Z"}
{"symbol":"A","ts":"2024-01-02T09:30:15Z"}
{"symbol":"A","ts":"2024-01-02T09:30:31Z"}
{"symbol":"A","ts":"2024-01-02T09:30:12Z"}
`)
	spec := fileSpec(path, v1alpha1.FormatJSON, "SELECT window_start, count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '10' SECOND) GROUP BY window_start, window_end", v1alpha1.FailFast)
	spec.Sources[0].Schema = []v1alpha1.Column{{Name: "symbol", Type: "string"}, {Name: "ts", Type: "timestamp"}}
	spec.Sources[0].EventTime = &v1alpha1.EventTime{Column: "ts", AllowedLateness: metav1.Duration{Duration: 10 * time.Second}}
	spec.Runtime = v1alpha1.RuntimeSpec{Mode: v1alpha1.Direct, BatchSize: 1}
	sink := &collectSink{}
	p, err := runPipeline(t, spec, Options{Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"2024-01-02T09:30:10Z,1", "2024-01-02T09:30:10Z,2", "2024-01-02T09:30:20Z,1", "2024-01-02T09:30:30Z,1"}
	if got := sink.Rows(); !slices.Equal(got, want) {
		t.Errorf("results %q; want %q: the window of 09:30:10 written, then updated by the record of 09:30:15", got, want)
	}
	c := p.Snapshot().Counts
	if c.Late != 1 || c.Aggregated != 4 {
		t.Errorf("counts %+v; want the record of 09:30:12 late (behind 09:30:31 less 10s), 4 aggregated", c)
	}
	checkIdentity(t, c)
}

// TestWindowResultErrorToPolicy: a window result that cannot be computed is
// an error event for the error policy (here a dead letter), which stands for
// no record read: the records stay counted as aggregated.
func TestWindowResultErrorToPolicy(t *testing.T) {
	path := writeFile(t, "sum.json", `{"symbol":"A","quantity":9223372036854775807,"ts":"2024-01-02T09:30:00Z"}
{"symbol":"A","quantity":1,"ts":"2024-01-02T09:30:01Z"}
{"symbol":"B","quantity":1,"ts":"2024-01-02T09:30:02Z"}
`)
	spec := fileSpec(path, v1alpha1.FormatJSON, "SELECT symbol, sum(quantity) AS q FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY window_start, window_end, symbol", v1alpha1.DeadLetter)
	spec.Sources[0].Schema = []v1alpha1.Column{{Name: "symbol", Type: "string"}, {Name: "quantity", Type: "int"}, {Name: "ts", Type: "timestamp"}}
	sink, dlq := &collectSink{}, &memDeadLetter{}
	p, err := runPipeline(t, spec, Options{Sink: sink, DeadLetter: dlq})
	if err != nil {
		t.Fatal(err)
	}
	if len(dlq.events) != 1 || dlq.events[0].Stage != "aggregate" || !strings.Contains(dlq.events[0].Error, "overflow") {
		t.Fatalf("dead letters %+v; want the overflowing sum of A", dlq.events)
	}
	if want := []string{"B,1"}; !slices.Equal(sink.Rows(), want) {
		t.Errorf("results %q; want %q", sink.Rows(), want)
	}
	c := p.Snapshot().Counts
	if c.Aggregated != 3 || c.DeadLettered != 0 || c.Results != 1 {
		t.Errorf("counts %+v; want 3 aggregated, 1 result, no record dead-lettered", c)
	}
	checkIdentity(t, c)
}

// TestStatefulLatency: the results of windows and moving aggregates have a
// source-to-sink latency, counted from the input that made them due, so it
// is more than zero and never more than the run itself.
func TestStatefulLatency(t *testing.T) {
	for name, query := range map[string]string{"tumbling": tumblingQuery, "moving": movingQuery} {
		t.Run(name, func(t *testing.T) {
			spec := datagenSpec(query, 20_000, 2, 2, 4, 100)
			start := time.Now()
			p, err := runPipeline(t, spec, Options{Sink: &collectSink{}})
			if err != nil {
				t.Fatal(err)
			}
			run := time.Since(start)
			s := p.Snapshot()
			if s.Counts.Results+s.Counts.Out == 0 {
				t.Fatal("nothing was written")
			}
			t.Logf("p50 %v p99 %v results %d out %d", s.LatencyP50, s.LatencyP99, s.Counts.Results, s.Counts.Out)
			// The histogram's buckets are 12.5% wide.
			if s.LatencyP50 <= 0 || s.LatencyP99 > run+run/8 {
				t.Errorf("latency p50 %v, p99 %v in a run of %v; want above zero and within the run", s.LatencyP50, s.LatencyP99, run)
			}
		})
	}
}

// pausingReader reads batches of symbols, each after its pause on the
// clock it moves.
type pausingReader struct {
	o       *message.Origin
	batches [][]string
	pauses  []time.Duration
	next    int
	mu      sync.Mutex
	now     time.Time
}

func (r *pausingReader) clock() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.now
}

func (r *pausingReader) Origin() *message.Origin { return r.o }
func (*pausingReader) Close() error              { return nil }
func (r *pausingReader) Read(_ context.Context, b *message.Batch, _ int, _ time.Duration, _ *message.ErrorBatch) error {
	if r.next == len(r.batches) {
		return io.EOF
	}
	r.mu.Lock()
	r.now = r.now.Add(r.pauses[r.next])
	r.mu.Unlock()
	for _, sym := range r.batches[r.next] {
		row := b.Append(int64(r.next))
		row[0], row[1], row[2] = value.StringValue(sym), value.NullValue(), value.IntValue(1)
	}
	b.LastOffset = int64(r.next)
	r.next++
	return nil
}

// TestProcessingTimeWindows: windows of PROCTIME() hold the rows of the
// time they were processed, whatever their event time, and close as the
// clock passes their end; the input's end closes the rest.
func TestProcessingTimeWindows(t *testing.T) {
	spec := fileSpec(filepath.Join(t.TempDir(), "unread.json"), v1alpha1.FormatJSON, `WITH t AS (SELECT *, PROCTIME() AS pt FROM trades)
		SELECT window_start, symbol, count(*) AS n FROM TUMBLE(t, pt, INTERVAL '1' MINUTE) GROUP BY window_start, window_end, symbol`, v1alpha1.FailFast)
	spec.Runtime.Mode = v1alpha1.Direct // a batch is taken before the next is read
	sink := &collectSink{}
	// At 0 s, 30 s and 90 s into a minute: the third batch is in the
	// next minute, whose start closes the first.
	start := time.Unix(1_700_000_040, 0) // a minute's start
	r := &pausingReader{o: &message.Origin{Source: "trades"}, batches: [][]string{{"A", "B"}, {"A"}, {"A", "B"}}, pauses: []time.Duration{0, 30 * time.Second, 60 * time.Second}, now: start}
	p, err := runPipeline(t, spec, Options{Sink: sink, Readers: []connector.Reader{r}, Clock: r.clock})
	if err != nil {
		t.Fatal(err)
	}
	first, second := start.UTC().Format("2006-01-02T15:04:05Z"), start.Add(time.Minute).UTC().Format("2006-01-02T15:04:05Z")
	got := sink.Rows()
	want := []string{first + ",A,2", first + ",B,1", second + ",A,1", second + ",B,1"}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("rows %q; want %q", got, want)
	}
	if c := p.Snapshot().Counts; c.Aggregated != 5 || c.Late != 0 || c.Results != 4 {
		t.Errorf("counts %+v; want 5 aggregated, none late, 4 results", c)
	}
}

// TestContinuousTTLRun: spec.state.ttl drops a continuous aggregation's
// group that no row changed for the ttl, and the next row of its key
// starts it again; a group changed meanwhile goes on; the engine counts
// the groups dropped.
func TestContinuousTTLRun(t *testing.T) {
	spec := fileSpec(filepath.Join(t.TempDir(), "unread.json"), v1alpha1.FormatJSON, "SELECT symbol, count(*) AS n FROM trades GROUP BY symbol", v1alpha1.FailFast)
	spec.State = &v1alpha1.StateSpec{Dir: t.TempDir(), TTL: &metav1.Duration{Duration: time.Hour}}
	spec.Runtime.Mode = v1alpha1.Direct // a batch is taken before the next is read
	sink := &collectSink{}
	// B is idle 100 minutes when it comes again, A 50: the ttl is an hour.
	r := &pausingReader{o: &message.Origin{Source: "trades"}, batches: [][]string{{"A", "B"}, {"A"}, {"A", "B"}}, pauses: []time.Duration{0, 50 * time.Minute, 50 * time.Minute}, now: time.Unix(1_700_000_000, 0)}
	p, err := runPipeline(t, spec, Options{Sink: sink, Readers: []connector.Reader{r}, Clock: r.clock})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"A,1", "B,1", "A,2", "A,3", "B,1"}
	if got := sink.Rows(); !slices.Equal(got, want) {
		t.Errorf("rows %q; want %q", got, want)
	}
	if got := p.Snapshot().ExpiredGroups; got != 1 {
		t.Errorf("%d groups expired; want 1", got)
	}
}

// TestResultsInBatchesOfBatchSize: a window that closes with more groups
// than a batch holds, and an emit interval that holds back every group's
// changes to the end, write their results in batches of
// spec.runtime.batchSize rows, not one batch of them all: the same rows
// as with batches large enough, every record accounted for.
func TestResultsInBatchesOfBatchSize(t *testing.T) {
	for _, c := range []struct {
		name, query string
		emit        time.Duration
		// changes: a window's EMIT CHANGES, whose rows depend on the
		// batches; each group's last row is compared.
		changes bool
	}{
		{"window", "SELECT window_start, price, count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '10' SECOND) GROUP BY window_start, window_end, price", 0, false},
		{"emit interval", "SELECT price, count(*) AS n, sum(quantity) AS q FROM trades GROUP BY price", time.Hour, false},
		{"window changes", "SELECT window_start, price, count(*) AS n FROM HOP(trades, ts, INTERVAL '5' SECOND, INTERVAL '10' SECOND) GROUP BY window_start, window_end, price EMIT CHANGES", 0, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			run := func(batch int) ([]string, int) {
				spec := datagenSpec(c.query, 5000, 2, 1, 4, batch)
				if c.emit > 0 {
					spec.Runtime.EmitInterval = &metav1.Duration{Duration: c.emit}
				}
				sink := &collectSink{}
				p, err := runPipeline(t, spec, Options{Sink: sink})
				if err != nil {
					t.Fatal(err)
				}
				counts := p.Snapshot().Counts
				if counts.Aggregated != 10000 {
					t.Errorf("batch size %d: counts %+v; want every record aggregated", batch, counts)
				}
				checkIdentity(t, counts)
				rows := sink.Rows()
				if c.changes {
					last := map[string]string{}
					for _, r := range rows {
						last[r[:strings.LastIndexByte(r, ',')]] = r
					}
					rows = slices.Collect(maps.Values(last))
				}
				slices.Sort(rows)
				return rows, sink.largest
			}
			want, largest := run(20000)
			if largest < 1000 {
				t.Fatalf("at most %d rows a batch with batches of 20,000: too few to test batches of 32", largest)
			}
			got, largest := run(32)
			if !c.changes && largest > 32 {
				t.Errorf("a batch of %d rows written; want at most 32", largest)
			}
			if !slices.Equal(got, want) {
				t.Errorf("%d rows in batches of 32, %d in batches of 20,000; not the same", len(got), len(want))
			}
		})
	}
}

// processTimes is an Observer that keeps the longest process time of a
// batch of the stateful stage.
type processTimes struct {
	mu      sync.Mutex
	batches int
	longest time.Duration
}

func (o *processTimes) ObserveBatch(stage Stage, d time.Duration, _ int, _ message.TraceContext) {
	if stage != StageProcess {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.batches++
	o.longest = max(o.longest, d)
}

// TestProcessTimeOwn: the stateful stage's process time of a batch is its
// own work, not the sink's write of the results it sends on (direct mode,
// where the stage writes them itself): with a sink that takes 250 ms a
// write, every batch's process time is less than that.
func TestProcessTimeOwn(t *testing.T) {
	spec := datagenSpec("SELECT price, count(*) AS n FROM trades GROUP BY price", 200, 1, 1, 4, 50)
	spec.Runtime.Mode = v1alpha1.Direct
	obs := &processTimes{}
	sink := &collectSink{delay: func() time.Duration { return 250 * time.Millisecond }}
	if _, err := runPipeline(t, spec, Options{Sink: sink, Observer: obs}); err != nil {
		t.Fatal(err)
	}
	if obs.batches == 0 || len(sink.Rows()) == 0 {
		t.Fatalf("%d batches processed, %d rows written; want some", obs.batches, len(sink.Rows()))
	}
	if obs.longest >= 250*time.Millisecond {
		t.Errorf("a batch's process time %v: it holds the sink's write of 250 ms", obs.longest)
	}
}
