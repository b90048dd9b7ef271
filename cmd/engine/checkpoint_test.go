package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	kafkaconn "github.com/sluice-dev/sluice/runtime/connector/kafka"
)

// crashTrade is a record of the stateful crash tests' input.
type crashTrade struct {
	sym  string
	ts   time.Time
	q    int64
	late bool // 10 s behind: the watermark drops it
}

// crashInput is the stateful crash tests' input: 40,000 trades over 20
// symbols, 40 s of event time, a millisecond apart, with a record 10 s late
// after every 100th from the 15,000th on: 250 late records, which the
// watermark drops, but which an engine restarted without its watermark
// would take.
func crashInput() []crashTrade {
	t0 := time.Date(2024, 1, 2, 9, 30, 0, 0, time.UTC)
	var in []crashTrade
	for i := range 40_000 {
		tr := crashTrade{sym: fmt.Sprintf("S%02d", i%20), ts: t0.Add(time.Duration(i) * time.Millisecond), q: int64(i%7 + 1)}
		in = append(in, tr)
		if i >= 15_000 && i%100 == 0 {
			in = append(in, crashTrade{sym: tr.sym, ts: tr.ts.Add(-10 * time.Second), q: 1000, late: true})
		}
	}
	return in
}

// TestKafkaCrashWindowsRestored is the crash scenario with
// checkpoints, for a per-second count and sum by symbol: every window's
// row must equal the one computed from the input without the late records
// (a row written again after a crash must be the same row), and every
// window must be written. Without spec.state the test fails: a restarted
// engine, which has lost the watermark, opens closed windows with the late
// records it reads again.
func TestKafkaCrashWindowsRestored(t *testing.T) {
	crashWindows(t, crashDirectory)
}

// TestKafkaCrashWindowsExactlyOnce is TestKafkaCrashWindowsRestored with
// exactly-once delivery: the checkpoints go to the Kafka topic in the
// transaction of the results and offsets, and a read_committed consumer
// sees every window once.
func TestKafkaCrashWindowsExactlyOnce(t *testing.T) {
	crashWindows(t, crashExactlyOnce)
}

// TestKafkaCrashWindowsExactlyOnceSet is TestKafkaCrashWindowsExactlyOnce
// of a statement set: the windows, and the trades of q above 90 to
// another topic, both exactly once. The windows' state is checkpointed at
// each of the set's transactions, which commit it with both statements'
// results and the offsets: every window's row is written once.
func TestKafkaCrashWindowsExactlyOnceSet(t *testing.T) {
	crashWindows(t, crashExactlyOnceSet)
}

// TestKafkaRebalanceWindows is TestKafkaCrashWindowsRestored on two
// engines: B joins, A leaves, A joins again, and each time the partitions
// that move take their windows' state with them, so every window's row is
// right (some written again, equal).
func TestKafkaRebalanceWindows(t *testing.T) {
	crashWindows(t, crashRebalance)
}

// TestKafkaRebalanceWindowsExactlyOnce is TestKafkaRebalanceWindows with
// exactly-once delivery, and then B killed and restarted: each engine
// commits its partitions' checkpoints, offsets and results in one
// transaction, and a transaction a rebalance aborts takes every partition
// of the engine back to its last commit, so a read_committed consumer sees
// every window once.
func TestKafkaRebalanceWindowsExactlyOnce(t *testing.T) {
	crashWindows(t, crashRebalanceExactlyOnce)
}

// TestKafkaRebalanceMovingExactlyOnce is TestKafkaRebalanceMoving with
// exactly-once delivery: every trade's moving sum is written once.
func TestKafkaRebalanceMovingExactlyOnce(t *testing.T) {
	crashMoving(t, crashRebalanceExactlyOnce)
}

// TestKafkaRebalanceMoving is TestKafkaRebalanceWindows for the moving
// sum: every trade's frames after a partition moved are the frames it
// would have had on one engine.
func TestKafkaRebalanceMoving(t *testing.T) {
	crashMoving(t, crashRebalance)
}

// TestKafkaRepartitionWindows is TestKafkaRebalanceWindows over a topic
// keyed by trade: three engines, joining, crashing and leaving, repartition
// the rows by symbol, and every window's row is the one engine's, with its
// full count (some written again, equal), late records dropped as one
// engine drops them, and rows an engine wrote again to the repartition
// topic after its crash counted once.
func TestKafkaRepartitionWindows(t *testing.T) {
	crashWindows(t, crashRepartition)
}

// TestKafkaRepartitionMoving is TestKafkaRepartitionWindows for the moving
// sum: every trade's frame is the one engine's.
func TestKafkaRepartitionMoving(t *testing.T) {
	crashMoving(t, crashRepartition)
}

// TestKafkaRepartitionWindowsExactlyOnce is TestKafkaRepartitionWindows
// with exactly-once delivery: the rows written to the repartition topic
// commit with the offsets read, and every window is written once.
func TestKafkaRepartitionWindowsExactlyOnce(t *testing.T) {
	crashWindows(t, crashRepartitionExactlyOnce)
}

// TestKafkaRepartitionMovingExactlyOnce is TestKafkaRepartitionMoving with
// exactly-once delivery: every trade's moving sum is written once.
func TestKafkaRepartitionMovingExactlyOnce(t *testing.T) {
	crashMoving(t, crashRepartitionExactlyOnce)
}

// crashWindows is the windows' crash test, with checkpoints kept as mode
// says.
func crashWindows(t *testing.T, mode crashMode) {
	crashWindowed(t, mode, "TUMBLE(t, ts, INTERVAL '1' SECOND)", func(ts time.Time) []time.Time { return []time.Time{ts.Truncate(time.Second)} })
}

// crashWindowed is the crash test of a per-window count and sum by symbol
// over the windows of from, starts giving the windows a trade is in: every
// window's row must be that of the input without the late records.
func crashWindowed(t *testing.T, mode crashMode, from string, starts func(time.Time) []time.Time) {
	want := map[string]string{}
	sums := map[string][2]int64{}
	for _, tr := range crashInput() {
		if tr.late {
			continue
		}
		for _, start := range starts(tr.ts) {
			k := start.Format(time.TimeOnly) + " " + tr.sym
			s := sums[k]
			sums[k] = [2]int64{s[0] + 1, s[1] + tr.q}
		}
	}
	for k, s := range sums {
		want[k] = fmt.Sprintf("n=%d total=%d", s[0], s[1])
	}
	kafkaCrashStateful(t, mode, "SELECT window_start, sym, count(*) AS n, sum(q) AS total FROM "+from+" GROUP BY window_start, window_end, sym",
		want, func(b []byte) (string, string, bool) {
			var row struct {
				WindowStart time.Time `json:"window_start"`
				Sym         string
				N, Total    int64
			}
			if err := json.Unmarshal(b, &row); err != nil || row.Sym == "END" {
				return "", "", false
			}
			return row.WindowStart.Format(time.TimeOnly) + " " + row.Sym, fmt.Sprintf("n=%d total=%d", row.N, row.Total), true
		})
}

// TestKafkaCrashMovingRestored is the crash scenario for a 5-second moving
// sum by symbol: every trade's row must carry the sum of its symbol's
// trades of the 5 s before it, late records left out, whatever the kills.
// Without spec.state a restarted engine would start its frames empty (the
// issue measured 79,368-99,954 wrong rows of 200,000) and take late
// records into them. The checkpoints go to the query's Kafka topic.
func TestKafkaCrashMovingRestored(t *testing.T) {
	crashMoving(t, crashKafkaTopic)
}

// TestKafkaCrashMovingExactlyOnce is TestKafkaCrashMovingRestored with
// exactly-once delivery: every trade's row is written once.
func TestKafkaCrashMovingExactlyOnce(t *testing.T) {
	crashMoving(t, crashExactlyOnce)
}

