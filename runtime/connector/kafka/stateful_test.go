package kafka_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/pipeline"
)

// TestWindowedRebalance runs a windowed query keyed like its input topic
// while a second engine joins the group and later leaves. A partition that
// moves takes its window state with it: the old owner drops what it built
// from the partition, and the new owner reads the records after the last
// commit (which never passes a record whose window is still open) and builds
// it again. Every window of every key is written, each with its full count,
// never a partial one.
func TestWindowedRebalance(t *testing.T) {
	brokers := cluster(t, 8, "in", "out")
	const keys, perKey = 24, 300
	// The input is produced in three parts, in event-time order.
	recs := timedInput(keys, perKey)
	spec := func() *v1alpha1.StreamQuerySpec {
		s := kafkaSpec(brokers, "in", "out", "SELECT window_start, k, count(*) AS n, sum(seq) AS total FROM TUMBLE(t, ts, INTERVAL '1' SECOND) GROUP BY window_start, window_end, k")
		s.Sources[0].Schema = append(s.Sources[0].Schema, v1alpha1.Column{Name: "ts", Type: "timestamp"})
		s.Sources[0].EventTime = &v1alpha1.EventTime{Column: "ts", IdleTimeout: &metav1.Duration{Duration: 3 * time.Second}}
		s.Sources[0].Kafka.SessionTimeout = &metav1.Duration{Duration: 6 * time.Second}
		return s
	}
	p1, stop1, p2 := joinAndLeave(t, brokers, recs, keys, "windowed", "out", func(string) (*pipeline.Pipeline, func() error) { return run(t, spec(), "windowed") })
	windows := perKey * 20 / 1000 // one-second windows per key
	deadline := time.Now().Add(30 * time.Second)
	var out []*kgo.Record
	for len(out) < keys*windows && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		out = readAll(t, brokers, "out", len(out))
	}
	if len(out) < keys*windows {
		s := p1.Snapshot()
		t.Errorf("%d results of %d; engine 1: counts %+v, state rows %d, watermark %s, sources %+v", len(out), keys*windows,
			s.Counts, s.StateRows, time.Unix(0, s.Watermark).UTC(), s.Sources)
	}
	if err := stop1(); err != nil {
		t.Fatal(err)
	}
	type result struct {
		WindowStart string `json:"window_start"`
		K           string
		N, Total    int
	}
	seen := map[string]int{}
	for _, r := range out {
		var v result
		if err := json.Unmarshal(r.Value, &v); err != nil {
			t.Fatalf("result %q: %v", r.Value, err)
		}
		start, err := time.Parse(time.RFC3339Nano, v.WindowStart)
		if err != nil {
			t.Fatalf("result %q: window_start: %v", r.Value, err)
		}
		// Window w of a key holds seq 50w … 50w+49.
		w := int(start.Sub(timedBase) / time.Second)
		wantTotal := windowTotal(w)
		if v.N != 50 || v.Total != wantTotal {
			t.Errorf("window %s key %s: count %d, sum %d; want the full window, 50 and %d", v.WindowStart, v.K, v.N, v.Total, wantTotal)
		}
		seen[v.WindowStart+" "+v.K]++
	}
	duplicates := 0
	for _, c := range seen {
		duplicates += c - 1
	}
	if len(seen) != keys*windows {
		var missing []string
		for k := range keys {
			for w := range windows {
				id := timedBase.Add(time.Duration(w)*time.Second).Format(time.RFC3339) + fmt.Sprintf(" k%02d", k)
				if seen[id] == 0 {
					missing = append(missing, id)
				}
			}
		}
		t.Errorf("%d distinct windows written; want %d (%d keys × %d windows); missing %v", len(seen), keys*windows, keys, windows, missing)
	}
	c1, c2 := p1.Snapshot().Counts, p2.Snapshot().Counts
	t.Logf("engine 1: %+v; engine 2: %+v; %d windows written twice (at-least-once)", c1, c2, duplicates)
}

// TestStateBackToOneEngine: a query with spec.state that ran on several
// engines, whose state is in its partitions' checkpoints, runs on one
// engine again: the engine restores each partition's state from them,
// as an engine of several would, and writes on in them, rather than
// start from the whole state's checkpoint of before, or none. Windows
// open across the change are written whole. Of a statement set, each
// stateful statement's.
func TestStateBackToOneEngine(t *testing.T) {
	for _, set := range []bool{false, true} {
		t.Run(fmt.Sprintf("set=%t", set), func(t *testing.T) { backToOneEngine(t, set) })
	}
}

