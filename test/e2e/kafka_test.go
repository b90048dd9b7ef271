package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// brokerPort is where the suite's Kafka broker (hack/kfake) listens, on the
// node address, which pods reach over their bridge.
const brokerPort = 19092

var (
	brokerOnce sync.Once
	brokerErr  error
	brokerCmd  *exec.Cmd
)

// broker starts the suite's Kafka wire-protocol broker, once, and returns
// its address.
func broker(t *testing.T) string {
	t.Helper()
	brokerOnce.Do(func() {
		bin := filepath.Join(os.TempDir(), "sluice-e2e-kfake")
		build := exec.Command("go", "build", "-o", bin, "./hack/kfake")
		build.Dir = repoRoot
		if out, err := build.CombinedOutput(); err != nil {
			brokerErr = fmt.Errorf("building hack/kfake: %v\n%s", err, out)
			return
		}
		brokerCmd = exec.Command(bin, "-host", nodeIP, "-port", fmt.Sprint(brokerPort), "-partitions", "4")
		brokerCmd.Stdout, brokerCmd.Stderr = os.Stderr, os.Stderr
		if brokerErr = brokerCmd.Start(); brokerErr != nil {
			return
		}
		for range 100 {
			if c, err := net.Dial("tcp", brokerAddr()); err == nil {
				c.Close()
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		brokerErr = fmt.Errorf("the broker does not listen on %s", brokerAddr())
	})
	if brokerErr != nil {
		t.Fatal(brokerErr)
	}
	return brokerAddr()
}

func brokerAddr() string { return net.JoinHostPort(nodeIP, fmt.Sprint(brokerPort)) }

func stopBroker() {
	if brokerCmd != nil && brokerCmd.Process != nil {
		brokerCmd.Process.Kill()
		brokerCmd.Wait()
	}
}

// fault inserts iptables rules between the pods and the broker, for the
// rest of the test or until the returned function lifts them. The rules
// live in the cluster's SLUICE-INPUT chain, which hack/cluster.sh down
// removes, so a test that dies leaves nothing behind either.
func fault(t *testing.T, rules ...[]string) (lift func()) {
	t.Helper()
	for _, r := range rules {
		args := append([]string{"-A", "SLUICE-INPUT", "-p", "tcp", "--dport", fmt.Sprint(brokerPort)}, r...)
		if out, err := exec.Command("iptables", args...).CombinedOutput(); err != nil {
			t.Fatalf("iptables %v: %v\n%s", args, err, out)
		}
	}
	var once sync.Once
	lift = func() {
		once.Do(func() {
			if out, err := exec.Command("iptables", "-F", "SLUICE-INPUT").CombinedOutput(); err != nil {
				t.Errorf("iptables -F SLUICE-INPUT: %v\n%s", err, out)
			}
		})
	}
	t.Cleanup(lift)
	return lift
}

// brokerDown makes the broker unreachable from pods: connections are reset.
func brokerDown(t *testing.T) func() {
	return fault(t, []string{"-j", "REJECT", "--reject-with", "tcp-reset"})
}

// brokerSlow lets through only a trickle of the pods' packets to the broker.
func brokerSlow(t *testing.T) func() {
	return fault(t,
		[]string{"-m", "limit", "--limit", "30/second", "--limit-burst", "30", "-j", "ACCEPT"},
		[]string{"-j", "DROP"})
}

func kafkaClient(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(broker(t))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func createTopic(t *testing.T, name string, partitions int32) {
	t.Helper()
	if _, err := kadm.NewClient(kafkaClient(t)).CreateTopic(ctx(t, 10*time.Second), partitions, 1, nil, name); err != nil {
		t.Fatalf("creating topic %s: %v", name, err)
	}
}

// keyed makes records from to to of a stream over 40 keys: each value
// carries its id, key and sequence number within the key.
func keyed(from, to int) []*kgo.Record {
	recs := make([]*kgo.Record, 0, to-from)
	for i := from; i < to; i++ {
		k := fmt.Sprintf("k%02d", i%40)
		recs = append(recs, &kgo.Record{Key: []byte(k), Value: fmt.Appendf(nil, `{"id":%d,"k":"%s","seq":%d}`, i, k, i/40+1)})
	}
	return recs
}

func produce(t *testing.T, topic string, recs []*kgo.Record) {
	t.Helper()
	cl := kafkaClient(t, kgo.DefaultProduceTopic(topic))
	if err := cl.ProduceSync(ctx(t, 60*time.Second), recs...).FirstErr(); err != nil {
		t.Fatalf("producing to %s: %v", topic, err)
	}
}

// verifier reads a topic from its start, as a consumer that reads committed
// records, and checks what it reads.
type verifier struct {
	mu     sync.Mutex
	ids    map[int]int // id → times seen
	maxSeq map[string]int
	total  int
	order  []string // per-key order violations
	cancel context.CancelFunc
	done   chan struct{}
}

func verify(t *testing.T, topic string) *verifier {
	t.Helper()
	cl := kafkaClient(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	c, cancel := context.WithCancel(context.Background())
	v := &verifier{ids: map[int]int{}, maxSeq: map[string]int{}, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(v.done)
		for c.Err() == nil {
			cl.PollFetches(c).EachRecord(v.take)
		}
	}()
	t.Cleanup(func() { cancel(); <-v.done })
	return v
}

// take checks one output record. Within a key the output may repeat records
// (at-least-once, after a restart), but never skip one: a record with a
// sequence number beyond the highest seen must be the next one.
func (v *verifier) take(r *kgo.Record) {
	var rec struct {
		ID  int    `json:"id"`
		K   string `json:"k"`
		Seq int    `json:"seq"`
	}
	if err := json.Unmarshal(r.Value, &rec); err != nil {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.ids[rec.ID]++
	v.total++
	if rec.Seq > v.maxSeq[rec.K] {
		if rec.Seq != v.maxSeq[rec.K]+1 && len(v.order) < 10 {
			v.order = append(v.order, fmt.Sprintf("key %s: seq %d after %d", rec.K, rec.Seq, v.maxSeq[rec.K]))
		}
		v.maxSeq[rec.K] = rec.Seq
	}
}

// counts returns the distinct ids and the records read.
func (v *verifier) counts() (distinct, total int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.ids), v.total
}

// waitAll waits for ids 0 to n-1 and returns the duplicates read; it fails
// on a lost record or a record out of order within its key.
func (v *verifier) waitAll(t *testing.T, n int, timeout time.Duration) int {
	t.Helper()
	eventually(t, fmt.Sprintf("%d distinct ids in the output", n), timeout, func() error {
		if d, total := v.counts(); d < n {
			return fmt.Errorf("%d distinct ids in %d records", d, total)
		}
		return nil
	})
	time.Sleep(time.Second) // a duplicate may still be on its way
	v.mu.Lock()
	defer v.mu.Unlock()
	var missing []string
	for id := range n {
		if v.ids[id] == 0 && len(missing) < 10 {
			missing = append(missing, fmt.Sprint(id))
		}
	}
	if len(missing) > 0 {
		t.Errorf("ids missing from the output: %s", strings.Join(missing, ", "))
	}
	if len(v.order) > 0 {
		t.Errorf("records out of order within their key: %s", strings.Join(v.order, "; "))
	}
	return v.total - len(v.ids)
}

// kafkaQuery is a StreamQuery from topic in to topic out over the broker.
func kafkaQuery(name, in, out, delivery string) string {
	return fmt.Sprintf(`apiVersion: streaming.sluice.dev/v1alpha1
kind: StreamQuery
metadata: {name: %s}
spec:
  sources:
    - name: t
      kafka: {brokers: [%q], topic: %s, sessionTimeout: 30s}
      schema: [{name: id, type: int}, {name: k, type: string}, {name: seq, type: int}]
  query: SELECT id, k, seq FROM t
  sink:
    kafka: {brokers: [%q], topic: %s, key: k, delivery: %s, transactionInterval: 200ms}
  errorPolicy: {strategy: FailFast}
  runtime: {parallelism: 2, batchSize: 100}
  resources:
    requests: {cpu: 50m, memory: 64Mi}
    limits: {memory: 512Mi}
`, name, brokerAddr(), in, brokerAddr(), out, delivery)
}
