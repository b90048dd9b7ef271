package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/api/enginestatus"
	"github.com/sluice-dev/sluice/api/v1alpha1"
)

func newQuery(ns, name, query string) *v1alpha1.StreamQuery {
	return &v1alpha1.StreamQuery{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.StreamQuerySpec{
			Sources: []v1alpha1.Source{{Name: "trades", Datagen: &v1alpha1.DatagenSource{Generator: "trades", Rate: 100}}},
			Query:   query,
			Sink:    &v1alpha1.Sink{Null: &v1alpha1.NullSink{}},
		},
	}
}

// newKafkaQuery is newQuery over a Kafka topic of trades: several engines
// of one query divide only a Kafka source between them. Its engines are
// simulated, and the operator never connects to the brokers.
func newKafkaQuery(ns, name, query string, replicas int32) *v1alpha1.StreamQuery {
	sq := newQuery(ns, name, query)
	sq.Spec.Sources[0] = v1alpha1.Source{
		Name:  "trades",
		Kafka: &v1alpha1.KafkaSource{Brokers: []string{"kafka:9092"}, Topic: "trades"},
		Schema: []v1alpha1.Column{
			{Name: "symbol", Type: "text"}, {Name: "price", Type: "decimal(18,4)"}, {Name: "quantity", Type: "bigint"},
		},
	}
	sq.Spec.Replicas = ptr(replicas)
	return sq
}

func getQuery(t *testing.T, sq *v1alpha1.StreamQuery) *v1alpha1.StreamQuery {
	t.Helper()
	var got v1alpha1.StreamQuery
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(sq), &got); err != nil {
		t.Fatal(err)
	}
	return &got
}

// updateQuery changes sq's spec by mutate, again on a conflict.
func updateQuery(t *testing.T, sq *v1alpha1.StreamQuery, mutate func(*v1alpha1.StreamQuery)) {
	t.Helper()
	eventually(t, 10*time.Second, func() error {
		got := getQuery(t, sq)
		mutate(got)
		return k8s.Update(context.Background(), got)
	})
}

func key(sq *v1alpha1.StreamQuery) types.NamespacedName {
	return types.NamespacedName{Namespace: sq.Namespace, Name: childName(sq)}
}

// TestCreate: a valid query gets its ConfigMap, Deployment and Service, each
// owned by it, with the engine's image, arguments and probes.
func TestCreate(t *testing.T) {
	ctx := context.Background()
	sq := newKafkaQuery(newNamespace(t), "trades", "SELECT symbol, price FROM trades WHERE price > 100", 2)
	sq.Spec.Resources = corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")}}
	if err := k8s.Create(ctx, sq); err != nil {
		t.Fatal(err)
	}
	var cm corev1.ConfigMap
	var d appsv1.Deployment
	var svc corev1.Service
	eventually(t, 10*time.Second, func() error {
		for _, obj := range []client.Object{&cm, &d, &svc} {
			if err := k8s.Get(ctx, key(sq), obj); err != nil {
				return err
			}
		}
		return nil
	})
	owner := getQuery(t, sq)
	for _, obj := range []client.Object{&cm, &d, &svc} {
		refs := obj.GetOwnerReferences()
		if len(refs) != 1 || refs[0].UID != owner.UID || refs[0].Controller == nil || !*refs[0].Controller {
			t.Errorf("%T %s owner references %+v; want the StreamQuery as controller", obj, obj.GetName(), refs)
		}
	}
	if m := cm.Data[manifestKey]; !strings.Contains(m, "kind: StreamQuery") || !strings.Contains(m, "WHERE price > 100") {
		t.Errorf("ConfigMap manifest:\n%s", m)
	}
	if *d.Spec.Replicas != 2 {
		t.Errorf("replicas %d; want 2", *d.Spec.Replicas)
	}
	c := d.Spec.Template.Spec.Containers[0]
	if c.Image != testImage || strings.Join(c.Args, " ") != "run -f /etc/sluice/query.yaml --http :8080 --log-format json --progress never" {
		t.Errorf("container image %q args %q", c.Image, c.Args)
	}
	if c.LivenessProbe.HTTPGet.Path != "/healthz" || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("probes %+v %+v; want /healthz and /readyz", c.LivenessProbe.HTTPGet, c.ReadinessProbe.HTTPGet)
	}
	if c.Resources.Limits.Memory().String() != "256Mi" {
		t.Errorf("resources %+v; want the spec's", c.Resources)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	if env["GOMEMLIMIT"] != strconv.Itoa(256<<20*9/10) {
		t.Errorf("GOMEMLIMIT %q; want 90%% of the 256Mi limit, %d", env["GOMEMLIMIT"], 256<<20*9/10)
	}
	if sc := d.Spec.Template.Spec.SecurityContext; sc.RunAsUser == nil || *sc.RunAsUser != 65532 || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("pod security context %+v; want non-root as user 65532", sc)
	}
	ann := d.Spec.Template.Annotations
	if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/port"] != "8080" || ann[AnnotationSpecHash] == "" {
		t.Errorf("pod template annotations %v", ann)
	}
	if svc.Spec.Ports[0].Port != 8080 || svc.Spec.Selector[LabelQuery] != sq.Name || svc.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("service %+v; want a headless Service of port 8080 selecting the engines", svc.Spec)
	}
	eventually(t, 10*time.Second, func() error {
		got := getQuery(t, sq)
		if got.Status.Phase != v1alpha1.PhasePending || got.Status.Ready != "0/2" || got.Status.Selector == "" {
			return fmt.Errorf("status %+v; want Pending, 0/2 and a selector", got.Status)
		}
		c := meta.FindStatusCondition(got.Status.Conditions, ConditionReady)
		if c == nil || c.ObservedGeneration != got.Generation {
			return fmt.Errorf("Ready condition %+v; want one for generation %d", c, got.Generation)
		}
		return nil
	})
}

