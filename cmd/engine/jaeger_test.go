package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/testtools"
	"github.com/sluice-dev/sluice/runtime/message"
)

// jaeger is a Jaeger v2 server the test started, with in-memory storage and
// every endpoint on loopback.
type jaeger struct {
	otlpHTTP, otlpGRPC, query string
	log                       *syncBuffer
}

func startJaeger(t *testing.T) *jaeger {
	t.Helper()
	bin := testtools.Path(t, "jaeger")
	var j *jaeger
	startOnFreePorts(t, "jaeger", func() (*exec.Cmd, *syncBuffer, func() bool) {
		j = &jaeger{
			otlpHTTP: "127.0.0.1:" + strconv.Itoa(freePort(t)),
			otlpGRPC: "127.0.0.1:" + strconv.Itoa(freePort(t)),
			query:    "127.0.0.1:" + strconv.Itoa(freePort(t)),
			log:      &syncBuffer{},
		}
		dir := t.TempDir()
		config := fmt.Sprintf(`service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics: {level: none}
    logs: {level: warn}
extensions:
  jaeger_query:
    storage: {traces: memstore}
    http: {endpoint: %q}
    grpc: {endpoint: "127.0.0.1:%d"}
  jaeger_storage:
    backends:
      memstore:
        memory: {max_traces: 100000}
receivers:
  otlp:
    protocols:
      grpc: {endpoint: %q}
      http: {endpoint: %q}
processors:
  batch: {timeout: 100ms}
exporters:
  jaeger_storage_exporter: {trace_storage: memstore}
`, j.query, freePort(t), j.otlpGRPC, j.otlpHTTP)
		if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(config), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "--config=file:"+filepath.Join(dir, "config.yaml"))
		ready := func() bool {
			resp, err := http.Get("http://" + j.query + "/api/services")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		}
		return cmd, j.log, ready
	})
	return j
}

// jaegerSpan is a span as Jaeger's query API returns it.
type jaegerSpan struct {
	TraceID       string `json:"traceID"`
	SpanID        string `json:"spanID"`
	OperationName string `json:"operationName"`
	References    []struct {
		RefType string `json:"refType"`
		SpanID  string `json:"spanID"`
	} `json:"references"`
	Tags []struct {
		Key   string `json:"key"`
		Value any    `json:"value"`
	} `json:"tags"`
	Logs []struct {
		Fields []struct {
			Key   string `json:"key"`
			Value any    `json:"value"`
		} `json:"fields"`
	} `json:"logs"`
	ProcessID string   `json:"processID"`
	Warnings  []string `json:"warnings"`
	service   string
}

func (s jaegerSpan) tag(key string) any {
	for _, t := range s.Tags {
		if t.Key == key {
			return t.Value
		}
	}
	return nil
}

// parent is the span's CHILD_OF reference, or "".
func (s jaegerSpan) parent() string {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" {
			return r.SpanID
		}
	}
	return ""
}

// follows are the span's FOLLOWS_FROM references: its links.
func (s jaegerSpan) follows() []string {
	var out []string
	for _, r := range s.References {
		if r.RefType == "FOLLOWS_FROM" {
			out = append(out, r.SpanID)
		}
	}
	return out
}

func (s jaegerSpan) exceptions() int {
	n := 0
	for _, l := range s.Logs {
		for _, f := range l.Fields {
			if f.Key == "event" && f.Value == "exception" {
				n++
			}
		}
	}
	return n
}

// spans returns every span of the service's traces, by span id, waiting
// until their number stops growing (the engine's exporter and Jaeger's
// batch processor deliver them in batches).
func (j *jaeger) spans(t *testing.T, service string) map[string]jaegerSpan {
	t.Helper()
	var got map[string]jaegerSpan
	for deadline, last := time.Now().Add(20*time.Second), -1; time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		got = j.fetch(t, service)
		if len(got) > 0 && len(got) == last {
			return got
		}
		last = len(got)
	}
	return got
}

