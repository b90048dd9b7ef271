package controllers

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/testtools"
)

// The suite runs a real kube-apiserver and etcd (envtest, built by
// hack/kubernetes.sh), the reconciler in a real manager, and asserts through a
// direct client to the API server, not the manager's cache.
var (
	cfg       *rest.Config
	k8s       client.Client
	scheme    = runtime.NewScheme()
	testEnv   *envtest.Environment
	assetsDir string
	// engineAddrs maps a pod's name to the address of the engine process
	// that stands in for it: there is no kubelet here to run pods.
	engineAddrs sync.Map
	// engineBin is a real engine binary, for the test that polls one.
	engineBin string
)

const testImage = "example.test/sluice-engine:test"

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	dir, err := testtools.KubebuilderAssets()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if dir == "" {
		fmt.Fprintln(os.Stderr, "skipping the envtest suite: kube-apiserver and etcd are not built (hack/kubernetes.sh)")
		return 0
	}
	assetsDir = dir
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, v1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	testEnv = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "config", "crd", "bases"), filepath.Join("testdata", "crds")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: dir,
	}
	// Engine Services are headless and take no service IP; the /16 is
	// kept so that a regression to cluster IPs shows as a test failure
	// (TestCreate) rather than as BenchmarkManyQueries stalling at the
	// default /24's 253 queries.
	testEnv.ControlPlane.GetAPIServer().Configure().Set("service-cluster-ip-range", "10.0.0.0/16")
	// etcd and kube-apiserver are processes of their own: they are stopped
	// however the suite ends, a Start that failed after starting them (a
	// CRD the API server refuses) and an interrupt included.
	stop := sync.OnceFunc(func() {
		if err := testEnv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping envtest:", err)
		}
	})
	defer stop()
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(signals)
	go func() {
		<-signals
		stop()
		os.Exit(1)
	}()
	cfg, err = testEnv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting envtest:", err)
		return 1
	}
	if k8s, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}

	tmp, err := os.MkdirTemp("", "controllers-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	engineBin = filepath.Join(tmp, "engine")
	if out, err := exec.Command("go", "build", "-o", engineBin, "../cmd/engine").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the engine: %v\n%s", err, out)
		return 1
	}

	if err := startManager(500 * time.Millisecond); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	stopManager()
	return code
}

// startManager runs the reconciler r in a new manager, as the operator
// does, polling engines every pollInterval; stopManager stops it and
// waits until it has.
func startManager(pollInterval time.Duration) error {
	// A restarted manager registers the controller's name again.
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: scheme, Cache: CacheOptions(nil), Metrics: metricsserver.Options{BindAddress: "0"},
		Controller: config.Controller{SkipNameValidation: ptr(true)}})
	if err != nil {
		return err
	}
	r = &StreamQueryReconciler{
		Client:       countingClient{mgr.GetClient()},
		Scheme:       mgr.GetScheme(),
		Recorder:     mgr.GetEventRecorder("sluice-operator"),
		EngineImage:  testImage,
		PollInterval: pollInterval,
		// As the manager runs: one slow poll must not hold up the others.
		MaxConcurrentReconciles: 4,
		EngineAddress: func(pod *corev1.Pod) string {
			if a, ok := engineAddrs.Load(pod.Name); ok {
				return a.(string)
			}
			return PodIPAddress(pod)
		},
	}
	if err := r.SetupWithManager(mgr); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "manager:", err)
		}
	}()
	stopManager = func() { cancel(); <-done }
	return nil
}

// stopManager stops the manager startManager started.
var stopManager = func() {}

// eventually polls cond until it returns nil, failing the test with its last
// error after timeout.
func eventually(t *testing.T, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// newNamespace creates a namespace for one test.
func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{}
	ns.GenerateName = "sq-test-"
	if err := k8s.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// r is the suite's reconciler, run by its manager.
var r *StreamQueryReconciler

// writes counts the updates and patches the reconciler makes, by
// "Kind namespace/name".
var writes sync.Map

// countingClient is the reconciler's client, counting its writes.
type countingClient struct{ client.Client }

func (c countingClient) count(obj client.Object) {
	gvk, _ := apiutil.GVKForObject(obj, c.Scheme())
	n, _ := writes.LoadOrStore(gvk.Kind+" "+obj.GetNamespace()+"/"+obj.GetName(), new(atomic.Int64))
	n.(*atomic.Int64).Add(1)
}

func (c countingClient) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	c.count(obj)
	return c.Client.Update(ctx, obj, opts...)
}

func (c countingClient) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	c.count(obj)
	return c.Client.Patch(ctx, obj, patch, opts...)
}

// writesTo returns how many times the reconciler wrote an object.
func writesTo(kind, namespace, name string) int64 {
	if n, ok := writes.Load(kind + " " + namespace + "/" + name); ok {
		return n.(*atomic.Int64).Load()
	}
	return 0
}
