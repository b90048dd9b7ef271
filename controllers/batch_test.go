package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/api/enginestatus"
	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// newBatchQuery is newQuery over a datagen that ends after count records.
func newBatchQuery(ns, name string, count int64) *v1alpha1.StreamQuery {
	sq := newQuery(ns, name, "SELECT symbol, price FROM trades")
	sq.Spec.Sources[0].Datagen = &v1alpha1.DatagenSource{Generator: "trades", Count: count}
	return sq
}

// updateSpec changes the query's spec, again on a conflict with the
// controller's status writes.
func updateSpec(t *testing.T, sq *v1alpha1.StreamQuery, change func(*v1alpha1.StreamQuerySpec)) {
	t.Helper()
	eventually(t, 10*time.Second, func() error {
		got := getQuery(t, sq)
		change(&got.Spec)
		return k8s.Update(context.Background(), got)
	})
}

// queryJob waits for the query's one live Job and returns it.
func queryJob(t *testing.T, sq *v1alpha1.StreamQuery) *batchv1.Job {
	t.Helper()
	var job *batchv1.Job
	eventually(t, 10*time.Second, func() error {
		var jobs batchv1.JobList
		if err := k8s.List(context.Background(), &jobs, client.InNamespace(sq.Namespace)); err != nil {
			return err
		}
		var live []batchv1.Job
		for _, j := range jobs.Items {
			if j.DeletionTimestamp == nil {
				live = append(live, j)
			}
		}
		if len(live) != 1 {
			return fmt.Errorf("%d live Jobs; want 1", len(live))
		}
		job = &live[0]
		return nil
	})
	return job
}

// jobPod stands for the pod the Job controller, absent from envtest, would
// start: running and ready.
func jobPod(t *testing.T, sq *v1alpha1.StreamQuery, job *batchv1.Job, name string) *corev1.Pod {
	t.Helper()
	labels := objectLabels(sq)
	labels[batchv1.JobNameLabel] = job.Name
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: sq.Namespace, Name: name, Labels: labels},
		Spec:       corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: engineContainerName, Image: testImage}}},
	}
	if err := k8s.Create(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	pod.Status = corev1.PodStatus{
		Phase: corev1.PodRunning, PodIP: "127.0.0.1",
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
		ContainerStatuses: []corev1.ContainerStatus{{Name: engineContainerName, Image: testImage, Ready: true,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}}},
	}
	if err := k8s.Status().Update(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	return pod
}

// endPod makes the engine of pod exit with code, its termination message
// the engine's Termination.
func endPod(t *testing.T, pod *corev1.Pod, code int32, end enginestatus.Termination) {
	t.Helper()
	msg, _ := json.Marshal(end)
	phase := corev1.PodSucceeded
	if code != 0 {
		phase = corev1.PodFailed
	}
	eventually(t, 10*time.Second, func() error {
		var got corev1.Pod
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(pod), &got); err != nil {
			return err
		}
		got.Status.Phase = phase
		got.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse}}
		cs := &got.Status.ContainerStatuses[0]
		cs.Ready, cs.State = false, corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: code, Message: string(msg), StartedAt: metav1.NewTime(time.Now().Add(-time.Minute)), FinishedAt: metav1.Now()}}
		return k8s.Status().Update(context.Background(), &got)
	})
}

// endJob writes the status the Job controller writes when a Job ends.
func endJob(t *testing.T, job *batchv1.Job, failed bool) {
	t.Helper()
	eventually(t, 10*time.Second, func() error {
		var got batchv1.Job
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(job), &got); err != nil {
			return err
		}
		now := metav1.Now()
		start := metav1.NewTime(now.Add(-time.Minute))
		got.Status.StartTime = &start
		if failed {
			got.Status.Failed = 1
			got.Status.Conditions = []batchv1.JobCondition{
				{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, Reason: batchv1.JobReasonPodFailurePolicy, Message: "Container engine for pod x exited with code 1 matching FailJob rule at index 1", LastTransitionTime: now},
				{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: batchv1.JobReasonPodFailurePolicy, Message: "Container engine for pod x exited with code 1 matching FailJob rule at index 1", LastTransitionTime: now},
			}
		} else {
			got.Status.Succeeded = 1
			got.Status.CompletionTime = &now
			got.Status.Conditions = []batchv1.JobCondition{
				{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, Reason: batchv1.JobReasonCompletionsReached, LastTransitionTime: now},
				{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, Reason: batchv1.JobReasonCompletionsReached, LastTransitionTime: now},
			}
		}
		return k8s.Status().Update(context.Background(), &got)
	})
}

