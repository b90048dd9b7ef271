package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// A service runs beside the pipeline for the whole life of the process (the
// health monitor, the HTTP server, the progress line) until its context
// ends.
type service struct {
	name string
	run  func(ctx context.Context) error
}

// supervisor owns the runnables of the engine process: it starts the
// services, runs the pipeline, turns signals into a drain and then an
// abort, and stops the services once the pipeline has returned. Nothing of
// the process is started or stopped elsewhere.
type supervisor struct {
	log      *slog.Logger
	services []service
	// drainTimeout is how long a drain may take before the supervisor
	// aborts the run; abortGrace how long an aborted run may take to
	// return before it is abandoned.
	drainTimeout, abortGrace time.Duration
	// signals delivers SIGINT and SIGTERM; nil to listen to the process's.
	signals chan os.Signal
}

// outcome is how a supervised run ended.
type outcome struct {
	err error
	// stopped: a signal stopped the run, which drained.
	stopped bool
	// aborted: a second signal or the drain timeout cut the drain short.
	aborted bool
	// abandoned: the run did not return within abortGrace of the abort (a
	// stage blocked in a system call that nothing can interrupt); it still
	// runs, and the process must exit without it.
	abandoned bool
}

// run runs the pipeline's run until it returns: the first signal calls
// drain, the second, or the drain timeout, aborts the run's context.
func (s *supervisor) run(ctx context.Context, run func(ctx context.Context) error, drain func()) outcome {
	if s.signals == nil {
		s.signals = make(chan os.Signal, 2)
		signal.Notify(s.signals, syscall.SIGINT, syscall.SIGTERM)
		defer signal.Stop(s.signals)
	}
	// The services outlive a drain and an abort: /status answers until the
	// run has returned.
	svcCtx, stopServices := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	for _, svc := range s.services {
		wg.Go(func() {
			if err := svc.run(svcCtx); err != nil && svcCtx.Err() == nil {
				s.log.Error("service failed", "component", svc.name, "error", err)
			}
		})
	}

	runCtx, abort := context.WithCancelCause(ctx)
	defer abort(nil)
	done := make(chan error, 1)
	go func() { done <- run(runCtx) }()

	var out outcome
	var deadline <-chan time.Time // the drain's, then the abort's
	draining := false
	for {
		select {
		case out.err = <-done:
			stopServices()
			wg.Wait()
			return out
		case sig := <-s.signals:
			if !draining {
				draining, out.stopped = true, true
				s.log.Info("stopping: draining in-flight records; signal again to abort", "signal", sig.String())
				drain()
				deadline = time.After(s.drainTimeout)
				continue
			}
			if out.aborted {
				continue
			}
			s.log.Warn("aborting", "signal", sig.String())
		case <-deadline:
			if out.aborted {
				// The run did not return after the abort; the services stop
				// with the process.
				out.abandoned = true
				stopServices()
				return out
			}
			s.log.Error("the drain did not finish within the shutdown timeout; aborting")
		}
		out.aborted = true
		abort(errors.New("aborted"))
		deadline = time.After(s.abortGrace)
	}
}
