// Package controllers holds the operator's reconcilers.
package controllers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/sluice-dev/sluice/api/enginestatus"
	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/compile"
)

// Condition types and reasons.
const (
	ConditionReady       = "Ready"
	ConditionProgressing = "Progressing"
	ConditionDegraded    = "Degraded"
	// ConditionLagging is set when spec.health bounds the lag.
	ConditionLagging = "Lagging"

	ReasonLagAboveBound    = "LagAboveBound"
	ReasonLagWithinBound   = "LagWithinBound"
	ReasonLagUnknown       = "LagUnknown"
	ReasonInvalidQuery     = "InvalidQuery"
	ReasonSuspended        = "Suspended"
	ReasonRunning          = "Running"
	ReasonPodsNotReady     = "PodsNotReady"
	ReasonRollingOut       = "RollingOut"
	ReasonRolledOut        = "RolledOut"
	ReasonCrashLoop        = "CrashLoopBackOff"
	ReasonProgressDeadline = "ProgressDeadlineExceeded"
	ReasonEngineDegraded   = "EngineDegraded"
	ReasonEngineUnhealthy  = "EngineUnhealthy"
	ReasonHealthy          = "Healthy"
)

// StreamQueryReconciler runs each StreamQuery as a Deployment of engines and
// folds the engines' own /status into the StreamQuery's status.
type StreamQueryReconciler struct {
	client.Client
	Scheme   *runtime.Scheme
	Recorder events.EventRecorder
	// EngineImage is the engine image of queries that do not name one.
	EngineImage string
	// PollInterval is how often a running query's engines are polled.
	PollInterval time.Duration
	// EngineAddress resolves a pod to its engine's HTTP address.
	EngineAddress EngineAddress
	// MaxConcurrentReconciles is how many queries are reconciled at once;
	// 0 is 1.
	MaxConcurrentReconciles int
	// ServiceMonitors says whether each query gets a ServiceMonitor of its
	// engines, for the Prometheus Operator; nil: when its CRD is installed.
	ServiceMonitors *bool
	// recommended holds the autoscaler's recent recommendations.
	recommended recommendations
	// HTTPClient polls the engines; nil is http.DefaultClient, whose
	// connections to the engines are kept alive between polls.
	HTTPClient *http.Client
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// +kubebuilder:rbac:groups=streaming.sluice.dev,resources=streamqueries,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=streaming.sluice.dev,resources=streamqueries/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=streaming.sluice.dev,resources=streamqueries/finalizers,verbs=update
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=configmaps;services;persistentvolumeclaims,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=monitoring.coreos.com,resources=servicemonitors,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile brings one StreamQuery's engines to its spec and its status to
// what the cluster and the engines say.
func (r *StreamQueryReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	log := logf.FromContext(ctx)

	// 1. Load the query.
	var sq v1alpha1.StreamQuery
	if err := r.Get(ctx, req.NamespacedName, &sq); err != nil {
		if apierrors.IsNotFound(err) {
			r.recommended.forget(req.NamespacedName) // deleted
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	// The API server filled the defaults; a query stored before a default
	// existed gets the same values here (TestCRDDefaults holds the two
	// together), and nothing below needs one of its own.
	sq.Spec.Default()
	old := sq.Status.DeepCopy()
	// Restarts count over the life of the query, an invalid spec's time
	// included.
	status := v1alpha1.StreamQueryStatus{
		Mode:               sq.Spec.RunMode(),
		ObservedGeneration: sq.Generation, Conditions: slices.Clone(old.Conditions),
		Restarts: old.Restarts, LastRestartTime: old.LastRestartTime, PodRestarts: old.PodRestarts,
	}

	// 2. Check it with the engine's own planner. An invalid query creates
	// nothing; engines of an earlier, valid version keep running.
	name := types.NamespacedName{Namespace: sq.Namespace, Name: childName(&sq)}
	// Of a query whose columns are a registry's latest schema, which only
	// its engines read (with their credentials, as they start), only the
	// structure and the query's syntax are checked here: the engines plan
	// it, and fail, saying why, if it cannot run. Whether it keeps state
	// is not known: as if it did, so that several engines know they are
	// several.
	stateful := true
	if len(sq.Spec.LatestSchemaSources()) == 0 {
		stmts, _, err := compile.PlanSet(&sq.Spec, nil, nil)
		if err != nil {
			var ps v1alpha1.Problems
			msg := err.Error()
			if errors.As(err, &ps) {
				msg = describeProblems(&sq.Spec, ps)
			}
			return r.invalid(ctx, &sq, name, old, status, msg)
		}
		stateful = false
		var states []string
		for _, st := range stmts {
			stateful = stateful || st.Prog.Stateful()
			if p, ok := compile.StatePartitioning(st.Spec, st.Prog, v1alpha1.ConsumerGroup(sq.Namespace, sq.Name)); ok {
				if st.Name != "" {
					p.Describe = st.Name + ": " + p.Describe
				}
				states = append(states, p.Describe)
			}
		}
		status.State = strings.Join(states, "; ")
	} else if err := compile.CheckUnplanned(&sq.Spec); err != nil {
		var ps v1alpha1.Problems
		errors.As(err, &ps)
		return r.invalid(ctx, &sq, name, old, status, describeProblems(&sq.Spec, ps))
	}

	// 3. Create or update what the query owns: its manifest, its engines and
	// their Service.
	manifest, hash, err := renderManifest(&sq, stateful)
	if err != nil {
		return ctrl.Result{}, err
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name.Name, Namespace: name.Namespace}}
	if err := r.apply(ctx, &sq, cm, func() error { mutateConfigMap(cm, &sq, manifest); return nil }); err != nil {
		return ctrl.Result{}, err
	}
	image := sq.Spec.Image
	if image == "" {
		image = r.EngineImage
	}
	if err := r.applyService(ctx, &sq, name); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.applyDisruptionBudget(ctx, &sq, name); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.applyStateVolume(ctx, &sq); err != nil {
		return ctrl.Result{}, err
	}
	if r.ServiceMonitors != nil && *r.ServiceMonitors {
		sm := newServiceMonitor()
		sm.SetName(name.Name)
		sm.SetNamespace(name.Namespace)
		if err := r.apply(ctx, &sq, sm, func() error { return mutateServiceMonitor(sm, &sq) }); err != nil {
			return ctrl.Result{}, err
		}
	}
	if status.Mode == v1alpha1.Batch {
		return r.reconcileBatch(ctx, &sq, name, old, status, image, hash)
	}
	deploy := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name.Name, Namespace: name.Namespace}}
	// The Jobs of the query when it was Batch: its engines start once the
	// Batch run's engine has stopped.
	if _, stopping, err := r.jobs(ctx, &sq, ""); err != nil {
		return ctrl.Result{}, err
	} else if stopping > 0 {
		if err := r.Get(ctx, name, deploy); apierrors.IsNotFound(err) {
			r.previousRunStopping(&sq, &status)
			if err := r.writeStatus(ctx, &sq, old, status); err != nil {
				return ctrl.Result{}, err
			}
			return ctrl.Result{RequeueAfter: r.PollInterval}, nil
		} else if err != nil {
			return ctrl.Result{}, fmt.Errorf("reading the Deployment %s: %w", name.Name, err)
		}
	}
	if err := r.apply(ctx, &sq, deploy, func() error { return mutateDeployment(deploy, &sq, image, hash) }); err != nil {
		if apierrors.IsInvalid(err) {
			// What the engine's validation cannot see of spec.template (a
			// mount of a volume that does not exist), the API server can.
			return r.invalid(ctx, &sq, name, old, status, "the engine Deployment was refused: "+err.Error())
		}
		return ctrl.Result{}, err
	}

	// 4. Rebuild the status from the cluster and the engines.
	var pods corev1.PodList
	if err := r.List(ctx, &pods, client.InNamespace(sq.Namespace), client.MatchingLabels(selectorLabels(&sq))); err != nil {
		return ctrl.Result{}, fmt.Errorf("listing engine pods: %w", err)
	}
	r.observe(ctx, &sq, deploy, pods.Items, old, &status, image, hash)
	log.V(1).Info("reconciled", "phase", status.Phase, "health", status.Health, "ready", status.Ready)

	// 5. Write the status if it changed, and poll again later.
	if err := r.writeStatus(ctx, &sq, old, status); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: r.PollInterval}, nil
}

