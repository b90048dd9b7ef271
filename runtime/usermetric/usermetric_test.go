package usermetric

import (
	"fmt"
	"testing"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/value"
)

var columns = []value.Column{
	{Name: "symbol", Type: value.Type{Kind: value.KindString}},
	{Name: "price", Type: value.Type{Kind: value.KindDecimal, Precision: 18, Scale: 2}},
	{Name: "quantity", Type: value.Type{Kind: value.KindInt}},
}

func row(symbol string, cents, qty int64) value.Row {
	return value.Row{value.StringValue(symbol), value.DecimalValue(cents, 2), value.IntValue(qty)}
}

// series returns a metric's series by their labels joined with ",".
func series(m *Metric) map[string]Series {
	out := map[string]Series{}
	m.Each(func(se *Series) {
		key := fmt.Sprint(se.Labels)
		out[key] = *se
	})
	return out
}

// TestMetricTypes: a counter adds each written row's value (or 1), a gauge
// keeps the latest, a histogram observes into its buckets; rows that were
// not written, NULL values and a counter's negative values are not counted.
func TestMetricTypes(t *testing.T) {
	set, err := New([]v1alpha1.UserMetric{
		{Name: "trades_total", Type: v1alpha1.Counter, Labels: []string{"symbol"}},
		{Name: "volume_total", Type: v1alpha1.Counter, Value: "quantity", Labels: []string{"symbol"}},
		{Name: "price", Type: v1alpha1.Gauge, Value: "price", Labels: []string{"symbol"}},
		{Name: "quantity", Type: v1alpha1.Histogram, Value: "quantity", Buckets: []float64{10, 100}},
	}, columns)
	if err != nil {
		t.Fatal(err)
	}
	rows := []value.Row{
		row("A", 1000, 5), row("B", 2000, 50), row("A", 1100, 500),
		row("B", 2100, 7), // not written
		{value.StringValue("A"), value.NullValue(), value.IntValue(-3)},
	}
	set.Observe(rows, func(i int) bool { return i != 3 })
	ms := set.Metrics()
	check := func(m *Metric, labels string, want float64) {
		t.Helper()
		if got := series(m)[labels]; got.Value != want {
			t.Errorf("%s%s = %g; want %g", m.Name, labels, got.Value, want)
		}
	}
	check(ms[0], "[A]", 3) // the NULL price does not matter to a counter of rows
	check(ms[0], "[B]", 1)
	check(ms[1], "[A]", 505) // -3 skipped
	check(ms[1], "[B]", 50)
	check(ms[2], "[A]", 11) // the latest non-NULL
	check(ms[2], "[B]", 20)
	h := series(ms[3])["[]"]
	if h.Count != 4 || h.Sum != 5+50+500-3 {
		t.Errorf("histogram count %d sum %g; want 4 and 552", h.Count, h.Sum)
	}
	if got := h.Cumulative(ms[3].Buckets); got[10] != 2 || got[100] != 3 {
		t.Errorf("histogram buckets %v; want ≤10: 2 (5, -3), ≤100: 3", got)
	}
	st := set.Status()
	if st[1].SkippedRows != 1 || st[2].SkippedRows != 1 || st[0].SkippedRows != 0 {
		t.Errorf("skipped rows %+v; want 1 for volume (negative) and price (NULL)", st)
	}
}

// TestMaxSeries: label values beyond maxSeries go to one overflow series,
// counted and warned about, so a column with unbounded values cannot grow
// the engine's memory or Prometheus's.
func TestMaxSeries(t *testing.T) {
	set, err := New([]v1alpha1.UserMetric{{Name: "trades_total", Type: v1alpha1.Counter, Labels: []string{"symbol", "quantity"}, MaxSeries: 3}}, columns)
	if err != nil {
		t.Fatal(err)
	}
	var rows []value.Row
	for i := range 10 {
		rows = append(rows, row(fmt.Sprint("S", i), 100, 1))
	}
	set.Observe(rows, nil)
	set.Observe(rows[:2], nil) // known series keep counting
	got := series(set.Metrics()[0])
	if len(got) != 4 {
		t.Fatalf("%d series %v; want 3 and the overflow series", len(got), got)
	}
	if o := got[fmt.Sprint([]string{Overflow, Overflow})]; o.Value != 7 {
		t.Errorf("overflow series %+v; want the 7 rows past the limit", o)
	}
	if s := got["[S0 1]"]; s.Value != 2 {
		t.Errorf("series S0 = %g; want 2", s.Value)
	}
	st := set.Status()[0]
	if st.Series != 3 || st.OverflowRows != 7 || st.Warning() == "" {
		t.Errorf("status %+v, warning %q; want 3 series, 7 overflow rows and a warning", st, st.Warning())
	}
}

// TestObserveAllocatesNothing: a row of a known series costs no allocation.
func TestObserveAllocatesNothing(t *testing.T) {
	set, err := New([]v1alpha1.UserMetric{
		{Name: "volume_total", Type: v1alpha1.Counter, Value: "quantity", Labels: []string{"symbol", "price"}},
		{Name: "quantity", Type: v1alpha1.Histogram, Value: "quantity", Labels: []string{"symbol"}},
	}, columns)
	if err != nil {
		t.Fatal(err)
	}
	rows := []value.Row{row("A", 1000, 5), row("B", 2000, 50)}
	set.Observe(rows, nil)
	if n := testing.AllocsPerRun(100, func() { set.Observe(rows, nil) }); n != 0 {
		t.Errorf("%v allocations per batch of known series; want 0", n)
	}
}

// BenchmarkObserve is the cost per row of a counter and a histogram
// labelled by a string and a decimal column.
func BenchmarkObserve(b *testing.B) {
	set, err := New([]v1alpha1.UserMetric{
		{Name: "volume_total", Type: v1alpha1.Counter, Value: "quantity", Labels: []string{"symbol"}},
		{Name: "price", Type: v1alpha1.Histogram, Value: "price", Labels: []string{"symbol"}, Buckets: []float64{10, 20, 50, 100}},
	}, columns)
	if err != nil {
		b.Fatal(err)
	}
	rows := make([]value.Row, 512)
	for i := range rows {
		rows[i] = row(fmt.Sprint("SYM", i%20), int64(1000+i), int64(i))
	}
	b.ReportAllocs()
	for b.Loop() {
		set.Observe(rows, nil)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(rows)), "ns/row")
}
