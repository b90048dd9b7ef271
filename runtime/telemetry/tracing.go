package telemetry

import (
	"context"
	"fmt"
	"os"
	"strings"

	"go.opentelemetry.io/otel/attribute"
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

// Tracing is an OpenTelemetry tracer provider exporting over OTLP/HTTP.
type Tracing struct {
	provider *sdktrace.TracerProvider
}

// NewTracing sets up tracing from the standard OTEL_* environment variables:
// the OTLP/HTTP exporter reads OTEL_EXPORTER_OTLP_* (endpoint, headers,
// timeout, protocol details), the SDK reads OTEL_TRACES_SAMPLER and
// OTEL_TRACES_SAMPLER_ARG (parent-based always-on when unset) and
// OTEL_RESOURCE_ATTRIBUTES. It returns nil when TracingEnabled is false.
func NewTracing(ctx context.Context, version string, attrs ...attribute.KeyValue) (*Tracing, error) {
	if !TracingEnabled(os.Getenv) {
		return nil, nil
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(append(attrs,
		attribute.String("service.name", serviceName()),
		attribute.String("service.version", version))...))
	if err != nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	return &Tracing{provider: sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))}, nil
}

func serviceName() string {
	if n := os.Getenv("OTEL_SERVICE_NAME"); n != "" {
		return n
	}
	return "sluice-engine"
}

// Tracer returns the engine's tracer.
func (t *Tracing) Tracer() trace.Tracer {
	return t.provider.Tracer("github.com/sluice-dev/sluice/runtime/pipeline")
}

// Shutdown exports the spans still buffered and stops.
func (t *Tracing) Shutdown(ctx context.Context) error { return t.provider.Shutdown(ctx) }