// apply creates or updates an owned object, idempotently: an object that
// mutate leaves as it was is not written.
func (r *StreamQueryReconciler) apply(ctx context.Context, sq *v1alpha1.StreamQuery, obj client.Object, mutate func() error) error {
	_, err := controllerutil.CreateOrUpdate(ctx, r.Client, obj, func() error {
		if err := mutate(); err != nil {
			return err
		}
		return controllerutil.SetControllerReference(sq, obj, r.Scheme)
	})
	if err != nil {
		return fmt.Errorf("applying %T %s: %w", obj, obj.GetName(), err)
	}
	return nil
}

// scale sets the number of engines of the Deployment.
func (r *StreamQueryReconciler) scale(ctx context.Context, deploy *appsv1.Deployment, replicas int32) error {
	patch := client.MergeFrom(deploy.DeepCopy())
	deploy.Spec.Replicas = &replicas
	if err := r.Patch(ctx, deploy, patch); err != nil {
		return fmt.Errorf("scaling the Deployment %s to %d: %w", deploy.Name, replicas, err)
	}
	return nil
}

// applyService keeps the engines' headless Service. One that an earlier
// operator made with a cluster IP is deleted first: a Service's cluster IP
// cannot be changed in place.
func (r *StreamQueryReconciler) applyService(ctx context.Context, sq *v1alpha1.StreamQuery, name types.NamespacedName) error {
	svc := &corev1.Service{}
	switch err := r.Get(ctx, name, svc); {
	case apierrors.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("reading the Service %s: %w", name.Name, err)
	case svc.Spec.ClusterIP != corev1.ClusterIPNone && metav1.IsControlledBy(svc, sq):
		if err := r.Delete(ctx, svc, client.Preconditions{UID: &svc.UID}); apierrors.IsConflict(err) {
			return nil // replaced already; the cache is behind
		} else if client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("replacing the Service %s by a headless one: %w", name.Name, err)
		}
		// Created directly: the cache still holds the deleted Service.
		svc = &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name.Name, Namespace: name.Namespace}}
		mutateService(svc, sq)
		if err := controllerutil.SetControllerReference(sq, svc, r.Scheme); err != nil {
			return fmt.Errorf("owning the Service %s: %w", name.Name, err)
		}
		if err := r.Create(ctx, svc); err != nil {
			return fmt.Errorf("replacing the Service %s by a headless one: %w", name.Name, err)
		}
		return nil
	}
	svc = &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name.Name, Namespace: name.Namespace}}
	return r.apply(ctx, sq, svc, func() error { mutateService(svc, sq); return nil })
}

