package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/sluice-dev/sluice/api/enginestatus"
	"github.com/sluice-dev/sluice/api/v1alpha1"
)

var update = flag.Bool("update", false, "rewrite golden files")

// engineBin is the engine binary the tests run as a real process.
var engineBin string

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "engine-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	engineBin = filepath.Join(dir, "engine")
	args := []string{"build", "-o", engineBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, ".")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the engine:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// repoRoot is where the README's commands run.
const repoRoot = "../.."

type result struct {
	stdout, stderr string
	code           int
}

func runEngine(t *testing.T, dir string, stdin io.Reader, args ...string) result {
	t.Helper()
	cmd := exec.Command(engineBin, args...)
	cmd.Dir = dir
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("engine %v did not finish", args)
	}
	return result{stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()}
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test -update accepts it):\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// TestValidateBroken checks that validate reports every problem of a broken
// manifest at its line and column, and exits 1; and that run refuses the
// manifest with the same report.
func TestValidateBroken(t *testing.T) {
	files, _ := filepath.Glob("testdata/validate/*.yaml")
	if len(files) == 0 {
		t.Fatal("no manifests in testdata/validate")
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(strings.TrimSuffix(name, ".yaml"), func(t *testing.T) {
			r := runEngine(t, "testdata/validate", nil, "validate", "-f", name)
			if r.code != exitFailed {
				t.Errorf("engine validate -f %s exited %d; want %d", name, r.code, exitFailed)
			}
			if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `:\d+:\d+: `).MatchString(r.stderr) {
				t.Errorf("stderr has no file:line:column position:\n%s", r.stderr)
			}
			golden(t, strings.TrimSuffix(f, ".yaml")+".golden", r.stderr)
			run := runEngine(t, "testdata/validate", nil, "run", "-f", name, "--http", "", "--log-format", "json")
			if run.code != r.code || run.stderr != r.stderr {
				t.Errorf("engine run -f %s exited %d with\n%s\nwant what validate says, exit %d:\n%s", name, run.code, run.stderr, r.code, r.stderr)
			}
		})
	}
}

// TestValidateExamples: every bundled example is valid.
func TestValidateExamples(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(repoRoot, "examples", "*.yaml"))
	nexmark, _ := filepath.Glob(filepath.Join(repoRoot, "examples", "nexmark", "*.yaml"))
	for _, f := range append(files, nexmark...) {
		rel, _ := filepath.Rel(repoRoot, f)
		r := runEngine(t, repoRoot, nil, "validate", "-f", rel)
		if r.code != exitOK || !strings.HasPrefix(r.stdout, rel+": ok\nMode: ") {
			t.Errorf("engine validate -f %s: exit %d\n%s%s", rel, r.code, r.stdout, r.stderr)
		}
	}
	// The mode follows the sources: a datagen with a count ends, one with
	// a rate does not.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "unbounded.yaml"), []byte(unboundedManifest), 0o644)
	for _, tc := range []struct{ dir, file, want string }{
		{repoRoot, "examples/datagen.yaml", "Mode: Batch"},
		{dir, "unbounded.yaml", "Mode: Continuous"},
	} {
		if r := runEngine(t, tc.dir, nil, "validate", "-f", tc.file); !strings.Contains(r.stdout, tc.want) {
			t.Errorf("engine validate -f %s:\n%s\nwant %s", tc.file, r.stdout, tc.want)
		}
	}
}

// TestValidateSinkKeys: validate shows the schema of an Avro sink's keys
// and the subject it is registered under.
func TestValidateSinkKeys(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "keys.yaml"), []byte(`apiVersion: streaming.sluice.dev/v1alpha1
kind: StreamQuery
metadata: {name: keys}
spec:
  sources:
    - name: trades
      datagen: {generator: trades, count: 10}
  query: SELECT symbol, count(*) AS n FROM trades GROUP BY symbol
  sink:
    format: avro
    avro: {registry: {url: "http://registry:8081"}}
    kafka: {brokers: ["kafka:9092"], topic: counts, key: symbol, keyFormat: avro}
`), 0o644)
	r := runEngine(t, dir, nil, "validate", "-f", "keys.yaml")
	want := `Keys: symbol, their schema registered under subject counts-key:
{"type":"record","name":"Row","namespace":"sluice","fields":[{"name":"symbol","type":["null","string"],"default":null}]}`
	if r.code != exitOK || !strings.Contains(r.stdout, want) {
		t.Errorf("engine validate: exit %d\n%s%s\nwant\n%s", r.code, r.stdout, r.stderr, want)
	}
}

