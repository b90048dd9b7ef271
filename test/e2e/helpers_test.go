package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/config/argocd"
)

// kubectl runs the cluster's kubectl and returns its output, failing the
// test when it fails.
func kubectl(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(toolsDir, "kubectl"), args...)
	cmd.Dir = repoRoot
	cmd.Stdin = strings.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// kubectlErr runs the cluster's kubectl and returns its output and stderr
// together, and its error: for a command that is meant to fail.
func kubectlErr(stdin string, args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(toolsDir, "kubectl"), args...)
	cmd.Dir = repoRoot
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// eventually polls cond until it returns nil or timeout passes, and returns
// how long that took; the test fails with cond's last error on timeout.
func eventually(t *testing.T, what string, timeout time.Duration, cond func() error) time.Duration {
	t.Helper()
	start := time.Now()
	var err error
	for {
		if err = cond(); err == nil {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("%s: not within %s: %v", what, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// namespace creates a namespace for one scenario; it is deleted afterwards,
// queries first, so that the operator recreates nothing while it goes.
func namespace(t *testing.T, name string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := k8s.Create(ctx(t, 10*time.Second), ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// The test's own context has ended by now.
		c, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		if t.Failed() {
			dump, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			dumpNamespace(dump, t, name)
			cancel()
		}
		_ = k8s.DeleteAllOf(c, &v1alpha1.StreamQuery{}, client.InNamespace(name))
		_ = k8s.Delete(c, ns)
		for c.Err() == nil {
			if err := k8s.Get(c, types.NamespacedName{Name: name}, &corev1.Namespace{}); apierrors.IsNotFound(err) {
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Errorf("namespace %s was not deleted", name)
	})
	return name
}

// podLogs is where a failed test's pod logs are kept, a directory per
// namespace, for CI to show.
var podLogs = filepath.Join(os.TempDir(), "sluice-e2e-pods")

// dumpNamespace, for a failed test, logs its queries' status and the last
// lines of each pod's containers, the previous run's too, and keeps the
// whole logs under podLogs: the namespace and its pods' logs go with it.
func dumpNamespace(c context.Context, t *testing.T, ns string) {
	var queries v1alpha1.StreamQueryList
	if err := k8s.List(c, &queries, client.InNamespace(ns)); err == nil {
		for _, q := range queries.Items {
			status, _ := json.MarshalIndent(q.Status, "", "  ")
			t.Logf("streamquery %s/%s status:\n%s", ns, q.Name, status)
		}
	}
	var pods corev1.PodList
	if err := k8s.List(c, &pods, client.InNamespace(ns)); err != nil {
		t.Logf("pods of %s: %v", ns, err)
		return
	}
	dir := filepath.Join(podLogs, ns)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Logf("pod logs: %v", err)
		return
	}
	for _, p := range pods.Items {
		for _, cs := range p.Status.ContainerStatuses {
			for _, previous := range []bool{true, false} {
				if previous && cs.RestartCount == 0 {
					continue
				}
				name := p.Name + "-" + cs.Name
				if previous {
					name += "-previous"
				}
				b, err := clientset.CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{Container: cs.Name, Previous: previous}).Do(c).Raw()
				if err != nil {
					t.Logf("logs of %s: %v", name, err)
					continue
				}
				file := filepath.Join(dir, name+".log")
				if err := os.WriteFile(file, b, 0o644); err != nil {
					t.Logf("logs of %s: %v", name, err)
				}
				lines := strings.Split(strings.TrimSpace(string(b)), "\n")
				t.Logf("the last %d lines of %s (all of it in %s):\n%s", min(len(lines), 40), name, file, strings.Join(lines[max(0, len(lines)-40):], "\n"))
			}
		}
	}
}

// apply applies a manifest in a namespace.
func apply(t *testing.T, ns, manifest string) {
	t.Helper()
	kubectl(t, manifest, "apply", "-n", ns, "-f", "-")
}

// query reads a StreamQuery as it is now.
func query(t *testing.T, ns, name string) *v1alpha1.StreamQuery {
	t.Helper()
	var sq v1alpha1.StreamQuery
	if err := k8s.Get(ctx(t, 10*time.Second), types.NamespacedName{Namespace: ns, Name: name}, &sq); err != nil {
		t.Fatal(err)
	}
	return &sq
}

// row is what `kubectl get sq -o wide` shows of a query: its printer
// columns, read from the API server's Table of it.
type row map[string]string

func (r row) String() string {
	var b strings.Builder
	for _, k := range []string{"Phase", "Mode", "Ready", "Health", "Backpressure", "Restarts", "Input/s", "Last Error"} {
		fmt.Fprintf(&b, "%s=%q ", k, r[k])
	}
	return strings.TrimSpace(b.String())
}

func getRow(t *testing.T, ns, name string) row {
	t.Helper()
	var table metav1.Table
	err := clientset.RESTClient().Get().
		AbsPath("/apis", v1alpha1.GroupVersion.Group, v1alpha1.GroupVersion.Version, "namespaces", ns, "streamqueries", name).
		SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").
		Param("includeObject", "None").
		Do(ctx(t, 10*time.Second)).Into(&table)
	if err != nil {
		t.Fatalf("getting the table of %s/%s: %v", ns, name, err)
	}
	if len(table.Rows) != 1 {
		t.Fatalf("the table of %s/%s has %d rows", ns, name, len(table.Rows))
	}
	r := row{}
	for i, c := range table.ColumnDefinitions {
		if v := table.Rows[0].Cells[i]; v != nil {
			r[c.Name] = fmt.Sprint(v)
		}
	}
	return r
}

// waitRow waits until the query's row matches want (column → value; a
// value of "*" matches anything set, and a|b matches either).
func waitRow(t *testing.T, ns, name string, timeout time.Duration, want row) (row, time.Duration) {
	t.Helper()
	var last row
	took := eventually(t, fmt.Sprintf("kubectl get sq %s/%s showing %v", ns, name, want), timeout, func() error {
		last = getRow(t, ns, name)
		for col, w := range want {
			got, set := last[col]
			ok := w == "*" && set && got != ""
			for _, alt := range strings.Split(w, "|") {
				ok = ok || got == alt
			}
			if !ok {
				return fmt.Errorf("shows %v", last)
			}
		}
		return nil
	})
	return last, took
}

// enginePods lists a query's engine pods that are not being deleted.
func enginePods(t *testing.T, ns, name string) []corev1.Pod {
	t.Helper()
	var pods corev1.PodList
	if err := k8s.List(ctx(t, 10*time.Second), &pods, client.InNamespace(ns), client.MatchingLabels{"sluice.dev/query": name}); err != nil {
		t.Fatal(err)
	}
	var live []corev1.Pod
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			live = append(live, p)
		}
	}
	return live
}

// logs returns a pod's log.
func logs(t *testing.T, ns, pod string) string {
	t.Helper()
	b, err := clientset.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{}).Do(ctx(t, 10*time.Second)).Raw()
	if err != nil {
		t.Fatalf("logs of %s/%s: %v", ns, pod, err)
	}
	return string(b)
}

// judge runs the Argo CD health check on the query as it is now, checks the
// verdict, and with SLUICE_E2E_FIXTURES=1 records the object under
// config/argocd/testdata for the check's unit tests.
func judge(t *testing.T, ns, name, fixture, wantHealth, wantMessage string) {
	t.Helper()
	sq := query(t, ns, name)
	sq.ManagedFields = nil
	object, err := json.Marshal(sq)
	if err != nil {
		t.Fatal(err)
	}
	health, msg, err := argocd.Health(object)
	if err != nil {
		t.Fatal(err)
	}
	if health != wantHealth || !strings.Contains(msg, wantMessage) {
		t.Errorf("Argo CD health of %s/%s is %s %q; want %s with %q\n%s", ns, name, health, msg, wantHealth, wantMessage, object)
	}
	if os.Getenv("SLUICE_E2E_FIXTURES") != "1" {
		return
	}
	b, err := json.MarshalIndent(map[string]any{
		"scenario":    t.Name(),
		"wantHealth":  wantHealth,
		"wantMessage": wantMessage,
		"object":      json.RawMessage(object),
	}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repoRoot, "config", "argocd", "testdata", fixture+".json"), append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}