// TestInvalidQuery: a query the planner rejects gets Ready=False with reason
// InvalidQuery and the position of the problem, and no workload.
func TestInvalidQuery(t *testing.T) {
	ctx := context.Background()
	sq := newQuery(newNamespace(t), "bad", "SELECT symbol,\n       nope\nFROM trades")
	if err := k8s.Create(ctx, sq); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		got := getQuery(t, sq)
		c := meta.FindStatusCondition(got.Status.Conditions, ConditionReady)
		if c == nil || c.Status != metav1.ConditionFalse || c.Reason != ReasonInvalidQuery {
			return fmt.Errorf("Ready condition %+v; want False, InvalidQuery", c)
		}
		if !strings.Contains(c.Message, `spec.query: line 2, column 8: unknown column "nope"`) {
			return fmt.Errorf("message %q; want the line and column of the unknown column", c.Message)
		}
		if got.Status.Phase != v1alpha1.PhaseFailed {
			return fmt.Errorf("phase %s; want Failed", got.Status.Phase)
		}
		return nil
	})
	var d appsv1.Deployment
	if err := k8s.Get(ctx, key(sq), &d); !apierrors.IsNotFound(err) {
		t.Errorf("Get Deployment = %v; want NotFound", err)
	}
	// The transition is recorded as an event on the query.
	eventually(t, 10*time.Second, func() error {
		var evs eventsv1.EventList
		if err := k8s.List(ctx, &evs, client.InNamespace(sq.Namespace)); err != nil {
			return err
		}
		for _, e := range evs.Items {
			if e.Regarding.Name == sq.Name && e.Reason == "PhaseChanged" && e.Type == corev1.EventTypeWarning && strings.Contains(e.Note, "Failed") {
				return nil
			}
		}
		return fmt.Errorf("no PhaseChanged warning event among %d events", len(evs.Items))
	})
}

// TestUpdateSuspendResume: a spec change rolls the pods through a new template
// hash; suspend scales to zero; resume restores the replicas.
func TestUpdateSuspendResume(t *testing.T) {
	ctx := context.Background()
	sq := newKafkaQuery(newNamespace(t), "rolling", "SELECT symbol FROM trades", 3)
	if err := k8s.Create(ctx, sq); err != nil {
		t.Fatal(err)
	}
	var d appsv1.Deployment
	eventually(t, 10*time.Second, func() error { return k8s.Get(ctx, key(sq), &d) })
	hash := d.Spec.Template.Annotations[AnnotationSpecHash]

	update := func(mutate func(*v1alpha1.StreamQuery)) { t.Helper(); updateQuery(t, sq, mutate) }
	update(func(q *v1alpha1.StreamQuery) { q.Spec.Query = "SELECT symbol, price FROM trades" })
	eventually(t, 10*time.Second, func() error {
		if err := k8s.Get(ctx, key(sq), &d); err != nil {
			return err
		}
		if h := d.Spec.Template.Annotations[AnnotationSpecHash]; h == hash {
			return fmt.Errorf("template hash still %s after a spec change", h)
		}
		return nil
	})

	update(func(q *v1alpha1.StreamQuery) { q.Spec.Suspend = true })
	eventually(t, 10*time.Second, func() error {
		if err := k8s.Get(ctx, key(sq), &d); err != nil {
			return err
		}
		got := getQuery(t, sq)
		if *d.Spec.Replicas != 0 || got.Status.Phase != v1alpha1.PhaseSuspended {
			return fmt.Errorf("replicas %d, phase %s; want 0, Suspended", *d.Spec.Replicas, got.Status.Phase)
		}
		return nil
	})
	update(func(q *v1alpha1.StreamQuery) { q.Spec.Suspend = false })
	eventually(t, 10*time.Second, func() error {
		if err := k8s.Get(ctx, key(sq), &d); err != nil {
			return err
		}
		if got := getQuery(t, sq); *d.Spec.Replicas != 3 || got.Status.Phase == v1alpha1.PhaseSuspended {
			return fmt.Errorf("replicas %d, phase %s; want 3 and not Suspended", *d.Spec.Replicas, got.Status.Phase)
		}
		return nil
	})
}

// TestReconcileWritesOnlyChanges: once a query's objects are in place, the
// reconciles that follow, every poll interval, write none of them: the API
// server's defaults in the Deployment are not a difference.
func TestReconcileWritesOnlyChanges(t *testing.T) {
	ctx := context.Background()
	sq := newQuery(newNamespace(t), "steady", "SELECT symbol FROM trades")
	if err := k8s.Create(ctx, sq); err != nil {
		t.Fatal(err)
	}
	var d appsv1.Deployment
	eventually(t, 10*time.Second, func() error { return k8s.Get(ctx, key(sq), &d) })
	eventually(t, 10*time.Second, func() error {
		if getQuery(t, sq).Status.ObservedGeneration == 0 {
			return fmt.Errorf("no status yet")
		}
		return nil
	})
	before := map[string]int64{}
	for _, kind := range []string{"ConfigMap", "Deployment", "Service"} {
		before[kind] = writesTo(kind, sq.Namespace, childName(sq))
	}
	time.Sleep(4 * 500 * time.Millisecond) // four poll intervals: four reconciles at least
	for _, kind := range []string{"ConfigMap", "Deployment", "Service"} {
		if n := writesTo(kind, sq.Namespace, childName(sq)) - before[kind]; n != 0 {
			t.Errorf("%s written %d times by reconciles that changed nothing", kind, n)
		}
	}
}

// TestScaleKeepsEngines: scaling and suspending change the Deployment's
// replicas only: the pod template, and so the running engines, stay.
func TestScaleKeepsEngines(t *testing.T) {
	ctx := context.Background()
	sq := newKafkaQuery(newNamespace(t), "scaled", "SELECT symbol FROM trades", 1)
	if err := k8s.Create(ctx, sq); err != nil {
		t.Fatal(err)
	}
	var d appsv1.Deployment
	eventually(t, 10*time.Second, func() error { return k8s.Get(ctx, key(sq), &d) })
	template := d.Spec.Template.DeepCopy()
	for _, step := range []struct {
		name     string
		mutate   func(*v1alpha1.StreamQuery)
		replicas int32
	}{
		{"scale to 3", func(q *v1alpha1.StreamQuery) { q.Spec.Replicas = ptr(int32(3)) }, 3},
		{"suspend", func(q *v1alpha1.StreamQuery) { q.Spec.Suspend = true }, 0},
		{"resume", func(q *v1alpha1.StreamQuery) { q.Spec.Suspend = false }, 3},
	} {
		eventually(t, 10*time.Second, func() error {
			got := getQuery(t, sq)
			step.mutate(got)
			return k8s.Update(ctx, got)
		})
		eventually(t, 10*time.Second, func() error {
			if err := k8s.Get(ctx, key(sq), &d); err != nil {
				return err
			}
			if *d.Spec.Replicas != step.replicas {
				return fmt.Errorf("%s: replicas %d; want %d", step.name, *d.Spec.Replicas, step.replicas)
			}
			return nil
		})
		if !equality.Semantic.DeepEqual(d.Spec.Template, *template) {
			t.Fatalf("%s changed the pod template, which restarts every engine:\nbefore %+v\nafter  %+v", step.name, template.Annotations, d.Spec.Template.Annotations)
		}
	}
}