// TestValidateRepartition: the plan of a query repartitioned on several
// engines names the step, its key and topic, between the filter the
// engines run over the source's partitions and the aggregate they run
// over the topic's; on one engine there is no such step.
func TestValidateRepartition(t *testing.T) {
	r := runEngine(t, repoRoot, nil, "validate", "-f", "examples/repartition.yaml")
	want := `State: keyed by symbol; source trades is partitioned by its record key, id: its rows are repartitioned by symbol through the topic sluice.default.volume-by-symbol.repartition.0, so each engine holds whole keys
Output [window_start timestamp, symbol string, trades int, volume int]
  Project window_start AS window_start, symbol AS symbol, count(*) AS trades, sum(quantity) AS volume
    Aggregate TUMBLE(ts, 1m0s) BY symbol COMPUTE count(*), sum(quantity)
      Repartition by symbol through topic sluice.default.volume-by-symbol.repartition.0
        Filter (quantity > 0)
          Scan trades [`
	if r.code != exitOK || !strings.Contains(r.stdout, want) {
		t.Errorf("engine validate: exit %d\n%s%s\nwant\n%s", r.code, r.stdout, r.stderr, want)
	}
	dir := t.TempDir()
	b, _ := os.ReadFile(filepath.Join(repoRoot, "examples/repartition.yaml"))
	os.WriteFile(filepath.Join(dir, "one.yaml"), bytes.Replace(b, []byte("replicas: 3"), []byte("replicas: 1"), 1), 0o644)
	if r := runEngine(t, dir, nil, "validate", "-f", "one.yaml"); r.code != exitOK || strings.Contains(r.stdout, "Repartition by") {
		t.Errorf("on one engine: exit %d\n%s%s\nwant no repartition step", r.code, r.stdout, r.stderr)
	}
	// An interval join: a step on each side, keyed by its keys, to one
	// topic.
	r = runEngine(t, repoRoot, nil, "validate", "-f", "examples/repartition-join.yaml")
	want = `State: an interval join keyed by trades.symbol = quotes.symbol: the rows of both sources are repartitioned by the keys through the topic sluice.default.trades-with-quotes.repartition.0, so each engine holds both sides of whole keys
Output [symbol string, ts timestamp, quantity int, bid double, quoted timestamp]
  Project trades.symbol AS symbol, trades.ts AS ts, trades.quantity AS quantity, quotes.bid AS bid, quotes.ts AS quoted
    IntervalJoin JOIN ON trades.symbol = quotes.symbol AND trades.ts BETWEEN quotes.ts - 0s AND quotes.ts + 1s
      Repartition by trades.symbol through topic sluice.default.trades-with-quotes.repartition.0
        Scan trades [id string, symbol string, quantity int, ts timestamp, _key string, _partition int, _offset int, _timestamp timestamp]
      Repartition by quotes.symbol through topic sluice.default.trades-with-quotes.repartition.0
        Scan quotes [`
	if r.code != exitOK || !strings.Contains(r.stdout, want) {
		t.Errorf("engine validate of the join: exit %d\n%s%s\nwant\n%s", r.code, r.stdout, r.stderr, want)
	}
}

var summaryLine = regexp.MustCompile(`sluice: finished in \S+: (\d+) in, (\d+) out, (\d+) filtered, (\d+) dead-lettered, (\d+) skipped, (\d+) failed`)

// TestRunQuickstart runs the README's first command and checks its rows.
func TestRunQuickstart(t *testing.T) {
	r := runEngine(t, repoRoot, nil, "run", "-f", "examples/quickstart.yaml", "--http", "")
	if r.code != exitOK {
		t.Fatalf("exit %d:\n%s", r.code, r.stderr)
	}
	golden(t, "testdata/quickstart.golden", r.stdout)
	m := summaryLine.FindStringSubmatch(r.stderr)
	if m == nil || m[1] != "40" || m[2] != "11" || m[3] != "29" {
		t.Errorf("summary %q; want 40 in, 11 out, 29 filtered", m)
	}
}

