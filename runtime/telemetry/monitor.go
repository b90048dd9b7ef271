// Package telemetry observes a running pipeline: it samples its counters into
// rates, judges its health, and exposes both as the /status document and as
// Prometheus metrics. Sampling reads the pipeline's atomic counters; nothing on
// a record's path waits for it.
package telemetry

import (
	"context"
	"math"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/api/enginestatus"
	"github.com/sluice-dev/sluice/runtime/pipeline"
)

// Thresholds tune the health checks.
type Thresholds struct {
	// QueueUtilization marks a channel as congested above this fraction full.
	QueueUtilization float64
	// QueueSustained is how long congestion must last to degrade health.
	QueueSustained time.Duration
	// ErrorRate degrades health above this fraction of records failing over
	// ErrorWindow.
	ErrorRate   float64
	ErrorWindow time.Duration
	// Memory degrades health above this fraction of the Go memory limit.
	Memory float64
}

// DefaultThresholds are the thresholds unless configured.
var DefaultThresholds = Thresholds{
	QueueUtilization: 0.8,
	QueueSustained:   5 * time.Second,
	ErrorRate:        0.05,
	ErrorWindow:      time.Minute,
	Memory:           0.9,
}

// Source is what the monitor observes: a pipeline.
type Source interface {
	Snapshot() pipeline.Snapshot
}

type sample struct {
	at   time.Time
	snap pipeline.Snapshot
	util float64 // the fullest edge's utilization
}

// Monitor samples a pipeline once per Interval and keeps enough history for
// rates and sustained conditions.
type Monitor struct {
	src        Source
	version    string
	thresholds Thresholds
	interval   time.Duration
	now        func() time.Time

	mu      sync.Mutex
	samples []sample // oldest first, covering at least the longest window
}

// NewMonitor returns a monitor of src. version is the engine's build version.
func NewMonitor(src Source, version string, t Thresholds) *Monitor {
	return &Monitor{src: src, version: version, thresholds: t, interval: time.Second, now: time.Now}
}

// Run samples until ctx ends.
func (m *Monitor) Run(ctx context.Context) {
	t := time.NewTicker(m.interval)
	defer t.Stop()
	m.Sample()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.Sample()
		}
	}
}

// Sample takes one sample now.
func (m *Monitor) Sample() {
	s := sample{at: m.now(), snap: m.src.Snapshot()}
	for _, e := range s.snap.Edges {
		s.util = math.Max(s.util, e.Utilization)
	}
	keep := max(m.thresholds.ErrorWindow, m.thresholds.QueueSustained, 10*time.Second) + m.interval
	m.mu.Lock()
	defer m.mu.Unlock()
	m.samples = append(m.samples, s)
	cut := 0
	for cut < len(m.samples)-1 && s.at.Sub(m.samples[cut].at) > keep {
		cut++
	}
	m.samples = m.samples[cut:]
}

// since returns the oldest sample no older than d, and the newest sample.
func (m *Monitor) window(d time.Duration) (old, cur sample, ok bool) {
	if len(m.samples) == 0 {
		return sample{}, sample{}, false
	}
	cur = m.samples[len(m.samples)-1]
	old = cur
	for i := len(m.samples) - 1; i >= 0; i-- {
		if cur.at.Sub(m.samples[i].at) > d {
			break
		}
		old = m.samples[i]
	}
	return old, cur, true
}

