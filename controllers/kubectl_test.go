package controllers

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestKubectlGet runs the real kubectl against the test API server and checks
// the printer columns, plain and -o wide, with the values the statuses hold.
func TestKubectlGet(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	suspended := newQuery(ns, "a-suspended", "SELECT symbol FROM trades")
	suspended.Spec.Suspend = true
	invalid := newQuery(ns, "b-invalid", "SELECT nope FROM trades")
	crashing := newQuery(ns, "c-crashing", "SELECT symbol FROM trades")
	for _, sq := range []*v1alpha1.StreamQuery{suspended, invalid, crashing} {
		if err := k8s.Create(ctx, sq); err != nil {
			t.Fatal(err)
		}
	}
	enginePod(t, crashing, "c-crashing-engine-0", false, 3, ReasonCrashLoop)
	eventually(t, 15*time.Second, func() error {
		for sq, phase := range map[*v1alpha1.StreamQuery]v1alpha1.Phase{
			suspended: v1alpha1.PhaseSuspended, invalid: v1alpha1.PhaseFailed, crashing: v1alpha1.PhaseDegraded,
		} {
			if got := getQuery(t, sq); got.Status.Phase != phase || (sq == crashing && got.Status.Restarts != 3) {
				return fmt.Errorf("%s: phase %s, restarts %d; want %s", sq.Name, got.Status.Phase, got.Status.Restarts, phase)
			}
		}
		return nil
	})

	kubectl := testEnv.ControlPlane.KubeCtl()
	var out strings.Builder
	for _, args := range [][]string{
		{"get", "streamqueries", "-n", ns},
		{"get", "sq", "-n", ns, "-o", "wide"},
	} {
		stdout, stderr, err := kubectl.Run(args...)
		if err != nil {
			errOut, _ := io.ReadAll(stderr)
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, errOut)
		}
		b, _ := io.ReadAll(stdout)
		out.WriteString("$ kubectl " + strings.ReplaceAll(strings.Join(args, " "), ns, "NAMESPACE") + "\n")
		out.WriteString(normalizeAge(string(b)))
	}
	golden := "testdata/kubectl-get.golden"
	if *update {
		if err := os.WriteFile(golden, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (go test -update creates it)", err)
	}
	if out.String() != string(want) {
		t.Errorf("kubectl output differs from %s (go test -update accepts it):\n--- got\n%s--- want\n%s", golden, out.String(), want)
	}
}

// normalizeAge replaces the AGE column's values, which depend on timing.
func normalizeAge(s string) string {
	return regexp.MustCompile(`(?m)(\s)\d+(?:\.\d+)?[smh](\s|$)`).ReplaceAllString(s, "${1}AGE$2")
}

// TestDeployManifests renders config/default with kubectl's kustomize, as
// make deploy does, and has the API server check the sample query.
func TestDeployManifests(t *testing.T) {
	kubectl := testEnv.ControlPlane.KubeCtl()
	stdout, stderr, err := kubectl.Run("kustomize", "../config/default")
	if err != nil {
		errOut, _ := io.ReadAll(stderr)
		t.Fatalf("kubectl kustomize ../config/default: %v\n%s", err, errOut)
	}
	rendered, _ := io.ReadAll(stdout)
	for _, want := range []string{
		"kind: CustomResourceDefinition", "name: streamqueries.streaming.sluice.dev",
		"kind: Deployment", "name: sluice-manager", "namespace: sluice-system",
		"kind: ClusterRole", "name: sluice-manager-role", "kind: ServiceAccount",
		// The webhook's objects, under the names the manager's flags give.
		"kind: ValidatingWebhookConfiguration", "name: sluice-validating-webhook-configuration", "--webhook-config=sluice-validating-webhook-configuration",
		"name: sluice-webhook-service", "--webhook-service=sluice-webhook-service", "--webhook-secret=sluice-webhook-cert",
		"name: sluice-webhook-cert-role", "- name: POD_NAMESPACE",
		// resourceNames, which namePrefix does not rewrite, written with it.
		"- sluice-webhook-cert\n", "- sluice-validating-webhook-configuration\n", "name: sluice-webhook-config-role",
	} {
		if !strings.Contains(string(rendered), want) {
			t.Errorf("kustomize output lacks %q", want)
		}
	}
	ns := newNamespace(t)
	// The whole directory, as the docs say to apply it: nothing in it that
	// is not an object.
	_, stderr, err = kubectl.Run("apply", "--dry-run=server", "-n", ns, "-f", "../config/samples/")
	if err != nil {
		errOut, _ := io.ReadAll(stderr)
		t.Errorf("kubectl apply -f config/samples/ fails: %v\n%s", err, errOut)
	}
}
