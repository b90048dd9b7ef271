package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/api/enginestatus"
)

// timing records how long a scenario's step took, for the suite's summary.
func timing(t *testing.T, what string, d time.Duration) {
	t.Logf("timing: %s: %s", what, d.Round(10*time.Millisecond))
}

// TestE2E runs the scenarios in order on one cluster: each leaves the
// operator installed and cleans up its own namespace.
func TestE2E(t *testing.T) {
	requireCluster(t)
	if !t.Run("install", testInstall) {
		t.FailNow()
	}
	t.Run("network-safety", testNetworkSafety)
	t.Run("sample", testSample)
	t.Run("invalid-query", testInvalidQuery)
	t.Run("engine-pod-deleted", testEnginePodDeleted)
	t.Run("state-volume", testStateVolume)
	t.Run("suspend-resume-delete", testSuspendResumeDelete)
	t.Run("kafka-scale-at-least-once", func(t *testing.T) { testKafkaScale(t, "atLeastOnce") })
	t.Run("kafka-scale-exactly-once", func(t *testing.T) { testKafkaScale(t, "exactlyOnce") })
	t.Run("kafka-repartition", testKafkaRepartition)
	t.Run("kafka-exactly-once-repartition", testKafkaExactlyOnceRepartition)
	t.Run("kafka-exactly-once-windows", testKafkaExactlyOnceWindows)
	t.Run("rolling-update", testRollingUpdate)
	t.Run("broker-outage", testBrokerOutage)
	t.Run("slow-sink", testSlowSink)
	t.Run("crash-loop", testCrashLoop)
	t.Run("batch", testBatch)
	t.Run("autoscaling", testAutoscaling)
	t.Run("operator-failover", testOperatorFailover)
}

