package kafka_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/api/enginestatus"
	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/pipeline"
)

// TestStatementSetKafka runs a statement set over a topic of 8
// partitions: every record reaches each statement's topic, in order per
// key, a record that cannot be decoded is one dead letter, and after a
// graceful stop the group has committed every offset, which it did only
// once both statements had written.
func TestStatementSetKafka(t *testing.T) {
	brokers := cluster(t, 8, "in", "copy", "evens", "dlq")
	const n, keys = 3000, 40
	recs := keyedInput(n, keys)
	recs = append(recs, &kgo.Record{Key: []byte("k00"), Value: []byte(`{"id":"not a number"}`)})
	produce(t, brokers, "in", recs...)
	spec := kafkaSpec(brokers, "in", "", "")
	spec.Query, spec.Sink = "", nil
	spec.Statements = []v1alpha1.Statement{
		{Name: "copy", Query: "SELECT id, k, seq FROM t", Sink: v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: brokers, Topic: "copy", Key: "k"}}},
		{Name: "evens", Query: "SELECT id, k, seq FROM t WHERE id % 2 = 0", Sink: v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: brokers, Topic: "evens", Key: "k"}}},
	}
	spec.ErrorPolicy = v1alpha1.ErrorPolicy{Strategy: v1alpha1.DeadLetter, DeadLetter: &v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: brokers, Topic: "dlq"}}}
	p, stop := run(t, spec, "statements")
	if ids := checkPerKeyOrder(t, consume(t, brokers, "copy", n)); len(ids) != n {
		t.Errorf("%d distinct ids copied; want %d", len(ids), n)
	}
	evens := checkPerKeyOrder(t, consume(t, brokers, "evens", n/2))
	for id := range evens {
		if id%2 != 0 {
			t.Errorf("id %d in evens", id)
		}
	}
	consume(t, brokers, "dlq", 1)
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := p.Snapshot()
		lagging := 0
		for _, src := range s.Sources {
			if src.Lag != 0 {
				lagging++
			}
		}
		if lagging == 0 && s.Counts.InFlight == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("partitions still lagging, or records in flight: %+v, %+v", s.Sources, s.Counts)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	committedAll(t, brokers, "statements", "in")
	s := p.Snapshot()
	if c := s.Counts; c.In != n+1 || c.DeadLettered != 1 || c.Out != n+n/2 || len(s.Statements) != 2 {
		t.Errorf("counts %+v, statements %+v; want %d read, 1 dead letter, %d written", c, s.Statements, n+1, n+n/2)
	}
	if dead := consume(t, brokers, "dlq", 1); len(dead) != 1 {
		t.Errorf("%d dead letters; want 1", len(dead))
	}
}

// TestStatementSetKafkaState runs a statement set with spec.state over a
// topic: the stateful statement keeps its checkpoints in a topic of its
// own, <group>.checkpoints.<statement>, and the group's offsets reach the
// end only with its last checkpoint.
func TestStatementSetKafkaState(t *testing.T) {
	brokers := cluster(t, 4, "in", "copy", "counts")
	const n = 2000
	produce(t, brokers, "in", keyedInput(n, 20)...)
	spec := kafkaSpec(brokers, "in", "", "")
	spec.Query, spec.Sink = "", nil
	spec.Sources[0].Kafka.PartitionedBy = []string{"k"}
	spec.Statements = []v1alpha1.Statement{
		{Name: "copy", Query: "SELECT id, k, seq FROM t", Sink: v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: brokers, Topic: "copy", Key: "k"}}},
		{Name: "counts", Query: "SELECT k, count(*) AS n FROM t GROUP BY k", Sink: v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: brokers, Topic: "counts", Key: "k"}}},
	}
	spec.State = &v1alpha1.StateSpec{CheckpointInterval: &metav1.Duration{Duration: 100 * time.Millisecond}}
	_, stop := run(t, spec, "statements-state")
	consume(t, brokers, "copy", n)
	// The latest count of each key is its total.
	latest := map[string]string{}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, r := range consume(t, brokers, "counts", 1) {
			latest[string(r.Key)] = string(r.Value)
		}
		if len(latest) == 20 && latest["k00"] == `{"k":"k00","n":100}` {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	committedAll(t, brokers, "statements-state", "in")
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	topics, err := kadm.NewClient(cl).ListTopics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !topics.Has("statements-state.checkpoints.counts") || topics.Has("statements-state.checkpoints") {
		t.Errorf("topics %v; want the stateful statement's checkpoints in statements-state.checkpoints.counts", topics.Names())
	}
}

// TestStatementSetStatementBack: a stateful statement taken out of a set
// with spec.state, whose offsets the others then commit without it, and
// put back, is refused: its checkpoint is behind what was committed, and
// its state would miss the records between. On several engines, where a
// partition's state is restored when it is assigned, as on one.
func TestStatementSetStatementBack(t *testing.T) {
	for _, engines := range []int32{1, 2} {
		t.Run(fmt.Sprintf("%d engines", engines), func(t *testing.T) { statementBack(t, engines) })
	}
}

