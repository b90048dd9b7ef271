package controllers

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/api/enginestatus"
	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// BenchmarkManyQueries reconciles 500 queries of one engine each, on the
// envtest API server, their engines simulated by one /status server (the
// manager cannot tell). It reports how long until every query's status says
// Running with its engine's figures, the status writes per second over the
// next poll intervals, and the heap of this process, which holds the
// manager and its cache; then it restarts the manager with the engines
// reporting new figures, and reports how long until every status shows
// them. Run it with
//
//	go test -run XXX -bench ManyQueries -benchtime 1x ./controllers
func BenchmarkManyQueries(b *testing.B) {
	// Engine Services are headless: 500 queries take no service IP (a
	// ClusterIP each ran envtest's /24 out at 253).
	const queries = 500
	ctx := context.Background()
	var input atomic.Int64
	input.Store(1000)
	addr := fakeEngineOf(b, func() enginestatus.Document {
		return enginestatus.Document{Health: enginestatus.Healthy, Rates: enginestatus.Rates{Input: float64(input.Load()), Output: 900}}
	})
	// The manager's default poll interval, not the suite's 500 ms: with 500
	// queries the re-polls would take every reconcile. The reconciler
	// reads it at each reconcile; nothing else runs meanwhile.
	saved := r.PollInterval
	r.PollInterval = 15 * time.Second
	defer func() {
		stopManager()
		if err := startManager(saved); err != nil {
			b.Error(err)
		}
	}()
	for range b.N {
		ns := newNamespaceB(b)
		start := time.Now()
		var wg sync.WaitGroup
		sem := make(chan struct{}, 16)
		for i := range queries {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				sq := newKafkaQuery(ns, fmt.Sprintf("q%03d", i), "SELECT symbol FROM trades", 1)
				if err := k8s.Create(ctx, sq); err != nil {
					b.Error(err)
					return
				}
				pod := &corev1.Pod{
					ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: sq.Name + "-engine-0", Labels: objectLabels(sq)},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: engineContainerName, Image: testImage}}},
				}
				if err := k8s.Create(ctx, pod); err != nil {
					b.Error(err)
					return
				}
				pod.Status = corev1.PodStatus{
					Phase: corev1.PodRunning, PodIP: "127.0.0.1",
					Conditions:        []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
					ContainerStatuses: []corev1.ContainerStatus{{Name: engineContainerName, Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}},
				}
				engineAddrs.Store(pod.Name, addr)
				if err := k8s.Status().Update(ctx, pod); err != nil {
					b.Error(err)
				}
			}()
		}
		wg.Wait()
		created := time.Since(start)
		deadline := time.Now().Add(5 * time.Minute)
		for {
			var list v1alpha1.StreamQueryList
			if err := k8s.List(ctx, &list, client.InNamespace(ns)); err != nil {
				b.Fatal(err)
			}
			running := 0
			for _, sq := range list.Items {
				c := meta.FindStatusCondition(sq.Status.Conditions, ConditionReady)
				if sq.Status.Phase == v1alpha1.PhaseRunning && c != nil && c.Status == metav1.ConditionTrue && sq.Status.Health == v1alpha1.Healthy {
					running++
				}
			}
			if running == queries {
				break
			}
			if time.Now().After(deadline) {
				for _, sq := range list.Items {
					if sq.Status.Phase != v1alpha1.PhaseRunning || sq.Status.Health != v1alpha1.Healthy {
						b.Logf("%s: phase %s health %s ready %s conditions %+v", sq.Name, sq.Status.Phase, sq.Status.Health, sq.Status.Ready, sq.Status.Conditions)
						break
					}
				}
				b.Fatalf("%d of %d queries Running after 5 minutes", running, queries)
			}
			time.Sleep(100 * time.Millisecond)
		}
		all := time.Since(start)
		var list v1alpha1.StreamQueryList
		_ = k8s.List(ctx, &list, client.InNamespace(ns))
		rv := map[string]string{}
		for _, sq := range list.Items {
			rv[sq.Name] = sq.ResourceVersion
		}
		const window = 5 * time.Second
		time.Sleep(window)
		_ = k8s.List(ctx, &list, client.InNamespace(ns))
		changed := 0
		for _, sq := range list.Items {
			if rv[sq.Name] != sq.ResourceVersion {
				changed++
			}
		}
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(created.Seconds(), "s-to-create")
		b.ReportMetric(all.Seconds(), "s-to-all-running")
		b.ReportMetric(float64(changed)/window.Seconds(), "status-writes/s")
		b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")

		// A restart: a new manager, a cold cache, every query to
		// reconcile, and engines that now say something new.
		stopManager()
		input.Store(2000)
		start = time.Now()
		if err := startManager(15 * time.Second); err != nil {
			b.Fatal(err)
		}
		for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
			if err := k8s.List(ctx, &list, client.InNamespace(ns)); err != nil {
				b.Fatal(err)
			}
			updated := 0
			for _, sq := range list.Items {
				if t := sq.Status.Throughput; t != nil && t.InputRecordsPerSecond == "2000" {
					updated++
				}
			}
			if updated == queries {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d queries show their engines' new figures 5 minutes after a restart", updated, queries)
			}
		}
		b.ReportMetric(time.Since(start).Seconds(), "s-to-all-after-restart")
	}
}

// newNamespaceB is newNamespace for a benchmark.
func newNamespaceB(b *testing.B) string {
	ns := &corev1.Namespace{}
	ns.GenerateName = "sq-bench-"
	if err := k8s.Create(context.Background(), ns); err != nil {
		b.Fatal(err)
	}
	return ns.Name
}
