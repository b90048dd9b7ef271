// Package usermetric computes the business metrics a StreamQuery declares
// (spec.metrics) from the rows its sink writes: counters, gauges and
// histograms, one series per value of their label columns, each metric
// bounded in series. The sink stage observes every batch it wrote; the
// telemetry collector reads the series at scrape time.
package usermetric

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"

	"github.com/sluice-dev/sluice/api/enginestatus"
	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/value"
)

// Prefix begins every business metric's name.
const Prefix = "sluice_user_"

// Overflow is the value of every label of the series that takes the rows
// of label values beyond a metric's maxSeries.
const Overflow = "__overflow__"

// DefaultBuckets are a histogram's bounds when the spec gives none:
// Prometheus's client defaults.
var DefaultBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Set is a query's business metrics.
type Set struct {
	metrics []*Metric
}

// Metric is one business metric and its series.
type Metric struct {
	// Name is the exported name, with Prefix.
	Name, Help string
	Type       v1alpha1.MetricType
	// LabelNames are the label columns' names.
	LabelNames []string
	// Buckets are a histogram's upper bounds, without +Inf.
	Buckets []float64
	Max     int

	value  int   // the value column's index, or -1 for a counter of rows
	labels []int // the label columns' indexes

	mu       sync.Mutex
	series   map[string]*Series // by the label values, each followed by 0xff
	overflow *Series
	// overflowRows counts rows that went to the overflow series; skipped,
	// rows whose value was NULL, NaN or, for a counter, negative.
	overflowRows, skipped int64
	key                   []byte // scratch for the series key
}

// Series is one series of a metric: Value for a counter or gauge, Count,
// Sum and per-bucket counts (not cumulative) for a histogram.
type Series struct {
	Labels []string
	Value  float64
	Count  uint64
	Sum    float64
	counts []uint64
}

// New returns the metrics of specs over rows of the columns out, which the
// planner has checked them against.
func New(specs []v1alpha1.UserMetric, out []value.Column) (*Set, error) {
	index := func(name string) int {
		return slices.IndexFunc(out, func(c value.Column) bool { return c.Name == name })
	}
	s := &Set{}
	for _, spec := range specs {
		m := &Metric{
			Name: Prefix + spec.Name, Help: spec.Help, Type: spec.Type,
			LabelNames: spec.Labels, Max: int(spec.MaxSeries), value: -1,
			series: map[string]*Series{},
		}
		if m.Help == "" {
			m.Help = "Business metric " + spec.Name + " of the query (spec.metrics)."
		}
		if m.Max <= 0 {
			m.Max = v1alpha1.DefaultMetricSeries
		}
		if spec.Value != "" {
			if m.value = index(spec.Value); m.value < 0 {
				return nil, fmt.Errorf("metric %s: no output column %s", spec.Name, spec.Value)
			}
		}
		for _, l := range spec.Labels {
			i := index(l)
			if i < 0 {
				return nil, fmt.Errorf("metric %s: no output column %s", spec.Name, l)
			}
			m.labels = append(m.labels, i)
		}
		if spec.Type == v1alpha1.Histogram {
			m.Buckets = spec.Buckets
			if len(m.Buckets) == 0 {
				m.Buckets = DefaultBuckets
			}
		}
		s.metrics = append(s.metrics, m)
	}
	return s, nil
}

// Metrics returns the set's metrics, in the spec's order.
func (s *Set) Metrics() []*Metric {
	if s == nil {
		return nil
	}
	return s.metrics
}

// Observe takes the rows a sink wrote; written(i) says whether row i was
// (a row that failed is not counted). It is called by one goroutine, the
// sink stage's.
func (s *Set) Observe(rows []value.Row, written func(i int) bool) {
	if s == nil {
		return
	}
	for _, m := range s.metrics {
		m.observe(rows, written)
	}
}

func (m *Metric) observe(rows []value.Row, written func(i int) bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, row := range rows {
		if written != nil && !written(i) {
			continue
		}
		v := 1.0
		if m.value >= 0 {
			x := row[m.value]
			if x.IsNull() {
				m.skipped++
				continue
			}
			v = x.Float()
		}
		if math.IsNaN(v) || m.Type == v1alpha1.Counter && v < 0 {
			m.skipped++
			continue
		}
		se := m.seriesOf(row)
		switch m.Type {
		case v1alpha1.Counter:
			se.Value += v
		case v1alpha1.Gauge:
			se.Value = v
		case v1alpha1.Histogram:
			se.Count++
			se.Sum += v
			se.counts[sort.SearchFloat64s(m.Buckets, v)]++
		}
	}
}

// seriesOf returns the series of row's label values, creating it while the
// metric has fewer than Max, and the overflow series after. m.mu is held.
func (m *Metric) seriesOf(row value.Row) *Series {
	m.key = m.key[:0]
	for _, i := range m.labels {
		m.key = row[i].AppendText(m.key)
		m.key = append(m.key, 0xff)
	}
	if se, ok := m.series[string(m.key)]; ok {
		return se
	}
	if len(m.series) >= m.Max {
		m.overflowRows++
		if m.overflow == nil {
			labels := make([]string, len(m.labels))
			for i := range labels {
				labels[i] = Overflow
			}
			m.overflow = m.newSeries(labels)
		}
		return m.overflow
	}
	labels := make([]string, len(m.labels))
	for j, i := range m.labels {
		labels[j] = string(row[i].AppendText(nil))
	}
	se := m.newSeries(labels)
	m.series[string(m.key)] = se
	return se
}

func (m *Metric) newSeries(labels []string) *Series {
	se := &Series{Labels: labels}
	if m.Type == v1alpha1.Histogram {
		se.counts = make([]uint64, len(m.Buckets)+1)
	}
	return se
}

// Each calls f with each series, the overflow series last, while the
// metric's series cannot change. f must not keep the series.
func (m *Metric) Each(f func(*Series)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, se := range m.series {
		f(se)
	}
	if m.overflow != nil {
		f(m.overflow)
	}
}

// Cumulative returns a histogram series' count of values at most each
// bucket's bound, as Prometheus exposes them.
func (se *Series) Cumulative(bounds []float64) map[float64]uint64 {
	out := make(map[float64]uint64, len(bounds))
	var n uint64
	for i, b := range bounds {
		n += se.counts[i]
		out[b] = n
	}
	return out
}

// Status returns each metric's series count and the rows it could not
// give a series of their own or a value.
func (s *Set) Status() []enginestatus.UserMetric {
	var out []enginestatus.UserMetric
	for _, m := range s.Metrics() {
		m.mu.Lock()
		out = append(out, enginestatus.UserMetric{Name: m.Name, Series: len(m.series), MaxSeries: m.Max, OverflowRows: m.overflowRows, SkippedRows: m.skipped})
		m.mu.Unlock()
	}
	return out
}
