package controllers

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/api/enginestatus"
	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// Labels and annotations the operator puts on what it creates.
const (
	LabelQuery         = "sluice.dev/query"
	AnnotationSpecHash = "sluice.dev/spec-hash"
	// AnnotationTemplateHash, on the engine Deployment, is the hash of the
	// pod template the operator last rendered.
	AnnotationTemplateHash = "sluice.dev/template-hash"
	// AnnotationGeneration, on the engine Deployment, is the generation of
	// the query whose spec it runs: the last valid one.
	AnnotationGeneration = "sluice.dev/generation"
	// AnnotationStatements, on the engine Deployment of a statement set
	// with spec.state, names the set's statements as last rendered.
	AnnotationStatements = "sluice.dev/statements"
	engineContainerName  = "engine"
	manifestKey          = "query.yaml"
	manifestDir          = v1alpha1.EngineManifestDir
)

// childName is the name of every object created for a query: a ConfigMap, a
// Deployment and a Service, each of its own kind, so one name is enough and
// names stay deterministic for idempotent creates.
func childName(sq *v1alpha1.StreamQuery) string { return sq.Name + "-engine" }

// stateClaimName names the PersistentVolumeClaim of spec.state.volume.
func stateClaimName(sq *v1alpha1.StreamQuery) string { return sq.Name + "-state" }

// stateVolume says the engines keep their checkpoints in the query's claim.
func stateVolume(sq *v1alpha1.StreamQuery) bool {
	return sq.Spec.State != nil && sq.Spec.State.Volume != nil
}

// statementNames names, for AnnotationStatements, the statements of a
// set with spec.state; "" for a query, or a set without state.
func statementNames(sq *v1alpha1.StreamQuery) string {
	if sq.Spec.State == nil {
		return ""
	}
	names := make([]string, len(sq.Spec.Statements))
	for i, st := range sq.Spec.Statements {
		names[i] = st.Name
	}
	return strings.Join(names, ",")
}

// selectorLabels select a query's engine pods.
func selectorLabels(sq *v1alpha1.StreamQuery) map[string]string {
	return map[string]string{
		"app.kubernetes.io/name":     "sluice-engine",
		"app.kubernetes.io/instance": sq.Name,
		LabelQuery:                   sq.Name,
	}
}

// LabelManagedBy marks every object the operator makes: its cache holds
// only those (CacheOptions).
const LabelManagedBy = "app.kubernetes.io/managed-by"

// managedBy is LabelManagedBy's value.
const managedBy = "sluice-operator"

func objectLabels(sq *v1alpha1.StreamQuery) map[string]string {
	l := selectorLabels(sq)
	l[LabelManagedBy] = managedBy
	l["app.kubernetes.io/component"] = "engine"
	return l
}

// renderManifest is the engine's configuration: the query's own manifest,
// without status, so the engine runs exactly what was applied. It leaves out
// replicas and suspend, which say how many engines run, not what one does:
// scaling or suspending must not change the manifest, nor the hash that
// rolls the engines. One thing of the count a stateful query's engine
// needs: whether it is one of several (v1alpha1.StreamQuerySpec.
// SeveralEngines), which decides how it keeps its state, repartitions its
// rows and waits for partitions. Several is rendered as replicas: 2, so
// that going from one engine to several, or back, rolls the engines onto
// the other plan, and no other scaling does. Like every function here, it
// takes a query whose spec is defaulted.
func renderManifest(sq *v1alpha1.StreamQuery, stateful bool) ([]byte, string, error) {
	doc := v1alpha1.StreamQuery{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: v1alpha1.Kind},
		ObjectMeta: metav1.ObjectMeta{Name: sq.Name, Namespace: sq.Namespace},
		Spec:       sq.Spec,
	}
	// Nor what only the operator reads: the pods' template (their own hash
	// rolls them), the disruption budget, the lag bounds.
	doc.Spec.Replicas, doc.Spec.Suspend = nil, false
	if stateful && sq.Spec.Replicas != nil && *sq.Spec.Replicas > 1 {
		doc.Spec.Replicas = ptr(int32(2))
	}
	doc.Spec.Template, doc.Spec.PodDisruptionBudget = nil, nil
	doc.Spec.Health.MaxLagRecords, doc.Spec.Health.MaxLagTime = nil, nil
	b, err := yaml.Marshal(doc)
	if err != nil {
		return nil, "", fmt.Errorf("rendering the manifest: %w", err)
	}
	return b, shortHash(b), nil
}

