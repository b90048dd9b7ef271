package kafka_test

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/api/enginestatus"
	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/bench"
	"github.com/sluice-dev/sluice/runtime/connector/bundle"
	"github.com/sluice-dev/sluice/runtime/pipeline"
)

// BenchmarkKafkaFilter runs Kafka → SQL filter → Kafka through the engine
// and, in the same run on the same broker and input, a plain franz-go program
// that consumes, applies the same filter to the decoded value's field and
// produces: the baseline. It reports both rates and their ratio.
//
// The broker is kfake in the benchmark's own process, unless KAFKA_BROKERS
// names one: a real cluster, or kfake in a process of its own
// (go run ./hack/kfake), which keeps the broker's work and garbage out of
// the process measured.
func BenchmarkKafkaFilter(b *testing.B) {
	const n = 500_000
	var err error
	brokers, in, suffix, adm := benchInput(b, n, func(i int) *kgo.Record {
		return &kgo.Record{Key: fmt.Appendf(nil, "k%d", i%100), Value: fmt.Appendf(nil, `{"id":%d,"k":"k%d","seq":%d}`, i, i%100, i%10)}
	})

	var engine, raw window
	run := 0
	for b.Loop() {
		run++
		out, rawOut := fmt.Sprintf("out-engine-%d%s", run, suffix), fmt.Sprintf("out-raw-%d%s", run, suffix)
		if _, err := adm.CreateTopics(context.Background(), 4, 1, nil, out, rawOut); err != nil {
			b.Fatal(err)
		}
		spec := kafkaSpec(brokers, in, out, "SELECT id, k FROM t WHERE seq < 5")
		spec.Runtime = v1alpha1.RuntimeSpec{} // the engine's defaults, not the tests' small batches
		// The labels let a CPU profile tell the two programs apart
		// (go tool pprof -tagfocus side=engine): goroutines inherit them,
		// also the clients' own.
		var p *pipeline.Pipeline
		pprof.Do(context.Background(), pprof.Labels("side", "engine"), func(context.Context) {
			p, err = pipeline.New(spec, pipeline.Options{Connectors: bundle.All(), Group: fmt.Sprintf("bench-%d%s", run, suffix)})
		})
		if err != nil {
			b.Fatal(err)
		}
		pprof.Do(context.Background(), pprof.Labels("side", "engine"), func(ctx context.Context) {
			runUntil(ctx, b, p, &engine, func(c enginestatus.Records) bool { return c.In == n && c.InFlight == 0 })
		})

		var got int
		pprof.Do(context.Background(), pprof.Labels("side", "franz-go"), func(context.Context) {
			got = rawConsumeProduce(b, brokers, in, rawOut, n, &raw, func(v []byte) bool {
				return v[len(v)-2] < '5' // ..."seq":D}
			})
		})
		if got != n/2 {
			b.Fatalf("the baseline kept %d records, want %d", got, n/2)
		}
	}
	reportAgainst(b, float64(run*n), "engine", &engine, "franz-go", &raw)
}

// reportAgainst reports the rates of records measured by w, named name,
// and by base, named baseName, their ratio, and the CPU time of the whole
// process (the broker's included, unless it runs apart) per record while
// each ran: steadier than the rates on a busy machine.
func reportAgainst(b *testing.B, records float64, name string, w *window, baseName string, base *window) {
	rate, baseRate := records/w.wall.Seconds(), records/base.wall.Seconds()
	b.ReportMetric(rate, name+"-records/s")
	b.ReportMetric(baseRate, baseName+"-records/s")
	b.ReportMetric(rate/baseRate, name+"/"+baseName)
	b.ReportMetric(float64(w.cpu.Nanoseconds())/records, name+"-cpu-ns/record")
	b.ReportMetric(float64(base.cpu.Nanoseconds())/records, baseName+"-cpu-ns/record")
}

