package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// A Batch query, one whose every source ends, runs once as a Job: run as a
// Deployment, its engine would exit 0 at the end of its input, be started
// again and write everything again.

// Reasons of a Batch query's conditions.
const (
	ReasonCompleted       = "Completed"
	ReasonRunFailed       = "RunFailed"
	ReasonPreviousRunStop = "PreviousRunStopping"
)

// batchBackoffLimit is how many times a Batch run starts again after its
// engine died for a reason other than the query failing (exit code 1,
// which running again would repeat) or a disruption (an eviction, a node
// drain: not counted).
const batchBackoffLimit = 3

// jobName names the Job of one pod template of a query: a new spec is a new
// Job. It stays within the 63 characters of the job-name label; the hash,
// of a template naming the query, keeps it unique.
func jobName(sq *v1alpha1.StreamQuery, templateHash string) string {
	const hashLen = 8
	base := childName(sq)
	if limit := 63 - 1 - hashLen; len(base) > limit {
		// A name cut after a dot or a dash would not be a DNS label.
		base = strings.TrimRight(base[:limit], ".-")
	}
	return base + "-" + templateHash[:hashLen]
}

// renderJobTemplate is the pod template of a Batch query's Job, and its
// hash: the engine pods' template, never restarted in place.
func renderJobTemplate(sq *v1alpha1.StreamQuery, image, hash string) (corev1.PodTemplateSpec, string, error) {
	t, err := renderPodTemplate(sq, image, hash)
	if err != nil {
		return t, "", err
	}
	t.Spec.RestartPolicy = corev1.RestartPolicyNever
	b, err := json.Marshal(t)
	if err != nil {
		return t, "", fmt.Errorf("rendering the pod template: %w", err)
	}
	return t, shortHash(b), nil
}

// mutateJob sets the desired state of a Batch query's Job. A Job's pod
// template cannot change: a new one is a new Job (jobName), so only its
// labels and suspension are kept up to date.
func mutateJob(job *batchv1.Job, sq *v1alpha1.StreamQuery, t corev1.PodTemplateSpec, templateHash string) {
	job.Labels = merged(job.Labels, objectLabels(sq))
	if job.Annotations == nil {
		job.Annotations = map[string]string{}
	}
	job.Annotations[AnnotationTemplateHash] = templateHash
	job.Spec.Suspend = ptr(sq.Spec.Suspend)
	if !job.CreationTimestamp.IsZero() {
		return
	}
	job.Annotations[AnnotationGeneration] = strconv.FormatInt(sq.Generation, 10)
	job.Spec.Parallelism, job.Spec.Completions = ptr(int32(1)), ptr(int32(1))
	job.Spec.BackoffLimit = ptr(int32(batchBackoffLimit))
	job.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{
		{
			// Evicted, preempted, drained: run again, uncounted.
			Action:          batchv1.PodFailurePolicyActionIgnore,
			OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}},
		},
		{
			// The query failed (FailFast, after the error policy's retries):
			// the same input fails the same way.
			Action: batchv1.PodFailurePolicyActionFailJob,
			OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
				ContainerName: ptr(engineContainerName), Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{1},
			},
		},
	}}
	job.Spec.Template = t
}

// reconcileBatch runs a Batch query: its Job of the current spec, once,
// after the engine of an earlier spec's Job has stopped (two runs must not
// write one sink at once); then reports the run.
func (r *StreamQueryReconciler) reconcileBatch(ctx context.Context, sq *v1alpha1.StreamQuery, name types.NamespacedName, old *v1alpha1.StreamQueryStatus, status v1alpha1.StreamQueryStatus, image, hash string) (ctrl.Result, error) {
	deploying, err := r.deleteOwned(ctx, sq, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name.Name, Namespace: name.Namespace}})
	if err != nil {
		return ctrl.Result{}, err
	}
	t, th, err := renderJobTemplate(sq, image, hash)
	if err != nil {
		return ctrl.Result{}, err
	}
	jn := jobName(sq, th)
	current, stopping, err := r.jobs(ctx, sq, jn)
	if err != nil {
		return ctrl.Result{}, err
	}
	if deploying {
		stopping++ // the engines of the query when it read without end
	}
	ran := old.Completion != nil && old.Completion.TemplateHash == th
	switch {
	case current == nil && ran:
		// Its Job was deleted after the run: the run is not made again.
	case current == nil && stopping > 0:
	default:
		job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: jn, Namespace: sq.Namespace}}
		if err := r.apply(ctx, sq, job, func() error { mutateJob(job, sq, t, th); return nil }); err != nil {
			return ctrl.Result{}, err
		}
		current = job
	}

	var pods corev1.PodList
	if current != nil {
		if err := r.List(ctx, &pods, client.InNamespace(sq.Namespace), client.MatchingLabels{batchv1.JobNameLabel: current.Name}); err != nil {
			return ctrl.Result{}, fmt.Errorf("listing engine pods: %w", err)
		}
	}
	r.observeJob(ctx, sq, current, pods.Items, old, &status, image, hash, th)
	if err := r.writeStatus(ctx, sq, old, status); err != nil {
		return ctrl.Result{}, err
	}
	if c := status.Completion; c != nil && c.Records != nil {
		return ctrl.Result{}, nil // nothing runs: nothing to poll
	}
	// Running, or ended without the engine's counts yet: the pod's
	// terminated state may reach the cache after the Job's.
	return ctrl.Result{RequeueAfter: r.PollInterval}, nil
}

