// Package telemetry observes a running pipeline: it samples its counters into
// rates, judges its health, and exposes both as the /status document and as
// Prometheus metrics; it also sets up tracing. Sampling reads the pipeline's
// atomic counters; nothing on a record's path waits for it.
package telemetry

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/api/enginestatus"
	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/pipeline"
)

// Thresholds tune the health checks.
type Thresholds struct {
	// QueueUtilization marks a channel as congested above this fraction full.
	QueueUtilization float64
	// QueueSustained is how long congestion must last to degrade health.
	QueueSustained time.Duration
	// ProcessingRate degrades health when the processing rate falls below
	// this fraction of its baseline, over RateBaseline, while input waits.
	ProcessingRate float64
	RateBaseline   time.Duration
	// ErrorRate degrades health above this fraction of records failing over
	// ErrorWindow.
	ErrorRate   float64
	ErrorWindow time.Duration
	// Memory degrades health above this fraction of the Go memory limit.
	Memory float64
	// Stall makes the engine unhealthy, and /healthz fail, when it has work
	// pending and completes no record for this long; 0 never does.
	Stall time.Duration
}

// ThresholdsFor returns the thresholds of a spec's health section, which
// Default has filled.
func ThresholdsFor(h v1alpha1.HealthSpec) Thresholds {
	return Thresholds{
		QueueUtilization: float64(h.QueueUtilizationPercent) / 100,
		QueueSustained:   h.QueueSustained.Duration,
		ProcessingRate:   float64(h.ProcessingRatePercent) / 100,
		RateBaseline:     h.RateBaseline.Duration,
		ErrorRate:        float64(*h.ErrorRatePercent) / 100,
		ErrorWindow:      h.ErrorWindow.Duration,
		Memory:           float64(h.MemoryPercent) / 100,
		Stall:            h.StallTimeout.Duration,
	}
}

// DefaultThresholds returns the thresholds of a spec that sets none.
func DefaultThresholds() Thresholds {
	var s v1alpha1.StreamQuerySpec
	s.Default()
	return ThresholdsFor(s.Health)
}

// Source is what the monitor observes: a pipeline.
type Source interface {
	Snapshot() pipeline.Snapshot
}

type sample struct {
	at     time.Time
	counts enginestatus.Records
	// taken counts the records the query took: those read, and of a
	// statement set those each statement took, whose failures the
	// counts sum.
	taken int64
	// statements are a statement set's statements' counts.
	statements []enginestatus.Records
	util       float64 // the fullest edge's utilization
	edge       string  // the fullest edge
	// inputWaiting: some source's channel held batches, so the workers had
	// input they had not taken yet.
	inputWaiting bool
}

// saturation is the fraction above which a sample counts a channel as full.
const saturation = 0.9

// queueRecovery is how long the channels must stay below the threshold
// before a congestion verdict clears (at most queueSustained): one sample
// of relief in a congested pipeline, a sink taking a batch, is not a
// recovery, and a verdict that flapped with each would page in vain.
const queueRecovery = 10 * time.Second

// Monitor samples a pipeline once a second and keeps enough history for
// rates, baselines and sustained conditions.
type Monitor struct {
	src        Source
	version    string
	thresholds Thresholds
	interval   time.Duration
	now        func() time.Time
	log        *slog.Logger

	mu        sync.Mutex
	samples   []sample // oldest first
	saturated map[string]int64
	health    enginestatus.Health // the verdict at the last sample
	pressure  enginestatus.Level  // the backpressure level at the last sample
	congested congestion
	progress  progress
	// overflowed are the business metrics whose overflow was logged.
	overflowed map[string]bool
}

// progress follows whether the pipeline completes records while it has work.
type progress struct {
	processed int64
	// since is the last sample at which the pipeline completed a record,
	// had nothing pending, was not running, or could not reach a service:
	// a stall is counted from there.
	since time.Time
}

// observe takes one sample into the progress.
func (p *progress) observe(s sample, snap pipeline.Snapshot) {
	done := processed(s.counts)
	pending := s.inputWaiting || s.counts.InFlight > 0
	if !pending || done != p.processed || snap.State != enginestatus.Running || snap.Unavailable != "" || p.since.IsZero() {
		p.since = s.at
	}
	p.processed = done
}