// enginePod creates a pod of the query's engines, as its Deployment would,
// and sets its status, as a kubelet would.
func enginePod(t *testing.T, sq *v1alpha1.StreamQuery, name string, ready bool, restarts int32, waiting string) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: sq.Namespace, Name: name, Labels: objectLabels(sq)},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: engineContainerName, Image: testImage}}},
	}
	if err := k8s.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	readyStatus := corev1.ConditionFalse
	if ready {
		readyStatus = corev1.ConditionTrue
	}
	cs := corev1.ContainerStatus{Name: engineContainerName, Image: testImage, RestartCount: restarts, Ready: ready}
	if waiting != "" {
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: waiting}
	} else {
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.Now()}
	}
	pod.Status = corev1.PodStatus{
		Phase:             corev1.PodRunning,
		PodIP:             "127.0.0.1",
		Conditions:        []corev1.PodCondition{{Type: corev1.PodReady, Status: readyStatus}},
		ContainerStatuses: []corev1.ContainerStatus{cs},
	}
	if err := k8s.Status().Update(ctx, pod); err != nil {
		t.Fatal(err)
	}
	return pod
}

// TestRestartsAndCrashLoop: container restarts add up on the status, and a
// crash-looping engine makes the query Degraded.
func TestRestartsAndCrashLoop(t *testing.T) {
	sq := newKafkaQuery(newNamespace(t), "crashy", "SELECT symbol FROM trades", 2)
	if err := k8s.Create(context.Background(), sq); err != nil {
		t.Fatal(err)
	}
	enginePod(t, sq, "crashy-engine-a", false, 2, "")
	enginePod(t, sq, "crashy-engine-b", false, 5, ReasonCrashLoop)
	eventually(t, 15*time.Second, func() error {
		got := getQuery(t, sq)
		if got.Status.Restarts != 7 {
			return fmt.Errorf("restarts %d; want 7", got.Status.Restarts)
		}
		c := meta.FindStatusCondition(got.Status.Conditions, ConditionDegraded)
		if c == nil || c.Status != metav1.ConditionTrue || c.Reason != ReasonCrashLoop || !strings.Contains(c.Message, "crashy-engine-b") {
			return fmt.Errorf("Degraded condition %+v; want True, CrashLoopBackOff, naming the pod", c)
		}
		if got.Status.Phase != v1alpha1.PhaseDegraded {
			return fmt.Errorf("phase %s; want Degraded", got.Status.Phase)
		}
		return nil
	})
}

// TestUnreachableEngine: a ready pod whose engine does not answer makes the
// health Unknown; the reconcile goes on and the rest of the status is right.
func TestUnreachableEngine(t *testing.T) {
	sq := newQuery(newNamespace(t), "silent", "SELECT symbol FROM trades")
	if err := k8s.Create(context.Background(), sq); err != nil {
		t.Fatal(err)
	}
	pod := enginePod(t, sq, "silent-engine-0", true, 0, "")
	engineAddrs.Store(pod.Name, "127.0.0.1:1") // nothing listens there
	eventually(t, 20*time.Second, func() error {
		got := getQuery(t, sq)
		if got.Status.Health != v1alpha1.HealthUnknown || got.Status.Ready != "1/1" || got.Status.Phase != v1alpha1.PhaseRunning {
			return fmt.Errorf("status %+v; want health Unknown, 1/1 ready, Running", got.Status)
		}
		return nil
	})
}

// setPodStatus sets the status of the engine container of a pod made by
// enginePod, as a kubelet would.
func setPodStatus(t *testing.T, pod *corev1.Pod, ready bool, mutate func(*corev1.ContainerStatus)) {
	t.Helper()
	ctx := context.Background()
	eventually(t, 10*time.Second, func() error {
		var got corev1.Pod
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(pod), &got); err != nil {
			return err
		}
		cs := &got.Status.ContainerStatuses[0]
		cs.Ready = ready
		mutate(cs)
		got.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse}}
		if ready {
			got.Status.Conditions[0].Status = corev1.ConditionTrue
		}
		return k8s.Status().Update(ctx, &got)
	})
}

// TestRestartsCumulative: restarts count over the life of the query: a
// replaced pod's restarts stay counted, and the last restart has its time.
func TestRestartsCumulative(t *testing.T) {
	ctx := context.Background()
	sq := newQuery(newNamespace(t), "replaced", "SELECT symbol FROM trades")
	if err := k8s.Create(ctx, sq); err != nil {
		t.Fatal(err)
	}
	a := enginePod(t, sq, "replaced-engine-a", true, 2, "")
	restarts := func(want int32) {
		t.Helper()
		eventually(t, 15*time.Second, func() error {
			st := getQuery(t, sq).Status
			if st.Restarts != want || st.LastRestartTime == nil {
				return fmt.Errorf("restarts %d, last restart %v; want %d with a time", st.Restarts, st.LastRestartTime, want)
			}
			return nil
		})
	}
	restarts(2)
	finished := metav1.NewTime(time.Now().Add(-time.Minute).Truncate(time.Second))
	setPodStatus(t, a, true, func(cs *corev1.ContainerStatus) {
		cs.RestartCount = 3
		cs.LastTerminationState.Terminated = &corev1.ContainerStateTerminated{ExitCode: 1, FinishedAt: finished}
	})
	restarts(3)
	if got := getQuery(t, sq).Status.LastRestartTime; !got.Equal(&finished) {
		t.Errorf("last restart %v; want the container's last termination, %v", got, finished)
	}
	if err := k8s.Delete(ctx, a, client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}
	enginePod(t, sq, "replaced-engine-b", true, 1, "")
	restarts(4) // 3 of the replaced pod, 1 of its successor
}

