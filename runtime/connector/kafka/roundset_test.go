package kafka_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// roundSet is a statement set that writes exactly once with spec.state:
// a copy of every record, and a stateful statement (query), both in the
// set's transactions (connector.RoundTransaction).
func roundSet(brokers []string, query string) *v1alpha1.StreamQuerySpec {
	spec := kafkaSpec(brokers, "in", "", "")
	spec.Query, spec.Sink = "", nil
	eos := func(topic string) v1alpha1.Sink {
		return v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: brokers, Topic: topic, Key: "k", Delivery: v1alpha1.ExactlyOnce}}
	}
	spec.Statements = []v1alpha1.Statement{
		{Name: "copy", Query: "SELECT id, k, seq FROM t", Sink: eos("copy")},
		{Name: "state", Query: query, Sink: eos("state")},
	}
	spec.State = &v1alpha1.StateSpec{CheckpointInterval: &metav1.Duration{Duration: 100 * time.Millisecond}}
	return spec
}

// TestExactlyOnceSetQuiet: a statement set exactly once with state whose
// processing-time windows close by the clock after the input went quiet
// commits their rows: the set's transaction ends every checkpoint
// interval, records read in it or not (Options.Rounds).
func TestExactlyOnceSetQuiet(t *testing.T) {
	brokers := cluster(t, 2, "in", "copy", "state")
	const n = 200
	produce(t, brokers, "in", keyedInput(n, 4)...)
	spec := roundSet(brokers, "SELECT k, count(*) AS n FROM TUMBLE(t, PROCTIME(), INTERVAL '1' SECOND) GROUP BY window_start, window_end, k")
	_, stop := run(t, spec, "round-quiet")
	consume(t, brokers, "copy", n, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	// Every key's window closes within a second or two.
	time.Sleep(3 * time.Second)
	uncommitted := readAll(t, brokers, "state", 1)
	committed := readAll(t, brokers, "state", 0, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if len(committed) == 0 {
		t.Errorf("%d window rows written, none committed 3s after the input went quiet", len(uncommitted))
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestExactlyOnceSetStops: a statement set exactly once with state stops
// gracefully, in time, whenever the stop comes, a round ending or not,
// under a steady input: the stateful statement's last checkpoint, of no
// round, waits for none (a round whose records the lanes still hold, which
// the set's readers no longer take, would never end), and the last
// transaction commits or aborts as it holds every record read or not.
func TestExactlyOnceSetStops(t *testing.T) {
	brokers := cluster(t, 2, "in", "copy", "state")
	spec := roundSet(brokers, "SELECT k, count(*) AS n FROM t GROUP BY k")
	spec.Runtime.ShutdownTimeout = &metav1.Duration{Duration: 5 * time.Second}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic("in"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			cl.ProduceSync(context.Background(), keyedInput(1000, 40)...)
		}
	})
	defer func() { close(done); wg.Wait() }()
	for i := range 8 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			p, stop := run(t, spec, "round-stop")
			time.Sleep(time.Duration(300+i*37) * time.Millisecond)
			t.Logf("before stop: %+v", p.Snapshot().Counts)
			start := time.Now()
			err := stop()
			t.Logf("stopped in %v: %v", time.Since(start), err)
			if err != nil {
				t.Errorf("graceful stop: %v", err)
			}
		})
	}
}