// engineReplicas is how many engine pods the spec asks for, given the
// Deployment as it is (nil before it exists). An autoscaled query runs what
// the autoscaler last set on the Deployment (autoscale), within the
// bounds as they are now: the Deployment, not the status, whose cached
// copy may be a decision behind.
func engineReplicas(sq *v1alpha1.StreamQuery, d *appsv1.Deployment) int32 {
	if sq.Spec.Suspend {
		return 0
	}
	if a := sq.Spec.Autoscaling; a != nil {
		n := a.MinReplicas
		switch {
		case d != nil && d.Spec.Replicas != nil && !d.CreationTimestamp.IsZero():
			n = *d.Spec.Replicas
		case sq.Status.Autoscaling != nil:
			n = sq.Status.Autoscaling.DesiredReplicas
		}
		return min(max(n, a.MinReplicas), a.MaxReplicas)
	}
	return *sq.Spec.Replicas
}

// mutateConfigMap sets the desired state of the query's ConfigMap.
func mutateConfigMap(cm *corev1.ConfigMap, sq *v1alpha1.StreamQuery, manifest []byte) {
	cm.Labels = merged(cm.Labels, objectLabels(sq))
	cm.Data = map[string]string{manifestKey: string(manifest)}
}

// mutateDeployment sets the desired state of the engine Deployment.
//
// A Deployment, not a StatefulSet: engines are interchangeable. Kafka
// consumer groups assign partitions at run time, and a stateful query's
// checkpoints are in Kafka, where they follow the partitions, or in the
// one claim of spec.state.volume, which only one engine uses. No pod needs
// a stable name or a volume of its own, and a Deployment rolls a spec
// change out with a surge (without one, under a claim: see below).
//
// The API server fills in defaults of the pod template (probe thresholds,
// the strategy's surge, ...) that a rendered template lacks, so comparing
// the two would always find a difference. The Deployment keeps the hash of
// the template last rendered instead, and the template is written only when
// that changes: a reconcile that changes nothing writes nothing.
func mutateDeployment(d *appsv1.Deployment, sq *v1alpha1.StreamQuery, image, hash string) error {
	d.Labels = merged(d.Labels, objectLabels(sq))
	if d.Annotations == nil {
		d.Annotations = map[string]string{}
	}
	d.Annotations[AnnotationGeneration] = strconv.FormatInt(sq.Generation, 10)
	// Engines of a set with other statements must not share its consumer
	// group: the old ones commit offsets without the new statements'
	// checkpoints, which a new engine would then find behind them, and
	// refuse. A change of the statements replaces the engines all at once.
	statements := statementNames(sq)
	restate := statements != d.Annotations[AnnotationStatements]
	if statements == "" {
		delete(d.Annotations, AnnotationStatements)
	} else {
		d.Annotations[AnnotationStatements] = statements
	}
	replicas := engineReplicas(sq, d)
	d.Spec.Replicas = &replicas
	t, err := renderPodTemplate(sq, image, hash)
	if err != nil {
		return err
	}
	b, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("rendering the pod template: %w", err)
	}
	th := shortHash(b)
	if d.Annotations[AnnotationTemplateHash] == th && !drifted(d, image, hash) {
		return nil
	}
	d.Annotations[AnnotationTemplateHash] = th // the deployment controller keeps its own there
	d.Spec.Selector = &metav1.LabelSelector{MatchLabels: selectorLabels(sq)}
	d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType}
	if stateVolume(sq) || (restate && statements != "") {
		// The claim is ReadWriteOnce, and its directory has one writer:
		// the new engine starts once the old one has stopped. Likewise
		// engines of a set's other statements (above).
		d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	}
	d.Spec.Template = t
	return nil
}

// drifted says whether someone changed the Deployment's engine image or
// spec hash since the operator wrote them (kubectl set image): the template
// is then written again.
func drifted(d *appsv1.Deployment, image, hash string) bool {
	if d.Spec.Template.Annotations[AnnotationSpecHash] != hash {
		return true
	}
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name == engineContainerName {
			return c.Image != image
		}
	}
	return true
}