// TestStuckEngines: an engine that cannot start, whatever the reason its
// container waits for, makes the query Degraded with that reason and the
// kubelet's message; so does a crash-looping engine between two back-offs,
// running but not ready yet.
func TestStuckEngines(t *testing.T) {
	for i, tt := range []struct {
		reason, message string
		status          func(*corev1.ContainerStatus)
	}{
		{"ImagePullBackOff", `Back-off pulling image "nowhere/engine:dev"`, nil},
		{"CreateContainerConfigError", `secret "kafka-credentials" not found`, nil},
		{ReasonCrashLoop, "restarted after a failure", func(cs *corev1.ContainerStatus) {
			cs.State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}
			cs.RestartCount = 2 // a repeat: one failure is not a loop
			cs.LastTerminationState.Terminated = &corev1.ContainerStateTerminated{ExitCode: 1, FinishedAt: metav1.NewTime(time.Now().Add(-10 * time.Second)),
				Message: "sluice: failed: record failed at stage decode"}
		}},
	} {
		t.Run(tt.reason, func(t *testing.T) {
			sq := newQuery(newNamespace(t), fmt.Sprintf("stuck-%d", i), "SELECT symbol FROM trades")
			if err := k8s.Create(context.Background(), sq); err != nil {
				t.Fatal(err)
			}
			pod := enginePod(t, sq, sq.Name+"-engine-0", false, 0, tt.reason)
			if tt.status != nil {
				setPodStatus(t, pod, false, tt.status)
			} else {
				setPodStatus(t, pod, false, func(cs *corev1.ContainerStatus) { cs.State.Waiting.Message = tt.message })
			}
			eventually(t, 15*time.Second, func() error {
				got := getQuery(t, sq)
				ready := meta.FindStatusCondition(got.Status.Conditions, ConditionReady)
				degraded := meta.FindStatusCondition(got.Status.Conditions, ConditionDegraded)
				if got.Status.Phase != v1alpha1.PhaseDegraded || ready == nil || ready.Reason != tt.reason ||
					degraded == nil || degraded.Status != metav1.ConditionTrue || !strings.Contains(degraded.Message, tt.message) {
					return fmt.Errorf("phase %s, Ready %+v, Degraded %+v; want Degraded for %s: %s", got.Status.Phase, ready, degraded, tt.reason, tt.message)
				}
				if tt.status != nil && !strings.Contains(got.Status.LastError, "record failed at stage decode") {
					return fmt.Errorf("last error %q; want the crash-looping engine's last failure, running between back-offs", got.Status.LastError)
				}
				return nil
			})
		})
	}
}

// TestProgressDeadline: a rollout past the Deployment's progress deadline
// is not Progressing forever: Progressing turns False with the Deployment
// controller's reason and message, and the query Degraded.
func TestProgressDeadline(t *testing.T) {
	ctx := context.Background()
	sq := newQuery(newNamespace(t), "deadline", "SELECT symbol FROM trades")
	if err := k8s.Create(ctx, sq); err != nil {
		t.Fatal(err)
	}
	var d appsv1.Deployment
	eventually(t, 10*time.Second, func() error { return k8s.Get(ctx, key(sq), &d) })
	const msg = `ReplicaSet "deadline-engine-5d4f" has timed out progressing.`
	eventually(t, 10*time.Second, func() error {
		if err := k8s.Get(ctx, key(sq), &d); err != nil {
			return err
		}
		d.Status.Conditions = []appsv1.DeploymentCondition{{
			Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: ReasonProgressDeadline, Message: msg,
		}}
		return k8s.Status().Update(ctx, &d)
	})
	eventually(t, 15*time.Second, func() error {
		got := getQuery(t, sq)
		p := meta.FindStatusCondition(got.Status.Conditions, ConditionProgressing)
		if got.Status.Phase != v1alpha1.PhaseDegraded || p == nil || p.Status != metav1.ConditionFalse || p.Reason != ReasonProgressDeadline || p.Message != msg {
			return fmt.Errorf("phase %s, Progressing %+v; want Degraded, Progressing False %s", got.Status.Phase, p, ReasonProgressDeadline)
		}
		return nil
	})
}

// TestProgressingCountsCurrentEngines: during a rollout, engines of the old
// spec are not counted as updated, ready as they are.
func TestProgressingCountsCurrentEngines(t *testing.T) {
	ctx := context.Background()
	sq := newQuery(newNamespace(t), "rollout", "SELECT symbol FROM trades")
	if err := k8s.Create(ctx, sq); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: sq.Namespace, Name: "rollout-engine-old", Labels: objectLabels(sq),
			Annotations: map[string]string{AnnotationSpecHash: "an-older-spec"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: engineContainerName, Image: testImage}}},
	}
	if err := k8s.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	pod.Status = corev1.PodStatus{
		Phase: corev1.PodRunning, PodIP: "127.0.0.1",
		Conditions:        []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
		ContainerStatuses: []corev1.ContainerStatus{{Name: engineContainerName, Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}},
	}
	if err := k8s.Status().Update(ctx, pod); err != nil {
		t.Fatal(err)
	}
	// As the Deployment controller reports it: the new pod is created, not
	// ready yet; the old one still runs.
	var d appsv1.Deployment
	eventually(t, 10*time.Second, func() error {
		if err := k8s.Get(ctx, key(sq), &d); err != nil {
			return err
		}
		d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: 2, UpdatedReplicas: 1, ReadyReplicas: 1}
		return k8s.Status().Update(ctx, &d)
	})
	want := func() error {
		p := meta.FindStatusCondition(getQuery(t, sq).Status.Conditions, ConditionProgressing)
		if p == nil || p.Status != metav1.ConditionTrue || p.Message != "0 of 1 engines updated and ready" {
			return fmt.Errorf("Progressing %+v; want True, 0 of 1 engines updated and ready", p)
		}
		return nil
	}
	eventually(t, 15*time.Second, want)
	// Four poll intervals, every reconcile of which has seen the
	// Deployment's status: the old engine is never counted.
	for end := time.Now().Add(4 * 500 * time.Millisecond); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if err := want(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestNoWarningOnCreate: a new query whose engines have not answered yet is
// Unknown; that is recorded as no warning.
func TestNoWarningOnCreate(t *testing.T) {
	ctx := context.Background()
	sq := newQuery(newNamespace(t), "fresh", "SELECT symbol FROM trades")
	if err := k8s.Create(ctx, sq); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		if h := getQuery(t, sq).Status.Health; h != v1alpha1.HealthUnknown {
			return fmt.Errorf("health %q; want Unknown", h)
		}
		return nil
	})
	var phaseChanged bool
	eventually(t, 10*time.Second, func() error {
		var evs eventsv1.EventList
		if err := k8s.List(ctx, &evs, client.InNamespace(sq.Namespace)); err != nil {
			return err
		}
		for _, e := range evs.Items {
			if e.Reason == "HealthChanged" {
				t.Errorf("event %s %s: %s; want none for a new query", e.Type, e.Reason, e.Note)
			}
			phaseChanged = phaseChanged || e.Reason == "PhaseChanged"
		}
		if !phaseChanged {
			return fmt.Errorf("no PhaseChanged event yet, among %d", len(evs.Items))
		}
		return nil
	})
}

