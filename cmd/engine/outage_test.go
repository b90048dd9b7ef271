package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestKafkaBrokerOutage starts an engine while its broker is down, then
// takes the broker away in the middle of the run and brings it back (the
// same broker: its port and its data directory). The engine retries with
// backoff at start, reports not ready and a Degraded connectivity check
// during the outage, and recovers: every input id reaches the output.
func TestKafkaBrokerOutage(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dataDir := t.TempDir()
	startBroker := func() *kfake.Cluster {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.DataDir(dataDir), kfake.SeedTopics(4, "in", "out"))
		if err != nil {
			t.Fatalf("starting the broker on port %d: %v", port, err)
		}
		return c
	}
	broker := fmt.Sprintf("127.0.0.1:%d", port)
	const n = 4000
	produceRange := func(from, to int) {
		cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.DefaultProduceTopic("in"))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		var recs []*kgo.Record
		for i := from; i < to; i++ {
			recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "k%d", i%13), Value: fmt.Appendf(nil, `{"id":%d,"k":"k%d"}`, i, i%13)})
		}
		if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	manifest := fmt.Sprintf(`apiVersion: streaming.sluice.dev/v1alpha1
kind: StreamQuery
metadata: {name: outage}
spec:
  sources:
    - name: t
      kafka: {brokers: [%q], topic: in, group: outage}
      schema: [{name: id, type: int}, {name: k, type: string}]
  query: SELECT id, k FROM t
  sink: {kafka: {brokers: [%q], topic: out, key: k}}
`, broker, broker)

	// The broker comes up two seconds after the engine started.
	var c *kfake.Cluster
	up := make(chan struct{})
	go func() {
		time.Sleep(2 * time.Second)
		c = startBroker()
		close(up)
	}()
	cmd, base, stderr, _ := startEngine(t, "", manifest, nil)
	<-up
	if !strings.Contains(stderr.String(), "retrying") {
		t.Errorf("the engine did not say it was retrying the unavailable broker:\n%s", stderr.String())
	}
	ready := func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(45 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("waiting for %s; engine log:\n%s", what, stderr.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitUntil("readiness", ready)
	produceRange(0, n/2)
	waitUntil("the first half written", func() bool { return len(outputIDs(t, broker)) == n/2 })

	c.Close()
	waitUntil("not ready during the outage", func() bool { return !ready() })
	code, body := get(t, base+"/status")
	var doc struct {
		Health string
		Checks []struct{ Name, Status, Message string }
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil || code != http.StatusOK {
		t.Fatalf("/status: %d %v", code, err)
	}
	degraded := false
	for _, ch := range doc.Checks {
		degraded = degraded || ch.Name == "connectivity" && ch.Status == "Degraded" && strings.Contains(ch.Message, "no Kafka broker reachable")
	}
	if !degraded || doc.Health != "Degraded" {
		t.Errorf("/status during the outage: health %s, checks %+v; want the connectivity check Degraded", doc.Health, doc.Checks)
	}
	time.Sleep(2 * time.Second)

	c = startBroker()
	defer c.Close()
	waitUntil("readiness after the outage", ready)
	produceRange(n/2, n)
	waitUntil("every id written", func() bool { return len(outputIDs(t, broker)) == n })
	cmd.Process.Signal(syscall.SIGTERM)
	waitExit(t, cmd, "SIGTERM")
	if code := cmd.ProcessState.ExitCode(); code != exitOK {
		t.Errorf("the engine exited %d after the outage; log:\n%s", code, stderr.String())
	}
}

// outputIDs reads the whole "out" topic and returns the distinct ids in it.
func outputIDs(t *testing.T, broker string) map[int]bool {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumeTopics("out"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ids := map[int]bool{}
	wait := 5 * time.Second
	for {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		fs := cl.PollFetches(ctx)
		cancel()
		wait = 300 * time.Millisecond
		if len(fs.Records()) == 0 {
			return ids
		}
		for _, r := range fs.Records() {
			var v struct{ ID int }
			if json.Unmarshal(r.Value, &v) == nil {
				ids[v.ID] = true
			}
		}
	}
}
