package controllers

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// Speeds of startEngine's sink reader.
const (
	sinkStopped int32 = iota
	sinkSlow
	sinkFast
)

// startEngine runs a real engine process for sq, on loopback, with its sink
// a named pipe that the test reads at the returned speed. It returns the
// engine's HTTP address.
func startEngine(t *testing.T, sq *v1alpha1.StreamQuery) (string, *atomic.Int32) {
	t.Helper()
	dir := t.TempDir()
	manifest, _, err := renderManifest(sq, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "q.yaml"), manifest, 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, sq.Spec.Sink.File.Path)
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	var speed atomic.Int32
	go func() {
		f, err := os.Open(fifo) // blocks until the engine opens it
		if err != nil {
			return
		}
		defer f.Close()
		buf := make([]byte, 512)
		for {
			switch speed.Load() {
			case sinkStopped:
				time.Sleep(20 * time.Millisecond)
				continue
			case sinkSlow:
				time.Sleep(20 * time.Millisecond)
			}
			if _, err := f.Read(buf); err != nil {
				return
			}
		}
	}()
	cmd := exec.Command(engineBin, "run", "-f", "q.yaml", "--http", "127.0.0.1:0", "--log-format", "json")
	cmd.Dir = dir
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		speed.Store(sinkFast)
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var entry struct{ Msg, Address string }
			if json.Unmarshal(sc.Bytes(), &entry) == nil && entry.Msg == "serving HTTP" {
				addr <- entry.Address
			}
		}
	}()
	select {
	case a := <-addr:
		return a, &speed
	case <-time.After(30 * time.Second):
		t.Fatal("the engine did not start serving HTTP")
	}
	return "", nil
}

// TestStatusFromRealEngine: the controller polls a real engine process over
// HTTP for a pod that stands for it, and folds what it says into the
// StreamQuery's status: Healthy, then backpressure High when the engine's sink
// slows down, then recovered, then Unhealthy naming the progress check when
// the sink stops for longer than the stall timeout.
func TestStatusFromRealEngine(t *testing.T) {
	ctx := context.Background()
	sq := newQuery(newNamespace(t), "live", "SELECT trade_id, symbol, price FROM trades")
	sq.Spec.Sources[0].Datagen.Rate = 5000
	sq.Spec.Sink = &v1alpha1.Sink{File: &v1alpha1.FileSink{Path: "out.fifo"}}
	sq.Spec.Runtime = v1alpha1.RuntimeSpec{ChannelCapacity: 4, BatchSize: 50}
	sq.Spec.Health = v1alpha1.HealthSpec{QueueSustained: &metav1.Duration{Duration: 2 * time.Second}, StallTimeout: &metav1.Duration{Duration: 3 * time.Second}}
	if err := k8s.Create(ctx, sq); err != nil {
		t.Fatal(err)
	}
	addr, speed := startEngine(t, sq)
	speed.Store(sinkFast)
	pod := enginePod(t, sq, "live-engine-0", true, 0, "")
	engineAddrs.Store(pod.Name, addr)

	wait := func(what string, cond func(st v1alpha1.StreamQueryStatus) bool) v1alpha1.StreamQueryStatus {
		t.Helper()
		var st v1alpha1.StreamQueryStatus
		eventually(t, 30*time.Second, func() error {
			st = getQuery(t, sq).Status
			if !cond(st) {
				b, _ := json.Marshal(st)
				return fmt.Errorf("waiting for %s; status %s", what, b)
			}
			return nil
		})
		return st
	}
	st := wait("Healthy and Running", func(st v1alpha1.StreamQueryStatus) bool {
		return st.Health == v1alpha1.Healthy && st.Phase == v1alpha1.PhaseRunning && st.Ready == "1/1" &&
			st.Throughput != nil && st.Throughput.InputRecordsPerSecond != "0"
	})
	if c := meta.FindStatusCondition(st.Conditions, ConditionReady); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("Ready condition %+v; want True", c)
	}

	speed.Store(sinkSlow)
	st = wait("backpressure High", func(st v1alpha1.StreamQueryStatus) bool {
		return st.Backpressure != nil && st.Backpressure.Level == "High"
	})
	st = wait("Degraded by the engine", func(st v1alpha1.StreamQueryStatus) bool {
		c := meta.FindStatusCondition(st.Conditions, ConditionDegraded)
		return st.Health == v1alpha1.Degraded && c != nil && c.Status == metav1.ConditionTrue && c.Reason == ReasonEngineDegraded
	})
	if c := meta.FindStatusCondition(st.Conditions, ConditionDegraded); c == nil || !strings.Contains(c.Message, "channel_capacity") {
		t.Errorf("Degraded condition %+v; want it to name the channel_capacity check", c)
	}

	speed.Store(sinkFast)
	wait("recovered", func(st v1alpha1.StreamQueryStatus) bool {
		c := meta.FindStatusCondition(st.Conditions, ConditionDegraded)
		return st.Health == v1alpha1.Healthy && st.Backpressure != nil && st.Backpressure.Level != "High" &&
			st.Phase == v1alpha1.PhaseRunning && c != nil && c.Status == metav1.ConditionFalse
	})

	speed.Store(sinkStopped)
	st = wait("Unhealthy: stalled", func(st v1alpha1.StreamQueryStatus) bool {
		c := meta.FindStatusCondition(st.Conditions, ConditionDegraded)
		return st.Health == v1alpha1.Unhealthy && c != nil && c.Reason == ReasonEngineUnhealthy
	})
	if c := meta.FindStatusCondition(st.Conditions, ConditionDegraded); !strings.Contains(c.Message, "progress check: no record completed") {
		t.Errorf("Degraded condition %+v; want it to name the progress check", c)
	}
	if st.Phase != v1alpha1.PhaseDegraded {
		t.Errorf("phase %s; want Degraded", st.Phase)
	}
	speed.Store(sinkFast)
}