// TestTemplate: spec.template reaches the engine pods, added to what the
// operator renders, which wins where the two meet.
func TestTemplate(t *testing.T) {
	ctx := context.Background()
	sq := newQuery(newNamespace(t), "templated", "SELECT symbol FROM trades")
	sq.Spec.Resources = corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")}}
	sq.Spec.Template = &v1alpha1.EngineTemplate{
		Metadata: v1alpha1.EngineMetadata{
			Labels:      map[string]string{"team": "payments", LabelQuery: "not-this"},
			Annotations: map[string]string{"sidecar.example.com/inject": "false"},
		},
		Spec: v1alpha1.EnginePodSpec{
			ServiceAccountName: "kafka-reader",
			NodeSelector:       map[string]string{"pool": "streaming"},
			Tolerations:        []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "streaming", Effect: corev1.TaintEffectNoSchedule}},
			PriorityClassName:  "high",
			ImagePullSecrets:   []corev1.LocalObjectReference{{Name: "registry"}},
			Env: []corev1.EnvVar{
				{Name: "OTEL_EXPORTER_OTLP_ENDPOINT", Value: "http://collector:4318"},
				{Name: "GOMEMLIMIT", Value: "200MiB"},
			},
			EnvFrom:      []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "kafka-credentials"}}}},
			Volumes:      []runtime.RawExtension{raw(t, corev1.Volume{Name: "tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "kafka-tls"}}})},
			VolumeMounts: []corev1.VolumeMount{{Name: "tls", MountPath: "/etc/kafka-tls", ReadOnly: true}},
			Containers:   []runtime.RawExtension{raw(t, corev1.Container{Name: "log-shipper", Image: "example.com/shipper:1"})},
		},
	}
	if err := k8s.Create(ctx, sq); err != nil {
		t.Fatal(err)
	}
	var d appsv1.Deployment
	eventually(t, 10*time.Second, func() error { return k8s.Get(ctx, key(sq), &d) })
	pod := d.Spec.Template
	if pod.Labels["team"] != "payments" || pod.Labels[LabelQuery] != sq.Name {
		t.Errorf("pod labels %v; want the template's team, and the operator's %s", pod.Labels, LabelQuery)
	}
	if pod.Annotations["sidecar.example.com/inject"] != "false" || pod.Annotations[AnnotationSpecHash] == "" {
		t.Errorf("pod annotations %v; want the template's and the spec hash", pod.Annotations)
	}
	ps := pod.Spec
	if ps.ServiceAccountName != "kafka-reader" || ps.NodeSelector["pool"] != "streaming" || len(ps.Tolerations) != 1 ||
		ps.PriorityClassName != "high" || len(ps.ImagePullSecrets) != 1 {
		t.Errorf("pod spec %+v; want the template's service account, placement and pull secret", ps)
	}
	if len(ps.Volumes) != 2 || ps.Volumes[0].Name != "manifest" || ps.Volumes[1].Name != "tls" {
		t.Errorf("volumes %+v; want the manifest's, then the template's", ps.Volumes)
	}
	if len(ps.Containers) != 2 || ps.Containers[0].Name != engineContainerName || ps.Containers[1].Name != "log-shipper" {
		t.Errorf("containers %+v; want the engine, then the sidecar", ps.Containers)
	}
	engine := ps.Containers[0]
	var names []string
	for _, e := range engine.Env {
		names = append(names, e.Name+"="+e.Value)
	}
	if got := strings.Join(names, " "); got != "POD_NAME= POD_NAMESPACE= OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318 GOMEMLIMIT=200MiB" {
		t.Errorf("engine env %s; want the operator's, then the template's, whose GOMEMLIMIT replaces the operator's", got)
	}
	if len(engine.EnvFrom) != 1 || len(engine.VolumeMounts) != 2 || engine.VolumeMounts[1].MountPath != "/etc/kafka-tls" {
		t.Errorf("engine envFrom %+v, mounts %+v; want the template's after the manifest's", engine.EnvFrom, engine.VolumeMounts)
	}
	if engine.Args[0] != "run" || engine.LivenessProbe == nil || engine.Resources.Limits.Memory().String() != "256Mi" {
		t.Errorf("engine container %+v; want the operator's command, probes and resources", engine)
	}

	// A change of the template rolls the engines, as any spec change does.
	hash := d.Annotations[AnnotationTemplateHash]
	eventually(t, 10*time.Second, func() error {
		got := getQuery(t, sq)
		got.Spec.Template.Spec.PriorityClassName = "low"
		return k8s.Update(ctx, got)
	})
	eventually(t, 10*time.Second, func() error {
		if err := k8s.Get(ctx, key(sq), &d); err != nil {
			return err
		}
		if d.Spec.Template.Spec.PriorityClassName != "low" || d.Annotations[AnnotationTemplateHash] == hash {
			return fmt.Errorf("priority class %q, template hash %s; want low and a new hash", d.Spec.Template.Spec.PriorityClassName, d.Annotations[AnnotationTemplateHash])
		}
		return nil
	})
}

// raw is v as a spec.template item of its own schema.
func raw(t *testing.T, v any) runtime.RawExtension {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return runtime.RawExtension{Raw: b}
}

// fakeEngine serves doc as an engine's /status and returns its address:
// the engines' figures, without engines.
func fakeEngine(t testing.TB, doc enginestatus.Document) string {
	t.Helper()
	return fakeEngineOf(t, func() enginestatus.Document { return doc })
}

// fakeEngineOf is fakeEngine serving what doc returns at each poll.
func fakeEngineOf(t testing.TB, doc func() enginestatus.Document) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		d := doc()
		d.Version = enginestatus.Version
		_ = json.NewEncoder(w).Encode(d)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// TestLag: the engines' consumer lags add up on the status with the time
// to catch up at their summed input rate, the oldest watermark's delay and
// the oldest checkpoint's age, and the query is Lagging beyond
// spec.health's bound.
func TestLag(t *testing.T) {
	ctx := context.Background()
	sq := newKafkaQuery(newNamespace(t), "behind", "SELECT symbol FROM trades", 2)
	sq.Spec.Health.MaxLagRecords = ptr(int64(500))
	if err := k8s.Create(ctx, sq); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i, e := range []struct {
		lag       int64
		watermark time.Duration
	}{{600, 90 * time.Second}, {400, 30 * time.Second}} {
		pod := enginePod(t, sq, fmt.Sprintf("behind-engine-%d", i), true, 0, "")
		engineAddrs.Store(pod.Name, fakeEngine(t, enginestatus.Document{
			Health: enginestatus.Healthy, Lag: ptr(e.lag), Rates: enginestatus.Rates{Input: 50},
			EventTime:   &enginestatus.EventTime{Watermark: now.Add(-e.watermark)},
			Checkpoints: &enginestatus.Checkpoints{Completed: 1, Last: &enginestatus.Checkpoint{ID: 1, Time: now.Add(-e.watermark / 3)}},
		}))
	}
	eventually(t, 15*time.Second, func() error {
		st := getQuery(t, sq).Status
		l := st.Lag
		if l == nil || deref(l.Records) != 1000 || deref(l.Seconds) != 10 || deref(l.WatermarkDelaySeconds) < 90 {
			b, _ := json.Marshal(l)
			return fmt.Errorf("lag %s; want 1000 records, 10 s at 100 records/s, the oldest watermark 90 s behind", b)
		}
		if c := st.Checkpoint; c == nil || c.LastTime == nil || deref(c.AgeSeconds) < 30 || c.LastTime.Time.After(now.Add(-29*time.Second)) {
			return fmt.Errorf("checkpoint %+v; want the oldest engine's, 30 s old", c)
		}
		c := meta.FindStatusCondition(st.Conditions, ConditionLagging)
		if c == nil || c.Status != metav1.ConditionTrue || c.Reason != ReasonLagAboveBound || !strings.Contains(c.Message, "1000 records behind") {
			return fmt.Errorf("Lagging %+v; want True, %s", c, ReasonLagAboveBound)
		}
		return nil
	})
	// Without a bound there is no Lagging condition; the lag still shows.
	eventually(t, 10*time.Second, func() error {
		got := getQuery(t, sq)
		got.Spec.Health.MaxLagRecords = nil
		return k8s.Update(ctx, got)
	})
	eventually(t, 15*time.Second, func() error {
		st := getQuery(t, sq).Status
		if c := meta.FindStatusCondition(st.Conditions, ConditionLagging); c != nil || st.Lag == nil {
			return fmt.Errorf("Lagging %+v, lag %+v; want no condition, and the lag", c, st.Lag)
		}
		return nil
	})
}

