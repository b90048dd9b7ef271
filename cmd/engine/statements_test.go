package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/api/enginestatus"
)

// TestRunStatements runs the bundled statement set: each statement writes
// what it would alone, and the summary line says what became of the
// records in each.
func TestRunStatements(t *testing.T) {
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join(repoRoot, "examples/statements.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := filepath.Abs(filepath.Join(repoRoot, "examples/data"))
	if err != nil {
		t.Fatal(err)
	}
	manifest := strings.ReplaceAll(string(b), "examples/data/", data+"/")
	manifest = strings.ReplaceAll(manifest, "/tmp/sluice-", "")
	os.WriteFile(filepath.Join(dir, "statements.yaml"), []byte(manifest), 0o644)
	r := runEngine(t, dir, nil, "run", "-f", "statements.yaml", "--http", "")
	if r.code != exitOK {
		t.Fatalf("exit %d:\n%s", r.code, r.stderr)
	}
	if want := `{"symbol":"NVDA","ts":"2024-01-02T09:30:04Z","price":298.0775,"quantity":1000,"notional":298077.5000}` + "\n"; r.stdout != want {
		t.Errorf("stdout %q; want the one block trade, %q", r.stdout, want)
	}
	for file, lines := range map[string]int{"volume.jsonl": 5, "nvda.jsonl": 10} {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil || strings.Count(string(b), "\n") != lines {
			t.Errorf("%s: %d lines (%v); want %d", file, strings.Count(string(b), "\n"), err, lines)
		}
	}
	want := "40 in; statement blocks: 1 out, 39 filtered, 0 dead-lettered, 0 skipped, 0 failed; statement volume: 0 out, 0 filtered, 0 dead-lettered, 0 skipped, 0 failed, 40 aggregated or joined, 0 late, 0 revoked, 0 restored, 5 results; statement nvda: 9 out, 31 filtered"
	if !strings.Contains(r.stderr, want) {
		t.Errorf("stderr:\n%s\nwant the summary %q", r.stderr, want)
	}
}

// TestStatementsStatus: an endless statement set's /status shows each
// statement, and /metrics each statement's business metric; SIGTERM
// drains every statement.
func TestStatementsStatus(t *testing.T) {
	const manifest = `apiVersion: streaming.sluice.dev/v1alpha1
kind: StreamQuery
metadata: {name: feeds}
spec:
  sources:
    - name: trades
      datagen: {generator: trades, rate: 2000, partitions: 2}
  statements:
    - name: copy
      query: SELECT symbol, price FROM trades
      sink: {"null": {}}
    - name: counts
      query: SELECT window_start, symbol, count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '1' SECOND) GROUP BY window_start, window_end, symbol
      sink: {"null": {}}
  metrics:
    - {name: copied_total, type: Counter, statement: copy}
    - {name: window_trades_total, type: Counter, value: n, statement: counts}
`
	cmd, base, stderr, stdout := startEngine(t, "", manifest, nil)
	go io.Copy(io.Discard, stdout)
	var doc enginestatus.Document
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body := get(t, base+"/status")
		if code == http.StatusOK && json.Unmarshal([]byte(body), &doc) == nil && len(doc.Statements) == 2 && doc.Statements[1].Records.Results > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/status = %d\n%s\nwant both statements, the window one with results", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if s := doc.Statements[0]; s.Name != "copy" || s.Pipeline != enginestatus.Running || s.Records.In == 0 || doc.Records.In < s.Records.In {
		t.Errorf("statement %+v, records %+v; want copy running, every record it took read", s, doc.Records)
	}
	_, metrics := get(t, base+"/metrics")
	for _, series := range []string{"sluice_user_copied_total", "sluice_user_window_trades_total"} {
		if metricValue(metrics, series) <= 0 {
			t.Errorf("/metrics has no %s above 0", series)
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	waitExit(t, cmd, "SIGTERM")
	if !strings.Contains(stderr.String(), "; statement copy: ") || !strings.Contains(stderr.String(), "; statement counts: ") {
		t.Errorf("stderr:\n%s\nwant the summary of each statement", stderr.String())
	}
}