// jobs returns the query's Job named current, if it exists, and deletes
// every other Job of the query, returning how many are still stopping.
// Deletion is in the foreground: a Job is gone only once its pods are.
func (r *StreamQueryReconciler) jobs(ctx context.Context, sq *v1alpha1.StreamQuery, current string) (*batchv1.Job, int, error) {
	var jobs batchv1.JobList
	if err := r.List(ctx, &jobs, client.InNamespace(sq.Namespace), client.MatchingLabels(selectorLabels(sq))); err != nil {
		return nil, 0, fmt.Errorf("listing engine Jobs: %w", err)
	}
	var found *batchv1.Job
	stopping := 0
	for i := range jobs.Items {
		j := &jobs.Items[i]
		switch {
		case !metav1.IsControlledBy(j, sq):
		case j.Name == current && j.DeletionTimestamp == nil:
			found = j
		default:
			stopping++
			if j.DeletionTimestamp == nil {
				if err := r.Delete(ctx, j, client.PropagationPolicy(metav1.DeletePropagationForeground)); client.IgnoreNotFound(err) != nil {
					return nil, 0, fmt.Errorf("deleting the Job %s of an earlier spec: %w", j.Name, err)
				}
			}
		}
	}
	return found, stopping, nil
}

// deleteOwned deletes obj, by its name, if it exists and the query owns
// it: what the query's other run mode made. It says whether obj still
// exists, being deleted in the foreground until its pods are gone.
func (r *StreamQueryReconciler) deleteOwned(ctx context.Context, sq *v1alpha1.StreamQuery, obj client.Object) (bool, error) {
	if err := r.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
		return false, client.IgnoreNotFound(err)
	}
	if !metav1.IsControlledBy(obj, sq) {
		return false, nil
	}
	if obj.GetDeletionTimestamp() != nil {
		return true, nil
	}
	if err := r.Delete(ctx, obj, client.PropagationPolicy(metav1.DeletePropagationForeground)); err != nil {
		return false, client.IgnoreNotFound(err)
	}
	return true, nil
}

// observeJob fills a Batch query's status from its Job, its pods and the
// engine while it runs; from the earlier status once the run has ended and
// its Job is gone.
func (r *StreamQueryReconciler) observeJob(ctx context.Context, sq *v1alpha1.StreamQuery, job *batchv1.Job, pods []corev1.Pod, old, status *v1alpha1.StreamQueryStatus, image, hash, templateHash string) {
	if job == nil {
		if c := old.Completion; c != nil && c.TemplateHash == templateHash {
			// The run ended and its Job was deleted: its outcome stays.
			status.Phase, status.Completion, status.LastError = old.Phase, c, old.LastError
			status.Selector, status.Ready = old.Selector, "0/0"
			return
		}
		r.previousRunStopping(sq, status)
		return
	}
	ended, failed, endMsg := jobEnded(job)
	desired := int32(1)
	if ended || sq.Spec.Suspend {
		desired = 0
	}
	seen := r.observeEngines(ctx, sq, pods, old, status, image, hash, desired)
	attempts := job.Status.Failed + job.Status.Succeeded + job.Status.Active
	if ended {
		status.Completion = completion(job, pods, templateHash)
		if c, o := status.Completion, old.Completion; c.Records == nil && o != nil && o.TemplateHash == templateHash && o.Records != nil {
			// Its pods are gone (garbage-collected): what they said stays.
			c.Records, c.Summary = o.Records, o.Summary
		}
		status.Health, status.Backpressure, status.Throughput, status.Lag, status.Checkpoint, status.Statements = "", nil, nil, nil, nil, nil
	}
	switch {
	case ended && !failed:
		status.Phase = v1alpha1.PhaseSucceeded
		msg := "the run ended"
		if c := status.Completion; c.Summary != "" {
			msg = c.Summary
		}
		r.setCondition(status, sq, ConditionReady, metav1.ConditionFalse, ReasonCompleted, msg)
		r.setCondition(status, sq, ConditionProgressing, metav1.ConditionFalse, ReasonCompleted, msg)
		r.setCondition(status, sq, ConditionDegraded, metav1.ConditionFalse, ReasonCompleted, msg)
		status.LastError = ""
	case ended:
		status.Phase = v1alpha1.PhaseFailed
		msg := endMsg
		if c := status.Completion; c.Summary != "" {
			msg += ": " + c.Summary
		}
		if status.LastError == "" {
			status.LastError = msg
		}
		r.setCondition(status, sq, ConditionReady, metav1.ConditionFalse, ReasonRunFailed, msg)
		r.setCondition(status, sq, ConditionProgressing, metav1.ConditionFalse, ReasonRunFailed, msg)
		r.setCondition(status, sq, ConditionDegraded, metav1.ConditionTrue, ReasonRunFailed, msg)
	case sq.Spec.Suspend:
		status.Phase = v1alpha1.PhaseSuspended
		r.setCondition(status, sq, ConditionReady, metav1.ConditionFalse, ReasonSuspended, "the query is suspended; resuming runs it again from the start")
		r.setCondition(status, sq, ConditionProgressing, metav1.ConditionFalse, ReasonSuspended, "the query is suspended")
		r.setCondition(status, sq, ConditionDegraded, metav1.ConditionFalse, ReasonSuspended, "the query is suspended")
	default:
		progress := fmt.Sprintf("running, attempt %d of at most %d", max(attempts, 1), batchBackoffLimit+1)
		r.setCondition(status, sq, ConditionProgressing, metav1.ConditionTrue, ReasonRunning, progress)
		switch {
		case seen.stuck != nil:
			status.Phase = v1alpha1.PhaseDegraded
			r.setCondition(status, sq, ConditionReady, metav1.ConditionFalse, seen.stuck.reason, seen.stuck.String())
			r.setCondition(status, sq, ConditionDegraded, metav1.ConditionTrue, seen.stuck.reason, seen.stuck.String())
		case status.Health == v1alpha1.Degraded || status.Health == v1alpha1.Unhealthy:
			status.Phase = v1alpha1.PhaseDegraded
			msg := failingCheck(seen.reports, status.Health)
			r.setCondition(status, sq, ConditionReady, metav1.ConditionFalse, string(status.Health), "the engine reports "+string(status.Health)+": "+msg)
			reason := ReasonEngineDegraded
			if status.Health == v1alpha1.Unhealthy {
				reason = ReasonEngineUnhealthy
			}
			r.setCondition(status, sq, ConditionDegraded, metav1.ConditionTrue, reason, msg)
		case status.ReadyReplicas == 0:
			status.Phase = v1alpha1.PhasePending
			r.setCondition(status, sq, ConditionReady, metav1.ConditionFalse, ReasonPodsNotReady, "the engine is not ready; "+progress)
			r.setCondition(status, sq, ConditionDegraded, metav1.ConditionFalse, ReasonHealthy, "no engine reports a problem")
		default:
			status.Phase = v1alpha1.PhaseRunning
			r.setCondition(status, sq, ConditionReady, metav1.ConditionTrue, ReasonRunning, progress)
			r.setCondition(status, sq, ConditionDegraded, metav1.ConditionFalse, ReasonHealthy, "no engine reports a problem")
		}
	}
}

