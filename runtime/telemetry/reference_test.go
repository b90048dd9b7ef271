package telemetry

import (
	"context"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/bench"
	"github.com/sluice-dev/sluice/runtime/connector"
	"github.com/sluice-dev/sluice/runtime/connector/schemas"
	"github.com/sluice-dev/sluice/runtime/pipeline"
)

// laggingReader is a source reader that knows its lag, as Kafka's lanes do,
// so that the lag metric is exported too.
type laggingReader struct{ connector.Reader }

func (laggingReader) Lag() int64 { return 0 }

// exported runs a small pipeline with the engine's metrics and returns the
// metric families its registry gathers.
func exported(t *testing.T) []*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	// A stateful query, so that the event-time metrics are exported too.
	spec := bench.Spec(bench.Config{Records: 1000, Query: "SELECT window_start, symbol, count(*) FROM TUMBLE(trades, ts, INTERVAL '100 milliseconds') GROUP BY window_start, window_end, symbol"})
	spec.State = &v1alpha1.StateSpec{Dir: t.TempDir()} // and the checkpoint metrics
	d, err := connector.NewDatagen("trades", spec.Sources[0].Datagen, 0, schemas.Trades)
	if err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.New(spec, pipeline.Options{Observer: NewBatchMetrics(reg), Readers: []connector.Reader{laggingReader{d}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	mon := NewMonitor(p, "test", DefaultThresholds(), nil)
	mon.Sample()
	reg.MustRegister(NewCollector(mon, false))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

// metricRow is one row of docs/metrics.md.
type metricRow struct{ typ, labels string }

var rowPattern = regexp.MustCompile("^\\| `(sluice_[a-z_]+)` \\| (\\w+) \\|([^|]*)\\|")

func documented(t *testing.T) map[string]metricRow {
	t.Helper()
	doc, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]metricRow{}
	for _, line := range strings.Split(string(doc), "\n") {
		if m := rowPattern.FindStringSubmatch(line); m != nil {
			labels := strings.Fields(strings.NewReplacer("`", "", ",", " ").Replace(m[3]))
			slices.Sort(labels)
			rows[m[1]] = metricRow{typ: m[2], labels: strings.Join(labels, ",")}
		}
	}
	return rows
}

// TestMetricsReference checks docs/metrics.md against the registry: the same
// names, types and labels.
func TestMetricsReference(t *testing.T) {
	rows := documented(t)
	if len(rows) < 20 {
		t.Fatalf("found %d rows in docs/metrics.md; the table's format changed?", len(rows))
	}
	seen := map[string]bool{}
	for _, mf := range exported(t) {
		name := mf.GetName()
		if !strings.HasPrefix(name, "sluice_") {
			continue
		}
		seen[name] = true
		row, ok := rows[name]
		if !ok {
			t.Errorf("%s is exported but not in docs/metrics.md", name)
			continue
		}
		if typ := strings.ToLower(mf.GetType().String()); typ != row.typ {
			t.Errorf("%s is a %s; docs/metrics.md says %s", name, typ, row.typ)
		}
		var labels []string
		for _, lp := range mf.GetMetric()[0].GetLabel() {
			labels = append(labels, lp.GetName())
		}
		slices.Sort(labels)
		if got := strings.Join(labels, ","); got != row.labels {
			t.Errorf("%s has labels %q; docs/metrics.md says %q", name, got, row.labels)
		}
	}
	for name := range rows {
		if !seen[name] {
			t.Errorf("docs/metrics.md lists %s, which the engine does not export", name)
		}
	}
}