// TestInvalidUpdateKeepsRunning: an invalid update of a running query is
// Failed with the problem, and says which generation's engines keep
// running, whose health, rates and readiness the status goes on showing,
// polled as before.
func TestInvalidUpdateKeepsRunning(t *testing.T) {
	ctx := context.Background()
	sq := newKafkaQuery(newNamespace(t), "updated", "SELECT symbol FROM trades", 1)
	if err := k8s.Create(ctx, sq); err != nil {
		t.Fatal(err)
	}
	var health atomic.Value
	health.Store(enginestatus.Healthy)
	pod := enginePod(t, sq, "updated-engine-0", true, 0, "")
	engineAddrs.Store(pod.Name, fakeEngineOf(t, func() enginestatus.Document {
		return enginestatus.Document{Health: health.Load().(enginestatus.Health), Rates: enginestatus.Rates{Input: 120}}
	}))
	var d appsv1.Deployment
	eventually(t, 10*time.Second, func() error { return k8s.Get(ctx, key(sq), &d) })
	// The Deployment's pod runs the current template, as the Deployment
	// controller would have it.
	eventually(t, 10*time.Second, func() error {
		var p corev1.Pod
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(pod), &p); err != nil {
			return err
		}
		p.Annotations = map[string]string{AnnotationSpecHash: d.Spec.Template.Annotations[AnnotationSpecHash]}
		return k8s.Update(ctx, &p)
	})

	eventually(t, 10*time.Second, func() error {
		got := getQuery(t, sq)
		got.Spec.Query = "SELECT nope FROM trades"
		return k8s.Update(ctx, got)
	})
	eventually(t, 15*time.Second, func() error {
		st := getQuery(t, sq).Status
		c := meta.FindStatusCondition(st.Conditions, ConditionReady)
		if st.Phase != v1alpha1.PhaseFailed || c == nil || c.Reason != ReasonInvalidQuery ||
			!strings.Contains(c.Message, "the engines of generation 1 keep running its spec") {
			return fmt.Errorf("phase %s, Ready %+v; want Failed, InvalidQuery, generation 1 running", st.Phase, c)
		}
		if st.Health != v1alpha1.Healthy || st.Ready != "1/1" || st.Throughput == nil || st.Throughput.InputRecordsPerSecond != "120" {
			return fmt.Errorf("health %s, ready %q, throughput %+v; want the running engine's: Healthy, 1/1, 120/s", st.Health, st.Ready, st.Throughput)
		}
		return nil
	})
	health.Store(enginestatus.Degraded)
	eventually(t, 15*time.Second, func() error {
		if h := getQuery(t, sq).Status.Health; h != v1alpha1.Degraded {
			return fmt.Errorf("health %s; want Degraded: the running engine is still polled", h)
		}
		return nil
	})
}

// TestCacheHoldsOwnPods: the manager caches only the pods the operator
// made (CacheOptions), so a pod that only looks like an engine, without
// app.kubernetes.io/managed-by, is not one.
func TestCacheHoldsOwnPods(t *testing.T) {
	ctx := context.Background()
	sq := newQuery(newNamespace(t), "lookalike", "SELECT symbol FROM trades")
	if err := k8s.Create(ctx, sq); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: sq.Namespace, Name: "lookalike-0", Labels: selectorLabels(sq)},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: engineContainerName, Image: testImage}}},
	}
	if err := k8s.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}
	if err := k8s.Status().Update(ctx, pod); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(4 * 500 * time.Millisecond); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if r := getQuery(t, sq).Status.Ready; r == "1/1" {
			t.Fatalf("ready %s: a pod the operator did not make counts as an engine", r)
		}
	}
}

// TestDisruptionBudget: spec.podDisruptionBudget keeps a
// PodDisruptionBudget of the engine pods, maxUnavailable 1 by default; it
// goes when the field does.
func TestDisruptionBudget(t *testing.T) {
	ctx := context.Background()
	sq := newKafkaQuery(newNamespace(t), "budgeted", "SELECT symbol FROM trades", 3)
	sq.Spec.PodDisruptionBudget = &v1alpha1.DisruptionBudget{}
	if err := k8s.Create(ctx, sq); err != nil {
		t.Fatal(err)
	}
	var pdb policyv1.PodDisruptionBudget
	eventually(t, 10*time.Second, func() error { return k8s.Get(ctx, key(sq), &pdb) })
	if mu := pdb.Spec.MaxUnavailable; mu == nil || mu.IntValue() != 1 || pdb.Spec.Selector.MatchLabels[LabelQuery] != sq.Name {
		t.Errorf("PodDisruptionBudget %+v; want maxUnavailable 1 over the query's engines", pdb.Spec)
	}
	if refs := pdb.OwnerReferences; len(refs) != 1 || refs[0].Name != sq.Name {
		t.Errorf("owner references %+v; want the query", refs)
	}
	eventually(t, 10*time.Second, func() error {
		got := getQuery(t, sq)
		got.Spec.PodDisruptionBudget = nil
		return k8s.Update(ctx, got)
	})
	eventually(t, 10*time.Second, func() error {
		if err := k8s.Get(ctx, key(sq), &pdb); !apierrors.IsNotFound(err) {
			return fmt.Errorf("Get PodDisruptionBudget = %v; want NotFound once the spec has none", err)
		}
		return nil
	})
}

