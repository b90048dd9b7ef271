package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/term"

	"github.com/sluice-dev/sluice/api/enginestatus"
	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/connector/bundle"
	"github.com/sluice-dev/sluice/runtime/pipeline"
	"github.com/sluice-dev/sluice/runtime/server"
	"github.com/sluice-dev/sluice/runtime/telemetry"
)

type runFlags struct {
	file, http, pprof, logFormat, logLevel, progress, cpuProfile, memProfile, terminationLog string
}

func runCmd(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f runFlags
	fs.StringVar(&f.file, "f", "", "the StreamQuery manifest to run")
	fs.StringVar(&f.http, "http", fmt.Sprintf(":%d", enginestatus.Port), "address of /healthz, /readyz, /status and /metrics; empty to serve none")
	fs.StringVar(&f.pprof, "pprof", "", "address of /debug/pprof, e.g. localhost:6060; empty: "+v1alpha1.ProfilingAddr+" when the manifest sets runtime.profiling, else none")
	fs.StringVar(&f.logFormat, "log-format", "auto", "json, text, or auto: text when stderr is a terminal, else json")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&f.progress, "progress", "auto", "progress line on stderr: always, never, or auto: when stderr is a terminal")
	fs.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile of the run to this file")
	fs.StringVar(&f.memProfile, "memprofile", "", "write a heap profile at the end of the run to this file")
	fs.StringVar(&f.terminationLog, "termination-log", "/dev/termination-log", "write the run's summary to this file when it exists, as a Kubernetes container's termination message; empty for none")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if f.file == "" {
		fmt.Fprintln(stderr, "engine run: -f manifest is required")
		return exitUsage
	}
	tty := isTerminal(stderr)
	logger, err := newLogger(stderr, f.logFormat, f.logLevel, tty)
	if err != nil {
		fmt.Fprintf(stderr, "engine run: %v\n", err)
		return exitUsage
	}
	// A run that cannot start says why as a run that failed does: in the
	// log's format, and as the termination message the operator reads.
	// Problems of the manifest are printed as validate prints them.
	cannotStart := func(err error) int {
		line := "sluice: failed: " + err.Error()
		var ps v1alpha1.Problems
		switch {
		case errors.As(err, &ps):
			printProblems(stderr, ps)
		case jsonLogs(f.logFormat, tty):
			logger.Error(line)
		default:
			fmt.Fprintln(stderr, "engine run: "+err.Error())
		}
		if err := writeTerminationMessage(f.terminationLog, line, true, enginestatus.Records{}); err != nil {
			logger.Warn("writing the termination message", "error", err)
		}
		return exitFailed
	}
	doc, err := load(f.file)
	if err != nil {
		return cannotStart(err)
	}
	if _, ds := check(ctx, doc, logger); len(ds) > 0 {
		return cannotStart(ds)
	}
	telemetry.RouteOTelLogs(logger)
	tracing, err := telemetry.NewTracing(ctx, buildVersion(), attribute.String("sluice.pipeline", doc.Query.Name))
	if err != nil {
		return cannotStart(err)
	}
	var tracer trace.Tracer
	if tracing != nil {
		tracer = tracing.Tracer()
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := tracing.Shutdown(ctx); err != nil {
				logger.Warn("exporting the last spans failed", "component", "tracing", "error", err)
			}
		}()
	}
	reg := prometheus.NewRegistry()
	instance, named := instanceName()
	p, err := pipeline.New(&doc.Query.Spec, pipeline.Options{
		Connectors: bundle.All(),
		Logger:     logger.With("component", "pipeline", "pipeline", doc.Query.Name),
		Tracer:     tracer,
		Observer:   telemetry.NewBatchMetrics(reg),
		Group:      consumerGroup(doc.Query.Namespace, doc.Query.Name),
		Instance:   instance,
		// A name the environment gives is this engine's own; a host name
		// may be shared by several engines on one machine.
		StaticMembership: named,
	})
	if err != nil {
		var ps v1alpha1.Problems
		if errors.As(err, &ps) {
			return cannotStart(doc.Locate(err))
		}
		return cannotStart(err)
	}

	if f.cpuProfile != "" {
		stop, err := startCPUProfile(f.cpuProfile)
		if err != nil {
			return cannotStart(err)
		}
		defer stop()
	}

	monitor := telemetry.NewMonitor(p, buildVersion(), telemetry.ThresholdsFor(doc.Query.Spec.Health),
		logger.With("component", "health", "pipeline", doc.Query.Name))
	reg.MustRegister(telemetry.NewCollector(monitor, tracing != nil))
	for _, set := range p.Metrics() {
		reg.MustRegister(telemetry.NewUserMetrics(set))
	}
	sup := supervisor{
		log: logger,
		services: []service{{name: "health", run: func(ctx context.Context) error {
			monitor.Run(ctx)
			return nil
		}}},
		// A stage blocked in a system call (a write to a pipe nobody reads)
		// cannot be interrupted: the run gets the shutdown timeout to
		// drain, then abortGrace to return after the abort.
		drainTimeout: doc.Query.Spec.Runtime.ShutdownTimeout.Duration + abortGrace,
		abortGrace:   abortGrace,
	}
	// serve listens on addr and has the supervisor serve srv there.
	serve := func(name, what, addr string, srv *server.Server) error {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("serving %s: %w", what, err)
		}
		logger.Info("serving "+what, "component", "server", "address", l.Addr().String())
		sup.services = append(sup.services, service{name: name, run: func(ctx context.Context) error { return srv.Serve(ctx, l) }})
		return nil
	}
	if f.http != "" {
		srv := server.New(monitor, reg, func() bool {
			// Not ready while the brokers are away: the pod leaves its
			// Service's endpoints and the operator sees it.
			s := p.Snapshot()
			return s.State == enginestatus.Running && s.Unavailable == ""
		})
		if err := serve("server", "HTTP", f.http, srv); err != nil {
			return cannotStart(err)
		}
	}
	if f.pprof == "" && doc.Query.Spec.Runtime.Profiling {
		f.pprof = v1alpha1.ProfilingAddr
	}
	if f.pprof != "" {
		if err := serve("pprof", "/debug/pprof", f.pprof, server.NewProfiling()); err != nil {
			return cannotStart(err)
		}
	}
	if f.progress == "always" || f.progress == "auto" && tty {
		sup.services = append(sup.services, service{name: "progress", run: func(ctx context.Context) error {
			showProgress(ctx, stderr, p)
			return nil
		}})
	}

	out := sup.run(ctx, p.Run, p.Stop)
	snap := p.Snapshot()
	if tty && (f.progress != "never") {
		fmt.Fprint(stderr, "\r\033[K")
	}
	if out.abandoned {
		out.err = errors.New("aborted; stages blocked in I/O were abandoned")
	}
	// A Batch run that a signal stopped has not read its input to the end,
	// whatever its drain did: not a success, and not the query's failure.
	unfinished := out.stopped && doc.Query.Spec.RunMode() == v1alpha1.Batch
	if unfinished {
		out.err = errors.Join(errors.New("stopped by a signal before the input ended"), out.err)
	}
	line := summary(snap, time.Since(snap.Started), out.err)
	if jsonLogs(f.logFormat, tty) {
		// One format on stderr, for a log pipeline to parse.
		level := slog.LevelInfo
		if out.err != nil {
			level = slog.LevelError
		}
		logger.Log(context.Background(), level, line, "pipeline", doc.Query.Name)
	} else {
		fmt.Fprintln(stderr, line)
	}
	if err := writeTerminationMessage(f.terminationLog, line, out.err != nil, snap.Counts); err != nil {
		logger.Warn("writing the termination message", "error", err)
	}
	switch {
	case unfinished:
		return exitStopped
	case out.abandoned:
		return exitAborted
	}
	if f.memProfile != "" {
		if err := writeHeapProfile(f.memProfile); err != nil {
			fmt.Fprintf(stderr, "engine run: %v\n", err)
		}
	}
	switch {
	case out.aborted:
		return exitAborted
	case out.err != nil:
		return exitFailed
	}
	return exitOK
}

