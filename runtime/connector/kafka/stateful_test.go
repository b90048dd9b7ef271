package kafka_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
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
	base := time.Date(2024, 1, 2, 9, 30, 0, 0, time.UTC)
	// Each key has a record every 20ms of event time: 50 per one-second
	// window. The input is produced in three parts, in event-time order.
	var recs []*kgo.Record
	for i := range perKey {
		for k := range keys {
			ts := base.Add(time.Duration(i) * 20 * time.Millisecond)
			recs = append(recs, &kgo.Record{
				Key:   fmt.Appendf(nil, "k%02d", k),
				Value: fmt.Appendf(nil, `{"id":%d,"k":"k%02d","seq":%d,"ts":%q}`, i*keys+k, k, i, ts.Format(time.RFC3339Nano)),
			})
		}
	}
	// A last record per key, far ahead, closes every window before it.
	for k := range keys {
		recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "k%02d", k),
			Value: fmt.Appendf(nil, `{"id":-1,"k":"k%02d","seq":-1,"ts":%q}`, k, base.Add(time.Hour).Format(time.RFC3339Nano))})
	}
	spec := func() *v1alpha1.StreamQuerySpec {
		s := kafkaSpec(brokers, "in", "out", "SELECT window_start, k, count(*) AS n, sum(seq) AS total FROM TUMBLE(t, ts, INTERVAL '1' SECOND) GROUP BY window_start, window_end, k")
		s.Sources[0].Schema = append(s.Sources[0].Schema, v1alpha1.Column{Name: "ts", Type: "timestamp"})
		s.Sources[0].EventTime = &v1alpha1.EventTime{Column: "ts", IdleTimeout: &metav1.Duration{Duration: 3 * time.Second}}
		s.Sources[0].Kafka.SessionTimeout = &metav1.Duration{Duration: 6 * time.Second}
		return s
	}
	n := len(recs) - keys
	produce(t, brokers, "in", recs[:n/3]...)
	p1, stop1 := run(t, spec(), "windowed")
	consume(t, brokers, "out", keys) // some windows closed
	p2, stop2 := run(t, spec(), "windowed")
	waitShared(t, brokers, "windowed")
	produce(t, brokers, "in", recs[n/3:2*n/3]...)
	deadline := time.Now().Add(30 * time.Second)
	for p2.Snapshot().Counts.Results == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if p2.Snapshot().Counts.Results == 0 {
		t.Fatal("the second engine wrote no window results from its partitions")
	}
	if err := stop2(); err != nil {
		t.Fatal(err)
	}
	produce(t, brokers, "in", recs[2*n/3:]...)
	windows := perKey * 20 / 1000 // one-second windows per key
	deadline = time.Now().Add(30 * time.Second)
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
		w := int(start.Sub(base) / time.Second)
		wantTotal := 0
		for seq := 50 * w; seq < 50*w+50; seq++ {
			wantTotal += seq
		}
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
				id := base.Add(time.Duration(w)*time.Second).Format(time.RFC3339) + fmt.Sprintf(" k%02d", k)
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