// benchInput produces n records, record(i) each, to a new topic of 4
// partitions on the benchmark's brokers: KAFKA_BROKERS, else a kfake
// cluster in the process, closed when the benchmark ends. It returns the
// brokers, the topic, a suffix for the benchmark's other topics (their
// own on a shared broker) and an admin client.
func benchInput(b *testing.B, n int, record func(i int) *kgo.Record) (brokers []string, in, suffix string, adm *kadm.Client) {
	brokers = strings.Split(os.Getenv("KAFKA_BROKERS"), ",")
	suffix = fmt.Sprintf("-%d", time.Now().UnixNano())
	in = "in" + suffix
	if brokers[0] == "" {
		var c *kfake.Cluster
		var err error
		pprof.Do(context.Background(), pprof.Labels("side", "broker"), func(context.Context) {
			c, err = kfake.NewCluster(kfake.NumBrokers(1))
		})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(c.Close)
		brokers = c.ListenAddrs()
	}
	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(in))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(prod.Close)
	adm = kadm.NewClient(prod)
	if _, err := adm.CreateTopics(context.Background(), 4, 1, nil, in); err != nil {
		b.Fatal(err)
	}
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = record(i)
	}
	if err := prod.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		b.Fatal(err)
	}
	return brokers, in, suffix, adm
}

// runUntil runs p until its counts are done, then stops it; w measures
// from the first record read, so that the engine's consumer-group join is
// not counted against it.
func runUntil(ctx context.Context, b *testing.B, p *pipeline.Pipeline, w *window, done func(enginestatus.Records) bool) {
	finished := make(chan error, 1)
	go func() { finished <- p.Run(ctx) }()
	started := false
	for {
		c := p.Snapshot().Counts
		if !started && c.In > 0 {
			w.begin()
			started = true
		}
		if done(c) {
			break
		}
		select {
		case err := <-finished:
			b.Fatalf("the engine stopped early: %v (counts %+v)", err, c)
		case <-time.After(time.Millisecond):
		}
	}
	w.end()
	p.Stop()
	if err := <-finished; err != nil {
		b.Fatal(err)
	}
}

// window accumulates the wall-clock and process CPU time of measured spans.
type window struct {
	wall, cpu time.Duration
	start     time.Time
	startCPU  time.Duration
}

func (w *window) begin() { w.start, w.startCPU = time.Now(), bench.ProcessCPU() }

func (w *window) end() {
	w.wall += time.Since(w.start)
	w.cpu += bench.ProcessCPU() - w.startCPU
}