// congestion follows the channels' utilization from sample to sample: a
// verdict with hysteresis, so that a sustained condition is one transition
// and its end one more.
type congestion struct {
	above, below time.Time // the first sample of the current run above, or below, the threshold
	degraded     bool
	edge         string // the fullest edge when the verdict was reached
}

// observe takes one sample's utilization into the verdict.
func (c *congestion) observe(at time.Time, util float64, edge string, th Thresholds) {
	if util >= th.QueueUtilization {
		if c.above.IsZero() {
			c.above = at
		}
		c.below = time.Time{}
	} else {
		if c.below.IsZero() {
			c.below = at
		}
		c.above = time.Time{}
	}
	switch {
	case !c.degraded && !c.above.IsZero() && at.Sub(c.above) >= th.QueueSustained:
		c.degraded, c.edge = true, edge
	case c.degraded && !c.below.IsZero() && at.Sub(c.below) >= min(queueRecovery, th.QueueSustained):
		c.degraded = false
	}
}

// NewMonitor returns a monitor of src. version is the engine's build version;
// log receives health and backpressure transitions (nil discards them).
func NewMonitor(src Source, version string, t Thresholds, log *slog.Logger) *Monitor {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Monitor{
		src: src, version: version, thresholds: t, interval: time.Second, now: time.Now, log: log,
		saturated: map[string]int64{}, health: enginestatus.Healthy, pressure: enginestatus.LevelNone,
		overflowed: map[string]bool{},
	}
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

// Sample takes one sample now and logs health and backpressure transitions.
func (m *Monitor) Sample() {
	snap := m.src.Snapshot()
	s := sample{at: m.now(), counts: snap.Counts, taken: snap.Counts.In}
	if len(snap.Statements) > 0 {
		s.taken = 0
		for _, st := range snap.Statements {
			s.taken += st.Counts.In
			s.statements = append(s.statements, st.Counts)
		}
	}
	fullest := ""
	for _, e := range snap.Edges {
		if e.Utilization > 0 && e.Utilization >= s.util {
			s.util, fullest = e.Utilization, e.Name
		}
		if e.Input && e.Depth > 0 {
			s.inputWaiting = true
		}
	}
	th := m.thresholds
	keep := max(th.ErrorWindow, th.QueueSustained, th.RateBaseline, 10*time.Second) + 2*m.interval
	m.mu.Lock()
	m.samples = append(m.samples, s)
	cut := 0
	for cut < len(m.samples)-1 && s.at.Sub(m.samples[cut].at) > keep {
		cut++
	}
	m.samples = m.samples[cut:]
	for _, e := range snap.Edges {
		if e.Utilization >= saturation {
			m.saturated[e.Name]++
		}
	}
	s.edge = fullest
	m.congested.observe(s.at, s.util, fullest, th)
	m.progress.observe(s, snap)
	doc := m.statusLocked(snap)
	prevHealth, prevPressure := m.health, m.pressure
	m.health, m.pressure = doc.Health, doc.Backpressure.Level
	var overflowed []enginestatus.UserMetric
	for _, um := range doc.Metrics {
		if um.OverflowRows > 0 && !m.overflowed[um.Name] {
			m.overflowed[um.Name] = true
			overflowed = append(overflowed, um)
		}
	}
	m.mu.Unlock()

	if doc.Health != prevHealth {
		level := slog.LevelWarn
		if doc.Health == enginestatus.Healthy {
			level = slog.LevelInfo
		}
		var failing []string
		for _, c := range doc.Checks {
			if c.Status != enginestatus.Healthy {
				failing = append(failing, string(c.Name)+": "+c.Message)
			}
		}
		m.log.Log(context.Background(), level, "health changed", "from", prevHealth, "to", doc.Health, "checks", failing)
	}
	for _, um := range overflowed {
		m.log.Warn("metric reached its series limit", "metric", um.Name, "maxSeries", um.MaxSeries, "detail", um.Warning())
	}
	if doc.Backpressure.Level != prevPressure {
		level := slog.LevelWarn
		if doc.Backpressure.Level.Rank() <= enginestatus.LevelLow.Rank() {
			level = slog.LevelInfo
		}
		m.log.Log(context.Background(), level, "backpressure changed", "from", prevPressure, "to", doc.Backpressure.Level,
			"edge", doc.Backpressure.Edge, "utilization", doc.Backpressure.MaxUtilization)
	}
}

// window returns the oldest sample no older than d before the newest, and the
// newest.
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

// Saturated returns, per edge, the number of samples in which the channel was
// at least 90% full.
func (m *Monitor) Saturated() map[string]int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.saturated)
}

