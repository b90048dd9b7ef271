package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"gopkg.in/yaml.v3"

	"github.com/sluice-dev/sluice/api/enginestatus"
	"github.com/sluice-dev/sluice/internal/testtools"
	"github.com/sluice-dev/sluice/runtime/telemetry/otlptest"
)

const (
	rulesFile     = "../../config/prometheus/sluice-rules.yaml"
	dashboardFile = "../../config/grafana/sluice-engine.json"
	// ruleTimeScale divides every duration of the alerting rules, so that an
	// hour of production is two minutes here. promtool's unit tests
	// (config/prometheus/sluice-rules.test.yaml) check the real timings.
	ruleTimeScale = 30
	// obsNamespace is the namespace label every target gets, as the
	// operator's ServiceMonitor would give it.
	obsNamespace = "observability"
)

// scenario is an engine in a scripted state, scraped as the StreamQuery
// named by its name.
type scenario struct {
	name     string
	manifest string
	env      []string
	// fifo: the sink is a named pipe the test reads, slowly while slow
	// says so.
	fifo bool
	slow *atomic.Bool
	// stuck: the pipe is read for 3 s, then no more.
	stuck bool
	// port, when set, is the engine's fixed HTTP port, so that a restarted
	// engine is the same target, as a container restarted in its pod.
	port int
	base string
	cmd  *exec.Cmd
	errs *syncBuffer
}