// TestBatchQueryRunsOnce: a query whose sources end runs as a Job, not a
// Deployment; when the run succeeds the query is Succeeded with the final
// counts, and it is not run again, even when its Job is deleted, until
// its spec changes.
func TestBatchQueryRunsOnce(t *testing.T) {
	ctx := context.Background()
	sq := newBatchQuery(newNamespace(t), "report", 1000)
	if err := k8s.Create(ctx, sq); err != nil {
		t.Fatal(err)
	}
	job := queryJob(t, sq)
	spec := job.Spec
	c := spec.Template.Spec.Containers[0]
	if spec.Template.Spec.RestartPolicy != corev1.RestartPolicyNever || *spec.BackoffLimit != batchBackoffLimit || *spec.Completions != 1 ||
		spec.PodFailurePolicy == nil || len(spec.PodFailurePolicy.Rules) != 2 || c.Name != engineContainerName || c.Args[0] != "run" {
		t.Errorf("Job spec %+v; want one engine run, never restarted in place, failed at once by exit code 1", spec)
	}
	if !strings.HasPrefix(job.Name, "report-engine-") {
		t.Errorf("Job %s; want report-engine-<hash>", job.Name)
	}
	var d appsv1.Deployment
	if err := k8s.Get(ctx, key(sq), &d); err == nil {
		t.Errorf("a Batch query has a Deployment %s", d.Name)
	}
	pod := jobPod(t, sq, job, "report-run-1")
	engineAddrs.Store(pod.Name, fakeEngine(t, enginestatus.Document{Health: "Healthy", Pipeline: "Running"}))
	eventually(t, 10*time.Second, func() error {
		st := getQuery(t, sq).Status
		if st.Mode != v1alpha1.Batch || st.Phase != v1alpha1.PhaseRunning || st.Health != v1alpha1.Healthy || st.Ready != "1/1" {
			return fmt.Errorf("mode %s, phase %s, health %s, ready %s; want Batch, Running, Healthy, 1/1", st.Mode, st.Phase, st.Health, st.Ready)
		}
		return nil
	})

	summary := "sluice: finished in 1.2s: 1000 in, 1000 out, 0 filtered, 0 dead-lettered, 0 skipped, 0 failed (833 records/s)"
	endPod(t, pod, 0, enginestatus.Termination{Summary: summary, Records: enginestatus.Records{In: 1000, Out: 1000}})
	endJob(t, job, false)
	var st v1alpha1.StreamQueryStatus
	eventually(t, 10*time.Second, func() error {
		st = getQuery(t, sq).Status
		if st.Phase != v1alpha1.PhaseSucceeded || st.Completion == nil || st.Completion.Records == nil || st.Completion.Records.Out != 1000 {
			b, _ := json.Marshal(st)
			return fmt.Errorf("status %s; want Succeeded with 1000 records out", b)
		}
		return nil
	})
	if c := st.Completion; c.Summary != summary || c.StartTime == nil || c.CompletionTime == nil || st.Health != "" || st.LastError != "" {
		t.Errorf("completion %+v, health %q, last error %q; want the engine's summary, the run's times, no health and no error", c, st.Health, st.LastError)
	}
	if ready := meta.FindStatusCondition(st.Conditions, ConditionReady); ready == nil || ready.Reason != ReasonCompleted || ready.Message != summary {
		t.Errorf("Ready %+v; want reason Completed with the summary", ready)
	}

	// Deleting the finished Job does not run the query again.
	if err := k8s.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // four poll intervals
	var jobs batchv1.JobList
	if err := k8s.List(ctx, &jobs, client.InNamespace(sq.Namespace)); err != nil {
		t.Fatal(err)
	}
	if len(jobs.Items) != 0 {
		t.Errorf("%d Jobs after the finished one was deleted; want none: a run is not made again", len(jobs.Items))
	}
	if got := getQuery(t, sq).Status; got.Phase != v1alpha1.PhaseSucceeded || got.Completion == nil || got.Completion.Records.Out != 1000 {
		t.Errorf("after the Job was deleted: phase %s, completion %+v; want the run's outcome kept", got.Phase, got.Completion)
	}

	// A new spec is a new run.
	updateSpec(t, sq, func(s *v1alpha1.StreamQuerySpec) { s.Query = "SELECT symbol FROM trades" })
	next := queryJob(t, sq)
	if next.Name == job.Name {
		t.Errorf("the new spec's Job has the old name %s", next.Name)
	}
	eventually(t, 10*time.Second, func() error {
		if st := getQuery(t, sq).Status; st.Completion != nil || st.Phase == v1alpha1.PhaseSucceeded {
			return fmt.Errorf("phase %s, completion %+v; want the new run's, not the old", st.Phase, st.Completion)
		}
		return nil
	})
}