// applyDisruptionBudget keeps the engines' PodDisruptionBudget while the
// spec asks for one, and deletes it once it does not.
func (r *StreamQueryReconciler) applyDisruptionBudget(ctx context.Context, sq *v1alpha1.StreamQuery, name types.NamespacedName) error {
	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: name.Name, Namespace: name.Namespace}}
	if b := sq.Spec.PodDisruptionBudget; b != nil {
		return r.apply(ctx, sq, pdb, func() error {
			pdb.Labels = merged(pdb.Labels, objectLabels(sq))
			pdb.Spec.Selector = &metav1.LabelSelector{MatchLabels: selectorLabels(sq)}
			pdb.Spec.MaxUnavailable = b.MaxUnavailable
			pdb.Spec.MinAvailable = nil
			return nil
		})
	}
	if err := r.Get(ctx, name, pdb); err != nil {
		return client.IgnoreNotFound(err)
	}
	if err := r.Delete(ctx, pdb); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("deleting the PodDisruptionBudget %s: %w", name.Name, err)
	}
	return nil
}

// applyStateVolume keeps the claim of spec.state.volume while the spec
// asks for one, and deletes it once it does not: its checkpoints are the
// query's alone. A claim is created whole, then only grows, once bound:
// Kubernetes refuses any other change, and a growth its storage class does
// not allow, which is reported as an event and left at that.
func (r *StreamQueryReconciler) applyStateVolume(ctx context.Context, sq *v1alpha1.StreamQuery) error {
	name := types.NamespacedName{Namespace: sq.Namespace, Name: stateClaimName(sq)}
	pvc := &corev1.PersistentVolumeClaim{}
	err := r.Get(ctx, name, pvc)
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("reading the PersistentVolumeClaim %s: %w", name.Name, err)
	}
	exists := err == nil
	if !stateVolume(sq) {
		if !exists || !metav1.IsControlledBy(pvc, sq) {
			return nil
		}
		if err := r.Delete(ctx, pvc); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("deleting the PersistentVolumeClaim %s: %w", name.Name, err)
		}
		return nil
	}
	v := sq.Spec.State.Volume
	if !exists {
		pvc = &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: name.Name, Namespace: name.Namespace, Labels: objectLabels(sq)},
			Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				StorageClassName: v.StorageClassName,
				Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: v.Size}},
			},
		}
		if err := controllerutil.SetControllerReference(sq, pvc, r.Scheme); err != nil {
			return fmt.Errorf("owning the PersistentVolumeClaim %s: %w", name.Name, err)
		}
		if err := r.Create(ctx, pvc); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating the PersistentVolumeClaim %s: %w", name.Name, err)
		}
		return nil
	}
	have := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
	if v.Size.Cmp(have) <= 0 || pvc.Status.Phase != corev1.ClaimBound || !metav1.IsControlledBy(pvc, sq) {
		return nil
	}
	patch := client.MergeFrom(pvc.DeepCopy())
	pvc.Spec.Resources.Requests[corev1.ResourceStorage] = v.Size
	switch err := r.Patch(ctx, pvc, patch); {
	case apierrors.IsInvalid(err), apierrors.IsForbidden(err):
		if r.Recorder != nil {
			r.Recorder.Eventf(sq, pvc, corev1.EventTypeWarning, "StateVolumeNotExpanded", "Reconcile", "the claim %s stays at %s: %v", name.Name, have.String(), err)
		}
	case err != nil:
		return fmt.Errorf("expanding the PersistentVolumeClaim %s to %s: %w", name.Name, v.Size.String(), err)
	}
	return nil
}

// invalid reports a spec that cannot run: phase Failed with why, and the
// engines of the last valid generation, which keep running its spec, as
// they do; it polls them again after PollInterval.
func (r *StreamQueryReconciler) invalid(ctx context.Context, sq *v1alpha1.StreamQuery, name types.NamespacedName, old *v1alpha1.StreamQueryStatus, status v1alpha1.StreamQueryStatus, msg string) (ctrl.Result, error) {
	readyMsg := msg
	status.Health = v1alpha1.HealthUnknown
	if running, err := r.observeRunning(ctx, sq, name, old, &status); err != nil {
		return ctrl.Result{}, err
	} else if running != "" {
		readyMsg += "; the engines of generation " + running + " keep running its spec"
	}
	status.Phase = v1alpha1.PhaseFailed
	status.LastError = msg
	// A Batch run's outcome stays: reverting the invalid edit must not run
	// the query again.
	status.Completion = old.Completion
	r.setCondition(&status, sq, ConditionReady, metav1.ConditionFalse, ReasonInvalidQuery, readyMsg)
	r.setCondition(&status, sq, ConditionProgressing, metav1.ConditionFalse, ReasonInvalidQuery, "the query is invalid")
	r.setCondition(&status, sq, ConditionDegraded, metav1.ConditionFalse, ReasonInvalidQuery, "the query is invalid")
	if err := r.writeStatus(ctx, sq, old, status); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: r.PollInterval}, nil
}

