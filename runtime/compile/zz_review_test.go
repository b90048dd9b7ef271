package compile

import (
	"testing"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

func TestZZReview(t *testing.T) {
	table := v1alpha1.Source{
		Name:   "symbols",
		Kafka:  &v1alpha1.KafkaSource{Brokers: []string{"k:9092"}, Topic: "symbols"},
		Schema: []v1alpha1.Column{{Name: "sym", Type: "string", Key: true}, {Name: "name", Type: "string"}},
		Table:  &v1alpha1.TableSource{Key: []string{"sym"}},
	}
	file := v1alpha1.Source{Name: "trades", File: &v1alpha1.FileSource{Path: "/x.csv"}, Format: v1alpha1.FormatCSV,
		Schema: []v1alpha1.Column{{Name: "symbol", Type: "string"}, {Name: "qty", Type: "int"}}}
	eos := &v1alpha1.StreamQuerySpec{
		Sources: []v1alpha1.Source{file, table},
		Query:   "SELECT t.qty, s.name FROM trades t JOIN symbols s ON t.symbol = s.sym",
		Sink:    v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: []string{"k:9092"}, Topic: "out", Delivery: v1alpha1.ExactlyOnce}},
		State:   &v1alpha1.StateSpec{},
	}
	_, _, err := Plan(eos)
	t.Logf("eos file+kafka table: %v", err)
	two := 2
	only := &v1alpha1.StreamQuerySpec{
		Sources:  []v1alpha1.Source{table},
		Query:    "SELECT sym, name FROM symbols",
		Sink:     v1alpha1.Sink{Stdout: &v1alpha1.StdoutSink{}},
		Replicas: ptr(int32(two)),
	}
	_, _, err = Plan(only)
	t.Logf("select from kafka table, 2 replicas: %v", err)
	g := table
	g.Kafka = &v1alpha1.KafkaSource{Brokers: []string{"k:9092"}, Topic: "symbols"}
	stream := v1alpha1.Source{Name: "trades", Kafka: &v1alpha1.KafkaSource{Brokers: []string{"k:9092"}, Topic: "trades", Group: "g"},
		Schema: []v1alpha1.Column{{Name: "symbol", Type: "string"}, {Name: "qty", Type: "int"}}}
	eos2 := eos.DeepCopy()
	eos2.Sources = []v1alpha1.Source{stream, g}
	_, _, err = Plan(eos2)
	t.Logf("eos kafka stream with group + kafka table: %v", err)
}

func ptr[T any](v T) *T { return &v }
