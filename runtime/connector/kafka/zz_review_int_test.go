package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"
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

// A loaded lane nobody reads any more (direct mode, or tableEnds after the
// streams ended) blocks the poll loop, and another partition never loads.
func TestZZReviewStarveInternal(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "tbl"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	cl, _ := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic("tbl"), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchMaxBytes(16<<10))
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	big := `{"name":"` + strings.Repeat("x", 50) + `"}`
	cl.ProduceSync(ctx, &kgo.Record{Partition: 0, Key: []byte("A"), Value: []byte(`{"name":"a"}`)})
	var recs []*kgo.Record
	for i := range 200000 {
		recs = append(recs, &kgo.Record{Partition: 1, Key: []byte(fmt.Sprint(i)), Value: []byte(big)})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			cl.ProduceSync(ctx, &kgo.Record{Partition: 0, Key: []byte(fmt.Sprint("L", i)), Value: []byte(`{"name":"l"}`)})
		}
	}()
	defer close(stop)
	cols := append([]value.Column{{Name: "sym", Type: value.String}, {Name: "name", Type: value.String}}, schemas.KafkaMeta...)
	schema := []v1alpha1.Column{{Name: "sym", Type: "string", Key: true}, {Name: "name", Type: "string"}}
	src, err := Open(&v1alpha1.KafkaSource{Brokers: brokers, Topic: "tbl"}, "t", v1alpha1.FormatJSON, cols, Options{Table: true, Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	read := func(l *Lane) error {
		var b message.Batch
		var errs message.ErrorBatch
		b.Reset(len(cols))
		return l.Read(ctx, &b, 500, time.Millisecond, &errs)
	}
	l0, l1 := src.Lanes()[0], src.Lanes()[1]
	for {
		if err := read(l0); errors.Is(err, connector.ErrLoaded) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	t.Log("partition 0 loaded; it is no longer read")
	rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
	defer rcancel()
	n, last := 0, 0
	for rctx.Err() == nil {
		var b message.Batch
		var errs message.ErrorBatch
		b.Reset(len(cols))
		err := l1.Read(rctx, &b, 500, time.Millisecond, &errs)
		n += b.Len()
		if len(l1.pending) > last { t.Logf("chunk: pending %d after %d read; fetched %v", len(l1.pending), n, func() any { src.mu.Lock(); defer src.mu.Unlock(); return fmt.Sprint(src.fetched) }()) }
		last = len(l1.pending)
		if errors.Is(err, connector.ErrLoaded) {
			t.Logf("partition 1 loaded after %d records; lane 0 holds %d; fetched0=%v", n, len(l0.ch), src.fetched)
			return
		}
		time.Sleep(10 * time.Millisecond) // a pipeline busy with the table rows
	}
	t.Errorf("partition 1 never loaded: %d of 200000 records read; lane 0 holds %d fetches", n, len(l0.ch))
}