// observeRunning fills status from the engines of the last valid
// generation, while the current one is invalid, and returns that
// generation, or "" when no Deployment exists: the engines keep running
// their spec, and the status goes on saying how they do.
func (r *StreamQueryReconciler) observeRunning(ctx context.Context, sq *v1alpha1.StreamQuery, name types.NamespacedName, old, status *v1alpha1.StreamQueryStatus) (string, error) {
	var deploy appsv1.Deployment
	if err := r.Get(ctx, name, &deploy); err != nil {
		return "", client.IgnoreNotFound(err)
	}
	var pods corev1.PodList
	if err := r.List(ctx, &pods, client.InNamespace(sq.Namespace), client.MatchingLabels(selectorLabels(sq))); err != nil {
		return "", fmt.Errorf("listing engine pods: %w", err)
	}
	// The engines run the Deployment's spec, not the invalid one: its
	// replicas, image and hash.
	running := sq.DeepCopy()
	running.Spec.Replicas, running.Spec.Suspend = deploy.Spec.Replicas, false
	// The autoscaler waits for a valid spec; its last decision stays.
	running.Spec.Autoscaling = nil
	defer func() { status.Autoscaling = old.Autoscaling }()
	image, hash := "", deploy.Spec.Template.Annotations[AnnotationSpecHash]
	for _, c := range deploy.Spec.Template.Spec.Containers {
		if c.Name == engineContainerName {
			image = c.Image
		}
	}
	r.observe(ctx, running, &deploy, pods.Items, old, status, image, hash)
	return deploy.Annotations[AnnotationGeneration], nil
}

// engines is what observeEngines saw of a query's pods and engines.
type engines struct {
	reports      []engineReport
	stuck        *podProblem // the first pod that cannot run, and why
	updatedReady int         // ready pods of the current spec
}

// observeEngines fills the status's selector, replicas, readiness,
// restarts, health, backpressure, throughput, lag and last error from the
// query's pods and what their engines answer; desired is the number of
// engines that should run.
func (r *StreamQueryReconciler) observeEngines(ctx context.Context, sq *v1alpha1.StreamQuery, pods []corev1.Pod, old *v1alpha1.StreamQueryStatus, status *v1alpha1.StreamQueryStatus, image, hash string, desired int32) engines {
	sel, _ := metav1.LabelSelectorAsSelector(&metav1.LabelSelector{MatchLabels: selectorLabels(sq)})
	status.Selector = sel.String()
	status.Replicas = desired

	sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })
	// Every running engine is polled, ready or not: an engine whose brokers
	// are away reports itself unready, and its own verdict says why.
	var running []*corev1.Pod
	ready, updatedReady := 0, 0
	var stuck *podProblem
	terminated := ""
	now := r.now()
	status.PodRestarts = nil // the current pods', filled below
	for i := range pods {
		pod := &pods[i]
		if pod.DeletionTimestamp != nil {
			continue
		}
		for _, cs := range pod.Status.ContainerStatuses {
			if cs.Name != engineContainerName {
				continue
			}
			countRestarts(status, old, pod.Name, cs, now)
			p := containerProblem(pod.Name, cs, now)
			if p != nil && stuck == nil {
				stuck = p
			}
			looping := p != nil && p.reason == ReasonCrashLoop
			if msg := terminationMessage(cs, looping); msg != "" && terminated == "" {
				terminated = pod.Name + ": " + msg
			}
		}
		if podReady(pod) {
			ready++
			if isCurrent(pod, image, hash) {
				updatedReady++
			}
		}
		if pod.Status.Phase == corev1.PodRunning && pod.Status.PodIP != "" {
			running = append(running, pod)
		}
	}
	status.ReadyReplicas = int32(ready)
	status.Ready = fmt.Sprintf("%d/%d", status.ReadyReplicas, desired)

	reports := r.poller().poll(ctx, running)
	answered := slices.ContainsFunc(reports, func(rep engineReport) bool { return rep.doc != nil })
	if answered {
		// An engine that is starting, not ready yet, does not answer: while
		// another does, its silence is no news, and must not turn the
		// health Unknown in every rollout.
		reports = slices.DeleteFunc(reports, func(rep engineReport) bool { return rep.doc == nil && !rep.ready })
	}
	f := foldReports(reports)
	health, pressure, in, out, lastError := f.health, f.pressure, f.in, f.out, f.lastError
	status.Health = health
	status.Lag = f.lagOf(r.now())
	status.Checkpoint = f.checkpointOf(r.now())
	if !answered {
		status.Health = v1alpha1.HealthUnknown
		if desired == 0 {
			status.Health = ""
		}
	}
	if pressure != nil {
		pressure.Since = backpressureSince(old, pressure.Level, r.now())
		status.Backpressure = pressure
	}
	if answered {
		status.Throughput = &v1alpha1.Throughput{
			InputRecordsPerSecond:  strconv.FormatFloat(in, 'f', 0, 64),
			OutputRecordsPerSecond: strconv.FormatFloat(out, 'f', 0, 64),
		}
		for _, st := range f.statements {
			status.Statements = append(status.Statements, v1alpha1.StatementStatus{
				Name: st.name, LastError: st.lastError,
				OutputRecordsPerSecond: strconv.FormatFloat(st.out, 'f', 0, 64),
				ErrorRecordsPerSecond:  strconv.FormatFloat(st.errs, 'f', 0, 64),
			})
		}
	}
	if lastError == "" {
		// An engine that failed says why only in its last words: a
		// crash-looping engine answers no poll.
		lastError = terminated
	}
	status.LastError = lastError

	return engines{reports: reports, stuck: stuck, updatedReady: updatedReady}
}

