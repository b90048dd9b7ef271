// Package otlptest is an OTLP/HTTP trace receiver for tests: a real HTTP
// server on loopback that decodes the protobuf export requests an
// OpenTelemetry exporter sends, and keeps the spans for assertions.
package otlptest

import (
	"compress/gzip"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// Span is a received span, with ids in hex.
type Span struct {
	Name                          string
	TraceID, SpanID, ParentSpanID string
	Attributes                    map[string]any
	// Kind is the span kind: internal, server, client, producer or consumer.
	Kind string
	// Error says the span's status is an error; StatusMessage says why.
	Error         bool
	StatusMessage string
	// Events are the names of the span's events ("exception" for a
	// recorded error), and Links the span ids it links to.
	Events []string
	Links  []string
}

// Receiver receives spans on /v1/traces.
type Receiver struct {
	srv *httptest.Server

	mu    sync.Mutex
	spans []Span
}

// Start starts a receiver on 127.0.0.1; Close stops it.
func Start() *Receiver {
	r := &Receiver{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", r.export)
	r.srv = httptest.NewServer(mux)
	return r
}

// URL is the endpoint to set as OTEL_EXPORTER_OTLP_ENDPOINT.
func (r *Receiver) URL() string { return r.srv.URL }

// Close stops the receiver.
func (r *Receiver) Close() { r.srv.Close() }

// Spans returns the spans received so far.
func (r *Receiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Span(nil), r.spans...)
}

func (r *Receiver) export(w http.ResponseWriter, req *http.Request) {
	body := io.Reader(req.Body)
	if req.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = gz
	}
	data, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var msg coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(data, &msg); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var got []Span
	for _, rs := range msg.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				got = append(got, convert(s))
			}
		}
	}
	r.mu.Lock()
	r.spans = append(r.spans, got...)
	r.mu.Unlock()
	resp, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(resp)
}

func convert(s *tracepb.Span) Span {
	out := Span{
		Name:         s.Name,
		TraceID:      hex.EncodeToString(s.TraceId),
		SpanID:       hex.EncodeToString(s.SpanId),
		ParentSpanID: hex.EncodeToString(s.ParentSpanId),
		Attributes:   map[string]any{},
		Kind:         strings.ToLower(strings.TrimPrefix(s.Kind.String(), "SPAN_KIND_")),
	}
	if st := s.Status; st != nil {
		out.Error = st.Code == tracepb.Status_STATUS_CODE_ERROR
		out.StatusMessage = st.Message
	}
	for _, e := range s.Events {
		out.Events = append(out.Events, e.Name)
	}
	for _, l := range s.Links {
		out.Links = append(out.Links, hex.EncodeToString(l.SpanId))
	}
	for _, kv := range s.Attributes {
		switch v := kv.Value.GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			out.Attributes[kv.Key] = v.StringValue
		case *commonpb.AnyValue_IntValue:
			out.Attributes[kv.Key] = v.IntValue
		case *commonpb.AnyValue_BoolValue:
			out.Attributes[kv.Key] = v.BoolValue
		case *commonpb.AnyValue_DoubleValue:
			out.Attributes[kv.Key] = v.DoubleValue
		}
	}
	return out
}
