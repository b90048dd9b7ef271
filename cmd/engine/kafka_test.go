package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestKafkaCrashAtLeastOnce kills an engine with SIGKILL while it streams a
// Kafka topic into another, restarts it in the same consumer group, and
// checks that every input id reaches the output: at-least-once. Records
// written after the last commit and before the kill are written again; the
// test reports how many.
func TestKafkaCrashAtLeastOnce(t *testing.T) {
	distinct, all := kafkaCrash(t, "atLeastOnce")
	t.Logf("at-least-once across a SIGKILL: %d ids, %d records written, %d duplicates", distinct, all, all-distinct)
}

// TestKafkaCrashExactlyOnce is the crash test with delivery exactlyOnce: a
// read_committed reader sees every id exactly once.
func TestKafkaCrashExactlyOnce(t *testing.T) {
	distinct, all := kafkaCrash(t, "exactlyOnce")
	if all != distinct {
		t.Errorf("exactly-once across a SIGKILL: %d ids but %d records: %d duplicates", distinct, all, all-distinct)
	}
}

// kafkaCrash runs an engine over 100,000 records, kills it with SIGKILL
// once a tenth is written, restarts it and waits for every id in the
// output. It returns the distinct ids and the records a reader saw, read
// committed for exactlyOnce.
func kafkaCrash(t *testing.T, delivery string) (distinct, all int) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "in", "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	const n = 100_000
	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic("in"))
	if err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "k%d", i%97), Value: fmt.Appendf(nil, `{"id":%d,"k":"k%d"}`, i, i%97)})
	}
	if err := prod.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	prod.Close()

	dir := t.TempDir()
	manifest := fmt.Sprintf(`apiVersion: streaming.sluice.dev/v1alpha1
kind: StreamQuery
metadata: {name: crash}
spec:
  sources:
    - name: t
      kafka: {brokers: [%q], topic: in, group: crash, sessionTimeout: 6s}
      schema: [{name: id, type: int}, {name: k, type: string}]
  query: SELECT id, k FROM t
  sink: {kafka: {brokers: [%q], topic: out, key: k, delivery: %s, transactionInterval: 200ms}}
  runtime: {parallelism: 2, batchSize: 200}
`, brokers[0], brokers[0], delivery)
	os.WriteFile(filepath.Join(dir, "q.yaml"), []byte(manifest), 0o644)
	start := func() *exec.Cmd {
		cmd := exec.Command(engineBin, "run", "-f", "q.yaml", "--http", "")
		cmd.Dir = dir
		// The restarted engine is the same instance: it fences the killed
		// one's open transaction.
		cmd.Env = append(os.Environ(), "SLUICE_INSTANCE=crash-0")
		cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}

	// Count the output as it arrives.
	var mu sync.Mutex
	seen := map[int]int{}
	total := 0
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cons, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics("out"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	go func() {
		for ctx.Err() == nil {
			fs := cons.PollFetches(ctx)
			fs.EachRecord(func(r *kgo.Record) {
				var v struct{ ID int }
				if json.Unmarshal(r.Value, &v) == nil {
					mu.Lock()
					seen[v.ID]++
					total++
					mu.Unlock()
				}
			})
		}
	}()
	progress := func() (distinct, all int) {
		mu.Lock()
		defer mu.Unlock()
		return len(seen), total
	}
	waitFor := func(what string, cond func(distinct, all int) bool) {
		deadline := time.Now().Add(60 * time.Second)
		for d, a := progress(); !cond(d, a); d, a = progress() {
			if time.Now().After(deadline) {
				t.Fatalf("waiting for %s: %d distinct ids, %d records", what, d, a)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	first := start()
	waitFor("output before the kill", func(d, _ int) bool { return d >= n/10 })
	first.Process.Signal(syscall.SIGKILL)
	first.Wait()
	beforeRestart, _ := progress()
	if beforeRestart >= n {
		t.Fatalf("the engine finished before it was killed; the test needs more input")
	}

	second := start()
	waitFor("every id after the restart", func(d, _ int) bool { return d == n })
	second.Process.Signal(syscall.SIGTERM)
	waitExit(t, second, "SIGTERM")
	if code := second.ProcessState.ExitCode(); code != exitOK {
		t.Errorf("the restarted engine exited %d", code)
	}
	// Read on a little: a duplicate could still arrive.
	time.Sleep(500 * time.Millisecond)
	distinct, all = progress()
	t.Logf("killed after %d distinct ids", beforeRestart)
	return distinct, all
}