// Status builds the /status document from the latest sample and a fresh
// snapshot.
func (m *Monitor) Status() enginestatus.Document {
	snap := m.src.Snapshot()
	now := m.now()
	doc := enginestatus.Document{
		Version:   enginestatus.Version,
		Engine:    m.version,
		Pipeline:  snap.State.String(),
		Run:       snap.Run,
		LastError: snap.LastError,
		StartTime: snap.Started.UTC(),
		Records: enginestatus.Records{
			In: snap.Counts.In, Out: snap.Counts.Out, Filtered: snap.Counts.Filtered,
			DeadLettered: snap.Counts.DeadLettered, Skipped: snap.Counts.Skipped,
			Failed: snap.Counts.Failed, InFlight: snap.Counts.InFlight(), Retries: snap.Retries,
		},
		Latency: enginestatus.Latency{P50: snap.LatencyP50.Seconds(), P99: snap.LatencyP99.Seconds()},
	}
	for _, s := range snap.Sources {
		doc.Sources = append(doc.Sources, enginestatus.Partition{Source: s.Source, Partition: s.Partition, Committed: s.Committed})
	}
	if !snap.Started.IsZero() {
		doc.UptimeSeconds = now.Sub(snap.Started).Seconds()
	}
	var worst enginestatus.Edge
	for _, e := range snap.Edges {
		edge := enginestatus.Edge{Name: e.Name, Depth: e.Depth, Capacity: e.Capacity, Utilization: e.Utilization,
			BlockedSends: e.BlockedSends, BlockedSeconds: e.BlockedSeconds}
		doc.Edges = append(doc.Edges, edge)
		if e.Utilization > worst.Utilization || worst.Name == "" {
			worst = edge
		}
	}
	doc.Backpressure = enginestatus.Backpressure{
		Active:         worst.Utilization >= m.thresholds.QueueUtilization,
		Level:          level(worst.Utilization),
		MaxUtilization: worst.Utilization,
		Edge:           worst.Name,
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	if old, cur, ok := m.window(10 * time.Second); ok {
		if dt := cur.at.Sub(old.at).Seconds(); dt > 0 {
			doc.Rates.Input = float64(cur.snap.Counts.In-old.snap.Counts.In) / dt
			doc.Rates.Output = float64(cur.snap.Counts.Out-old.snap.Counts.Out) / dt
			doc.Rates.Error = float64(errorsOf(cur.snap.Counts)-errorsOf(old.snap.Counts)) / dt
		}
	}
	doc.Checks = m.checks(snap, worst)
	doc.Health = verdict(doc.Checks)
	return doc
}

func errorsOf(c pipeline.Counts) int64 { return c.DeadLettered + c.Skipped + c.Failed }

// level grades a utilization: None below 50%, Low below 80%, Medium below 95%,
// High from there.
func level(u float64) string {
	switch {
	case u >= 0.95:
		return "High"
	case u >= 0.8:
		return "Medium"
	case u >= 0.5:
		return "Low"
	}
	return "None"
}

const (
	healthy   = "Healthy"
	degraded  = "Degraded"
	unhealthy = "Unhealthy"
)

// checks runs the health checks; m.mu is held.
func (m *Monitor) checks(snap pipeline.Snapshot, worst enginestatus.Edge) []enginestatus.Check {
	th := m.thresholds
	var out []enginestatus.Check

	state := enginestatus.Check{Name: "pipeline", Status: healthy, Threshold: 0}
	if snap.State == pipeline.Failed {
		state.Status, state.Value, state.Message = unhealthy, 1, "the pipeline failed: "+snap.LastError
	}
	out = append(out, state)

	// Channel capacity: congested in every sample of the sustained window.
	queue := enginestatus.Check{Name: "channel_capacity", Status: healthy, Value: worst.Utilization, Threshold: th.QueueUtilization}
	if old, cur, ok := m.window(th.QueueSustained); ok && cur.at.Sub(old.at) >= th.QueueSustained-m.interval/2 {
		sustained := true
		minUtil := 1.0
		for _, s := range m.samples {
			if cur.at.Sub(s.at) > th.QueueSustained {
				continue
			}
			minUtil = math.Min(minUtil, s.util)
			if s.util < th.QueueUtilization {
				sustained = false
			}
		}
		if sustained && worst.Utilization >= th.QueueUtilization {
			queue.Status = degraded
			queue.Value = minUtil
			queue.Message = "channel " + worst.Name + " has been above the threshold for " + th.QueueSustained.String()
		}
	}
	out = append(out, queue)

	errs := enginestatus.Check{Name: "error_rate", Status: healthy, Threshold: th.ErrorRate}
	if old, cur, ok := m.window(th.ErrorWindow); ok {
		in := cur.snap.Counts.In - old.snap.Counts.In
		if in > 0 {
			errs.Value = float64(errorsOf(cur.snap.Counts)-errorsOf(old.snap.Counts)) / float64(in)
		}
		if errs.Value > th.ErrorRate {
			errs.Status = degraded
			errs.Message = "more than the threshold of records failed over " + th.ErrorWindow.String()
		}
	}
	out = append(out, errs)

	mem := enginestatus.Check{Name: "memory", Status: healthy, Threshold: th.Memory}
	if limit := debug.SetMemoryLimit(-1); limit > 0 && limit < math.MaxInt64 {
		mem.Value = float64(heapBytes()) / float64(limit)
		if mem.Value > th.Memory {
			mem.Status = degraded
			mem.Message = "the heap is near the Go memory limit"
		}
	}
	out = append(out, mem)
	return out
}

func verdict(checks []enginestatus.Check) string {
	v := healthy
	for _, c := range checks {
		switch {
		case c.Status == unhealthy:
			return unhealthy
		case c.Status == degraded:
			v = degraded
		}
	}
	return v
}

// heapBytes reads the live heap size without stopping the world.
func heapBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