func (j *jaeger) fetch(t *testing.T, service string) map[string]jaegerSpan {
	t.Helper()
	resp, err := http.Get("http://" + j.query + "/api/traces?limit=100000&lookback=1h&service=" + url.QueryEscape(service))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Data []struct {
			Spans     []jaegerSpan `json:"spans"`
			Processes map[string]struct {
				ServiceName string `json:"serviceName"`
			} `json:"processes"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("jaeger /api/traces: %v", err)
	}
	out := map[string]jaegerSpan{}
	for _, tr := range body.Data {
		for _, s := range tr.Spans {
			s.service = tr.Processes[s.ProcessID].ServiceName
			out[s.SpanID] = s
		}
	}
	return out
}

func operation(spans map[string]jaegerSpan, name, service string) []jaegerSpan {
	var out []jaegerSpan
	for _, s := range spans {
		if s.OperationName == name && (service == "" || s.service == service) {
			out = append(out, s)
		}
	}
	return out
}

// runTraced runs a manifest to its end with spans exported to j, and
// returns the engine's exit code and standard error.
func runTraced(t *testing.T, j *jaeger, manifest string, env ...string) (int, string) {
	t.Helper()
	dir := t.TempDir()
	env = append([]string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + j.otlpHTTP, "OTEL_BSP_SCHEDULE_DELAY=100"}, env...)
	cmd, _, stderr, stdout := startEngine(t, dir, manifest, env)
	go io.Copy(io.Discard, stdout)
	waitExit(t, cmd, "the end of its input")
	return cmd.ProcessState.ExitCode(), stderr.String()
}

// TestJaeger runs real engines exporting spans to a real Jaeger and checks
// the traces' shape through Jaeger's query API: a batch's root span with its
// read, process and write as children, and no clock-skew warnings; failed records as error spans with
// exception events, in the stage they failed in, their dead-letter entries
// pointing at those spans, and the error policy's span beneath; a FailFast
// run's error span; window results as their own trace linked to the input
// batches; one trace from an engine through Kafka to the next, with
// producer and consumer spans and the messaging attributes; OTLP over gRPC;
// the service name from OTEL_RESOURCE_ATTRIBUTES; a sampler that samples
// nothing.
func TestJaeger(t *testing.T) {
	j := startJaeger(t)

	t.Run("dead letters", func(t *testing.T) {
		dir := t.TempDir()
		manifest := manifestOf("dead-letters", `[{name: trades, datagen: {generator: trades, count: 2000}}]`,
			"SELECT trade_id, 100 / (trade_id % 10) AS x FROM trades", `{"null": {}}`,
			fmt.Sprintf("  errorPolicy: {strategy: DeadLetter, deadLetter: {file: {path: %q}}}\n", filepath.Join(dir, "dead.jsonl")))
		if code, stderr := runTraced(t, j, manifest, "OTEL_SERVICE_NAME=jt-dead-letters"); code != exitOK {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		spans := j.spans(t, "jt-dead-letters")
		writes := operation(spans, "sink.write", "")
		if len(writes) == 0 {
			t.Fatalf("no sink.write spans among %d", len(spans))
		}
		children := map[string][]string{}
		for _, s := range spans {
			children[s.parent()] = append(children[s.parent()], s.OperationName)
		}
		for _, w := range writes {
			root := spans[w.parent()]
			c := children[root.SpanID]
			slices.Sort(c)
			if root.OperationName != "batch" || root.parent() != "" || !slices.Equal(slices.Compact(c), []string{"batch.process", "error.policy", "sink.write", "source.read"}) && !slices.Equal(c, []string{"batch.process", "sink.write", "source.read"}) {
				t.Fatalf("sink.write's parent is %q with children %v; want the batch's root, with its read, process, write (and error policy)", root.OperationName, c)
			}
		}
		noWarnings(t, spans)
		failed := 0
		for _, p := range operation(spans, "batch.process", "") {
			if p.tag("error") == true {
				failed++
				if p.exceptions() == 0 || p.tag("otel.status_code") != "ERROR" {
					t.Errorf("batch.process %s failed records but has %d exception events, status %v", p.SpanID, p.exceptions(), p.tag("otel.status_code"))
				}
			}
		}
		if failed == 0 {
			t.Error("no batch.process span is an error, though one record in ten failed")
		}
		for _, pol := range operation(spans, "error.policy", "") {
			if spans[pol.parent()].OperationName != "batch" || pol.tag("sluice.error_policy") != "DeadLetter" {
				t.Errorf("error.policy %s under %q, policy %v; want DeadLetter under the batch's root", pol.SpanID, spans[pol.parent()].OperationName, pol.tag("sluice.error_policy"))
			}
			if l := pol.follows(); len(l) != 1 || spans[l[0]].OperationName != "batch.process" || spans[l[0]].tag("error") != true {
				t.Errorf("error.policy %s links %v; want the failed batch.process", pol.SpanID, l)
			}
		}
		f, err := os.Open(filepath.Join(dir, "dead.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		entries := 0
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var ev message.ErrorEvent
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				t.Fatal(err)
			}
			entries++
			tc, _ := message.ParseTraceparent(ev.Traceparent)
			if s, ok := spans[tc.SpanIDString()]; !ok || s.OperationName != "batch.process" || s.tag("error") != true {
				t.Fatalf("dead-letter entry's traceparent %s is span %q in Jaeger; want the failed batch.process", ev.Traceparent, s.OperationName)
			}
		}
		if entries != 200 {
			t.Errorf("%d dead-letter entries; want 200", entries)
		}
	})

	t.Run("FailFast", func(t *testing.T) {
		manifest := manifestOf("fail-fast", `[{name: trades, datagen: {generator: trades, count: 2000}}]`,
			"SELECT trade_id, 100 / (trade_id % 10) AS x FROM trades", `{"null": {}}`, "")
		// The service name from OTEL_RESOURCE_ATTRIBUTES alone.
		if code, stderr := runTraced(t, j, manifest, "OTEL_RESOURCE_ATTRIBUTES=service.name=jt-fail-fast,deployment.environment=test"); code != exitFailed {
			t.Fatalf("exit %d; want %d\n%s", code, exitFailed, stderr)
		}
		spans := j.spans(t, "jt-fail-fast")
		policies := operation(spans, "error.policy", "")
		if len(policies) != 1 || policies[0].tag("error") != true || policies[0].exceptions() == 0 {
			t.Fatalf("error.policy spans %+v; want one, an error with its exception", policies)
		}
		for _, w := range operation(spans, "sink.write", "") {
			if w.tag("error") == true {
				t.Errorf("sink.write %s is an error (%v): a write the stop cut short is not recorded", w.SpanID, w.tag("otel.status_description"))
			}
		}
	})

	t.Run("windows", func(t *testing.T) {
		manifest := manifestOf("windows", `[{name: trades, datagen: {generator: trades, count: 5000, keys: 5}}]`,
			"SELECT window_start, symbol, count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '1' SECOND) GROUP BY window_start, window_end, symbol",
			`{"null": {}}`, "")
		if code, stderr := runTraced(t, j, manifest, "OTEL_SERVICE_NAME=jt-windows"); code != exitOK {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		spans := j.spans(t, "jt-windows")
		emits := operation(spans, "stateful.emit", "")
		if len(emits) == 0 {
			t.Fatalf("no stateful.emit spans among %d", len(spans))
		}
		for _, e := range emits {
			if e.parent() != "" || len(e.follows()) == 0 {
				t.Fatalf("stateful.emit %s: parent %q, %d links; want a root linked to its inputs", e.SpanID, e.parent(), len(e.follows()))
			}
			for _, l := range e.follows() {
				if s, ok := spans[l]; ok && s.OperationName != "batch.process" {
					t.Fatalf("stateful.emit links a %q span; want batch.process", s.OperationName)
				}
			}
		}
		for _, w := range operation(spans, "sink.write", "") {
			if spans[w.parent()].OperationName != "stateful.emit" {
				t.Errorf("a results' sink.write under %q; want stateful.emit", spans[w.parent()].OperationName)
			}
		}
		noWarnings(t, spans)
	})

	t.Run("kafka", func(t *testing.T) {
		brokers := startKafka(t, 1, "trades", "frozen")
		producer := manifestOf("kafka-producer", `[{name: trades, datagen: {generator: trades, count: 500}}]`,
			"SELECT trade_id, symbol, price FROM trades", fmt.Sprintf(`{kafka: {brokers: [%q], topic: trades}}`, brokers), "")
		// This engine speaks OTLP over gRPC.
		if code, stderr := runTraced(t, j, producer, "OTEL_SERVICE_NAME=jt-producer", "OTEL_EXPORTER_OTLP_PROTOCOL=grpc",
			"OTEL_EXPORTER_OTLP_ENDPOINT=http://"+j.otlpGRPC); code != exitOK {
			t.Fatalf("producer exit %d\n%s", code, stderr)
		}
		consumer := manifestOf("kafka-consumer",
			fmt.Sprintf(`[{name: trades, kafka: {brokers: [%q], topic: trades, group: jt}, schema: [{name: trade_id, type: int}, {name: symbol, type: string}, {name: price, type: "decimal(18,4)"}]}]`, brokers),
			"SELECT trade_id FROM trades", `{"null": {}}`, "")
		cmd, _, stderr, stdout := startEngine(t, t.TempDir(), consumer,
			[]string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + j.otlpHTTP, "OTEL_BSP_SCHEDULE_DELAY=100", "OTEL_SERVICE_NAME=jt-consumer"})
		go io.Copy(io.Discard, stdout)
		var reads []jaegerSpan
		var spans map[string]jaegerSpan
		for deadline := time.Now().Add(30 * time.Second); len(reads) == 0 && time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
			spans = j.fetch(t, "jt-producer")
			reads = operation(spans, "batch", "jt-consumer")
		}
		cmd.Process.Signal(syscall.SIGTERM)
		waitExit(t, cmd, "SIGTERM")
		if len(reads) == 0 {
			t.Fatalf("no trace of the producer reaches the consumer's batches\n%s", stderr.String())
		}
		for _, r := range reads {
			w := spans[r.parent()]
			if w.OperationName != "sink.write" || w.service != "jt-producer" {
				t.Fatalf("the consumer's batch is the child of %q of %q; want the producer's sink.write", w.OperationName, w.service)
			}
			if w.tag("span.kind") != "producer" || w.tag("messaging.system") != "kafka" || w.tag("messaging.destination.name") != "trades" {
				t.Errorf("producer sink.write tags %+v; want kind producer, messaging.system kafka, destination trades", w.Tags)
			}
			if r.tag("span.kind") != "consumer" || r.tag("messaging.destination.name") != "trades" || r.tag("messaging.destination.partition.id") != "0" {
				t.Errorf("consumer batch tags %+v; want kind consumer, destination trades, partition 0", r.Tags)
			}
		}
	})

	t.Run("sampler", func(t *testing.T) {
		manifest := manifestOf("unsampled", `[{name: trades, datagen: {generator: trades, count: 1000}}]`,
			"SELECT trade_id FROM trades", `{"null": {}}`, "")
		if code, stderr := runTraced(t, j, manifest, "OTEL_SERVICE_NAME=jt-unsampled", "OTEL_TRACES_SAMPLER=always_off"); code != exitOK {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		time.Sleep(time.Second)
		if spans := j.fetch(t, "jt-unsampled"); len(spans) != 0 {
			t.Errorf("%d spans with OTEL_TRACES_SAMPLER=always_off; want none", len(spans))
		}
	})
	if t.Failed() {
		t.Logf("jaeger log:\n%s", tail(j.log.String(), 3000))
	}
}

// TestTracingConfiguration: an OTLP setting the exporter would misread is
// refused at start with the variable named; the SDK's complaints (an
// unreachable collector) come out as the engine's JSON log lines.
func TestTracingConfiguration(t *testing.T) {
	manifest := manifestOf("otel", `[{name: trades, datagen: {generator: trades, count: 1000}}]`, "SELECT trade_id FROM trades", `{"null": {}}`, "")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "q.yaml"), []byte(manifest), 0o644)
	for _, c := range []struct{ env, want string }{
		{"OTEL_EXPORTER_OTLP_ENDPOINT=collector:4318", `OTEL_EXPORTER_OTLP_ENDPOINT="collector:4318" is not a URL`},
		{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=localhost", `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="localhost" is not a URL`},
		{"OTEL_EXPORTER_OTLP_PROTOCOL=http/json", `OTEL_EXPORTER_OTLP_PROTOCOL="http/json": the engine exports OTLP as http/protobuf (the default) or grpc`},
	} {
		cmd := exec.Command(engineBin, "run", "-f", "q.yaml", "--http", "", "--log-format", "json")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:1", c.env)
		b, _ := cmd.CombinedOutput()
		out := strings.ReplaceAll(string(b), `\"`, `"`) // as the JSON log line escapes them
		if code := cmd.ProcessState.ExitCode(); code != exitFailed || !strings.Contains(out, c.want) {
			t.Errorf("with %s: exit %d, output:\n%s\nwant exit %d and %q", c.env, code, out, exitFailed, c.want)
		}
	}

	// A collector that refuses connections: the export errors are JSON.
	cmd := exec.Command(engineBin, "run", "-f", "q.yaml", "--http", "", "--log-format", "json")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:"+strconv.Itoa(freePort(t)), "OTEL_EXPORTER_OTLP_TIMEOUT=500")
	var stderr strings.Builder
	cmd.Stderr, cmd.Stdout = &stderr, io.Discard
	if err := cmd.Run(); err != nil {
		t.Fatalf("engine run: %v\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	var tracingErrors int
	for _, l := range lines {
		var entry map[string]any
		if err := json.Unmarshal([]byte(l), &entry); err != nil {
			t.Errorf("a line of standard error is not JSON: %q", l)
			continue
		}
		if entry["component"] == "tracing" {
			tracingErrors++
		}
	}
	if tracingErrors == 0 {
		t.Errorf("no JSON log line of component tracing for an unreachable collector:\n%s", stderr.String())
	}
}

// noWarnings fails the test if Jaeger warns of a span: a child outside its
// parent's time, which Jaeger takes for clock skew, or a parent missing.
func noWarnings(t *testing.T, spans map[string]jaegerSpan) {
	t.Helper()
	for _, s := range spans {
		if len(s.Warnings) > 0 {
			t.Errorf("Jaeger warns of span %s %s: %v", s.OperationName, s.SpanID, s.Warnings)
			return
		}
	}
}
