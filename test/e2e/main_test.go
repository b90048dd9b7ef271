// Package e2e is the end-to-end suite: it starts a real single-node
// Kubernetes cluster on this machine (hack/cluster.sh), installs the
// operator from the locally built images with Helm and with kustomize, runs
// StreamQueries on it against a Kafka wire-protocol broker on the node
// address, and asserts through the API what `kubectl get sq` shows.
//
// It needs root, and runs when SLUICE_E2E=1 (hack/test.sh sets it); with
// SLUICE_REQUIRE_TOOLS=1 as in CI it fails rather than skips when the
// cluster cannot start. The cluster is torn down at the end, on a failure
// and on an interrupt, leaving the host as it found it; SLUICE_E2E_KEEP=1
// keeps it for a look afterwards (hack/cluster.sh down removes it).
package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// repoRoot is where the scripts and manifests are.
const repoRoot = "../.."

// The cluster the suite runs on.
var (
	cfg        *rest.Config
	kubeconfig string
	k8s        client.Client
	clientset  *kubernetes.Clientset
	nodeIP     string
	toolsDir   string // kubectl and the other Kubernetes binaries
	skipWhy    string // why the suite does not run, when it does not
)

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	if os.Getenv("SLUICE_E2E") != "1" {
		skipWhy = "the end-to-end suite runs a cluster as root: set SLUICE_E2E=1 (hack/test.sh does)"
		return m.Run()
	}
	started := time.Now()
	up := exec.Command("hack/cluster.sh", "up")
	up.Dir = repoRoot
	up.Stderr = os.Stderr
	out, err := up.Output()
	// From here on, whatever happens, the cluster goes down, unless kept.
	defer teardown()
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		sig := <-signals
		fmt.Fprintf(os.Stderr, "e2e: %v: tearing the cluster down\n", sig)
		teardown()
		os.Exit(130)
	}()
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: hack/cluster.sh up: %v\n", err)
		return 1
	}
	// go test -timeout panics without running deferred calls: tear down
	// a minute before it does.
	if f := flag.Lookup("test.timeout"); f != nil {
		if d, _ := time.ParseDuration(f.Value.String()); d > 2*time.Minute {
			go func() {
				time.Sleep(d - time.Since(started) - time.Minute)
				fmt.Fprintln(os.Stderr, "e2e: the test timeout is near: tearing the cluster down")
				teardown()
				os.Exit(1)
			}()
		}
	}
	env := parseEnv(string(out))
	for k, v := range env {
		os.Setenv(k, v)
	}
	nodeIP = env["SLUICE_NODE_IP"]
	toolsDir = strings.Split(env["PATH"], ":")[0]
	fmt.Fprintf(os.Stderr, "e2e: cluster up in %s\n", time.Since(started).Round(time.Second))
	kubeconfig = env["KUBECONFIG"]
	if err := connect(kubeconfig); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	return m.Run()
}

// parseEnv reads the export lines of hack/cluster.sh env.
func parseEnv(out string) map[string]string {
	env := map[string]string{}
	for line := range strings.SplitSeq(out, "\n") {
		k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		if ok && strings.HasPrefix(line, "export ") {
			env[k] = strings.ReplaceAll(v, "$PATH", os.Getenv("PATH"))
		}
	}
	return env
}

func connect(path string) error {
	var err error
	cfg, err = clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	scheme := clientgoscheme.Scheme
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return err
	}
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		return err
	}
	if k8s, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		return err
	}
	clientset, err = kubernetes.NewForConfig(cfg)
	return err
}

var tearDownOnce sync.Once

// teardown stops the cluster, once: a second caller waits for the first.
// The cluster's logs are kept under the temporary directory for a failed
// run to show.
func teardown() { tearDownOnce.Do(tearDown) }

func tearDown() {
	if os.Getenv("SLUICE_E2E_KEEP") == "1" {
		fmt.Fprintln(os.Stderr, "e2e: SLUICE_E2E_KEEP=1: the cluster keeps running; hack/cluster.sh down removes it")
		return
	}
	stopBroker()
	down := exec.Command("hack/cluster.sh", "down")
	down.Dir = repoRoot
	down.Stdout, down.Stderr = os.Stderr, os.Stderr
	logs := filepath.Join(os.TempDir(), "sluice-e2e-logs")
	down.Env = append(os.Environ(), "SLUICE_CLUSTER_LOGS="+logs)
	if err := down.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: hack/cluster.sh down: %v\n", err)
	}
	fmt.Fprintf(os.Stderr, "e2e: the cluster's logs are in %s\n", logs)
}

// requireCluster skips or fails a test when the suite does not run.
func requireCluster(t *testing.T) {
	t.Helper()
	if skipWhy == "" {
		return
	}
	if os.Getenv("SLUICE_REQUIRE_TOOLS") != "" {
		t.Fatal(skipWhy)
	}
	t.Skip(skipWhy)
}

// ctx is a context for one API call or wait.
func ctx(t *testing.T, d time.Duration) context.Context {
	c, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return c
}