// renderPodTemplate is the engine pods' template.
//
// spec.template adds to it: its labels and annotations under the
// operator's, its pod settings, variables, mounts, volumes and sidecars
// after the operator's, its security context instead of the operator's.
func renderPodTemplate(sq *v1alpha1.StreamQuery, image, hash string) (corev1.PodTemplateSpec, error) {
	var user v1alpha1.EngineTemplate
	if sq.Spec.Template != nil {
		user = *sq.Spec.Template.DeepCopy()
	}
	tp := &user.Spec
	// Validate, before any rendering, refused what does not decode.
	volumes, err := tp.DecodeVolumes()
	if err != nil {
		return corev1.PodTemplateSpec{}, fmt.Errorf("spec.template.spec.volumes%w", err)
	}
	sidecars, err := tp.DecodeContainers()
	if err != nil {
		return corev1.PodTemplateSpec{}, fmt.Errorf("spec.template.spec.containers%w", err)
	}
	var tmpl corev1.PodTemplateSpec
	port := strconv.Itoa(enginestatus.Port)
	t := &tmpl
	t.Labels = merged(user.Metadata.Labels, objectLabels(sq))
	t.Annotations = merged(user.Metadata.Annotations, map[string]string{
		AnnotationSpecHash:     hash,
		"prometheus.io/scrape": "true",
		"prometheus.io/port":   port,
		"prometheus.io/path":   "/metrics",
	})
	t.Spec.ServiceAccountName = tp.ServiceAccountName
	t.Spec.NodeSelector = tp.NodeSelector
	t.Spec.Tolerations = tp.Tolerations
	t.Spec.Affinity = tp.Affinity
	t.Spec.TopologySpreadConstraints = tp.TopologySpreadConstraints
	t.Spec.PriorityClassName = tp.PriorityClassName
	t.Spec.ImagePullSecrets = tp.ImagePullSecrets
	grace := int64(shutdownSeconds(sq) + 10)
	t.Spec.TerminationGracePeriodSeconds = &grace
	nonRoot, noEscalation, readOnly := true, false, true
	// A numeric user: an image without one (no USER, or a name) could not
	// prove runAsNonRoot and would not start (CreateContainerConfigError).
	uid := int64(engineUID)
	t.Spec.SecurityContext = &corev1.PodSecurityContext{
		RunAsNonRoot:   &nonRoot,
		RunAsUser:      &uid,
		RunAsGroup:     &uid,
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
	mounts := []corev1.VolumeMount{{Name: "manifest", MountPath: manifestDir, ReadOnly: true}}
	t.Spec.Volumes = []corev1.Volume{{
		Name: "manifest",
		VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: childName(sq)},
		}},
	}}
	if tp.SecurityContext != nil {
		t.Spec.SecurityContext = tp.SecurityContext.DeepCopy()
	}
	if stateVolume(sq) {
		if sc := t.Spec.SecurityContext; sc.FSGroup == nil {
			// The claim's files belong to the engine's group, which a new
			// volume's root does not; a template's own fsGroup stands.
			sc.FSGroup = &uid
			onMismatch := corev1.FSGroupChangeOnRootMismatch
			sc.FSGroupChangePolicy = &onMismatch
		}
		t.Spec.Volumes = append(t.Spec.Volumes, corev1.Volume{
			Name: v1alpha1.StateVolumeName,
			VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{
				ClaimName: stateClaimName(sq),
			}},
		})
		mounts = append(mounts, corev1.VolumeMount{Name: v1alpha1.StateVolumeName, MountPath: sq.Spec.State.Dir})
	}
	t.Spec.Volumes = append(t.Spec.Volumes, volumes...)
	probe := func(path string, period int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString("http")}},
			PeriodSeconds:    period,
			TimeoutSeconds:   2,
			FailureThreshold: 3,
		}
	}
	t.Spec.Containers = []corev1.Container{{
		Name:  engineContainerName,
		Image: image,
		// A tag is pulled when the node lacks it, never again: a moving tag
		// would otherwise make every restart a pull, and pods whose images
		// were loaded into the node without a registry could not start.
		ImagePullPolicy: corev1.PullIfNotPresent,
		Args: []string{
			"run", "-f", manifestDir + "/" + manifestKey,
			"--http", ":" + port, "--log-format", "json", "--progress", "never",
		},
		Env:     engineEnv(sq, tp.Env),
		EnvFrom: tp.EnvFrom,
		Ports:   []corev1.ContainerPort{{Name: "http", ContainerPort: enginestatus.Port, Protocol: corev1.ProtocolTCP}},
		// A failed engine's last words, its summary line, become its
		// termination message, which the status shows as lastError.
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
		LivenessProbe:            probe("/healthz", 10),
		ReadinessProbe:           probe("/readyz", 5),
		Resources:                sq.Spec.Resources,
		VolumeMounts:             append(mounts, tp.VolumeMounts...),
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: &noEscalation,
			ReadOnlyRootFilesystem:   &readOnly,
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
	}}
	t.Spec.Containers = append(t.Spec.Containers, sidecars...)
	return tmpl, nil
}

