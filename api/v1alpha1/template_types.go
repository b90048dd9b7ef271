package v1alpha1

import (
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	sigsjson "sigs.k8s.io/json"

	"github.com/sluice-dev/sluice/api/enginestatus"
)

// EngineTemplate customises the engine pods the operator renders. What the
// engine needs to run stays the operator's: the engine container's image,
// command, arguments, ports, probes, resources (spec.resources), its
// security context and the mount of its manifest, and the POD_NAME and
// POD_NAMESPACE variables. Everything here is added to that.
type EngineTemplate struct {
	// metadata adds labels and annotations to the engine pods. The
	// operator's own (app.kubernetes.io/*, sluice.dev/*, prometheus.io/*)
	// win over the same keys here.
	// +optional
	Metadata EngineMetadata `json:"metadata,omitempty"`
	// spec sets pod and engine container settings.
	// +optional
	Spec EnginePodSpec `json:"spec,omitempty"`
}

// DisruptionBudget bounds the engines a voluntary disruption takes at once.
// +kubebuilder:validation:XValidation:rule="!has(self.maxUnavailable) || (type(self.maxUnavailable) == int ? int(self.maxUnavailable) >= 0 : string(self.maxUnavailable).matches('^(100|[1-9]?[0-9])%$'))",message="maxUnavailable must be a number of engines or a percentage such as 25%"
type DisruptionBudget struct {
	// maxUnavailable is how many engine pods may be down at once for a
	// voluntary disruption: a number, or a percentage of the replicas.
	// +kubebuilder:default=1
	// +kubebuilder:validation:XIntOrString
	// +optional
	MaxUnavailable *intstr.IntOrString `json:"maxUnavailable,omitempty"`
}

// AutoscalingSpec scales a query's engines on what they report of
// themselves: more engines while catching up with the input would take
// longer than targetLagSeconds, or while their channels are congested;
// fewer once that has not been so for scaleDownStabilization.
// +kubebuilder:validation:XValidation:rule="!has(self.minReplicas) || self.minReplicas <= self.maxReplicas",message="minReplicas must not be above maxReplicas"
// +kubebuilder:validation:XValidation:rule="!has(self.scaleUpStabilization) || (duration(self.scaleUpStabilization) >= duration('0s') && duration(self.scaleUpStabilization) <= duration('1h'))",message="scaleUpStabilization must be a duration between 0s and 1h"
// +kubebuilder:validation:XValidation:rule="!has(self.scaleDownStabilization) || (duration(self.scaleDownStabilization) >= duration('0s') && duration(self.scaleDownStabilization) <= duration('1h'))",message="scaleDownStabilization must be a duration between 0s and 1h"
type AutoscalingSpec struct {
	// minReplicas is the fewest engines. Defaults to 1.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=128
	// +kubebuilder:default=1
	// +optional
	MinReplicas int32 `json:"minReplicas,omitempty"`
	// maxReplicas is the most engines; the operator never runs more than
	// the sources have partitions, which it says on the status.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=128
	MaxReplicas int32 `json:"maxReplicas"`
	// targetLagSeconds: the engines are too few while catching up with
	// their consumer lag at their input rate would take longer than this.
	// The operator asks for replicas × lag seconds ÷ target engines.
	// Defaults to 30.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=86400
	// +kubebuilder:default=30
	// +optional
	TargetLagSeconds int32 `json:"targetLagSeconds,omitempty"`
	// backpressure: the engines are too few, one more is asked for, while
	// their backpressure is at this level or above (Low, Medium or High),
	// or never with None. Defaults to High.
	// +kubebuilder:validation:Enum=None;Low;Medium;High
	// +kubebuilder:default=High
	// +optional
	Backpressure enginestatus.Level `json:"backpressure,omitempty"`
	// scaleUpStabilization is how long the engines must have been too few,
	// at every poll, before engines are added: the fewest asked for over
	// this window is what is added to. Defaults to 30s, at most 1h.
	// +kubebuilder:default="30s"
	// +optional
	ScaleUpStabilization *metav1.Duration `json:"scaleUpStabilization,omitempty"`
	// scaleDownStabilization is how long the engines must have been too
	// many, at every poll, before engines are removed: the most asked for
	// over this window is what is removed to. Defaults to 5m, at most 1h.
	// +kubebuilder:default="5m"
	// +optional
	ScaleDownStabilization *metav1.Duration `json:"scaleDownStabilization,omitempty"`
	// maxStep is the most engines added or removed at once. Defaults to 2.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=128
	// +kubebuilder:default=2
	// +optional
	MaxStep int32 `json:"maxStep,omitempty"`
}