// consumerGroup is the default Kafka consumer group of a query: the same
// for every engine of one query, different between queries. The namespace is
// the manifest's, else the pod's (POD_NAMESPACE, set by the operator), else
// "default".
func consumerGroup(namespace, name string) string {
	if namespace == "" {
		namespace = os.Getenv("POD_NAMESPACE")
	}
	if namespace == "" {
		namespace = "default"
	}
	return v1alpha1.ConsumerGroup(namespace, name)
}

// instanceName names this engine among its query's engines, stably across
// restarts: SLUICE_INSTANCE, else the pod's name, else the host's. named
// says the environment gave the name.
func instanceName() (name string, named bool) {
	for _, env := range []string{"SLUICE_INSTANCE", "POD_NAME"} {
		if v := os.Getenv(env); v != "" {
			return v, true
		}
	}
	if h, err := os.Hostname(); err == nil {
		return h, false
	}
	return "engine", false
}

// abortGrace is how long an aborted run may take to return before the process
// exits without it.
const abortGrace = 2 * time.Second

func summary(s pipeline.Snapshot, elapsed time.Duration, err error) string {
	c := s.Counts
	verdict := "finished"
	if err != nil {
		verdict = "failed: " + err.Error() + ";"
	}
	rate := 0.0
	if elapsed > 0 {
		rate = float64(c.In) / elapsed.Seconds()
	}
	line := fmt.Sprintf("sluice: %s in %s: %d in", verdict, elapsed.Round(time.Millisecond), c.In)
	if len(s.Statements) == 0 {
		line += ", " + outcomes(c, s.Stateful)
	}
	// Each statement takes every record of the sources it reads.
	for _, st := range s.Statements {
		line += "; statement " + st.Name + ": " + outcomes(st.Counts, st.Stateful)
	}
	if c.Repartitioned > 0 {
		line += fmt.Sprintf(", %d repartitioned", c.Repartitioned)
	}
	return line + fmt.Sprintf(" (%.0f records/s)", rate)
}

