package kafka_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// TestExactlyOnceRebalance runs an exactly-once query whose group
// rebalances twice while transactions are open: a second engine joins in the
// middle of the run and leaves again. Transactions open across a rebalance
// abort and their records are written again, so a read_committed reader
// sees every result, and every dead letter, exactly once, in per-key order.
// A statement set does as a query: its statements that write exactly once
// (all ids; the even ones) write in the transactions of its source, as do
// its dead letters, and one that writes at least once (the odd ones) writes
// outside them, each id at least once.
func TestExactlyOnceRebalance(t *testing.T) {
	for _, set := range []bool{false, true} {
		name := "query"
		if set {
			name = "statement set"
		}
		t.Run(name, func(t *testing.T) { exactlyOnceRebalance(t, set) })
	}
}

func exactlyOnceRebalance(t *testing.T, set bool) {
	brokers := cluster(t, 8, "in", "out", "evens", "odds", "dlq")
	const n, keys = 6000, 30
	recs := keyedInput(n, keys)
	bad := 0
	for i, r := range recs {
		if i%97 == 5 {
			r.Value = []byte(`{"id": "poison"}`)
			bad++
		}
	}
	spec := func() *v1alpha1.StreamQuerySpec {
		s := kafkaSpec(brokers, "in", "out", "SELECT id, k, seq FROM t")
		s.Sources[0].Kafka.SessionTimeout = &metav1.Duration{Duration: 6 * time.Second}
		s.Sink.Kafka.Delivery = v1alpha1.ExactlyOnce
		s.Sink.Kafka.TransactionInterval = &metav1.Duration{Duration: 50 * time.Millisecond}
		s.ErrorPolicy = v1alpha1.ErrorPolicy{Strategy: v1alpha1.DeadLetter, DeadLetter: &v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: brokers, Topic: "dlq"}}}
		if set {
			evens, odds := *s.Sink.Kafka, v1alpha1.KafkaSink{Brokers: brokers, Topic: "odds", Key: "k"}
			evens.Topic = "evens"
			s.Statements = []v1alpha1.Statement{
				{Name: "odds", Query: "SELECT id, k, seq FROM t WHERE id % 2 = 1", Sink: v1alpha1.Sink{Kafka: &odds}},
				{Name: "all", Query: s.Query, Sink: *s.Sink},
				{Name: "evens", Query: "SELECT id, k, seq FROM t WHERE id % 2 = 0", Sink: v1alpha1.Sink{Kafka: &evens}},
			}
			s.Query, s.Sink = "", nil
		}
		return s
	}
	committed := kgo.FetchIsolationLevel(kgo.ReadCommitted())

	produce(t, brokers, "in", recs[:n/2]...)
	p1, stop1 := runInstance(t, spec(), "eos", "a")
	consume(t, brokers, "out", n/10, committed)
	p2, stop2 := runInstance(t, spec(), "eos", "b")
	waitShared(t, brokers, "eos")
	produce(t, brokers, "in", recs[n/2:]...)
	deadline := time.Now().Add(30 * time.Second)
	for p2.Snapshot().Counts.Out == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if err := stop2(); err != nil {
		t.Fatal(err)
	}
	out := consume(t, brokers, "out", n-bad, committed)
	dead := consume(t, brokers, "dlq", bad, committed)
	if err := stop1(); err != nil {
		t.Fatal(err)
	}
	// Anything beyond the expected counts would be a duplicate: read on a
	// little after both engines committed their last transaction.
	out = readAll(t, brokers, "out", len(out), committed)
	dead = readAll(t, brokers, "dlq", len(dead), committed)
	ids := checkPerKeyOrder(t, out)
	if len(out) != n-bad || len(ids) != n-bad {
		t.Errorf("%d results with %d distinct ids; want %d of each", len(out), len(ids), n-bad)
	}
	if len(dead) != bad {
		t.Errorf("%d dead letters; want %d", len(dead), bad)
	}
	for _, r := range dead {
		if !strings.Contains(string(r.Value), "poison") {
			t.Errorf("dead letter %q is not a poison record", r.Value)
		}
	}
	transactional(t, "out", out, true)
	transactional(t, "dlq", dead, true)
	if set {
		evens := readAll(t, brokers, "evens", 1, committed)
		ids := checkPerKeyOrder(t, evens)
		for id := range ids {
			if id%2 != 0 {
				t.Errorf("id %d in evens", id)
			}
		}
		if want := len(out) - len(out)/2; len(evens) != len(ids) || len(ids) < want-1 || len(ids) > want+1 {
			t.Errorf("%d evens with %d distinct ids; want about %d, each once", len(evens), len(ids), want)
		}
		transactional(t, "evens", evens, true)
		// At least once: the odd ids of aborted transactions are there
		// too, each at least once, written again after ids after them.
		odds := readAll(t, brokers, "odds", 1)
		oddIDs := map[int]bool{}
		for _, r := range odds {
			var v struct{ ID int }
			if err := json.Unmarshal(r.Value, &v); err != nil || v.ID%2 != 1 {
				t.Fatalf("odds: %q (%v)", r.Value, err)
			}
			oddIDs[v.ID] = true
		}
		if len(oddIDs)+len(evens) != len(out) {
			t.Errorf("%d distinct odd ids and %d even; want %d in all", len(oddIDs), len(evens), len(out))
		}
		transactional(t, "odds", odds, false)
	}
	// Uncommitted writes of aborted transactions are in the log too; a
	// read_uncommitted reader sees them. Their count shows the test did
	// exercise aborts (it is not asserted: a rebalance may fall between two
	// transactions).
	all := readAll(t, brokers, "out", len(out))
	t.Logf("engine 1 wrote %d, engine 2 wrote %d; %d committed results, %d records in the log including aborted ones",
		p1.Snapshot().Counts.Out, p2.Snapshot().Counts.Out, len(out), len(all))
}

// transactional checks that the records read from topic were, or were
// not, written in transactions.
func transactional(t *testing.T, topic string, recs []*kgo.Record, want bool) {
	t.Helper()
	for _, r := range recs {
		if r.Attrs.IsTransactional() != want {
			t.Fatalf("a record of %s (%q) written in a transaction: %v; want %v", topic, r.Value, r.Attrs.IsTransactional(), want)
		}
	}
}

// readAll reads a topic to its end, which is past atLeast records: those
// the caller read already.
func readAll(t *testing.T, brokers []string, topic string, atLeast int, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(append(opts, kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	// Until the records known to be there are read, a fetch may wait (a
	// loaded machine, the client finding the brokers); after them, a quiet
	// half second is the end.
	for {
		wait := 500 * time.Millisecond
		if len(out) < atLeast {
			wait = 10 * time.Second
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		fs := cl.PollFetches(ctx)
		cancel()
		if ctx.Err() != nil && len(fs.Records()) == 0 {
			return out
		}
		out = append(out, fs.Records()...)
	}
}
