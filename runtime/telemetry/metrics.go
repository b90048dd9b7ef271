package telemetry

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector exports a pipeline's counters and channels to Prometheus. It reads
// a snapshot at scrape time, so records pay nothing for being counted twice.
type Collector struct {
	src Source

	records, retries, batches                *prometheus.Desc
	depth, capacity, util, blocked, blockedN *prometheus.Desc
	sends, up, uptime, latency               *prometheus.Desc
}

// NewCollector returns a collector of src's metrics.
func NewCollector(src Source) *Collector {
	edge := []string{"edge"}
	return &Collector{
		src:      src,
		records:  prometheus.NewDesc("sluice_records_total", "Records by outcome: in (read), out (written), filtered, dead_lettered, skipped, failed.", []string{"outcome"}, nil),
		retries:  prometheus.NewDesc("sluice_sink_retries_total", "Sink writes retried after a failure.", nil, nil),
		batches:  prometheus.NewDesc("sluice_batches_total", "Batches read from sources.", nil, nil),
		depth:    prometheus.NewDesc("sluice_channel_depth", "Batches waiting in a channel between stages.", edge, nil),
		capacity: prometheus.NewDesc("sluice_channel_capacity", "Capacity of a channel between stages, in batches.", edge, nil),
		util:     prometheus.NewDesc("sluice_channel_utilization_ratio", "Depth over capacity of a channel.", edge, nil),
		sends:    prometheus.NewDesc("sluice_channel_sends_total", "Messages sent on a channel.", edge, nil),
		blocked:  prometheus.NewDesc("sluice_backpressure_events_total", "Sends that found a channel full and waited.", edge, nil),
		blockedN: prometheus.NewDesc("sluice_backpressure_blocked_seconds_total", "Time senders spent waiting on a full channel.", edge, nil),
		up:       prometheus.NewDesc("sluice_pipeline_running", "1 while the pipeline is running or draining, else 0.", nil, nil),
		uptime:   prometheus.NewDesc("sluice_uptime_seconds", "Seconds since the pipeline started.", nil, nil),
		latency:  prometheus.NewDesc("sluice_pipeline_latency_seconds", "Time from a batch leaving its source to its rows being written, by quantile over the run.", []string{"quantile"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.records, c.retries, c.batches, c.depth, c.capacity, c.util, c.sends, c.blocked, c.blockedN, c.up, c.uptime, c.latency} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.src.Snapshot()
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter(c.records, float64(s.Counts.In), "in")
	counter(c.records, float64(s.Counts.Out), "out")
	counter(c.records, float64(s.Counts.Filtered), "filtered")
	counter(c.records, float64(s.Counts.DeadLettered), "dead_lettered")
	counter(c.records, float64(s.Counts.Skipped), "skipped")
	counter(c.records, float64(s.Counts.Failed), "failed")
	counter(c.retries, float64(s.Retries))
	counter(c.batches, float64(s.Batches))
	for _, e := range s.Edges {
		gauge(c.depth, float64(e.Depth), e.Name)
		gauge(c.capacity, float64(e.Capacity), e.Name)
		gauge(c.util, e.Utilization, e.Name)
		counter(c.sends, float64(e.Sends), e.Name)
		counter(c.blocked, float64(e.BlockedSends), e.Name)
		counter(c.blockedN, e.BlockedSeconds, e.Name)
	}
	running := 0.0
	if st := s.State.String(); st == "Running" || st == "Draining" {
		running = 1
	}
	gauge(c.up, running)
	if !s.Started.IsZero() {
		gauge(c.uptime, time.Since(s.Started).Seconds())
	}
	gauge(c.latency, s.LatencyP50.Seconds(), "0.5")
	gauge(c.latency, s.LatencyP99.Seconds(), "0.99")
}