// EngineMetadata is the labels and annotations added to the engine pods.
type EngineMetadata struct {
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// EnginePodSpec is what a StreamQuery may set of its engine pods.
type EnginePodSpec struct {
	// serviceAccountName runs the engines as this service account, e.g. for
	// workload identity to reach a managed Kafka.
	// +optional
	ServiceAccountName string `json:"serviceAccountName,omitempty"`
	// nodeSelector, tolerations, affinity, topologySpreadConstraints and
	// priorityClassName place the engine pods, as in a PodSpec.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
	// +optional
	// +listType=atomic
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`
	// +optional
	Affinity *corev1.Affinity `json:"affinity,omitempty"`
	// +optional
	// +listType=atomic
	TopologySpreadConstraints []corev1.TopologySpreadConstraint `json:"topologySpreadConstraints,omitempty"`
	// +optional
	PriorityClassName string `json:"priorityClassName,omitempty"`
	// imagePullSecrets are the secrets to pull the engine image (and
	// sidecars') from a private registry.
	// +optional
	// +listType=atomic
	ImagePullSecrets []corev1.LocalObjectReference `json:"imagePullSecrets,omitempty"`
	// securityContext replaces the operator's pod security context
	// (non-root as user 65532, the runtime's default seccomp profile), for
	// platforms that assign user ids themselves.
	// +optional
	SecurityContext *corev1.PodSecurityContext `json:"securityContext,omitempty"`
	// env adds variables to the engine container: Kafka credentials for
	// the *Env settings of a sasl section, OTEL_* for tracing, GOMEMLIMIT
	// to replace the operator's. POD_NAME and POD_NAMESPACE are the
	// operator's.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:XValidation:rule="self.all(e, e.name != 'POD_NAME' && e.name != 'POD_NAMESPACE')",message="POD_NAME and POD_NAMESPACE are set by the operator"
	Env []corev1.EnvVar `json:"env,omitempty"`
	// envFrom adds the keys of ConfigMaps and Secrets as variables of the
	// engine container.
	// +optional
	// +listType=atomic
	EnvFrom []corev1.EnvFromSource `json:"envFrom,omitempty"`
	// volumes are added to the pod, e.g. a Secret of TLS files for the
	// *File settings of a kafka source; the name "manifest" is the
	// operator's. Each is a Kubernetes Volume; the CRD leaves out its schema,
	// which would grow it by that of every volume source, and the engine's
	// validation and the API server, when the operator writes the
	// Deployment, check it.
	// +optional
	// +listType=atomic
	Volumes []runtime.RawExtension `json:"volumes,omitempty"`
	// volumeMounts mount volumes into the engine container; /etc/sluice is
	// the operator's.
	// +optional
	// +listType=atomic
	VolumeMounts []corev1.VolumeMount `json:"volumeMounts,omitempty"`
	// containers are added to the pod beside the engine (sidecars: a log
	// shipper, a proxy); the name "engine" is the operator's. Each is a
	// Kubernetes Container, checked as volumes are.
	// +optional
	// +listType=atomic
	Containers []runtime.RawExtension `json:"containers,omitempty"`
}

// DecodeVolumes returns the volumes as Kubernetes Volumes; an unknown
// field is an error, so that a misspelt one is not dropped.
func (s *EnginePodSpec) DecodeVolumes() ([]corev1.Volume, error) {
	return decodeAll[corev1.Volume](s.Volumes)
}

// DecodeContainers returns the sidecars as Kubernetes Containers.
func (s *EnginePodSpec) DecodeContainers() ([]corev1.Container, error) {
	return decodeAll[corev1.Container](s.Containers)
}

func decodeAll[T any](raw []runtime.RawExtension) ([]T, error) {
	out := make([]T, len(raw))
	for i, r := range raw {
		// Case-sensitive and strict, as the API server reads a manifest.
		strict, err := sigsjson.UnmarshalStrict(r.Raw, &out[i])
		if err == nil && len(strict) > 0 {
			err = errors.Join(strict...)
		}
		if err != nil {
			return nil, &decodeError{index: i, err: err}
		}
	}
	return out, nil
}

// decodeError is an item of a list that does not decode.
type decodeError struct {
	index int
	err   error
}

func (e *decodeError) Error() string { return fmt.Sprintf("[%d]: %v", e.index, e.err) }
func (e *decodeError) Unwrap() error { return e.err }