// Status builds the /status document from a fresh snapshot and the samples.
func (m *Monitor) Status() enginestatus.Document {
	snap := m.src.Snapshot()
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.statusLocked(snap)
}

func (m *Monitor) statusLocked(snap pipeline.Snapshot) enginestatus.Document {
	now := m.now()
	doc := enginestatus.Document{
		Version:   enginestatus.Version,
		Engine:    m.version,
		Pipeline:  snap.State,
		Run:       snap.Run,
		LastError: snap.LastError,
		StartTime: snap.Started.UTC(),
		Records:   snap.Counts,
		Latency:   enginestatus.Latency{P50: snap.LatencyP50.Seconds(), P99: snap.LatencyP99.Seconds()},
	}
	if c := snap.Checkpoints; c != nil {
		doc.Checkpoints = &enginestatus.Checkpoints{IntervalSeconds: c.Interval.Seconds(), Completed: c.Completed, Aborted: c.Aborted}
		if c.Completed > 0 {
			doc.Checkpoints.Last = &enginestatus.Checkpoint{ID: c.LastID, Time: c.LastAt, AgeSeconds: now.Sub(c.LastAt).Seconds(),
				DurationSeconds: c.LastDuration.Seconds(), StateBytes: c.LastBytes}
		}
		if c.RestoredID != 0 {
			doc.Checkpoints.Restored = &enginestatus.Checkpoint{ID: c.RestoredID, Time: c.RestoredAt, AgeSeconds: now.Sub(c.RestoredAt).Seconds()}
			doc.Checkpoints.RestoreSeconds = c.RestoreDuration.Seconds()
		}
	}
	doc.Metrics = snap.Metrics
	for i, st := range snap.Statements {
		doc.Statements = append(doc.Statements, enginestatus.Statement{Name: st.Name, Pipeline: st.State, Records: st.Counts, Rates: m.statementRates(i), LastError: st.LastError})
	}
	for _, um := range snap.Metrics {
		if w := um.Warning(); w != "" {
			doc.Warnings = append(doc.Warnings, w)
		}
	}
	if snap.Stateful {
		doc.EventTime = &enginestatus.EventTime{StateRows: snap.StateRows, ExpiredGroups: snap.ExpiredGroups}
		if snap.Watermark != math.MinInt64 && snap.Watermark != math.MaxInt64 {
			doc.EventTime.Watermark = time.Unix(0, snap.Watermark).UTC()
		}
	}
	for _, s := range snap.Sources {
		part := enginestatus.Partition{Source: s.Source, Topic: s.Topic, Partition: s.Partition, Committed: s.Committed}
		if s.Lag >= 0 {
			lag := s.Lag
			part.Lag = &lag
			total := lag
			if doc.Lag != nil {
				total += *doc.Lag
			}
			doc.Lag = &total
		}
		doc.Sources = append(doc.Sources, part)
	}
	if !snap.Started.IsZero() {
		doc.UptimeSeconds = now.Sub(snap.Started).Seconds()
	}
	// The fullest edge; among equally full ones the last, nearest the sink:
	// when a slow stage fills every channel before it, the congestion starts
	// at the channel that feeds it.
	var worst enginestatus.Edge
	for _, e := range snap.Edges {
		edge := enginestatus.Edge{Name: e.Name, Depth: e.Depth, Capacity: e.Capacity, Utilization: e.Utilization,
			BlockedSends: e.BlockedSends, BlockedSeconds: e.BlockedSeconds}
		doc.Edges = append(doc.Edges, edge)
		if e.Utilization > 0 && e.Utilization >= worst.Utilization {
			worst = edge
		}
	}
	// The level is the fullest any channel was over the last few samples:
	// a congested channel is full most of the time, not all of it (each
	// batch the stage after it takes frees a slot for a moment), and a
	// reader polling now and then must not see it flap between levels.
	util, edge := worst.Utilization, worst.Name
	for i := len(m.samples) - 1; i >= 0 && now.Sub(m.samples[i].at) <= pressureWindow; i-- {
		if s := m.samples[i]; s.util > util {
			util, edge = s.util, s.edge
		}
	}
	doc.Backpressure = enginestatus.Backpressure{
		Active:         util >= m.thresholds.QueueUtilization,
		Level:          enginestatus.LevelOf(util),
		MaxUtilization: util,
		Edge:           edge,
	}
	doc.Rates = m.rates()
	doc.Checks = m.checks(snap, worst)
	doc.Health = verdict(doc.Checks)
	return doc
}

