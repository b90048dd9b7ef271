// Package server is the engine's HTTP surface: liveness, readiness, the
// /status document and Prometheus metrics on one port, and pprof, opt-in, on
// another.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sluice-dev/sluice/api/enginestatus"
	"github.com/sluice-dev/sluice/runtime/telemetry"
)

// Server serves the engine's endpoints.
type Server struct {
	monitor *telemetry.Monitor
	ready   func() bool
	reg     *prometheus.Registry
	srv     *http.Server
}

// New returns a server of a pipeline's monitor and of the metrics in reg, to
// which it adds the Go runtime and process collectors. ready reports whether
// the pipeline is running with its sources connected.
func New(monitor *telemetry.Monitor, reg *prometheus.Registry, ready func() bool) *Server {
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s := &Server{monitor: monitor, ready: ready, reg: reg}
	mux := http.NewServeMux()
	// Liveness is progress: an engine with work pending that completes
	// nothing for the stall timeout is restarted by Kubernetes.
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if why := s.monitor.Stalled(); why != "" {
			http.Error(w, "stalled: "+why, http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !s.ready() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET "+enginestatus.Path, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(s.monitor.Status())
	})
	// OpenMetrics, when a scraper asks for it, carries the exemplars that link
	// latency buckets to traces.
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg, EnableOpenMetrics: true}))
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	return s
}

// NewProfiling returns a server of Go's /debug/pprof alone. It is kept off
// the status port, which a Service exposes without authentication: profiles
// and goroutine dumps show the data a query holds.
func NewProfiling() *Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return &Server{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}}
}

// Serve serves on l until ctx ends, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(shutdownCtx)
	if serveErr := <-errc; !errors.Is(serveErr, http.ErrServerClosed) && err == nil {
		err = serveErr
	}
	return err
}
