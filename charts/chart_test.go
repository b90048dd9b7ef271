// Package charts_test lints and renders the operator's Helm chart with Helm's
// own library (helm.sh/helm/v4), as `helm lint --strict` and `helm template`
// would, and checks what it renders against the kustomize manifests it
// mirrors. test/e2e installs it on a cluster.
package charts_test

import (
	"bytes"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	release "helm.sh/helm/v4/pkg/release/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

const chartDir = "sluice"

// kubeVersion is the Kubernetes the chart is rendered for: the one this
// repository builds and tests on (hack/kubernetes.sh).
var kubeVersion = func() *common.KubeVersion {
	kv, err := common.ParseKubeVersion("v1.37.2")
	if err != nil {
		panic(err)
	}
	return kv
}()

func TestLint(t *testing.T) {
	l := action.NewLint()
	l.Strict = true
	l.Namespace = "sluice-system"
	l.KubeVersion = kubeVersion
	for _, values := range []map[string]any{
		nil,
		{"watchNamespaces": []any{"a", "b"}, "leaderElection": map[string]any{"enabled": false}, "metrics": map[string]any{"enabled": false}},
	} {
		res := l.Run([]string{chartDir}, values)
		for _, m := range res.Messages {
			t.Log(m.Error())
		}
		if len(res.Errors) > 0 {
			t.Errorf("helm lint --strict with values %v: %v", values, errors.Join(res.Errors...))
		}
	}
}

// render is `helm template` of the chart with values, split into objects
// by kind and name.
func render(t *testing.T, values map[string]any) map[string][]byte {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	in := action.NewInstall(action.NewConfiguration())
	in.DryRunStrategy = action.DryRunClient
	in.ReleaseName, in.Namespace = "sluice", "sluice-system"
	in.Replace = true
	in.IncludeCRDs = true
	in.KubeVersion = kubeVersion
	r, err := in.RunWithContext(t.Context(), ch, values)
	if err != nil {
		t.Fatalf("rendering the chart: %v", err)
	}
	objects := map[string][]byte{}
	for doc := range strings.SplitSeq(r.(*release.Release).Manifest, "\n---\n") {
		var meta struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatalf("rendered YAML: %v\n%s", err, doc)
		}
		if meta.Kind != "" {
			objects[meta.Kind+"/"+meta.Metadata.Name] = []byte(doc)
		}
	}
	return objects
}

