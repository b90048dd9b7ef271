package kafka_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/goleak"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/connector/bundle"
	"github.com/sluice-dev/sluice/runtime/pipeline"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/twmb/franz-go/pkg/kfake.(*Cluster).run"))
}

// cluster starts a Kafka wire-protocol cluster on 127.0.0.1 (kfake), or uses
// the real one KAFKA_BROKERS names, and creates the topics.
func cluster(t *testing.T, partitions int32, topics ...string) []string {
	t.Helper()
	if env := os.Getenv("KAFKA_BROKERS"); env != "" {
		brokers := strings.Split(env, ",")
		cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		adm := kadm.NewClient(cl)
		for i := range topics {
			topics[i] = fmt.Sprintf("%s-%d", topics[i], time.Now().UnixNano())
		}
		if _, err := adm.CreateTopics(context.Background(), partitions, 1, nil, topics...); err != nil {
			t.Fatal(err)
		}
		return brokers
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

func produce(t *testing.T, brokers []string, topic string, recs ...*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// consume reads n records from topic, or fails after a while.
func consume(t *testing.T, brokers []string, topic string, n int, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(append(opts, kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records from %s", len(out), n, topic)
		}
		out = append(out, fs.Records()...)
	}
	return out
}

// headersOf is a record's headers by key, each as text.
func headersOf(r *kgo.Record) map[string]string {
	h := map[string]string{}
	for _, kv := range r.Headers {
		h[kv.Key] = string(kv.Value)
	}
	return h
}

// run runs spec until stop is called; stop returns Run's error.
func run(t *testing.T, spec *v1alpha1.StreamQuerySpec, group string) (*pipeline.Pipeline, func() error) {
	t.Helper()
	return runInstance(t, spec, group, "")
}

// runInstance is run for one of several engines of a query.
func runInstance(t *testing.T, spec *v1alpha1.StreamQuerySpec, group, instance string) (*pipeline.Pipeline, func() error) {
	t.Helper()
	var logger *slog.Logger
	if os.Getenv("SLUICE_TEST_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("instance", instance)
	}
	p, err := pipeline.New(spec, pipeline.Options{Connectors: bundle.All(), Group: group, Instance: instance, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Run(context.Background()) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			p.Stop()
			select {
			case runErr = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("the pipeline did not stop")
			}
		})
		return runErr
	}
	t.Cleanup(func() { stop() })
	return p, stop
}

func kafkaSpec(brokers []string, in, out, query string) *v1alpha1.StreamQuerySpec {
	return &v1alpha1.StreamQuerySpec{
		Sources: []v1alpha1.Source{{
			Name:   "t",
			Kafka:  &v1alpha1.KafkaSource{Brokers: brokers, Topic: in},
			Schema: []v1alpha1.Column{{Name: "id", Type: "int"}, {Name: "k", Type: "string"}, {Name: "seq", Type: "int"}},
		}},
		Query:   query,
		Sink:    &v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: brokers, Topic: out, Key: "k"}},
		Runtime: v1alpha1.RuntimeSpec{Parallelism: 4, ChannelCapacity: 2, BatchSize: 64},
	}
}

// committedAll checks that the group's committed offsets reach the
// topic's end offsets.
func committedAll(t *testing.T, brokers []string, group, topic string) {
	t.Helper()
	for _, behind := range uncommitted(t, brokers, group, topic) {
		t.Error(behind)
	}
}

// committed says the group's committed offsets reach the topic's end
// offsets.
func committed(t *testing.T, brokers []string, group, topic string) bool {
	t.Helper()
	return len(uncommitted(t, brokers, group, topic)) == 0
}

// uncommitted says of each partition of topic whose group's committed
// offset is not its end offset where each is.
func uncommitted(t *testing.T, brokers []string, group, topic string) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx := context.Background()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	var behind []string
	ends.Each(func(end kadm.ListedOffset) {
		c, ok := committed.Lookup(topic, end.Partition)
		if end.Offset > 0 && (!ok || c.At != end.Offset) {
			behind = append(behind, fmt.Sprintf("partition %d: committed %v; want the end offset %d", end.Partition, c.At, end.Offset))
		}
	})
	return behind
}