// testInstall installs the operator with kustomize (make deploy's
// config/default), checks it runs and leads, removes it, and installs it
// with Helm for the other scenarios.
func testInstall(t *testing.T) {
	start := time.Now()
	kubectl(t, "", "apply", "-k", "config/default")
	pod := operatorReady(t, "sluice-system", "sluice-manager", 3*time.Minute)
	timing(t, "kustomize apply -> manager ready and leading", time.Since(start))
	t.Logf("kustomize: %s holds the lease", pod)
	kubectl(t, "", "delete", "-k", "config/default", "--wait=false")
	namespaceGone(t, "sluice-system", 2*time.Minute)
	// Helm skips a CRD that still exists, even one being deleted.
	eventually(t, "the CRD deleted", time.Minute, func() error {
		err := k8s.Get(ctx(t, 5*time.Second), types.NamespacedName{Name: "streamqueries.streaming.sluice.dev"}, &apiextensionsv1.CustomResourceDefinition{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("still there (%v)", err)
	})

	start = time.Now()
	helmInstall(t)
	pod = operatorReady(t, operatorNamespace, operatorRelease, 3*time.Minute)
	timing(t, "helm install -> manager ready and leading", time.Since(start))
	t.Logf("helm: %s holds the lease", pod)
}

// testNetworkSafety reads, never sends: a pod's routes, the forwarding
// rules and ip_forward must keep pods' traffic on their bridge.
func testNetworkSafety(t *testing.T) {
	pods, err := clientset.CoreV1().Pods(operatorNamespace).List(ctx(t, 10*time.Second), metav1.ListOptions{})
	if err != nil || len(pods.Items) == 0 {
		t.Fatalf("no operator pod to inspect: %v", err)
	}
	podIP := pods.Items[0].Status.PodIP
	netns := podNetns(t, podIP)
	routes := run(t, "nsenter", "--net="+netns, "ip", "-o", "route", "show")
	for line := range strings.SplitSeq(strings.TrimSpace(routes), "\n") {
		dst := strings.Fields(line)[0]
		switch dst {
		case "10.244.0.0/24":
		case "10.96.0.0/24":
			if !strings.Contains(line, "via "+nodeIP) {
				t.Errorf("pod route %q: the service range must go through the node address", line)
			}
		default:
			t.Errorf("pod route %q: pods must have no route but their subnet's and the service range's", line)
		}
	}
	forward := run(t, "iptables", "-S", "FORWARD")
	if !strings.Contains(forward, "-A FORWARD -j SLUICE-FORWARD") || strings.Index(forward, "-A FORWARD") != strings.Index(forward, "-A FORWARD -j SLUICE-FORWARD") {
		t.Errorf("FORWARD does not send everything to SLUICE-FORWARD first:\n%s", forward)
	}
	chain := run(t, "iptables", "-S", "SLUICE-FORWARD")
	for _, want := range []string{"-A SLUICE-FORWARD -i sluice0 -o sluice0 -j ACCEPT", "-A SLUICE-FORWARD -i sluice0 -j DROP", "-A SLUICE-FORWARD -o sluice0 -j DROP",
		"-A SLUICE-FORWARD -s 10.244.0.0/24 -j DROP", "-A SLUICE-FORWARD -d 10.244.0.0/24 -j DROP"} {
		if !strings.Contains(chain, want) {
			t.Errorf("SLUICE-FORWARD lacks %q:\n%s", want, chain)
		}
	}
	before, err := os.ReadFile(filepath.Join(os.Getenv("SLUICE_CLUSTER_DIR"), "sysctls"))
	if err != nil {
		t.Fatal(err)
	}
	now := strings.TrimSpace(run(t, "sysctl", "-n", "net.ipv4.ip_forward"))
	if !strings.Contains(string(before), "net.ipv4.ip_forward="+now+"\n") {
		t.Errorf("net.ipv4.ip_forward is %s; the cluster found %s", now, before)
	}
	conf, err := os.ReadFile(filepath.Join(os.Getenv("SLUICE_CLUSTER_DIR"), "cni", "net.d", "10-sluice.conflist"))
	if err != nil {
		t.Fatal(err)
	}
	var cni struct {
		Plugins []map[string]any `json:"plugins"`
	}
	if err := json.Unmarshal(conf, &cni); err != nil {
		t.Fatal(err)
	}
	for _, p := range cni.Plugins {
		if p["isGateway"] != false || p["isDefaultGateway"] != false || p["ipMasq"] != false {
			t.Errorf("CNI plugin %v: want isGateway, isDefaultGateway and ipMasq false", p)
		}
	}
}

// podNetns finds the network namespace of the pod with address ip, through
// the processes in it.
func podNetns(t *testing.T, ip string) string {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*/ns/net")
	seen := map[string]bool{}
	for _, ns := range procs {
		link, err := os.Readlink(ns)
		if err != nil || seen[link] {
			continue
		}
		seen[link] = true
		out, err := exec.Command("nsenter", "--net="+ns, "ip", "-o", "-4", "addr", "show").Output()
		if err == nil && strings.Contains(string(out), " "+ip+"/") {
			return ns
		}
	}
	t.Fatalf("no network namespace holds %s", ip)
	return ""
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// sample is config/samples' StreamQuery.
func sample(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "config", "samples", "streaming_v1alpha1_streamquery.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// testSample: the sample runs, healthy, without backpressure, and writes its
// results to the engine's log.
func testSample(t *testing.T) {
	ns := namespace(t, "e2e-sample")
	start := time.Now()
	apply(t, ns, sample(t))
	waitRow(t, ns, "large-trades", 2*time.Minute, row{"Phase": "Running", "Ready": "1/1", "Health": "Healthy", "Backpressure": "None|Low", "Restarts": "0"})
	timing(t, "apply -> Running, 1/1, Healthy", time.Since(start))
	judge(t, ns, "large-trades", "running-healthy", "Healthy", "1 of 1 engines ready")
	pods := enginePods(t, ns, "large-trades")
	if len(pods) != 1 {
		t.Fatalf("%d engine pods; want 1", len(pods))
	}
	eventually(t, "results in the engine's log", 30*time.Second, func() error {
		for line := range strings.SplitSeq(logs(t, ns, pods[0].Name), "\n") {
			var r struct {
				Symbol   string  `json:"symbol"`
				Quantity int     `json:"quantity"`
				Notional float64 `json:"notional"`
			}
			if json.Unmarshal([]byte(line), &r) == nil && r.Symbol != "" && r.Quantity >= 900 && r.Notional > 0 {
				return nil
			}
		}
		return fmt.Errorf("no result row in the log yet")
	})
}

// testInvalidQuery: kubectl apply of a query the planner rejects fails
// with the position of the problem (the admission webhook); one admitted
// while the webhook was away fails with the same position, and nothing
// runs for it.
func testInvalidQuery(t *testing.T) {
	ns := namespace(t, "e2e-invalid")
	invalid := strings.Replace(sample(t), "SELECT symbol, price,", "SELECT symbl, price,", 1)
	eventually(t, "kubectl apply refused by the webhook", time.Minute, func() error {
		out, err := kubectlErr(invalid, "apply", "-n", ns, "-f", "-")
		if err == nil {
			kubectl(t, "", "delete", "sq", "large-trades", "-n", ns)
			return fmt.Errorf("admitted: %s", out)
		}
		if !strings.Contains(out, `spec.query: Invalid value: line 1, column 8: unknown column "symbl"`) {
			return fmt.Errorf("refused with %q; want the position and the unknown column", out)
		}
		return nil
	})

	// The webhook away: its configuration removed, as before it is
	// installed; failurePolicy Ignore would admit the same while the
	// manager is down.
	var saved admissionregistrationv1.ValidatingWebhookConfiguration
	if err := k8s.Get(ctx(t, 5*time.Second), types.NamespacedName{Name: operatorRelease + "-validating"}, &saved); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Delete(ctx(t, 5*time.Second), &saved); err != nil {
		t.Fatal(err)
	}
	restored := false
	restore := func() {
		if restored {
			return
		}
		restored = true
		again := admissionregistrationv1.ValidatingWebhookConfiguration{
			ObjectMeta: metav1.ObjectMeta{Name: saved.Name, Labels: saved.Labels, Annotations: saved.Annotations},
			Webhooks:   saved.Webhooks,
		}
		if err := k8s.Create(ctx(t, 5*time.Second), &again); err != nil {
			t.Errorf("restoring the webhook configuration: %v", err)
		}
	}
	defer restore()
	apply(t, ns, invalid)
	restore()
	r, _ := waitRow(t, ns, "large-trades", time.Minute, row{"Phase": "Failed"})
	if !strings.Contains(r["Last Error"], "line 1, column 8") || !strings.Contains(r["Last Error"], `unknown column "symbl"`) {
		t.Errorf("last error %q; want the position, line 1, column 8, and the unknown column", r["Last Error"])
	}
	c := meta.FindStatusCondition(query(t, ns, "large-trades").Status.Conditions, "Ready")
	if c == nil || c.Reason != "InvalidQuery" {
		t.Errorf("Ready condition %+v; want reason InvalidQuery", c)
	}
	var d appsv1.Deployment
	if err := k8s.Get(ctx(t, 5*time.Second), types.NamespacedName{Namespace: ns, Name: "large-trades-engine"}, &d); !apierrors.IsNotFound(err) {
		t.Errorf("a Deployment exists for the invalid query (%v)", err)
	}
	if pods := enginePods(t, ns, "large-trades"); len(pods) != 0 {
		t.Errorf("%d engine pods for the invalid query", len(pods))
	}
	judge(t, ns, "large-trades", "invalid-query", "Degraded", "line 1, column 8")
	// An admitted invalid query stays labelable (and deletable): the
	// webhook checks only updates that change the spec.
	kubectl(t, "", "label", "sq", "large-trades", "-n", ns, "team=data")
}

// testEnginePodDeleted: a deleted engine pod is replaced, and the status
// returns to Running with consistent counts.
func testEnginePodDeleted(t *testing.T) {
	ns := namespace(t, "e2e-pod-deleted")
	apply(t, ns, sample(t))
	waitRow(t, ns, "large-trades", 2*time.Minute, row{"Phase": "Running", "Ready": "1/1"})
	old := enginePods(t, ns, "large-trades")[0]
	start := time.Now()
	if err := k8s.Delete(ctx(t, 10*time.Second), &old); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a new engine pod, ready", 2*time.Minute, func() error {
		pods := enginePods(t, ns, "large-trades")
		if len(pods) != 1 || pods[0].Name == old.Name || !podReady(&pods[0]) {
			return fmt.Errorf("%d pods", len(pods))
		}
		return nil
	})
	waitRow(t, ns, "large-trades", time.Minute, row{"Phase": "Running", "Ready": "1/1", "Health": "Healthy", "Restarts": "0"})
	timing(t, "engine pod deleted -> replaced and Running again", time.Since(start))
}

// testStateVolume: a windowed query with spec.state.volume keeps its
// checkpoints on the claim the operator makes, bound here to a hostPath
// volume of the test's; the engine that replaces a deleted pod mounts the
// claim again and restores the state from them.
func testStateVolume(t *testing.T) {
	ns := namespace(t, "e2e-state-volume")
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil { // hostPath takes no fsGroup
		t.Fatal(err)
	}
	hostPath := corev1.HostPathDirectory
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: ns + "-state"},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName:              "e2e-state",
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			ClaimRef:                      &corev1.ObjectReference{Namespace: ns, Name: "windowed-state"},
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: dir, Type: &hostPath}},
		},
	}
	if err := k8s.Create(ctx(t, 10*time.Second), pv); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k8s.Delete(ctx(t, 10*time.Second), pv) })
	apply(t, ns, `apiVersion: streaming.sluice.dev/v1alpha1
kind: StreamQuery
metadata: {name: windowed}
spec:
  sources:
    - name: trades
      datagen: {generator: trades, keys: 5, rate: 1000}
      eventTime: {column: ts}
  query: SELECT window_start, symbol, count(*) AS trades FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY window_start, window_end, symbol
  sink: {"null": {}}
  state: {checkpointInterval: 1s, volume: {size: 1Gi, storageClassName: e2e-state}}
`)
	waitRow(t, ns, "windowed", 2*time.Minute, row{"Phase": "Running", "Ready": "1/1"})
	eventually(t, "checkpoints on the claim's volume", time.Minute, func() error {
		files, _ := filepath.Glob(filepath.Join(dir, "*.checkpoint"))
		if len(files) == 0 {
			return fmt.Errorf("no checkpoint in %s", dir)
		}
		return nil
	})
	old := enginePods(t, ns, "windowed")[0]
	if err := k8s.Delete(ctx(t, 10*time.Second), &old); err != nil {
		t.Fatal(err)
	}
	var doc *enginestatus.Document
	eventually(t, "the new engine, restored from a checkpoint", 2*time.Minute, func() error {
		pods := enginePods(t, ns, "windowed")
		if len(pods) != 1 || pods[0].Name == old.Name || !podReady(&pods[0]) {
			return fmt.Errorf("%d pods", len(pods))
		}
		var err error
		if doc, err = engineStatus(pods[0].Status.PodIP); err != nil {
			return err
		}
		if c := doc.Checkpoints; c == nil || c.Restored == nil {
			return fmt.Errorf("checkpoints %+v: nothing restored", c)
		}
		return nil
	})
	t.Logf("the new engine restored checkpoint %d in %.3f s", doc.Checkpoints.Restored.ID, doc.Checkpoints.RestoreSeconds)
}