func decode[T any](t *testing.T, objects map[string][]byte, key string) *T {
	t.Helper()
	b, ok := objects[key]
	if !ok {
		keys := make([]string, 0, len(objects))
		for k := range objects {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		t.Fatalf("the chart renders no %s; it renders %v", key, keys)
	}
	var v T
	if err := yaml.UnmarshalStrict(b, &v); err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return &v
}

// TestRenderDefaults: the defaults install the CRD, the operator with leader
// election and the engine image of the chart's version, and exactly the RBAC
// rules controller-gen generates from the reconciler's markers.
func TestRenderDefaults(t *testing.T) {
	objects := render(t, nil)
	d := decode[appsv1.Deployment](t, objects, "Deployment/sluice")
	c := d.Spec.Template.Spec.Containers[0]
	if c.Image != "ghcr.io/sluice-dev/sluice-manager:dev" || c.ImagePullPolicy != "IfNotPresent" {
		t.Errorf("manager image %s, pull policy %s; want ghcr.io/sluice-dev/sluice-manager:dev, IfNotPresent", c.Image, c.ImagePullPolicy)
	}
	for _, arg := range []string{"--leader-elect", "--engine-image=ghcr.io/sluice-dev/sluice-engine:dev", "--metrics-bind-address=:8080", "--poll-interval=15s"} {
		if !slices.Contains(c.Args, arg) {
			t.Errorf("manager args %v; want %s", c.Args, arg)
		}
	}
	if d.Spec.Template.Spec.ServiceAccountName != "sluice" {
		t.Errorf("service account %q; want sluice", d.Spec.Template.Spec.ServiceAccountName)
	}

	role := decode[rbacv1.ClusterRole](t, objects, "ClusterRole/sluice")
	var generated struct {
		Rules []rbacv1.PolicyRule `json:"rules"`
	}
	b, err := os.ReadFile("../config/rbac/role.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &generated); err != nil {
		t.Fatal(err)
	}
	got, _ := yaml.Marshal(role.Rules)
	want, _ := yaml.Marshal(generated.Rules)
	if !bytes.Equal(got, want) {
		t.Errorf("the chart's ClusterRole rules differ from config/rbac/role.yaml (make manifests copies them):\n%s\nwant\n%s", got, want)
	}
	decode[rbacv1.Role](t, objects, "Role/sluice-leader-election")

	crd, err := os.ReadFile("sluice/crds/streaming.sluice.dev_streamqueries.yaml")
	if err != nil {
		t.Fatal(err)
	}
	generatedCRD, err := os.ReadFile("../config/crd/bases/streaming.sluice.dev_streamqueries.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(crd, generatedCRD) {
		t.Error("the chart's CRD differs from config/crd/bases (make manifests copies it)")
	}
	if _, ok := objects["CustomResourceDefinition/streamqueries.streaming.sluice.dev"]; !ok {
		t.Error("the chart does not install the CRD")
	}
}

// TestRenderValues: every value reaches the object it configures.
func TestRenderValues(t *testing.T) {
	objects := render(t, map[string]any{
		"image":             map[string]any{"repository": "registry.example/sluice-manager", "tag": "v1.2.3", "pullPolicy": "Always"},
		"engineImage":       map[string]any{"repository": "registry.example/sluice-engine", "tag": "v1.2.3"},
		"watchNamespaces":   []any{"team-a", "team-b"},
		"leaderElection":    map[string]any{"enabled": false},
		"metrics":           map[string]any{"enabled": false},
		"replicaCount":      2,
		"pollInterval":      "5s",
		"nodeSelector":      map[string]any{"pool": "streaming"},
		"tolerations":       []any{map[string]any{"key": "dedicated", "operator": "Exists"}},
		"resources":         map[string]any{"limits": map[string]any{"memory": "1Gi"}},
		"serviceAccount":    map[string]any{"create": false, "name": "existing"},
		"imagePullSecrets":  []any{map[string]any{"name": "regcred"}},
		"podAnnotations":    map[string]any{"team": "data"},
		"priorityClassName": "high",
	})
	d := decode[appsv1.Deployment](t, objects, "Deployment/sluice")
	spec := d.Spec.Template.Spec
	c := spec.Containers[0]
	checks := []struct {
		what string
		ok   bool
	}{
		{"image", c.Image == "registry.example/sluice-manager:v1.2.3" && c.ImagePullPolicy == "Always"},
		{"engine image", slices.Contains(c.Args, "--engine-image=registry.example/sluice-engine:v1.2.3")},
		{"namespaces", slices.Contains(c.Args, "--namespaces=team-a,team-b")},
		{"no leader election", !slices.Contains(c.Args, "--leader-elect")},
		{"no metrics", slices.Contains(c.Args, "--metrics-bind-address=0")},
		{"poll interval", slices.Contains(c.Args, "--poll-interval=5s")},
		{"replicas", *d.Spec.Replicas == 2},
		{"node selector", spec.NodeSelector["pool"] == "streaming"},
		{"tolerations", len(spec.Tolerations) == 1 && spec.Tolerations[0].Key == "dedicated"},
		{"resources", c.Resources.Limits.Memory().String() == "1Gi"},
		{"service account", spec.ServiceAccountName == "existing"},
		{"pull secrets", len(spec.ImagePullSecrets) == 1 && spec.ImagePullSecrets[0].Name == "regcred"},
		{"pod annotations", d.Spec.Template.Annotations["team"] == "data"},
		{"priority class", spec.PriorityClassName == "high"},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: not rendered as set", c.what)
		}
	}
	for _, absent := range []string{"ServiceAccount/sluice", "Role/sluice-leader-election", "Service/sluice-metrics"} {
		if _, ok := objects[absent]; ok {
			t.Errorf("%s rendered; the values turn it off", absent)
		}
	}
}

