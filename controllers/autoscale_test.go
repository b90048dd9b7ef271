package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/api/enginestatus"
	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// runDeployment does, for the query's engine Deployment, what the
// Deployment controller absent from envtest would: it keeps as many ready
// pods of the current template as the Deployment asks for, each answering
// with the document doc returns, and reports them on the Deployment's
// status. It returns the most replicas it has seen asked for.
func runDeployment(t *testing.T, sq *v1alpha1.StreamQuery, doc func() enginestatus.Document) *atomic.Int32 {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	addr := fakeEngineOf(t, doc)
	var most atomic.Int32
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			time.Sleep(100 * time.Millisecond)
			var d appsv1.Deployment
			if err := k8s.Get(ctx, key(sq), &d); err != nil {
				continue
			}
			want := int(*d.Spec.Replicas)
			if int32(want) > most.Load() {
				most.Store(int32(want))
			}
			var pods corev1.PodList
			if err := k8s.List(ctx, &pods, client.InNamespace(sq.Namespace), client.MatchingLabels(selectorLabels(sq))); err != nil {
				continue
			}
			for i := len(pods.Items); i < want; i++ {
				pod := &corev1.Pod{
					ObjectMeta: metav1.ObjectMeta{Namespace: sq.Namespace, GenerateName: sq.Name + "-engine-", Labels: objectLabels(sq),
						Annotations: map[string]string{AnnotationSpecHash: d.Spec.Template.Annotations[AnnotationSpecHash]}},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: engineContainerName, Image: testImage}}},
				}
				if err := k8s.Create(ctx, pod); err != nil {
					continue
				}
				pod.Status = corev1.PodStatus{
					Phase: corev1.PodRunning, PodIP: "127.0.0.1",
					Conditions:        []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
					ContainerStatuses: []corev1.ContainerStatus{{Name: engineContainerName, Image: testImage, Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}},
				}
				k8s.Status().Update(ctx, pod)
				engineAddrs.Store(pod.Name, addr)
			}
			for i := want; i < len(pods.Items); i++ {
				k8s.Delete(ctx, &pods.Items[i], client.GracePeriodSeconds(0))
			}
			n := int32(want)
			d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: n, UpdatedReplicas: n, ReadyReplicas: n, AvailableReplicas: n}
			k8s.Status().Update(ctx, &d)
		}
	}()
	return &most
}