// TestOrderingAndCommit: 8 partitions, 50 keys, 4 workers: every record
// arrives in the output topic, in order per key; after a graceful stop the
// group has committed every offset.
func TestOrderingAndCommit(t *testing.T) {
	brokers := cluster(t, 8, "in", "out")
	const n, keys = 4000, 50
	recs := keyedInput(n, keys)
	produce(t, brokers, "in", recs...)
	p, stop := run(t, kafkaSpec(brokers, "in", "out", "SELECT id, k, seq, _partition AS p FROM t WHERE seq > 0"), "ordering")
	out := consume(t, brokers, "out", n)
	// Once everything is written, no partition lags.
	deadline := time.Now().Add(10 * time.Second)
	for {
		lagging := 0
		for _, src := range p.Snapshot().Sources {
			if src.Lag != 0 {
				lagging++
			}
		}
		if lagging == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("partitions still lagging: %+v", p.Snapshot().Sources)
		}
		time.Sleep(50 * time.Millisecond)
	}
	ids := checkPerKeyOrder(t, out)
	if len(ids) != n {
		t.Errorf("%d distinct ids in the output; want %d", len(ids), n)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	committedAll(t, brokers, "ordering", "in")
}

// TestPoisonRecords: undecodable values go to the dead-letter topic with
// their coordinates in headers; the rest goes on, and offsets still advance.
func TestPoisonRecords(t *testing.T) {
	brokers := cluster(t, 2, "in", "out", "dlq")
	var recs []*kgo.Record
	bad := 0
	for i := range 200 {
		v := fmt.Appendf(nil, `{"id":%d,"k":"k%d","seq":1}`, i, i%7)
		switch {
		case i%20 == 0:
			v = []byte(`{"id": "not a number"}`)
			bad++
		case i%33 == 0:
			v = []byte{0xff, 0x00, 'x'}
			bad++
		}
		recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "k%d", i%7), Value: v})
	}
	produce(t, brokers, "in", recs...)
	spec := kafkaSpec(brokers, "in", "out", "SELECT id, k FROM t")
	spec.ErrorPolicy = v1alpha1.ErrorPolicy{Strategy: v1alpha1.DeadLetter, DeadLetter: &v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: brokers, Topic: "dlq"}}}
	p, stop := run(t, spec, "poison")
	consume(t, brokers, "out", 200-bad)
	dead := consume(t, brokers, "dlq", bad)
	for _, r := range dead {
		h := headersOf(r)
		if h["sluice.stage"] != "decode" || h["sluice.original.topic"] != "in" || h["sluice.original.offset"] == "" ||
			h["sluice.correlation_id"] == "" || !strings.Contains(h["sluice.error"], "offset") || len(h["traceparent"]) != 55 {
			t.Errorf("dead letter headers %v", h)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if c := p.Snapshot().Counts; c.DeadLettered != int64(bad) || c.Out != int64(200-bad) || c.InFlight != 0 {
		t.Errorf("counts %+v; want %d dead-lettered, %d out", c, bad, 200-bad)
	}
	committedAll(t, brokers, "poison", "in")
}

// TestSeveralTopics: one source reads two topics as one stream. Every record
// of both arrives once, per-key order holds, /status names each partition's
// topic, and both topics' offsets are committed.
func TestSeveralTopics(t *testing.T) {
	brokers := cluster(t, 2, "a", "b", "out")
	const n = 3000
	a, b := keyedInput(n, 20), keyedInput(n, 10)
	for _, r := range b {
		// Other keys and ids than a's, in the same shape.
		var v struct {
			ID  int    `json:"id"`
			K   string `json:"k"`
			Seq int    `json:"seq"`
		}
		if err := json.Unmarshal(r.Value, &v); err != nil {
			t.Fatal(err)
		}
		r.Key = []byte("b" + v.K)
		r.Value = fmt.Appendf(nil, `{"id":%d,"k":"b%s","seq":%d}`, n+v.ID, v.K, v.Seq)
	}
	produce(t, brokers, "a", a...)
	produce(t, brokers, "b", b...)
	spec := kafkaSpec(brokers, "", "out", "SELECT id, k, seq FROM t")
	spec.Sources[0].Kafka.Topic, spec.Sources[0].Kafka.Topics = "", []string{"a", "b"}
	p, stop := run(t, spec, "several")
	ids := checkPerKeyOrder(t, consume(t, brokers, "out", 2*n))
	for id := range 2 * n {
		if ids[id] != 1 {
			t.Errorf("id %d written %d times; want once", id, ids[id])
		}
	}
	topics := map[string]int{}
	for _, part := range p.Snapshot().Sources {
		topics[part.Topic]++
	}
	if topics["a"] != 2 || topics["b"] != 2 || len(topics) != 2 {
		t.Errorf("status partitions by topic %v; want 2 of a and 2 of b", topics)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	committedAll(t, brokers, "several", "a")
	committedAll(t, brokers, "several", "b")
}

// TestTraceparentPassesThrough: with tracing off, records that arrive with a
// traceparent header leave with the same one, and records without one leave
// without: the random trace context that ties the engine's own logs and dead
// letters together is not sent downstream.
func TestTraceparentPassesThrough(t *testing.T) {
	brokers := cluster(t, 1, "plain", "traced", "plain-out", "traced-out")
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	var plain, traced []*kgo.Record
	for i := range 300 {
		v := fmt.Appendf(nil, `{"id":%d,"k":"k%d","seq":1}`, i, i%7)
		plain = append(plain, &kgo.Record{Value: v})
		traced = append(traced, &kgo.Record{Value: v, Headers: []kgo.RecordHeader{{Key: "traceparent", Value: []byte(tp)}}})
	}
	produce(t, brokers, "plain", plain...)
	produce(t, brokers, "traced", traced...)
	for _, in := range []string{"plain", "traced"} {
		p, stop := run(t, kafkaSpec(brokers, in, in+"-out", "SELECT id, k FROM t"), "trace-"+in)
		for _, r := range consume(t, brokers, in+"-out", 300) {
			var got []string
			for _, h := range r.Headers {
				if h.Key == "traceparent" {
					got = append(got, string(h.Value))
				}
			}
			if want := map[string][]string{"traced": {tp}}[in]; !slices.Equal(got, want) {
				t.Fatalf("%s: a record written with traceparent headers %q; want %q", in, got, want)
			}
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if traced := p.Snapshot().Traced; traced != 0 {
			t.Errorf("%s: %d records counted as traced; want 0: with tracing off the engine records no span", in, traced)
		}
	}
}

// TestStartOffsetTime: a group without a committed offset and a startOffset
// time starts each partition at its first record at or after that time.
func TestStartOffsetTime(t *testing.T) {
	brokers := cluster(t, 2, "in", "out")
	t0 := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
	var recs []*kgo.Record
	for i := range 20 {
		recs = append(recs, &kgo.Record{
			Key: fmt.Appendf(nil, "k%d", i%2), Timestamp: t0.Add(time.Duration(i) * time.Minute),
			Value: fmt.Appendf(nil, `{"id":%d,"k":"k%d","seq":1}`, i, i%2),
		})
	}
	produce(t, brokers, "in", recs...)
	spec := kafkaSpec(brokers, "in", "out", "SELECT id, k FROM t")
	spec.Sources[0].Kafka.StartOffset = t0.Add(15 * time.Minute).Format(time.RFC3339)
	p, stop := run(t, spec, "start-time")
	var ids []int
	for _, r := range consume(t, brokers, "out", 5) {
		var row struct{ ID int }
		if err := json.Unmarshal(r.Value, &row); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, row.ID)
	}
	time.Sleep(200 * time.Millisecond) // a record before the time would come now
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []int{15, 16, 17, 18, 19}) || p.Snapshot().Counts.In != 5 {
		t.Errorf("read ids %v (%d records in); want 15 to 19, written from 00:15 on", ids, p.Snapshot().Counts.In)
	}
}

// TestRetryWritesFailedRowsOnly: the broker rejects the first produce
// requests for one output partition (a non-retriable error, so the producer
// gives up their records and the later ones of that partition it holds).
// The pipeline retries only the rows that failed: every record arrives
// exactly once, and the keys of the other partition, whose rows a whole-batch
// retry would write again after later ones, keep their order. (The retried
// partition's order is not checked: a write that starts in the moment
// before the producer reports the failure can get ahead of the retry, which
// TestAsyncSinkHold covers in the pipeline.) kfake only: the failure is
// injected at the broker.
func TestRetryWritesFailedRowsOnly(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "in"), kfake.SeedTopics(2, "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	rejected := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: "out", Partitions: []int32{1}, Err: kerr.InvalidRecord, Count: 3})
	const n, keys = 3000, 20
	produce(t, brokers, "in", keyedInput(n, keys)...)
	spec := kafkaSpec(brokers, "in", "out", "SELECT id, k, seq FROM t")
	spec.ErrorPolicy.RetryBackoff = &metav1.Duration{Duration: 10 * time.Millisecond}
	p, stop := run(t, spec, "retry")
	out := consume(t, brokers, "out", n)
	var steady []*kgo.Record // the partition that took every write
	ids := map[string]int{}
	for _, r := range out {
		if r.Partition == 0 {
			steady = append(steady, r)
		}
		ids[string(r.Value)]++
	}
	for v, count := range ids {
		if count != 1 {
			t.Errorf("%s written %d times", v, count)
		}
	}
	if len(steady) == 0 || len(steady) == n {
		t.Fatalf("%d of %d records in partition 0; want the keys spread over both", len(steady), n)
	}
	checkPerKeyOrder(t, steady)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if snap := p.Snapshot(); rejected.Hits() != 3 || snap.Counts.Retries == 0 || snap.Counts.Out != n || snap.Counts.DeadLettered+snap.Counts.Skipped+snap.Counts.Failed != 0 {
		t.Errorf("%d requests rejected, %d retries, counts %+v; want 3 rejected, retries, all %d out", rejected.Hits(), snap.Counts.Retries, snap.Counts, n)
	}
}

// TestWriteFailureDeadLetters: one output partition rejects every write.
// After the retries, exactly its rows go to the dead-letter topic, and the
// rows of the other partition are written once: no row is both written and
// dead-lettered. kfake only, as TestRetryWritesFailedRowsOnly.
func TestWriteFailureDeadLetters(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "in", "dlq"), kfake.SeedTopics(2, "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: "out", Partitions: []int32{1}, Err: kerr.InvalidRecord, Count: -1})
	const n, keys = 2000, 20
	produce(t, brokers, "in", keyedInput(n, keys)...)
	spec := kafkaSpec(brokers, "in", "out", "SELECT id, k, seq FROM t")
	retries := int32(1)
	spec.ErrorPolicy = v1alpha1.ErrorPolicy{
		Strategy: v1alpha1.DeadLetter, MaxRetries: &retries, RetryBackoff: &metav1.Duration{Duration: time.Millisecond},
		DeadLetter: &v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: brokers, Topic: "dlq"}},
	}
	p, stop := run(t, spec, "write-failure")
	deadline := time.Now().Add(30 * time.Second)
	for p.Snapshot().Counts.InFlight != 0 || p.Snapshot().Counts.In != n {
		if time.Now().After(deadline) {
			t.Fatalf("counts %+v", p.Snapshot().Counts)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	counts := p.Snapshot().Counts
	if counts.Out == 0 || counts.DeadLettered == 0 || counts.Out+counts.DeadLettered != n {
		t.Fatalf("counts %+v; want the %d records split between out and dead-lettered", counts, n)
	}
	written := map[string]bool{}
	for _, r := range consume(t, brokers, "out", int(counts.Out)) {
		if r.Partition != 0 {
			t.Fatalf("a record in partition %d, which rejects every write", r.Partition)
		}
		written[string(r.Key)] = true
	}
	for _, r := range consume(t, brokers, "dlq", int(counts.DeadLettered)) {
		var v struct{ K string }
		if err := json.Unmarshal(r.Value, &v); err != nil {
			t.Fatal(err)
		}
		if written[v.K] {
			t.Fatalf("key %s both written and dead-lettered: its partition takes writes", v.K)
		}
	}
}

// TestProducerSettings: the sink's batches carry the codec configured, and
// snappy when none is.
func TestProducerSettings(t *testing.T) {
	brokers := cluster(t, 1, "in", "default-out", "lz4-out", "none-out")
	var recs []*kgo.Record
	for i := range 200 {
		recs = append(recs, &kgo.Record{Value: fmt.Appendf(nil, `{"id":%d,"k":"some text that compresses, some text that compresses","seq":1}`, i)})
	}
	produce(t, brokers, "in", recs...)
	for _, tc := range []struct {
		codec v1alpha1.Compression
		want  uint8 // the record batch attributes' codec number
	}{{"", 2}, {v1alpha1.CompressionLZ4, 3}, {v1alpha1.CompressionNone, 0}} {
		out := cmp.Or(string(tc.codec), "default") + "-out"
		spec := kafkaSpec(brokers, "in", out, "SELECT id, k FROM t")
		spec.Sink.Kafka.Compression = tc.codec
		spec.Sink.Kafka.Linger = &metav1.Duration{Duration: 20 * time.Millisecond} // batches of several records
		_, stop := run(t, spec, "producer-"+out)
		for _, r := range consume(t, brokers, out, 200) {
			if got := r.Attrs.CompressionType(); got != tc.want {
				t.Fatalf("compression %q: a record came in a batch of codec %d; want %d", tc.codec, got, tc.want)
			}
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRebalance: a second engine joins the group in the middle of a run and
// later leaves. Revoked partitions are drained and committed before they
// move, so nothing is lost or written twice, and per-key order holds in the
// output topic.
func TestRebalance(t *testing.T) {
	brokers := cluster(t, 8, "in", "out")
	const n, keys = 30_000, 40
	recs := keyedInput(n, keys)
	spec := func() *v1alpha1.StreamQuerySpec {
		s := kafkaSpec(brokers, "in", "out", "SELECT id, k, seq FROM t")
		s.Sources[0].Kafka.SessionTimeout = &metav1.Duration{Duration: 6 * time.Second}
		return s
	}
	// The input arrives in three parts: before the second engine, while both
	// run, after it left.
	produce(t, brokers, "in", recs[:n/3]...)
	p1, stop1 := run(t, spec(), "rebalance")
	consume(t, brokers, "out", n/6)
	p2, stop2 := run(t, spec(), "rebalance")
	waitShared(t, brokers, "rebalance")
	deadline := time.Now().Add(30 * time.Second)
	produce(t, brokers, "in", recs[n/3:2*n/3]...)
	for p2.Snapshot().Counts.Out == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if p2.Snapshot().Counts.Out == 0 {
		t.Fatal("the second engine wrote nothing from its partitions")
	}
	if err := stop2(); err != nil {
		t.Fatal(err)
	}
	produce(t, brokers, "in", recs[2*n/3:]...)
	out := consume(t, brokers, "out", n)
	if err := stop1(); err != nil {
		t.Fatal(err)
	}
	ids := checkPerKeyOrder(t, out)
	if len(ids) != n || len(out) != n {
		t.Errorf("%d records, %d distinct ids; want %d of each", len(out), len(ids), n)
	}
	t.Logf("engine 1 wrote %d, engine 2 wrote %d", p1.Snapshot().Counts.Out, p2.Snapshot().Counts.Out)
}

// waitShared waits until group has two members that share the partitions.
func waitShared(t *testing.T, brokers []string, group string) {
	t.Helper()
	admCl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	shared := func() bool {
		groups, err := adm.DescribeGroups(context.Background(), group)
		if err != nil {
			return false
		}
		g := groups[group]
		if len(g.Members) != 2 {
			return false
		}
		for _, m := range g.Members {
			a, ok := m.Assigned.AsConsumer()
			if !ok || len(a.Topics) == 0 || len(a.Topics[0].Partitions) == 0 {
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(30 * time.Second)
	for !shared() && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if !shared() {
		t.Fatal("the second engine never got partitions")
	}
}

// keyedInput makes n records over keys keys, each value carrying its id, its
// key and its sequence number within the key.
func keyedInput(n, keys int) []*kgo.Record {
	seq := map[string]int{}
	recs := make([]*kgo.Record, 0, n)
	for i := range n {
		k := fmt.Sprintf("k%02d", i%keys)
		seq[k]++
		recs = append(recs, &kgo.Record{Key: []byte(k), Value: fmt.Appendf(nil, `{"id":%d,"k":"%s","seq":%d}`, i, k, seq[k])})
	}
	return recs
}

// checkPerKeyOrder checks that output records of keyedInput are keyed by
// their key and in sequence order per key, and counts each id.
func checkPerKeyOrder(t *testing.T, out []*kgo.Record) map[int]int {
	t.Helper()
	last := map[string]int{}
	ids := map[int]int{}
	for _, r := range out {
		var v struct {
			ID  int    `json:"id"`
			K   string `json:"k"`
			Seq int    `json:"seq"`
		}
		if err := json.Unmarshal(r.Value, &v); err != nil {
			t.Fatalf("output %q: %v", r.Value, err)
		}
		if string(r.Key) != v.K {
			t.Errorf("record key %q, value key %q", r.Key, v.K)
		}
		if v.Seq <= last[v.K] {
			t.Fatalf("key %s: seq %d after %d", v.K, v.Seq, last[v.K])
		}
		last[v.K] = v.Seq
		ids[v.ID]++
	}
	return ids
}

// TestJSONSchemaKafka: a Kafka source's jsonSchema checks each value; one
// that breaks it is a dead letter naming the place, the others results.
func TestJSONSchemaKafka(t *testing.T) {
	topics := []string{"payments", "out", "dlq"}
	brokers := cluster(t, 1, topics...)
	produce(t, brokers, topics[0],
		&kgo.Record{Value: []byte(`{"account":7,"amount":2.5}`)},
		&kgo.Record{Value: []byte(`{"account":"8","amount":3}`)},
	)
	spec := &v1alpha1.StreamQuerySpec{
		Sources: []v1alpha1.Source{{Name: "payments", Kafka: &v1alpha1.KafkaSource{Brokers: brokers, Topic: topics[0]},
			Schema:     []v1alpha1.Column{{Name: "account", Type: "int"}, {Name: "amount", Type: "double"}},
			JSONSchema: `{"properties": {"account": {"type": "integer"}}}`}},
		Query:       "SELECT account, amount FROM payments",
		Sink:        &v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: brokers, Topic: topics[1]}},
		ErrorPolicy: v1alpha1.ErrorPolicy{Strategy: v1alpha1.DeadLetter, DeadLetter: &v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: brokers, Topic: topics[2]}}},
	}
	_, stop := run(t, spec, "json-schema")
	out := consume(t, brokers, topics[1], 1)
	dead := consume(t, brokers, topics[2], 1)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if string(out[0].Value) != `{"account":7,"amount":2.5}` {
		t.Errorf("result %s; want the payment that satisfies the schema", out[0].Value)
	}
	if h := headersOf(dead[0]); !strings.Contains(h["sluice.error"], "jsonSchema: at '/account': got string, want integer") || h["sluice.stage"] != "decode" {
		t.Errorf("dead letter headers %v; want the schema's violation at stage decode", h)
	}
}
