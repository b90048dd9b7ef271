package telemetry

import (
	"math"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-dev/sluice/api/enginestatus"
	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/pipeline"
)

// Collector exports a pipeline's counters, channels and health to
// Prometheus. It reads a snapshot at scrape time, so records pay nothing for
// being counted twice. Every label has a bounded set of values: outcomes,
// stages, edges, checks, source partitions.
type Collector struct {
	mon     *Monitor
	tracing bool
	descs   map[string]*prometheus.Desc
}

// metricDefs are the collector's metrics: name, help, labels.
var metricDefs = []struct {
	name, help string
	labels     []string
}{
	{"sluice_records_total", "Records by outcome: in (read), out (written), filtered, dead_lettered, skipped, failed, aggregated (into window groups), late (behind the watermark, dropped), revoked (in flight when their Kafka partition moved to another engine, which reads them again), restored (read again after a restart from a checkpoint that holds them, or written again to a repartition topic by an engine that crashed, dropped), repartitioned (rows written to the query's repartition topic, which an engine reads again as input); and results (rows a windowed aggregation wrote, outside the balance).", []string{"outcome"}},
	{"sluice_state_rows", "Groups of open windows or of a continuous aggregation, or rows held for moving aggregates, by the stateful stage.", nil},
	{"sluice_expired_groups_total", "Groups of a continuous aggregation the stateful stage dropped, no row having changed them for spec.state.ttl.", nil},
	{"sluice_watermark_seconds", "The stateful stage's event-time watermark, in seconds since the epoch.", nil},
	{"sluice_record_errors_total", "Records that failed, by the stage they failed in: decode, filter, project, late, aggregate, join, sink, other.", []string{"stage"}},
	{"sluice_sink_retries_total", "Sink writes retried after a failure.", nil},
	{"sluice_batches_total", "Batches read from sources.", nil},
	{"sluice_traced_records_total", "Records written within a sampled trace; over records out, the trace correlation.", nil},
	{"sluice_channel_depth", "Batches waiting in a channel between stages.", []string{"edge"}},
	{"sluice_channel_capacity", "Capacity of a channel between stages, in batches.", []string{"edge"}},
	{"sluice_channel_utilization_ratio", "Depth over capacity of a channel.", []string{"edge"}},
	{"sluice_channel_sends_total", "Messages sent on a channel.", []string{"edge"}},
	{"sluice_channel_saturated_samples_total", "Once-a-second samples in which a channel was at least 90% full.", []string{"edge"}},
	{"sluice_channel_receive_wait_seconds_total", "Time the receiver of a channel spent waiting for a message.", []string{"edge"}},
	{"sluice_backpressure_events_total", "Sends that found a channel full and waited.", []string{"edge"}},
	{"sluice_backpressure_blocked_seconds_total", "Time senders spent waiting on a full channel.", []string{"edge"}},
	{"sluice_active_workers", "Partition workers running.", nil},
	{"sluice_pipeline_running", "1 while the pipeline is running or draining, else 0.", nil},
	{"sluice_uptime_seconds", "Seconds since the pipeline started.", nil},
	{"sluice_input_records_per_second", "Records read per second, over the last 10 seconds.", nil},
	{"sluice_output_records_per_second", "Rows written per second, over the last 10 seconds: records passed through, and the results of windows, moving aggregates and joins.", nil},
	{"sluice_health_status", "Health by check, and overall: 0 Healthy, 1 Degraded, 2 Unhealthy.", []string{"check"}},
	{"sluice_pipeline_latency_seconds", "Time from a batch leaving its source to its rows being written, by quantile over the run.", []string{"quantile"}},
	{"sluice_source_committed_offset", "Offset up to which a source partition's records are all handled.", []string{"source", "topic", "partition"}},
	{"sluice_tracing_enabled", "1 when spans are exported, else 0.", nil},
	{"sluice_checkpoints_total", "Checkpoints of the query's state this engine saved (spec.state).", nil},
	{"sluice_checkpoint_transactions_aborted_total", "Exactly-once transactions of this engine's partition checkpoints (several engines) that aborted, each taking every partition the engine reads back to its last committed checkpoint.", nil},
	{"sluice_checkpoint_interval_seconds", "spec.state.checkpointInterval: how often the engine takes a checkpoint.", nil},
	{"sluice_checkpoint_last_timestamp_seconds", "When the newest checkpoint this engine saved was taken, in seconds since the epoch: time() minus it is the checkpoint's age.", nil},
	{"sluice_checkpoint_duration_seconds", "How long the newest checkpoint took, from taking the state to saving it.", nil},
	{"sluice_checkpoint_state_bytes", "The size of the newest checkpoint's state.", nil},
	{"sluice_checkpoint_restore_seconds", "How long restoring the state from a checkpoint took when the engine started; 0 without one.", nil},
	{"sluice_consumer_lag_records", "Records of a source partition not yet handled, for sources that know it (Kafka).", []string{"source", "topic", "partition"}},
}

