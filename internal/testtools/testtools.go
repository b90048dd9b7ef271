// Package testtools finds the tools that hack/tools.sh builds, for tests that
// run them. Outside hack/test.sh a missing tool skips the test; inside it
// (SLUICE_REQUIRE_TOOLS set), the test fails.
package testtools

import (
	"errors"
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

// KubebuilderAssets returns the directory of kube-apiserver, etcd and kubectl
// that hack/kubernetes.sh builds, and sets KUBEBUILDER_ASSETS to it for envtest.
// It returns "" when they are not built and not required.
func KubebuilderAssets() (string, error) {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir, nil
	}
	cache := os.Getenv("SLUICE_TOOLS")
	if cache == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return "", err
		}
		cache = filepath.Join(base, "sluice-tools")
	}
	matches, _ := filepath.Glob(filepath.Join(cache, "kubernetes-*", "kube-apiserver"))
	for _, m := range matches {
		dir := filepath.Dir(m)
		if _, err := os.Stat(filepath.Join(dir, "etcd")); err == nil {
			return dir, os.Setenv("KUBEBUILDER_ASSETS", dir)
		}
	}
	if os.Getenv("SLUICE_REQUIRE_TOOLS") != "" {
		return "", errors.New("kube-apiserver and etcd are missing: hack/kubernetes.sh builds them")
	}
	return "", nil
}
