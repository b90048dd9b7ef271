package kafka

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/connector"
	"github.com/sluice-dev/sluice/runtime/connector/schemas"
	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/value"
)

// TestTableStoppedLane: a table's lane that is no longer read (Stop: a
// loaded partition once the streams have ended, or in direct mode) does not
// hold up the others, whose records one poll loop hands on. Partition 0 is
// never read; without Stop its lane fills after four polls and partition 1,
// which takes more polls than that to load, never would.
func TestTableStoppedLane(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "symbols"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic("symbols"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A poll takes at most 10,000 records: 60,000 in each partition take
	// at least six polls each.
	for range 12 {
		var recs []*kgo.Record
		for i := range 10_000 {
			recs = append(recs, &kgo.Record{Partition: int32(i % 2), Key: fmt.Appendf(nil, "K%d", i), Value: []byte(`{"name": "x"}`)})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cols := append([]value.Column{{Name: "sym", Type: value.String}, {Name: "name", Type: value.String}}, schemas.KafkaMeta...)
	src, err := Open(&v1alpha1.KafkaSource{Brokers: brokers, Topic: "symbols"}, "symbols", v1alpha1.FormatJSON, cols, Options{
		Table: true, Schema: []v1alpha1.Column{{Name: "sym", Type: "string", Key: true}, {Name: "name", Type: "string"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	lanes := src.Lanes()
	var stopper connector.Stopper = lanes[0]
	stopper.Stop()
	read := 0
	for {
		var b message.Batch
		var errs message.ErrorBatch
		b.Reset(len(cols))
		err := lanes[1].Read(ctx, &b, 1000, time.Millisecond, &errs)
		read += b.Len()
		if errors.Is(err, connector.ErrLoaded) {
			break
		}
		if err != nil || ctx.Err() != nil {
			t.Fatalf("partition 1: %d of 60000 records read: %v, %v", read, err, ctx.Err())
		}
	}
	if read != 60_000 {
		t.Errorf("partition 1 loaded after %d records; want 60000", read)
	}
}
