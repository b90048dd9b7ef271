package telemetry

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/bench"
	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/pipeline"
	"github.com/sluice-dev/sluice/runtime/telemetry/otlptest"
)

// traced runs spec with spans exported to a real OTLP receiver and returns
// the spans by id, and the run's error.
func traced(t *testing.T, spec *v1alpha1.StreamQuerySpec, opts pipeline.Options) (map[string]otlptest.Span, *pipeline.Pipeline, error) {
	t.Helper()
	recv := otlptest.Start()
	t.Cleanup(recv.Close)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", recv.URL())
	t.Setenv("OTEL_TRACES_SAMPLER", "always_on")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
	tr, err := NewTracing(context.Background(), "test")
	if err != nil || tr == nil {
		t.Fatalf("NewTracing = %v, %v; want tracing on", tr, err)
	}
	opts.Tracer = tr.Tracer()
	p, err := pipeline.New(spec, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	runErr := p.Run(ctx)
	if err := tr.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	spans := map[string]otlptest.Span{}
	for _, s := range recv.Spans() {
		spans[s.SpanID] = s
	}
	return spans, p, runErr
}

func named(spans map[string]otlptest.Span, name string) []otlptest.Span {
	var out []otlptest.Span
	for _, s := range spans {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// memDeadLetters keeps dead-letter entries.
type memDeadLetters struct {
	mu     sync.Mutex
	events []message.ErrorEvent
}

func (d *memDeadLetters) Write(_ context.Context, events []message.ErrorEvent) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.events = append(d.events, events...)
	return nil
}

func (d *memDeadLetters) Close() error { return nil }

// brokenSink fails every write.
type brokenSink struct{}

func (brokenSink) Write(context.Context, *message.Batch) error { return errors.New("disk full") }
func (brokenSink) Flush(context.Context) error                 { return nil }
func (brokenSink) Close() error                                { return nil }

// TestTraceOfFailedRecords: records that fail in a stage make that stage's
// span an error, with an exception event per record, and the dead-letter
// entries carry that span; the error policy's handling is a span of its
// own, in the batch's trace, linked to the failing stage's.
func TestTraceOfFailedRecords(t *testing.T) {
	spec := bench.Spec(bench.Config{
		Query: "SELECT trade_id, 100 / (trade_id % 10) AS x FROM trades", Records: 2000, Partitions: 1, BatchSize: 100,
	})
	spec.ErrorPolicy.Strategy = v1alpha1.DeadLetter
	spec.ErrorPolicy.DeadLetter = &v1alpha1.Sink{Null: &v1alpha1.NullSink{}} // replaced by dlq
	dlq := &memDeadLetters{}
	spans, p, err := traced(t, spec, pipeline.Options{DeadLetter: dlq})
	if err != nil {
		t.Fatal(err)
	}
	if n := p.Snapshot().Counts.DeadLettered; n != 200 {
		t.Fatalf("%d records dead-lettered; want 200 (one in ten divides by zero)", n)
	}
	failedProcess := 0
	for _, s := range named(spans, "batch.process") {
		if !s.Error || !slices.Contains(s.Events, "exception") || s.Attributes["sluice.failed"] != int64(10) {
			t.Errorf("batch.process span %+v of a batch with 10 failed records; want error status, exception events, sluice.failed 10", s)
			continue
		}
		failedProcess++
	}
	if failedProcess == 0 {
		t.Fatal("no batch.process spans")
	}
	for _, ev := range dlq.events {
		tc, ok := message.ParseTraceparent(ev.Traceparent)
		if s := spans[tc.SpanIDString()]; !ok || s.Name != "batch.process" {
			t.Fatalf("dead-letter entry of stage %s carries span %q (%s); want the batch.process span it failed in", ev.Stage, ev.Traceparent, s.Name)
		}
	}
	policies := named(spans, "error.policy")
	if len(policies) != failedProcess {
		t.Errorf("%d error.policy spans for %d batches with failures", len(policies), failedProcess)
	}
	for _, s := range policies {
		if parent := spans[s.ParentSpanID]; parent.Name != "batch" || s.Attributes["sluice.error_policy"] != "DeadLetter" || s.Error {
			t.Errorf("error.policy span %+v under %q; want a DeadLetter handling, without error, child of the batch's root", s, parent.Name)
		}
		if len(s.Links) != 1 || spans[s.Links[0]].Name != "batch.process" {
			t.Errorf("error.policy span links %v; want the batch.process span the records failed in", s.Links)
		}
	}
	for _, s := range named(spans, "batch") {
		if s.Error || s.Kind != "internal" || s.ParentSpanID != "" {
			t.Errorf("batch root span %+v of a generator's batch; want a root, no error, kind internal", s)
		}
	}
}

// TestTraceOfDecodeErrors: records that do not decode fail in source.read,
// which counts every record read, and not in batch.process.
func TestTraceOfDecodeErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "in.jsonl")
	lines := `{"id":1}` + "\nnot json\n" + `{"id":2}` + "\n{\n[]\n" + `{"id":3}` + "\n" + `{"id":"x"}` + "\n"
	if err := os.WriteFile(path, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := &v1alpha1.StreamQuerySpec{
		Sources:     []v1alpha1.Source{{Name: "t", File: &v1alpha1.FileSource{Path: path}, Schema: []v1alpha1.Column{{Name: "id", Type: "int"}}}},
		Query:       "SELECT id FROM t",
		Sink:        &v1alpha1.Sink{Null: &v1alpha1.NullSink{}},
		ErrorPolicy: v1alpha1.ErrorPolicy{Strategy: v1alpha1.Skip},
	}
	spans, _, err := traced(t, spec, pipeline.Options{})
	if err != nil {
		t.Fatal(err)
	}
	reads := named(spans, "source.read")
	if len(reads) != 1 {
		t.Fatalf("%d source.read spans; want 1", len(reads))
	}
	r := reads[0]
	if r.Attributes["sluice.records"] != int64(7) || r.Attributes["sluice.failed"] != int64(4) || !r.Error {
		t.Errorf("source.read %+v; want 7 records read, 4 failed, error status", r)
	}
	if n := strings.Count(strings.Join(r.Events, ","), "exception"); n != 4 {
		t.Errorf("source.read has %d exception events; want 4", n)
	}
	for _, s := range named(spans, "batch.process") {
		if s.Error {
			t.Errorf("batch.process %+v is an error; the records failed to decode, in source.read", s)
		}
	}
}

// TestTraceOfFailures: a sink that fails after its retries makes sink.write
// an error; a FailFast run's error.policy span is an error, and no
// sink.write is recorded for a write the failure cut short.
func TestTraceOfFailures(t *testing.T) {
	t.Run("sink", func(t *testing.T) {
		spec := bench.Spec(bench.Config{Query: "SELECT trade_id FROM trades", Records: 300, Partitions: 1, BatchSize: 100})
		spec.ErrorPolicy.Strategy = v1alpha1.DeadLetter
		spec.ErrorPolicy.DeadLetter = &v1alpha1.Sink{Null: &v1alpha1.NullSink{}}
		spec.ErrorPolicy.MaxRetries = new(int32)
		spans, _, err := traced(t, spec, pipeline.Options{Sink: brokenSink{}, DeadLetter: &memDeadLetters{}})
		if err != nil {
			t.Fatal(err)
		}
		writes := named(spans, "sink.write")
		if len(writes) == 0 {
			t.Fatal("no sink.write spans")
		}
		for _, s := range writes {
			if !s.Error || !strings.Contains(s.StatusMessage, "disk full") || !slices.Contains(s.Events, "exception") {
				t.Errorf("sink.write %+v of a write that failed; want error status naming the failure, exception events", s)
			}
		}
	})
	t.Run("FailFast", func(t *testing.T) {
		spec := bench.Spec(bench.Config{Query: "SELECT trade_id, 100 / (trade_id % 10) AS x FROM trades", Records: 2000, Partitions: 1, BatchSize: 100})
		spans, _, err := traced(t, spec, pipeline.Options{})
		if err == nil {
			t.Fatal("a FailFast run with a failed record succeeded")
		}
		policies := named(spans, "error.policy")
		if len(policies) != 1 || !policies[0].Error || !strings.Contains(policies[0].StatusMessage, "record failed at stage project") {
			t.Fatalf("error.policy spans %+v; want one, an error naming the failed record", policies)
		}
		for _, s := range named(spans, "sink.write") {
			if s.Error {
				t.Errorf("sink.write %+v is an error; a write the stop cut short is not recorded", s)
			}
		}
	})
}

// TestTraceOfWindows: the results of a window are a trace of their own, the
// root span stateful.emit linked to the batch.process spans of the input
// batches aggregated, with a correlation id of the documented form, and
// their sink.write its child. A window's results span several batches
// (more groups than a batch holds): each links the inputs.
func TestTraceOfWindows(t *testing.T) {
	spec := bench.Spec(bench.Config{
		Query: "SELECT window_start, symbol, count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '1' SECOND) GROUP BY window_start, window_end, symbol",
		// Few records, so that the exporter's queue keeps every span.
		Records: 1000, Partitions: 1, BatchSize: 4, Keys: 20,
	})
	spans, p, err := traced(t, spec, pipeline.Options{})
	if err != nil {
		t.Fatal(err)
	}
	emits := named(spans, "stateful.emit")
	if len(emits) == 0 {
		t.Fatal("no stateful.emit spans")
	}
	run := p.Snapshot().Run
	for _, e := range emits {
		if e.ParentSpanID != "" {
			t.Errorf("stateful.emit %+v has a parent; want the root of the results' trace", e)
		}
		if len(e.Links) == 0 {
			t.Errorf("stateful.emit %+v links no input", e)
		}
		for _, l := range e.Links {
			if spans[l].Name != "batch.process" {
				t.Errorf("stateful.emit links %s, a %q span; want batch.process", l, spans[l].Name)
			}
		}
		if id, _ := e.Attributes["sluice.correlation_id"].(string); !strings.HasPrefix(id, run+"-") {
			t.Errorf("results correlation id %q; want %s-<batch id>", id, run)
		}
	}
	for _, s := range named(spans, "sink.write") {
		parent := spans[s.ParentSpanID]
		if parent.Name != "stateful.emit" || parent.TraceID != s.TraceID || parent.Attributes["sluice.correlation_id"] != s.Attributes["sluice.correlation_id"] {
			t.Errorf("sink.write of results under %q (%v); want its stateful.emit", parent.Name, parent.Attributes["sluice.correlation_id"])
		}
	}
}
