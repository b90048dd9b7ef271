package kafka_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// TestKeyAndHeaderColumnsPipeline: a query reads columns from each record's
// JSON key and from its headers, through the engine and the real client. A
// missing header is NULL; a key that is not JSON is a decode error, dead-
// lettered, and the other records go on.
func TestKeyAndHeaderColumnsPipeline(t *testing.T) {
	brokers := cluster(t, 1, "in", "out", "dlq")
	tenant := []kgo.RecordHeader{{Key: "tenant", Value: []byte("acme")}}
	produce(t, brokers, "in",
		&kgo.Record{Key: []byte(`{"account": 7}`), Value: []byte(`{"id": 1, "amount": 2.5}`), Headers: tenant},
		&kgo.Record{Key: []byte(`{"account": 8}`), Value: []byte(`{"id": 2, "amount": 3}`)},
		&kgo.Record{Key: []byte(`account 9`), Value: []byte(`{"id": 3, "amount": 4}`), Headers: tenant},
	)
	spec := &v1alpha1.StreamQuerySpec{
		Sources: []v1alpha1.Source{{
			Name:  "payments",
			Kafka: &v1alpha1.KafkaSource{Brokers: brokers, Topic: "in", KeyFormat: v1alpha1.KeyFormatJSON},
			Schema: []v1alpha1.Column{
				{Name: "id", Type: "int"},
				{Name: "account", Type: "int", Key: true},
				{Name: "tenant", Type: "string", Header: "tenant"},
				{Name: "amount", Type: "double"},
			},
		}},
		Query:       "SELECT id, account, tenant, amount, _key FROM payments",
		Sink:        &v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: brokers, Topic: "out"}},
		ErrorPolicy: v1alpha1.ErrorPolicy{Strategy: v1alpha1.DeadLetter, DeadLetter: &v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: brokers, Topic: "dlq"}}},
	}
	p, stop := run(t, spec, "columns")
	got := map[float64]string{}
	for _, r := range consume(t, brokers, "out", 2) {
		var row map[string]any
		if err := json.Unmarshal(r.Value, &row); err != nil {
			t.Fatalf("output %q: %v", r.Value, err)
		}
		id, _ := row["id"].(float64)
		got[id] = string(r.Value)
	}
	want := map[float64]string{
		1: `{"id":1,"account":7,"tenant":"acme","amount":2.5,"_key":"{\"account\": 7}"}`,
		2: `{"id":2,"account":8,"tenant":null,"amount":3,"_key":"{\"account\": 8}"}`,
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("row %v:\n%s\nwant\n%s", id, got[id], w)
		}
	}
	dead := consume(t, brokers, "dlq", 1)
	h := headersOf(dead[0])
	if h["sluice.stage"] != "decode" || h["sluice.original.offset"] != "2" || !strings.Contains(h["sluice.error"], "offset 2: key: invalid JSON") ||
		string(dead[0].Value) != `{"id": 3, "amount": 4}` {
		t.Errorf("dead letter %q with headers %v", dead[0].Value, h)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if c := p.Snapshot().Counts; c.Out != 2 || c.DeadLettered != 1 {
		t.Errorf("counts %+v; want 2 out, 1 dead-lettered", c)
	}
}