// TestDriftRepaired: an engine image set by hand on the Deployment is put
// back: the operator's template hash alone would not see it.
func TestDriftRepaired(t *testing.T) {
	ctx := context.Background()
	sq := newQuery(newNamespace(t), "drifted", "SELECT symbol FROM trades")
	if err := k8s.Create(ctx, sq); err != nil {
		t.Fatal(err)
	}
	var d appsv1.Deployment
	eventually(t, 10*time.Second, func() error { return k8s.Get(ctx, key(sq), &d) })
	eventually(t, 10*time.Second, func() error {
		if err := k8s.Get(ctx, key(sq), &d); err != nil {
			return err
		}
		d.Spec.Template.Spec.Containers[0].Image = "example.com/by-hand:1"
		return k8s.Update(ctx, &d)
	})
	eventually(t, 15*time.Second, func() error {
		if err := k8s.Get(ctx, key(sq), &d); err != nil {
			return err
		}
		if img := d.Spec.Template.Spec.Containers[0].Image; img != testImage {
			return fmt.Errorf("engine image %s; want the operator's %s back", img, testImage)
		}
		return nil
	})
}

// TestRefusedDeployment: a template the engine's validation passes but
// the API server refuses in the Deployment (a sidecar's name that is not a
// DNS label) is reported as Failed, not retried in silence.
func TestRefusedDeployment(t *testing.T) {
	ctx := context.Background()
	sq := newQuery(newNamespace(t), "refused", "SELECT symbol FROM trades")
	sq.Spec.Template = &v1alpha1.EngineTemplate{Spec: v1alpha1.EnginePodSpec{
		Containers: []runtime.RawExtension{raw(t, corev1.Container{Name: "Not_A_Label", Image: "example.com/shipper:1"})},
	}}
	if err := k8s.Create(ctx, sq); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, func() error {
		st := getQuery(t, sq).Status
		c := meta.FindStatusCondition(st.Conditions, ConditionReady)
		if st.Phase != v1alpha1.PhaseFailed || c == nil || c.Reason != ReasonInvalidQuery || !strings.Contains(c.Message, "the engine Deployment was refused") {
			return fmt.Errorf("phase %s, Ready %+v; want Failed, InvalidQuery, the Deployment refused", st.Phase, c)
		}
		return nil
	})
}

// TestRestartsFromAnOlderStatus: a status written before podRestarts
// existed already counts its pods' restarts; they are not added again.
func TestRestartsFromAnOlderStatus(t *testing.T) {
	old := &v1alpha1.StreamQueryStatus{Restarts: 5}
	var status v1alpha1.StreamQueryStatus
	status.Restarts = old.Restarts
	countRestarts(&status, old, "q-engine-a", corev1.ContainerStatus{RestartCount: 5}, time.Now())
	if status.Restarts != 5 || status.PodRestarts["q-engine-a"] != 5 {
		t.Errorf("restarts %d, pod restarts %v; want 5 and the pod's 5 as the baseline", status.Restarts, status.PodRestarts)
	}
}

// TestServiceMonitor: with the Prometheus Operator's CRD installed, each
// query gets a ServiceMonitor of its engines' /metrics, whose series carry
// the query's name; later reconciles do not write it again.
func TestServiceMonitor(t *testing.T) {
	ctx := context.Background()
	sq := newQuery(newNamespace(t), "scraped", "SELECT symbol FROM trades")
	if err := k8s.Create(ctx, sq); err != nil {
		t.Fatal(err)
	}
	sm := newServiceMonitor()
	eventually(t, 10*time.Second, func() error { return k8s.Get(ctx, key(sq), sm) })
	sel, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
	endpoints, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
	targets, _, _ := unstructured.NestedStringSlice(sm.Object, "spec", "targetLabels")
	if sel[LabelQuery] != sq.Name || len(endpoints) != 1 || endpoints[0].(map[string]any)["port"] != "http" || len(targets) != 1 || targets[0] != LabelQuery {
		t.Errorf("ServiceMonitor spec %v; want the query's engines' http port, labelled with %s", sm.Object["spec"], LabelQuery)
	}
	if refs := sm.GetOwnerReferences(); len(refs) != 1 || refs[0].Name != sq.Name {
		t.Errorf("owner references %+v; want the query", refs)
	}
	before := writesTo("ServiceMonitor", sq.Namespace, childName(sq))
	time.Sleep(4 * 500 * time.Millisecond)
	if n := writesTo("ServiceMonitor", sq.Namespace, childName(sq)) - before; n != 0 {
		t.Errorf("ServiceMonitor written %d times by reconciles that changed nothing", n)
	}
}

// TestServiceWithClusterIPReplaced: a Service an earlier operator made with
// a cluster IP is replaced by a headless one (a cluster IP cannot be
// removed in place).
func TestServiceWithClusterIPReplaced(t *testing.T) {
	ctx := context.Background()
	sq := newQuery(newNamespace(t), "upgraded", "SELECT symbol FROM trades")
	if err := k8s.Create(ctx, sq); err != nil {
		t.Fatal(err)
	}
	var svc corev1.Service
	eventually(t, 10*time.Second, func() error { return k8s.Get(ctx, key(sq), &svc) })
	owner := getQuery(t, sq)
	// Put back what the earlier operator made, racing the controller,
	// which recreates its own at each deletion.
	var old corev1.Service
	eventually(t, 10*time.Second, func() error {
		if err := k8s.Get(ctx, key(sq), &svc); err == nil {
			if err := k8s.Delete(ctx, &svc); client.IgnoreNotFound(err) != nil {
				return err
			}
		}
		old = corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: svc.Name, Namespace: svc.Namespace, Labels: svc.Labels,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(owner, v1alpha1.GroupVersion.WithKind("StreamQuery"))}}}
		old.Spec.Selector = svc.Spec.Selector
		old.Spec.Ports = svc.Spec.Ports
		return k8s.Create(ctx, &old)
	})
	if old.Spec.ClusterIP == "" || old.Spec.ClusterIP == corev1.ClusterIPNone {
		t.Fatalf("the earlier operator's Service got cluster IP %q; want one", old.Spec.ClusterIP)
	}
	eventually(t, 10*time.Second, func() error {
		if err := k8s.Get(ctx, key(sq), &svc); err != nil {
			return err
		}
		if svc.UID == old.UID || svc.Spec.ClusterIP != corev1.ClusterIPNone {
			return fmt.Errorf("Service %s has cluster IP %s (uid %s, the old one's %s); want a new, headless one", svc.Name, svc.Spec.ClusterIP, svc.UID, old.UID)
		}
		return nil
	})
}