func backToOneEngine(t *testing.T, set bool) {
	brokers := cluster(t, 4, "in", "out", "copy")
	const keys, perKey = 8, 200
	recs := timedInput(keys, perKey)
	const query = "SELECT window_start, k, count(*) AS n, sum(seq) AS total FROM TUMBLE(t, ts, INTERVAL '1' SECOND) GROUP BY window_start, window_end, k"
	spec := func(engines int32) *v1alpha1.StreamQuerySpec {
		s := kafkaSpec(brokers, "in", "out", query)
		s.Sources[0].Schema = append(s.Sources[0].Schema, v1alpha1.Column{Name: "ts", Type: "timestamp"})
		s.Sources[0].EventTime = &v1alpha1.EventTime{Column: "ts"}
		s.Sources[0].Kafka.PartitionedBy = []string{"k"}
		s.State = &v1alpha1.StateSpec{CheckpointInterval: &metav1.Duration{Duration: 100 * time.Millisecond}}
		s.Replicas = &engines
		if set {
			s.Statements = []v1alpha1.Statement{
				{Name: "windows", Query: query, Sink: *s.Sink},
				{Name: "copy", Query: "SELECT id, k, seq FROM t", Sink: v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: brokers, Topic: "copy", Key: "k"}}},
			}
			s.Query, s.Sink = "", nil
		}
		return s
	}
	// On "several" engines (one runs), to the middle of a window: seq 0
	// to 74 of every key, window 1 (50 to 99) open.
	half := 75 * keys
	produce(t, brokers, "in", recs[:half]...)
	several, stop := run(t, spec(2), "back-to-one")
	deadline := time.Now().Add(30 * time.Second)
	for several.Snapshot().Counts.In < int64(half) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	for !committed(t, brokers, "back-to-one", "in") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	committedAll(t, brokers, "back-to-one", "in")
	// On one engine, the rest.
	produce(t, brokers, "in", recs[half:]...)
	p, stop := run(t, spec(1), "back-to-one")
	windows := perKey * 20 / 1000
	got := map[string]string{}
	deadline = time.Now().Add(30 * time.Second)
	var out []*kgo.Record
	for len(got) < keys*windows && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		out = readAll(t, brokers, "out", len(out))
		for _, r := range out {
			v := windowRowOf(t, r)
			w := int(v.WindowStart.Sub(timedBase) / time.Second)
			total := windowTotal(w)
			if v.N != 50 || v.Total != total {
				t.Errorf("window %d of %s: count %d, sum %d; want the whole window, 50 and %d", w, v.K, v.N, v.Total, total)
			}
			got[fmt.Sprintf("%d %s", w, v.K)] = ""
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if len(got) != keys*windows {
		t.Errorf("%d windows written; want %d", len(got), keys*windows)
	}
	if c := p.Snapshot().Counts; c.In != int64(len(recs)-half) {
		t.Errorf("counts %+v on one engine; want the %d records after the committed offsets read", c, len(recs)-half)
	}
}

// windowRow is a result of the tests' windowed query: a key's count and
// sum of seq in a window.
type windowRow struct {
	WindowStart time.Time `json:"window_start"`
	K           string
	N, Total    int
}

// windowRowOf decodes a windowRow.
func windowRowOf(t *testing.T, r *kgo.Record) windowRow {
	t.Helper()
	var v windowRow
	if err := json.Unmarshal(r.Value, &v); err != nil {
		t.Fatalf("%q: %v", r.Value, err)
	}
	return v
}

// timedBase is the event time of timedInput's first records.
var timedBase = time.Date(2024, 1, 2, 9, 30, 0, 0, time.UTC)

// timedInput is perKey records of each of keys keys, k00, k01, ..., in
// event-time order: a key's record seq i (from 0) is at timedBase plus
// 20ms times i, 50 in each one-second window; then one record per key, of
// seq -1, an hour ahead, which closes every window before it.
func timedInput(keys, perKey int) []*kgo.Record {
	var recs []*kgo.Record
	for i := range perKey {
		for k := range keys {
			ts := timedBase.Add(time.Duration(i) * 20 * time.Millisecond)
			recs = append(recs, &kgo.Record{
				Key:   fmt.Appendf(nil, "k%02d", k),
				Value: fmt.Appendf(nil, `{"id":%d,"k":"k%02d","seq":%d,"ts":%q}`, i*keys+k, k, i, ts.Format(time.RFC3339Nano)),
			})
		}
	}
	for k := range keys {
		recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "k%02d", k),
			Value: fmt.Appendf(nil, `{"id":-1,"k":"k%02d","seq":-1,"ts":%q}`, k, timedBase.Add(time.Hour).Format(time.RFC3339Nano))})
	}
	return recs
}

// windowTotal is the sum of the seq of a key's timedInput records in its
// one-second window w (from 0): seq 50w to 50w+49.
func windowTotal(w int) int {
	total := 0
	for seq := 50 * w; seq < 50*w+50; seq++ {
		total += seq
	}
	return total
}

// joinAndLeave runs recs, timedInput's of keys keys, through two engines
// in group, which start starts as instances "a" and "b" of it: a reads
// the first third of the records, until it wrote keys rows to topic out
// (its first windows closed), b joins it, the two share the second third
// until b wrote results, and b stops, gracefully, before the rest is
// produced. It returns a, still running, its stop, and b.
func joinAndLeave(t *testing.T, brokers []string, recs []*kgo.Record, keys int, group, out string, start func(instance string) (*pipeline.Pipeline, func() error)) (a *pipeline.Pipeline, stopA func() error, b *pipeline.Pipeline) {
	t.Helper()
	n := len(recs) - keys
	produce(t, brokers, "in", recs[:n/3]...)
	a, stopA = start("a")
	consume(t, brokers, out, keys)
	b, stopB := start("b")
	waitShared(t, brokers, group)
	produce(t, brokers, "in", recs[n/3:2*n/3]...)
	deadline := time.Now().Add(30 * time.Second)
	for b.Snapshot().Counts.Results == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if b.Snapshot().Counts.Results == 0 {
		t.Fatal("the second engine wrote no results from its partitions")
	}
	if err := stopB(); err != nil {
		t.Fatal(err)
	}
	produce(t, brokers, "in", recs[2*n/3:]...)
	return a, stopA, b
}