// pressureWindow is how far back the backpressure level looks.
const pressureWindow = 3 * time.Second

// rateWindow is the window of the reported rates.
const rateWindow = 10 * time.Second

func (m *Monitor) rates() enginestatus.Rates {
	if old, cur, ok := m.window(rateWindow); ok {
		return ratesOf(old.counts, cur.counts, cur.at.Sub(old.at))
	}
	return enginestatus.Rates{}
}

// statementRates returns the rates of statement i of a set, over the
// samples of it in the last rateWindow.
func (m *Monitor) statementRates(i int) enginestatus.Rates {
	old, cur, ok := m.window(rateWindow)
	if !ok || i >= len(old.statements) || i >= len(cur.statements) {
		return enginestatus.Rates{}
	}
	return ratesOf(old.statements[i], cur.statements[i], cur.at.Sub(old.at))
}

// ratesOf returns the rates of the counts from old to cur, d apart.
func ratesOf(old, cur enginestatus.Records, d time.Duration) enginestatus.Rates {
	var r enginestatus.Rates
	if dt := d.Seconds(); dt > 0 {
		r.Input = float64(cur.In-old.In) / dt
		// Output is rows written, whatever made them: a stateful query
		// writes results, not the records it read.
		r.Output = float64(written(cur)-written(old)) / dt
		r.Error = float64(errorsOf(cur)-errorsOf(old)) / dt
	}
	return r
}

func errorsOf(c enginestatus.Records) int64 { return c.DeadLettered + c.Skipped + c.Failed }

// written counts the rows the sink wrote: records passed through, and the
// results of windows, moving aggregates and joins.
func written(c enginestatus.Records) int64 { return c.Out + c.Results }

// processed counts the records whose handling is complete.
func processed(c enginestatus.Records) int64 { return c.In - c.InFlight }

