package kafka

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/connector"
	"github.com/sluice-dev/sluice/runtime/connector/schemas"
	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/value"
)

// TestPartitionAdded: records in a partition added to the topic after the
// source opened stop it with an error that says what to do, rather than
// waiting unread with no member of the group to read them. The offset where
// the new partition's records begin is committed, so that a restart reads
// them whole even with startOffset latest.
func TestPartitionAdded(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "grow"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic("grow"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(`{"id":1}`)}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	cols := append([]value.Column{{Name: "id", Type: value.Int}}, schemas.KafkaMeta...)
	src, err := Open(&v1alpha1.KafkaSource{Brokers: brokers, Topic: "grow"}, "t", v1alpha1.FormatJSON, cols,
		Options{Group: "grow", MetadataMaxAge: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var closeOnce sync.Once
	closeSource := func() { closeOnce.Do(func() { src.Close() }) }
	defer closeSource()
	lane := src.Lanes()[0]
	var b message.Batch
	var errs message.ErrorBatch
	b.Reset(len(cols))
	if err := lane.Read(ctx, &b, 10, 10*time.Millisecond, &errs); err != nil || b.Len() != 1 {
		t.Fatalf("first read: %d rows, %v; want the one record", b.Len(), err)
	}
	b.Origin = lane.Origin()
	b.Ack()

	if _, err := kadm.NewClient(cl).CreatePartitions(ctx, 1, "grow"); err != nil {
		t.Fatal(err)
	}
	// The producer knows of the new partition after a metadata refresh.
	for {
		err := cl.ProduceSync(ctx, &kgo.Record{Partition: 1, Value: []byte(`{"id":2}`)}).FirstErr()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatal(err)
		}
		cl.ForceMetadataRefresh()
		time.Sleep(50 * time.Millisecond)
	}
	for {
		b.Reset(len(cols))
		err := lane.Read(ctx, &b, 10, 10*time.Millisecond, &errs)
		if err != nil {
			if !strings.Contains(err.Error(), "partition 1, added after the engine started; restart the engine") {
				t.Fatalf("the source stopped with %q; want it to name the new partition and the remedy", err)
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the source read on while a partition it has no lane for had records")
		}
	}
	closeSource()
	committed, err := kadm.NewClient(cl).FetchOffsets(context.Background(), "grow")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := committed.Lookup("grow", 0); !ok || o.At != 1 {
		t.Errorf("partition 0: committed %v; want 1, after the record acknowledged", o.At)
	}
	if o, ok := committed.Lookup("grow", 1); !ok || o.At != 0 {
		t.Errorf("partition 1: committed %v (%v); want 0, where its records begin", o.At, ok)
	}
}

// TestStaleAcknowledgement: an acknowledgement of records read before the
// partition last moved is dropped. The partition, assigned here again, is
// read again from its commit; taken, the acknowledgement would pass the
// records fetched since, and a commit (or an exactly-once transaction's
// end, which waits for them) would count them handled before they are.
func TestStaleAcknowledgement(t *testing.T) {
	s := &Source{assigned: map[int32]bool{0: true}, acked: map[int32]int64{}, fetched: map[int32]int64{0: 50}}
	l := &Lane{src: s, origin: &message.Origin{Source: "t", Partition: 0}}
	l.origin.Generation.Store(2)
	l.acked(message.Ack{Origin: l.origin, Generation: 1, LastOffset: 99})
	if got := s.acked[0]; got != 0 {
		t.Fatalf("an acknowledgement of generation 1 in generation 2 set the partition's next offset to %d", got)
	}
	if s.drained(nil) {
		t.Error("the records fetched in generation 2 are drained by an acknowledgement of generation 1")
	}
	l.acked(message.Ack{Origin: l.origin, Generation: 2, LastOffset: 49})
	if got := s.acked[0]; got != 50 || !s.drained(nil) {
		t.Errorf("after generation 2's acknowledgement: next offset %d, drained %v; want 50, true", got, s.drained(nil))
	}
}

// TestRevokedWhileHanding: an exactly-once source's rebalance does not wait
// for the poll loop. A partition revoked while the loop hands an earlier
// partition of the same poll to a full lane has its polled records
// dropped: handed on, they would pass for records of its next generation
// (and the stateful stage would restore the partition's state for them,
// and checkpoint it with its owner's). A partition still assigned gets
// its records in the generation they were polled in.
func TestRevokedWhileHanding(t *testing.T) {
	s := &Source{topic: "t", sess: &kgo.GroupTransactSession{}, assigned: map[int32]bool{0: true, 1: true},
		highWater: map[int32]int64{}, fetched: map[int32]int64{}, acked: map[int32]int64{}, log: slog.New(slog.DiscardHandler)}
	for p := range int32(2) {
		s.lanes = append(s.lanes, &Lane{src: s, origin: &message.Origin{Source: "t", Topic: "t", Partition: p}, ch: make(chan fetched)})
	}
	recs := func(p int32) []*kgo.Record {
		return []*kgo.Record{{Topic: "t", Partition: p, Offset: 7, Value: []byte("{}")}}
	}
	fetches := kgo.Fetches{{Topics: []kgo.FetchTopic{{Topic: "t", Partitions: []kgo.FetchPartition{
		{Partition: 0, Records: recs(0)}, {Partition: 1, Records: recs(1)},
	}}}}}
	gens := s.generations()
	taken := make(chan struct{})
	go func() {
		s.take(context.Background(), fetches, gens)
		close(taken)
	}()
	// Lane 0 is full: take waits in hand. Partition 1 is revoked meanwhile.
	time.Sleep(50 * time.Millisecond)
	s.onRevoked(context.Background(), map[string][]int32{"t": {1}}, time.Second)
	f := <-s.lanes[0].ch
	if f.gen != 0 {
		t.Errorf("partition 0's records handed in generation %d; want 0, the one they were polled in", f.gen)
	}
	select {
	case f := <-s.lanes[1].ch:
		t.Fatalf("partition 1, revoked after the poll, had its records handed on in generation %d (now %d)", f.gen, s.lanes[1].origin.Generation.Load())
	case <-taken:
	case <-time.After(10 * time.Second):
		t.Fatal("take did not return")
	}
	if _, ok := s.fetched[1]; ok {
		t.Error("partition 1's records, not handed on, count as fetched")
	}
}

// TestCloseAfterUnconfirmedEnd: Close cancels the poll loop, which may be
// in the middle of a transaction's end: the brokers may or may not have
// committed it, and the client refuses to commit it again. Closing then
// aborts it, which settles it either way, and leaves without an error,
// rather than leave it to hold read_committed readers back until the
// brokers' transaction timeout.
func TestCloseAfterUnconfirmedEnd(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "in", "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	reached, closing := make(chan struct{}), make(chan struct{})
	var ends atomic.Int32
	c.ControlKey(int16(kmsg.EndTxn), func(kmsg.Request) (kmsg.Response, error, bool) {
		if ends.Add(1) == 1 {
			// The first transaction's end reaches the broker, which
			// answers only once Close has cancelled the poll loop that
			// waits for the answer.
			close(reached)
			<-closing
			time.Sleep(200 * time.Millisecond)
		}
		return nil, nil, false
	})
	var logs syncBuffer
	cols := append([]value.Column{{Name: "v", Type: value.String}}, schemas.KafkaMeta...)
	src, err := Open(&v1alpha1.KafkaSource{Brokers: brokers, Topic: "in"}, "t", v1alpha1.FormatJSON, cols, Options{
		Group: "unconfirmed", TransactionalID: "unconfirmed.a", TransactionInterval: 100 * time.Millisecond,
		Producer: &v1alpha1.KafkaSink{Brokers: brokers, Topic: "out"}, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	src.inTransaction(func() bool {
		return src.cl.ProduceSync(context.Background(), &kgo.Record{Topic: "out", Value: []byte("x")}).FirstErr() == nil
	})
	select {
	case <-reached:
	case <-time.After(30 * time.Second):
		t.Fatal("the transaction did not end")
	}
	close(closing)
	if err := src.Close(); err != nil {
		t.Errorf("closing after a transaction's end was cut short: %v", err)
	}
	if !strings.Contains(logs.String(), "the last transaction cannot commit; aborting it") {
		t.Errorf("the transaction's end was not cut short, or its close did not abort it; the source logged:\n%s", logs.String())
	}
	// Nothing is left open: read_committed readers reach the end.
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stable, err := kadm.NewClient(cl).ListCommittedOffsets(ctx, "out")
	if err != nil {
		t.Fatal(err)
	}
	end, err := kadm.NewClient(cl).ListEndOffsets(ctx, "out")
	if err != nil {
		t.Fatal(err)
	}
	if s, e := stable["out"][0].Offset, end["out"][0].Offset; s != e {
		t.Errorf("the output's last stable offset is %d, its end %d: a transaction is left open", s, e)
	}
}

// syncBuffer is a bytes.Buffer that several goroutines write.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// TestOpenKeyColumnsWithReaderSchema: a source of format avro with a
// reader schema of the value's fields and a column from the record key
// opens, read directly and through a repartition topic: no lane decodes
// whole values with the key's column among them (which the reader schema
// lacks).
func TestOpenKeyColumnsWithReaderSchema(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "payments", v1alpha1.RepartitionTopic("g")))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	declared := []v1alpha1.Column{{Name: "account", Type: "int", Key: true}, {Name: "amount", Type: "double"}}
	cols := append([]value.Column{{Name: "account", Type: value.Int}, {Name: "amount", Type: value.Double}}, schemas.KafkaMeta...)
	reader := &v1alpha1.AvroFormat{Schema: `{"type":"record","name":"P","fields":[{"name":"amount","type":"double"}]}`}
	for _, rp := range []*connector.Repartition{nil, {Sides: []connector.RepartitionSide{{Source: "t", Columns: cols[:2], Idle: time.Minute}}}} {
		src, err := Open(&v1alpha1.KafkaSource{Brokers: c.ListenAddrs(), Topic: "payments"}, "t", v1alpha1.FormatAvro, cols,
			Options{Group: "g", Schema: declared, Avro: reader, Repartition: rp})
		if err != nil {
			t.Fatalf("repartitioned %v: %v", rp != nil, err)
		}
		src.Close()
	}
}