// TestRenderWebhook: the chart's webhook configuration is controller-gen's
// (config/webhook/manifests.yaml) but for the Service it calls, which is
// the chart's, and the failure policy, which is a value; the manager is
// told their names; webhook.enabled false renders none and serves none.
func TestRenderWebhook(t *testing.T) {
	objects := render(t, nil)
	got := decode[admissionregistrationv1.ValidatingWebhookConfiguration](t, objects, "ValidatingWebhookConfiguration/sluice-validating")
	b, err := os.ReadFile("../config/webhook/manifests.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var want admissionregistrationv1.ValidatingWebhookConfiguration
	if err := yaml.Unmarshal(bytes.TrimPrefix(b, []byte("---\n")), &want); err != nil {
		t.Fatal(err)
	}
	if len(got.Webhooks) != 1 || len(want.Webhooks) != 1 {
		t.Fatalf("%d webhooks in the chart, %d generated; want 1 each", len(got.Webhooks), len(want.Webhooks))
	}
	svc := got.Webhooks[0].ClientConfig.Service
	if svc == nil || svc.Name != "sluice-webhook" || svc.Namespace != "sluice-system" {
		t.Errorf("the webhook calls %+v; want the chart's Service sluice-webhook in sluice-system", svc)
	}
	want.Webhooks[0].ClientConfig.Service.Name, want.Webhooks[0].ClientConfig.Service.Namespace = svc.Name, svc.Namespace
	g, _ := yaml.Marshal(got.Webhooks)
	w, _ := yaml.Marshal(want.Webhooks)
	if !bytes.Equal(g, w) {
		t.Errorf("the chart's webhook differs from config/webhook/manifests.yaml (make manifests generates it):\n%s\nwant\n%s", g, w)
	}
	decode[corev1.Service](t, objects, "Service/sluice-webhook")
	role := decode[rbacv1.Role](t, objects, "Role/sluice-webhook-cert")
	if len(role.Rules) != 2 || !slices.Equal(role.Rules[0].ResourceNames, []string{"sluice-webhook-cert"}) || !slices.Equal(role.Rules[1].Verbs, []string{"create"}) {
		t.Errorf("webhook certificate Role %+v; want get and update of the Secret sluice-webhook-cert alone, and create", role.Rules)
	}
	config := decode[rbacv1.ClusterRole](t, objects, "ClusterRole/sluice-webhook-config")
	if len(config.Rules) != 1 || !slices.Equal(config.Rules[0].ResourceNames, []string{"sluice-validating"}) {
		t.Errorf("webhook configuration ClusterRole %+v; want the configuration sluice-validating alone", config.Rules)
	}
	c := decode[appsv1.Deployment](t, objects, "Deployment/sluice").Spec.Template.Spec.Containers[0]
	for _, arg := range []string{"--webhook-port=9443", "--webhook-config=sluice-validating", "--webhook-service=sluice-webhook", "--webhook-secret=sluice-webhook-cert"} {
		if !slices.Contains(c.Args, arg) {
			t.Errorf("manager args %v; want %s", c.Args, arg)
		}
	}

	objects = render(t, map[string]any{"webhook": map[string]any{"enabled": false}})
	if _, ok := objects["ValidatingWebhookConfiguration/sluice-validating"]; ok {
		t.Error("webhook.enabled false renders a webhook configuration")
	}
	c = decode[appsv1.Deployment](t, objects, "Deployment/sluice").Spec.Template.Spec.Containers[0]
	if !slices.Contains(c.Args, "--webhook-port=0") {
		t.Errorf("webhook.enabled false: manager args %v; want --webhook-port=0", c.Args)
	}
	objects = render(t, map[string]any{"webhook": map[string]any{"failurePolicy": "Fail"}})
	got = decode[admissionregistrationv1.ValidatingWebhookConfiguration](t, objects, "ValidatingWebhookConfiguration/sluice-validating")
	if p := got.Webhooks[0].FailurePolicy; p == nil || *p != admissionregistrationv1.Fail {
		t.Errorf("failure policy %v; want Fail as set", p)
	}
}