// TestPrometheus runs a real Prometheus server scraping real engine
// processes in scripted states (healthy, a slow sink, dead letters,
// windowed and checkpointing, growing state, a Kafka producer and a
// lagging Kafka consumer, a restart, sampled tracing, a watermark that
// stands still, checkpoints stuck behind a sink), with the
// project's alerting rules, every duration divided by 30. It asserts that
// each alert reaches pending or firing for the query it is written for,
// once per query and with the annotations naming the culprit, that the
// alerts whose conditions are exact stay silent elsewhere, and that every
// dashboard query, its variables set to each query as Grafana would, parses
// and reads a plausible value.
func TestPrometheus(t *testing.T) {
	promBin := testtools.Path(t, "prometheus")
	brokers := startKafka(t, 1, "trades", "frozen")
	recv := otlptest.Start()
	defer recv.Close()

	rowsJSON := `[{name: trade_id, type: int}, {name: symbol, type: string}, {name: price, type: "decimal(18,4)"}]`
	slowSink := &atomic.Bool{}
	lagging := &atomic.Bool{}
	lagging.Store(true)
	scenarios := []*scenario{
		// Business metrics from the rows written: by symbol, and one
		// labelled by trade id, which overflows its 50 series.
		{name: "healthy", manifest: manifestOf("healthy",
			`[{name: trades, datagen: {generator: trades, rate: 1000, partitions: 2}}]`,
			"SELECT trade_id, symbol, price, quantity FROM trades", `{"null": {}}`, `  metrics:
    - {name: trades_total, type: Counter, labels: [symbol], help: Trades written by symbol.}
    - {name: price, type: Gauge, value: price, labels: [symbol]}
    - {name: quantity, type: Histogram, value: quantity, buckets: [10, 100, 1000]}
    - {name: ids_total, type: Counter, labels: [trade_id], maxSeries: 50}
`)},
		{name: "slow-sink", fifo: true, slow: slowSink, manifest: manifestOf("slow-sink",
			`[{name: trades, datagen: {generator: trades, rate: 2000}}]`,
			"SELECT trade_id, symbol, price FROM trades", `{file: {path: out.fifo}}`,
			"  runtime: {channelCapacity: 4, batchSize: 50, batchLinger: 5ms}\n")},
		{name: "dead-letters", manifest: manifestOf("dead-letters",
			`[{name: trades, datagen: {generator: trades, rate: 1000}}]`,
			"SELECT trade_id, 100 / (trade_id % 10) AS x FROM trades", `{"null": {}}`,
			"  errorPolicy: {strategy: DeadLetter, deadLetter: {file: {path: dead.jsonl}}}\n")},
		{name: "windowed", manifest: manifestOf("windowed",
			`[{name: trades, datagen: {generator: trades, rate: 1000, keys: 20}, eventTime: {column: ts}}]`,
			"SELECT window_start, symbol, count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '1' SECOND) GROUP BY window_start, window_end, symbol",
			`{"null": {}}`, "  state: {dir: state, checkpointInterval: 1s}\n")},
		// Its sink is a pipe nobody reads after 3 s: once the pipe is
		// full, no checkpoint completes.
		{name: "stuck-checkpoints", fifo: true, stuck: true, manifest: manifestOf("stuck-checkpoints",
			`[{name: trades, datagen: {generator: trades, rate: 20000, keys: 1000}, eventTime: {column: ts}}]`,
			"SELECT window_start, symbol, count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '1' SECOND) GROUP BY window_start, window_end, symbol",
			`{file: {path: out.fifo}}`, "  state: {dir: state, checkpointInterval: 1s}\n")},
		// Hour-long windows over a million keys: state, and memory, grow.
		{name: "growing-state", manifest: manifestOf("growing-state",
			`[{name: trades, datagen: {generator: trades, rate: 2000, keys: 1000000}, eventTime: {column: ts}}]`,
			"SELECT window_start, symbol, count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '1' HOUR) GROUP BY window_start, window_end, symbol",
			`{"null": {}}`, "")},
		{name: "producer", manifest: manifestOf("producer",
			`[{name: trades, datagen: {generator: trades, rate: 3000}}]`,
			"SELECT trade_id, symbol, price FROM trades",
			fmt.Sprintf(`{kafka: {brokers: [%q], topic: trades}}`, brokers), "")},
		{name: "kafka-lag", fifo: true, slow: lagging, manifest: manifestOf("kafka-lag",
			fmt.Sprintf(`[{name: trades, kafka: {brokers: [%q], topic: trades, group: lagging}, schema: %s}]`, brokers, rowsJSON),
			"SELECT trade_id, symbol, price FROM trades", `{file: {path: out.fifo}}`,
			"  runtime: {channelCapacity: 4, batchSize: 50, batchLinger: 5ms}\n")},
		{name: "restart", port: freePort(t), manifest: manifestOf("restart",
			`[{name: trades, datagen: {generator: trades, rate: 500}}]`,
			"SELECT trade_id, symbol, price FROM trades", `{"null": {}}`, "")},
		{name: "traced", env: []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + recv.URL(), "OTEL_TRACES_SAMPLER=traceidratio", "OTEL_TRACES_SAMPLER_ARG=0.5"},
			manifest: manifestOf("traced",
				`[{name: trades, datagen: {generator: trades, rate: 500}}]`,
				"SELECT trade_id, symbol, price FROM trades", `{"null": {}}`, "")},
		// Every record has the same event time: the watermark stands still
		// while records are read.
		{name: "frozen-watermark", manifest: manifestOf("frozen-watermark",
			fmt.Sprintf(`[{name: ticks, kafka: {brokers: [%q], topic: frozen, group: frozen}, schema: [{name: k, type: string}, {name: ts, type: timestamp}], eventTime: {column: ts}}]`, brokers),
			"SELECT window_start, k, count(*) AS n FROM TUMBLE(ticks, ts, INTERVAL '1' MINUTE) GROUP BY window_start, window_end, k",
			`{"null": {}}`, "")},
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go produceFrozen(ctx, t, brokers)
	for _, s := range scenarios {
		s.start(t)
	}
	byName := map[string]*scenario{}
	for _, s := range scenarios {
		byName[s.name] = s
	}

	prom := startPrometheus(t, promBin, scenarios)
	started := time.Now()

	// The scripts: the slow sink is fast for a baseline first; the restart
	// scenario's engine is killed and started again.
	go func() {
		select {
		case <-time.After(75 * time.Second):
			slowSink.Store(true)
		case <-ctx.Done():
		}
	}()
	restartAt := time.After(20 * time.Second)
	restarted := false

	// Each alert, with the queries it must reach pending or firing for. The
	// exact ones (errors, restarts, tracing, lag, watermark) must fire for
	// no other query.
	want := map[string][]string{
		"SluiceQueueSaturated":      {"slow-sink", "kafka-lag"},
		"SluiceProcessingSlow":      {"slow-sink"},
		"SluiceErrorRateHigh":       {"dead-letters"},
		"SluiceMemoryGrowing":       {"growing-state"},
		"SluiceEngineRestarted":     {"restart"},
		"SluiceTraceCorrelationLow": {"traced"},
		"SluiceConsumerLagHigh":     {"kafka-lag"},
		"SluiceWatermarkStalled":    {"frozen-watermark"},
		"SluiceCheckpointsStalled":  {"stuck-checkpoints"},
	}
	exact := []string{"SluiceErrorRateHigh", "SluiceEngineRestarted", "SluiceTraceCorrelationLow", "SluiceConsumerLagHigh", "SluiceWatermarkStalled", "SluiceCheckpointsStalled"}
	rules := readRuleNames(t)
	for _, r := range rules {
		if want[r] == nil {
			t.Fatalf("alert %s has no scenario in this test", r)
		}
	}
	seen := map[string]map[string]promAlert{} // alert -> query -> first seen
	missing := func() []string {
		var m []string
		for alert, queries := range want {
			for _, q := range queries {
				if _, ok := seen[alert][q]; !ok {
					m = append(m, alert+" for "+q)
				}
			}
		}
		slices.Sort(m)
		return m
	}
	deadline := time.Now().Add(6 * time.Minute)
	for len(missing()) > 0 && time.Now().Before(deadline) {
		select {
		case <-restartAt:
			s := byName["restart"]
			s.cmd.Process.Signal(syscall.SIGKILL)
			s.cmd.Wait()
			s.start(t)
			restarted = true
		case <-time.After(time.Second):
		}
		for _, a := range prom.alerts(t) {
			if a.Labels["namespace"] != obsNamespace {
				t.Errorf("alert %s without the query's namespace: %v", a.Labels["alertname"], a.Labels)
			}
			q := a.Labels["sluice_dev_query"]
			name := a.Labels["alertname"]
			if seen[name] == nil {
				seen[name] = map[string]promAlert{}
			}
			if _, ok := seen[name][q]; !ok {
				a.After = time.Since(started).Round(time.Second)
				seen[name][q] = a
				t.Logf("%s for %s: %s after %v: %s", name, q, a.State, a.After, a.Annotations["summary"])
			}
		}
	}
	if !restarted {
		t.Error("the restart scenario's engine was never restarted")
	}
	if m := missing(); len(m) > 0 {
		t.Errorf("alerts that never reached pending within %v: %s", time.Since(started).Round(time.Second), strings.Join(m, ", "))
	}
	for _, alert := range exact {
		for q := range seen[alert] {
			if !slices.Contains(want[alert], q) {
				t.Errorf("%s fired for %s; want only %v", alert, q, want[alert])
			}
		}
	}
	// The annotations name the culprit, from a query in their template.
	if a, ok := seen["SluiceQueueSaturated"]["slow-sink"]; ok && !strings.Contains(a.Annotations["description"], "workers->sink of 127.0.0.1:") {
		t.Errorf("SluiceQueueSaturated's description %q; want the worst channel, workers->sink, and its engine", a.Annotations["description"])
	}
	if a, ok := seen["SluiceErrorRateHigh"]["dead-letters"]; ok && !strings.Contains(a.Annotations["description"], "most in stage project") {
		t.Errorf("SluiceErrorRateHigh's description %q; want the stage, project", a.Annotations["description"])
	}
	if a, ok := seen["SluiceConsumerLagHigh"]["kafka-lag"]; ok && !strings.Contains(a.Annotations["description"], "trades/0 on 127.0.0.1:") {
		t.Errorf("SluiceConsumerLagHigh's description %q; want the partition trades/0 and its engine", a.Annotations["description"])
	}

	checkDashboard(t, prom)
	checkUserMetrics(t, prom, byName["healthy"])
	// The lagging consumer's lag is the records produced and not read,
	// give or take the 5 s between listings of the partition's end: not
	// the end at its last fetch, minutes old for a consumer held back.
	if v := prom.query(t, `sum(sluice_consumer_lag_records{sluice_dev_query="kafka-lag"})
		/ (sum(sluice_records_total{sluice_dev_query="producer", outcome="out"}) - sum(sluice_records_total{sluice_dev_query="kafka-lag", outcome="in"}))`); len(v) != 1 || v[0].Value < 0.9 || v[0].Value > 1.1 {
		t.Errorf("the lagging consumer's lag over the records produced and not read: %v; want about 1", v)
	}
	if t.Failed() {
		for _, s := range scenarios {
			t.Logf("engine %s stderr (last 2000 bytes):\n%s", s.name, tail(s.errs.String(), 2000))
		}
		t.Logf("prometheus log (last 3000 bytes):\n%s", tail(prom.log.String(), 3000))
	}
}

