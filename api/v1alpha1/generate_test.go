package v1alpha1

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/sluice-dev/sluice/internal/testtools"
)

// TestDeepCopyUpToDate regenerates the deep-copy functions and compares them
// with the committed file.
func TestDeepCopyUpToDate(t *testing.T) {
	cg := testtools.Path(t, "controller-gen")
	out := t.TempDir()
	cmd := exec.Command(cg, "object", "paths=./api/...", "output:object:dir="+out)
	cmd.Dir = "../.."
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("controller-gen: %v\n%s", err, b)
	}
	want, err := os.ReadFile(filepath.Join(out, "zz_generated.deepcopy.go"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("zz_generated.deepcopy.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("zz_generated.deepcopy.go is stale: run controller-gen object paths=./api/... (see hack/tools.sh)")
	}
}

// TestManifestsUpToDate regenerates the CRD and the RBAC role from the
// kubebuilder markers and compares them with the committed files (make
// manifests writes them).
func TestManifestsUpToDate(t *testing.T) {
	cg := testtools.Path(t, "controller-gen")
	out := t.TempDir()
	// allowDangerousTypes: a histogram's bucket bounds are numbers
	// (spec.metrics[].buckets), as in the Makefile.
	cmd := exec.Command(cg, "crd:allowDangerousTypes=true", "rbac:roleName=manager-role", "paths=./api/...", "paths=./controllers/...",
		"output:crd:artifacts:config="+filepath.Join(out, "crd"), "output:rbac:artifacts:config="+filepath.Join(out, "rbac"))
	cmd.Dir = "../.."
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("controller-gen: %v\n%s", err, b)
	}
	for generated, committed := range map[string]string{
		filepath.Join(out, "crd", "streaming.sluice.dev_streamqueries.yaml"): "../../config/crd/bases/streaming.sluice.dev_streamqueries.yaml",
		filepath.Join(out, "rbac", "role.yaml"):                              "../../config/rbac/role.yaml",
	} {
		want, err := os.ReadFile(generated)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(committed)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run make manifests", committed)
		}
	}
}
