package telemetry

import (
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluice-dev/sluice/api/enginestatus"
	"github.com/sluice-dev/sluice/runtime/pipeline"
)

// script is a Source whose snapshot the test sets.
type script struct{ snap pipeline.Snapshot }

func (s *script) Snapshot() pipeline.Snapshot { return s.snap }

func edges(util float64) []pipeline.EdgeSnapshot {
	return []pipeline.EdgeSnapshot{
		{Name: "source->worker-0", Depth: 1, Capacity: 10, Utilization: 0.1, Input: true},
		{Name: "workers->sink", Depth: int(util * 10), Capacity: 10, Utilization: util},
	}
}

// clock drives the monitor's samples one second apart.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newTestMonitor(src Source) (*Monitor, *clock) {
	c := &clock{t: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
	th := DefaultThresholds()
	th.QueueSustained = 5 * time.Second
	m := NewMonitor(src, "test", th, nil)
	m.now = c.now
	return m, c
}

func check(t *testing.T, m *Monitor, name enginestatus.CheckName) (status enginestatus.Health, value float64, msg string) {
	t.Helper()
	for _, c := range m.Status().Checks {
		if c.Name == name {
			return c.Status, c.Value, c.Message
		}
	}
	t.Fatalf("no check %q", name)
	return "", 0, ""
}

// TestChannelCapacityCheck: a full channel degrades health only once it has
// stayed full for the sustained period, names the edge, and recovers.
func TestChannelCapacityCheck(t *testing.T) {
	src := &script{snap: pipeline.Snapshot{State: enginestatus.Running, Edges: edges(0.1)}}
	m, c := newTestMonitor(src)
	step := func(util float64, seconds int) {
		for range seconds {
			src.snap.Edges = edges(util)
			m.Sample()
			c.t = c.t.Add(time.Second)
		}
		c.t = c.t.Add(-time.Second) // Status is read at the last sample's time
		defer func() { c.t = c.t.Add(time.Second) }()
	}
	step(0.1, 3)
	if doc := m.Status(); doc.Health != "Healthy" || doc.Backpressure.Level != "None" {
		t.Fatalf("idle: health %s, backpressure %+v; want Healthy, None", doc.Health, doc.Backpressure)
	}
	step(1.0, 3)
	if doc := m.Status(); doc.Health != "Healthy" || doc.Backpressure.Level != "High" || doc.Backpressure.Edge != "workers->sink" {
		t.Fatalf("full for 3s: health %s, backpressure %+v; want Healthy (not yet sustained), High on workers->sink", doc.Health, doc.Backpressure)
	}
	step(1.0, 4)
	status, _, msg := check(t, m, "channel_capacity")
	if status != "Degraded" || !strings.Contains(msg, "workers->sink") {
		t.Fatalf("full for 7s: channel_capacity %s %q; want Degraded naming workers->sink", status, msg)
	}
	if doc := m.Status(); doc.Health != "Degraded" || !doc.Backpressure.Active {
		t.Errorf("health %s, backpressure %+v; want Degraded and active", doc.Health, doc.Backpressure)
	}
	step(0.2, 1)
	if status, _, msg := check(t, m, "channel_capacity"); status != "Degraded" || !strings.Contains(msg, "recovering since") {
		t.Errorf("a second after draining: channel_capacity %s %q; want Degraded, recovering (hysteresis)", status, msg)
	}
	step(0.2, 5)
	if status, _, _ := check(t, m, "channel_capacity"); status != "Healthy" {
		t.Errorf("after draining for the sustained period: channel_capacity %s; want Healthy", status)
	}
}