// observe fills status from the Deployment, the pods and the engines.
// image and hash are the engine image and spec hash of the current spec,
// which tell its engines from those of an earlier one.
func (r *StreamQueryReconciler) observe(ctx context.Context, sq *v1alpha1.StreamQuery, deploy *appsv1.Deployment, pods []corev1.Pod, old *v1alpha1.StreamQueryStatus, status *v1alpha1.StreamQueryStatus, image, hash string) {
	desired := engineReplicas(sq, deploy)
	seen := r.observeEngines(ctx, sq, pods, old, status, image, hash, desired)
	stuck, reports, updatedReady := seen.stuck, seen.reports, seen.updatedReady

	rollingOut := deploy.Status.ObservedGeneration < deploy.Generation ||
		deploy.Status.UpdatedReplicas < desired || deploy.Status.Replicas > desired || int32(updatedReady) < desired
	if scaled, why := r.autoscale(sq, old, status, reports, desired, rollingOut); scaled != desired {
		// At once, rather than at the next reconcile: the decision was
		// a window in the making.
		if err := r.scale(ctx, deploy, scaled); err != nil {
			logf.FromContext(ctx).Error(err, "scaling the engines", "replicas", scaled)
		} else {
			status.Replicas = scaled
			r.scaled(sq, status, desired, scaled, why)
		}
	}
	deadline := progressDeadlineExceeded(deploy)
	if stuck == nil && deadline != "" && !sq.Spec.Suspend {
		stuck = &podProblem{reason: ReasonProgressDeadline, message: deadline}
	}
	switch {
	case sq.Spec.Suspend:
		status.Phase = v1alpha1.PhaseSuspended
		r.setCondition(status, sq, ConditionReady, metav1.ConditionFalse, ReasonSuspended, "the query is suspended")
	case stuck != nil:
		status.Phase = v1alpha1.PhaseDegraded
		r.setCondition(status, sq, ConditionReady, metav1.ConditionFalse, stuck.reason, stuck.String())
	case status.Health == v1alpha1.Degraded || status.Health == v1alpha1.Unhealthy:
		// Before Pending: an engine that is unready because its brokers
		// are away is running, and says so.
		status.Phase = v1alpha1.PhaseDegraded
		r.setCondition(status, sq, ConditionReady, metav1.ConditionFalse, string(status.Health), "engines report "+string(status.Health)+": "+failingCheck(reports, status.Health))
	case status.ReadyReplicas == 0:
		status.Phase = v1alpha1.PhasePending
		r.setCondition(status, sq, ConditionReady, metav1.ConditionFalse, ReasonPodsNotReady, fmt.Sprintf("%d of %d engines ready", status.ReadyReplicas, desired))
	default:
		status.Phase = v1alpha1.PhaseRunning
		cond, reason := metav1.ConditionTrue, ReasonRunning
		if status.ReadyReplicas < desired {
			cond, reason = metav1.ConditionFalse, ReasonPodsNotReady
		}
		r.setCondition(status, sq, ConditionReady, cond, reason, fmt.Sprintf("%d of %d engines ready", status.ReadyReplicas, desired))
	}
	switch {
	case deadline != "" && !sq.Spec.Suspend:
		r.setCondition(status, sq, ConditionProgressing, metav1.ConditionFalse, ReasonProgressDeadline, deadline)
	case rollingOut && !sq.Spec.Suspend:
		r.setCondition(status, sq, ConditionProgressing, metav1.ConditionTrue, ReasonRollingOut,
			fmt.Sprintf("%d of %d engines updated and ready", updatedReady, desired))
	default:
		r.setCondition(status, sq, ConditionProgressing, metav1.ConditionFalse, ReasonRolledOut, "every engine runs the current spec")
	}
	switch {
	case stuck != nil && !sq.Spec.Suspend:
		msg := stuck.String()
		if stuck.reason == ReasonCrashLoop {
			msg += fmt.Sprintf(" (%d restarts in all)", status.Restarts)
		}
		r.setCondition(status, sq, ConditionDegraded, metav1.ConditionTrue, stuck.reason, msg)
	case status.Health == v1alpha1.Unhealthy:
		r.setCondition(status, sq, ConditionDegraded, metav1.ConditionTrue, ReasonEngineUnhealthy, failingCheck(reports, v1alpha1.Unhealthy))
	case status.Health == v1alpha1.Degraded:
		r.setCondition(status, sq, ConditionDegraded, metav1.ConditionTrue, ReasonEngineDegraded, failingCheck(reports, v1alpha1.Degraded))
	default:
		r.setCondition(status, sq, ConditionDegraded, metav1.ConditionFalse, ReasonHealthy, "no engine reports a problem")
	}
	if h := sq.Spec.Health; h.MaxLagRecords == nil && h.MaxLagTime == nil || sq.Spec.Suspend {
		meta.RemoveStatusCondition(&status.Conditions, ConditionLagging)
	} else {
		behind, msg := lagging(h, status.Lag)
		switch {
		case status.Lag == nil || status.Lag.Records == nil:
			r.setCondition(status, sq, ConditionLagging, metav1.ConditionUnknown, ReasonLagUnknown, msg)
		case behind:
			r.setCondition(status, sq, ConditionLagging, metav1.ConditionTrue, ReasonLagAboveBound, msg)
		default:
			r.setCondition(status, sq, ConditionLagging, metav1.ConditionFalse, ReasonLagWithinBound, msg)
		}
	}
}

// terminationMessage is the last line an engine container that terminated
// left: the engine's summary, which says why it failed (the container's
// termination message falls back to the tail of its log).
// A container running again after it failed left its failure as history,
// unless it is crash-looping: then it is why.
func terminationMessage(cs corev1.ContainerStatus, looping bool) string {
	if cs.State.Running != nil && !looping {
		return "" // running again: its last failure is history, not status
	}
	t := cs.State.Terminated
	if t == nil {
		t = cs.LastTerminationState.Terminated
	}
	if t == nil || t.ExitCode == 0 {
		return ""
	}
	if end, ok := decodeTermination(t.Message); ok {
		return end.Summary
	}
	lines := strings.Split(strings.TrimSpace(t.Message), "\n")
	if last := strings.TrimSpace(lines[len(lines)-1]); last != "" {
		return last
	}
	return fmt.Sprintf("exit code %d (%s)", t.ExitCode, t.Reason)
}

