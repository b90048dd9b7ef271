// Package webhook is the operator's validating admission webhook: it
// refuses, at kubectl apply, a StreamQuery the engine could not run, with
// the field and, inside the query, the line and column of each problem. It
// runs the compiler engine validate runs, so the two never disagree.
package webhook

import (
	"context"
	"errors"
	"fmt"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/compile"
)

// Path is where the manager serves the webhook.
const Path = "/validate-streaming-sluice-dev-v1alpha1-streamquery"

// failurePolicy=ignore: while the manager is down, queries are admitted
// unchecked, and the controller's InvalidQuery condition still catches
// them; a query must not be unappliable because the operator is.
// +kubebuilder:webhook:path=/validate-streaming-sluice-dev-v1alpha1-streamquery,mutating=false,failurePolicy=ignore,sideEffects=None,groups=streaming.sluice.dev,resources=streamqueries,verbs=create;update,versions=v1alpha1,name=vstreamquery.streaming.sluice.dev,admissionReviewVersions=v1,timeoutSeconds=10

// Validator checks StreamQueries as they are admitted.
type Validator struct{}

var _ admission.Validator[*v1alpha1.StreamQuery] = Validator{}

// SetupWithManager registers the validator on the manager's webhook server.
func (v Validator) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewWebhookManagedBy(mgr, &v1alpha1.StreamQuery{}).WithValidator(v).WithValidatorCustomPath(Path).Complete()
}

// ValidateCreate refuses a query the engine could not run.
func (Validator) ValidateCreate(_ context.Context, sq *v1alpha1.StreamQuery) (admission.Warnings, error) {
	return validate(sq)
}

// ValidateUpdate refuses a new spec the engine could not run. An update
// that leaves the spec as it was (labels, annotations, finalizers) is
// admitted whatever the spec: a query stored while the webhook was down
// must stay deletable and labelable.
func (Validator) ValidateUpdate(_ context.Context, old, sq *v1alpha1.StreamQuery) (admission.Warnings, error) {
	if apiequality.Semantic.DeepEqual(old.Spec, sq.Spec) {
		return nil, nil
	}
	return validate(sq)
}

// ValidateDelete admits every deletion.
func (Validator) ValidateDelete(context.Context, *v1alpha1.StreamQuery) (admission.Warnings, error) {
	return nil, nil
}

// validate compiles the query as the controller does, its defaults filled,
// and turns its problems into a Kubernetes Invalid error: kubectl prints
// each as "field: Invalid value: line L, column C: message". A query whose
// columns are a registry's latest schema is only checked for its
// structure and syntax, with a warning that says so.
func validate(sq *v1alpha1.StreamQuery) (admission.Warnings, error) {
	spec := sq.Spec.DeepCopy()
	spec.Default()
	var err error
	var warnings admission.Warnings
	if latest := spec.LatestSchemaSources(); len(latest) > 0 {
		// Only the engines read the registries, with their credentials:
		// the structure and the syntax are checked, and they plan the
		// query.
		for _, i := range latest {
			src := &spec.Sources[i]
			_, _, reg := src.FormatSchema()
			warnings = append(warnings, fmt.Sprintf("spec.sources[%d]: the value's columns of source %s are the fields of the latest schema of subject %s at %s, which its engines read as they start: the query is checked then (engine validate checks it now, where the registry can be reached)", i, src.Name, src.LatestSchemaSubject(), reg.URL))
		}
		err = compile.CheckUnplanned(spec)
	} else {
		_, _, err = compile.PlanSet(spec, nil, nil)
	}
	if err == nil {
		return warnings, nil
	}
	var ps v1alpha1.Problems
	if !errors.As(err, &ps) {
		ps = v1alpha1.Problems{{Field: "spec", Offset: -1, Message: err.Error()}}
	}
	errs := make(field.ErrorList, len(ps))
	for i, p := range ps {
		errs[i] = &field.Error{Type: field.ErrorTypeInvalid, Field: p.Field, BadValue: field.OmitValueType{}, Detail: p.InQuery(spec)}
	}
	return warnings, apierrors.NewInvalid(v1alpha1.GroupVersion.WithKind("StreamQuery").GroupKind(), sq.Name, errs)
}