// TestStateVolume: spec.state.volume gets a claim owned by the query,
// mounted at spec.state.dir in engines that belong to the engine's group,
// and replaced by stopping the old engine first; the claim goes once the
// spec drops the volume.
func TestStateVolume(t *testing.T) {
	ctx := context.Background()
	sq := newQuery(newNamespace(t), "stateful", "SELECT window_start, count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY window_start, window_end")
	class := "fast"
	sq.Spec.State = &v1alpha1.StateSpec{Volume: &v1alpha1.StateVolume{Size: resource.MustParse("1Gi"), StorageClassName: &class}}
	if err := k8s.Create(ctx, sq); err != nil {
		t.Fatal(err)
	}
	var pvc corev1.PersistentVolumeClaim
	claim := types.NamespacedName{Namespace: sq.Namespace, Name: sq.Name + "-state"}
	eventually(t, 10*time.Second, func() error { return k8s.Get(ctx, claim, &pvc) })
	size := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
	if size.String() != "1Gi" || pvc.Spec.StorageClassName == nil || *pvc.Spec.StorageClassName != "fast" ||
		!slices.Equal(pvc.Spec.AccessModes, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}) {
		t.Errorf("claim %+v; want 1Gi of class fast, ReadWriteOnce", pvc.Spec)
	}
	if refs := pvc.OwnerReferences; len(refs) != 1 || refs[0].Name != sq.Name {
		t.Errorf("owner references %+v; want the query", refs)
	}
	var d appsv1.Deployment
	eventually(t, 10*time.Second, func() error { return k8s.Get(ctx, key(sq), &d) })
	if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("strategy %s; want Recreate, one writer of the claim at a time", d.Spec.Strategy.Type)
	}
	pod := d.Spec.Template.Spec
	i := slices.IndexFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == v1alpha1.StateVolumeName })
	if i < 0 || pod.Volumes[i].PersistentVolumeClaim == nil || pod.Volumes[i].PersistentVolumeClaim.ClaimName != claim.Name {
		t.Fatalf("volumes %+v; want %s of the claim %s", pod.Volumes, v1alpha1.StateVolumeName, claim.Name)
	}
	mounts := pod.Containers[0].VolumeMounts
	if !slices.ContainsFunc(mounts, func(m corev1.VolumeMount) bool {
		return m.Name == v1alpha1.StateVolumeName && m.MountPath == v1alpha1.DefaultStateDir && !m.ReadOnly
	}) {
		t.Errorf("mounts %+v; want the claim at %s", mounts, v1alpha1.DefaultStateDir)
	}
	if sc := pod.SecurityContext; sc == nil || sc.FSGroup == nil || *sc.FSGroup != engineUID {
		t.Errorf("pod security context %+v; want fsGroup %d, the engine's", sc, engineUID)
	}
	// A template's security context replaces the operator's, and is given
	// the engine's fsGroup when it has none.
	own := newQuery(sq.Namespace, "own-context", sq.Spec.Query)
	own.Spec.State = sq.Spec.State.DeepCopy()
	user := int64(1000)
	own.Spec.Template = &v1alpha1.EngineTemplate{Spec: v1alpha1.EnginePodSpec{SecurityContext: &corev1.PodSecurityContext{RunAsUser: &user}}}
	if err := k8s.Create(ctx, own); err != nil {
		t.Fatal(err)
	}
	var od appsv1.Deployment
	eventually(t, 10*time.Second, func() error { return k8s.Get(ctx, key(own), &od) })
	if sc := od.Spec.Template.Spec.SecurityContext; sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != user || sc.FSGroup == nil || *sc.FSGroup != engineUID {
		t.Errorf("pod security context %+v; want the template's user %d and fsGroup %d", sc, user, engineUID)
	}
	// The claim is not bound here (no provisioner): a larger size waits,
	// and the reconcile goes on.
	eventually(t, 10*time.Second, func() error {
		got := getQuery(t, sq)
		got.Spec.State.Volume.Size = resource.MustParse("2Gi")
		return k8s.Update(ctx, got)
	})
	eventually(t, 10*time.Second, func() error {
		got := getQuery(t, sq)
		if got.Status.ObservedGeneration != got.Generation || got.Status.Phase == v1alpha1.PhaseFailed {
			return fmt.Errorf("status of generation %d, phase %s, after the claim grew; want generation %d reconciled", got.Status.ObservedGeneration, got.Status.Phase, got.Generation)
		}
		return nil
	})
	eventually(t, 10*time.Second, func() error {
		got := getQuery(t, sq)
		got.Spec.State = nil
		return k8s.Update(ctx, got)
	})
	eventually(t, 10*time.Second, func() error {
		if err := k8s.Get(ctx, claim, &pvc); err == nil && pvc.DeletionTimestamp.IsZero() {
			return fmt.Errorf("the claim remains once the spec has no volume")
		}
		return nil
	})
	eventually(t, 10*time.Second, func() error {
		if err := k8s.Get(ctx, key(sq), &d); err != nil {
			return err
		}
		if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType {
			return fmt.Errorf("strategy %s without a claim; want RollingUpdate", d.Spec.Strategy.Type)
		}
		return nil
	})
}

// TestStateStatus: the status says how a stateful query's state is
// divided, as the engines will run it: on one engine, all of it there;
// scaled to three over a topic not keyed by the state's key, its rows
// repartitioned through the group's topic, named.
func TestStateStatus(t *testing.T) {
	ctx := context.Background()
	sq := newKafkaQuery(newNamespace(t), "states", "SELECT window_start, symbol, count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY window_start, window_end, symbol", 1)
	sq.Spec.Sources[0].Schema = []v1alpha1.Column{{Name: "id", Type: "text", Key: true}, {Name: "symbol", Type: "text"}, {Name: "ts", Type: "timestamp"}}
	sq.Spec.State = &v1alpha1.StateSpec{}
	if err := k8s.Create(ctx, sq); err != nil {
		t.Fatal(err)
	}
	topic := "sluice." + sq.Namespace + ".states.repartition.0"
	state := func(want string) {
		t.Helper()
		eventually(t, 10*time.Second, func() error {
			if got := getQuery(t, sq).Status.State; !strings.Contains(got, want) {
				return fmt.Errorf("status.state %q; want %q in it", got, want)
			}
			return nil
		})
	}
	state("keyed by symbol; source trades is partitioned by its record key, id: one engine holds every key (on several, its rows would be repartitioned by symbol through the topic " + topic + ")")
	eventually(t, 10*time.Second, func() error {
		got := getQuery(t, sq)
		got.Spec.Replicas = ptr(int32(3))
		return k8s.Update(ctx, got)
	})
	state("its rows are repartitioned by symbol through the topic " + topic + ", so each engine holds whole keys")
}
