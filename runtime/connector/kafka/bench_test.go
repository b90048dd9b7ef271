package kafka_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/pipeline"
)

// BenchmarkKafkaFilter runs Kafka → SQL filter → Kafka through the engine
// and, in the same run on the same broker and input, a plain franz-go program
// that consumes, applies the same filter to the decoded value's field and
// produces: the baseline. It reports both rates and their ratio.
func BenchmarkKafkaFilter(b *testing.B) {
	const n = 500_000
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "in"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic("in"))
	if err != nil {
		b.Fatal(err)
	}
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Key: fmt.Appendf(nil, "k%d", i%100), Value: fmt.Appendf(nil, `{"id":%d,"k":"k%d","seq":%d}`, i, i%100, i%10)}
	}
	if err := prod.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		b.Fatal(err)
	}
	adm := kadm.NewClient(prod)
	defer prod.Close()

	var engineTime, rawTime time.Duration
	run := 0
	for b.Loop() {
		run++
		out := fmt.Sprintf("out-engine-%d", run)
		if _, err := adm.CreateTopics(context.Background(), 4, 1, nil, out, fmt.Sprintf("out-raw-%d", run)); err != nil {
			b.Fatal(err)
		}
		spec := kafkaSpec(brokers, "in", out, "SELECT id, k FROM t WHERE seq < 5")
		spec.Runtime = v1alpha1.RuntimeSpec{} // the engine's defaults, not the tests' small batches
		p, err := pipeline.New(spec, pipeline.Options{Group: fmt.Sprintf("bench-%d", run)})
		if err != nil {
			b.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- p.Run(context.Background()) }()
		// Both rates are measured from the first record read, so that the
		// engine's consumer-group join is not counted against it.
		var start time.Time
		for {
			c := p.Snapshot().Counts
			if start.IsZero() && c.In > 0 {
				start = time.Now()
			}
			if c.In == n && c.InFlight() == 0 {
				break
			}
			select {
			case err := <-done:
				b.Fatalf("the engine stopped early: %v (counts %+v)", err, c)
			case <-time.After(time.Millisecond):
			}
		}
		engineTime += time.Since(start)
		p.Stop()
		if err := <-done; err != nil {
			b.Fatal(err)
		}

		got, elapsed := rawConsumeProduce(b, brokers, fmt.Sprintf("out-raw-%d", run), n)
		if got != n/2 {
			b.Fatalf("the baseline kept %d records, want %d", got, n/2)
		}
		rawTime += elapsed
	}
	engineRate := float64(run*n) / engineTime.Seconds()
	rawRate := float64(run*n) / rawTime.Seconds()
	b.ReportMetric(engineRate, "engine-records/s")
	b.ReportMetric(rawRate, "franz-go-records/s")
	b.ReportMetric(engineRate/rawRate, "engine/franz-go")
}

// rawConsumeProduce is the baseline: consume every record of "in", keep those
// whose seq field is below 5 (a byte check, no full decode), produce them.
// It returns the records kept and the time from the first record fetched.
func rawConsumeProduce(b *testing.B, brokers []string, out string, n int) (int, time.Duration) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics("in"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DefaultProduceTopic(out))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	read, kept := 0, 0
	ctx := context.Background()
	var start time.Time
	for read < n {
		fs := cl.PollFetches(ctx)
		if start.IsZero() {
			start = time.Now()
		}
		fs.EachRecord(func(r *kgo.Record) {
			read++
			v := r.Value
			if d := v[len(v)-2]; d < '5' { // ..."seq":D}
				kept++
				cl.Produce(ctx, &kgo.Record{Key: r.Key, Value: v}, nil)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	return kept, time.Since(start)
}
