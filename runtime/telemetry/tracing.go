package telemetry

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"

	"github.com/go-logr/logr"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// TracingEnabled reports whether the standard OTEL_* environment asks for
// traces: an OTLP endpoint is set, and neither OTEL_SDK_DISABLED nor
// OTEL_TRACES_EXPORTER=none turns them off.
func TracingEnabled(getenv func(string) string) bool {
	if strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") || getenv("OTEL_TRACES_EXPORTER") == "none" {
		return false
	}
	return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Tracing is an OpenTelemetry tracer provider exporting over OTLP.
type Tracing struct {
	provider *sdktrace.TracerProvider
}

// DefaultServiceName is the service name of the engine's spans when neither
// OTEL_SERVICE_NAME nor OTEL_RESOURCE_ATTRIBUTES names one.
const DefaultServiceName = "sluice-engine"

// NewTracing sets up tracing from the standard OTEL_* environment variables,
// as the OpenTelemetry specification says: the OTLP exporter over
// OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL (http/protobuf by default, or grpc)
// reads OTEL_EXPORTER_OTLP_* (endpoint, headers, timeout, compression); the
// SDK reads OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG (parent-based
// always-on when unset); the resource takes OTEL_RESOURCE_ATTRIBUTES, then
// OTEL_SERVICE_NAME over it, over the engine's defaults. A setting the
// exporter would misread (an endpoint without a scheme, a protocol it does
// not speak) is an error, not a silent default. It returns nil when
// TracingEnabled is false.
func NewTracing(ctx context.Context, version string, attrs ...attribute.KeyValue) (*Tracing, error) {
	if !TracingEnabled(os.Getenv) {
		return nil, nil
	}
	for _, name := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"} {
		if err := checkEndpoint(name, os.Getenv(name)); err != nil {
			return nil, err
		}
	}
	protocol, name := os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL"), "OTEL_EXPORTER_OTLP_PROTOCOL"
	if p := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"); p != "" {
		protocol, name = p, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	}
	var exp sdktrace.SpanExporter
	var err error
	switch protocol {
	case "", "http/protobuf":
		exp, err = otlptracehttp.New(ctx)
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	default:
		return nil, fmt.Errorf("tracing: %s=%q: the engine exports OTLP as http/protobuf (the default) or grpc", name, protocol)
	}
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	// Later resources win a merge: the SDK's, the host's, the engine's
	// defaults, then the environment's (OTEL_RESOURCE_ATTRIBUTES, and
	// OTEL_SERVICE_NAME over it). host.name (the pod's name on Kubernetes)
	// tells a trace viewer that one engine's stages share a clock: Jaeger
	// corrects, and warns of, clock skew between spans of unnamed hosts.
	host, err := resource.New(ctx, resource.WithHost())
	if err != nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	attrs = append(attrs, attribute.String("service.name", DefaultServiceName), attribute.String("service.version", version))
	for env, key := range map[string]string{"POD_NAME": "k8s.pod.name", "POD_NAMESPACE": "k8s.namespace.name"} {
		if v := os.Getenv(env); v != "" {
			attrs = append(attrs, attribute.String(key, v))
		}
	}
	res := resource.Default()
	for _, r := range []*resource.Resource{host, resource.NewSchemaless(attrs...), resource.Environment()} {
		if res, err = resource.Merge(res, r); err != nil {
			return nil, fmt.Errorf("tracing: resource (OTEL_RESOURCE_ATTRIBUTES): %w", err)
		}
	}
	return &Tracing{provider: sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))}, nil
}

// checkEndpoint refuses an OTLP endpoint that is not a URL with a scheme
// and a host, which the exporter would otherwise replace, silently, by
// https://localhost:4318.
func checkEndpoint(name, endpoint string) error {
	if endpoint == "" {
		return nil
	}
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("tracing: %s=%q is not a URL such as http://collector:4318 (a scheme, http or https, and a host)", name, endpoint)
	}
	return nil
}

// RouteOTelLogs sends what the OpenTelemetry SDK reports, its errors (an
// unreachable collector) and its own log lines, to log, which otherwise
// go to standard error as plain text beside the engine's JSON. The SDK's
// handlers are process-wide: the engine's main owns them.
func RouteOTelLogs(log *slog.Logger) {
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("tracing export failed", "component", "tracing", "error", err)
	}))
	otel.SetLogger(logr.FromSlogHandler(log.With("component", "tracing").Handler()))
}

// Tracer returns the engine's tracer.
func (t *Tracing) Tracer() trace.Tracer {
	return t.provider.Tracer("github.com/sluice-dev/sluice/runtime/pipeline")
}

// Shutdown exports the spans still buffered and stops.
func (t *Tracing) Shutdown(ctx context.Context) error { return t.provider.Shutdown(ctx) }
