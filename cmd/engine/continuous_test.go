package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestKafkaContinuousCrash: a GROUP BY without a window over Kafka, its
// groups checkpointed to the query's Kafka topic, SIGKILLed three times
// and restarted: the latest row of each group in the output topic is the
// count and sum of all its trades, late ones too (no window to be late
// for), none counted twice or lost, and a row written again after a crash
// is the same row.
func TestKafkaContinuousCrash(t *testing.T) {
	continuousCrash(t, false, 1)
}

// TestKafkaContinuousRepartitionedExactlyOnce is TestKafkaContinuousCrash
// on two engines, the trades keyed by trade, so that each group's rows are
// repartitioned by symbol, with exactly-once delivery and an emit interval
// longer than the test (rows are written at checkpoints only): a
// read_committed reader sees each group's count only grow.
func TestKafkaContinuousRepartitionedExactlyOnce(t *testing.T) {
	continuousCrash(t, true, 2)
}

// continuousCrash runs the per-symbol count and sum of crashInput on
// engines engines (1: keyed and partitioned by symbol, killed three
// times; 2: keyed by trade and repartitioned, the second joining midway,
// the first killed once and restarted) and checks the changelog.
func continuousCrash(t *testing.T, exactlyOnce bool, engines int) {
	type group struct{ n, total int64 }
	want := map[string]group{}
	trades := crashInput()
	for _, tr := range trades {
		g := want[tr.sym]
		want[tr.sym] = group{g.n + 1, g.total + tr.q}
	}
	recs := tradeRecords("in", trades)
	partitionedBy := ", partitionedBy: [sym]"
	if engines > 1 {
		partitionedBy = ""
		for i, r := range recs {
			r.Key = strconv.AppendInt(nil, int64(i), 10)
		}
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "in", "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	broker := c.ListenAddrs()[0]
	delivery, replicas := "", ""
	consumeOpts := []kgo.Opt{kgo.SeedBrokers(broker), kgo.ConsumeTopics("out"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}
	if exactlyOnce {
		delivery = ", delivery: exactlyOnce"
		consumeOpts = append(consumeOpts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	if engines > 1 {
		// Rows only at checkpoints: each group's latest is written before
		// the state that holds it, through partitions moving.
		replicas = fmt.Sprintf("\n  replicas: %d\n  runtime: {emitInterval: 1h}", engines)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "q.yaml"), fmt.Appendf(nil, `apiVersion: streaming.sluice.dev/v1alpha1
kind: StreamQuery
metadata: {name: totals}
spec:
  sources:
    - name: t
      kafka: {brokers: [%q], topic: in, group: totals, sessionTimeout: %s%s}
      schema: [{name: sym, type: string}, {name: ts, type: timestamp}, {name: q, type: int}]
  query: SELECT sym, count(*) AS n, sum(q) AS total FROM t GROUP BY sym
  sink: {kafka: {brokers: [%[1]q], topic: out, key: sym%[4]s}}
  state: {checkpointInterval: 200ms}%[5]s
`, broker, crashSessionTimeout, partitionedBy, delivery, replicas), 0o644)

	prod, err := kgo.NewClient(kgo.SeedBrokers(broker))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	produced := make(chan error, 1)
	go func() {
		perTick := 200
		if engines > 1 {
			perTick = 50 // a rebalance takes seconds
		}
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		for i := 0; i < len(recs); i += perTick {
			<-tk.C
			if err := prod.ProduceSync(context.Background(), recs[i:min(i+perTick, len(recs))]...).FirstErr(); err != nil {
				produced <- err
				return
			}
		}
		produced <- nil
	}()

	// The changelog as read: each group's latest row, and what went wrong.
	var mu sync.Mutex
	latest := map[string]group{}
	byCount := map[string]int64{} // "sym n" -> total, the rows of one engine keyed by symbol
	rows := 0
	var wrong []string
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
				var row struct {
					Sym      string
					N, Total int64
				}
				if err := json.Unmarshal(r.Value, &row); err != nil {
					return
				}
				mu.Lock()
				defer mu.Unlock()
				rows++
				g, last := group{row.N, row.Total}, latest[row.Sym]
				switch {
				case string(r.Key) != row.Sym:
					wrong = append(wrong, fmt.Sprintf("a row of %s keyed %q", row.Sym, r.Key))
				case g.n > want[row.Sym].n || g.total > want[row.Sym].total:
					wrong = append(wrong, fmt.Sprintf("%s: n=%d total=%d, more than all its trades, n=%d total=%d: counted twice", row.Sym, g.n, g.total, want[row.Sym].n, want[row.Sym].total))
				case exactlyOnce && g.n <= last.n:
					wrong = append(wrong, fmt.Sprintf("%s: n=%d after n=%d: read_committed, a group's count only grows", row.Sym, g.n, last.n))
				}
				if engines == 1 {
					// Keyed by symbol, a symbol's trades come in one
					// order: its n-th row is always the same.
					k := fmt.Sprintf("%s %d", row.Sym, row.N)
					if before, ok := byCount[k]; ok && before != row.Total {
						wrong = append(wrong, fmt.Sprintf("%s: n=%d with total %d, and before %d", row.Sym, row.N, row.Total, before))
					}
					byCount[k] = row.Total
				}
				latest[row.Sym] = g
			})
		}
	}()
	// progress is the least share of its trades a group's latest row
	// counts; done, how many groups are whole.
	progress := func() (least float64, done int) {
		mu.Lock()
		defer mu.Unlock()
		least = 1
		for sym, w := range want {
			least = min(least, float64(latest[sym].n)/float64(w.n))
			if latest[sym] == w {
				done++
			}
		}
		return least, done
	}
	waitFor := func(what string, share float64) {
		t.Helper()
		for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			least, done := progress()
			if least >= share || done == len(want) {
				return
			}
			if time.Now().After(deadline) {
				mu.Lock()
				defer mu.Unlock()
				t.Fatalf("waiting for %s: the least group has %.0f%% of its trades; %d of %d groups whole; %d rows read, %d wrong %.3q; latest %v, want %v", what, 100*least, done, len(want), rows, len(wrong), wrong[:min(len(wrong), 3)], latest, want)
			}
		}
	}

	start := func(instance string) *exec.Cmd { return startInstance(t, dir, instance) }
	running := []*exec.Cmd{start("totals-0")}
	defer func() {
		for _, e := range running {
			e.Process.Kill()
			e.Wait()
		}
	}()
	kill := func(i int, instance string) {
		running[i].Process.Signal(syscall.SIGKILL)
		running[i].Wait()
		running[i] = start(instance)
	}
	if engines == 1 {
		for k := range 3 {
			waitFor(fmt.Sprintf("rows before kill %d", k+1), float64(k+1)/4)
			kill(0, "totals-0")
		}
	} else {
		waitFor("rows before B joins", 0.2)
		running = append(running, start("totals-1"))
		waitShared(t, prod, "totals", 2*2, "B joins") // each engine: a member for the topic, one for the repartition topic
		waitFor("rows on two engines", 0.4)
		kill(0, "totals-0")
		waitFor("rows after A's crash", 0.6)
	}
	if err := <-produced; err != nil {
		t.Fatal(err)
	}
	waitFor("every group whole", 1)
	for _, e := range running {
		e.Process.Signal(syscall.SIGTERM)
		waitExit(t, e, "SIGTERM")
	}
	running = nil
	offsets, err := kadm.NewClient(prod).FetchOffsets(context.Background(), "totals")
	if err == nil {
		err = offsets.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	committed := int64(0)
	for p := range int32(4) {
		if o, ok := offsets.Lookup("in", p); ok {
			committed += o.At
		}
	}
	if committed != int64(len(recs)) {
		t.Errorf("the group committed %d of the %d records: a restart would read %d again", committed, len(recs), int64(len(recs))-committed)
	}
	time.Sleep(300 * time.Millisecond) // a row written late would still arrive
	mu.Lock()
	defer mu.Unlock()
	if len(wrong) > 0 {
		t.Errorf("%d rows wrong, e.g.\n%s", len(wrong), strings.Join(wrong[:min(len(wrong), 5)], "\n"))
	}
	for sym, w := range want {
		if latest[sym] != w {
			t.Errorf("%s: the latest row says n=%d total=%d; its trades, n=%d total=%d", sym, latest[sym].n, latest[sym].total, w.n, w.total)
		}
	}
	t.Logf("%d rows for %d groups", rows, len(want))
}

// waitShared waits, after what, until members of group own partitions,
// each of a topic, as engines that share the group's partitions do.
func waitShared(t *testing.T, cl *kgo.Client, group string, members int, what string) {
	t.Helper()
	adm := kadm.NewClient(cl)
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		described, err := adm.DescribeGroups(context.Background(), group)
		owners := 0
		if err == nil {
			for _, m := range described[group].Members {
				if a, ok := m.Assigned.AsConsumer(); ok && len(a.Topics) > 0 && len(a.Topics[0].Partitions) > 0 {
					owners++
				}
			}
		}
		if owners == members {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d members of group %s own partitions after 60 s, want %d (%v)", what, owners, group, members, err)
		}
	}
}