// TestRunStdin reads records from standard input, CSV out.
func TestRunStdin(t *testing.T) {
	manifest := `apiVersion: streaming.sluice.dev/v1alpha1
kind: StreamQuery
metadata: {name: stdin}
spec:
  sources:
    - name: t
      stdin: {}
      format: csv
      schema: [{name: a, type: int}, {name: b, type: string}]
  query: SELECT a * 10 AS a10, upper(b) AS b FROM t WHERE a > 1
  sink: {stdout: {}, format: csv}
`
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "q.yaml"), []byte(manifest), 0o644)
	r := runEngine(t, dir, strings.NewReader("a,b\n1,x\n2,\"y, z\"\n3,w\n"), "run", "-f", "q.yaml", "--http", "")
	if r.code != exitOK {
		t.Fatalf("exit %d:\n%s", r.code, r.stderr)
	}
	if want := "a10,b\n20,\"Y, Z\"\n30,W\n"; r.stdout != want {
		t.Errorf("stdout %q; want %q", r.stdout, want)
	}
}

// TestRunFailFast: a bad record stops the run with exit 1, naming its line.
func TestRunFailFast(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "in.jsonl"), []byte("{\"a\":1}\n{\"a\":\"x\"}\n{\"a\":3}\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "q.yaml"), []byte(`apiVersion: streaming.sluice.dev/v1alpha1
kind: StreamQuery
metadata: {name: ff}
spec:
  sources: [{name: t, file: {path: in.jsonl}, schema: [{name: a, type: int}]}]
  query: SELECT a FROM t
  sink: {stdout: {}}
`), 0o644)
	r := runEngine(t, dir, nil, "run", "-f", "q.yaml", "--http", "")
	if r.code != exitFailed {
		t.Errorf("exit %d; want %d", r.code, exitFailed)
	}
	if !strings.Contains(r.stderr, "in.jsonl line 2") || !strings.Contains(r.stderr, "sluice: failed") {
		t.Errorf("stderr does not name the failing line:\n%s", r.stderr)
	}

	// In a container: JSON logs only, and the summary as the termination
	// message, the operator's lastError.
	termination := filepath.Join(dir, "termination-log")
	os.WriteFile(termination, nil, 0o644) // the kubelet creates it
	r = runEngine(t, dir, nil, "run", "-f", "q.yaml", "--http", "", "--log-format", "json", "--termination-log", termination)
	for _, line := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("with --log-format json, a line of stderr is not JSON: %s", line)
		}
	}
	msg, _ := os.ReadFile(termination)
	var end enginestatus.Termination
	if err := json.Unmarshal(msg, &end); err != nil {
		t.Fatalf("termination message %q: %v; want an enginestatus.Termination", msg, err)
	}
	if !end.Failed || !strings.HasPrefix(end.Summary, "sluice: failed: ") || !strings.Contains(end.Summary, "in.jsonl line 2") || end.Records.In == 0 {
		t.Errorf("termination message %+v; want the failed run's summary and counts", end)
	}
}

// startEngine starts a long-running engine in dir (a new one if empty) and
// returns its HTTP address. env adds to the environment; args to the flags.
func startEngine(t *testing.T, dir, manifest string, env []string, args ...string) (*exec.Cmd, string, *syncBuffer, io.ReadCloser) {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	os.WriteFile(filepath.Join(dir, "q.yaml"), []byte(manifest), 0o644)
	cmd := exec.Command(engineBin, append([]string{"run", "-f", "q.yaml", "--http", "127.0.0.1:0", "--log-format", "json"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderrPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	stderr := &syncBuffer{}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderrPipe)
		for sc.Scan() {
			line := sc.Text()
			stderr.WriteString(line + "\n")
			var entry struct{ Msg, Address string }
			if json.Unmarshal([]byte(line), &entry) == nil && entry.Msg == "serving HTTP" {
				addr <- entry.Address
			}
		}
	}()
	select {
	case a := <-addr:
		return cmd, "http://" + a, stderr, stdout
	case <-time.After(30 * time.Second):
		t.Fatalf("the engine did not start serving HTTP:\n%s", stderr.String())
	}
	return nil, "", nil, nil
}

// TestRunProfiling: /debug/pprof is served on the --pprof address, and
// runtime.profiling in the manifest serves it on 127.0.0.1:6060.
func TestRunProfiling(t *testing.T) {
	cmd, _, stderr, stdout := startEngine(t, "", unboundedManifest, nil, "--pprof", "127.0.0.1:0")
	go io.Copy(io.Discard, stdout)
	addr := logged(t, stderr, "serving /debug/pprof")
	if code, body := get(t, "http://"+addr+"/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("/debug/pprof/ on %s = %d\n%.300s", addr, code, body)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	waitExit(t, cmd, "SIGTERM")

	if l, err := net.Listen("tcp", v1alpha1.ProfilingAddr); err != nil {
		t.Skipf("%s is taken on this machine (%v); the manifest's address is not tested", v1alpha1.ProfilingAddr, err)
	} else {
		l.Close()
	}
	manifest := strings.Replace(unboundedManifest, "spec:\n", "spec:\n  runtime: {profiling: true}\n", 1)
	cmd, _, stderr, stdout = startEngine(t, "", manifest, nil)
	go io.Copy(io.Discard, stdout)
	if addr := logged(t, stderr, "serving /debug/pprof"); addr != v1alpha1.ProfilingAddr {
		t.Errorf("runtime.profiling served on %s; want %s", addr, v1alpha1.ProfilingAddr)
	}
	if code, _ := get(t, "http://"+v1alpha1.ProfilingAddr+"/debug/pprof/"); code != 200 {
		t.Errorf("/debug/pprof/ on %s = %d", v1alpha1.ProfilingAddr, code)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	waitExit(t, cmd, "SIGTERM")
}

// TestRunStalledLiveness: an engine whose sink cannot write (stdout, a pipe
// nobody reads) completes nothing while records wait: after the stall
// timeout /healthz fails and /status says why, so Kubernetes restarts it.
func TestRunStalledLiveness(t *testing.T) {
	manifest := strings.Replace(unboundedManifest, "spec:\n", "spec:\n  health: {stallTimeout: 2s}\n", 1)
	manifest = strings.Replace(manifest, `sink: {"null": {}}`, "sink: {stdout: {}}", 1)
	manifest = strings.Replace(manifest, "WHERE quantity > 300", "", 1)
	cmd, base, _, _ := startEngine(t, "", manifest, nil) // stdout is never read
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body := get(t, base+"/healthz")
		if code == http.StatusServiceUnavailable && strings.Contains(body, "stalled: no record completed") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz = %d %q after 30s of a blocked sink; want 503 stalled", code, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var doc enginestatus.Document
	_, body := get(t, base+enginestatus.Path)
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Health != enginestatus.Unhealthy {
		t.Errorf("/status health %s; want Unhealthy", doc.Health)
	}
	cmd.Process.Kill()
}

// logged waits for the JSON log line msg on stderr and returns its address.
func logged(t *testing.T, stderr *syncBuffer, msg string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, line := range strings.Split(stderr.String(), "\n") {
			var entry struct{ Msg, Address string }
			if json.Unmarshal([]byte(line), &entry) == nil && entry.Msg == msg {
				return entry.Address
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no log line %q:\n%s", msg, stderr.String())
	return ""
}

const unboundedManifest = `apiVersion: streaming.sluice.dev/v1alpha1
kind: StreamQuery
metadata: {name: unbounded}
spec:
  sources: [{name: trades, datagen: {generator: trades, partitions: 2, rate: 20000}}]
  query: SELECT trade_id, symbol, price FROM trades WHERE quantity > 300
  sink: {"null": {}}
`

// syncBuffer is a buffer one goroutine writes while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) WriteString(p string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.WriteString(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestRunHTTPAndSignal runs an unbounded query, reads every endpoint over
// HTTP, then stops it with SIGTERM: it drains, exits 0 and accounts for every
// record.
func TestRunHTTPAndSignal(t *testing.T) {
	cmd, base, stderr, stdout := startEngine(t, "", unboundedManifest, nil)
	go io.Copy(io.Discard, stdout)
	if code, body := get(t, base+"/healthz"); code != 200 {
		t.Errorf("/healthz = %d %q", code, body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _ := get(t, base+"/readyz")
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz never became ready")
		}
		time.Sleep(50 * time.Millisecond)
	}
	var doc enginestatus.Document
	for {
		_, body := get(t, base+enginestatus.Path)
		if err := json.Unmarshal([]byte(body), &doc); err != nil {
			t.Fatalf("/status is not the status document: %v\n%s", err, body)
		}
		if doc.Records.Out > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if doc.Version != enginestatus.Version || doc.Pipeline != "Running" || doc.Records.In == 0 || len(doc.Edges) != 3 || len(doc.Checks) == 0 {
		t.Errorf("/status = %+v; want a running pipeline with records and its 3 edges", doc)
	}
	if _, body := get(t, base+"/metrics"); !strings.Contains(body, `sluice_records_total{outcome="in"}`) || !strings.Contains(body, "sluice_channel_capacity") {
		t.Errorf("/metrics lacks the engine's metrics:\n%.2000s", body)
	}
	if code, _ := get(t, base+"/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("/debug/pprof/ on the status port = %d; want 404: profiles are served only where --pprof says", code)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	waitExit(t, cmd, "SIGTERM")
	if code := cmd.ProcessState.ExitCode(); code != exitOK {
		t.Errorf("exit %d after SIGTERM; want 0\n%s", code, stderr.String())
	}
	m := summaryLine.FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("no summary line:\n%s", stderr.String())
	}
	var in, out, filtered int64
	fmt.Sscan(m[1], &in)
	fmt.Sscan(m[2], &out)
	fmt.Sscan(m[3], &filtered)
	if in == 0 || in != out+filtered {
		t.Errorf("summary %q: in != out + filtered after a drain", m[0])
	}
}

// waitExit waits for an engine process to exit after what, or fails.
func waitExit(t *testing.T, cmd *exec.Cmd, what string) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		// Its goroutines, where it is stuck, to its stderr: shown for the
		// engines whose stderr a test prints (startInstance's, with
		// SLUICE_TEST_LOG=1).
		cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
		t.Fatalf("the engine did not exit after %s", what)
	}
}

// TestSecondSignalAborts: when the drain cannot finish (nobody reads the
// engine's standard output), a second signal aborts with exit 130.
func TestSecondSignalAborts(t *testing.T) {
	manifest := strings.Replace(unboundedManifest, `sink: {"null": {}}`, "sink: {stdout: {}}", 1)
	cmd, _, stderr, stdout := startEngine(t, "", manifest, nil)
	defer stdout.Close()
	time.Sleep(300 * time.Millisecond) // the stdout pipe fills and the sink blocks
	cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(200 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGTERM)
	waitExit(t, cmd, "a second SIGTERM")
	if code := cmd.ProcessState.ExitCode(); code != exitAborted {
		t.Errorf("exit %d after two signals; want %d\n%s", code, exitAborted, stderr.String())
	}
}

// TestTerminationMessageFits: a summary longer than Kubernetes keeps of a
// termination message (4096 bytes) is cut so that the document stays JSON.
func TestTerminationMessageFits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "termination-log")
	os.WriteFile(path, nil, 0o644)
	// Quotes and control characters take more room escaped.
	long := "sluice: failed: " + strings.Repeat("é\"\x01<", 2000)
	if err := writeTerminationMessage(path, long, true, enginestatus.Records{In: 7}); err != nil {
		t.Fatal(err)
	}
	msg, _ := os.ReadFile(path)
	var end enginestatus.Termination
	if len(msg) > 4096 || json.Unmarshal(msg, &end) != nil || !strings.HasSuffix(end.Summary, "…") || end.Records.In != 7 {
		t.Errorf("termination message of %d bytes, %q...; want at most 4096 bytes of JSON, the summary cut", len(msg), msg[:min(len(msg), 80)])
	}
	if err := writeTerminationMessage(filepath.Join(t.TempDir(), "absent"), "x", false, enginestatus.Records{}); err != nil {
		t.Errorf("no termination log: %v; want nothing written and no error", err)
	}
}

// TestRunCannotStart: a run that cannot start (its input file is missing)
// says why in the log's format and as the termination message, as a run
// that failed does: a Batch query's Job shows it.
func TestRunCannotStart(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "q.yaml"), []byte(`apiVersion: streaming.sluice.dev/v1alpha1
kind: StreamQuery
metadata: {name: missing}
spec:
  sources: [{name: t, file: {path: none.jsonl}, schema: [{name: a, type: int}]}]
  query: SELECT a FROM t
  sink: {stdout: {}}
`), 0o644)
	termination := filepath.Join(dir, "termination-log")
	os.WriteFile(termination, nil, 0o644)
	r := runEngine(t, dir, nil, "run", "-f", "q.yaml", "--http", "", "--log-format", "json", "--termination-log", termination)
	if r.code != exitFailed {
		t.Errorf("exit %d; want %d", r.code, exitFailed)
	}
	for _, line := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("with --log-format json, a line of stderr is not JSON: %s", line)
		}
	}
	msg, _ := os.ReadFile(termination)
	var end enginestatus.Termination
	if err := json.Unmarshal(msg, &end); err != nil || !end.Failed || !strings.Contains(end.Summary, "none.jsonl") {
		t.Errorf("termination message %q (%v); want a failed Termination naming the file", msg, err)
	}
}

// TestRunBatchStopped: a run whose sources end (a Batch query), stopped by
// a signal before they did, drains but exits exitStopped, not 0, and says
// so in its termination message: its Job must run it again rather than
// count half the input as done.
func TestRunBatchStopped(t *testing.T) {
	dir := t.TempDir()
	termination := filepath.Join(dir, "termination-log")
	os.WriteFile(termination, nil, 0o644)
	batch := strings.Replace(unboundedManifest, "rate: 20000}", "rate: 2000, count: 1000000}", 1)
	cmd, base, stderr, stdout := startEngine(t, dir, batch, nil, "--termination-log", termination)
	go io.Copy(io.Discard, stdout)
	deadline := time.Now().Add(10 * time.Second)
	for code, _ := get(t, base+"/readyz"); code != 200 && time.Now().Before(deadline); code, _ = get(t, base+"/readyz") {
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	waitExit(t, cmd, "SIGTERM")
	if code := cmd.ProcessState.ExitCode(); code != exitStopped {
		t.Errorf("exit %d after SIGTERM of a Batch run; want %d\n%s", code, exitStopped, stderr.String())
	}
	msg, _ := os.ReadFile(termination)
	var end enginestatus.Termination
	if err := json.Unmarshal(msg, &end); err != nil || !end.Failed || !strings.Contains(end.Summary, "stopped by a signal before the input ended") {
		t.Errorf("termination message %q (%v); want a failed run, stopped before its input ended", msg, err)
	}
}

// TestBenchNexmark: engine bench runs a Nexmark query over its share of
// the events, with profiles if asked, and lists the queries for one it
// does not know.
func TestBenchNexmark(t *testing.T) {
	profile, heap := filepath.Join(t.TempDir(), "cpu.pprof"), filepath.Join(t.TempDir(), "heap.pprof")
	r := runEngine(t, repoRoot, nil, "bench", "-nexmark", "q2", "-events", "46000", "-cpuprofile", profile, "-memprofile", heap)
	// 46 of every 50 events are bids.
	if r.code != exitOK || !strings.Contains(r.stdout, "records:     42320 in") || !strings.Contains(r.stdout, "MOD(auction, 123)") {
		t.Errorf("engine bench -nexmark q2: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// Profiles, gzipped protobuf as pprof writes them.
	for flag, path := range map[string]string{"-cpuprofile": profile, "-memprofile": heap} {
		if b, err := os.ReadFile(path); err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
			t.Errorf("%s wrote %d bytes (%v); want a gzipped profile", flag, len(b), err)
		}
	}
	const want = "no nexmark query q99 (there are q0, q1, q2, q3, q4, q5, q6, q7, q8, q9, q10, q11, q12, q13, q14, q15, q16, q17, q18, q19, q20, q21, q22)"
	if r := runEngine(t, repoRoot, nil, "bench", "-nexmark", "q99"); r.code != exitUsage || !strings.Contains(r.stderr, want) {
		t.Errorf("engine bench -nexmark q99: exit %d\n%s; want %q", r.code, r.stderr, want)
	}
}

// TestValidateLatestSchema: validate reads the latest schema of a source
// that takes its columns from its registry (srfake, franz-go's in-process
// implementation of the registry's REST API: no registry runs here) and
// shows them; a subject not registered is the problem of the source's
// registry, at its place in the file, for validate and run alike.
func TestValidateLatestSchema(t *testing.T) {
	reg := srfake.New()
	t.Cleanup(reg.Close)
	cl, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		t.Fatal(err)
	}
	schema := `{"type":"record","name":"T","fields":[{"name":"symbol","type":"string"},{"name":"price","type":"double"},{"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}}]}`
	if _, err := cl.RegisterSchema(context.Background(), "trades-value", sr.Schema{Schema: schema, Type: sr.TypeAvro}, -1, -1); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	manifest := func(topic string) string {
		return `apiVersion: streaming.sluice.dev/v1alpha1
kind: StreamQuery
metadata: {name: latest}
spec:
  sources:
    - name: trades
      kafka: {brokers: ["127.0.0.1:1"], topic: ` + topic + `}
      format: avro
      avro:
        registry: {url: "` + reg.URL() + `"}
  query: SELECT symbol, price FROM trades WHERE price > 10
  sink: {stdout: {}}
`
	}
	os.WriteFile(filepath.Join(dir, "latest.yaml"), []byte(manifest("trades")), 0o644)
	os.WriteFile(filepath.Join(dir, "unregistered.yaml"), []byte(manifest("quotes")), 0o644)
	r := runEngine(t, dir, nil, "validate", "-f", "latest.yaml")
	want := `latest.yaml: ok
Mode: Continuous: a source reads without end; on Kubernetes the query runs as a Deployment
Source trades: the fields of the latest schema of subject trades-value at ` + reg.URL() + `, version 1 (schema id 1), read now:
  symbol string
  price double
  ts timestamp
`
	if r.code != exitOK || !strings.HasPrefix(r.stdout, want) {
		t.Errorf("engine validate: exit %d\n%s%s\nwant\n%s", r.code, r.stdout, r.stderr, want)
	}
	// A query that checkpoints its state: a new version would change the
	// columns of the rows it holds.
	stateful := strings.Replace(manifest("trades"), "  query: SELECT symbol, price FROM trades WHERE price > 10\n",
		"  query: SELECT window_start, symbol, max(price) AS high FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY window_start, window_end, symbol\n  state: {dir: state}\n", 1)
	stateful = strings.Replace(stateful, "      format: avro\n", "      format: avro\n      eventTime: {column: ts}\n", 1)
	os.WriteFile(filepath.Join(dir, "stateful.yaml"), []byte(stateful), 0o644)
	for _, args := range [][]string{{"validate"}, {"run", "--http", ""}} {
		for file, want := range map[string]string{
			"unregistered.yaml": "unregistered.yaml:10:19: spec.sources[0].avro.registry: the columns are the fields of the latest schema of subject quotes-value: the registry at " + reg.URL() + " has no subject quotes-value\n1 problem found\n",
			"stateful.yaml":     "stateful.yaml:11:19: spec.sources[0].avro.registry: the columns are the fields of the registry's latest schema, read as each engine starts, which a new version would change; the query keeps state of its rows (spec.state checkpoints it), which would then not read: declare the columns, or give avro.schema\n1 problem found\n",
		} {
			// run logs the schemas it read before it says why it cannot.
			r := runEngine(t, dir, nil, append(args, "-f", file)...)
			if r.code != exitFailed || !strings.HasSuffix(r.stderr, "\n"+want) && r.stderr != want {
				t.Errorf("engine %s -f %s: exit %d\n%s%s\nwant\n%s", args[0], file, r.code, r.stdout, r.stderr, want)
			}
		}
	}
}