// decodeTermination reads the outcome an engine wrote as its termination
// message; ok is false for a message that is not one: the tail of its log,
// when it died before writing it.
func decodeTermination(msg string) (end enginestatus.Termination, ok bool) {
	if err := json.Unmarshal([]byte(msg), &end); err != nil || end.Summary == "" {
		return enginestatus.Termination{}, false
	}
	return end, true
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// healthRank orders verdicts from best to worst; an unreachable engine is
// Unknown, worse than Healthy but not worse than a problem an engine reports.
var healthRank = map[v1alpha1.Health]int{
	v1alpha1.Healthy: 0, v1alpha1.HealthUnknown: 1, v1alpha1.Degraded: 2, v1alpha1.Unhealthy: 3,
}

// folded is what the engines' reports say together.
type folded struct {
	health    v1alpha1.Health
	pressure  *v1alpha1.Backpressure
	in, out   float64 // summed rates
	lastError string
	// lag is the summed consumer lag of the engines that report one, nil
	// if none does; watermark the oldest of the engines' watermarks.
	lag       *int64
	watermark time.Time
	// checkpoint is the oldest of the engines' newest checkpoints.
	checkpoint time.Time
	// statements are a statement set's statements' summed rates, in the
	// order the engines report them, and their first last errors.
	statements []foldedStatement
}

// foldedStatement is what the engines' reports say of one statement.
type foldedStatement struct {
	name      string
	out, errs float64
	lastError string
}

// foldReports combines the engines' reports: the worst health and
// backpressure, the summed rates and lags, the oldest watermark, and the
// first last error.
func foldReports(reports []engineReport) folded {
	f := folded{health: v1alpha1.Healthy}
	var maxUtil float64
	for _, rep := range reports {
		h := v1alpha1.HealthUnknown
		if doc := rep.doc; doc != nil {
			h = v1alpha1.Health(doc.Health)
			if _, known := healthRank[h]; !known {
				h = v1alpha1.HealthUnknown
			}
			f.in += doc.Rates.Input
			f.out += doc.Rates.Output
			bp := doc.Backpressure
			if f.pressure == nil || bp.Level.Rank() > f.pressure.Level.Rank() ||
				bp.Level == f.pressure.Level && bp.MaxUtilization > maxUtil {
				f.pressure = &v1alpha1.Backpressure{Level: bp.Level}
				maxUtil = bp.MaxUtilization
			}
			if f.lastError == "" && doc.LastError != "" {
				f.lastError = rep.pod + ": " + doc.LastError
			}
			if doc.Lag != nil {
				f.lag = ptr(*doc.Lag + deref(f.lag))
			}
			if et := doc.EventTime; et != nil && !et.Watermark.IsZero() && (f.watermark.IsZero() || et.Watermark.Before(f.watermark)) {
				f.watermark = et.Watermark
			}
			if c := doc.Checkpoints; c != nil && c.Last != nil && (f.checkpoint.IsZero() || c.Last.Time.Before(f.checkpoint)) {
				f.checkpoint = c.Last.Time
			}
			for _, st := range doc.Statements {
				i := slices.IndexFunc(f.statements, func(s foldedStatement) bool { return s.name == st.Name })
				if i < 0 {
					i = len(f.statements)
					f.statements = append(f.statements, foldedStatement{name: st.Name})
				}
				s := &f.statements[i]
				s.out += st.Rates.Output
				s.errs += st.Rates.Error
				if s.lastError == "" && st.LastError != "" {
					s.lastError = rep.pod + ": " + st.LastError
				}
			}
		}
		if healthRank[h] > healthRank[f.health] {
			f.health = h
		}
	}
	if f.pressure != nil {
		f.pressure.MaxQueueUtilization = strconv.FormatFloat(maxUtil, 'f', 2, 64)
	}
	return f
}

// lagOf is the status's lag from the engines' reports, nil when none
// knows one.
func (f folded) lagOf(now time.Time) *v1alpha1.Lag {
	if f.lag == nil && f.watermark.IsZero() {
		return nil
	}
	lag := &v1alpha1.Lag{Records: f.lag}
	if f.lag != nil && f.in > 0 {
		lag.Seconds = ptr(int64(math.Ceil(min(float64(*f.lag)/f.in, math.MaxInt32))))
	}
	if !f.watermark.IsZero() {
		lag.WatermarkDelaySeconds = ptr(max(int64(now.Sub(f.watermark).Seconds()), 0))
	}
	return lag
}

// checkpointOf is the status's checkpoint from the engines' reports, nil
// when none has completed one.
func (f folded) checkpointOf(now time.Time) *v1alpha1.CheckpointStatus {
	if f.checkpoint.IsZero() {
		return nil
	}
	return &v1alpha1.CheckpointStatus{
		LastTime:   &metav1.Time{Time: f.checkpoint},
		AgeSeconds: ptr(max(int64(now.Sub(f.checkpoint).Seconds()), 0)),
	}
}

// lagging says whether the lag is beyond the spec's bounds, and why.
func lagging(h v1alpha1.HealthSpec, lag *v1alpha1.Lag) (bool, string) {
	if lag == nil || lag.Records == nil {
		return false, "no engine reports a consumer lag"
	}
	records := *lag.Records
	switch {
	case h.MaxLagRecords != nil && records > *h.MaxLagRecords:
		return true, fmt.Sprintf("%d records behind, more than maxLagRecords %d", records, *h.MaxLagRecords)
	case h.MaxLagTime != nil && records > 0 && lag.Seconds == nil:
		return true, fmt.Sprintf("%d records behind and reading nothing", records)
	case h.MaxLagTime != nil && lag.Seconds != nil && *lag.Seconds > int64(h.MaxLagTime.Seconds()):
		return true, fmt.Sprintf("%d records behind, %ds at the current input rate, more than maxLagTime %s", records, *lag.Seconds, h.MaxLagTime.Duration)
	}
	return false, fmt.Sprintf("%d records behind", records)
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// failingCheck names the first engine and check whose verdict is health:
// the engines' verdict, so that a stalled engine (Unhealthy) is not
// explained by another's congested channel (Degraded).
func failingCheck(reports []engineReport, health v1alpha1.Health) string {
	for _, rep := range reports {
		if rep.doc == nil {
			continue
		}
		for _, c := range rep.doc.Checks {
			if string(c.Status) == string(health) {
				return fmt.Sprintf("engine %s: %s check: %s", rep.pod, c.Name, c.Message)
			}
		}
	}
	return "an engine reports " + string(health)
}

// backpressureSince keeps the time of the last change of level: the one
// field of the status that is history rather than observation.
func backpressureSince(old *v1alpha1.StreamQueryStatus, level enginestatus.Level, now time.Time) *metav1.Time {
	if bp := old.Backpressure; bp != nil && bp.Level == level && bp.Since != nil {
		return bp.Since
	}
	t := metav1.NewTime(now.Truncate(time.Second))
	return &t
}

// setCondition sets a condition for the current generation; its transition
// time changes only when its status does.
func (r *StreamQueryReconciler) setCondition(status *v1alpha1.StreamQueryStatus, sq *v1alpha1.StreamQuery, typ string, cond metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(&status.Conditions, metav1.Condition{
		Type: typ, Status: cond, Reason: reason, Message: msg, ObservedGeneration: sq.Generation,
		LastTransitionTime: metav1.NewTime(r.now()),
	})
}

// writeStatus writes the status through the status subresource if it
// changed, and records an event when the phase or health changes.
func (r *StreamQueryReconciler) writeStatus(ctx context.Context, sq *v1alpha1.StreamQuery, old *v1alpha1.StreamQueryStatus, status v1alpha1.StreamQueryStatus) error {
	if equality.Semantic.DeepEqual(*old, status) {
		return nil
	}
	sq.Status = status
	if err := r.Status().Update(ctx, sq); err != nil {
		if apierrors.IsConflict(err) {
			return err // requeued by the controller; the next read is fresh
		}
		return fmt.Errorf("writing status: %w", err)
	}
	if r.Recorder != nil {
		if old.Phase != status.Phase {
			kind := corev1.EventTypeNormal
			if status.Phase == v1alpha1.PhaseFailed || status.Phase == v1alpha1.PhaseDegraded {
				kind = corev1.EventTypeWarning
			}
			msg := fmt.Sprintf("phase %s → %s", phaseOrNone(old.Phase), status.Phase)
			if c := meta.FindStatusCondition(status.Conditions, ConditionReady); c != nil {
				msg += ": " + c.Message
			}
			r.Recorder.Eventf(sq, nil, kind, "PhaseChanged", "Reconcile", "%s", msg)
		}
		// A new query's engines are Unknown until they first answer: that
		// is no news, and no warning.
		if old.Health != status.Health && status.Health != "" && !(old.Health == "" && status.Health == v1alpha1.HealthUnknown) {
			kind := corev1.EventTypeNormal
			if status.Health == v1alpha1.Degraded || status.Health == v1alpha1.Unhealthy {
				kind = corev1.EventTypeWarning
			}
			r.Recorder.Eventf(sq, nil, kind, "HealthChanged", "Reconcile", "health %s → %s", phaseOrNone(v1alpha1.Phase(old.Health)), status.Health)
		}
	}
	return nil
}

func phaseOrNone(p v1alpha1.Phase) string {
	if p == "" {
		return "None"
	}
	return string(p)
}

func (r *StreamQueryReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *StreamQueryReconciler) poller() *statusPoller {
	c := r.HTTPClient
	if c == nil {
		c = http.DefaultClient
	}
	addr := r.EngineAddress
	if addr == nil {
		addr = PodIPAddress
	}
	return &statusPoller{client: c, address: addr, attempts: 3, timeout: 2 * time.Second}
}

// SetupWithManager registers the reconciler: it watches StreamQueries, what
// they own, and their engine pods, whose readiness and restarts are status.
//
// With ServiceMonitors, when the Prometheus Operator's CRD is installed (and
// ServiceMonitors is not false), each query also gets a ServiceMonitor of its
// engines.
func (r *StreamQueryReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.PollInterval <= 0 {
		r.PollInterval = 15 * time.Second
	}
	if r.ServiceMonitors == nil {
		_, err := mgr.GetRESTMapper().RESTMapping(serviceMonitorGVK.GroupKind(), serviceMonitorGVK.Version)
		found := err == nil
		r.ServiceMonitors = &found
	}
	b := ctrl.NewControllerManagedBy(mgr)
	if *r.ServiceMonitors {
		b = b.Owns(newServiceMonitor())
	}
	return b.
		WithOptions(controller.Options{MaxConcurrentReconciles: max(r.MaxConcurrentReconciles, 1)}).
		// Its own status writes must not start another reconcile at once:
		// the engines are polled every PollInterval, not after every write.
		For(&v1alpha1.StreamQuery{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}, predicate.LabelChangedPredicate{}))).
		Owns(&appsv1.Deployment{}).
		Owns(&batchv1.Job{}).
		Owns(&corev1.ConfigMap{}).
		Owns(&corev1.Service{}).
		Owns(&policyv1.PodDisruptionBudget{}).
		Owns(&corev1.PersistentVolumeClaim{}).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(podToQuery)).
		Named("streamquery").
		Complete(r)
}