// TestChannelCapacityDoesNotFlap: a channel held full for 60 s, sampled with
// the jitter of a busy machine's ticker and with an occasional sample of
// relief, turns health Degraded once; draining it turns it Healthy once more.
func TestChannelCapacityDoesNotFlap(t *testing.T) {
	src := &script{snap: pipeline.Snapshot{State: enginestatus.Running, Edges: edges(0.1)}}
	var logs strings.Builder
	c := &clock{t: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
	th := DefaultThresholds()
	th.QueueSustained = 10 * time.Second
	m := NewMonitor(src, "test", th, slog.New(slog.NewTextHandler(&logs, nil)))
	m.now = c.now
	rng := rand.New(rand.NewPCG(1, 2))
	sample := func(util float64) {
		src.snap.Edges = edges(util)
		m.Sample()
		c.t = c.t.Add(time.Second + time.Duration(rng.IntN(600)-300)*time.Millisecond)
	}
	for range 5 {
		sample(0.1)
	}
	start := c.t
	for i := 0; c.t.Sub(start) < 60*time.Second; i++ {
		util := 1.0
		if i%7 == 6 {
			util = 0.93 // a sink took a batch: still above the threshold
		}
		sample(util)
	}
	for range 30 {
		sample(0.1)
	}
	got := strings.Count(logs.String(), `msg="health changed"`)
	if got != 2 || !strings.Contains(logs.String(), "from=Healthy to=Degraded") || !strings.Contains(logs.String(), "from=Degraded to=Healthy") {
		t.Errorf("%d health transitions; want 2, Degraded then Healthy:\n%s", got, logs.String())
	}
}

// TestErrorRateAndRates: the error rate over the window and the input and
// output rates come from the counters' differences.
func TestErrorRateAndRates(t *testing.T) {
	src := &script{snap: pipeline.Snapshot{State: enginestatus.Running}}
	m, c := newTestMonitor(src)
	for i := range 11 {
		n := int64(i) * 1000
		src.snap.Counts = enginestatus.Records{In: n, Out: n * 9 / 10, Skipped: n / 10}
		m.Sample()
		if i < 10 {
			c.t = c.t.Add(time.Second)
		}
	}
	doc := m.Status()
	if doc.Rates.Input != 1000 || doc.Rates.Output != 900 || doc.Rates.Error != 100 {
		t.Errorf("rates %+v; want input 1000, output 900, error 100", doc.Rates)
	}
	status, value, _ := check(t, m, "error_rate")
	if status != "Degraded" || value < 0.099 || value > 0.101 {
		t.Errorf("error_rate %s %v; want Degraded at 0.1", status, value)
	}
	if doc.Health != "Degraded" {
		t.Errorf("health %s; want Degraded", doc.Health)
	}
}

// TestErrorRateOfStatements: of a statement set, the error rate is the
// share of the records each statement took that failed in it: one
// statement failing a record in ten of four, not one in ten of all read;
// and each statement has rates of its own.
func TestErrorRateOfStatements(t *testing.T) {
	src := &script{snap: pipeline.Snapshot{State: enginestatus.Running}}
	m, c := newTestMonitor(src)
	for i := range 11 {
		n := int64(i) * 1000
		ok := enginestatus.Records{In: n, Out: n}
		failing := enginestatus.Records{In: n, Out: n * 9 / 10, Skipped: n / 10}
		src.snap.Statements = []pipeline.StatementSnapshot{{Name: "a", Counts: failing}, {Name: "b", Counts: ok}, {Name: "c", Counts: ok}, {Name: "d", Counts: ok}}
		src.snap.Counts = enginestatus.Records{In: n, Out: 3*n + n*9/10, Skipped: n / 10}
		m.Sample()
		if i < 10 {
			c.t = c.t.Add(time.Second)
		}
	}
	if status, value, _ := check(t, m, "error_rate"); status != "Healthy" || value < 0.024 || value > 0.026 {
		t.Errorf("error_rate %s %v; want Healthy at 0.025", status, value)
	}
	// Each statement's rates are its own.
	doc := m.Status()
	if len(doc.Statements) != 4 || doc.Statements[0].Rates != (enginestatus.Rates{Input: 1000, Output: 900, Error: 100}) || doc.Statements[1].Rates != (enginestatus.Rates{Input: 1000, Output: 1000}) {
		t.Errorf("statements %+v; want a's rates 1000 in, 900 out, 100 failing, and b's 1000 in and out", doc.Statements)
	}
}

// TestFailedPipelineIsUnhealthy: a failed pipeline outranks every other check.
func TestFailedPipelineIsUnhealthy(t *testing.T) {
	src := &script{snap: pipeline.Snapshot{State: enginestatus.Failed, LastError: "boom"}}
	m, _ := newTestMonitor(src)
	m.Sample()
	doc := m.Status()
	if doc.Health != "Unhealthy" || doc.Pipeline != "Failed" || doc.LastError != "boom" {
		t.Errorf("status %+v; want Unhealthy, Failed, boom", doc)
	}
}

// TestCollector checks the exported metric families and values.
func TestCollector(t *testing.T) {
	src := &script{snap: pipeline.Snapshot{
		State:  enginestatus.Running,
		Counts: enginestatus.Records{In: 10, Out: 6, Filtered: 3, Skipped: 1},
		Edges:  edges(0.5),
	}}
	reg := prometheus.NewPedanticRegistry()
	m, _ := newTestMonitor(src)
	reg.MustRegister(NewCollector(m, false))
	want := `
# HELP sluice_records_total Records by outcome: in (read), out (written), filtered, dead_lettered, skipped, failed, aggregated (into window groups), late (behind the watermark, dropped), revoked (in flight when their Kafka partition moved to another engine, which reads them again), restored (read again after a restart from a checkpoint that holds them, or written again to a repartition topic by an engine that crashed, dropped), repartitioned (rows written to the query's repartition topic, which an engine reads again as input); and results (rows a windowed aggregation wrote, outside the balance).
# TYPE sluice_records_total counter
sluice_records_total{outcome="aggregated"} 0
sluice_records_total{outcome="dead_lettered"} 0
sluice_records_total{outcome="failed"} 0
sluice_records_total{outcome="filtered"} 3
sluice_records_total{outcome="in"} 10
sluice_records_total{outcome="late"} 0
sluice_records_total{outcome="out"} 6
sluice_records_total{outcome="repartitioned"} 0
sluice_records_total{outcome="restored"} 0
sluice_records_total{outcome="results"} 0
sluice_records_total{outcome="revoked"} 0
sluice_records_total{outcome="skipped"} 1
# HELP sluice_channel_utilization_ratio Depth over capacity of a channel.
# TYPE sluice_channel_utilization_ratio gauge
sluice_channel_utilization_ratio{edge="source->worker-0"} 0.1
sluice_channel_utilization_ratio{edge="workers->sink"} 0.5
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "sluice_records_total", "sluice_channel_utilization_ratio"); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(reg); err != nil || n < 20 {
		t.Errorf("GatherAndCount = %d, %v; want every family to gather cleanly", n, err)
	}
}

// TestBackpressureLevelHolds: a channel of 8 batches that a slow consumer
// keeps full but for a moment after each batch it takes (7 of 8, Medium by
// itself) reads High throughout, and None once it has drained for longer
// than the level looks back.
func TestBackpressureLevelHolds(t *testing.T) {
	src := &script{snap: pipeline.Snapshot{State: enginestatus.Running}}
	m, c := newTestMonitor(src)
	for i := range 10 {
		src.snap.Edges = edges([]float64{1, 0.875}[i%2])
		m.Sample()
		if level := m.Status().Backpressure.Level; i > 0 && level != "High" {
			t.Fatalf("sample %d at %v: level %s; want High", i, src.snap.Edges[1].Utilization, level)
		}
		c.t = c.t.Add(time.Second)
	}
	for range 4 {
		src.snap.Edges = edges(0.1)
		m.Sample()
		c.t = c.t.Add(time.Second)
	}
	c.t = c.t.Add(-time.Second)
	if level := m.Status().Backpressure.Level; level != "None" {
		t.Errorf("drained for 4s: level %s; want None", level)
	}
}

// TestProgressCheck: an engine with records in flight that completes none
// for the stall timeout is Unhealthy and Stalled says why; progress, an idle
// pipeline, or an unreachable service each reset the count.
func TestProgressCheck(t *testing.T) {
	src := &script{snap: pipeline.Snapshot{State: enginestatus.Running, Edges: []pipeline.EdgeSnapshot{{Name: "source->worker-0", Capacity: 10, Input: true}}}}
	m, c := newTestMonitor(src)
	m.thresholds.Stall = 10 * time.Second
	tick := func(seconds int) {
		for range seconds {
			c.t = c.t.Add(time.Second)
			m.Sample()
		}
	}
	src.snap.Counts = enginestatus.Records{In: 100, Out: 100}
	tick(30)
	if why := m.Stalled(); why != "" {
		t.Fatalf("idle for 30s: stalled %q; want live (nothing pending)", why)
	}
	// 50 records arrive, none completes.
	src.snap.Counts = enginestatus.Records{In: 150, Out: 100, InFlight: 50}
	tick(9)
	if why := m.Stalled(); why != "" {
		t.Fatalf("9s without progress: stalled %q; want live within the 10s timeout", why)
	}
	// One completes: the count starts again.
	src.snap.Counts = enginestatus.Records{In: 150, Out: 101, InFlight: 49}
	tick(9)
	if why := m.Stalled(); why != "" {
		t.Fatalf("9s after the last progress: stalled %q; want live", why)
	}
	tick(2)
	status, value, msg := check(t, m, enginestatus.CheckProgress)
	if status != enginestatus.Unhealthy || value < 10 || !strings.Contains(msg, "no record completed for 10s") {
		t.Fatalf("11s without progress: progress %s %v %q; want Unhealthy after 10s (counted from the sample that saw the last completion)", status, value, msg)
	}
	if doc := m.Status(); doc.Health != enginestatus.Unhealthy {
		t.Errorf("health %s; want Unhealthy", doc.Health)
	}
	if why := m.Stalled(); !strings.Contains(why, "no record completed") {
		t.Errorf("Stalled() = %q; want the check's message", why)
	}
	// A broker outage is not a stall: restarting would not end it.
	src.snap.Unavailable = "kafka: brokers unreachable"
	tick(30)
	if why := m.Stalled(); why != "" {
		t.Errorf("brokers unreachable for 30s: stalled %q; want live", why)
	}
	src.snap.Unavailable = ""
	tick(11)
	if why := m.Stalled(); why == "" {
		t.Errorf("11s after the brokers came back, still nothing completed: live; want stalled")
	}
	// Input waiting in a source channel is pending work too.
	src.snap.Counts = enginestatus.Records{In: 150, Out: 150}
	src.snap.Edges = []pipeline.EdgeSnapshot{{Name: "source->worker-0", Depth: 3, Capacity: 10, Utilization: 0.3, Input: true}}
	tick(11)
	if why := m.Stalled(); why == "" {
		t.Errorf("input waiting 11s, nothing read: live; want stalled")
	}
	// A stall timeout of 0 never stalls.
	m.thresholds.Stall = 0
	if why := m.Stalled(); why != "" {
		t.Errorf("stall timeout 0: stalled %q; want never", why)
	}
}

// TestOutputRateOfStatefulQuery: a windowed query writes results, not the
// records it read (which it aggregates): its output rate is the results
// written, not 0.
func TestOutputRateOfStatefulQuery(t *testing.T) {
	src := &script{snap: pipeline.Snapshot{State: enginestatus.Running, Stateful: true}}
	m, c := newTestMonitor(src)
	for i := range 11 {
		n := int64(i) * 1000
		src.snap.Counts = enginestatus.Records{In: n, Aggregated: n, Results: n / 100}
		m.Sample()
		if i < 10 {
			c.t = c.t.Add(time.Second)
		}
	}
	if r := m.Status().Rates; r.Input != 1000 || r.Output != 10 {
		t.Errorf("rates %+v; want input 1000, output 10 (the results)", r)
	}
}