// testSuspendResumeDelete: suspend removes the engines and says so, resume
// brings them back, and deleting the query garbage-collects everything it
// owns.
func testSuspendResumeDelete(t *testing.T) {
	ns := namespace(t, "e2e-suspend")
	apply(t, ns, sample(t))
	waitRow(t, ns, "large-trades", 2*time.Minute, row{"Phase": "Running", "Ready": "1/1"})
	kubectl(t, "", "patch", "sq", "large-trades", "-n", ns, "--type=merge", "-p", `{"spec":{"suspend":true}}`)
	waitRow(t, ns, "large-trades", time.Minute, row{"Phase": "Suspended", "Ready": "0/0"})
	eventually(t, "engine pods gone while suspended", time.Minute, func() error {
		if n := len(enginePods(t, ns, "large-trades")); n > 0 {
			return fmt.Errorf("%d pods", n)
		}
		return nil
	})
	judge(t, ns, "large-trades", "suspended", "Suspended", "suspended")
	kubectl(t, "", "patch", "sq", "large-trades", "-n", ns, "--type=merge", "-p", `{"spec":{"suspend":false}}`)
	waitRow(t, ns, "large-trades", 2*time.Minute, row{"Phase": "Running", "Ready": "1/1", "Health": "Healthy"})

	kubectl(t, "", "delete", "sq", "large-trades", "-n", ns)
	eventually(t, "every object the query owned garbage-collected", 2*time.Minute, func() error {
		var left []string
		for _, list := range []client.ObjectList{&appsv1.DeploymentList{}, &appsv1.ReplicaSetList{}, &corev1.PodList{}, &corev1.ServiceList{}, &corev1.ConfigMapList{}} {
			if err := k8s.List(ctx(t, 5*time.Second), list, client.InNamespace(ns), client.MatchingLabels{"sluice.dev/query": "large-trades"}); err != nil {
				return err
			}
			items, _ := meta.ExtractList(list)
			for _, o := range items {
				left = append(left, fmt.Sprintf("%T %s", o, o.(client.Object).GetName()))
			}
		}
		if len(left) > 0 {
			return fmt.Errorf("left: %v", left)
		}
		return nil
	})
}

// testKafkaScale: a 4-partition pipeline scaled to 3 engines and back to 1
// mid-stream loses nothing, keeps each key's order, and with exactlyOnce
// writes nothing twice.
func testKafkaScale(t *testing.T, delivery string) {
	ns, in, v, _ := kafkaPipeline(t, "scale-"+strings.ToLower(delivery), delivery)
	eventually(t, "output from the first engine", time.Minute, func() error {
		if d, _ := v.counts(); d < part/2 {
			return fmt.Errorf("%d ids", d)
		}
		return nil
	})

	start := time.Now()
	kubectl(t, "", "scale", "sq", "pipeline", "-n", ns, "--replicas=3")
	produce(t, in, keyed(part, 2*part))
	waitRow(t, ns, "pipeline", 2*time.Minute, row{"Phase": "Running", "Ready": "3/3"})
	timing(t, delivery+": kubectl scale --replicas=3 -> 3/3 Running", time.Since(start))
	produce(t, in, keyed(2*part, 3*part))
	eventually(t, "output of the second part", time.Minute, func() error {
		if d, _ := v.counts(); d < 2*part {
			return fmt.Errorf("%d ids", d)
		}
		return nil
	})

	start = time.Now()
	kubectl(t, "", "scale", "sq", "pipeline", "-n", ns, "--replicas=1")
	produce(t, in, keyed(3*part, 4*part))
	waitRow(t, ns, "pipeline", 2*time.Minute, row{"Phase": "Running", "Ready": "1/1"})
	timing(t, delivery+": kubectl scale --replicas=1 -> 1/1 Running", time.Since(start))
	dups := v.waitAll(t, 4*part, 2*time.Minute)
	t.Logf("%s: %d records, %d duplicates across two rescales", delivery, 4*part, dups)
	if delivery == "exactlyOnce" && dups != 0 {
		t.Errorf("exactly-once wrote %d duplicates", dups)
	}
}