// CacheOptions are the manager's cache options for the reconciler: the
// given namespaces (all when empty), and of the kinds it owns or watches
// only the objects it made, so that a manager in a large cluster keeps the
// engines' pods in memory, not every pod.
func CacheOptions(namespaces []string) cache.Options {
	var opts cache.Options
	for _, ns := range namespaces {
		if opts.DefaultNamespaces == nil {
			opts.DefaultNamespaces = map[string]cache.Config{}
		}
		opts.DefaultNamespaces[ns] = cache.Config{}
	}
	ours := labels.SelectorFromSet(labels.Set{LabelManagedBy: managedBy})
	opts.ByObject = map[client.Object]cache.ByObject{}
	for _, obj := range []client.Object{&corev1.Pod{}, &appsv1.Deployment{}, &batchv1.Job{}, &corev1.ConfigMap{}, &corev1.Service{}, &policyv1.PodDisruptionBudget{}} {
		opts.ByObject[obj] = cache.ByObject{Label: ours}
	}
	return opts
}

// podToQuery maps an engine pod to the query it runs.
func podToQuery(_ context.Context, obj client.Object) []reconcile.Request {
	name, ok := obj.GetLabels()[LabelQuery]
	if !ok {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: obj.GetNamespace(), Name: name}}}
}