// previousRunStopping reports a query whose engines wait for those of its
// previous spec, or of its other run mode, to stop: two runs must not
// write one sink at once.
func (r *StreamQueryReconciler) previousRunStopping(sq *v1alpha1.StreamQuery, status *v1alpha1.StreamQueryStatus) {
	const msg = "waiting for the engines of the previous spec's run to stop before this spec's engines start"
	status.Phase, status.Ready = v1alpha1.PhasePending, "0/1"
	r.setCondition(status, sq, ConditionReady, metav1.ConditionFalse, ReasonPreviousRunStop, msg)
	r.setCondition(status, sq, ConditionProgressing, metav1.ConditionTrue, ReasonPreviousRunStop, msg)
	r.setCondition(status, sq, ConditionDegraded, metav1.ConditionFalse, ReasonHealthy, "no engine reports a problem")
}

// jobEnded says whether the Job has ended, whether in failure, and the Job
// controller's reason and message for a failure.
func jobEnded(job *batchv1.Job) (ended, failed bool, msg string) {
	for _, c := range job.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete:
			return true, false, ""
		case batchv1.JobFailed:
			return true, true, c.Reason + ": " + c.Message
		}
	}
	return false, false, ""
}

// completion is the outcome of an ended Job: its times, and the counts and
// summary its last engine wrote as its termination message.
func completion(job *batchv1.Job, pods []corev1.Pod, templateHash string) *v1alpha1.Completion {
	c := &v1alpha1.Completion{StartTime: job.Status.StartTime, CompletionTime: job.Status.CompletionTime, TemplateHash: templateHash}
	var last metav1.Time
	for i := range pods {
		for _, cs := range pods[i].Status.ContainerStatuses {
			t := cs.State.Terminated
			if cs.Name != engineContainerName || t == nil || t.FinishedAt.Before(&last) {
				continue
			}
			last = t.FinishedAt
			end, ok := decodeTermination(t.Message)
			if !ok {
				c.Records, c.Summary = nil, ""
				continue
			}
			n := end.Records
			c.Summary = end.Summary
			c.Records = &v1alpha1.RecordCounts{In: n.In, Out: n.Out, Filtered: n.Filtered, DeadLettered: n.DeadLettered,
				Skipped: n.Skipped, Failed: n.Failed, Aggregated: n.Aggregated, Late: n.Late, Results: n.Results}
		}
	}
	if c.CompletionTime == nil {
		// A failed Job has no completion time.
		for _, cond := range job.Status.Conditions {
			if cond.Type == batchv1.JobFailed && cond.Status == corev1.ConditionTrue {
				c.CompletionTime = &cond.LastTransitionTime
			}
		}
	}
	return c
}
