package controllers

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// TestSchemaFromRegistry: a query whose source takes its columns from its
// registry's latest schema, which only its engines read (with their
// credentials, as they start), runs on a check of its structure alone; its
// engines' manifest says they are several, as a stateful query's does,
// since whether it keeps state is not known here. One whose structure, or
// query's syntax, is wrong is invalid, as any other.
func TestSchemaFromRegistry(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	query := func(name, sql string, topics ...string) *v1alpha1.StreamQuery {
		sq := newKafkaQuery(ns, name, sql, 3)
		src := &sq.Spec.Sources[0]
		src.Schema = nil
		if len(topics) > 0 {
			src.Kafka.Topic, src.Kafka.Topics = "", topics
		}
		src.Format, src.Avro = v1alpha1.FormatAvro, &v1alpha1.AvroFormat{Registry: &v1alpha1.SchemaRegistry{URL: "http://registry.invalid:8081"}}
		if err := k8s.Create(ctx, sq); err != nil {
			t.Fatal(err)
		}
		return sq
	}
	good := query("good", "SELECT symbol, venue FROM trades")
	// Of which subject's latest schema, the engines could not tell.
	bad := query("bad", "SELECT symbol, venue FROM trades", "trades", "quotes")
	syntax := query("syntax", "SELECT symbol, venue FROM trades WHERE")
	eventually(t, 20*time.Second, func() error {
		var d appsv1.Deployment
		return k8s.Get(ctx, key(good), &d)
	})
	var cm corev1.ConfigMap
	if err := k8s.Get(ctx, key(good), &cm); err != nil {
		t.Fatal(err)
	}
	if m := cm.Data[manifestKey]; !strings.Contains(m, "registry.invalid") || !strings.Contains(m, "replicas: 2") {
		t.Errorf("the engines' manifest should name the registry, and say they are several:\n%s", m)
	}
	if got := getQuery(t, good); got.Status.State != "" {
		t.Errorf("status.state %q; the operator did not plan the query", got.Status.State)
	}
	eventually(t, 10*time.Second, func() error {
		c := meta.FindStatusCondition(getQuery(t, bad).Status.Conditions, ConditionReady)
		if c == nil || c.Reason != ReasonInvalidQuery || !strings.Contains(c.Message, "spec.sources[0].avro.registry.subject: the source reads 2 topics: name the subject") {
			return fmt.Errorf("Ready condition %+v; want InvalidQuery, and why", c)
		}
		c = meta.FindStatusCondition(getQuery(t, syntax).Status.Conditions, ConditionReady)
		if c == nil || c.Reason != ReasonInvalidQuery || !strings.Contains(c.Message, "syntax error at end of input") {
			return fmt.Errorf("Ready condition %+v; want InvalidQuery of the syntax error", c)
		}
		return nil
	})
	var d appsv1.Deployment
	if err := k8s.Get(ctx, key(bad), &d); err == nil {
		t.Error("an invalid query got a Deployment")
	}
}
