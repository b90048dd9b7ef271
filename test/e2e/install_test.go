package e2e

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/cli"
	"helm.sh/helm/v4/pkg/kube"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The operator as the suite installs it with Helm: polling every 2s, so
// that the scenarios' waits are short.
const (
	operatorNamespace = "sluice"
	operatorRelease   = "sluice"
	pollInterval      = 2 * time.Second
	leaseName         = "sluice-operator.streaming.sluice.dev"
)

// helmInstall installs charts/sluice as `helm install --wait` would.
func helmInstall(t *testing.T) {
	t.Helper()
	settings := cli.New()
	settings.KubeConfig = kubeconfig
	settings.SetNamespace(operatorNamespace)
	cfg := action.NewConfiguration(action.ConfigurationSetLogger(slog.NewTextHandler(io.Discard, nil)))
	if err := cfg.Init(settings.RESTClientGetter(), operatorNamespace, "secret"); err != nil {
		t.Fatal(err)
	}
	ch, err := loader.Load(repoRoot + "/charts/sluice")
	if err != nil {
		t.Fatal(err)
	}
	in := action.NewInstall(cfg)
	in.ReleaseName, in.Namespace, in.CreateNamespace = operatorRelease, operatorNamespace, true
	in.WaitStrategy = kube.StatusWatcherStrategy
	in.Timeout = 3 * time.Minute
	if _, err := in.RunWithContext(ctx(t, 4*time.Minute), ch, map[string]any{"pollInterval": pollInterval.String()}); err != nil {
		t.Fatalf("helm install: %v", err)
	}
}

// operatorReady waits until the operator's Deployment in ns is available
// and one of its pods holds the leader lease, and returns that pod's name.
func operatorReady(t *testing.T, ns, deployment string, timeout time.Duration) string {
	t.Helper()
	var holder string
	eventually(t, "the operator ready and leading", timeout, func() error {
		var d appsv1.Deployment
		if err := k8s.Get(ctx(t, 5*time.Second), types.NamespacedName{Namespace: ns, Name: deployment}, &d); err != nil {
			return err
		}
		if d.Status.ReadyReplicas < 1 || d.Status.UpdatedReplicas < *d.Spec.Replicas {
			return fmt.Errorf("deployment %s: %d ready", deployment, d.Status.ReadyReplicas)
		}
		var lease coordinationv1.Lease
		if err := k8s.Get(ctx(t, 5*time.Second), types.NamespacedName{Namespace: ns, Name: leaseName}, &lease); err != nil {
			return err
		}
		if lease.Spec.HolderIdentity == nil {
			return fmt.Errorf("the lease has no holder")
		}
		var pods corev1.PodList
		if err := k8s.List(ctx(t, 5*time.Second), &pods, client.InNamespace(ns)); err != nil {
			return err
		}
		for _, p := range pods.Items {
			if strings.HasPrefix(*lease.Spec.HolderIdentity, p.Name+"_") && p.DeletionTimestamp == nil && podReady(&p) {
				holder = p.Name
				return nil
			}
		}
		return fmt.Errorf("the lease is held by %s, no ready pod of ours", *lease.Spec.HolderIdentity)
	})
	return holder
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// namespaceGone waits until a namespace has been deleted.
func namespaceGone(t *testing.T, ns string, timeout time.Duration) {
	t.Helper()
	eventually(t, "namespace "+ns+" deleted", timeout, func() error {
		err := k8s.Get(ctx(t, 5*time.Second), types.NamespacedName{Name: ns}, &corev1.Namespace{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("still there (%v)", err)
	})
}
