package webhook

import (
	"context"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

func query(sql string) *v1alpha1.StreamQuery {
	return &v1alpha1.StreamQuery{
		ObjectMeta: metav1.ObjectMeta{Name: "q", Namespace: "ns"},
		Spec: v1alpha1.StreamQuerySpec{
			Sources: []v1alpha1.Source{{Name: "trades", Datagen: &v1alpha1.DatagenSource{Generator: "trades"}}},
			Query:   sql,
			Sink:    &v1alpha1.Sink{Null: &v1alpha1.NullSink{}},
		},
	}
}

// TestValidator: a query the engine cannot run is Invalid with each
// problem's field and position, as kubectl prints it; an update is checked
// only when it changes the spec.
func TestValidator(t *testing.T) {
	ctx := context.Background()
	bad := query("SELECT symbol,\n  nope FROM trades")
	bad.Spec.Runtime.BatchSize = 1 << 20
	_, err := Validator{}.ValidateCreate(ctx, bad)
	if !apierrors.IsInvalid(err) {
		t.Fatalf("ValidateCreate: %v; want an Invalid error", err)
	}
	for _, want := range []string{
		`StreamQuery.streaming.sluice.dev "q" is invalid`,
		`spec.query: Invalid value: line 2, column 3: unknown column "nope"`,
		"spec.runtime.batchSize: Invalid value: must be between 1 and 65536",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("ValidateCreate: %v\nwant %q", err, want)
		}
	}
	good := query("SELECT symbol FROM trades")
	if _, err := (Validator{}).ValidateCreate(ctx, good); err != nil {
		t.Errorf("ValidateCreate of a valid query: %v", err)
	}
	relabeled := bad.DeepCopy()
	relabeled.Labels = map[string]string{"team": "data"}
	if _, err := (Validator{}).ValidateUpdate(ctx, bad, relabeled); err != nil {
		t.Errorf("an update that leaves an invalid spec alone: %v; want it admitted", err)
	}
	if _, err := (Validator{}).ValidateUpdate(ctx, good, bad); err == nil {
		t.Error("an update to an invalid spec was admitted")
	}
	if _, err := (Validator{}).ValidateDelete(ctx, bad); err != nil {
		t.Errorf("ValidateDelete: %v", err)
	}
}

// TestValidatorLatestSchema: a query whose source takes its columns from
// its registry's latest schema, which only the engines read, is admitted
// with a warning that says so, and its structure and syntax are still
// checked.
func TestValidatorLatestSchema(t *testing.T) {
	ctx := context.Background()
	q := query("SELECT price FROM trades")
	q.Spec.Sources[0] = v1alpha1.Source{Name: "trades", Format: v1alpha1.FormatAvro,
		Kafka: &v1alpha1.KafkaSource{Brokers: []string{"k:9092"}, Topic: "trades"},
		Avro:  &v1alpha1.AvroFormat{Registry: &v1alpha1.SchemaRegistry{URL: "http://r:8081"}}}
	w, err := Validator{}.ValidateCreate(ctx, q)
	if err != nil || len(w) != 1 || !strings.Contains(w[0], "spec.sources[0]: the value's columns of source trades are the fields of the latest schema of subject trades-value at http://r:8081, which its engines read as they start") {
		t.Errorf("ValidateCreate: %v, warnings %q; want admitted with a warning", err, w)
	}
	q.Spec.Runtime.BatchSize = 1 << 20
	q.Spec.Query = "SELECT price FROM trades WHERE"
	if w, err := (Validator{}).ValidateCreate(ctx, q); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.runtime.batchSize") ||
		!strings.Contains(err.Error(), "spec.query: Invalid value: line 1, column 31: syntax error at end of input") || len(w) != 1 {
		t.Errorf("with problems of its structure and syntax: %v, warnings %q; want it refused, with the warning", err, w)
	}
}

// TestValidatorStatements: a statement set is admitted, and one with a
// problem in a statement's query is refused, placed in that query; one of
// a registry's latest schema gets its syntax checked statement by
// statement.
func TestValidatorStatements(t *testing.T) {
	ctx := context.Background()
	q := query("")
	q.Spec.Query, q.Spec.Sink = "", nil
	q.Spec.Statements = []v1alpha1.Statement{
		{Name: "copy", Query: "SELECT price FROM trades", Sink: v1alpha1.Sink{Stdout: &v1alpha1.StdoutSink{}}},
		{Name: "big", Query: "SELECT price FROM trades\nWHERE quantity > 1", Sink: v1alpha1.Sink{Stdout: &v1alpha1.StdoutSink{}}},
	}
	if _, err := (Validator{}).ValidateCreate(ctx, q); err != nil {
		t.Errorf("ValidateCreate: %v; want a valid statement set admitted", err)
	}
	q.Spec.Statements[1].Query = "SELECT price FROM trades\nWHERE quantit > 1"
	if _, err := (Validator{}).ValidateCreate(ctx, q); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), `spec.statements[1].query: Invalid value: line 2, column 7: unknown column "quantit"`) {
		t.Errorf("ValidateCreate: %v; want it refused, placed in the second statement's query", err)
	}
	q.Spec.Sources[0] = v1alpha1.Source{Name: "trades", Format: v1alpha1.FormatAvro,
		Kafka: &v1alpha1.KafkaSource{Brokers: []string{"k:9092"}, Topic: "trades"},
		Avro:  &v1alpha1.AvroFormat{Registry: &v1alpha1.SchemaRegistry{URL: "http://r:8081"}}}
	q.Spec.Statements[1].Query = "SELECT price FROM trades WHERE"
	if _, err := (Validator{}).ValidateCreate(ctx, q); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.statements[1].query: Invalid value: line 1, column 31: syntax error at end of input") {
		t.Errorf("ValidateCreate of the latest schema's: %v; want the second statement's syntax error", err)
	}
}
