package main

import (
	"bytes"
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

// TestKafkaCrashAtLeastOnce kills an engine with SIGKILL three times while
// it streams a Kafka topic into another, restarting it each time in the same
// consumer group under the same instance name (a container restarted in its
// pod), and checks that every input id reaches the output: at-least-once.
// Records written after the last commit and before a kill are written
// again; the test reports how many per crash.
func TestKafkaCrashAtLeastOnce(t *testing.T) {
	crashes := kafkaCrash(t, "atLeastOnce", 3, false)
	for i, c := range crashes {
		t.Logf("crash %d: killed after %d distinct ids; %d duplicates; the restarted engine wrote its first record %s after it started",
			i+1, c.distinctAtKill, c.duplicates, c.resumeAfter.Round(time.Millisecond))
		// A dynamic member would wait for the killed one's 30s session
		// to expire; the static member takes its partitions back at once.
		if c.resumeAfter > crashSessionTimeout/2 {
			t.Errorf("crash %d: the restarted engine took %s to write, more than half the session timeout: it did not take its partitions back as the same static member", i+1, c.resumeAfter)
		}
	}
}

// crashSessionTimeout is the crash tests' Kafka session timeout.
const crashSessionTimeout = 30 * time.Second

// TestKafkaCrashExactlyOnce is the crash test with delivery exactlyOnce: a
// read_committed reader sees every id exactly once.
func TestKafkaCrashExactlyOnce(t *testing.T) {
	for i, c := range kafkaCrash(t, "exactlyOnce", 3, false) {
		if c.duplicates != 0 {
			t.Errorf("exactly-once, crash %d: %d duplicates", i+1, c.duplicates)
		}
	}
}

// TestKafkaCrashExactlyOnceSet is the exactly-once crash test of a
// statement set whose two statements write the even and the odd ids to
// the one output topic, each in the set's transactions: a read_committed
// reader sees every id exactly once.
func TestKafkaCrashExactlyOnceSet(t *testing.T) {
	for i, c := range kafkaCrash(t, "exactlyOnce", 3, true) {
		if c.duplicates != 0 {
			t.Errorf("exactly-once set, crash %d: %d duplicates", i+1, c.duplicates)
		}
	}
}

// crash is what one SIGKILL cost.
type crash struct {
	distinctAtKill int
	// duplicates are the records written again after the restart.
	duplicates int
	// resumeAfter is how long the restarted engine took to write a record.
	resumeAfter time.Duration
}

// kafkaCrash streams 100,000 records through an engine, produced at a
// steady 25,000 records/s so that the engine is always mid-stream, and kills
// the engine with SIGKILL kills times, evenly through the input, restarting
// it after each; then it waits for every id in the output. It returns each
// crash's costs, seen by a reader that reads committed records for
// exactlyOnce. With statements, the engine runs a statement set of two
// statements, one writing the even ids, the other the odd ones.
func kafkaCrash(t *testing.T, delivery string, kills int, statements bool) []crash {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "in", "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	const n, perTick, tick = 100_000, 500, 20 * time.Millisecond
	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic("in"))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	produced := make(chan error, 1)
	go func() {
		t := time.NewTicker(tick)
		defer t.Stop()
		for i := 0; i < n; i += perTick {
			<-t.C
			recs := make([]*kgo.Record, 0, perTick)
			for id := i; id < i+perTick; id++ {
				recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "k%d", id%97), Value: fmt.Appendf(nil, `{"id":%d,"k":"k%d"}`, id, id%97)})
			}
			if err := prod.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
				produced <- err
				return
			}
		}
		produced <- nil
	}()

	dir := t.TempDir()
	sink := fmt.Sprintf("{kafka: {brokers: [%q], topic: out, key: k, delivery: %s, transactionInterval: 200ms}}", brokers[0], delivery)
	query := fmt.Sprintf("  query: SELECT id, k FROM t\n  sink: %s\n", sink)
	if statements {
		query = fmt.Sprintf(`  statements:
    - {name: evens, query: "SELECT id, k FROM t WHERE id %% 2 = 0", sink: %s}
    - {name: odds, query: "SELECT id, k FROM t WHERE id %% 2 = 1", sink: %[1]s}
`, sink)
	}
	manifest := fmt.Sprintf(`apiVersion: streaming.sluice.dev/v1alpha1
kind: StreamQuery
metadata: {name: crash}
spec:
  sources:
    - name: t
      kafka: {brokers: [%q], topic: in, group: crash, sessionTimeout: %s}
      schema: [{name: id, type: int}, {name: k, type: string}]
%s  runtime: {parallelism: 2, batchSize: 200}
`, brokers[0], crashSessionTimeout, query)
	os.WriteFile(filepath.Join(dir, "q.yaml"), []byte(manifest), 0o644)
	start := func() *exec.Cmd { return startInstance(t, dir, "crash-0") }

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
		deadline := time.Now().Add(90 * time.Second)
		for d, a := progress(); !cond(d, a); d, a = progress() {
			if time.Now().After(deadline) {
				t.Fatalf("waiting for %s: %d distinct ids, %d records", what, d, a)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	var crashes []crash
	var dupsAtKill []int // all - distinct once each kill's output settled
	engine := start()
	for k := range kills {
		waitFor(fmt.Sprintf("output before kill %d", k+1), func(d, _ int) bool { return d >= n*(k+1)/(kills+1) })
		engine.Process.Signal(syscall.SIGKILL)
		engine.Wait()
		// Read on until the output settles: the killed engine's last writes
		// may still be arriving.
		time.Sleep(300 * time.Millisecond)
		distinct, all := progress()
		dupsAtKill = append(dupsAtKill, all-distinct)
		restarted := time.Now()
		engine = start()
		waitFor(fmt.Sprintf("new output after restart %d", k+1), func(d, _ int) bool { return d > distinct || d == n })
		crashes = append(crashes, crash{distinctAtKill: distinct, resumeAfter: time.Since(restarted)})
	}
	if err := <-produced; err != nil {
		t.Fatal(err)
	}
	waitFor("every id after the last restart", func(d, _ int) bool { return d == n })
	engine.Process.Signal(syscall.SIGTERM)
	waitExit(t, engine, "SIGTERM")
	if code := engine.ProcessState.ExitCode(); code != exitOK {
		t.Errorf("the restarted engine exited %d", code)
	}
	// Read on a little: a duplicate could still arrive.
	time.Sleep(500 * time.Millisecond)
	distinct, all := progress()
	if distinct != n {
		t.Errorf("%d distinct ids; want %d", distinct, n)
	}
	// Without a crash nothing is written twice: the duplicates that arrive
	// between two kills are the first one's.
	dupsAtKill = append(dupsAtKill, all-distinct)
	for k := range crashes {
		crashes[k].duplicates = dupsAtKill[k+1] - dupsAtKill[k]
	}
	return crashes
}

// startInstance starts the engine on dir's q.yaml as the named instance.
// An engine restarted under the same name is the same instance, as a
// container restarted in its pod: it takes its partitions back as the same
// static group member, and fences the killed one's transaction. Its logs
// go to the test's output with SLUICE_TEST_LOG set, and the last of the
// test's engines' logs if the test fails.
func startInstance(t *testing.T, dir, instance string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(engineBin, "run", "-f", "q.yaml", "--http", "")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SLUICE_INSTANCE="+instance)
	var w io.Writer = logsOf(t)
	if os.Getenv("SLUICE_TEST_LOG") != "" {
		w = io.MultiWriter(w, os.Stderr)
	}
	cmd.Stdout, cmd.Stderr = io.Discard, &prefixedLines{prefix: []byte(instance + " "), w: w}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// engineLogs keeps the last lines of a test's engines' logs, to print if
// the test fails: a failure in CI, which seldom shows again, then says
// what the engines saw.
type engineLogs struct {
	mu  sync.Mutex
	buf []byte
}

// engineLogsKept bounds what engineLogs keeps, and engineLogsShown what a
// failed test prints of it.
const (
	engineLogsKept  = 256 << 10
	engineLogsShown = 96 << 10
)

// lastLines is the last whole lines of b within n bytes.
func lastLines(b []byte, n int) []byte {
	if len(b) <= n {
		return b
	}
	b = b[len(b)-n:]
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[i+1:]
	}
	return b
}

var testLogs sync.Map // *testing.T -> *engineLogs

// logsOf returns t's engine logs, which t prints if it fails.
func logsOf(t *testing.T) *engineLogs {
	l, loaded := testLogs.LoadOrStore(t, &engineLogs{})
	logs := l.(*engineLogs)
	if !loaded {
		t.Cleanup(func() {
			testLogs.Delete(t)
			if t.Failed() {
				logs.mu.Lock()
				defer logs.mu.Unlock()
				t.Logf("the engines' logs, the last %d bytes:\n%s", min(len(logs.buf), engineLogsShown), lastLines(logs.buf, engineLogsShown))
			}
		})
	}
	return logs
}

func (l *engineLogs) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, b...)
	if len(l.buf) > 2*engineLogsKept {
		l.buf = append([]byte(nil), lastLines(l.buf, engineLogsKept)...)
	}
	return len(b), nil
}

// prefixedLines writes each whole line written to it to w after prefix,
// so that the logs of several engines in one stream say whose each is.
type prefixedLines struct {
	prefix  []byte
	w       io.Writer
	partial []byte
}

func (p *prefixedLines) Write(b []byte) (int, error) {
	p.partial = append(p.partial, b...)
	var out []byte
	for {
		i := bytes.IndexByte(p.partial, '\n')
		if i < 0 {
			break
		}
		out = append(append(out, p.prefix...), p.partial[:i+1]...)
		p.partial = p.partial[i+1:]
	}
	if len(out) > 0 {
		if _, err := p.w.Write(out); err != nil {
			return 0, err
		}
	}
	p.partial = append([]byte(nil), p.partial...)
	return len(b), nil
}
