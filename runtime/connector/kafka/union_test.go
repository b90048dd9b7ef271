package kafka_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// TestKafkaUnionAll: UNION ALL of two topics' queries into one topic,
// through the engine and the real client: every record of each, through
// its own branch, and a record that fails to decode dead-lettered with its
// own topic's coordinates.
func TestKafkaUnionAll(t *testing.T) {
	brokers := cluster(t, 1, "trades", "quotes", "out", "dlq")
	produceTo(t, brokers, "trades", &kgo.Record{Value: []byte(`{"symbol": "AAPL", "qty": 2}`)}, &kgo.Record{Value: []byte(`{"symbol": "MSFT", "qty": 0}`)})
	produceTo(t, brokers, "quotes", &kgo.Record{Value: []byte(`{"symbol": "IBM", "bid": 7}`)}, &kgo.Record{Value: []byte(`not json`)})
	spec := &v1alpha1.StreamQuerySpec{
		Sources: []v1alpha1.Source{
			{Name: "trades", Kafka: &v1alpha1.KafkaSource{Brokers: brokers, Topic: "trades"}, Schema: tradeColumns},
			{Name: "quotes", Kafka: &v1alpha1.KafkaSource{Brokers: brokers, Topic: "quotes"}, Schema: []v1alpha1.Column{{Name: "symbol", Type: "string"}, {Name: "bid", Type: "int"}}},
		},
		Query:       "SELECT symbol, qty AS n, 'trade' AS kind FROM trades WHERE qty > 0 UNION ALL SELECT symbol, bid, 'quote' FROM quotes",
		Sink:        &v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: brokers, Topic: "out"}},
		ErrorPolicy: v1alpha1.ErrorPolicy{Strategy: v1alpha1.DeadLetter, DeadLetter: &v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: brokers, Topic: "dlq"}}},
	}
	p, stop := run(t, spec, "union")
	got := map[string]bool{}
	for _, r := range consume(t, brokers, "out", 2) {
		got[string(r.Value)] = true
	}
	for _, w := range []string{`{"symbol":"AAPL","n":2,"kind":"trade"}`, `{"symbol":"IBM","n":7,"kind":"quote"}`} {
		if !got[w] {
			t.Errorf("no row %s; got %v", w, got)
		}
	}
	dead := consume(t, brokers, "dlq", 1)
	h := headersOf(dead[0])
	if h["sluice.original.topic"] != "quotes" || h["sluice.original.offset"] != "1" {
		t.Errorf("dead letter headers %v; want quotes' offset 1", h)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if c := p.Snapshot().Counts; c.In != 4 || c.Out != 2 || c.Filtered != 1 || c.DeadLettered != 1 {
		t.Errorf("counts %+v; want 4 in, 2 out, 1 filtered, 1 dead-lettered", c)
	}
}
