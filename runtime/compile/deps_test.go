package compile

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps the compiler, and the operator that uses it, free
// of the engine's runtime and its Kafka client: the operator checks queries
// without linking what runs them.
func TestDependencies(t *testing.T) {
	forbidden := []string{
		"github.com/twmb/franz-go",
		"github.com/sluice-dev/sluice/runtime/connector/kafka",
		"github.com/sluice-dev/sluice/runtime/pipeline",
	}
	for _, pkg := range []string{"github.com/sluice-dev/sluice/runtime/compile", "github.com/sluice-dev/sluice/controllers", "github.com/sluice-dev/sluice/cmd/manager"} {
		out, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		for dep := range strings.SplitSeq(string(out), "\n") {
			for _, f := range forbidden {
				if dep == f || strings.HasPrefix(dep, f+"/") {
					t.Errorf("%s depends on %s", pkg, dep)
				}
			}
		}
	}
}
