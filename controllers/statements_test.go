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

// TestStatementSet: a statement set gets its engines, whose manifest holds
// every statement, and status.state says how each statement keeps state;
// a set with a problem in one statement is InvalidQuery, saying which and
// where in its query.
func TestStatementSet(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	set := func(name, second string) *v1alpha1.StreamQuery {
		sq := newKafkaQuery(ns, name, "", 1)
		sq.Spec.Query, sq.Spec.Sink = "", nil
		sq.Spec.Statements = []v1alpha1.Statement{
			{Name: "copy", Query: "SELECT symbol, price FROM trades", Sink: v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: []string{"kafka:9092"}, Topic: "copy"}}},
			{Name: "totals", Query: second, Sink: v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: []string{"kafka:9092"}, Topic: "totals"}}},
		}
		if err := k8s.Create(ctx, sq); err != nil {
			t.Fatal(err)
		}
		return sq
	}
	good := set("good", "SELECT symbol, sum(quantity) AS q FROM TUMBLE(trades, _timestamp, INTERVAL '1' MINUTE) GROUP BY window_start, window_end, symbol")
	bad := set("bad", "SELECT symbol,\n  sum(quantity) AS q\nFROM trades GROUP BY symbl")
	eventually(t, 20*time.Second, func() error {
		var d appsv1.Deployment
		return k8s.Get(ctx, key(good), &d)
	})
	var cm corev1.ConfigMap
	if err := k8s.Get(ctx, key(good), &cm); err != nil {
		t.Fatal(err)
	}
	if m := cm.Data[manifestKey]; !strings.Contains(m, "name: copy") || !strings.Contains(m, "topic: totals") {
		t.Errorf("the engines' manifest should hold both statements:\n%s", m)
	}
	eventually(t, 10*time.Second, func() error {
		if got := getQuery(t, good).Status.State; !strings.HasPrefix(got, "totals: keyed by symbol") {
			return fmt.Errorf("status.state %q; want the stateful statement's partitioning, named", got)
		}
		c := meta.FindStatusCondition(getQuery(t, bad).Status.Conditions, ConditionReady)
		if c == nil || c.Reason != ReasonInvalidQuery || !strings.Contains(c.Message, `spec.statements[1].query: line 3, column 22: unknown column "symbl"`) {
			return fmt.Errorf("Ready condition %+v; want InvalidQuery, placed in the second statement's query", c)
		}
		return nil
	})
}
