package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/compile"
	"github.com/sluice-dev/sluice/runtime/connector/bundle"
)

// TestLatestSchemaPipeline runs a query over a source that declares
// neither columns nor a schema: its columns are the fields of the latest
// schema of the topic's subject, read from the registry when the pipeline
// is made, and that schema is the reader schema, whose default fills the
// field the older version's records lack.
func TestLatestSchemaPipeline(t *testing.T) {
	url, reg := schemaRegistry(t)
	ctx := context.Background()
	topic := "latest"
	brokers := cluster(t, 1, topic, "out")
	subject := topic + "-value" // the topic name strategy
	v1 := `{"type":"record","name":"Trade","fields":[{"name":"symbol","type":"string"},{"name":"qty","type":"int"}]}`
	v2 := `{"type":"record","name":"Trade","fields":[{"name":"symbol","type":"string"},{"name":"qty","type":"long"},
		{"name":"venue","type":"string","default":"XNAS"}]}`
	var ids []int
	for _, s := range []string{v1, v2} {
		id, err := reg.RegisterSchema(ctx, subject, sr.Schema{Schema: s, Type: sr.TypeAvro}, -1, -1)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	produce(t, brokers, topic,
		avroRecord(t, ids[0], v1, map[string]any{"symbol": "MSFT", "qty": int32(300)}),
		avroRecord(t, ids[1], v2, map[string]any{"symbol": "AAPL", "qty": int64(1) << 40, "venue": "XLON"}),
	)
	spec := &v1alpha1.StreamQuerySpec{
		Sources: []v1alpha1.Source{{
			Name:   "trades",
			Kafka:  &v1alpha1.KafkaSource{Brokers: brokers, Topic: topic},
			Format: v1alpha1.FormatAvro,
			Avro:   &v1alpha1.AvroFormat{Registry: &v1alpha1.SchemaRegistry{URL: url}},
		}},
		Query: "SELECT symbol, qty * 2 AS twice, venue FROM trades",
		Sink:  &v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: brokers, Topic: "out"}},
	}
	_, stop := run(t, spec, "latest")
	var got []string
	for _, r := range consume(t, brokers, "out", 2) {
		got = append(got, string(r.Value))
	}
	want := []string{
		`{"symbol":"MSFT","twice":600,"venue":"XNAS"}`,
		`{"symbol":"AAPL","twice":2199023255552,"venue":"XLON"}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("results:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if spec.Sources[0].Avro.Schema != "" {
		t.Error("the pipeline changed the caller's spec")
	}
}

// TestResolveSchemas reads the latest schema of each source that takes its
// columns from its registry, and refuses what cannot be planned so, each
// with its source's field.
func TestResolveSchemas(t *testing.T) {
	url, reg := schemaRegistry(t)
	ctx := context.Background()
	prefix := strings.ReplaceAll(t.Name(), "/", "-") + fmt.Sprint(len(url)) + "-"
	register := func(subject string, s sr.Schema) {
		t.Helper()
		if _, err := reg.RegisterSchema(ctx, prefix+subject, s, -1, -1); err != nil {
			t.Fatal(err)
		}
	}
	register("quotes-value", sr.Schema{Type: sr.TypeProtobuf, Schema: `syntax = "proto3";
package m;
message Trade { string symbol = 1; int64 qty = 2; }
message Quote { string symbol = 1; double bid = 2; }
`})
	register("trades-value", sr.Schema{Type: sr.TypeAvro, Schema: `{"type":"record","name":"T","fields":[{"name":"symbol","type":"string"},{"name":"price","type":"double"}]}`})
	register("lib", sr.Schema{Type: sr.TypeAvro, Schema: `{"type":"record","name":"Lib","fields":[{"name":"a","type":"int"}]}`})
	register("refs-value", sr.Schema{Type: sr.TypeAvro, Schema: `{"type":"record","name":"R","fields":[{"name":"lib","type":"Lib"}]}`,
		References: []sr.SchemaReference{{Name: "Lib", Subject: prefix + "lib", Version: 1}}})
	register("arrays-value", sr.Schema{Type: sr.TypeAvro, Schema: `{"type":"record","name":"A","fields":[{"name":"tags","type":{"type":"array","items":"string"}}]}`})

	source := func(name, topic string, f v1alpha1.Format) v1alpha1.Source {
		src := v1alpha1.Source{Name: name, Format: f, Kafka: &v1alpha1.KafkaSource{Brokers: []string{"127.0.0.1:1"}, Topic: prefix + topic}}
		if f == v1alpha1.FormatAvro {
			src.Avro = &v1alpha1.AvroFormat{Registry: &v1alpha1.SchemaRegistry{URL: url}}
		} else {
			src.Protobuf = &v1alpha1.ProtobufFormat{Message: "m.Quote", Registry: &v1alpha1.SchemaRegistry{URL: url}}
		}
		return src
	}
	spec := &v1alpha1.StreamQuerySpec{
		Sources: []v1alpha1.Source{source("trades", "trades", v1alpha1.FormatAvro), source("quotes", "quotes", v1alpha1.FormatProtobuf)},
		Query:   "SELECT t.symbol, t.price, q.bid FROM trades t JOIN quotes q ON t.symbol = q.symbol AND t._timestamp BETWEEN q._timestamp - INTERVAL '1' SECOND AND q._timestamp",
		Sink:    &v1alpha1.Sink{Stdout: &v1alpha1.StdoutSink{}},
	}
	spec.Sources[1].Protobuf.Registry.Subject = prefix + "quotes-value"
	spec.Sources[1].Kafka.Topic = "elsewhere" // the subject is named
	resolved, err := bundle.All().ResolveSchemas(ctx, spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(resolved) != 2 || resolved[0].Subject != prefix+"trades-value" || resolved[1].Source != "quotes" || resolved[1].Version != 1 || resolved[0].ID == 0 {
		t.Errorf("resolved %+v", resolved)
	}
	_, inputs, err := compile.Plan(spec)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"trades": "symbol string, price double", "quotes": "symbol string, bid double"} {
		var cols []string
		for _, c := range inputs[name] {
			if !strings.HasPrefix(c.Name, "_") {
				cols = append(cols, c.Name+" "+c.Type.String())
			}
		}
		if got := strings.Join(cols, ", "); got != want {
			t.Errorf("%s: columns %s; want %s", name, got, want)
		}
	}

	for _, tc := range []struct {
		name   string
		src    v1alpha1.Source
		field  string
		substr string
	}{
		{"no subject", source("t", "none", v1alpha1.FormatAvro), "spec.sources[0].avro.registry", "has no subject " + prefix + "none-value"},
		{"another type", source("t", "quotes", v1alpha1.FormatAvro), "spec.sources[0].avro.registry", "is a PROTOBUF schema, and format avro reads AVRO"},
		{"references", source("t", "refs", v1alpha1.FormatAvro), "spec.sources[0].avro.registry", "references other schemas (Lib)"},
		{"no columns", source("t", "arrays", v1alpha1.FormatAvro), "spec.sources[0].avro.registry", "the latest schema of subject " + prefix + "arrays-value (version 1, id "},
		{"no message", func() v1alpha1.Source {
			src := source("t", "quotes", v1alpha1.FormatProtobuf)
			src.Protobuf.Message = "m.Order"
			return src
		}(), "spec.sources[0].protobuf.registry", "protobuf schema: no message m.Order"},
		{"no event time", func() v1alpha1.Source {
			src := source("t", "trades", v1alpha1.FormatAvro)
			src.EventTime = &v1alpha1.EventTime{Column: "ts"}
			return src
		}(), "spec.sources[0].avro.registry", "has no field ts, the source's eventTime.column"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := &v1alpha1.StreamQuerySpec{Sources: []v1alpha1.Source{tc.src}, Query: "SELECT * FROM t", Sink: &v1alpha1.Sink{Stdout: &v1alpha1.StdoutSink{}}}
			_, err := bundle.All().ResolveSchemas(ctx, spec, nil)
			var ps v1alpha1.Problems
			if !errors.As(err, &ps) || len(ps) != 1 || ps[0].Field != tc.field || !strings.Contains(ps[0].Message, tc.substr) {
				t.Fatalf("got %v; want %s: ...%s...", err, tc.field, tc.substr)
			}
			// The planner says it is not read, not what it is not.
			_, _, err = compile.Plan(spec)
			if err == nil || !strings.Contains(err.Error(), "which is read once the source has no other problem") {
				t.Errorf("plan: %v", err)
			}
		})
	}
}

// TestResolveSchemasUnavailable: a registry that does not answer is asked
// until the resolution's deadline, once: the next source of the same
// registry is not kept waiting again, and both say why.
func TestResolveSchemasUnavailable(t *testing.T) {
	var asked sync.Map
	reg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Store(r.URL.Path, true)
		http.Error(w, "overloaded", http.StatusServiceUnavailable)
	}))
	t.Cleanup(reg.Close)
	spec := &v1alpha1.StreamQuerySpec{Query: "SELECT * FROM a", Sink: &v1alpha1.Sink{Stdout: &v1alpha1.StdoutSink{}}}
	for _, name := range []string{"a", "b"} {
		spec.Sources = append(spec.Sources, v1alpha1.Source{Name: name, Format: v1alpha1.FormatAvro,
			Kafka: &v1alpha1.KafkaSource{Brokers: []string{"127.0.0.1:1"}, Topic: name},
			Avro:  &v1alpha1.AvroFormat{Registry: &v1alpha1.SchemaRegistry{URL: reg.URL}}})
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := bundle.All().ResolveSchemas(ctx, spec, nil)
	var ps v1alpha1.Problems
	if !errors.As(err, &ps) || len(ps) != 2 {
		t.Fatalf("got %v; want a problem of each source", err)
	}
	for i, p := range ps {
		if !strings.Contains(p.Message, "no answer from "+reg.URL) || p.Field != fmt.Sprintf("spec.sources[%d].avro.registry", i) {
			t.Errorf("problem %d: %s: %s", i, p.Field, p.Message)
		}
	}
	if _, ok := asked.Load("/subjects/b-value/versions/latest"); ok {
		t.Error("the second source's subject was asked for after the registry did not answer")
	}
}

// TestLatestSchemaKeys: a source that declares only its key's columns
// (keyFormat avro) and names its subject takes the value's from the
// subject's latest schema: after the key's, in the schema's order. Its
// partitionedBy may name a key column.
func TestLatestSchemaKeys(t *testing.T) {
	url, reg := schemaRegistry(t)
	ctx := context.Background()
	brokers := cluster(t, 1, "payments", "out")
	subject := brokers[0] + "-" + t.Name() // unique on a shared registry
	keySchema := `{"type":"record","name":"Key","fields":[{"name":"account","type":"long"}]}`
	valueSchema := `{"type":"record","name":"Payment","fields":[{"name":"amount","type":"double"},{"name":"memo","type":"string"}]}`
	keyID, err := reg.RegisterSchema(ctx, subject+"-key", sr.Schema{Schema: keySchema, Type: sr.TypeAvro}, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	valueID, err := reg.RegisterSchema(ctx, subject+"-value", sr.Schema{Schema: valueSchema, Type: sr.TypeAvro}, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	r := avroRecord(t, valueID, valueSchema, map[string]any{"amount": 2.5, "memo": "rent"})
	r.Key = avroRecord(t, keyID, keySchema, map[string]any{"account": int64(7)}).Value
	produce(t, brokers, "payments", r)
	source := v1alpha1.Source{
		Name:   "payments",
		Kafka:  &v1alpha1.KafkaSource{Brokers: brokers, Topic: "payments", KeyFormat: v1alpha1.KeyFormatAvro, PartitionedBy: []string{"account"}},
		Schema: []v1alpha1.Column{{Name: "account", Type: "int", Key: true}},
		Format: v1alpha1.FormatAvro,
		Avro:   &v1alpha1.AvroFormat{Registry: &v1alpha1.SchemaRegistry{URL: url, Subject: subject + "-value"}},
	}
	spec := &v1alpha1.StreamQuerySpec{
		Sources: []v1alpha1.Source{source},
		Query:   "SELECT * FROM payments",
		Sink:    &v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: brokers, Topic: "out"}},
	}
	_, stop := run(t, spec, "latest-keys")
	got := consume(t, brokers, "out", 1)
	if want := `{"account":7,"amount":2.5,"memo":"rent","_key":null,"_partition":0,"_offset":0,`; !strings.HasPrefix(string(got[0].Value), want) {
		t.Errorf("result %s; want it to begin %s", got[0].Value, want)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// A key column named as a field of the value is refused, and the
	// source left as it was.
	clash := *spec.DeepCopy()
	clash.Sources[0].Schema[0].Name = "memo"
	clash.Sources[0].Kafka.PartitionedBy = nil
	_, err = bundle.All().ResolveSchemas(ctx, &clash, nil)
	if err == nil || !strings.Contains(err.Error(), "has a field memo, which the source declares as a column of the key or a header") {
		t.Errorf("a key column named as a field of the value: %v", err)
	}
	if n := len(clash.Sources[0].Schema); n != 1 {
		t.Errorf("%d columns after the clash; want the one declared", n)
	}
}
