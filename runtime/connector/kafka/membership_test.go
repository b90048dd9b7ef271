package kafka_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/connector/bundle"
	"github.com/sluice-dev/sluice/runtime/pipeline"
)

// TestLagAfterRestart: an engine restarted on a group that has committed
// every offset but one new record reports a lag of that one record, and the
// group's committed offsets, from its first report that covers every
// partition: not the partitions' whole sizes, and, with startOffset latest,
// not nothing either.
func TestLagAfterRestart(t *testing.T) {
	for _, start := range []string{"earliest", "latest"} {
		t.Run(start, func(t *testing.T) { lagAfterRestart(t, start) })
	}
}

func lagAfterRestart(t *testing.T, start string) {
	brokers := cluster(t, 4, "in", "out")
	spec := func() *v1alpha1.StreamQuerySpec {
		s := kafkaSpec(brokers, "in", "out", "SELECT id, k, seq FROM t")
		s.Sources[0].Kafka.StartOffset = start
		return s
	}
	const n = 20_000
	_, stop := run(t, spec(), "lag")
	time.Sleep(time.Second) // with startOffset latest, the group starts at the end: join first
	produce(t, brokers, "in", keyedInput(n, 40)...)
	consume(t, brokers, "out", n)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	committedAll(t, brokers, "lag", "in")
	produce(t, brokers, "in", &kgo.Record{Key: []byte("k00"), Value: []byte(`{"id":20000,"k":"k00","seq":501}`)})

	p, stop := run(t, spec(), "lag")
	defer stop()
	reports := 0
	deadline := time.Now().Add(30 * time.Second)
	for {
		snap := p.Snapshot()
		if snap.Counts.Out > 0 {
			if reports == 0 {
				// On a loaded machine the record can be written before the
				// brokers answered the engine's first questions.
				t.Log("the new record was written before a report covered every partition: nothing to check")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %d complete reports and %d records out: no lag of every partition, or no output", reports, snap.Counts.Out)
		}
		total, complete := int64(0), len(snap.Sources) == 4
		for _, s := range snap.Sources {
			complete = complete && s.Lag >= 0
			total += max(s.Lag, 0)
		}
		if complete && snap.Counts.Out == 0 {
			// Until it is written, the new record is the whole lag.
			reports++
			if total != 1 {
				t.Fatalf("report %d after the restart, before the new record was written: lag %d (%+v); want the 1 new record", reports, total, snap.Sources)
			}
			for _, s := range snap.Sources {
				if s.Committed < 0 {
					t.Fatalf("partition %d reports committed %d; want the group's committed offset", s.Partition, s.Committed)
				}
			}
		}
		time.Sleep(time.Millisecond)
	}
	t.Logf("%d complete reports before the record was written", reports)
}

// TestStaticMemberLeaves: an engine that is a static member of its group
// (a pod, named) gives its partitions up when it stops gracefully, at once,
// not after the session timeout: a stopped engine is not coming back under
// its name.
func TestStaticMemberLeaves(t *testing.T) {
	brokers := cluster(t, 4, "in", "out")
	spec := func() *v1alpha1.StreamQuerySpec {
		s := kafkaSpec(brokers, "in", "out", "SELECT id, k, seq FROM t")
		s.Sources[0].Kafka.SessionTimeout = &metav1.Duration{Duration: 60 * time.Second}
		return s
	}
	start := func(instance string) (*pipeline.Pipeline, func() error) {
		p, err := pipeline.New(spec(), pipeline.Options{Connectors: bundle.All(), Group: "static", Instance: instance, StaticMembership: true})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- p.Run(context.Background()) }()
		stopped := false
		stop := func() error {
			if stopped {
				return nil
			}
			stopped = true
			p.Stop()
			return <-done
		}
		t.Cleanup(func() { stop() })
		return p, stop
	}
	assigned := func(p *pipeline.Pipeline) int {
		n := 0
		for _, s := range p.Snapshot().Sources {
			if s.Lag >= 0 {
				n++
			}
		}
		return n
	}
	a, stopA := start("engine-a")
	b, _ := start("engine-b")
	waitShared(t, brokers, "static")
	if err := stopA(); err != nil {
		t.Fatal(err)
	}
	left := time.Now()
	// Without leaving, the group would wait the 60s session timeout for a.
	for assigned(b) != 4 {
		if time.Since(left) > 30*time.Second {
			t.Fatalf("30s after engine a stopped, engine b has %d of the 4 partitions (a had %d)", assigned(b), assigned(a))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("engine b had every partition %s after engine a stopped", time.Since(left).Round(time.Millisecond))
}