// checks runs the health checks; m.mu is held.
func (m *Monitor) checks(snap pipeline.Snapshot, worst enginestatus.Edge) []enginestatus.Check {
	th := m.thresholds
	var out []enginestatus.Check

	state := enginestatus.Check{Name: enginestatus.CheckPipeline, Status: enginestatus.Healthy}
	if snap.State == enginestatus.Failed {
		state.Status, state.Value, state.Message = enginestatus.Unhealthy, 1, "the pipeline failed: "+snap.LastError
	}
	out = append(out, state)

	// Channel capacity: above the threshold in every sample for
	// queueSustained, until below it in every sample for queueRecovery.
	queue := enginestatus.Check{Name: enginestatus.CheckChannelCapacity, Status: enginestatus.Healthy, Value: worst.Utilization, Threshold: th.QueueUtilization}
	if c := m.congested; c.degraded {
		queue.Status = enginestatus.Degraded
		if c.above.IsZero() {
			queue.Message = fmt.Sprintf("channel %s was above %.0f%% full for at least %s; recovering since %s",
				c.edge, 100*th.QueueUtilization, th.QueueSustained, c.below.UTC().Format(time.RFC3339))
		} else {
			queue.Message = fmt.Sprintf("channel %s has been above %.0f%% full for %s, since %s",
				c.edge, 100*th.QueueUtilization, m.now().Sub(c.above).Round(time.Second), c.above.UTC().Format(time.RFC3339))
		}
	}
	out = append(out, queue)

	// Processing rate: the last rateWindow against the baseline before it.
	rate := enginestatus.Check{Name: enginestatus.CheckProcessingRate, Status: enginestatus.Healthy, Value: 1, Threshold: th.ProcessingRate}
	if base, cur, ok := m.window(th.RateBaseline); ok && cur.at.Sub(base.at) >= 3*rateWindow {
		recent, _, _ := m.window(rateWindow)
		baseRate := float64(processed(recent.counts)-processed(base.counts)) / recent.at.Sub(base.at).Seconds()
		curRate := 0.0
		if dt := cur.at.Sub(recent.at).Seconds(); dt > 0 {
			curRate = float64(processed(cur.counts)-processed(recent.counts)) / dt
		}
		if baseRate > 0 {
			rate.Value = curRate / baseRate
			if rate.Value < th.ProcessingRate && cur.inputWaiting {
				rate.Status = enginestatus.Degraded
				rate.Message = fmt.Sprintf("processing %.0f records/s, %.0f%% of the baseline of %.0f records/s, while input waits", curRate, 100*rate.Value, baseRate)
			}
		}
	}
	out = append(out, rate)

	errs := enginestatus.Check{Name: enginestatus.CheckErrorRate, Status: enginestatus.Healthy, Threshold: th.ErrorRate}
	if old, cur, ok := m.window(th.ErrorWindow); ok {
		if in := cur.taken - old.taken; in > 0 {
			errs.Value = float64(errorsOf(cur.counts)-errorsOf(old.counts)) / float64(in)
		}
		if errs.Value > th.ErrorRate {
			errs.Status = enginestatus.Degraded
			errs.Message = fmt.Sprintf("%.1f%% of records failed over %s", 100*errs.Value, th.ErrorWindow)
		}
	}
	out = append(out, errs)

	conn := enginestatus.Check{Name: enginestatus.CheckConnectivity, Status: enginestatus.Healthy}
	if snap.Unavailable != "" {
		conn.Status, conn.Value, conn.Message = enginestatus.Degraded, 1, snap.Unavailable
	}
	out = append(out, conn)

	out = append(out, m.progressCheck())

	mem := enginestatus.Check{Name: enginestatus.CheckMemory, Status: enginestatus.Healthy, Threshold: th.Memory}
	if limit := debug.SetMemoryLimit(-1); limit > 0 && limit < math.MaxInt64 {
		mem.Value = float64(heapBytes()) / float64(limit)
		if mem.Value > th.Memory {
			mem.Status = enginestatus.Degraded
			mem.Message = fmt.Sprintf("the heap is %.0f%% of the Go memory limit", 100*mem.Value)
		}
	}
	out = append(out, mem)
	return out
}

// progressCheck judges whether the pipeline is stalled; m.mu is held.
func (m *Monitor) progressCheck() enginestatus.Check {
	c := enginestatus.Check{Name: enginestatus.CheckProgress, Status: enginestatus.Healthy, Threshold: m.thresholds.Stall.Seconds()}
	if m.progress.since.IsZero() {
		return c
	}
	stalled := m.now().Sub(m.progress.since)
	c.Value = stalled.Seconds()
	if m.thresholds.Stall > 0 && stalled >= m.thresholds.Stall {
		c.Status = enginestatus.Unhealthy
		c.Message = fmt.Sprintf("no record completed for %s while work is pending (input waiting or records in flight) and every service is reachable",
			stalled.Round(time.Second))
	}
	return c
}

// Stalled returns why the pipeline is stalled, or "" when it is making
// progress or has nothing to do: what /healthz answers.
func (m *Monitor) Stalled() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c := m.progressCheck(); c.Status != enginestatus.Healthy {
		return c.Message
	}
	return ""
}

func verdict(checks []enginestatus.Check) enginestatus.Health {
	v := enginestatus.Healthy
	for _, c := range checks {
		switch c.Status {
		case enginestatus.Unhealthy:
			return enginestatus.Unhealthy
		case enginestatus.Degraded:
			v = enginestatus.Degraded
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