// crashMoving is the moving sum's crash test, with checkpoints kept as
// mode says.
func crashMoving(t *testing.T, mode crashMode) {
	want := map[string]string{}
	bySym := map[string][]crashTrade{}
	for _, tr := range crashInput() {
		if tr.late {
			continue
		}
		prev := bySym[tr.sym]
		sum := tr.q
		for i := len(prev) - 1; i >= 0 && tr.ts.Sub(prev[i].ts) <= 5*time.Second; i-- {
			sum += prev[i].q
		}
		bySym[tr.sym] = append(prev, tr)
		want[tr.ts.Format(time.RFC3339Nano)] = fmt.Sprintf("%s s5=%d", tr.sym, sum)
	}
	kafkaCrashStateful(t, mode, "SELECT sym, ts, sum(q) OVER (PARTITION BY sym ORDER BY ts RANGE BETWEEN INTERVAL '5' SECOND PRECEDING AND CURRENT ROW) AS s5 FROM t",
		want, func(b []byte) (string, string, bool) {
			var row struct {
				Sym string
				TS  time.Time
				S5  int64
			}
			if err := json.Unmarshal(b, &row); err != nil || row.Sym == "END" {
				return "", "", false
			}
			return row.TS.Format(time.RFC3339Nano), fmt.Sprintf("%s s5=%d", row.Sym, row.S5), true
		})
}

// crashMode is where the crash tests keep checkpoints, and how they
// deliver results.
type crashMode int

// rebalances says the mode runs several engines, which join and leave,
// rather than kill one.
func (m crashMode) rebalances() bool {
	return m == crashRebalance || m == crashRebalanceExactlyOnce || m.repartitions()
}

// repartitions says the mode runs three engines that repartition the rows.
func (m crashMode) repartitions() bool {
	return m == crashRepartition || m == crashRepartitionExactlyOnce
}

// exactlyOnce says the mode delivers exactly once.
func (m crashMode) exactlyOnce() bool {
	return m == crashExactlyOnce || m == crashRebalanceExactlyOnce || m == crashRepartitionExactlyOnce || m == crashExactlyOnceSet
}

const (
	crashDirectory   crashMode = iota // spec.state.dir, at-least-once
	crashKafkaTopic                   // the group's checkpoint topic, at-least-once
	crashExactlyOnce                  // the checkpoint topic, in the results' transactions
	// Two engines (replicas: 2) sharing the partitions, each partition's
	// state in the checkpoint topic: instead of kills, B joins, A leaves,
	// A joins again, each a rebalance, and the state moves with the
	// partitions.
	crashRebalance
	// crashRebalance with exactly-once delivery, and then B is killed
	// and restarted.
	crashRebalanceExactlyOnce
	// Three engines (replicas: 3) over a topic keyed by trade, not by the
	// state's key: the engines repartition the rows by symbol through the
	// group's repartition topic. A runs, B joins, C joins, A is killed and
	// restarted, B leaves, and the query is scaled down to one engine.
	crashRepartition
	// crashRepartition with exactly-once delivery.
	crashRepartitionExactlyOnce
	// crashExactlyOnce of a statement set: the query, and a filter of the
	// trades to another topic, both exactly once, the query's state
	// checkpointed at each of the set's transactions.
	crashExactlyOnceSet
)

// crashJob is what a Kafka crash test runs: the manifest's sources, the
// records produced to their topics, in order, the query, and the rows it
// must write, by the key and value rowOf takes from a row.
type crashJob struct {
	// sources is the manifest's list of sources, given the brokers'
	// address.
	sources func(broker string) string
	// topics are the input topics, 4 partitions each; a record far ahead
	// in event time goes to each partition at the end.
	topics  []string
	records []*kgo.Record
	query   string
	want    map[string]string
	rowOf   func([]byte) (key, value string, ok bool)
}

// tradesJob is the crash job of query over crashInput, produced to the
// topic in as source t, keyed (and so partitioned) by symbol.
func tradesJob(query string, want map[string]string, rowOf func([]byte) (key, value string, ok bool)) crashJob {
	return crashJob{
		sources: func(broker string) string {
			return fmt.Sprintf(`    - name: t
      kafka: {brokers: [%q], topic: in, group: crash, sessionTimeout: %s, partitionedBy: [sym]}
      schema: [{name: sym, type: string}, {name: ts, type: timestamp}, {name: q, type: int}]
      eventTime: {column: ts}
`, broker, crashSessionTimeout)
		},
		topics: []string{"in"}, records: tradeRecords("in", crashInput()),
		query: query, want: want, rowOf: rowOf,
	}
}

// tradeRecords are the records of trades on topic, keyed by symbol.
func tradeRecords(topic string, trades []crashTrade) []*kgo.Record {
	recs := make([]*kgo.Record, 0, len(trades))
	for _, tr := range trades {
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(tr.sym), Value: fmt.Appendf(nil, `{"sym":%q,"ts":%q,"q":%d}`, tr.sym, tr.ts.Format(time.RFC3339Nano), tr.q)})
	}
	return recs
}

// kafkaCrashStateful is kafkaCrashJob of tradesJob(query, want, rowOf).
func kafkaCrashStateful(t *testing.T, mode crashMode, query string, want map[string]string, rowOf func([]byte) (key, value string, ok bool)) {
	job := tradesJob(query, want, rowOf)
	if mode.repartitions() {
		// Keyed by trade: a symbol's trades are in every partition.
		sources := job.sources
		job.sources = func(broker string) string { return strings.Replace(sources(broker), ", partitionedBy: [sym]", "", 1) }
		for i, r := range job.records {
			r.Key = strconv.AppendInt(nil, int64(i), 10)
		}
	}
	kafkaCrashJob(t, mode, job)
}

