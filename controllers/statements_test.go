package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"

	"github.com/sluice-dev/sluice/api/enginestatus"
	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// TestStatementSet: a statement set gets its engines, whose manifest holds
// every statement, status.state says how each statement keeps state and
// status.statements each statement's rates over the engines;
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
	// Two engines of the good set report each statement's rates: the
	// status sums them by statement, with the first last error.
	for i, e := range []struct {
		copied, totals float64
		lastError      string
	}{{100, 5, ""}, {50, 2, "sink write failed"}} {
		pod := enginePod(t, good, fmt.Sprintf("good-engine-%d", i), true, 0, "")
		engineAddrs.Store(pod.Name, fakeEngine(t, enginestatus.Document{Health: enginestatus.Healthy, Statements: []enginestatus.Statement{
			{Name: "copy", Rates: enginestatus.Rates{Output: e.copied}},
			{Name: "totals", Rates: enginestatus.Rates{Output: e.totals, Error: 1}, LastError: e.lastError},
		}}))
	}
	eventually(t, 15*time.Second, func() error {
		want := []v1alpha1.StatementStatus{
			{Name: "copy", OutputRecordsPerSecond: "150", ErrorRecordsPerSecond: "0"},
			{Name: "totals", OutputRecordsPerSecond: "7", ErrorRecordsPerSecond: "2", LastError: "good-engine-1: sink write failed"},
		}
		if got := getQuery(t, good).Status.Statements; !slices.Equal(got, want) {
			return fmt.Errorf("status.statements %+v; want %+v", got, want)
		}
		return nil
	})
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

// TestStatementSetRollout: the engines of a statement set with spec.state
// are replaced all at once (Recreate) when its statements change, so that
// engines of other statements never share its consumer group, and rolled
// (RollingUpdate) on other changes.
func TestStatementSetRollout(t *testing.T) {
	ctx := context.Background()
	sq := newKafkaQuery(newNamespace(t), "rollout", "", 2)
	sq.Spec.Query, sq.Spec.Sink = "", nil
	sq.Spec.Sources[0].Kafka.PartitionedBy = []string{"symbol"}
	statement := func(name, query string) v1alpha1.Statement {
		return v1alpha1.Statement{Name: name, Query: query, Sink: v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: []string{"kafka:9092"}, Topic: name}}}
	}
	sq.Spec.Statements = []v1alpha1.Statement{
		statement("copy", "SELECT symbol, price FROM trades"),
		statement("totals", "SELECT symbol, sum(quantity) AS q FROM TUMBLE(trades, _timestamp, INTERVAL '1' MINUTE) GROUP BY window_start, window_end, symbol"),
	}
	sq.Spec.State = &v1alpha1.StateSpec{}
	if err := k8s.Create(ctx, sq); err != nil {
		t.Fatal(err)
	}
	update := func(mutate func(*v1alpha1.StreamQuery)) { t.Helper(); updateQuery(t, sq, mutate) }
	hash := ""
	rolledOut := func(what string, want appsv1.DeploymentStrategyType, statements string) {
		t.Helper()
		eventually(t, 10*time.Second, func() error {
			var d appsv1.Deployment
			if err := k8s.Get(ctx, key(sq), &d); err != nil {
				return err
			}
			if h := d.Spec.Template.Annotations[AnnotationSpecHash]; h == hash {
				return fmt.Errorf("%s: the template is not rendered again", what)
			}
			if d.Spec.Strategy.Type != want || d.Annotations[AnnotationStatements] != statements {
				return fmt.Errorf("%s: strategy %s, statements %q; want %s, %q", what, d.Spec.Strategy.Type, d.Annotations[AnnotationStatements], want, statements)
			}
			hash = d.Spec.Template.Annotations[AnnotationSpecHash]
			return nil
		})
	}
	rolledOut("created", appsv1.RecreateDeploymentStrategyType, "copy,totals")
	update(func(q *v1alpha1.StreamQuery) { q.Spec.Statements[0].Query = "SELECT symbol FROM trades" })
	rolledOut("a statement's query changed", appsv1.RollingUpdateDeploymentStrategyType, "copy,totals")
	update(func(q *v1alpha1.StreamQuery) {
		q.Spec.Statements = append(q.Spec.Statements, statement("counts", "SELECT symbol, count(*) AS n FROM TUMBLE(trades, _timestamp, INTERVAL '1' MINUTE) GROUP BY window_start, window_end, symbol"))
	})
	rolledOut("a statement added", appsv1.RecreateDeploymentStrategyType, "copy,totals,counts")
	update(func(q *v1alpha1.StreamQuery) { q.Spec.Runtime.BatchSize = 256 })
	rolledOut("the runtime changed", appsv1.RollingUpdateDeploymentStrategyType, "copy,totals,counts")
}
