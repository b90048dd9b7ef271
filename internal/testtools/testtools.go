// Package testtools finds the tools that hack/tools.sh builds, for tests that
// run them. Outside hack/test.sh a missing tool skips the test; inside it
// (SLUICE_REQUIRE_TOOLS set), the test fails.
package testtools

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Path returns the path of the named tool.
func Path(t testing.TB, name string) string {
	t.Helper()
	if dir := os.Getenv("SLUICE_TOOLS_BIN"); dir != "" {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if os.Getenv("SLUICE_REQUIRE_TOOLS") != "" {
		t.Fatalf("%s is missing: hack/tools.sh builds it", name)
	}
	t.Skipf("%s is not built; hack/test.sh builds it with hack/tools.sh", name)
	return ""
}