// statementBack is TestStatementSetStatementBack with replicas: engines, of
// which one runs.
func statementBack(t *testing.T, engines int32) {
	brokers := cluster(t, 2, "in", "copy", "sums", "counts")
	const n = 200
	spec := func(counts bool) *v1alpha1.StreamQuerySpec {
		s := kafkaSpec(brokers, "in", "", "")
		s.Query, s.Sink = "", nil
		s.Sources[0].Kafka.PartitionedBy = []string{"k"}
		s.Statements = []v1alpha1.Statement{
			{Name: "copy", Query: "SELECT id, k, seq FROM t", Sink: v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: brokers, Topic: "copy", Key: "k"}}},
			{Name: "sums", Query: "SELECT k, sum(seq) AS s FROM t GROUP BY k", Sink: v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: brokers, Topic: "sums", Key: "k"}}},
		}
		if counts {
			s.Statements = append(s.Statements, v1alpha1.Statement{Name: "counts", Query: "SELECT k, count(*) AS n FROM t GROUP BY k", Sink: v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: brokers, Topic: "counts", Key: "k"}}})
		}
		s.State = &v1alpha1.StateSpec{CheckpointInterval: &metav1.Duration{Duration: 100 * time.Millisecond}}
		s.Replicas = &engines
		return s
	}
	for round, counts := range []bool{true, false} {
		produce(t, brokers, "in", keyedInput(n, 4)...)
		_, stop := run(t, spec(counts), "back")
		consume(t, brokers, "copy", (round+1)*n)
		deadline := time.Now().Add(30 * time.Second)
		for !committed(t, brokers, "back", "in") && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		committedAll(t, brokers, "back", "in")
	}
	produce(t, brokers, "in", keyedInput(n, 4)...)
	p, stop := run(t, spec(true), "back")
	deadline := time.Now().Add(30 * time.Second)
	for p.Snapshot().State != enginestatus.Failed && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	err := stop()
	if err == nil || !strings.Contains(err.Error(), "statement counts: ") || !strings.Contains(err.Error(), "without the statement") {
		t.Errorf("run: %v; want the statement put back refused, its checkpoint behind the set's offsets", err)
	}
}

// TestStatementSetDecodeFailuresState: a batch of records that do not
// decode, which the first statement handles, is passed on empty through
// the second, stateful one, whose checkpoint then covers it: after a
// restart the statement, in the set all along, is not taken for one put
// back behind the committed offsets.
func TestStatementSetDecodeFailuresState(t *testing.T) {
	brokers := cluster(t, 1, "in", "copy", "sums")
	const n = 100
	spec := kafkaSpec(brokers, "in", "", "")
	spec.Query, spec.Sink = "", nil
	spec.ErrorPolicy.Strategy = v1alpha1.Skip
	spec.Statements = []v1alpha1.Statement{
		{Name: "copy", Query: "SELECT id, k, seq FROM t", Sink: v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: brokers, Topic: "copy", Key: "k"}}},
		{Name: "sums", Query: "SELECT k, sum(seq) AS s FROM t GROUP BY k", Sink: v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: brokers, Topic: "sums", Key: "k"}}},
	}
	spec.State = &v1alpha1.StateSpec{CheckpointInterval: &metav1.Duration{Duration: 100 * time.Millisecond}}
	waitCommitted := func() {
		deadline := time.Now().Add(30 * time.Second)
		for !committed(t, brokers, "decode", "in") && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	produce(t, brokers, "in", keyedInput(n, 4)...)
	_, stop := run(t, spec, "decode")
	consume(t, brokers, "copy", n)
	waitCommitted()
	var bad []*kgo.Record
	for range 5 {
		bad = append(bad, &kgo.Record{Key: []byte("k00"), Value: []byte("not json")})
	}
	produce(t, brokers, "in", bad...)
	waitCommitted()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	committedAll(t, brokers, "decode", "in")
	produce(t, brokers, "in", keyedInput(n, 4)...)
	p, stop := run(t, spec, "decode")
	consume(t, brokers, "copy", 2*n)
	waitCommitted()
	if err := stop(); err != nil || p.Snapshot().Counts.Skipped != 0 {
		t.Errorf("second run: %v, counts %+v; want it to run on, the bad records read in the first", err, p.Snapshot().Counts)
	}
	committedAll(t, brokers, "decode", "in")
}