// kafkaCrashJob produces the job's records, 4 partitions a topic, at
// 10,000 records/s, to Kafka topics that a real engine reads with the
// job's query and spec.state as mode says, writing to another; it SIGKILLs
// the engine three times, at a quarter, half and three quarters of the
// rows, restarting it each time as the same instance, and checks every row
// the engine wrote against the job's. A row written again must be equal,
// and with exactly-once, read committed, there must be none; every row
// wanted must be written.
func kafkaCrashJob(t *testing.T, mode crashMode, job crashJob) {
	want, rowOf := job.want, job.rowOf
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, append(job.topics, "out", "big")...))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	perTick, tick := 200, 20*time.Millisecond
	if mode.rebalances() {
		perTick = 50 // 16 s of input: a rebalance takes seconds
	}
	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	recs := job.records
	produced := make(chan error, 1)
	go func() {
		tk := time.NewTicker(tick)
		defer tk.Stop()
		for i := 0; i < len(recs); i += perTick {
			<-tk.C
			if err := prod.ProduceSync(context.Background(), recs[i:min(i+perTick, len(recs))]...).FirstErr(); err != nil {
				produced <- err
				return
			}
		}
		// A record far ahead on every partition releases the last rows.
		end, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err != nil {
			produced <- err
			return
		}
		defer end.Close()
		for _, topic := range job.topics {
			for p := range int32(4) {
				r := &kgo.Record{Topic: topic, Partition: p, Value: fmt.Appendf(nil, `{"sym":"END","ts":"2024-01-02T11:00:00Z","q":0}`)}
				if err := end.ProduceSync(context.Background(), r).FirstErr(); err != nil {
					produced <- err
					return
				}
			}
		}
		produced <- nil
	}()

	dir := t.TempDir()
	delivery, stateDir, replicas := "", "", ""
	consumeOpts := []kgo.Opt{kgo.SeedBrokers(brokers...), kgo.ConsumeTopics("out"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}
	switch mode {
	case crashDirectory:
		stateDir = fmt.Sprintf("dir: %q, ", filepath.Join(dir, "state"))
	case crashExactlyOnce, crashExactlyOnceSet:
		delivery = ", delivery: exactlyOnce"
		consumeOpts = append(consumeOpts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	case crashRebalance:
		replicas = "\n  replicas: 2"
	case crashRebalanceExactlyOnce:
		delivery = ", delivery: exactlyOnce"
		consumeOpts = append(consumeOpts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
		replicas = "\n  replicas: 2"
	case crashRepartition:
		replicas = "\n  replicas: 3"
	case crashRepartitionExactlyOnce:
		delivery = ", delivery: exactlyOnce"
		consumeOpts = append(consumeOpts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
		replicas = "\n  replicas: 3"
	}
	result := fmt.Sprintf(`  query: %q
  sink: {kafka: {brokers: [%q], topic: out, key: sym%s}}
`, job.query, brokers[0], delivery)
	if mode == crashExactlyOnceSet {
		result = fmt.Sprintf(`  statements:
    - name: rows
      query: %q
      sink: {kafka: {brokers: [%q], topic: out, key: sym%s}}
    - name: big
      query: "SELECT sym, ts, q FROM t WHERE q > 90"
      sink: {kafka: {brokers: [%q], topic: big%s}}
`, job.query, brokers[0], delivery, brokers[0], delivery)
	}
	manifest := fmt.Sprintf(`apiVersion: streaming.sluice.dev/v1alpha1
kind: StreamQuery
metadata: {name: crash}
spec:
  sources:
%s%s  state: {%scheckpointInterval: 200ms}%s
`, job.sources(brokers[0]), result, stateDir, replicas)
	os.WriteFile(filepath.Join(dir, "q.yaml"), []byte(manifest), 0o644)
	start := func() *exec.Cmd { return startInstance(t, dir, "crash-0") }

	var mu sync.Mutex
	seen := map[string]int{}
	// Where each row was written: a row written twice, exactly once,
	// names its records, to find their transactions in the engines' logs.
	writes := map[string][]string{}
	began := time.Now()
	var wrong []string
	rows := 0
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cons, err := kgo.NewClient(consumeOpts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	go func() {
		for ctx.Err() == nil {
			cons.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
				k, v, ok := rowOf(r.Value)
				if !ok {
					return
				}
				mu.Lock()
				defer mu.Unlock()
				rows++
				seen[k]++
				writes[k] = append(writes[k], fmt.Sprintf("partition %d offset %d producer %d/%d at %.3fs", r.Partition, r.Offset, r.ProducerID, r.ProducerEpoch, time.Since(began).Seconds()))
				if w := want[k]; w != v {
					wrong = append(wrong, fmt.Sprintf("%s: %s, want %s", k, v, w))
				}
			})
		}
	}()
	written := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(seen)
	}
	waitFor := func(what string, cond func(int) bool) {
		deadline := time.Now().Add(90 * time.Second)
		for w := written(); !cond(w); w = written() {
			if time.Now().After(deadline) {
				mu.Lock()
				var missing []string
				for k := range want {
					if seen[k] == 0 {
						missing = append(missing, k)
					}
				}
				mu.Unlock()
				slices.Sort(missing)
				t.Fatalf("waiting for %s: %d of %d rows; missing %d, from %v to %v", what, w, len(want), len(missing), missing[:min(len(missing), 3)], missing[max(len(missing)-3, 0):])
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	engines := []*exec.Cmd{start()}
	if mode.rebalances() {
		// Each join is waited for until every engine owns partitions: of
		// each input topic, and with repartitioning of the repartition
		// topic too, each through a member of its own.
		membersPerEngine := len(job.topics)
		if mode.repartitions() {
			membersPerEngine++
		}
		shared := func(what string, engines int) { waitShared(t, prod, "crash", engines*membersPerEngine, what) }
		waitFor("rows before B joins", func(w int) bool { return w >= len(want)/5 })
		engines = append(engines, startInstance(t, dir, "crash-1"))
		shared("B joins", 2)
		at := written()
		waitFor("rows on two engines", func(w int) bool { return w >= at+len(want)/10 })
		if mode.repartitions() {
			engines = append(engines, startInstance(t, dir, "crash-2"))
			shared("C joins", 3)
			at = written()
			waitFor("rows on three engines", func(w int) bool { return w >= at+len(want)/10 })
			// A crashes and comes back: its rows since its last commit
			// are written to the repartition topic again.
			engines[0].Process.Signal(syscall.SIGKILL)
			engines[0].Wait()
			engines[0] = start()
			at = written()
			waitFor("rows after A's crash", func(w int) bool { return w >= at+len(want)/10 })
			if mode == crashRepartition {
				// At least once, the engines read the whole input,
				// ends included, before the scale-down below: the
				// last engine then has no record of the upstream
				// partitions to read, and learns their ends from the
				// marks alone. (A mark not written before its offsets
				// committed lost the ends, 1 run in 10 in CI.) Exactly
				// once, the last engine reads the rest.
				if err := <-produced; err != nil {
					t.Fatal(err)
				}
				produced <- nil
			}
			engines[1].Process.Signal(syscall.SIGTERM)
			waitExit(t, engines[1], "SIGTERM")
			engines = slices.Delete(engines, 1, 2)
			shared("B leaves", 2)
			at = written()
			waitFor("rows after B left", func(w int) bool { return w > at || w == len(want) })
			if mode == crashRepartition {
				time.Sleep(time.Second) // the engines' marks of the ends, before they stop
			}
			// Scaled down to one engine, which would read the source
			// directly: it reads on through the repartition topic, where
			// the rows not yet aggregated and the partitions' state are.
			for _, e := range engines {
				e.Process.Signal(syscall.SIGTERM)
				waitExit(t, e, "SIGTERM")
			}
			os.WriteFile(filepath.Join(dir, "q.yaml"), []byte(strings.Replace(manifest, replicas, "", 1)), 0o644)
			engines = []*exec.Cmd{start()}
		} else {
			engines[0].Process.Signal(syscall.SIGTERM)
			waitExit(t, engines[0], "SIGTERM")
			at = written()
			waitFor("rows on B alone", func(w int) bool { return w >= at+len(want)/10 })
			engines[0] = start()
			shared("A joins again", 2)
			if mode == crashRebalanceExactlyOnce {
				// B crashes, a transaction open, and comes back: it
				// fences that transaction, which aborts, and its
				// partitions go back to their last committed checkpoints.
				at = written()
				waitFor("rows after A joined again", func(w int) bool { return w >= at+len(want)/20 })
				engines[1].Process.Signal(syscall.SIGKILL)
				engines[1].Wait()
				engines[1] = startInstance(t, dir, "crash-1")
			}
		}
	} else {
		for k := range 3 {
			waitFor(fmt.Sprintf("rows before kill %d", k+1), func(w int) bool { return w >= len(want)*(k+1)/4 })
			engines[0].Process.Signal(syscall.SIGKILL)
			engines[0].Wait()
			if mode == crashExactlyOnceSet {
				checkpointCommitted(t, brokers, "crash", "crash.checkpoints.rows", job.topics[0])
			}
			engines[0] = start()
		}
	}
	if err := <-produced; err != nil {
		t.Fatal(err)
	}
	waitFor("every row", func(w int) bool { return w == len(want) })
	for _, e := range engines {
		e.Process.Signal(syscall.SIGTERM)
		waitExit(t, e, "SIGTERM")
	}
	if mode == crashExactlyOnceSet {
		checkpointsTransactional(t, brokers, "crash.checkpoints.rows")
	}
	// Every input record is committed, in the group, for each topic:
	// a restart would read none again.
	offsets, err := kadm.NewClient(prod).FetchOffsets(context.Background(), "crash")
	if err == nil {
		err = offsets.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	committed := 0
	for _, topic := range job.topics {
		for p := range int32(4) {
			if o, ok := offsets.Lookup(topic, p); ok {
				committed += int(o.At)
			}
		}
	}
	if committed < len(job.records) {
		t.Errorf("the group committed %d of the %d records of %v: a restart would read %d again", committed, len(job.records), job.topics, len(job.records)-committed)
	}
	if mode.repartitions() {
		// The engines deleted the repartition topic's records their
		// group was past.
		starts, err := kadm.NewClient(prod).ListStartOffsets(context.Background(), "crash.repartition.0")
		if err == nil {
			err = starts.Error()
		}
		if err != nil {
			t.Fatal(err)
		}
		starts.Each(func(o kadm.ListedOffset) {
			if o.Offset <= 0 {
				t.Errorf("partition %d of the repartition topic begins at %d: its records read were not deleted", o.Partition, o.Offset)
			}
		})
	}
	time.Sleep(300 * time.Millisecond) // a row written late would still arrive
	mu.Lock()
	defer mu.Unlock()
	switch {
	case len(wrong) > 0:
		t.Errorf("%d rows differ from the input's, e.g. %s", len(wrong), wrong[0])
	case mode.exactlyOnce() && rows != len(seen):
		var again []string
		for k, n := range seen {
			if n > 1 {
				again = append(again, fmt.Sprintf("%s: %s", k, strings.Join(writes[k], "; ")))
			}
		}
		slices.Sort(again)
		t.Errorf("%d rows written for %d distinct: exactly-once wrote %d again (the test began at %s):\n%s", rows, len(seen), rows-len(seen), began.UTC().Format(time.RFC3339Nano), strings.Join(again[:min(len(again), 8)], "\n"))
	default:
		what := "3 kills"
		switch mode {
		case crashRebalance, crashRebalanceExactlyOnce, crashRepartition, crashRepartitionExactlyOnce:
			what = "3 rebalances"
		}
		t.Logf("%d distinct rows, %d written: %d written again across %s, all equal", len(seen), rows, rows-len(seen), what)
	}
}

// checkpointCommitted checks that the latest checkpoint in topic, read
// committed, holds the state as of the offsets the group committed of
// input: each partition's last record in it is the one before the
// group's offset. A statement set's checkpoints commit so, in the
// transactions of the results and offsets (connector.RoundTransaction),
// whenever the engine is killed. It is quick, since the engine waits
// for it: a restart after a longer wait has a backlog to read, in
// another order across partitions, in which the input's late records
// are no longer late.
func checkpointCommitted(t *testing.T, brokers []string, group, topic, input string) {
	t.Helper()
	adm, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	offsets, err := kadm.NewClient(adm).FetchOffsets(context.Background(), group)
	if err == nil {
		err = offsets.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	store, err := kafkaconn.OpenCheckpointStore(topic, []kgo.Opt{kgo.SeedBrokers(brokers...)}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	chain, err := store.Latest(context.Background())
	if err != nil || chain == nil {
		t.Fatalf("the latest checkpoint in %s: %v, %v", topic, chain, err)
	}
	for _, part := range chain.Last().Partitions {
		o, ok := offsets.Lookup(input, part.Partition)
		if !ok && part.Offset < 0 {
			continue
		}
		if !ok || o.At != part.Offset+1 {
			t.Errorf("checkpoint %d holds partition %d of %s up to offset %d; the group committed %d (%v): they commit apart", chain.Last().ID, part.Partition, input, part.Offset, o.At, ok)
		}
	}
}

// checkpointsTransactional checks that every record of topic, a statement
// set's checkpoints, was written in a transaction: one written apart is
// read at once, ahead of the offsets and results it goes with.
func checkpointsTransactional(t *testing.T, brokers []string, topic string) {
	t.Helper()
	cons, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	records := 0
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fetches := cons.PollFetches(ctx)
		cancel()
		if fetches.NumRecords() == 0 {
			break
		}
		fetches.EachRecord(func(r *kgo.Record) {
			records++
			if !r.Attrs.IsTransactional() {
				t.Errorf("a record of %s at offset %d written outside a transaction", topic, r.Offset)
			}
		})
	}
	if records == 0 {
		t.Errorf("no record in %s", topic)
	}
}

// TestFileCrashMovingExact is the crash test of the local store: a file
// source, a file sink and the state in a directory. The engine is
// SIGKILLed three times, each once it has written a part of the output and
// saved a checkpoint since it started, and restarted; the output file must
// then hold every trade's 5-second moving sum once, each equal to the sum
// over the input without its late records: the restart restores the state,
// reads the file from after the checkpoint's line, and cuts the output
// back to where the checkpoint left it. Without the state the sums of the
// first 5 s after a restart are short; without the cut the output holds
// rows twice.
func TestFileCrashMovingExact(t *testing.T) {
	n := 1_000_000
	if raceEnabled {
		n = 200_000 // the race detector slows the engine tenfold
	}
	dir := t.TempDir()
	t0 := time.Date(2024, 1, 2, 9, 30, 0, 0, time.UTC)
	var in []byte
	want := map[string]string{}
	bySym := map[string][]crashTrade{}
	for i := range n {
		tr := crashTrade{sym: fmt.Sprintf("S%02d", i%20), ts: t0.Add(time.Duration(i) * time.Millisecond), q: int64(i%7 + 1)}
		if i >= 20_000 && i%100 == 0 {
			late := crashTrade{sym: tr.sym, ts: tr.ts.Add(-10 * time.Second), q: 1000}
			in = fmt.Appendf(in, `{"sym":%q,"ts":%q,"q":%d}`+"\n", late.sym, late.ts.Format(time.RFC3339Nano), late.q)
		}
		in = fmt.Appendf(in, `{"sym":%q,"ts":%q,"q":%d}`+"\n", tr.sym, tr.ts.Format(time.RFC3339Nano), tr.q)
		prev := bySym[tr.sym]
		sum := tr.q
		for j := len(prev) - 1; j >= 0 && tr.ts.Sub(prev[j].ts) <= 5*time.Second; j-- {
			sum += prev[j].q
		}
		// Only the 5 s before matter from here on.
		for len(prev) > 0 && tr.ts.Sub(prev[0].ts) > 5*time.Second {
			prev = prev[1:]
		}
		bySym[tr.sym] = append(prev, tr)
		want[tr.ts.Format(time.RFC3339Nano)] = fmt.Sprintf("%s s5=%d", tr.sym, sum)
	}
	if err := os.WriteFile(filepath.Join(dir, "trades.jsonl"), in, 0o644); err != nil {
		t.Fatal(err)
	}
	stateDir := filepath.Join(dir, "state")
	manifest := fmt.Sprintf(`apiVersion: streaming.sluice.dev/v1alpha1
kind: StreamQuery
metadata: {name: file-crash}
spec:
  sources:
    - name: t
      file: {path: trades.jsonl}
      schema: [{name: sym, type: string}, {name: ts, type: timestamp}, {name: q, type: int}]
      eventTime: {column: ts, maxOutOfOrderness: 1s}
  query: "SELECT sym, ts, sum(q) OVER (PARTITION BY sym ORDER BY ts RANGE BETWEEN INTERVAL '5' SECOND PRECEDING AND CURRENT ROW) AS s5 FROM t"
  sink: {file: {path: out.jsonl}}
  state: {dir: %q, checkpointInterval: 100ms}
`, stateDir)
	if err := os.WriteFile(filepath.Join(dir, "q.yaml"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	outPath := filepath.Join(dir, "out.jsonl")
	outSize := func() int64 {
		fi, err := os.Stat(outPath)
		if err != nil {
			return 0
		}
		return fi.Size()
	}
	checkpoints := func() int {
		entries, _ := os.ReadDir(stateDir)
		return len(entries)
	}
	lastCheckpoint := func() string {
		entries, _ := os.ReadDir(stateDir)
		if len(entries) == 0 {
			return ""
		}
		return entries[len(entries)-1].Name()
	}
	// The output's size once complete, near enough: a row is about 60
	// bytes.
	full := int64(n) * 60
	killed := 0
	for k := range 3 {
		engine := startInstance(t, dir, "file-crash")
		before := lastCheckpoint()
		exited := make(chan struct{})
		go func() { engine.Wait(); close(exited) }()
		deadline := time.Now().Add(2 * time.Minute)
		for {
			select {
			case <-exited:
			default:
				if outSize() < full*int64(k+1)/4 || checkpoints() == 0 || lastCheckpoint() == before {
					if time.Now().After(deadline) {
						t.Fatalf("kill %d: the output did not reach %d bytes", k+1, full*int64(k+1)/4)
					}
					time.Sleep(time.Millisecond)
					continue
				}
				engine.Process.Signal(syscall.SIGKILL)
				<-exited
				killed++
			}
			break
		}
	}
	if killed == 0 {
		t.Fatalf("the engine finished every run before a kill: the test killed nothing")
	}
	engine := startInstance(t, dir, "file-crash")
	waitExit(t, engine, "the end of the input")
	if code := engine.ProcessState.ExitCode(); code != exitOK {
		t.Fatalf("the last run exited %d", code)
	}
	out, err := os.ReadFile(outPath)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	rows, wrong := 0, 0
	var example string
	for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		var row struct {
			Sym string
			TS  time.Time
			S5  int64
		}
		if err := json.Unmarshal([]byte(line), &row); err != nil {
			t.Fatalf("output row %d: %v: %s", rows+1, err, line)
		}
		rows++
		k := row.TS.Format(time.RFC3339Nano)
		seen[k] = true
		if got := fmt.Sprintf("%s s5=%d", row.Sym, row.S5); got != want[k] {
			wrong++
			example = fmt.Sprintf("%s: %s, want %s", k, got, want[k])
		}
	}
	switch {
	case wrong > 0:
		t.Errorf("%d rows differ from the input's, e.g. %s", wrong, example)
	case rows != len(want) || len(seen) != len(want):
		t.Errorf("%d rows, %d distinct; want each of %d once", rows, len(seen), len(want))
	default:
		t.Logf("%d kills; %d rows, each once and right", killed, rows)
	}
}

// TestKafkaReplayBounded shows what a checkpoint bounds: the input a crash
// makes the engine read again. A one-hour window stays open while the
// engine reads 20,000 records of it; once it has read them, with spec.state
// the group's committed offsets are at the end of the topic (a crash now
// would read nothing again, and at any time at most the checkpoint
// interval of input), and without they are where the window began, since
// the commit waits for the window to close: a crash would read the whole
// hour again.
func TestKafkaReplayBounded(t *testing.T) {
	for _, state := range []bool{true, false} {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "in", "out"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		brokers := c.ListenAddrs()
		prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic("in"))
		if err != nil {
			t.Fatal(err)
		}
		defer prod.Close()
		t0 := time.Date(2024, 1, 2, 9, 0, 0, 0, time.UTC)
		var recs []*kgo.Record
		const n = 20_000
		for i := range n {
			sym := fmt.Sprintf("S%d", i%10)
			recs = append(recs, &kgo.Record{Key: []byte(sym), Value: fmt.Appendf(nil, `{"sym":%q,"ts":%q,"q":1}`, sym, t0.Add(time.Duration(i)*100*time.Millisecond).Format(time.RFC3339Nano))})
		}
		if err := prod.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		stateSpec := ""
		if state {
			stateSpec = "\n  state: {checkpointInterval: 200ms}"
		}
		manifest := fmt.Sprintf(`apiVersion: streaming.sluice.dev/v1alpha1
kind: StreamQuery
metadata: {name: replay}
spec:
  sources:
    - name: t
      kafka: {brokers: [%q], topic: in, group: replay}
      schema: [{name: sym, type: string}, {name: ts, type: timestamp}, {name: q, type: int}]
      eventTime: {column: ts}
  query: "SELECT window_start, sym, count(*) AS n FROM TUMBLE(t, ts, INTERVAL '1' HOUR) GROUP BY window_start, window_end, sym"
  sink: {kafka: {brokers: [%q], topic: out}}%s
`, brokers[0], brokers[0], stateSpec)
		engine, base, _, stdout := startEngine(t, dir, manifest, []string{"SLUICE_INSTANCE=replay-0"})
		go io.Copy(io.Discard, stdout)
		adm := kadm.NewClient(prod)
		committed := func() int64 {
			offs, err := adm.FetchOffsets(context.Background(), "replay")
			if err != nil {
				return -1
			}
			var sum int64
			offs.Each(func(o kadm.OffsetResponse) { sum += max(o.At, 0) })
			return sum
		}
		// Once the engine has read every record, the state's checkpoints
		// commit them within the interval; without state, nothing commits
		// however long it waits.
		deadline := time.Now().Add(90 * time.Second)
		for {
			var doc struct{ Records struct{ In int64 } }
			if code, body := get(t, base+"/status"); code == http.StatusOK && json.Unmarshal([]byte(body), &doc) == nil && doc.Records.In >= n {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("state %v: the engine did not read the %d records", state, n)
			}
			time.Sleep(10 * time.Millisecond)
		}
		got := committed()
		for wait := time.Now().Add(5 * time.Second); got != n && time.Now().Before(wait); got = committed() {
			time.Sleep(10 * time.Millisecond)
		}
		engine.Process.Signal(syscall.SIGKILL)
		engine.Wait()
		switch {
		case state && got != n:
			t.Errorf("with spec.state, the group committed %d of %d records read: a crash would read %d again", got, n, n-got)
		case !state && got != 0:
			t.Errorf("without spec.state, the group committed %d records of an open window", got)
		default:
			t.Logf("state %v: %d of %d records committed at the crash; %d to read again", state, got, n, n-got)
		}
	}
}

// TestKafkaCrashHopExactlyOnce is the crash test for 2-second windows
// every second, exactly-once: each trade counts in two windows, and every
// window is written once, right.
func TestKafkaCrashHopExactlyOnce(t *testing.T) {
	crashWindowed(t, crashExactlyOnce, "HOP(t, ts, INTERVAL '1' SECOND, INTERVAL '2' SECOND)", func(ts time.Time) []time.Time {
		start := ts.Truncate(time.Second)
		return []time.Time{start, start.Add(-time.Second)}
	})
}

// TestKafkaCrashRowsExactlyOnce is the crash test for a ROWS frame, the
// sum of each symbol's last five trades, exactly-once: every trade's row
// is written once, with the five trades before it whatever the kills.
func TestKafkaCrashRowsExactlyOnce(t *testing.T) {
	want := map[string]string{}
	bySym := map[string][]int64{}
	for _, tr := range crashInput() {
		if tr.late {
			continue
		}
		last := append(bySym[tr.sym], tr.q)
		if len(last) > 5 {
			last = last[len(last)-5:]
		}
		bySym[tr.sym] = last
		var sum int64
		for _, q := range last {
			sum += q
		}
		want[tr.ts.Format(time.RFC3339Nano)] = fmt.Sprintf("%s r5=%d", tr.sym, sum)
	}
	kafkaCrashStateful(t, crashExactlyOnce, "SELECT sym, ts, sum(q) OVER (PARTITION BY sym ORDER BY ts ROWS BETWEEN 4 PRECEDING AND CURRENT ROW) AS r5 FROM t",
		want, func(b []byte) (string, string, bool) {
			var row struct {
				Sym string
				TS  time.Time
				R5  int64
			}
			if err := json.Unmarshal(b, &row); err != nil || row.Sym == "END" {
				return "", "", false
			}
			return row.TS.Format(time.RFC3339Nano), fmt.Sprintf("%s r5=%d", row.Sym, row.R5), true
		})
}

// TestKafkaCrashSessionExactlyOnce is the crash test for session windows,
// exactly-once: each symbol trades every 20 ms but skips one trade in 50,
// so that a 25 ms gap closes a session of 49 trades about every second.
// Every session is written once, with its whole count and sum, though a
// kill may come while it is open: its rows so far are in the checkpoint.
func TestKafkaCrashSessionExactlyOnce(t *testing.T) {
	t0 := crashInput()[0].ts
	var in []crashTrade
	for _, tr := range crashInput() {
		if i := tr.ts.Sub(t0).Milliseconds(); tr.late || i/20%50 != 49 {
			in = append(in, tr)
		}
	}
	type session struct {
		start, last time.Time
		n, total    int64
	}
	open := map[string]*session{}
	want := map[string]string{}
	closeSession := func(sym string, s *session) {
		want[s.start.Format(time.TimeOnly+".000")+" "+sym] = fmt.Sprintf("end=%s n=%d total=%d", s.last.Add(25*time.Millisecond).Format(time.TimeOnly+".000"), s.n, s.total)
	}
	for _, tr := range in {
		if tr.late {
			continue
		}
		s := open[tr.sym]
		if s != nil && tr.ts.Sub(s.last) >= 25*time.Millisecond {
			closeSession(tr.sym, s)
			s = nil
		}
		if s == nil {
			s = &session{start: tr.ts}
			open[tr.sym] = s
		}
		s.last, s.n, s.total = tr.ts, s.n+1, s.total+tr.q
	}
	for sym, s := range open {
		closeSession(sym, s)
	}
	job := tradesJob("SELECT window_start, window_end, sym, count(*) AS n, sum(q) AS total FROM SESSION(t, ts, INTERVAL '25 milliseconds') GROUP BY window_start, window_end, sym",
		want, func(b []byte) (string, string, bool) {
			var row struct {
				WindowStart time.Time `json:"window_start"`
				WindowEnd   time.Time `json:"window_end"`
				Sym         string
				N, Total    int64
			}
			if err := json.Unmarshal(b, &row); err != nil || row.Sym == "END" {
				return "", "", false
			}
			return row.WindowStart.Format(time.TimeOnly+".000") + " " + row.Sym,
				fmt.Sprintf("end=%s n=%d total=%d", row.WindowEnd.Format(time.TimeOnly+".000"), row.N, row.Total), true
		})
	job.records = tradeRecords("in", in)
	kafkaCrashJob(t, crashExactlyOnce, job)
}

// TestKafkaCrashIntervalJoinExactlyOnce is the crash test for an interval
// join of two topics, exactly-once: trades, and marks, one for every third
// trade, each joined with the marks of its symbol of the 100 ms before it.
// Both topics' offsets commit in one transaction with the results and the
// join's state, so every pair is written once whatever the kills.
func TestKafkaCrashIntervalJoinExactlyOnce(t *testing.T) {
	kafkaCrashJob(t, crashExactlyOnce, intervalJoinJob("JOIN"))
}

// TestKafkaCrashWindowJoinExactlyOnce is the crash test for a window join
// of the topics of TestKafkaCrashIntervalJoinExactlyOnce, exactly-once:
// each second's trades and marks of a symbol, counted and summed by side,
// joined. Both sides' windows, and both topics' offsets, commit with the
// results, so every window's row is written once, whole, whatever the
// kills.
func TestKafkaCrashWindowJoinExactlyOnce(t *testing.T) {
	job := intervalJoinJob("JOIN")
	type sums struct{ trades, q, marks, px int64 }
	bySecond := map[string]*sums{}
	at := func(sym string, ts time.Time) *sums {
		k := ts.Truncate(time.Second).Format(time.TimeOnly) + " " + sym
		if bySecond[k] == nil {
			bySecond[k] = &sums{}
		}
		return bySecond[k]
	}
	for _, r := range job.records {
		var row struct {
			Sym   string
			TS    time.Time
			Q, PX int64
		}
		if err := json.Unmarshal(r.Value, &row); err != nil {
			t.Fatal(err)
		}
		s := at(row.Sym, row.TS)
		if r.Topic == "marks" {
			s.marks, s.px = s.marks+1, s.px+row.PX
		} else {
			s.trades, s.q = s.trades+1, s.q+row.Q
		}
	}
	job.want = map[string]string{}
	for k, s := range bySecond {
		if s.trades > 0 && s.marks > 0 {
			job.want[k] = fmt.Sprintf("trades=%d q=%d marks=%d px=%d", s.trades, s.q, s.marks, s.px)
		}
	}
	job.query = `SELECT T.sym, T.ws, T.n AS trades, T.q, M.n AS marks, M.px
		FROM (SELECT sym, window_start AS ws, count(*) AS n, sum(q) AS q FROM TUMBLE(t, ts, INTERVAL '1' SECOND) GROUP BY sym, window_start, window_end) T
		JOIN (SELECT sym, window_start AS ws, count(*) AS n, sum(px) AS px FROM TUMBLE(m, ts, INTERVAL '1' SECOND) GROUP BY sym, window_start, window_end) M
		ON T.sym = M.sym AND T.ws = M.ws`
	job.rowOf = func(b []byte) (string, string, bool) {
		var row struct {
			Sym                  string
			WS                   time.Time
			Trades, Q, Marks, PX int64
		}
		if err := json.Unmarshal(b, &row); err != nil || row.Sym == "END" {
			return "", "", false
		}
		return row.WS.Format(time.TimeOnly) + " " + row.Sym, fmt.Sprintf("trades=%d q=%d marks=%d px=%d", row.Trades, row.Q, row.Marks, row.PX), true
	}
	kafkaCrashJob(t, crashExactlyOnce, job)
}

// TestKafkaRepartitionIntervalJoin is the interval join of
// TestKafkaCrashIntervalJoinExactlyOnce on three engines, at-least-once,
// over topics keyed by record, not by the join's key: the engines
// repartition both topics' rows by symbol through one topic, and every
// pair is written, right, through joins, a crash, a leave and the scale
// down to one engine. Every other mark comes about 300 ms of event time
// late, within its source's maxOutOfOrderness (1 s), which the watermark
// must keep through the repartition, or those marks are dropped late. The
// trades declare no event time: their partitions of the topic must still
// wait the default idle timeout, not none.
func TestKafkaRepartitionIntervalJoin(t *testing.T) {
	kafkaCrashJob(t, crashRepartition, repartitionIntervalJoinJob(t, "JOIN"))
}

// TestKafkaRepartitionIntervalJoinExactlyOnce is
// TestKafkaRepartitionIntervalJoin exactly-once, and a FULL JOIN: each
// engine's upstream transaction commits the offsets of both topics with
// the rows it wrote to the repartition topic, so every pair is written
// once, and every trade and mark that pairs with nothing once with NULLs,
// which of them paired moving with the partitions' state.
func TestKafkaRepartitionIntervalJoinExactlyOnce(t *testing.T) {
	kafkaCrashJob(t, crashRepartitionExactlyOnce, repartitionIntervalJoinJob(t, "FULL JOIN"))
}

// repartitionIntervalJoinJob is intervalJoinJob over topics keyed by
// record, with every other mark about 300 ms of event time late and the
// trades without an event time of their own.
func repartitionIntervalJoinJob(t *testing.T, join string) crashJob {
	job := intervalJoinJob(join)
	type held struct {
		rec *kgo.Record
		at  int
	}
	var recs []*kgo.Record
	var late []held
	marks := 0
	for i, r := range job.records {
		for len(late) > 0 && late[0].at <= i {
			recs, late = append(recs, late[0].rec), late[1:]
		}
		if r.Topic == "marks" {
			if marks++; marks%2 == 0 {
				late = append(late, held{r, i + 400})
				continue
			}
		}
		recs = append(recs, r)
	}
	for _, h := range late {
		recs = append(recs, h.rec)
	}
	for i, r := range recs {
		r.Key = strconv.AppendInt(nil, int64(i), 10)
	}
	job.records = recs
	sources := job.sources
	job.sources = func(broker string) string {
		// The second source, m, is the marks; the first, t, declares no
		// event time, and has the query's time column's defaults.
		src := sources(broker)
		i := strings.LastIndex(src, "eventTime: {column: ts}")
		src = src[:i] + "eventTime: {column: ts, maxOutOfOrderness: 1s}" + src[i+len("eventTime: {column: ts}"):]
		return strings.Replace(src, "      eventTime: {column: ts}\n", "", 1)
	}
	if !strings.Contains(job.sources("b:9092"), "maxOutOfOrderness: 1s") {
		t.Fatal("the marks' maxOutOfOrderness is not in the manifest")
	}
	return job
}

// intervalJoinJob is the crash job of an interval join of two topics,
// trades and marks, keyed by symbol: a JOIN, a LEFT JOIN or a FULL JOIN
// (join). Of a FULL JOIN, every seventh trade has a mark of a symbol no
// trade has besides.
func intervalJoinJob(join string) crashJob {
	left, full := join != "JOIN", join == "FULL JOIN"
	var trades []crashTrade
	for _, tr := range crashInput() {
		if !tr.late { // whether a late row is dropped depends on the topics' interleaving
			trades = append(trades, tr)
		}
	}
	type mark struct {
		sym string
		ts  time.Time
		px  int
	}
	var recs []*kgo.Record
	var marks []mark
	for i, tr := range trades {
		recs = append(recs, tradeRecords("in", trades[i:i+1])...)
		for _, m := range []mark{{tr.sym, tr.ts, i % 13}, {"alone-" + tr.sym, tr.ts, i % 11}} {
			switch {
			case m.sym == tr.sym && i%3 != 0, m.sym != tr.sym && (!full || i%7 != 1):
				continue
			}
			marks = append(marks, m)
			recs = append(recs, &kgo.Record{Topic: "marks", Key: []byte(m.sym), Value: fmt.Appendf(nil, `{"sym":%q,"ts":%q,"px":%d}`, m.sym, m.ts.Format(time.RFC3339Nano), m.px)})
		}
	}
	want := map[string]string{}
	bySym := map[string][]mark{}
	for _, m := range marks {
		bySym[m.sym] = append(bySym[m.sym], m)
	}
	for _, tr := range trades {
		paired := false
		for _, m := range bySym[tr.sym] {
			if d := tr.ts.Sub(m.ts); d >= 0 && d <= 100*time.Millisecond {
				want[tr.ts.Format(time.RFC3339Nano)+" "+m.ts.Format(time.RFC3339Nano)] = fmt.Sprintf("%s q=%d px=%d", tr.sym, tr.q, m.px)
				paired = true
			}
		}
		if left && !paired {
			// NULL mts and px: the zero time and 0.
			want[tr.ts.Format(time.RFC3339Nano)+" "+time.Time{}.Format(time.RFC3339Nano)] = fmt.Sprintf("%s q=%d px=0", tr.sym, tr.q)
		}
	}
	for _, m := range marks {
		if strings.HasPrefix(m.sym, "alone-") {
			// NULL sym, ts and q.
			want[time.Time{}.Format(time.RFC3339Nano)+" "+m.ts.Format(time.RFC3339Nano)] = fmt.Sprintf(" q=0 px=%d", m.px)
		}
	}
	return crashJob{
		sources: func(broker string) string {
			return fmt.Sprintf(`    - name: t
      kafka: {brokers: [%[1]q], topic: in, group: crash, sessionTimeout: %[2]s}
      schema: [{name: sym, type: string}, {name: ts, type: timestamp}, {name: q, type: int}]
      eventTime: {column: ts}
    - name: m
      kafka: {brokers: [%[1]q], topic: marks, group: crash, sessionTimeout: %[2]s}
      schema: [{name: sym, type: string}, {name: ts, type: timestamp}, {name: px, type: int}]
      eventTime: {column: ts}
`, broker, crashSessionTimeout)
		},
		topics: []string{"in", "marks"}, records: recs,
		query: "SELECT t.sym, t.ts, t.q, m.ts AS mts, m.px FROM t " + join + " m ON t.sym = m.sym AND t.ts BETWEEN m.ts AND m.ts + INTERVAL '100 milliseconds'",
		want:  want,
		rowOf: func(b []byte) (string, string, bool) {
			var row struct {
				Sym     string
				TS, MTS time.Time
				Q, PX   int64
			}
			if err := json.Unmarshal(b, &row); err != nil || row.Sym == "END" {
				return "", "", false
			}
			return row.TS.Format(time.RFC3339Nano) + " " + row.MTS.Format(time.RFC3339Nano), fmt.Sprintf("%s q=%d px=%d", row.Sym, row.Q, row.PX), true
		},
	}
}

// TestKafkaCrashTableJoinExactlyOnce is the crash test for a stream-table
// join, exactly-once: every trade from Kafka with its symbol's name from a
// file. The table's rows are in each checkpoint, and the trades waiting
// for the table too, so every trade is written once, named.
func TestKafkaCrashTableJoinExactlyOnce(t *testing.T) {
	table := filepath.Join(t.TempDir(), "symbols.csv")
	var lines strings.Builder
	lines.WriteString("sym,name\n")
	for i := range 20 {
		fmt.Fprintf(&lines, "S%02d,Name %d\n", i, i*7)
	}
	if err := os.WriteFile(table, []byte(lines.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	var trades []crashTrade
	for _, tr := range crashInput() {
		if tr.late {
			continue // a late trade's time is another's: keep keys unique
		}
		trades = append(trades, tr)
		var i int
		fmt.Sscanf(tr.sym, "S%d", &i)
		want[tr.ts.Format(time.RFC3339Nano)] = fmt.Sprintf("%s q=%d Name %d", tr.sym, tr.q, i*7)
	}
	job := tradesJob("SELECT t.sym, t.ts, t.q, s.name FROM t JOIN s ON t.sym = s.sym", want, func(b []byte) (string, string, bool) {
		var row struct {
			Sym, Name string
			TS        time.Time
			Q         int64
		}
		if err := json.Unmarshal(b, &row); err != nil || row.Sym == "END" {
			return "", "", false
		}
		return row.TS.Format(time.RFC3339Nano), fmt.Sprintf("%s q=%d %s", row.Sym, row.Q, row.Name), true
	})
	trades0 := job.sources
	job.sources = func(broker string) string {
		return trades0(broker) + fmt.Sprintf(`    - name: s
      file: {path: %q}
      format: csv
      schema: [{name: sym, type: string}, {name: name, type: string}]
      table: {key: [sym]}
`, table)
	}
	job.records = tradeRecords("in", trades)
	kafkaCrashJob(t, crashExactlyOnce, job)
}

// TestKafkaScaleWhileIdleExactlyOnce: two engines count 10-second windows
// of a topic keyed by k, exactly-once; once they have read half the input,
// and while the input is quiet, a third engine joins, and the second half
// comes as the group rebalances. A partition restored at the rebalance
// with no record to read again held no watermark back, so the checkpoints
// carried one past its records, and its next owner dropped a quarter of
// them as late (4 windows of 160 at half their count, about one run in
// six). Every window must be written once, whole.
func TestKafkaScaleWhileIdleExactlyOnce(t *testing.T) {
	kafkaScaleWhileIdle(t, ", delivery: exactlyOnce")
}

func kafkaScaleWhileIdle(t *testing.T, delivery string) {
	broker := startKafka(t, 4, "in", "out")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "q.yaml"), fmt.Appendf(nil, `apiVersion: streaming.sluice.dev/v1alpha1
kind: StreamQuery
metadata: {name: volume}
spec:
  replicas: 2
  sources:
    - name: t
      kafka: {brokers: [%[1]q], topic: in, group: g, sessionTimeout: %[2]s}
      schema: [{name: k, type: string, key: true}, {name: seq, type: int}, {name: ts, type: timestamp}]
      eventTime: {column: ts}
  query: SELECT window_start, k, count(*) AS n, sum(seq) AS total FROM TUMBLE(t, ts, INTERVAL '10' SECOND) GROUP BY window_start, window_end, k
  sink:
    kafka: {brokers: [%[1]q], topic: out, key: k%[3]s}
  state: {checkpointInterval: 1s}
  runtime: {parallelism: 2, batchSize: 100}
`, broker, crashSessionTimeout, delivery), 0o644)
	// 8,000 records, 10 ms apart, over 20 keys; each 10-second window of a
	// key has 50.
	t0 := time.Date(2024, 1, 2, 9, 30, 0, 0, time.UTC)
	sums := map[string][2]int{}
	var recs []*kgo.Record
	for i := range 8000 {
		k, ts := fmt.Sprintf("k%02d", i%20), t0.Add(time.Duration(i)*10*time.Millisecond)
		recs = append(recs, &kgo.Record{Topic: "in", Key: []byte(k), Value: fmt.Appendf(nil, `{"k":%q,"seq":%d,"ts":%q}`, k, i%7, ts.Format(time.RFC3339Nano))})
		w := ts.Truncate(10*time.Second).Format(time.TimeOnly) + " " + k
		sums[w] = [2]int{sums[w][0] + 1, sums[w][1] + i%7}
	}
	want := map[string]string{}
	for w, s := range sums {
		want[w] = fmt.Sprintf("n=%d total=%d", s[0], s[1])
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ww := watchWindows(ctx, t, broker, delivery != "", want)
	wait := ww.wait
	prod, err := kgo.NewClient(kgo.SeedBrokers(broker))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	engines := []*exec.Cmd{startInstance(t, dir, "a"), startInstance(t, dir, "b")}
	if err := prod.ProduceSync(ctx, recs[:4000]...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	wait(t, "the first half's closed windows", 60)
	engines = append(engines, startInstance(t, dir, "c"))
	if err := prod.ProduceSync(ctx, recs[4000:]...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// A record far ahead on every partition closes the last windows.
	ends, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer ends.Close()
	for p := range int32(4) {
		end := &kgo.Record{Topic: "in", Partition: p, Key: []byte("END"), Value: []byte(`{"k":"END","seq":0,"ts":"2024-01-02T11:00:00Z"}`)}
		if err := ends.ProduceSync(ctx, end).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	wait(t, "every window", len(want))
	for _, e := range engines {
		e.Process.Signal(syscall.SIGTERM)
		waitExit(t, e, "SIGTERM")
	}
	time.Sleep(300 * time.Millisecond) // a row written late would still arrive
	rows, wrong := ww.result()
	switch {
	case len(wrong) > 0:
		t.Errorf("%d rows differ from the input's, e.g. %s", len(wrong), wrong[0])
	case delivery != "" && rows != len(want):
		t.Errorf("exactly-once wrote %d rows for %d windows", rows, len(want))
	}
	t.Logf("%d windows, %d rows written", len(want), rows)
}

// windowWatch reads the rows a query of per-key windows (window_start, k,
// n, total) writes to the topic out, and checks each against the row
// wanted of its window, by its start's time of day and key.
type windowWatch struct {
	want  map[string]string
	mu    sync.Mutex
	seen  map[string]int // rows written, by window
	wrong []string
}

// watchWindows reads the topic out of broker until ctx ends, the
// committed records only where readCommitted says so.
func watchWindows(ctx context.Context, t *testing.T, broker string, readCommitted bool, want map[string]string) *windowWatch {
	opts := []kgo.Opt{kgo.SeedBrokers(broker), kgo.ConsumeTopics("out"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}
	if readCommitted {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	cons, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cons.Close)
	w := &windowWatch{want: want, seen: map[string]int{}}
	go func() {
		for ctx.Err() == nil {
			cons.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
				var row struct {
					WindowStart time.Time `json:"window_start"`
					K           string
					N, Total    int
				}
				if json.Unmarshal(r.Value, &row) != nil || row.K == "END" {
					return
				}
				key, got := row.WindowStart.Format(time.TimeOnly)+" "+row.K, fmt.Sprintf("n=%d total=%d", row.N, row.Total)
				w.mu.Lock()
				defer w.mu.Unlock()
				w.seen[key]++
				if want[key] != got {
					w.wrong = append(w.wrong, fmt.Sprintf("%s: %s, want %s", key, got, want[key]))
				}
			})
		}
	}()
	return w
}

// windows returns how many windows have a row.
func (w *windowWatch) windows() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.seen)
}

// missing returns the windows wanted that have no row, in order.
func (w *windowWatch) missing() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for k := range w.want {
		if w.seen[k] == 0 {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// wait waits up to 90 s for n windows to have a row.
func (w *windowWatch) wait(t *testing.T, what string, n int) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for w.windows() < n {
		if time.Now().After(deadline) {
			m := w.missing()
			t.Fatalf("waiting for %s: %d of %d windows; missing %v", what, w.windows(), n, m[:min(len(m), 8)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// result returns the rows written, and those that differ from the ones
// wanted.
func (w *windowWatch) result() (rows int, wrong []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, n := range w.seen {
		rows += n
	}
	return rows, slices.Clone(w.wrong)
}

// TestKafkaRepartitionTakeOverAtEnd: two engines repartition by k a topic
// of two partitions whose records are not keyed by it, each engine reading
// one partition of the topic and one of the repartition topic. A's input
// partition ends (a record far ahead) and its marks of that are committed
// in both repartition partitions, while B's input partition holds the
// last windows open. A is killed; B reads its own partition's end, then
// takes A's partitions over. A's input partition has nothing left to read,
// so B marks it with nothing handled: only the marks read before the
// commit say it ended, and the repartition partition's checkpoint keeps
// them as its reader state. Without that state the last windows of A's
// repartition partition never closed, in every run.
func TestKafkaRepartitionTakeOverAtEnd(t *testing.T) {
	broker := startKafka(t, 2, "in", "out")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "q.yaml"), fmt.Appendf(nil, `apiVersion: streaming.sluice.dev/v1alpha1
kind: StreamQuery
metadata: {name: ends}
spec:
  replicas: 2
  sources:
    - name: t
      kafka: {brokers: [%q], topic: in, group: g, sessionTimeout: 6s}
      schema: [{name: k, type: string}, {name: seq, type: int}, {name: ts, type: timestamp}]
      eventTime: {column: ts, idleTimeout: 60s}
  query: SELECT window_start, k, count(*) AS n, sum(seq) AS total FROM TUMBLE(t, ts, INTERVAL '1' SECOND) GROUP BY window_start, window_end, k
  sink:
    kafka: {brokers: [%[1]q], topic: out, key: k}
  state: {checkpointInterval: 200ms}
`, broker), 0o644)
	// Each partition: 100 records over 10 s and 8 keys, the same times in
	// both, so each partition alone holds the last second's windows open.
	t0 := time.Date(2024, 1, 2, 9, 30, 0, 0, time.UTC)
	sums := map[string][2]int{}
	recs := map[int32][]*kgo.Record{}
	for p := range int32(2) {
		for i := range 100 {
			k, ts, seq := fmt.Sprintf("k%d", i%8), t0.Add(time.Duration(i)*100*time.Millisecond), i%7+int(p)
			recs[p] = append(recs[p], &kgo.Record{Topic: "in", Partition: p, Value: fmt.Appendf(nil, `{"k":%q,"seq":%d,"ts":%q}`, k, seq, ts.Format(time.RFC3339Nano))})
			w := ts.Truncate(time.Second).Format(time.TimeOnly) + " " + k
			sums[w] = [2]int{sums[w][0] + 1, sums[w][1] + seq}
		}
	}
	want := map[string]string{}
	for w, s := range sums {
		want[w] = fmt.Sprintf("n=%d total=%d", s[0], s[1])
	}
	end := func(p int32) *kgo.Record {
		return &kgo.Record{Topic: "in", Partition: p, Value: []byte(`{"k":"END","seq":0,"ts":"2024-01-02T11:00:00Z"}`)}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ww := watchWindows(ctx, t, broker, false, want)
	prod, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	adm := kadm.NewClient(prod)

	a, b := startInstance(t, dir, "a"), startInstance(t, dir, "b")
	defer func() {
		for _, e := range []*exec.Cmd{a, b} {
			e.Process.Kill()
			e.Wait()
		}
	}()
	// Each engine reads one partition of each topic, through a member of
	// its own for each.
	var mine int32
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		owned := map[string][]int32{} // by member's instance
		groups, err := adm.DescribeGroups(ctx, "g")
		if err == nil {
			for _, m := range groups["g"].Members {
				if as, ok := m.Assigned.AsConsumer(); ok && m.InstanceID != nil {
					for _, tp := range as.Topics {
						owned[*m.InstanceID] = append(owned[*m.InstanceID], tp.Partitions...)
					}
				}
			}
		}
		if len(owned) == 4 && len(owned["a.in"]) == 1 && len(owned["b.in"]) == 1 {
			mine = owned["a.in"][0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the engines do not share the partitions after 60 s: %v (%v)", owned, err)
		}
	}
	theirs := 1 - mine
	if err := prod.ProduceSync(ctx, append(append(recs[0], recs[1]...), end(mine))...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// The last second's windows wait for B's partition.
	ww.wait(t, "the windows both partitions passed", len(want)-8)
	committed := func(topic string, p int32) int64 {
		offsets, err := adm.FetchOffsets(ctx, "g")
		if err != nil {
			return -1
		}
		o, _ := offsets.Lookup(topic, p)
		return o.At
	}
	waitCommitted := func(topic string, p int32, at int64) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); committed(topic, p) < at; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("partition %d of %s committed at %d after 30 s, want %d", p, topic, committed(topic, p), at)
			}
		}
	}
	waitCommitted("in", mine, int64(len(recs[mine])+1))
	// A's marks of its partition's end went to both repartition partitions
	// (every 100 ms): their commits pass them.
	time.Sleep(500 * time.Millisecond)
	ends, err := adm.ListEndOffsets(ctx, "g.repartition.0")
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(o kadm.ListedOffset) { waitCommitted(o.Topic, o.Partition, o.Offset) })
	if n := ww.windows(); n != len(want)-8 {
		t.Fatalf("%d windows written before B's partition ended, want %d: the test no longer holds the last ones open", n, len(want)-8)
	}

	a.Process.Signal(syscall.SIGKILL)
	a.Wait()
	if err := prod.ProduceSync(ctx, end(theirs)).FirstErr(); err != nil {
		t.Fatal(err)
	}
	ww.wait(t, "every window, B having taken A's partitions over", len(want))
	if _, wrong := ww.result(); len(wrong) > 0 {
		t.Errorf("%d rows differ from the input's, e.g. %s", len(wrong), wrong[0])
	}
}