// TestBatchQueryFails: a run whose engine fails ends the query Failed,
// with the engine's summary as the last error and in the conditions.
func TestBatchQueryFails(t *testing.T) {
	sq := newBatchQuery(newNamespace(t), "broken", 10)
	if err := k8s.Create(context.Background(), sq); err != nil {
		t.Fatal(err)
	}
	job := queryJob(t, sq)
	pod := jobPod(t, sq, job, "broken-run-1")
	summary := "sluice: failed: sink stdout: write: broken pipe; in 0.1s: 10 in, 3 out, 0 filtered, 0 dead-lettered, 0 skipped, 7 failed (100 records/s)"
	endPod(t, pod, 1, enginestatus.Termination{Summary: summary, Failed: true, Records: enginestatus.Records{In: 10, Out: 3, Failed: 7}})
	endJob(t, job, true)
	eventually(t, 10*time.Second, func() error {
		st := getQuery(t, sq).Status
		degraded := meta.FindStatusCondition(st.Conditions, ConditionDegraded)
		if st.Phase != v1alpha1.PhaseFailed || !strings.Contains(st.LastError, "broken pipe") || st.Completion == nil ||
			st.Completion.Records == nil || st.Completion.Records.Failed != 7 ||
			degraded == nil || degraded.Status != metav1.ConditionTrue || degraded.Reason != ReasonRunFailed || !strings.Contains(degraded.Message, "PodFailurePolicy") {
			b, _ := json.Marshal(st)
			return fmt.Errorf("status %s; want Failed with the engine's summary and counts, Degraded RunFailed", b)
		}
		return nil
	})
}

// TestBatchModeSwitch: a Batch query whose source becomes Kafka becomes
// Continuous: its Job is deleted and a Deployment made; back to Batch, the
// Deployment is deleted and the new run waits until its engines are gone.
func TestBatchModeSwitch(t *testing.T) {
	ctx := context.Background()
	sq := newBatchQuery(newNamespace(t), "switch", 10)
	if err := k8s.Create(ctx, sq); err != nil {
		t.Fatal(err)
	}
	job := queryJob(t, sq)

	updateSpec(t, sq, func(s *v1alpha1.StreamQuerySpec) {
		s.Sources = newKafkaQuery(sq.Namespace, sq.Name, "", 1).Spec.Sources
	})
	collect := func(obj client.Object) { // the garbage collector's part, absent from envtest
		t.Helper()
		eventually(t, 10*time.Second, func() error {
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
				return client.IgnoreNotFound(err)
			}
			obj.SetFinalizers(nil)
			if err := k8s.Update(ctx, obj); client.IgnoreNotFound(err) != nil {
				return err
			}
			return fmt.Errorf("%s not gone yet", obj.GetName())
		})
	}
	// The Batch run's Job is deleted in the foreground; until its engine
	// has stopped, no Deployment.
	var d appsv1.Deployment
	eventually(t, 10*time.Second, func() error {
		var j batchv1.Job
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(job), &j); err == nil && j.DeletionTimestamp == nil {
			return fmt.Errorf("the Batch run's Job %s is not being deleted", j.Name)
		}
		st := getQuery(t, sq).Status
		progressing := meta.FindStatusCondition(st.Conditions, ConditionProgressing)
		if st.Mode != v1alpha1.Continuous || progressing == nil || progressing.Reason != ReasonPreviousRunStop {
			return fmt.Errorf("mode %s, Progressing %+v; want Continuous, waiting for the Batch run to stop", st.Mode, progressing)
		}
		return nil
	})
	if err := k8s.Get(ctx, key(sq), &d); err == nil {
		t.Errorf("a Deployment while the Batch run's engine may still write")
	}
	collect(job)
	eventually(t, 10*time.Second, func() error { return k8s.Get(ctx, key(sq), &d) })

	updateSpec(t, sq, func(s *v1alpha1.StreamQuerySpec) { s.Sources = newBatchQuery(sq.Namespace, sq.Name, 10).Spec.Sources })
	// envtest has no garbage collector: the Deployment, deleted in the
	// foreground, stays with its finalizer, and the run waits.
	eventually(t, 10*time.Second, func() error {
		st := getQuery(t, sq).Status
		progressing := meta.FindStatusCondition(st.Conditions, ConditionProgressing)
		if st.Mode != v1alpha1.Batch || progressing == nil || progressing.Reason != ReasonPreviousRunStop {
			return fmt.Errorf("mode %s, Progressing %+v; want Batch, waiting for the earlier engines to stop", st.Mode, progressing)
		}
		return nil
	})
	var jobs batchv1.JobList
	if err := k8s.List(ctx, &jobs, client.InNamespace(sq.Namespace)); err != nil {
		t.Fatal(err)
	}
	for _, j := range jobs.Items {
		if j.DeletionTimestamp == nil {
			t.Errorf("Job %s started while the Deployment's engines may still write", j.Name)
		}
	}
	collect(&d)
	queryJob(t, sq)
}