// rawConsumeProduce is the baseline: consume every record of in, keep
// those keep says (a byte check, no decode), produce them. It returns the
// records kept; w measures from the first record fetched.
func rawConsumeProduce(b *testing.B, brokers []string, in, out string, n int, w *window, keep func(value []byte) bool) int {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(in),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DefaultProduceTopic(out))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	read, kept := 0, 0
	ctx := context.Background()
	for read < n {
		fs := cl.PollFetches(ctx)
		if read == 0 {
			w.begin()
		}
		fs.EachRecord(func(r *kgo.Record) {
			read++
			v := r.Value
			if keep(v) {
				kept++
				cl.Produce(ctx, &kgo.Record{Key: r.Key, Value: v}, nil)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	w.end()
	return kept
}

// BenchmarkKafkaRepartition runs a one-minute tumbling count and sum by k
// over a topic keyed by id, through one engine, twice on the same input in
// each iteration: as one engine runs it, rows straight from the filter to
// the state, and as each of several engines does (replicas: 2, here the
// only member of its group), rows repartitioned by k through the group's
// repartition topic and read back. It reports both rates, from the first
// record read to the last taken into the state, and their ratio.
func BenchmarkKafkaRepartition(b *testing.B) {
	benchRepartition(b, windowsByK, 1)
}

// BenchmarkKafkaRepartitionExactlyOnce is BenchmarkKafkaRepartition with
// exactly-once delivery: both runs commit their results and state in
// transactions, and the repartitioned one also the rows it writes to the
// repartition topic, which the part after it reads only once committed.
// The checkpoints, which pace the transactions, are 200 ms apart: at the
// default, 10 s, the benchmark would time the interval.
func BenchmarkKafkaRepartitionExactlyOnce(b *testing.B) {
	benchRepartition(b, func(brokers []string, in, out string) *v1alpha1.StreamQuerySpec {
		spec := windowsByK(brokers, in, out)
		spec.Sink.Kafka.Delivery = v1alpha1.ExactlyOnce
		spec.State = &v1alpha1.StateSpec{CheckpointInterval: &metav1.Duration{Duration: 200 * time.Millisecond}}
		return spec
	}, 1)
}

// windowsByK is the query of BenchmarkKafkaRepartition.
func windowsByK(brokers []string, in, out string) *v1alpha1.StreamQuerySpec {
	spec := kafkaSpec(brokers, in, out, "SELECT window_start, k, count(*) AS n, sum(seq) AS s FROM TUMBLE(t, ts, INTERVAL '1' MINUTE) GROUP BY window_start, window_end, k")
	spec.Sources[0].Schema = append(spec.Sources[0].Schema, v1alpha1.Column{Name: "ts", Type: "timestamp"})
	return spec
}

// BenchmarkKafkaRepartitionJoin is BenchmarkKafkaRepartition for an
// interval join of the topic with itself on id, read as two sources, each
// in a group of its own: every record pairs with itself. Repartitioned,
// both sources' rows go through the first one's repartition topic.
func BenchmarkKafkaRepartitionJoin(b *testing.B) {
	benchRepartition(b, func(brokers []string, in, out string) *v1alpha1.StreamQuerySpec {
		spec := kafkaSpec(brokers, in, out, "SELECT t.id, t.k, u.seq FROM t JOIN u ON t.id = u.id AND t.ts BETWEEN u.ts - INTERVAL '1' SECOND AND u.ts + INTERVAL '1' SECOND")
		spec.Sources[0].Schema = append(spec.Sources[0].Schema, v1alpha1.Column{Name: "ts", Type: "timestamp"})
		other := *spec.Sources[0].DeepCopy()
		other.Name = "u"
		other.Kafka.Group = "other-" + out
		spec.Sources = append(spec.Sources, other)
		return spec
	}, 2)
}

// benchRepartition runs the query spec makes over 500,000 records keyed
// by id, as BenchmarkKafkaRepartition says; each record is taken into the
// state perRecord times.
func benchRepartition(b *testing.B, query func(brokers []string, in, out string) *v1alpha1.StreamQuerySpec, perRecord int) {
	const n = 500_000
	t0 := time.Date(2024, 1, 2, 9, 30, 0, 0, time.UTC)
	brokers, in, suffix, adm := benchInput(b, n, func(i int) *kgo.Record {
		ts := t0.Add(time.Duration(i) * time.Millisecond).Format(time.RFC3339Nano)
		return &kgo.Record{Key: fmt.Appendf(nil, "%d", i), Value: fmt.Appendf(nil, `{"id":%d,"k":"k%d","seq":%d,"ts":%q}`, i, i%100, i%10, ts)}
	})

	measure := func(run int, replicas int32, w *window) {
		out := fmt.Sprintf("out-%d-%d%s", replicas, run, suffix)
		if _, err := adm.CreateTopics(context.Background(), 4, 1, nil, out); err != nil {
			b.Fatal(err)
		}
		spec := query(brokers, in, out)
		spec.Runtime = v1alpha1.RuntimeSpec{}
		// Repartitioned, a query needs checkpoints; both take them, at
		// the query's interval or the default.
		spec.Replicas = &replicas
		if spec.State == nil {
			spec.State = &v1alpha1.StateSpec{}
		}
		p, err := pipeline.New(spec, pipeline.Options{Connectors: bundle.All(), Group: fmt.Sprintf("bench-%d-%d%s", replicas, run, suffix)})
		if err != nil {
			b.Fatal(err)
		}
		runUntil(context.Background(), b, p, w, func(c enginestatus.Records) bool {
			if c.Late > 0 {
				b.Fatalf("%d of %d records late", c.Late, n)
			}
			return c.Aggregated == int64(perRecord*n)
		})
	}
	var direct, repartitioned window
	run := 0
	for b.Loop() {
		run++
		measure(run, 1, &direct)
		measure(run, 2, &repartitioned)
	}
	reportAgainst(b, float64(run*n*perRecord), "repartitioned", &repartitioned, "direct", &direct)
}
