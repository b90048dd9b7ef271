package telemetry

import (
	"bufio"
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/runtime/bench"
	"github.com/sluice-dev/sluice/runtime/pipeline"
)

// TestTracingEndToEnd runs a pipeline that exports its spans over OTLP/HTTP
// to a real receiver, which decodes the protobuf payloads. Every write span
// must be the child of a batch's root span, whose other children are the
// batch's read and process spans, at least 95% of the output records must
// be in such a trace, and the trace ids in the JSON logs must be ones the
// receiver saw.
func TestTracingEndToEnd(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	spec := bench.Spec(bench.Config{
		Query: "SELECT trade_id, price FROM trades WHERE quantity > 100", Records: 4000, Partitions: 2,
		Parallelism: 2, BatchSize: 100, Linger: time.Millisecond,
	})
	byID, p, err := traced(t, spec, pipeline.Options{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	traces := map[string]bool{}
	for _, s := range byID {
		traces[s.TraceID] = true
	}
	children := map[string]map[string]int{} // parent span -> child name -> count
	for _, s := range byID {
		if children[s.ParentSpanID] == nil {
			children[s.ParentSpanID] = map[string]int{}
		}
		children[s.ParentSpanID][s.Name]++
	}
	var correlated int64
	writes := 0
	for _, s := range byID {
		if s.Name != "sink.write" {
			continue
		}
		writes++
		root, ok := byID[s.ParentSpanID]
		if !ok || root.Name != "batch" || root.TraceID != s.TraceID || root.ParentSpanID != "" {
			t.Errorf("sink.write span %s is not the child of a batch's root span (%q)", s.SpanID, root.Name)
			continue
		}
		if c := children[root.SpanID]; c["source.read"] != 1 || c["batch.process"] != 1 || c["sink.write"] != 1 {
			t.Errorf("batch root %s has children %v; want one source.read, batch.process and sink.write", root.SpanID, c)
			continue
		}
		if root.Attributes["sluice.correlation_id"] != s.Attributes["sluice.correlation_id"] {
			t.Errorf("write span of %v under the root of %v", s.Attributes["sluice.correlation_id"], root.Attributes["sluice.correlation_id"])
		}
		n, _ := s.Attributes["sluice.records"].(int64)
		correlated += n
	}
	out := p.Snapshot().Counts.Out
	if writes == 0 || out == 0 {
		t.Fatalf("%d write spans, %d records out", writes, out)
	}
	if ratio := float64(correlated) / float64(out); ratio < 0.95 {
		t.Errorf("%d of %d output records (%.1f%%) lead back to the span that read them; want at least 95%%", correlated, out, 100*ratio)
	}
	if traced := p.Snapshot().Traced; traced != out {
		t.Errorf("traced records %d; want all %d", traced, out)
	}

	// Every "batch written" log line names a trace the receiver saw.
	sc := bufio.NewScanner(&logs)
	lines := 0
	for sc.Scan() {
		var raw map[string]any
		if err := json.Unmarshal(sc.Bytes(), &raw); err != nil {
			t.Fatalf("log line is not JSON: %s", sc.Text())
		}
		if raw["msg"] != "batch written" {
			continue
		}
		traceID, _ := raw["trace_id"].(string)
		lines++
		if !traces[traceID] {
			t.Errorf("log line with trace_id %q, which the receiver never saw", traceID)
		}
		if raw["correlation_id"] == nil || raw["span_id"] == nil {
			t.Errorf("log line lacks correlation or span id: %s", sc.Text())
		}
	}
	if lines != writes {
		t.Errorf("%d batch-written log lines, %d write spans", lines, writes)
	}
}
