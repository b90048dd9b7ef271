// Package v1alpha1 holds the StreamQuery API of group streaming.sluice.dev.
//
// One Go type serves two uses: the operator serves it as a custom resource, and
// the engine reads the very same document as its configuration file, so a manifest
// that runs under `kubectl apply` runs unchanged under `engine run -f`.
//
// +kubebuilder:object:generate=true
// +groupName=streaming.sluice.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is the group and version of every type in this package.
var GroupVersion = schema.GroupVersion{Group: "streaming.sluice.dev", Version: "v1alpha1"}

// AddToScheme adds the package's types to a scheme.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &StreamQuery{}, &StreamQueryList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}

// Kind is the kind of the StreamQuery resource.
const Kind = "StreamQuery"
