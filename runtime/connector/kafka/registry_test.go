package kafka_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bufbuild/protocompile"
	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/connector/bundle"
	"github.com/sluice-dev/sluice/runtime/pipeline"
)

// schemaRegistry returns the URL of a schema registry and a client of it.
// No schema registry runs here (they are Java services): srfake, franz-go's
// in-process implementation of the registry's REST API, stands in for one,
// unless SCHEMA_REGISTRY_URL names a real one.
func schemaRegistry(t *testing.T) (string, *sr.Client) {
	t.Helper()
	url := os.Getenv("SCHEMA_REGISTRY_URL")
	if url == "" {
		reg := srfake.New()
		t.Cleanup(reg.Close)
		url = reg.URL()
	}
	cl, err := sr.NewClient(sr.URLs(url))
	if err != nil {
		t.Fatal(err)
	}
	return url, cl
}

// avroRecord encodes v with schema in the registry's wire format.
func avroRecord(t *testing.T, id int, schema string, v any) *kgo.Record {
	t.Helper()
	b, err := avro.Marshal(avro.MustParse(schema), v)
	if err != nil {
		t.Fatal(err)
	}
	return &kgo.Record{Value: append(binary.BigEndian.AppendUint32([]byte{0}, uint32(id)), b...)}
}

// TestAvroRegistryPipeline runs a query from Avro records of two schema
// versions, resolved to a reader schema, to an Avro sink whose schema the
// engine registers, through the real client and a registry's REST API.
// Records the reader cannot read go to the dead letters with their schema
// ids; the results decode with hamba/avro and the registered schema.
func TestAvroRegistryPipeline(t *testing.T) {
	url, reg := schemaRegistry(t)
	ctx := context.Background()
	brokers := cluster(t, 1, "trades", "out", "dlq")
	subject := brokers[0] + "-" + t.Name() // unique on a shared registry
	v1 := `{"type":"record","name":"Trade","fields":[{"name":"symbol","type":"string"},{"name":"qty","type":"int"},
		{"name":"price","type":{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}}]}`
	v2 := `{"type":"record","name":"Trade","fields":[{"name":"symbol","type":"string"},{"name":"venue","type":"string"},
		{"name":"price","type":{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}},{"name":"qty","type":"long"},
		{"name":"note","type":["null",{"type":"map","values":"string"}]}]}`
	bad := `{"type":"record","name":"Trade","fields":[{"name":"symbol","type":"string"},{"name":"qty","type":"string"}]}`
	reader := `{"type":"record","name":"Trade","fields":[{"name":"symbol","type":"string"},{"name":"qty","type":"long"},
		{"name":"price","type":{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}},{"name":"venue","type":"string","default":"XNAS"}]}`
	ids := map[string]int{}
	for name, s := range map[string]string{"v1": v1, "v2": v2, "bad": bad} {
		// Each under a subject of its own: the registry would refuse bad
		// as an incompatible next version.
		id, err := reg.RegisterSchema(ctx, subject+"-"+name, sr.Schema{Schema: s, Type: sr.TypeAvro}, -1, -1)
		if err != nil {
			t.Fatal(err)
		}
		ids[name] = id
	}
	unknown := slices.Max([]int{ids["v1"], ids["v2"], ids["bad"]}) + 1000
	wrongMagic := avroRecord(t, ids["v1"], v1, map[string]any{"symbol": "X", "qty": int32(1), "price": big.NewRat(1, 1)})
	wrongMagic.Value[0] = 1
	produce(t, brokers, "trades",
		avroRecord(t, ids["v1"], v1, map[string]any{"symbol": "MSFT", "qty": int32(300), "price": big.NewRat(41251, 100)}),
		avroRecord(t, ids["v2"], v2, map[string]any{"symbol": "AAPL", "venue": "XLON", "price": big.NewRat(-5, 100), "qty": int64(1) << 40,
			"note": map[string]any{"map": map[string]any{"a": "b"}}}),
		avroRecord(t, ids["bad"], bad, map[string]any{"symbol": "IBM", "qty": "7"}),
		wrongMagic,
		avroRecord(t, unknown, v1, map[string]any{"symbol": "X", "qty": int32(1), "price": big.NewRat(1, 1)}),
		avroRecord(t, ids["v1"], v1, map[string]any{"symbol": "GOOG", "qty": int32(2), "price": big.NewRat(1, 100)}),
	)
	spec := &v1alpha1.StreamQuerySpec{
		Sources: []v1alpha1.Source{{
			Name:   "trades",
			Kafka:  &v1alpha1.KafkaSource{Brokers: brokers, Topic: "trades"},
			Format: v1alpha1.FormatAvro,
			Avro:   &v1alpha1.AvroFormat{Schema: reader, Registry: &v1alpha1.SchemaRegistry{URL: url}},
		}},
		Query: "SELECT symbol, venue, price * qty AS notional, qty > 100 AS big, _offset AS at FROM trades",
		Sink: &v1alpha1.Sink{
			Kafka:  &v1alpha1.KafkaSink{Brokers: brokers, Topic: "out", Key: "symbol"},
			Format: v1alpha1.FormatAvro,
			Avro:   &v1alpha1.AvroFormat{Registry: &v1alpha1.SchemaRegistry{URL: url, Subject: subject + "-out"}},
		},
		ErrorPolicy: v1alpha1.ErrorPolicy{Strategy: v1alpha1.DeadLetter, DeadLetter: &v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: brokers, Topic: "dlq"}}},
	}
	p, stop := run(t, spec, "avro")
	out := consume(t, brokers, "out", 3)
	registered, err := reg.SchemaByVersion(ctx, subject+"-out", -1)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range out {
		if id := binary.BigEndian.Uint32(r.Value[1:5]); r.Value[0] != 0 || int(id) != registered.ID {
			t.Fatalf("record header % x; want schema id %d", r.Value[:5], registered.ID)
		}
		var row map[string]any
		if err := avro.Unmarshal(avro.MustParse(registered.Schema.Schema), r.Value[5:], &row); err != nil {
			t.Fatalf("record %q: %v", r.Value, err)
		}
		got = append(got, fmt.Sprintf("%s %v %v %s %v %v", r.Key, row["symbol"], row["venue"], row["notional"].(*big.Rat).FloatString(2), row["big"], row["at"]))
	}
	want := []string{
		"MSFT MSFT XNAS 123753.00 true 0",
		"AAPL AAPL XLON -54975581388.80 true 1",
		"GOOG GOOG XNAS 0.02 false 5",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("results:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var dead []string
	for _, r := range consume(t, brokers, "dlq", 3) {
		for _, h := range r.Headers {
			if h.Key == "sluice.error" {
				dead = append(dead, string(h.Value))
			}
		}
		if len(r.Value) == 0 {
			t.Errorf("dead letter without the record's value")
		}
	}
	for i, w := range []string{
		fmt.Sprintf("offset 2: schema id %d: field qty is string, which does not read as int (column qty)", ids["bad"]),
		"offset 3: not in the schema registry wire format",
		fmt.Sprintf("offset 4: schema id %d: the registry at %s has no schema %d", unknown, url, unknown),
	} {
		if i >= len(dead) || !strings.Contains(dead[i], w) {
			t.Errorf("dead letter %d: got %q, want %q", i, dead, w)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if c := p.Snapshot().Counts; c.Out != 3 || c.DeadLettered != 3 {
		t.Errorf("counts %+v; want 3 out, 3 dead-lettered", c)
	}
}

// TestAvroKeysPipeline: key columns read from Avro record keys in the
// registry's wire format (schemas of their own, in the values' registry),
// value columns from Avro values; a key the registry does not know is the
// record's error.
func TestAvroKeysPipeline(t *testing.T) {
	url, reg := schemaRegistry(t)
	ctx := context.Background()
	brokers := cluster(t, 1, "payments", "out", "dlq")
	subject := brokers[0] + "-" + t.Name()
	keySchema := `{"type":"record","name":"Key","fields":[{"name":"account","type":"long"},{"name":"region","type":"string"}]}`
	valueSchema := `{"type":"record","name":"Payment","fields":[{"name":"amount","type":"double"}]}`
	keyID, err := reg.RegisterSchema(ctx, subject+"-key", sr.Schema{Schema: keySchema, Type: sr.TypeAvro}, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	valueID, err := reg.RegisterSchema(ctx, subject+"-value", sr.Schema{Schema: valueSchema, Type: sr.TypeAvro}, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	record := func(keyID int, key map[string]any, amount float64) *kgo.Record {
		r := avroRecord(t, valueID, valueSchema, map[string]any{"amount": amount})
		r.Key = avroRecord(t, keyID, keySchema, key).Value
		return r
	}
	produce(t, brokers, "payments",
		record(keyID, map[string]any{"account": int64(7), "region": "eu"}, 2.5),
		record(keyID+1000, map[string]any{"account": int64(8), "region": "us"}, 3),
		record(keyID, map[string]any{"account": int64(9), "region": "us"}, 4),
	)
	spec := &v1alpha1.StreamQuerySpec{
		Sources: []v1alpha1.Source{{
			Name:  "payments",
			Kafka: &v1alpha1.KafkaSource{Brokers: brokers, Topic: "payments", KeyFormat: v1alpha1.KeyFormatAvro},
			Schema: []v1alpha1.Column{
				{Name: "region", Type: "string", Key: true}, {Name: "amount", Type: "double"}, {Name: "account", Type: "int", Key: true},
			},
			Format: v1alpha1.FormatAvro,
			Avro:   &v1alpha1.AvroFormat{Registry: &v1alpha1.SchemaRegistry{URL: url}},
		}},
		Query:       "SELECT account, region, amount, _key FROM payments",
		Sink:        &v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: brokers, Topic: "out"}},
		ErrorPolicy: v1alpha1.ErrorPolicy{Strategy: v1alpha1.DeadLetter, DeadLetter: &v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: brokers, Topic: "dlq"}}},
	}
	_, stop := run(t, spec, "avro-keys")
	var got []string
	for _, r := range consume(t, brokers, "out", 2) {
		got = append(got, string(r.Value))
	}
	// _key is text: NULL for a binary key.
	want := []string{`{"account":7,"region":"eu","amount":2.5,"_key":null}`, `{"account":9,"region":"us","amount":4,"_key":null}`}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("results:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	dead := consume(t, brokers, "dlq", 1)
	wantErr := fmt.Sprintf("offset 1: key: schema id %d: the registry at %s has no schema %d", keyID+1000, url, keyID+1000)
	if i := slices.IndexFunc(dead[0].Headers, func(h kgo.RecordHeader) bool { return h.Key == "sluice.error" }); i < 0 || !strings.Contains(string(dead[0].Headers[i].Value), wantErr) {
		t.Errorf("dead letter headers %v; want an error with %q", dead[0].Headers, wantErr)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestAvroRegistryRefused: a registry that refuses the engine stops the
// source at the record whose schema it refused, naming the registry,
// rather than hand records to the error policy, and that record's offset
// is never committed, however many records follow it. The registry is a
// handler in the test that checks the engine's basic authentication and
// refuses schema 2: srfake cannot refuse one schema.
func TestAvroRegistryRefused(t *testing.T) {
	schema := `{"type":"record","name":"R","fields":[{"name":"n","type":"long"}]}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
		user, pass, _ := r.BasicAuth()
		switch {
		case user != "sluice" || pass != "right":
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(map[string]any{"error_code": 40101, "message": "who are you"})
		case r.URL.Path == "/schemas/ids/1":
			_ = json.NewEncoder(w).Encode(map[string]any{"schema": schema})
		default:
			w.WriteHeader(http.StatusForbidden)
			_ = json.NewEncoder(w).Encode(map[string]any{"error_code": 40301, "message": "not yours"})
		}
	}))
	defer srv.Close()
	brokers := cluster(t, 1, "in", "out", "dlq")
	ids := append([]int{1, 2}, slices.Repeat([]int{1}, 3000)...)
	var recs []*kgo.Record
	for i, id := range ids {
		recs = append(recs, avroRecord(t, id, schema, map[string]any{"n": int64(i)}))
	}
	produce(t, brokers, "in", recs...)
	t.Setenv("REGISTRY_USER", "sluice")
	t.Setenv("REGISTRY_PASSWORD", "right")
	spec := &v1alpha1.StreamQuerySpec{
		Sources: []v1alpha1.Source{{
			Name:   "t",
			Kafka:  &v1alpha1.KafkaSource{Brokers: brokers, Topic: "in"},
			Format: v1alpha1.FormatAvro,
			Avro: &v1alpha1.AvroFormat{Schema: schema, Registry: &v1alpha1.SchemaRegistry{
				URL: srv.URL, UsernameEnv: "REGISTRY_USER", PasswordEnv: "REGISTRY_PASSWORD"}},
		}},
		Query:       "SELECT n FROM t",
		Sink:        &v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: brokers, Topic: "out"}},
		ErrorPolicy: v1alpha1.ErrorPolicy{Strategy: v1alpha1.DeadLetter, DeadLetter: &v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: brokers, Topic: "dlq"}}},
		Runtime:     v1alpha1.RuntimeSpec{BatchSize: 4, ChannelCapacity: 64},
	}
	p, err := pipeline.New(spec, pipeline.Options{Connectors: bundle.All(), Group: "refused"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Run(context.Background()) }()
	select {
	case err = <-done:
	case <-time.After(time.Minute):
		p.Stop()
		t.Fatalf("the engine still runs, with counts %+v", p.Snapshot().Counts)
	}
	if err == nil || !strings.Contains(err.Error(), "in/0 offset 1: schema id 2: schema registry unavailable: the registry at "+srv.URL+" answered 403: not yours") {
		t.Fatalf("run ended with %v; want the registry's refusal", err)
	}
	if c := p.Snapshot().Counts; c.DeadLettered != 0 {
		t.Errorf("counts %+v; want nothing dead-lettered", c)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	offsets, err := kadm.NewClient(cl).FetchOffsets(context.Background(), "refused")
	if err != nil {
		t.Fatal(err)
	}
	offsets.Each(func(o kadm.OffsetResponse) {
		if o.At > 1 {
			t.Errorf("committed offset %d of %s/%d is past the record the source stopped at (offset 1)", o.At, o.Topic, o.Partition)
		}
	})
}

// TestProtobufRegistryPipeline runs a query from Protobuf messages of two
// schema versions, one of them nested in its file, to a Protobuf sink
// whose schema the engine registers, through the real client and a
// registry's REST API. The results decode with the protobuf module and the
// registered schema.
func TestProtobufRegistryPipeline(t *testing.T) {
	url, reg := schemaRegistry(t)
	ctx := context.Background()
	brokers := cluster(t, 1, "orders", "out", "dlq")
	subject := brokers[0] + "-" + t.Name()
	v1 := `syntax = "proto3"; package shop; message Order { string customer = 1; int64 cents = 2; }`
	v2 := `syntax = "proto3"; package shop;
import "google/protobuf/timestamp.proto";
message Envelope { message Order { int32 cents = 2; string customer = 1; optional string coupon = 3; google.protobuf.Timestamp at = 4; } }`
	ids := map[string]int{}
	for name, s := range map[string]string{"v1": v1, "v2": v2} {
		id, err := reg.RegisterSchema(ctx, subject+"-"+name, sr.Schema{Schema: s, Type: sr.TypeProtobuf}, -1, -1)
		if err != nil {
			t.Fatal(err)
		}
		ids[name] = id
	}
	message := func(id int, indexes []byte, fields ...protoField) *kgo.Record {
		b := append(binary.BigEndian.AppendUint32([]byte{0}, uint32(id)), indexes...)
		for _, f := range fields {
			b = f(b)
		}
		return &kgo.Record{Value: b}
	}
	produce(t, brokers, "orders",
		message(ids["v1"], []byte{0}, protoString(1, "ada"), protoVarint(2, 1250)),
		// Envelope.Order: a count of 2 (zig-zag 4), indexes 0 and 0.
		message(ids["v2"], []byte{4, 0, 0}, protoString(1, "bob"), protoVarint(2, 99), protoString(3, "SPRING")),
		// Envelope, the file's first message, has none of the columns: the
		// record's error.
		message(ids["v2"], []byte{0}, protoString(1, "eve")),
	)
	spec := &v1alpha1.StreamQuerySpec{
		Sources: []v1alpha1.Source{{
			Name:     "orders",
			Kafka:    &v1alpha1.KafkaSource{Brokers: brokers, Topic: "orders"},
			Format:   v1alpha1.FormatProtobuf,
			Schema:   []v1alpha1.Column{{Name: "customer", Type: "string"}, {Name: "cents", Type: "decimal(10,2)"}, {Name: "coupon", Type: "string"}},
			Protobuf: &v1alpha1.ProtobufFormat{Registry: &v1alpha1.SchemaRegistry{URL: url}},
		}},
		Query: "SELECT coalesce(customer, 'nobody') AS customer, cents / 100 AS dollars, coupon FROM orders",
		Sink: &v1alpha1.Sink{
			Kafka:    &v1alpha1.KafkaSink{Brokers: brokers, Topic: "out"},
			Format:   v1alpha1.FormatProtobuf,
			Protobuf: &v1alpha1.ProtobufFormat{Registry: &v1alpha1.SchemaRegistry{URL: url, Subject: subject + "-out"}},
		},
		ErrorPolicy: v1alpha1.ErrorPolicy{Strategy: v1alpha1.DeadLetter, DeadLetter: &v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: brokers, Topic: "dlq"}}},
	}
	_, stop := run(t, spec, "protobuf")
	out := consume(t, brokers, "out", 2)
	registered, err := reg.SchemaByVersion(ctx, subject+"-out", -1)
	if err != nil {
		t.Fatal(err)
	}
	if registered.Type != sr.TypeProtobuf {
		t.Fatalf("registered a %s schema", registered.Type)
	}
	c := protocompile.Compiler{Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{
		Accessor: protocompile.SourceAccessorFromMap(map[string]string{"out.proto": registered.Schema.Schema})})}
	files, err := c.Compile(ctx, "out.proto")
	if err != nil {
		t.Fatal(err)
	}
	md := files[0].Messages().ByName("Row")
	var got []string
	for _, r := range out {
		want := append(binary.BigEndian.AppendUint32([]byte{0}, uint32(registered.ID)), 0)
		if string(r.Value[:6]) != string(want) {
			t.Fatalf("record header % x; want % x", r.Value[:6], want)
		}
		m := dynamicpb.NewMessage(md)
		if err := proto.Unmarshal(r.Value[6:], m); err != nil {
			t.Fatalf("record %q: %v", r.Value, err)
		}
		var fields []string
		for i := range md.Fields().Len() {
			f := md.Fields().Get(i)
			if !m.Has(f) {
				fields = append(fields, "NULL")
				continue
			}
			fields = append(fields, fmt.Sprint(m.Get(f).Interface()))
		}
		got = append(got, strings.Join(fields, " "))
	}
	want := []string{"ada 12.500000 NULL", "bob 0.990000 SPRING"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("results:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	dead := consume(t, brokers, "dlq", 1)
	wantErr := fmt.Sprintf("offset 2: schema id %d: message shop.Envelope has none of the columns (customer, cents, coupon)", ids["v2"])
	if i := slices.IndexFunc(dead[0].Headers, func(h kgo.RecordHeader) bool { return h.Key == "sluice.error" }); i < 0 || !strings.Contains(string(dead[0].Headers[i].Value), wantErr) {
		t.Errorf("dead letter headers %v; want an error with %q", dead[0].Headers, wantErr)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// protoField appends one field of a message.
type protoField func([]byte) []byte

func protoString(num protowire.Number, s string) protoField {
	return func(b []byte) []byte {
		return protowire.AppendString(protowire.AppendTag(b, num, protowire.BytesType), s)
	}
}

func protoVarint(num protowire.Number, v uint64) protoField {
	return func(b []byte) []byte {
		return protowire.AppendVarint(protowire.AppendTag(b, num, protowire.VarintType), v)
	}
}

// TestSinkKeyFormats: a sink writes its key column as JSON, or Avro or
// Protobuf in the registry's wire format with a schema it registers under
// <topic>-key; a source's key columns read each back.
func TestSinkKeyFormats(t *testing.T) {
	url, reg := schemaRegistry(t)
	topics := []string{"payments"}
	formats := []v1alpha1.KeyFormat{v1alpha1.KeyFormatString, v1alpha1.KeyFormatJSON, v1alpha1.KeyFormatAvro, v1alpha1.KeyFormatProtobuf}
	for _, kf := range formats {
		topics = append(topics, "keyed-"+string(kf), "read-"+string(kf))
	}
	brokers := cluster(t, 1, topics...) // renamed, against a real Kafka
	produce(t, brokers, topics[0],
		&kgo.Record{Value: []byte(`{"account":7,"amount":2.5}`)},
		&kgo.Record{Value: []byte(`{"account":null,"amount":3}`)},
		&kgo.Record{Value: []byte(`{"account":9,"amount":4}`)},
	)
	registry := &v1alpha1.SchemaRegistry{URL: url}
	for i, kf := range formats {
		t.Run(string(kf), func(t *testing.T) {
			topic, readTopic := topics[1+2*i], topics[2+2*i]
			sink := v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: brokers, Topic: topic, Key: "account", KeyFormat: kf}}
			source := v1alpha1.Source{Name: "keyed", Kafka: &v1alpha1.KafkaSource{Brokers: brokers, Topic: topic, KeyFormat: kf},
				Schema: []v1alpha1.Column{{Name: "account", Type: "int", Key: true}, {Name: "amount", Type: "double"}}}
			switch kf {
			case v1alpha1.KeyFormatAvro:
				sink.Format, sink.Avro = v1alpha1.FormatAvro, &v1alpha1.AvroFormat{Registry: registry}
				source.Format, source.Avro = v1alpha1.FormatAvro, &v1alpha1.AvroFormat{Registry: registry}
			case v1alpha1.KeyFormatProtobuf:
				sink.Format, sink.Protobuf = v1alpha1.FormatProtobuf, &v1alpha1.ProtobufFormat{Registry: registry}
				source.Format, source.Protobuf = v1alpha1.FormatProtobuf, &v1alpha1.ProtobufFormat{Registry: registry}
			}
			write := &v1alpha1.StreamQuerySpec{
				Sources: []v1alpha1.Source{{Name: "payments", Kafka: &v1alpha1.KafkaSource{Brokers: brokers, Topic: topics[0]},
					Schema: []v1alpha1.Column{{Name: "account", Type: "int"}, {Name: "amount", Type: "double"}}}},
				Query: "SELECT account, amount FROM payments",
				Sink:  &sink,
			}
			_, stop := run(t, write, "write-"+string(kf))
			recs := consume(t, brokers, topic, 3)
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			if recs[1].Key != nil {
				t.Errorf("the key of a NULL account: %q; want none", recs[1].Key)
			}
			switch kf {
			case v1alpha1.KeyFormatString:
				if string(recs[0].Key) != "7" {
					t.Errorf("key %q; want 7", recs[0].Key)
				}
			case v1alpha1.KeyFormatJSON:
				if string(recs[0].Key) != `{"account":7}` {
					t.Errorf("key %q; want {\"account\":7}", recs[0].Key)
				}
			default:
				// The key's schema is registered under <topic>-key, and
				// the key is in the wire format with its id.
				ss, err := reg.SchemaByVersion(context.Background(), topic+"-key", -1)
				if err != nil {
					t.Fatalf("the key's subject: %v", err)
				}
				if k := recs[0].Key; len(k) < 5 || k[0] != 0 || int(binary.BigEndian.Uint32(k[1:5])) != ss.ID {
					t.Errorf("key % x; want the wire format with schema id %d", k, ss.ID)
				}
			}
			read := &v1alpha1.StreamQuerySpec{Sources: []v1alpha1.Source{source}, Query: "SELECT account, amount FROM keyed",
				Sink: &v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: brokers, Topic: readTopic}}}
			_, stop = run(t, read, "read-"+string(kf))
			var got []string
			for _, r := range consume(t, brokers, readTopic, 3) {
				got = append(got, string(r.Value))
			}
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			want := []string{`{"account":7,"amount":2.5}`, `{"account":null,"amount":3}`, `{"account":9,"amount":4}`}
			if !slices.Equal(got, want) {
				t.Errorf("read back %v; want %v", got, want)
			}
		})
	}
}
