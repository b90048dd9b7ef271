package compile

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies holds the layering of docs/architecture.md against the
// import graph: the operator side never links the runtime or a Kafka client,
// and the pipeline opens connectors only through the registry, never
// naming one.
func TestDependencies(t *testing.T) {
	const mod = "github.com/sluice-dev/sluice/"
	operatorSide := []string{"github.com/twmb/franz-go", mod + "runtime/connector", mod + "runtime/pipeline"}
	rules := []struct {
		pkg       string
		forbidden []string
	}{
		{mod + "runtime/compile", operatorSide},
		{mod + "controllers", operatorSide},
		{mod + "internal/webhook", operatorSide},
		{mod + "internal/servingcert", append(operatorSide, mod+"runtime")},
		{mod + "cmd/manager", operatorSide},
		{mod + "runtime/pipeline", []string{"github.com/twmb/franz-go", mod + "runtime/connector/kafka", mod + "runtime/connector/bundle"}},
		{mod + "api/v1alpha1", []string{mod + "runtime", mod + "controllers"}},
		{mod + "api/enginestatus", []string{mod + "runtime", mod + "controllers"}},
	}
	for _, r := range rules {
		out, err := exec.Command("go", "list", "-deps", r.pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", r.pkg, err, out)
		}
		for dep := range strings.SplitSeq(string(out), "\n") {
			for _, f := range r.forbidden {
				if (dep == f || strings.HasPrefix(dep, f+"/")) && dep != mod+"runtime/connector/schemas" {
					t.Errorf("%s depends on %s", r.pkg, dep)
				}
			}
		}
	}
}
