package main

import (
	"context"
	"encoding/json"
	"fmt"
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

// TestKafkaCrashWindowsRestored is the crash scenario with
// checkpoints: 40,000 trades over 20 symbols, keyed by symbol on 4
// partitions, 40 s of event time, with 250 records 10 s late among them,
// read live from Kafka by a per-second count and sum by symbol with
// spec.state; the engine is SIGKILLed three times and restarted. Every
// window's row it writes must equal the one computed from the input
// without the late records (a row written again after a crash must be the
// same row), and every window must be written. Without spec.state the
// test fails: a restarted engine, which has lost the watermark, opens
// closed windows with the late records it reads again.
func TestKafkaCrashWindowsRestored(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "trades", "windows"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	const n, symbols, perTick, tick = 40_000, 20, 200, 20 * time.Millisecond // 10,000 records/s
	t0 := time.Date(2024, 1, 2, 9, 30, 0, 0, time.UTC)
	type key struct {
		window int64
		sym    string
	}
	want := map[key][2]int64{} // count and sum of each window
	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic("trades"))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	var recs []*kgo.Record
	for i := range n {
		sym := fmt.Sprintf("S%02d", i%symbols)
		ts := t0.Add(time.Duration(i) * time.Millisecond) // 40 s of event time
		q := int64(i%7 + 1)
		k := key{ts.Truncate(time.Second).Unix(), sym}
		w := want[k]
		want[k] = [2]int64{w[0] + 1, w[1] + q}
		recs = append(recs, &kgo.Record{Key: []byte(sym), Value: fmt.Appendf(nil, `{"sym":%q,"ts":%q,"q":%d}`, sym, ts.Format(time.RFC3339Nano), q)})
		if i >= 15_000 && i%100 == 0 {
			// A record 10 s late, which the watermark drops; an engine
			// restarted without its watermark would open a closed window
			// with it.
			late := ts.Add(-10 * time.Second)
			recs = append(recs, &kgo.Record{Key: []byte(sym), Value: fmt.Appendf(nil, `{"sym":%q,"ts":%q,"q":1000}`, sym, late.Format(time.RFC3339Nano))})
		}
	}
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
		// A record far ahead on every partition closes the last windows.
		end, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic("trades"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err != nil {
			produced <- err
			return
		}
		defer end.Close()
		for p := range int32(4) {
			r := &kgo.Record{Partition: p, Value: fmt.Appendf(nil, `{"sym":"END","ts":%q,"q":0}`, t0.Add(time.Hour).Format(time.RFC3339Nano))}
			if err := end.ProduceSync(context.Background(), r).FirstErr(); err != nil {
				produced <- err
				return
			}
		}
		produced <- nil
	}()

	dir := t.TempDir()
	manifest := fmt.Sprintf(`apiVersion: streaming.sluice.dev/v1alpha1
kind: StreamQuery
metadata: {name: windows}
spec:
  sources:
    - name: t
      kafka: {brokers: [%q], topic: trades, group: windows, sessionTimeout: %s}
      schema: [{name: sym, type: string}, {name: ts, type: timestamp}, {name: q, type: int}]
      eventTime: {column: ts}
  query: SELECT window_start, sym, count(*) AS n, sum(q) AS total FROM TUMBLE(t, ts, INTERVAL '1' SECOND) GROUP BY window_start, window_end, sym
  sink: {kafka: {brokers: [%q], topic: windows, key: sym}}
  state: {dir: %q, checkpointInterval: 200ms}
`, brokers[0], crashSessionTimeout, brokers[0], filepath.Join(dir, "state"))
	os.WriteFile(filepath.Join(dir, "q.yaml"), []byte(manifest), 0o644)
	start := func() *exec.Cmd { return startInstance(t, dir, "windows-0") }

	var mu sync.Mutex
	seen := map[key]int{}
	var wrong []string
	rows := 0
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cons, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics("windows"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	go func() {
		for ctx.Err() == nil {
			cons.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
				var row struct {
					WindowStart time.Time `json:"window_start"`
					Sym         string
					N, Total    int64
				}
				if err := json.Unmarshal(r.Value, &row); err != nil || row.Sym == "END" {
					return
				}
				k := key{row.WindowStart.Unix(), row.Sym}
				mu.Lock()
				defer mu.Unlock()
				rows++
				seen[k]++
				if w := want[k]; w != [2]int64{row.N, row.Total} {
					wrong = append(wrong, fmt.Sprintf("%s %s: n=%d total=%d, want n=%d total=%d", row.WindowStart.Format(time.TimeOnly), row.Sym, row.N, row.Total, w[0], w[1]))
				}
			})
		}
	}()
	windows := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(seen)
	}
	waitFor := func(what string, cond func(int) bool) {
		deadline := time.Now().Add(90 * time.Second)
		for w := windows(); !cond(w); w = windows() {
			if time.Now().After(deadline) {
				t.Fatalf("waiting for %s: %d of %d windows", what, w, len(want))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	engine := start()
	for k := range 3 {
		waitFor(fmt.Sprintf("windows before kill %d", k+1), func(w int) bool { return w >= len(want)*(k+1)/4 })
		engine.Process.Signal(syscall.SIGKILL)
		engine.Wait()
		engine = start()
	}
	if err := <-produced; err != nil {
		t.Fatal(err)
	}
	waitFor("every window", func(w int) bool { return w == len(want) })
	engine.Process.Signal(syscall.SIGTERM)
	waitExit(t, engine, "SIGTERM")
	time.Sleep(300 * time.Millisecond) // a row written late would still arrive
	mu.Lock()
	defer mu.Unlock()
	if len(wrong) > 0 {
		t.Errorf("%d window rows differ from the input's, e.g. %s", len(wrong), wrong[0])
	}
	t.Logf("%d windows, %d rows: %d written again across 3 kills, all equal", len(seen), rows, rows-len(seen))
}