// merged returns base with over's entries over it; nil when both are empty.
func merged(base, over map[string]string) map[string]string {
	if len(base)+len(over) == 0 {
		return nil
	}
	m := maps.Clone(base)
	if m == nil {
		m = map[string]string{}
	}
	maps.Copy(m, over)
	return m
}

func shutdownSeconds(sq *v1alpha1.StreamQuery) int {
	return int(sq.Spec.Runtime.ShutdownTimeout.Seconds())
}

// mutateService sets the desired state of the Service of the engines' HTTP
// port: status and metrics. It is headless: the operator polls pods and a
// ServiceMonitor scrapes endpoints, so a virtual IP would serve nobody and
// take one of the cluster's service IPs per query.
func mutateService(s *corev1.Service, sq *v1alpha1.StreamQuery) {
	s.Labels = merged(s.Labels, objectLabels(sq))
	s.Spec.ClusterIP = corev1.ClusterIPNone
	s.Spec.Selector = selectorLabels(sq)
	s.Spec.Ports = []corev1.ServicePort{{
		Name: "http", Port: enginestatus.Port, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP,
	}}
}

// describeProblems renders a spec's problems for a condition message, with
// the line and column of problems inside the query.
func describeProblems(spec *v1alpha1.StreamQuerySpec, ps v1alpha1.Problems) string {
	msgs := make([]string, len(ps))
	for i, p := range ps {
		msgs[i] = p.Field + ": " + p.InQuery(spec)
	}
	return strings.Join(msgs, "; ")
}

// engineUID is the user and group the engines run as: the engine image's.
const engineUID = 65532

// memoryLimitShare is the share of the container's memory limit given to
// the Go runtime as its soft limit (GOMEMLIMIT): the collector works harder
// as the heap nears it, well before the kernel's OOM kill at the limit,
// and the engine's memory health check measures the heap against it.
const memoryLimitShare = 0.9

// engineEnv is the engine container's environment: its pod's name and
// namespace, GOMEMLIMIT from spec.resources' memory limit, if any and the
// template's variables (user) set none, then user.
func engineEnv(sq *v1alpha1.StreamQuery, user []corev1.EnvVar) []corev1.EnvVar {
	env := []corev1.EnvVar{
		{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
	}
	limit, ok := sq.Spec.Resources.Limits[corev1.ResourceMemory]
	ownLimit := slices.ContainsFunc(user, func(e corev1.EnvVar) bool { return e.Name == "GOMEMLIMIT" })
	if ok && !limit.IsZero() && !ownLimit {
		soft := int64(float64(limit.Value()) * memoryLimitShare)
		env = append(env, corev1.EnvVar{Name: "GOMEMLIMIT", Value: strconv.FormatInt(soft, 10)})
	}
	return append(env, user...)
}

// serviceMonitorGVK is the Prometheus Operator's ServiceMonitor, which the
// operator renders without depending on its Go types.
var serviceMonitorGVK = schema.GroupVersionKind{Group: "monitoring.coreos.com", Version: "v1", Kind: "ServiceMonitor"}

func newServiceMonitor() *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(serviceMonitorGVK)
	return u
}

// mutateServiceMonitor sets the desired state of the query's ServiceMonitor:
// its engines' /metrics through their Service, each series labelled with
// the query's namespace (Prometheus's own) and name, so that dashboards and
// alerts can tell queries apart.
//
// The spec is written only when what the operator renders changes (its hash
// in sluice.dev/template-hash): the Prometheus Operator's CRD may default
// fields the rendering lacks, and rewriting them at each reconcile would
// wake the reconciler again through its watch.
func mutateServiceMonitor(sm *unstructured.Unstructured, sq *v1alpha1.StreamQuery) error {
	sm.SetLabels(merged(sm.GetLabels(), objectLabels(sq)))
	spec := map[string]any{
		"selector": map[string]any{"matchLabels": toAny(selectorLabels(sq))},
		"endpoints": []any{map[string]any{
			"port": "http", "path": "/metrics", "interval": "15s",
		}},
		"targetLabels": []any{LabelQuery},
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return fmt.Errorf("rendering the ServiceMonitor: %w", err)
	}
	h := shortHash(b)
	if sm.GetAnnotations()[AnnotationTemplateHash] == h {
		return nil
	}
	sm.SetAnnotations(merged(sm.GetAnnotations(), map[string]string{AnnotationTemplateHash: h}))
	return unstructured.SetNestedField(sm.Object, spec, "spec")
}

func toAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// shortHash names a rendering: the first 8 bytes of its SHA-256, in hex.
func shortHash(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}
