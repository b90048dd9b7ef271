package main

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/api/enginestatus"
	"github.com/sluice-dev/sluice/runtime/telemetry/otlptest"
)

const slowSinkManifest = `apiVersion: streaming.sluice.dev/v1alpha1
kind: StreamQuery
metadata: {name: slow-sink}
spec:
  sources: [{name: trades, datagen: {generator: trades, rate: 5000}}]
  query: SELECT trade_id, symbol, price FROM trades
  sink: {file: {path: out.fifo}}
  runtime: {channelCapacity: 4, batchSize: 50, batchLinger: 5ms}
  health: {queueSustained: 2s}
`

// TestObservabilityUnderBackpressure drives a real engine process whose sink
// is a named pipe the test reads: slowly, then fast. Over HTTP, /metrics shows
// the queue filling and backpressure counting, /status turns Degraded with
// the channel-capacity check naming the sink's channel, and recovers to
// Healthy when the sink speeds up. The JSON logs carry trace ids that a real
// OTLP receiver received.
func TestObservabilityUnderBackpressure(t *testing.T) {
	recv := otlptest.Start()
	defer recv.Close()
	dir := t.TempDir()
	fifo := filepath.Join(dir, "out.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatalf("mkfifo: %v", err)
	}
	var fast atomic.Bool
	readerDone := make(chan int64, 1)
	go func() {
		// Opening blocks until the engine opens the pipe for writing.
		f, err := os.Open(fifo)
		if err != nil {
			readerDone <- -1
			return
		}
		defer f.Close()
		var total int64
		buf := make([]byte, 512)
		for {
			if !fast.Load() {
				time.Sleep(20 * time.Millisecond) // about 25 KB/s: a few hundred records/s
			}
			n, err := f.Read(buf)
			total += int64(n)
			if err != nil {
				readerDone <- total
				return
			}
		}
	}()
	cmd, base, stderr, stdout := startEngine(t, dir, slowSinkManifest,
		[]string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + recv.URL(), "OTEL_BSP_SCHEDULE_DELAY=100"}, "--log-level", "debug")
	go io.Copy(io.Discard, stdout)

	status := func() enginestatus.Document {
		_, body := get(t, base+enginestatus.Path)
		var doc enginestatus.Document
		if err := json.Unmarshal([]byte(body), &doc); err != nil {
			t.Fatalf("/status: %v\n%s", err, body)
		}
		return doc
	}
	check := func(doc enginestatus.Document, name enginestatus.CheckName) enginestatus.Check {
		for _, c := range doc.Checks {
			if c.Name == name {
				return c
			}
		}
		t.Fatalf("/status has no check %s: %+v", name, doc.Checks)
		return enginestatus.Check{}
	}

	// Slow sink: the queue fills, backpressure counts, health degrades.
	var sawFull, sawBackpressure bool
	var degraded enginestatus.Document
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		_, metrics := get(t, base+"/metrics")
		if v := metricValue(metrics, `sluice_channel_utilization_ratio{edge="workers->sink"}`); v >= 0.75 {
			sawFull = true
		}
		if v := metricValue(metrics, `sluice_backpressure_events_total{edge="workers->sink"}`); v > 0 {
			sawBackpressure = true
		}
		if doc := status(); doc.Health == "Degraded" {
			degraded = doc
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !sawFull || !sawBackpressure {
		t.Errorf("/metrics never showed the sink's queue full (%v) and backpressure counting (%v)", sawFull, sawBackpressure)
	}
	if degraded.Health != "Degraded" {
		t.Fatalf("/status never turned Degraded under a slow sink; last: %+v\nstderr:\n%.3000s", status(), stderr.String())
	}
	if c := check(degraded, "channel_capacity"); c.Status != "Degraded" || !strings.Contains(c.Message, "workers->sink") || c.Value < c.Threshold {
		t.Errorf("channel_capacity check %+v; want Degraded, naming workers->sink, value over threshold", c)
	}
	if !degraded.Backpressure.Active || degraded.Backpressure.Edge != "workers->sink" || degraded.Backpressure.Level != "High" {
		t.Errorf("backpressure %+v; want active and High on workers->sink", degraded.Backpressure)
	}

	// Fast sink: it recovers.
	fast.Store(true)
	var recovered bool
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if doc := status(); doc.Health == "Healthy" && check(doc, "channel_capacity").Status == "Healthy" {
			recovered = true
			break
		}
	}
	if !recovered {
		t.Fatalf("/status did not recover to Healthy once the sink sped up: %+v", status())
	}
	if !strings.Contains(stderr.String(), `"msg":"health changed"`) {
		t.Errorf("no health transition was logged")
	}

	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("engine exit after SIGTERM: %v\n%.3000s", err, stderr.String())
	}
	<-readerDone

	// The trace ids of the logs are traces the receiver got.
	traces := map[string]bool{}
	for _, s := range recv.Spans() {
		traces[s.TraceID] = true
	}
	if len(traces) == 0 {
		t.Fatal("the OTLP receiver got no spans")
	}
	var logged, known int
	sc := bufio.NewScanner(strings.NewReader(stderr.String()))
	for sc.Scan() {
		var entry map[string]any
		if json.Unmarshal(sc.Bytes(), &entry) != nil || entry["msg"] != "batch written" {
			continue
		}
		logged++
		if id, _ := entry["trace_id"].(string); traces[id] {
			known++
		}
	}
	if logged == 0 || known != logged {
		t.Errorf("%d of %d batch-written log lines carry a trace id the receiver saw; want all", known, logged)
	}
}

// metricValue finds a sample's value in the text exposition, or -1.
func metricValue(exposition, series string) float64 {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`)
	m := re.FindStringSubmatch(exposition)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}
