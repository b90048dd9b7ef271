package kafka_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/api/v1alpha1"
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