// TestAutoscaling: engines that fall behind are added to, up to the
// partitions their sources have (not maxReplicas), at most maxStep at a
// time, each step recorded on the status and as an event; once they have
// caught up they are removed down to minReplicas after the scale-down
// window.
func TestAutoscaling(t *testing.T) {
	ctx := context.Background()
	sq := newKafkaQuery(newNamespace(t), "elastic", "SELECT symbol FROM trades", 5) // replicas, ignored
	sq.Spec.Autoscaling = &v1alpha1.AutoscalingSpec{
		MinReplicas: 1, MaxReplicas: 6, TargetLagSeconds: 10, MaxStep: 2,
		ScaleUpStabilization:   &metav1.Duration{Duration: time.Second},
		ScaleDownStabilization: &metav1.Duration{Duration: 2 * time.Second},
	}
	if err := k8s.Create(ctx, sq); err != nil {
		t.Fatal(err)
	}
	// Each engine 5000 records behind, reading 100 a second: 50 s to catch
	// up against a target of 10 s. The topic has 4 partitions.
	var behind atomic.Bool
	behind.Store(true)
	most := runDeployment(t, sq, func() enginestatus.Document {
		doc := enginestatus.Document{Health: enginestatus.Healthy, Rates: enginestatus.Rates{Input: 100}, Lag: ptr(int64(0)), UptimeSeconds: 60}
		if behind.Load() {
			doc.Lag = ptr(int64(5000))
		}
		for p := range int32(4) {
			doc.Sources = append(doc.Sources, enginestatus.Partition{Source: "trades", Topic: "trades", Partition: p})
		}
		return doc
	})

	var st v1alpha1.StreamQueryStatus
	eventually(t, 20*time.Second, func() error {
		st = getQuery(t, sq).Status
		if a := st.Autoscaling; a == nil || a.DesiredReplicas != 4 {
			b, _ := json.Marshal(st.Autoscaling)
			return fmt.Errorf("autoscaling %s; want 4 engines, the partitions", b)
		}
		return nil
	})
	a := st.Autoscaling
	if a.Partitions != 4 || !strings.Contains(a.Limit, "the sources' 4 partitions") || a.LastScaleTime == nil || !strings.Contains(a.LastScaleReason, "3 → 4 engines: lag 50s") {
		b, _ := json.Marshal(a)
		t.Errorf("autoscaling %s; want 4 partitions, held at them, scaled 3 → 4 for the lag", b)
	}
	var d appsv1.Deployment
	if err := k8s.Get(ctx, key(sq), &d); err != nil || *d.Spec.Replicas != 4 {
		t.Errorf("Deployment replicas %d (%v); want 4", *d.Spec.Replicas, err)
	}
	var events corev1.EventList
	if err := k8s.List(ctx, &events, client.InNamespace(sq.Namespace)); err != nil {
		t.Fatal(err)
	}
	var steps []string
	for _, e := range events.Items {
		if e.Reason == "Scaled" {
			steps = append(steps, strings.SplitN(e.Message, ":", 2)[0])
		}
	}
	if strings.Join(steps, ", ") != "1 → 3 engines, 3 → 4 engines" {
		t.Errorf("Scaled events %q; want 1 → 3 (maxStep 2) then 3 → 4", steps)
	}

	// Caught up: down to minReplicas, maxStep at a time.
	behind.Store(false)
	eventually(t, 20*time.Second, func() error {
		st = getQuery(t, sq).Status
		if a := st.Autoscaling; a == nil || a.DesiredReplicas != 1 || a.Limit != "" {
			b, _ := json.Marshal(st.Autoscaling)
			return fmt.Errorf("autoscaling %s; want 1 engine, unlimited", b)
		}
		return nil
	})
	if !strings.Contains(st.Autoscaling.LastScaleReason, "2 → 1 engines") {
		t.Errorf("last scale %q; want 2 → 1 (4 → 2 → 1, maxStep 2)", st.Autoscaling.LastScaleReason)
	}
	if m := most.Load(); m != 4 {
		t.Errorf("at most %d engines; want 4: never more than the partitions", m)
	}
	// spec.replicas (5) is ignored while autoscaling is set.
	if err := k8s.Get(ctx, key(sq), &d); err != nil || *d.Spec.Replicas != 1 {
		t.Errorf("Deployment replicas %d (%v); want 1", *d.Spec.Replicas, err)
	}
}

// TestAutoscaleWithSilentEngine: an engine that does not answer (starved
// of CPU, say) does not hold the others back from adding engines, but no
// engine is removed on the figures of only some.
func TestAutoscaleWithSilentEngine(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rec := &StreamQueryReconciler{Now: func() time.Time { return now }}
	sq := newKafkaQuery("ns", "partial", "SELECT symbol FROM trades", 1)
	sq.Spec.Autoscaling = &v1alpha1.AutoscalingSpec{MinReplicas: 1, MaxReplicas: 6, TargetLagSeconds: 10, MaxStep: 3,
		ScaleUpStabilization: &metav1.Duration{}, ScaleDownStabilization: &metav1.Duration{}}
	sq.Spec.Default()
	doc := &enginestatus.Document{UptimeSeconds: 60, Sources: []enginestatus.Partition{
		{Source: "trades", Partition: 0}, {Source: "trades", Partition: 1}, {Source: "trades", Partition: 2}, {Source: "trades", Partition: 3}}}
	answered := engineReport{pod: "a", ready: true, doc: doc}
	silent := engineReport{pod: "b", ready: true, err: fmt.Errorf("timeout")}
	decide := func(lagSeconds int64, reports ...engineReport) int32 {
		t.Helper()
		status := &v1alpha1.StreamQueryStatus{Lag: &v1alpha1.Lag{Records: ptr(lagSeconds * 100), Seconds: ptr(lagSeconds)}}
		now = now.Add(time.Second)
		got, _ := rec.autoscale(sq, &v1alpha1.StreamQueryStatus{}, status, reports, 2, false)
		return got
	}
	if got := decide(50, answered, silent); got != 4 {
		t.Errorf("50 s behind, one of two engines answering: %d engines; want 4 (the partitions)", got)
	}
	if got := decide(0, answered, silent); got != 2 {
		t.Errorf("no lag, one of two engines answering: %d engines; want 2: none removed on partial figures", got)
	}
	if got := decide(0, answered, engineReport{pod: "b", ready: true, doc: doc}); got != 1 {
		t.Errorf("no lag, both engines answering: %d engines; want 1", got)
	}
	if got := decide(50, silent, silent); got != 2 {
		t.Errorf("no engine answering: %d engines; want 2, no decision", got)
	}
}
