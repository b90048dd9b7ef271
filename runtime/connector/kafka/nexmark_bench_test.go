package kafka_test

import (
	"context"
	"fmt"
	"runtime/pprof"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/sluice-dev/sluice/api/enginestatus"
	"github.com/sluice-dev/sluice/api/v1alpha1"
	nexmarkqueries "github.com/sluice-dev/sluice/examples/nexmark"
	"github.com/sluice-dev/sluice/runtime/connector/bundle"
	"github.com/sluice-dev/sluice/runtime/connector/schemas"
	"github.com/sluice-dev/sluice/runtime/format"
	"github.com/sluice-dev/sluice/runtime/pipeline"
)

// BenchmarkKafkaNexmark runs Nexmark q0 (pass-through), q1 (currency
// conversion), q2 (selection), q5 (hot items) and q7 (highest bid), the
// last two window top-Ns, Kafka in, Kafka out: their manifests
// (examples/nexmark) with the bid generator replaced by a topic of 4
// partitions holding its bids as JSON, which an engine writes first (the
// generator to a Kafka sink: the Nexmark producer). In the same run on the
// same topic, the baseline is plain franz-go consuming and producing every
// record as it is. It reports both rates and their ratio, per query; the
// broker is as for BenchmarkKafkaFilter. Each query runs on JSON bids and
// on plain Avro bids (json/q0, avro/q0, ...).
func BenchmarkKafkaNexmark(b *testing.B) {
	const n = 400_000
	brokers, in, suffix, adm := benchInput(b, 0, nil)
	for _, f := range []v1alpha1.Format{v1alpha1.FormatJSON, v1alpha1.FormatAvro} {
		if f != v1alpha1.FormatJSON {
			in = fmt.Sprintf("bids-%s%s", f, suffix)
			if _, err := adm.CreateTopics(context.Background(), 4, 1, nil, in); err != nil {
				b.Fatal(err)
			}
		}
		produceBids(b, brokers, in, f, int64(n))
		benchmarkNexmarkFormat(b, f, brokers, in, suffix, adm, n)
	}
}

// benchmarkNexmarkFormat runs the queries of BenchmarkKafkaNexmark over the
// n bids of topic in, in format f.
func benchmarkNexmarkFormat(b *testing.B, f v1alpha1.Format, brokers []string, in, suffix string, adm *kadm.Client, n int) {
	for _, q := range []string{"q0", "q1", "q2", "q5", "q7"} {
		b.Run(fmt.Sprintf("%s/%s", f, q), func(b *testing.B) {
			var engine, raw window
			run := 0
			for b.Loop() {
				run++
				out, rawOut := fmt.Sprintf("out-%s-%s-engine-%d%s", f, q, run, suffix), fmt.Sprintf("out-%s-%s-raw-%d%s", f, q, run, suffix)
				if _, err := adm.CreateTopics(context.Background(), 4, 1, nil, out, rawOut); err != nil {
					b.Fatal(err)
				}
				spec := nexmarkOverKafka(b, q, f, brokers, in, out)
				var p *pipeline.Pipeline
				var err error
				pprof.Do(context.Background(), pprof.Labels("side", "engine"), func(ctx context.Context) {
					if p, err = pipeline.New(spec, pipeline.Options{Connectors: bundle.All(), Group: fmt.Sprintf("bench-%s-%s-%d%s", f, q, run, suffix)}); err != nil {
						b.Fatal(err)
					}
					runUntil(ctx, b, p, &engine, func(c enginestatus.Records) bool { return c.In == int64(n) && c.InFlight == 0 })
				})
				pprof.Do(context.Background(), pprof.Labels("side", "franz-go"), func(context.Context) {
					if got := rawConsumeProduce(b, brokers, in, rawOut, n, &raw, func([]byte) bool { return true }); got != n {
						b.Fatalf("the baseline passed %d records on, want %d", got, n)
					}
				})
			}
			reportAgainst(b, float64(run*n), "engine", &engine, "franz-go", &raw)
		})
	}
}

// produceBids writes n Nexmark bids to topic in format f (json, or plain
// avro of the schema bidSchema gives), with an engine: the bid generator,
// in 4 partitions, to a Kafka sink.
func produceBids(b *testing.B, brokers []string, topic string, f v1alpha1.Format, n int64) {
	spec := &v1alpha1.StreamQuerySpec{
		Sources: []v1alpha1.Source{{Name: "bid", Datagen: &v1alpha1.DatagenSource{Generator: "nexmark-bid", Count: n / 4, Partitions: 4}}},
		Query:   "SELECT * FROM bid",
		Sink:    &v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: brokers, Topic: topic}, Format: f},
	}
	p, err := pipeline.New(spec, pipeline.Options{Connectors: bundle.All()})
	if err != nil {
		b.Fatal(err)
	}
	if err := p.Run(context.Background()); err != nil {
		b.Fatal(err)
	}
	if out := p.Snapshot().Counts.Out; out != n {
		b.Fatalf("wrote %d bids, want %d", out, n)
	}
}

// nexmarkOverKafka is Nexmark query q's spec reading its bids from topic
// in and writing its results to topic out.
func nexmarkOverKafka(b *testing.B, q string, f v1alpha1.Format, brokers []string, in, out string) *v1alpha1.StreamQuerySpec {
	spec, err := nexmarkqueries.Spec(q)
	if err != nil {
		b.Fatal(err)
	}
	if len(spec.Sources) != 1 || spec.Sources[0].Datagen == nil || spec.Sources[0].Datagen.Generator != "nexmark-bid" {
		b.Fatalf("nexmark %s does not read bids alone", q)
	}
	var schema []v1alpha1.Column
	for _, c := range schemas.NexmarkBid {
		schema = append(schema, v1alpha1.Column{Name: c.Name, Type: c.Type.String()})
	}
	spec.Sources[0] = v1alpha1.Source{Name: "bid", Kafka: &v1alpha1.KafkaSource{Brokers: brokers, Topic: in}, Schema: schema, Format: f, EventTime: spec.Sources[0].EventTime}
	if f == v1alpha1.FormatAvro {
		avroSchema, err := format.AvroSchemaOf(schemas.NexmarkBid)
		if err != nil {
			b.Fatal(err)
		}
		spec.Sources[0].Avro = &v1alpha1.AvroFormat{Schema: avroSchema}
	}
	spec.Sink = &v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: brokers, Topic: out}, Format: f}
	return spec
}
