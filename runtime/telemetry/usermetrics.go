package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/usermetric"
)

// UserMetrics exports a query's business metrics (spec.metrics) as
// sluice_user_<name>, reading their series at scrape time.
type UserMetrics struct {
	set   *usermetric.Set
	descs []*prometheus.Desc // per metric, in the set's order
}

// NewUserMetrics returns the collector of set's metrics.
func NewUserMetrics(set *usermetric.Set) *UserMetrics {
	c := &UserMetrics{set: set}
	for _, m := range set.Metrics() {
		c.descs = append(c.descs, prometheus.NewDesc(m.Name, m.Help, m.LabelNames, nil))
	}
	return c
}

// Describe implements prometheus.Collector.
func (c *UserMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *UserMetrics) Collect(ch chan<- prometheus.Metric) {
	for i, m := range c.set.Metrics() {
		desc := c.descs[i]
		m.Each(func(se *usermetric.Series) {
			switch m.Type {
			case v1alpha1.Counter:
				ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, se.Value, se.Labels...)
			case v1alpha1.Gauge:
				ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, se.Value, se.Labels...)
			case v1alpha1.Histogram:
				ch <- prometheus.MustNewConstHistogram(desc, se.Count, se.Sum, se.Cumulative(m.Buckets), se.Labels...)
			}
		})
	}
}