// manifestOf is a StreamQuery manifest.
func manifestOf(name, sources, query, sink, extra string) string {
	return fmt.Sprintf(`apiVersion: streaming.sluice.dev/v1alpha1
kind: StreamQuery
metadata: {name: %s}
spec:
  sources: %s
  query: %q
  sink: %s
%s`, name, sources, query, sink, extra)
}

// start starts the scenario's engine, and the reader of its pipe.
func (s *scenario) start(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	var args []string
	if s.port != 0 {
		args = []string{"--http", "127.0.0.1:" + strconv.Itoa(s.port)}
	}
	if s.fifo {
		fifo := filepath.Join(dir, "out.fifo")
		if err := syscall.Mkfifo(fifo, 0o600); err != nil {
			t.Fatalf("mkfifo: %v", err)
		}
		if s.stuck {
			go func() {
				f, err := os.Open(fifo) // blocks until the engine opens it
				if err != nil {
					return
				}
				t.Cleanup(func() { f.Close() })
				buf := make([]byte, 64<<10)
				for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); {
					if _, err := f.Read(buf); err != nil {
						return
					}
				}
			}()
		} else {
			readFIFO(fifo, s.slow)
		}
	}
	cmd, base, errs, stdout := startEngine(t, dir, s.manifest, s.env, args...)
	go io.Copy(io.Discard, stdout)
	s.cmd, s.base, s.errs = cmd, base, errs
}