// TestStatementSetRebalance runs a statement set with spec.state on two
// engines, in one consumer group, while the second joins and later leaves:
// each stateful statement's state of a partition that moves goes with it,
// through the statement's checkpoint topic, so that every window of the
// first is written whole and every moving sum of the second counts its
// key's nine records before, though the group committed the partitions
// past them; the third, stateless, writes every record it keeps. A row
// written again after a move (at least once) is the same row.
func TestStatementSetRebalance(t *testing.T) {
	brokers := cluster(t, 8, "in", "windows", "moving", "evens")
	const keys, perKey = 24, 300
	// Each key has a record every 20ms of event time, seq 0 to 299: 50 in
	// each one-second window.
	recs := timedInput(keys, perKey)
	spec := kafkaSpec(brokers, "in", "", "")
	spec.Query, spec.Sink = "", nil
	src := &spec.Sources[0]
	src.Schema = append(src.Schema, v1alpha1.Column{Name: "ts", Type: "timestamp"})
	src.EventTime = &v1alpha1.EventTime{Column: "ts", IdleTimeout: &metav1.Duration{Duration: 3 * time.Second}}
	src.Kafka.SessionTimeout = &metav1.Duration{Duration: 6 * time.Second}
	src.Kafka.PartitionedBy = []string{"k"}
	sink := func(topic string) v1alpha1.Sink {
		return v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: brokers, Topic: topic, Key: "k"}}
	}
	spec.Statements = []v1alpha1.Statement{
		{Name: "windows", Query: "SELECT window_start, k, count(*) AS n, sum(seq) AS total FROM TUMBLE(t, ts, INTERVAL '1' SECOND) GROUP BY window_start, window_end, k", Sink: sink("windows")},
		{Name: "moving", Query: "SELECT k, seq, sum(seq) OVER (PARTITION BY k ORDER BY ts ROWS BETWEEN 9 PRECEDING AND CURRENT ROW) AS s10 FROM t", Sink: sink("moving")},
		{Name: "evens", Query: "SELECT k, seq FROM t WHERE seq % 2 = 0", Sink: sink("evens")},
	}
	spec.State = &v1alpha1.StateSpec{CheckpointInterval: &metav1.Duration{Duration: 200 * time.Millisecond}}
	two := int32(2)
	spec.Replicas = &two

	p1, stop1, p2 := joinAndLeave(t, brokers, recs, keys, "set-rebalance", "windows", func(instance string) (*pipeline.Pipeline, func() error) {
		return runInstance(t, spec, "set-rebalance", instance)
	})

	// What each statement must write, by row key: every window of every
	// key, every record's moving sum, every even record.
	windows := perKey * 20 / 1000
	type row struct {
		WindowStart time.Time `json:"window_start"`
		K           string
		N, Total    int
		Seq, S10    int
	}
	want := map[string]map[string]string{"windows": {}, "moving": {}, "evens": {}}
	for k := range keys {
		key := fmt.Sprintf("k%02d", k)
		for w := range windows {
			total := windowTotal(w)
			want["windows"][fmt.Sprintf("%s %s", timedBase.Add(time.Duration(w)*time.Second).Format(time.TimeOnly), key)] = fmt.Sprintf("n=%d total=%d", 50, total)
		}
		for seq := range perKey {
			s10 := 0
			for s := max(seq-9, 0); s <= seq; s++ {
				s10 += s
			}
			want["moving"][fmt.Sprintf("%s %d", key, seq)] = fmt.Sprint(s10)
			if seq%2 == 0 {
				want["evens"][fmt.Sprintf("%s %d", key, seq)] = ""
			}
		}
	}
	rowOf := map[string]func(row) (string, string){
		"windows": func(r row) (string, string) {
			return fmt.Sprintf("%s %s", r.WindowStart.Format(time.TimeOnly), r.K), fmt.Sprintf("n=%d total=%d", r.N, r.Total)
		},
		"moving": func(r row) (string, string) { return fmt.Sprintf("%s %d", r.K, r.Seq), fmt.Sprint(r.S10) },
		"evens":  func(r row) (string, string) { return fmt.Sprintf("%s %d", r.K, r.Seq), "" },
	}
	got := map[string]map[string]string{}
	for _, stmt := range []string{"windows", "moving", "evens"} {
		got[stmt] = map[string]string{}
		var out []*kgo.Record
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			out = readAll(t, brokers, stmt, len(out))
			for _, r := range out {
				var v row
				if err := json.Unmarshal(r.Value, &v); err != nil {
					t.Fatalf("%s: %q: %v", stmt, r.Value, err)
				}
				if v.Seq < 0 {
					continue // the records far ahead
				}
				key, value := rowOf[stmt](v)
				if w, ok := want[stmt][key]; !ok || w != value {
					t.Errorf("%s: row %s is %q; want %q", stmt, key, value, w)
				}
				got[stmt][key] = value
			}
			if len(got[stmt]) >= len(want[stmt]) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if len(got[stmt]) != len(want[stmt]) {
			var missing []string
			for key := range want[stmt] {
				if _, ok := got[stmt][key]; !ok {
					missing = append(missing, key)
				}
			}
			slices.Sort(missing)
			t.Errorf("%s: %d distinct rows of %d written; missing %d, e.g. %v", stmt, len(got[stmt]), len(want[stmt]), len(missing), missing[:min(len(missing), 5)])
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for !committed(t, brokers, "set-rebalance", "in") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if err := stop1(); err != nil {
		t.Fatal(err)
	}
	committedAll(t, brokers, "set-rebalance", "in")
	t.Logf("engine a: %+v; engine b: %+v", p1.Snapshot().Counts, p2.Snapshot().Counts)
}
