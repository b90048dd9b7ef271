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