// readFIFO reads the named pipe until its writer closes it: 512 bytes every
// 50 ms (some 200 records a second) while slow says so, else as fast as it
// can.
func readFIFO(path string, slow *atomic.Bool) {
	go func() {
		// Opening blocks until the engine opens the pipe for writing.
		f, err := os.Open(path)
		if err != nil {
			return
		}
		defer f.Close()
		buf := make([]byte, 512)
		for {
			if slow != nil && slow.Load() {
				time.Sleep(50 * time.Millisecond)
			}
			if _, err := f.Read(buf); err != nil {
				return
			}
		}
	}()
}

// startKafka starts a Kafka broker on loopback, with topics of the given
// partitions, until the test ends, and returns its address.
func startKafka(t *testing.T, partitions int32, topics ...string) string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}

// produceFrozen writes 100 records a second to the topic frozen, all with
// the same event time.
func produceFrozen(ctx context.Context, t *testing.T, brokers string) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.DefaultProduceTopic("frozen"))
	if err != nil {
		t.Error(err)
		return
	}
	defer cl.Close()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for ctx.Err() == nil {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
		recs := make([]*kgo.Record, 10)
		for i := range recs {
			recs[i] = &kgo.Record{Value: []byte(`{"k":"a","ts":"2024-01-02T09:30:00Z"}`)}
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil && ctx.Err() == nil {
			t.Errorf("producing to frozen: %v", err)
			return
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// promServer is a Prometheus server the test started.
type promServer struct {
	url string
	log *syncBuffer
}

// startPrometheus starts Prometheus scraping every scenario's engine each
// second, as the operator's ServiceMonitor would label them, and
// evaluating the rules scaled by ruleTimeScale each second.
func startPrometheus(t *testing.T, bin string, scenarios []*scenario) *promServer {
	t.Helper()
	dir := t.TempDir()
	rules, err := scaledRules(rulesFile, ruleTimeScale)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), rules, 0o644); err != nil {
		t.Fatal(err)
	}
	type staticConfig struct {
		Targets []string          `yaml:"targets"`
		Labels  map[string]string `yaml:"labels"`
	}
	var static []staticConfig
	for _, s := range scenarios {
		static = append(static, staticConfig{
			Targets: []string{strings.TrimPrefix(s.base, "http://")},
			Labels:  map[string]string{"namespace": obsNamespace, "sluice_dev_query": s.name},
		})
	}
	cfg, err := yaml.Marshal(map[string]any{
		"global":     map[string]any{"scrape_interval": "1s", "scrape_timeout": "900ms", "evaluation_interval": "1s"},
		"rule_files": []string{"rules.yaml"},
		"scrape_configs": []any{map[string]any{
			"job_name": "sluice-engines", "static_configs": static,
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	var p *promServer
	startOnFreePorts(t, "prometheus", func() (*exec.Cmd, *syncBuffer, func() bool) {
		addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
		cmd := exec.Command(bin, "--config.file=prometheus.yml", "--storage.tsdb.path=data",
			"--web.listen-address="+addr, "--log.level=warn")
		cmd.Dir = dir
		p = &promServer{url: "http://" + addr, log: &syncBuffer{}}
		ready := func() bool {
			resp, err := http.Get(p.url + "/-/ready")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		}
		return cmd, p.log, ready
	})
	return p
}

// startOnFreePorts starts a server on ports freePort picked, as start
// configures it, and waits until ready says it serves. Another process
// can take a port between freePort and the server's bind: a server that
// exits for that is started again on other ports, twice at most. The
// server is killed when the test ends; what it stores is the test's.
func startOnFreePorts(t *testing.T, what string, start func() (cmd *exec.Cmd, log *syncBuffer, ready func() bool)) {
	t.Helper()
attempts:
	for attempt := 1; ; attempt++ {
		cmd, log, ready := start()
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() {
			cmd.Wait()
			close(exited)
		}()
		t.Cleanup(func() {
			cmd.Process.Kill()
			<-exited
		})
		for deadline := time.Now().Add(60 * time.Second); !ready(); {
			select {
			case <-exited:
				if attempt < 3 && strings.Contains(log.String(), "address already in use") {
					continue attempts
				}
				t.Fatalf("%s exited:\n%s", what, log.String())
			case <-time.After(100 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not start:\n%s", what, log.String())
			}
		}
		return
	}
}

// durationIn matches a duration of a range, a subquery's step or an offset.
var durationIn = regexp.MustCompile(`(\[|:|offset )(\d+)(ms|s|m|h|d)\b`)

// scaledRules returns the rule file with every duration in expressions, for
// clauses and annotation templates divided by factor.
func scaledRules(path string, factor int) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rf struct {
		Groups []struct {
			Name  string           `yaml:"name"`
			Rules []map[string]any `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &rf); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	scale := func(d time.Duration) string {
		d /= time.Duration(factor)
		if d%time.Second == 0 {
			return strconv.Itoa(int(d/time.Second)) + "s"
		}
		return strconv.Itoa(int(d/time.Millisecond)) + "ms"
	}
	scaleAll := func(s string) string {
		return durationIn.ReplaceAllStringFunc(s, func(m string) string {
			sub := durationIn.FindStringSubmatch(m)
			d, _ := time.ParseDuration(sub[2] + strings.Replace(sub[3], "d", "h", 1))
			if sub[3] == "d" {
				d *= 24
			}
			return sub[1] + scale(d)
		})
	}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			r["expr"] = scaleAll(r["expr"].(string))
			if f, ok := r["for"].(string); ok {
				d, err := time.ParseDuration(f)
				if err != nil {
					return nil, fmt.Errorf("%s: for %q: %w", r["alert"], f, err)
				}
				r["for"] = scale(d)
			}
			if ann, ok := r["annotations"].(map[string]any); ok {
				for k, v := range ann {
					ann[k] = scaleAll(v.(string))
				}
			}
		}
	}
	return yaml.Marshal(rf)
}

func readRuleNames(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var rf struct {
		Groups []struct {
			Rules []struct{ Alert string } `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &rf); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			names = append(names, r.Alert)
		}
	}
	return names
}

// promAlert is an alert of Prometheus's /api/v1/alerts.
type promAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"`
	// After is how long after Prometheus started the test first saw it.
	After time.Duration `json:"-"`
}

func (p *promServer) alerts(t *testing.T) []promAlert {
	t.Helper()
	var resp struct {
		Data struct {
			Alerts []promAlert `json:"alerts"`
		} `json:"data"`
	}
	p.api(t, "/api/v1/alerts", &resp)
	return resp.Data.Alerts
}

// promSample is one series of an instant query's result.
type promSample struct {
	Labels map[string]string
	Value  float64
}

func (s promSample) String() string { return fmt.Sprintf("%v=%g", s.Labels, s.Value) }

// query evaluates an instant query now; a query Prometheus refuses fails
// the test.
func (p *promServer) query(t *testing.T, q string) []promSample {
	t.Helper()
	var resp struct {
		Data struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	p.api(t, "/api/v1/query?query="+url.QueryEscape(q), &resp)
	var out []promSample
	for _, r := range resp.Data.Result {
		s, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("%s: value %v: %v", q, r.Value, err)
		}
		out = append(out, promSample{Labels: r.Metric, Value: v})
	}
	return out
}

func (p *promServer) api(t *testing.T, path string, into any) {
	t.Helper()
	resp, err := http.Get(p.url + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var status struct {
		Status, Error string
	}
	if err := json.Unmarshal(body, &status); err != nil || status.Status != "success" {
		t.Fatalf("GET %s: %d %s %s", path, resp.StatusCode, status.Error, bytes.TrimSpace(body))
	}
	if err := json.Unmarshal(body, into); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// panelCheck is what one dashboard query must read with its variables set
// to one scenario's query.
type panelCheck struct {
	scenario string
	check    func([]promSample) error
}

// checkDashboard evaluates every query of the dashboard, with the
// variables set as Grafana would for each scenario it is about, and checks
// the values. A query without a check fails the test, so that a new panel
// comes with one.
func checkDashboard(t *testing.T, p *promServer) {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ RefID, Expr string }
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	checks := dashboardChecks()
	used := map[string]bool{}
	for _, panel := range dash.Panels {
		for _, target := range panel.Targets {
			key := panel.Title + "/" + target.RefID
			cs, ok := checks[key]
			if !ok {
				t.Errorf("dashboard query %s (%s) has no check in this test", key, target.Expr)
				continue
			}
			used[key] = true
			for _, c := range cs {
				q := strings.NewReplacer(
					"$namespace", obsNamespace, "$query", c.scenario, "$job", ".*", "$instance", ".*",
					"$__rate_interval", "10s",
				).Replace(target.Expr)
				v := p.query(t, q)
				err := c.check(v)
				if err == nil {
					for _, s := range v {
						if math.IsNaN(s.Value) {
							err = fmt.Errorf("NaN in %v", v)
						}
					}
				}
				if err != nil {
					t.Errorf("panel %q query %s for %s: %v\n%s", panel.Title, target.RefID, c.scenario, err, q)
				} else {
					t.Logf("panel %s for %s: %v", key, c.scenario, v)
				}
			}
		}
	}
	for key := range checks {
		if !used[key] {
			t.Errorf("a check for %s, which the dashboard does not have", key)
		}
	}
}

// series checks that there are series and that every one's value holds.
func series(what string, ok func(float64) bool) func([]promSample) error {
	return func(v []promSample) error {
		if len(v) == 0 {
			return fmt.Errorf("no series; want %s", what)
		}
		for _, s := range v {
			if !ok(s.Value) {
				return fmt.Errorf("%v; want %s", v, what)
			}
		}
		return nil
	}
}

// withLabel checks the series whose label has the value.
func withLabel(label, value, what string, ok func(float64) bool) func([]promSample) error {
	return func(v []promSample) error {
		var match []promSample
		for _, s := range v {
			if s.Labels[label] == value {
				match = append(match, s)
			}
		}
		if err := series(what, ok)(match); err != nil {
			return fmt.Errorf("%s=%q: %w (all: %v)", label, value, err, v)
		}
		return nil
	}
}

func above(x float64) func(float64) bool { return func(v float64) bool { return v > x } }

func within(lo, hi float64) func(float64) bool {
	return func(v float64) bool { return v >= lo && v <= hi }
}

func none(v []promSample) error {
	if len(v) > 0 {
		return fmt.Errorf("%v; want no series", v)
	}
	return nil
}

// dashboardChecks is, for each dashboard query (panel title/refId), the
// scenarios it is checked on and what it must read there.
func dashboardChecks() map[string][]panelCheck {
	positive := series("> 0", above(0))
	finite := series("finite", func(v float64) bool { return !math.IsInf(v, 0) })
	return map[string][]panelCheck{
		"Health/A": {
			{"healthy", series("0 (Healthy) to 2", within(0, 2))},
			{"slow-sink", series("Degraded or worse under a slow sink", within(1, 2))},
		},
		"Input records/s/A":  {{"healthy", positive}},
		"Output records/s/A": {{"healthy", positive}, {"windowed", positive}},
		"Restarts (1h)/A":    {{"restart", series("at least 1", above(0.5))}, {"healthy", series("0", within(0, 0))}},
		"Health checks/A": {{"healthy", func(v []promSample) error {
			if len(v) < 7 {
				return fmt.Errorf("%d checks (%v); want every check", len(v), v)
			}
			return series("0 to 2", within(0, 2))(v)
		}}},
		"Throughput in and out/A": {{"healthy", positive}},
		"Throughput in and out/B": {{"healthy", positive}, {"windowed", positive}},
		"Records by outcome/A": {
			{"dead-letters", withLabel("outcome", "dead_lettered", "> 0", above(0))},
			{"windowed", withLabel("outcome", "results", "> 0", above(0))},
		},
		"Queue utilization by edge/A": {
			{"slow-sink", withLabel("edge", "workers->sink", "over 0.5 full", above(0.5))},
			{"healthy", series("0 to 1", within(0, 1))},
		},
		"Time senders spent blocked/A": {{"slow-sink", withLabel("edge", "workers->sink", "blocked most of the time", within(0.5, 1.05))}},
		"Backpressure events/A":        {{"slow-sink", withLabel("edge", "workers->sink", "> 0", above(0))}},
		// Waits count while in progress: never more than all of the time,
		// and the stateful stage's is measured.
		"Receivers waiting for input/A": {
			{"healthy", withLabel("edge", "workers->sink", "waiting most of the time, at most all of it", within(0.3, 1.05))},
			{"windowed", withLabel("edge", "workers->stateful", "waiting most of the time, at most all of it", within(0.3, 1.05))},
		},
		"Time channels were saturated/A":       {{"slow-sink", withLabel("edge", "workers->sink", "saturated most seconds", within(0.5, 1.05))}},
		"Batch duration by stage (p50, p99)/A": {{"healthy", withLabel("stage", "write", "> 0", above(0))}},
		"Batch duration by stage (p50, p99)/B": {{"healthy", withLabel("stage", "process", "> 0", above(0))}},
		"Source to sink latency/A": {
			{"healthy", positive},
			{"windowed", positive},
		},
		"Batch size by stage/A":             {{"healthy", withLabel("stage", "read", "> 0", above(0))}},
		"Sink retries/A":                    {{"healthy", series("0", within(0, 0))}},
		"Errors by stage/A":                 {{"dead-letters", withLabel("stage", "project", "> 0", above(0))}},
		"Dead letters and skips/A":          {{"dead-letters", withLabel("outcome", "dead_lettered", "> 0", above(0))}},
		"Committed progress by partition/A": {{"healthy", positive}, {"kafka-lag", positive}},
		"Trace correlation/A": {
			{"traced", series("about half, with a 0.5 sampler", within(0.2, 0.8))},
			{"healthy", none},
		},
		"Memory/A":                       {{"healthy", positive}},
		"Memory/B":                       {{"healthy", positive}},
		"CPU/A":                          {{"healthy", positive}},
		"Goroutines and workers/A":       {{"healthy", positive}},
		"Goroutines and workers/B":       {{"healthy", series("at least 1", above(0.5))}},
		"Consumer lag (records)/A":       {{"kafka-lag", series("over 1000", above(1000))}, {"healthy", none}},
		"Consumer lag (seconds)/A":       {{"kafka-lag", series("over 10 s", above(10))}},
		"Watermark delay/A":              {{"windowed", finite}, {"frozen-watermark", series("positive", above(0))}},
		"State/A":                        {{"windowed", positive}, {"growing-state", series("over 1000 groups", above(1000))}},
		"Checkpoint age/A":               {{"windowed", series("under 10 s, at a 1 s interval", within(0, 10))}, {"stuck-checkpoints", series("growing past the interval", above(3))}},
		"Checkpoint age/B":               {{"windowed", series("the 1 s interval", within(1, 1))}},
		"Checkpoint duration and size/A": {{"windowed", series("under 5 s", within(0, 5))}},
		"Checkpoint duration and size/B": {{"windowed", positive}},
	}
}

// checkUserMetrics checks the business metrics of the healthy scenario,
// which spec.metrics declares, as Prometheus scraped them.
func checkUserMetrics(t *testing.T, p *promServer, s *scenario) {
	t.Helper()
	sel := `{sluice_dev_query="healthy"}`
	for _, c := range []struct {
		query string
		check func([]promSample) error
	}{
		// Every row written counts once, by symbol.
		{`sum(rate(sluice_user_trades_total` + sel + `[10s])) / sum(rate(sluice_records_total{sluice_dev_query="healthy", outcome="out"}[10s]))`,
			series("1: a row each", within(0.95, 1.05))},
		{`count(sluice_user_trades_total` + sel + `)`, series("a series per symbol", above(1))},
		{`min(sluice_user_price` + sel + `)`, series("a positive price", above(0))},
		{`histogram_quantile(0.5, sum by (le) (rate(sluice_user_quantity_bucket` + sel + `[10s])))`, series("a median quantity", above(0))},
		// 50 series of trade ids, the rest in the overflow series.
		{`count(sluice_user_ids_total{sluice_dev_query="healthy", trade_id!="__overflow__"})`, series("50 series", within(50, 50))},
		{`sluice_user_ids_total{sluice_dev_query="healthy", trade_id="__overflow__"}`, series("the rows past 50 series", above(1000))},
	} {
		if err := c.check(p.query(t, c.query)); err != nil {
			t.Errorf("%s: %v", c.query, err)
		}
	}
	_, body := get(t, s.base+enginestatus.Path)
	var doc enginestatus.Document
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Metrics) != 4 || len(doc.Warnings) != 1 || !strings.Contains(doc.Warnings[0], "sluice_user_ids_total reached its maxSeries of 50") {
		t.Errorf("/status metrics %+v, warnings %q; want 4 metrics and a warning of ids_total's overflow", doc.Metrics, doc.Warnings)
	}
}