// outcomes says what became of the records a query took.
func outcomes(c enginestatus.Records, stateful bool) string {
	line := fmt.Sprintf("%d out, %d filtered, %d dead-lettered, %d skipped, %d failed", c.Out, c.Filtered, c.DeadLettered, c.Skipped, c.Failed)
	if stateful {
		// Aggregations and joins write results, not the records they read.
		line += fmt.Sprintf(", %d aggregated or joined, %d late, %d revoked, %d restored, %d results", c.Aggregated, c.Late, c.Revoked, c.Restored, c.Results)
	}
	return line
}

func showProgress(ctx context.Context, w io.Writer, p *pipeline.Pipeline) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	var last enginestatus.Records
	lastAt := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s := p.Snapshot()
			dt := now.Sub(lastAt).Seconds()
			fmt.Fprintf(w, "\r\033[K%s  in %d  out %d  filtered %d  errors %d  %.0f in/s  %.0f out/s",
				s.State, s.Counts.In, s.Counts.Out, s.Counts.Filtered, s.Counts.DeadLettered+s.Counts.Skipped+s.Counts.Failed,
				float64(s.Counts.In-last.In)/dt, float64(s.Counts.Out-last.Out)/dt)
			last, lastAt = s.Counts, now
		}
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func newLogger(w io.Writer, format, level string, tty bool) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("-log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch {
	case jsonLogs(format, tty):
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case format == "text" || format == "auto":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("-log-format %q: want json, text or auto", format)
}

func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	defer f.Close()
	return pprof.WriteHeapProfile(f)
}

// maxTerminationMessage is the most of a container's termination message
// Kubernetes keeps.
const maxTerminationMessage = 4096

// jsonLogs says whether the logs on stderr are JSON.
func jsonLogs(format string, tty bool) bool { return format == "json" || format == "auto" && !tty }

// writeTerminationMessage writes the run's outcome, an
// enginestatus.Termination, to path if the file exists: Kubernetes creates
// it in a container and shows what it holds as the container's termination
// message, which the operator reports as the query's last error, or as a
// Batch query's completion. Elsewhere there is no such file and nothing is
// written.
func writeTerminationMessage(path, summary string, failed bool, counts enginestatus.Records) error {
	if path == "" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("opening the termination log: %w", err)
	}
	// Kubernetes keeps 4096 bytes: the summary is cut to the longest
	// prefix whose encoded document fits, escapes included.
	encode := func(summary string) []byte {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(enginestatus.Termination{Summary: summary, Failed: failed, Records: counts}) // strings and ints always encode
		return buf.Bytes()
	}
	b := encode(summary)
	if len(b) > maxTerminationMessage {
		lo, hi := 0, len(summary) // the longest fitting prefix is in [lo, hi)
		for lo+1 < hi {
			mid := (lo + hi) / 2
			if len(encode(strings.ToValidUTF8(summary[:mid], "")+"…")) <= maxTerminationMessage {
				lo = mid
			} else {
				hi = mid
			}
		}
		b = encode(strings.ToValidUTF8(summary[:lo], "") + "…")
	}
	_, err = f.Write(b)
	return errors.Join(err, f.Close())
}