// testKafkaRepartition: three engine pods count 10-second windows by k
// over a topic keyed by id, whose partitions each hold every k: the
// status names the repartition topic, the engines create it, and every
// window's count and sum are the input's, each window written once or
// again equal.
func testKafkaRepartition(t *testing.T) {
	kafkaRepartition(t, "e2e-repartition", "repart", "atLeastOnce")
}

// testKafkaExactlyOnceRepartition is testKafkaRepartition exactly-once,
// scaled down to two engines mid-stream: the upstream parts' transactions
// commit the rows written to the repartition topic with the offsets read,
// the parts after it their checkpoints with the results, and a
// read_committed consumer sees every window once.
func testKafkaExactlyOnceRepartition(t *testing.T) {
	kafkaRepartition(t, "e2e-eos-repartition", "eosrep", "exactlyOnce")
}

// kafkaRepartition runs testKafkaRepartition in namespace ns, on topics
// named after prefix, with delivery.
func kafkaRepartition(t *testing.T, ns, prefix, delivery string) {
	ns = namespace(t, ns)
	in, out := prefix+"-in", prefix+"-out"
	createTopic(t, in, 4)
	createTopic(t, out, 4)
	apply(t, ns, fmt.Sprintf(`apiVersion: streaming.sluice.dev/v1alpha1
kind: StreamQuery
metadata: {name: volume}
spec:
  replicas: 3
  sources:
    - name: t
      kafka: {brokers: [%q], topic: %s, sessionTimeout: 30s}
      schema: [{name: id, type: string, key: true}, {name: k, type: string}, {name: seq, type: int}, {name: ts, type: timestamp}]
      eventTime: {column: ts}
  query: SELECT window_start, k, count(*) AS n, sum(seq) AS total FROM TUMBLE(t, ts, INTERVAL '10' SECOND) GROUP BY window_start, window_end, k
  sink:
    kafka: {brokers: [%q], topic: %s, key: k, delivery: %s}
  state: {checkpointInterval: 1s}
  errorPolicy: {strategy: FailFast}
  runtime: {parallelism: 2, batchSize: 100}
  resources:
    requests: {cpu: 50m, memory: 64Mi}
    limits: {memory: 512Mi}
`, brokerAddr(), in, brokerAddr(), out, delivery))
	start := time.Now()
	waitRow(t, ns, "volume", 3*time.Minute, row{"Phase": "Running", "Ready": "3/3"})
	timing(t, delivery+": 3 repartitioning engines Running", time.Since(start))
	topic := "sluice." + ns + ".volume.repartition.0"
	if st := query(t, ns, "volume").Status.State; !strings.Contains(st, "its rows are repartitioned by k through the topic "+topic) {
		t.Errorf("status.state %q; want the repartition through %s", st, topic)
	}

	// 8,000 records over 80 s of event time and 20 keys, each record keyed
	// by its id.
	recs, want := windowInput(8000, func(i int) []byte { return []byte(fmt.Sprint(i)) })
	var opts []kgo.Opt
	if delivery == "exactlyOnce" {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	ww := watchWindows(t, out, want, opts...)
	if delivery == "exactlyOnce" {
		// A scale-down mid-stream: the engine that goes ends its
		// transactions, and its partitions move to the two that stay.
		scaleMidStream(t, ns, in, recs, ww, 2, "exactly-once repartition")
	} else {
		produce(t, in, recs)
	}
	endWindows(t, in)
	rows := ww.waitAll(t)
	if delivery == "exactlyOnce" && rows != len(want) {
		t.Errorf("exactly-once wrote %d rows for %d windows", rows, len(want))
	}
	topics, err := kadm.NewClient(kafkaClient(t)).ListTopics(ctx(t, 10*time.Second), topic)
	if err != nil || len(topics[topic].Partitions) != 4 {
		t.Errorf("the repartition topic %s: %v, %v; want it with the input's 4 partitions", topic, topics[topic], err)
	}
	t.Logf("repartition, %s: %d windows, %d rows written", delivery, len(want), rows)
}

// testKafkaExactlyOnceWindows: the 10-second windows of testKafkaRepartition
// over a topic keyed by k, exactly-once, on two engine pods scaled to three
// mid-stream: the rebalance aborts the transactions open on the engines
// that lose partitions, which go back to their last committed checkpoints,
// and a read_committed consumer sees every window once, with its count and
// sum.
func testKafkaExactlyOnceWindows(t *testing.T) {
	ns := namespace(t, "e2e-eos-windows")
	createTopic(t, "eosw-in", 4)
	createTopic(t, "eosw-out", 4)
	apply(t, ns, fmt.Sprintf(`apiVersion: streaming.sluice.dev/v1alpha1
kind: StreamQuery
metadata: {name: volume}
spec:
  replicas: 2
  sources:
    - name: t
      kafka: {brokers: [%q], topic: eosw-in, sessionTimeout: 30s}
      schema: [{name: k, type: string, key: true}, {name: seq, type: int}, {name: ts, type: timestamp}]
      eventTime: {column: ts}
  query: SELECT window_start, k, count(*) AS n, sum(seq) AS total FROM TUMBLE(t, ts, INTERVAL '10' SECOND) GROUP BY window_start, window_end, k
  sink:
    kafka: {brokers: [%q], topic: eosw-out, key: k, delivery: exactlyOnce}
  state: {checkpointInterval: 1s}
  errorPolicy: {strategy: FailFast}
  runtime: {parallelism: 2, batchSize: 100}
  resources:
    requests: {cpu: 50m, memory: 64Mi}
    limits: {memory: 512Mi}
`, brokerAddr(), brokerAddr()))
	waitRow(t, ns, "volume", 3*time.Minute, row{"Phase": "Running", "Ready": "2/2"})
	if st := query(t, ns, "volume").Status.State; !strings.Contains(st, "each engine holds whole keys") {
		t.Errorf("status.state %q; want whole keys on each engine", st)
	}
	recs, want := windowInput(8000, func(i int) []byte { return fmt.Appendf(nil, "k%02d", i%20) })
	ww := watchWindows(t, "eosw-out", want, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	scaleMidStream(t, ns, "eosw-in", recs, ww, 3, "exactly-once windows")
	endWindows(t, "eosw-in")
	rows := ww.waitAll(t)
	if rows != len(want) {
		t.Errorf("exactly-once wrote %d rows for %d windows", rows, len(want))
	}
	t.Logf("exactly-once windows: %d windows on 2 then 3 engines, %d rows written", len(want), rows)
}

// scaleMidStream produces the first half of recs to topic, waits for a
// quarter of ww's windows, scales the query volume in ns to replicas and
// waits for its pods, then produces the rest; what names the step's
// timing.
func scaleMidStream(t *testing.T, ns, topic string, recs []*kgo.Record, ww *windowWatch, replicas int, what string) {
	t.Helper()
	half := len(recs) / 2
	produce(t, topic, recs[:half])
	eventually(t, "windows of the first half", 2*time.Minute, func() error {
		if n := ww.windows(); n < len(ww.want)/4 {
			return fmt.Errorf("%d windows", n)
		}
		return nil
	})
	start := time.Now()
	kubectl(t, "", "scale", "sq", "volume", "-n", ns, fmt.Sprintf("--replicas=%d", replicas))
	ready := fmt.Sprintf("%d/%d", replicas, replicas)
	waitRow(t, ns, "volume", 2*time.Minute, row{"Phase": "Running", "Ready": ready})
	timing(t, fmt.Sprintf("%s: kubectl scale --replicas=%d -> %s Running", what, replicas, ready), time.Since(start))
	produce(t, topic, recs[half:])
}

// windowInput is n records over n/100 seconds of event time and 20 keys,
// each record keyed by key(i), and the count and sum of each 10-second
// window of each key.
func windowInput(n int, key func(i int) []byte) ([]*kgo.Record, map[string]string) {
	t0 := time.Date(2024, 1, 2, 9, 30, 0, 0, time.UTC)
	sums := map[string][2]int{}
	var recs []*kgo.Record
	for i := range n {
		k, ts := fmt.Sprintf("k%02d", i%20), t0.Add(time.Duration(i)*10*time.Millisecond)
		recs = append(recs, &kgo.Record{Key: key(i), Value: fmt.Appendf(nil, `{"k":%q,"seq":%d,"ts":%q}`, k, i%7, ts.Format(time.RFC3339Nano))})
		w := ts.Truncate(10*time.Second).Format(time.TimeOnly) + " " + k
		s := sums[w]
		sums[w] = [2]int{s[0] + 1, s[1] + i%7}
	}
	want := map[string]string{}
	for w, s := range sums {
		want[w] = fmt.Sprintf("n=%d total=%d", s[0], s[1])
	}
	return recs, want
}

// endWindows writes a record far ahead in event time to each of the
// topic's 4 partitions, which closes every window.
func endWindows(t *testing.T, topic string) {
	end := kafkaClient(t, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.DefaultProduceTopic(topic))
	for p := range int32(4) {
		if err := end.ProduceSync(ctx(t, 30*time.Second), &kgo.Record{Partition: p, Key: []byte("END"), Value: []byte(`{"k":"END","seq":0,"ts":"2024-01-02T11:00:00Z"}`)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// windowWatch reads the window rows written to a topic and checks each
// against the input's.
type windowWatch struct {
	want  map[string]string
	mu    sync.Mutex
	seen  map[string]bool
	wrong []string
	rows  int
}

// watchWindows reads topic from its start until the test ends.
func watchWindows(t *testing.T, topic string, want map[string]string, opts ...kgo.Opt) *windowWatch {
	ww := &windowWatch{want: want, seen: map[string]bool{}}
	cl := kafkaClient(t, append(opts, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	c, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() {
		for c.Err() == nil {
			cl.PollFetches(c).EachRecord(func(r *kgo.Record) {
				var row struct {
					WindowStart time.Time `json:"window_start"`
					K           string
					N, Total    int
				}
				if json.Unmarshal(r.Value, &row) != nil || row.K == "END" {
					return
				}
				w, got := row.WindowStart.Format(time.TimeOnly)+" "+row.K, fmt.Sprintf("n=%d total=%d", row.N, row.Total)
				ww.mu.Lock()
				defer ww.mu.Unlock()
				ww.rows++
				ww.seen[w] = true
				if want[w] != got {
					ww.wrong = append(ww.wrong, fmt.Sprintf("%s: %s, want %s", w, got, want[w]))
				}
			})
		}
	}()
	return ww
}

// missing lists the windows not yet written, in order.
func (ww *windowWatch) missing() []string {
	ww.mu.Lock()
	defer ww.mu.Unlock()
	var missing []string
	for w := range ww.want {
		if !ww.seen[w] {
			missing = append(missing, w)
		}
	}
	slices.Sort(missing)
	return missing
}

// windows is how many distinct windows were written.
func (ww *windowWatch) windows() int {
	ww.mu.Lock()
	defer ww.mu.Unlock()
	return len(ww.seen)
}

// waitAll waits for every window, checks that each row equals the
// input's, and returns the rows written.
func (ww *windowWatch) waitAll(t *testing.T) int {
	t.Helper()
	eventually(t, "every window of every key", 3*time.Minute, func() error {
		if missing := ww.missing(); len(missing) > 0 {
			return fmt.Errorf("%d of %d windows; missing %s", len(ww.want)-len(missing), len(ww.want), strings.Join(missing[:min(len(missing), 12)], ", "))
		}
		return nil
	})
	time.Sleep(time.Second) // a row written again may still be on its way
	ww.mu.Lock()
	defer ww.mu.Unlock()
	if len(ww.wrong) > 0 {
		t.Errorf("%d windows differ from the input's, e.g. %s", len(ww.wrong), ww.wrong[0])
	}
	return ww.rows
}

// testAutoscaling: an engine held to 20 millicores, its input arriving
// faster than it reads, falls behind; the operator adds engines, up to the
// topic's 4 partitions, and once the input stops and they have caught up
// removes them down to one; every record is written.
func testAutoscaling(t *testing.T) {
	ns := namespace(t, "e2e-autoscaling")
	createTopic(t, "elastic-in", 4)
	createTopic(t, "elastic-out", 4)
	v := verify(t, "elastic-out")
	n := 20000
	produce(t, "elastic-in", keyed(0, n))
	manifest := strings.NewReplacer(
		"    requests: {cpu: 50m, memory: 64Mi}\n", "    requests: {cpu: 20m, memory: 64Mi}\n",
		"    limits: {memory: 512Mi}\n", "    limits: {memory: 512Mi, cpu: 20m}\n",
	).Replace(kafkaQuery("elastic", "elastic-in", "elastic-out", "atLeastOnce")) +
		"  autoscaling: {maxReplicas: 6, targetLagSeconds: 2, backpressure: None, scaleUpStabilization: 0s, scaleDownStabilization: 20s, maxStep: 3}\n"
	start := time.Now()
	apply(t, ns, manifest)
	var most int32
	eventually(t, "engines added for the lag", 4*time.Minute, func() error {
		// The input keeps coming, 20,000 records a poll (some 50,000 a
		// second), until engines are added or 200k are waiting: one
		// engine at 20 millicores reads 2000 to 10,000 a second here,
		// and at 5000 a poll it could keep up on a quiet machine.
		if n < 200000 {
			produce(t, "elastic-in", keyed(n, n+20000))
			n += 20000
		}
		st := query(t, ns, "elastic").Status
		if a := st.Autoscaling; a != nil {
			most = max(most, a.DesiredReplicas)
		}
		if most < 2 {
			b, _ := json.Marshal(st)
			return fmt.Errorf("status %s", b)
		}
		return nil
	})
	timing(t, "falling behind -> engines added", time.Since(start))
	sq := query(t, ns, "elastic")
	t.Logf("autoscaling: %+v", *sq.Status.Autoscaling)
	if a := sq.Status.Autoscaling; a.LastScaleTime == nil || !strings.Contains(a.LastScaleReason, "lag") {
		t.Errorf("autoscaling %+v; want the scale-up and its reason, the lag", a)
	}
	dups := v.waitAll(t, n, 6*time.Minute)
	r, took := waitRow(t, ns, "elastic", 3*time.Minute, row{"Phase": "Running", "Ready": "1/1"})
	timing(t, "caught up -> back to one engine", took)
	sq = query(t, ns, "elastic")
	if a := sq.Status.Autoscaling; a == nil || a.DesiredReplicas != 1 || a.Partitions != 4 || a.LastScaleTime == nil {
		t.Errorf("autoscaling %+v; want 1 engine, 4 partitions", a)
	}
	var events corev1.EventList
	if err := k8s.List(ctx(t, 10*time.Second), &events, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	var steps []string
	for _, e := range events.Items {
		if e.Reason == "Scaled" {
			steps = append(steps, e.Message)
		}
	}
	t.Logf("autoscaling: %s; %d records, %d duplicates; Scaled events: %s", r, n, dups, strings.Join(steps, " | "))
	if most > 4 {
		t.Errorf("%d engines for 4 partitions", most)
	}
}

// part is how many records a Kafka scenario produces at a time.
const part = 5000

// kafkaPipeline runs the StreamQuery "pipeline", from topic <name>-in to
// <name>-out, in a namespace of its own, with the first part of the input
// produced and its engine running, and a verifier reading the output.
func kafkaPipeline(t *testing.T, name, delivery string) (ns, in string, v *verifier, manifest string) {
	t.Helper()
	ns = namespace(t, "e2e-"+name)
	in, out := name+"-in", name+"-out"
	createTopic(t, in, 4)
	createTopic(t, out, 4)
	v = verify(t, out)
	produce(t, in, keyed(0, part))
	manifest = kafkaQuery("pipeline", in, out, delivery)
	apply(t, ns, manifest)
	waitRow(t, ns, "pipeline", 2*time.Minute, row{"Phase": "Running", "Ready": "1/1"})
	return ns, in, v, manifest
}

// testRollingUpdate: editing the query rolls the engines out, and nothing is
// lost across the rollout.
func testRollingUpdate(t *testing.T) {
	ns, in, v, manifest := kafkaPipeline(t, "rollout", "atLeastOnce")
	before := enginePods(t, ns, "pipeline")[0].Name

	start := time.Now()
	apply(t, ns, strings.Replace(manifest, "SELECT id, k, seq FROM t", "SELECT id, k, seq, upper(k) AS key_upper FROM t", 1))
	produce(t, in, keyed(part, 2*part))
	var sawProgressing bool
	eventually(t, "the rollout to a new engine pod", 2*time.Minute, func() error {
		sq := query(t, ns, "pipeline")
		if c := meta.FindStatusCondition(sq.Status.Conditions, "Progressing"); c != nil && c.Status == "True" && !sawProgressing {
			sawProgressing = true
			judge(t, ns, "pipeline", "rolling-out", "Progressing", "engines updated and ready")
		}
		pods := enginePods(t, ns, "pipeline")
		if len(pods) != 1 || pods[0].Name == before || !podReady(&pods[0]) || sq.Status.ObservedGeneration != sq.Generation {
			return fmt.Errorf("%d pods, observed generation %d of %d", len(pods), sq.Status.ObservedGeneration, sq.Generation)
		}
		return nil
	})
	waitRow(t, ns, "pipeline", time.Minute, row{"Phase": "Running", "Ready": "1/1"})
	timing(t, "query edited -> rolled out", time.Since(start))
	if !sawProgressing {
		t.Log("the rollout was quicker than a poll: Progressing was not seen")
	}
	produce(t, in, keyed(2*part, 3*part))
	dups := v.waitAll(t, 3*part, 2*time.Minute)
	t.Logf("rollout: %d records, %d duplicates", 3*part, dups)
}

// testBrokerOutage: with the broker unreachable the query shows Degraded
// with the connectivity check's reason; once it is back, Healthy, and no
// record is lost.
func testBrokerOutage(t *testing.T) {
	ns, in, v, _ := kafkaPipeline(t, "outage", "atLeastOnce")
	waitRow(t, ns, "pipeline", time.Minute, row{"Health": "Healthy"})

	lift := brokerDown(t)
	start := time.Now()
	waitRow(t, ns, "pipeline", time.Minute, row{"Phase": "Degraded", "Health": "Degraded"})
	timing(t, "broker unreachable -> Degraded", time.Since(start))
	sq := query(t, ns, "pipeline")
	c := meta.FindStatusCondition(sq.Status.Conditions, "Degraded")
	if c == nil || c.Status != "True" || !strings.Contains(c.Message, "connectivity") {
		t.Errorf("Degraded condition %+v; want True, naming the connectivity check", c)
	}
	judge(t, ns, "pipeline", "broker-outage", "Degraded", "connectivity")
	produce(t, in, keyed(part, 2*part)) // the host still reaches the broker

	lift()
	start = time.Now()
	waitRow(t, ns, "pipeline", 2*time.Minute, row{"Phase": "Running", "Ready": "1/1", "Health": "Healthy"})
	timing(t, "broker back -> Healthy", time.Since(start))
	dups := v.waitAll(t, 2*part, 2*time.Minute)
	t.Logf("outage: %d records, %d duplicates", 2*part, dups)
}

// testSlowSink: a sink slowed to a trickle fills the channels, and the
// resource shows High backpressure within a poll interval of the engine
// saying so; once the sink recovers, the level falls again.
func testSlowSink(t *testing.T) {
	ns := namespace(t, "e2e-slow")
	createTopic(t, "slow-out", 4)
	apply(t, ns, fmt.Sprintf(`apiVersion: streaming.sluice.dev/v1alpha1
kind: StreamQuery
metadata: {name: slow}
spec:
  sources:
    - name: trades
      datagen: {generator: trades, partitions: 2, rate: 2000}
  query: SELECT trade_id, symbol, price, quantity FROM trades
  sink:
    kafka: {brokers: [%q], topic: slow-out, key: symbol}
  errorPolicy: {strategy: Skip}
  runtime: {parallelism: 2, channelCapacity: 8, batchSize: 100}
  health: {queueSustained: 10s}
`, brokerAddr()))
	waitRow(t, ns, "slow", 2*time.Minute, row{"Phase": "Running", "Ready": "1/1", "Backpressure": "None|Low"})
	pod := enginePods(t, ns, "slow")[0]

	lift := brokerSlow(t)
	// The engine's own verdict first, then the resource's.
	eventually(t, "the engine reporting High backpressure", 2*time.Minute, func() error {
		doc, err := engineStatus(pod.Status.PodIP)
		if err != nil {
			return err
		}
		if doc.Backpressure.Level != "High" {
			return fmt.Errorf("backpressure %s at %.2f", doc.Backpressure.Level, doc.Backpressure.MaxUtilization)
		}
		return nil
	})
	_, took := waitRow(t, ns, "slow", 3*pollInterval+5*time.Second, row{"Backpressure": "High"})
	timing(t, "engine High -> resource High (poll interval "+pollInterval.String()+")", took)
	// One poll interval after the last reconcile, which itself takes a
	// moment, and this test's own polling of the API.
	if took > 2*pollInterval {
		t.Errorf("the resource showed High %s after the engine; want within a poll interval (%s) and a reconcile", took.Round(time.Millisecond), pollInterval)
	}
	// Whether the channel_capacity check has turned the query Degraded yet
	// depends on how long the channel has been full; the Argo CD verdict
	// must follow the conditions either way.
	want, msg := statusHealthOf(t, ns, "slow")
	judge(t, ns, "slow", "slow-sink", want, msg)

	lift()
	start := time.Now()
	waitRow(t, ns, "slow", 2*time.Minute, row{"Backpressure": "None|Low"})
	timing(t, "sink recovered -> Low", time.Since(start))
}

// statusHealthOf is what the Argo CD check should say of a running query
// now, from its conditions, and a part of the message it should give.
func statusHealthOf(t *testing.T, ns, name string) (health, message string) {
	sq := query(t, ns, name)
	if c := meta.FindStatusCondition(sq.Status.Conditions, "Degraded"); c != nil && c.Status == "True" {
		return "Degraded", "channel_capacity"
	}
	return "Healthy", "engines ready"
}

// engineStatus reads an engine's /status directly, as the operator does.
func engineStatus(podIP string) (*enginestatus.Document, error) {
	out, err := exec.Command("curl", "-fsS", "--max-time", "2", fmt.Sprintf("http://%s:%d%s", podIP, enginestatus.Port, enginestatus.Path)).Output()
	if err != nil {
		return nil, err
	}
	var doc enginestatus.Document
	return &doc, json.Unmarshal(out, &doc)
}

// testCrashLoop: a FailFast query fed a poison record crashes, restarts and
// crashes again: the resource counts the restarts, says Degraded, and shows
// why the engine failed.
func testCrashLoop(t *testing.T) {
	ns := namespace(t, "e2e-crash")
	createTopic(t, "poison-in", 1)
	createTopic(t, "poison-out", 1)
	produce(t, "poison-in", keyed(0, 10))
	produce(t, "poison-in", keyedPoison())
	apply(t, ns, kafkaQuery("poison", "poison-in", "poison-out", "atLeastOnce"))
	start := time.Now()
	waitRow(t, ns, "poison", 3*time.Minute, row{"Phase": "Degraded"})
	timing(t, "poison record -> Degraded", time.Since(start))
	r, _ := waitRow(t, ns, "poison", 3*time.Minute, row{"Phase": "Degraded", "Restarts": "2|3|4|5|6"})
	if !strings.Contains(r["Last Error"], "decode") || !strings.Contains(r["Last Error"], "poison") {
		t.Errorf("last error %q; want the engine's failure: a decode error of the poison record", r["Last Error"])
	}
	sq := query(t, ns, "poison")
	c := meta.FindStatusCondition(sq.Status.Conditions, "Degraded")
	if c == nil || c.Status != "True" || c.Reason != "CrashLoopBackOff" {
		t.Errorf("Degraded condition %+v; want True, CrashLoopBackOff", c)
	}
	judge(t, ns, "poison", "crash-loop", "Degraded", "crash-looping")
}

// batchQuery is a query whose source ends: count generated trades to
// stdout.
func batchQuery(name string, count int) string {
	return fmt.Sprintf(`apiVersion: streaming.sluice.dev/v1alpha1
kind: StreamQuery
metadata: {name: %s}
spec:
  sources: [{name: trades, datagen: {generator: trades, count: %d, partitions: 1}}]
  query: SELECT trade_id, symbol FROM trades
  sink: {stdout: {}}
  resources:
    requests: {cpu: 50m, memory: 64Mi}
    limits: {memory: 256Mi}
`, name, count)
}

// testBatch: a query whose source ends runs once, as a Job: Succeeded with
// its final counts, every row written once, and not run again; a Batch run
// that fails is Failed at once with the engine's reason, not retried.
func testBatch(t *testing.T) {
	ns := namespace(t, "e2e-batch")
	const n = 5000
	start := time.Now()
	apply(t, ns, batchQuery("report", n))
	r, _ := waitRow(t, ns, "report", 3*time.Minute, row{"Phase": "Succeeded", "Mode": "Batch"})
	timing(t, "apply -> Succeeded", time.Since(start))
	sq := query(t, ns, "report")
	if c := sq.Status.Completion; c == nil || c.Records == nil || c.Records.In != n || c.Records.Out != n || !strings.Contains(c.Summary, "sluice: finished") {
		t.Errorf("completion %+v; want %d records in and out and the engine's summary", c, n)
	}
	judge(t, ns, "report", "batch-succeeded", "Healthy", "sluice: finished")
	var d appsv1.Deployment
	if err := k8s.Get(ctx(t, 5*time.Second), types.NamespacedName{Namespace: ns, Name: "report-engine"}, &d); !apierrors.IsNotFound(err) {
		t.Errorf("a Batch query has a Deployment (%v)", err)
	}
	// Every row once, and no second run after two poll intervals.
	time.Sleep(35 * time.Second)
	pods, err := clientset.CoreV1().Pods(ns).List(ctx(t, 10*time.Second), metav1.ListOptions{LabelSelector: "sluice.dev/query=report"})
	if err != nil || len(pods.Items) != 1 || pods.Items[0].Status.Phase != corev1.PodSucceeded {
		t.Fatalf("engine pods %d (%v); want the one run's, Succeeded", len(pods.Items), err)
	}
	ids := map[int64]int{}
	for line := range strings.SplitSeq(logs(t, ns, pods.Items[0].Name), "\n") {
		var row struct {
			TradeID *int64 `json:"trade_id"`
		}
		if json.Unmarshal([]byte(line), &row) == nil && row.TradeID != nil {
			ids[*row.TradeID]++
		}
	}
	total := 0
	for _, c := range ids {
		total += c
	}
	if len(ids) != n || total != n {
		t.Errorf("%d rows, %d distinct; want each of the %d trades once", total, len(ids), n)
	}
	if got := getRow(t, ns, "report"); got["Phase"] != "Succeeded" {
		t.Errorf("after the run: %v; want Succeeded still", got)
	}
	t.Logf("batch: %s", r)

	// A run that fails: the file is not there. Exit 1 fails the Job at
	// once, without the retries of the back-off limit.
	apply(t, ns, strings.Replace(batchQuery("missing", 10), "datagen: {generator: trades, count: 10, partitions: 1}",
		"file: {path: /data/none.jsonl}, schema: [{name: trade_id, type: bigint}, {name: symbol, type: text}]", 1))
	r, _ = waitRow(t, ns, "missing", 3*time.Minute, row{"Phase": "Failed", "Mode": "Batch"})
	if !strings.Contains(r["Last Error"], "none.jsonl") {
		t.Errorf("last error %q; want the engine's failure naming the file", r["Last Error"])
	}
	c := meta.FindStatusCondition(query(t, ns, "missing").Status.Conditions, "Degraded")
	if c == nil || c.Reason != "RunFailed" || !strings.Contains(c.Message, "PodFailurePolicy") {
		t.Errorf("Degraded %+v; want RunFailed by the pod failure policy", c)
	}
	if pods := enginePods(t, ns, "missing"); len(pods) != 1 {
		t.Errorf("%d engine pods; want 1: a failed query is not run again", len(pods))
	}
	judge(t, ns, "missing", "batch-failed", "Degraded", "none.jsonl")
}

// keyedPoison is a record whose id is not a number.
func keyedPoison() []*kgo.Record {
	return []*kgo.Record{{Key: []byte("k00"), Value: []byte(`{"id":"poison","k":"k00","seq":1}`)}}
}

// testOperatorFailover: killing the operator's pod mid-run changes nothing
// a user sees: the status goes on being updated once the new leader starts,
// and no condition flaps.
func testOperatorFailover(t *testing.T) {
	ns := namespace(t, "e2e-failover")
	apply(t, ns, sample(t))
	waitRow(t, ns, "large-trades", 2*time.Minute, row{"Phase": "Running", "Ready": "1/1", "Health": "Healthy"})
	before := query(t, ns, "large-trades")
	ready := meta.FindStatusCondition(before.Status.Conditions, "Ready")
	leader := operatorReady(t, operatorNamespace, operatorRelease, time.Minute)
	var pod corev1.Pod
	if err := k8s.Get(ctx(t, 5*time.Second), types.NamespacedName{Namespace: operatorNamespace, Name: leader}, &pod); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := k8s.Delete(ctx(t, 5*time.Second), &pod); err != nil {
		t.Fatal(err)
	}
	var phases []string
	var newLeader string
	eventually(t, "a new leader", 3*time.Minute, func() error {
		sq := query(t, ns, "large-trades")
		if p := string(sq.Status.Phase); len(phases) == 0 || phases[len(phases)-1] != p {
			phases = append(phases, p)
		}
		pods := operatorPods(t)
		if len(pods) == 0 || slices.Contains(pods, leader) {
			return fmt.Errorf("operator pods %v", pods)
		}
		newLeader = operatorReady(t, operatorNamespace, operatorRelease, time.Minute)
		return nil
	})
	timing(t, "operator pod deleted -> new leader", time.Since(start))
	rv := query(t, ns, "large-trades").ResourceVersion
	eventually(t, "the status updated by the new leader", time.Minute, func() error {
		sq := query(t, ns, "large-trades")
		if p := string(sq.Status.Phase); phases[len(phases)-1] != p {
			phases = append(phases, p)
		}
		if sq.ResourceVersion == rv {
			return fmt.Errorf("status unchanged since the failover")
		}
		return nil
	})
	if len(phases) != 1 || phases[0] != "Running" {
		t.Errorf("phases seen during the failover: %v; want Running throughout", phases)
	}
	after := meta.FindStatusCondition(query(t, ns, "large-trades").Status.Conditions, "Ready")
	if after == nil || ready == nil || after.Status != ready.Status || !after.LastTransitionTime.Equal(&ready.LastTransitionTime) {
		t.Errorf("Ready condition %+v after the failover; want it untouched, %+v", after, ready)
	}
	// And the new leader acts on changes.
	kubectl(t, "", "patch", "sq", "large-trades", "-n", ns, "--type=merge", "-p", `{"spec":{"suspend":true}}`)
	waitRow(t, ns, "large-trades", 2*time.Minute, row{"Phase": "Suspended"})
	t.Logf("leader %s replaced by %s", leader, newLeader)
}

// operatorPods lists the operator's live pods.
func operatorPods(t *testing.T) []string {
	var pods corev1.PodList
	if err := k8s.List(ctx(t, 5*time.Second), &pods, client.InNamespace(operatorNamespace)); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			names = append(names, p.Name)
		}
	}
	return names
}