// NewCollector returns a collector of what mon observes. tracing says whether
// spans are exported.
func NewCollector(mon *Monitor, tracing bool) *Collector {
	c := &Collector{mon: mon, tracing: tracing, descs: map[string]*prometheus.Desc{}}
	for _, d := range metricDefs {
		c.descs[d.name] = prometheus.NewDesc(d.name, d.help, d.labels, nil)
	}
	return c
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	// One snapshot serves both the status verdicts and the counters.
	s := c.mon.src.Snapshot()
	c.mon.mu.Lock()
	doc := c.mon.statusLocked(s)
	c.mon.mu.Unlock()
	counter := func(name string, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(c.descs[name], prometheus.CounterValue, v, labels...)
	}
	gauge := func(name string, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(c.descs[name], prometheus.GaugeValue, v, labels...)
	}
	for _, o := range []struct {
		outcome string
		n       int64
	}{{"in", s.Counts.In}, {"out", s.Counts.Out}, {"filtered", s.Counts.Filtered},
		{"dead_lettered", s.Counts.DeadLettered}, {"skipped", s.Counts.Skipped}, {"failed", s.Counts.Failed},
		{"aggregated", s.Counts.Aggregated}, {"late", s.Counts.Late}, {"revoked", s.Counts.Revoked}, {"restored", s.Counts.Restored}, {"results", s.Counts.Results},
		{"repartitioned", s.Counts.Repartitioned}} {
		counter("sluice_records_total", float64(o.n), o.outcome)
	}
	if c := s.Checkpoints; c != nil {
		counter("sluice_checkpoints_total", float64(c.Completed))
		counter("sluice_checkpoint_transactions_aborted_total", float64(c.Aborted))
		gauge("sluice_checkpoint_interval_seconds", c.Interval.Seconds())
		if c.Completed > 0 {
			gauge("sluice_checkpoint_last_timestamp_seconds", float64(c.LastAt.UnixNano())/1e9)
			gauge("sluice_checkpoint_duration_seconds", c.LastDuration.Seconds())
			gauge("sluice_checkpoint_state_bytes", float64(c.LastBytes))
		}
		gauge("sluice_checkpoint_restore_seconds", c.RestoreDuration.Seconds())
	}
	if s.Stateful {
		gauge("sluice_state_rows", float64(s.StateRows))
		counter("sluice_expired_groups_total", float64(s.ExpiredGroups))
		if s.Watermark != math.MinInt64 && s.Watermark != math.MaxInt64 {
			gauge("sluice_watermark_seconds", float64(s.Watermark)/1e9)
		}
	}
	for i, stage := range pipeline.ErrorStages {
		counter("sluice_record_errors_total", float64(s.StageErrors[i]), stage)
	}
	counter("sluice_sink_retries_total", float64(s.Counts.Retries))
	counter("sluice_batches_total", float64(s.Batches))
	counter("sluice_traced_records_total", float64(s.Traced))
	saturated := c.mon.Saturated()
	for _, e := range s.Edges {
		gauge("sluice_channel_depth", float64(e.Depth), e.Name)
		gauge("sluice_channel_capacity", float64(e.Capacity), e.Name)
		gauge("sluice_channel_utilization_ratio", e.Utilization, e.Name)
		counter("sluice_channel_sends_total", float64(e.Sends), e.Name)
		counter("sluice_channel_saturated_samples_total", float64(saturated[e.Name]), e.Name)
		counter("sluice_channel_receive_wait_seconds_total", e.ReceiveWaitSeconds, e.Name)
		counter("sluice_backpressure_events_total", float64(e.BlockedSends), e.Name)
		counter("sluice_backpressure_blocked_seconds_total", e.BlockedSeconds, e.Name)
	}
	gauge("sluice_active_workers", float64(s.ActiveWorkers))
	running := 0.0
	if s.State == enginestatus.Running || s.State == enginestatus.Draining {
		running = 1
	}
	gauge("sluice_pipeline_running", running)
	if !s.Started.IsZero() {
		gauge("sluice_uptime_seconds", time.Since(s.Started).Seconds())
	}
	gauge("sluice_input_records_per_second", doc.Rates.Input)
	gauge("sluice_output_records_per_second", doc.Rates.Output)
	gauge("sluice_health_status", healthValue(doc.Health), "overall")
	for _, chk := range doc.Checks {
		gauge("sluice_health_status", healthValue(chk.Status), string(chk.Name))
	}
	gauge("sluice_pipeline_latency_seconds", s.LatencyP50.Seconds(), "0.5")
	gauge("sluice_pipeline_latency_seconds", s.LatencyP99.Seconds(), "0.99")
	for _, p := range s.Sources {
		gauge("sluice_source_committed_offset", float64(p.Committed), p.Source, p.Topic, strconv.Itoa(int(p.Partition)))
		if p.Lag >= 0 {
			gauge("sluice_consumer_lag_records", float64(p.Lag), p.Source, p.Topic, strconv.Itoa(int(p.Partition)))
		}
	}
	tracing := 0.0
	if c.tracing {
		tracing = 1
	}
	gauge("sluice_tracing_enabled", tracing)
}