// podProblem is why engines cannot run: a pod's container stuck waiting,
// or a Deployment past its progress deadline.
type podProblem struct{ pod, reason, message string }

func (p *podProblem) String() string {
	var s string
	switch {
	case p.reason == ReasonCrashLoop:
		s = "engine pod " + p.pod + " is crash-looping"
	case p.pod != "":
		s = "engine pod " + p.pod + ": " + p.reason
	default:
		s = p.reason
	}
	if p.message != "" {
		s += ": " + p.message
	}
	return s
}

// stuckReasons are the reasons a container waits that it will not get past
// by itself: a crash loop, a configuration it cannot start with, an image
// it cannot pull.
var stuckReasons = []string{
	ReasonCrashLoop, "CreateContainerConfigError", "CreateContainerError", "RunContainerError",
	"ErrImagePull", "ImagePullBackOff", "InvalidImageName",
}

// recentFailure is how long after a failure a restarted engine that is not
// ready yet still counts as crash-looping: between two back-offs its
// container runs, and the query must not flip to Pending and back at each.
const recentFailure = 5 * time.Minute

// containerProblem says why an engine container cannot run, or nil.
func containerProblem(pod string, cs corev1.ContainerStatus, now time.Time) *podProblem {
	if w := cs.State.Waiting; w != nil && slices.Contains(stuckReasons, w.Reason) {
		return &podProblem{pod: pod, reason: w.Reason, message: w.Message}
	}
	// A repeat: one failure (an OOM kill) and a slow start after it are not
	// a loop.
	if t := cs.LastTerminationState.Terminated; cs.State.Running != nil && !cs.Ready && t != nil &&
		t.ExitCode != 0 && cs.RestartCount >= 2 && now.Sub(t.FinishedAt.Time) < recentFailure {
		return &podProblem{pod: pod, reason: ReasonCrashLoop, message: "restarted after a failure, not ready yet"}
	}
	return nil
}

// countRestarts adds the restarts of a pod's engine container since the
// last status to the query's: a pod's count starts again with a new pod,
// the query's does not.
func countRestarts(status, old *v1alpha1.StreamQueryStatus, pod string, cs corev1.ContainerStatus, now time.Time) {
	if status.PodRestarts == nil {
		status.PodRestarts = map[string]int32{}
	}
	status.PodRestarts[pod] = cs.RestartCount
	if old.PodRestarts == nil && old.Restarts > 0 && old.LastRestartTime == nil {
		// A status written before podRestarts and lastRestartTime existed
		// already counts these pods' restarts: they are the baseline, not
		// new ones.
		return
	}
	if more := cs.RestartCount - old.PodRestarts[pod]; more > 0 {
		status.Restarts += more
		at := metav1.NewTime(now.Truncate(time.Second))
		if t := cs.LastTerminationState.Terminated; t != nil && !t.FinishedAt.IsZero() {
			at = t.FinishedAt
		}
		status.LastRestartTime = &at
	}
}

// isCurrent says the pod runs the current spec and image.
func isCurrent(pod *corev1.Pod, image, hash string) bool {
	if pod.Annotations[AnnotationSpecHash] != hash {
		return false
	}
	for _, c := range pod.Spec.Containers {
		if c.Name == engineContainerName {
			return c.Image == image
		}
	}
	return false
}

// progressDeadlineExceeded returns the Deployment controller's message when
// the rollout has made no progress within its deadline, else "".
func progressDeadlineExceeded(d *appsv1.Deployment) string {
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Status == corev1.ConditionFalse && c.Reason == ReasonProgressDeadline {
			return c.Message
		}
	}
	return ""
}

func ptr[T any](v T) *T { return &v }
