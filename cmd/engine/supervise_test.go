package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func newSupervisor(drainTimeout time.Duration) (*supervisor, *atomic.Int32) {
	var running atomic.Int32
	s := &supervisor{
		log:          slog.New(slog.DiscardHandler),
		drainTimeout: drainTimeout,
		abortGrace:   50 * time.Millisecond,
		signals:      make(chan os.Signal, 2),
		services: []service{{name: "svc", run: func(ctx context.Context) error {
			running.Add(1)
			defer running.Add(-1)
			<-ctx.Done()
			return nil
		}}},
	}
	return s, &running
}

// TestSupervisorStopsServicesAfterRun: the services run while the pipeline
// does, and are stopped, and waited for, once it returns.
func TestSupervisorStopsServicesAfterRun(t *testing.T) {
	s, running := newSupervisor(time.Hour)
	boom := errors.New("boom")
	out := s.run(context.Background(), func(context.Context) error {
		for running.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		return boom
	}, func() {})
	if !errors.Is(out.err, boom) || out.aborted || out.abandoned {
		t.Errorf("outcome %+v, want the run's error only", out)
	}
	if n := running.Load(); n != 0 {
		t.Errorf("%d services still running after run returned", n)
	}
}

// TestSupervisorDrainsThenAborts: the first signal drains, the second
// aborts the run's context.
func TestSupervisorDrainsThenAborts(t *testing.T) {
	s, _ := newSupervisor(time.Hour)
	drained := make(chan struct{})
	s.signals <- syscall.SIGTERM
	out := s.run(context.Background(), func(ctx context.Context) error {
		<-drained
		s.signals <- syscall.SIGINT
		<-ctx.Done()
		return context.Cause(ctx)
	}, func() { close(drained) })
	if !out.aborted || out.abandoned || out.err == nil {
		t.Errorf("outcome %+v, want aborted with the abort's error", out)
	}
}

// TestSupervisorAbortsAfterDrainTimeout: a drain that outlasts its timeout
// is aborted without a second signal.
func TestSupervisorAbortsAfterDrainTimeout(t *testing.T) {
	s, _ := newSupervisor(20 * time.Millisecond)
	s.signals <- syscall.SIGTERM
	out := s.run(context.Background(), func(ctx context.Context) error {
		<-ctx.Done()
		return nil
	}, func() {})
	if !out.aborted || out.abandoned {
		t.Errorf("outcome %+v, want aborted", out)
	}
}

// TestSupervisorAbandonsStuckRun: a run that ignores the abort is abandoned
// after the grace, so the process can exit.
func TestSupervisorAbandonsStuckRun(t *testing.T) {
	s, running := newSupervisor(10 * time.Millisecond)
	s.signals <- syscall.SIGTERM
	stuck := make(chan struct{})
	defer close(stuck)
	out := s.run(context.Background(), func(context.Context) error { <-stuck; return nil }, func() {})
	if !out.abandoned {
		t.Errorf("outcome %+v, want abandoned", out)
	}
	for running.Load() != 0 {
		time.Sleep(time.Millisecond) // the services stop, not waited for
	}
}