func healthValue(status enginestatus.Health) float64 {
	switch status {
	case enginestatus.Degraded:
		return 1
	case enginestatus.Unhealthy:
		return 2
	}
	return 0
}

// BatchMetrics implements pipeline.Observer with histograms of batch
// durations and sizes per stage. Each duration carries the batch's trace id as
// an exemplar, which links a slow bucket to a trace.
type BatchMetrics struct {
	duration *prometheus.HistogramVec
	size     *prometheus.HistogramVec
	stages   map[pipeline.Stage]stageHistograms
}

type stageHistograms struct {
	duration prometheus.ExemplarObserver
	size     prometheus.Observer
}

// NewBatchMetrics registers the batch histograms with reg.
func NewBatchMetrics(reg prometheus.Registerer) *BatchMetrics {
	m := &BatchMetrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_batch_duration_seconds",
			Help:    "Time a stage spent on one batch: read (filling it), process (the query's operators), write (the sink, with retries).",
			Buckets: prometheus.ExponentialBuckets(10e-6, 4, 10), // 10µs to 2.6s
		}, []string{"stage"}),
		size: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_batch_size_records",
			Help:    "Records in a batch as a stage received it.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8), // 1 to 16384
		}, []string{"stage"}),
		stages: map[pipeline.Stage]stageHistograms{},
	}
	reg.MustRegister(m.duration, m.size)
	for _, st := range []pipeline.Stage{pipeline.StageRead, pipeline.StageProcess, pipeline.StageWrite} {
		m.stages[st] = stageHistograms{
			duration: m.duration.WithLabelValues(string(st)).(prometheus.ExemplarObserver),
			size:     m.size.WithLabelValues(string(st)),
		}
	}
	return m
}

// ObserveBatch implements pipeline.Observer.
func (m *BatchMetrics) ObserveBatch(stage pipeline.Stage, d time.Duration, records int, tc message.TraceContext) {
	h, ok := m.stages[stage]
	if !ok {
		return
	}
	if tc.Flags&1 != 0 {
		h.duration.ObserveWithExemplar(d.Seconds(), prometheus.Labels{"trace_id": tc.TraceIDString()})
	} else {
		h.duration.(prometheus.Observer).Observe(d.Seconds())
	}
	h.size.Observe(float64(records))
}
