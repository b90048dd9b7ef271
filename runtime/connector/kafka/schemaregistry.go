package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/format"
	"github.com/sluice-dev/sluice/runtime/value"
)

// registryPatience is how long a schema lookup retries a registry that does
// not answer before the source fails: a record is never handed to the
// error policy for want of the registry.
const registryPatience = 30 * time.Second

// errRegistryUnavailable marks a lookup that failed for want of the
// registry, not because of the record.
var errRegistryUnavailable = errors.New("schema registry unavailable")

// schemaRegistry is a client of a Confluent-compatible schema registry,
// with the writer schemas it read, which never change for an id.
type schemaRegistry struct {
	ctx context.Context
	cl  *sr.Client
	url string
	log *slog.Logger

	mu      sync.Mutex
	schemas map[uint32]string
}

// newSchemaRegistry reads r's credentials and returns its client. Its
// lookups end with ctx.
func newSchemaRegistry(ctx context.Context, r *v1alpha1.SchemaRegistry, log *slog.Logger) (*schemaRegistry, error) {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if r.CAFile != "" {
		cfg, err := tlsConfig(&v1alpha1.KafkaTLS{Enabled: true, CAFile: r.CAFile})
		if err != nil {
			return nil, fmt.Errorf("avro.registry: %w", err)
		}
		transport.TLSClientConfig = cfg
	}
	opts := []sr.ClientOpt{sr.URLs(r.URL), sr.HTTPClient(&http.Client{Timeout: 10 * time.Second, Transport: transport}), sr.UserAgent("sluice")}
	if r.UsernameEnv != "" || r.UsernameFile != "" {
		user, err := readSecret("avro.registry", "username", r.UsernameEnv, r.UsernameFile)
		if err != nil {
			return nil, err
		}
		pass, err := readSecret("avro.registry", "password", r.PasswordEnv, r.PasswordFile)
		if err != nil {
			return nil, err
		}
		opts = append(opts, sr.BasicAuth(user, pass))
	}
	cl, err := sr.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("avro.registry: %w", err)
	}
	return &schemaRegistry{ctx: ctx, cl: cl, url: r.URL, log: log, schemas: map[uint32]string{}}, nil
}

// writerSchema returns the schema of id. A registry that does not know the
// id fails the record; one that cannot be reached is retried for
// registryPatience, and then fails with errRegistryUnavailable.
func (r *schemaRegistry) writerSchema(id uint32) (string, error) {
	r.mu.Lock()
	s, ok := r.schemas[id]
	r.mu.Unlock()
	if ok {
		return s, nil
	}
	ctx, cancel := context.WithTimeout(r.ctx, registryPatience)
	defer cancel()
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		got, err := r.cl.SchemaByID(ctx, int(id))
		var re *sr.ResponseError
		switch {
		case err == nil && got.Type != sr.TypeAvro:
			return "", fmt.Errorf("the registry's schema %d is %s, not Avro", id, got.Type)
		case err == nil:
			r.mu.Lock()
			r.schemas[id] = got.Schema
			r.mu.Unlock()
			return got.Schema, nil
		case errors.As(err, &re) && re.StatusCode == http.StatusNotFound:
			return "", fmt.Errorf("the registry at %s has no schema %d", r.url, id)
		case errors.As(err, &re) && re.StatusCode < 500 && re.StatusCode != http.StatusTooManyRequests:
			// Refused (authentication, a bad request): waiting will not help.
			return "", fmt.Errorf("%w: the registry at %s answered %d: %s", errRegistryUnavailable, r.url, re.StatusCode, re.Message)
		}
		r.log.Warn("kafka: the schema registry did not answer; retrying", "component", "kafka", "registry", r.url, "schema_id", id, "error", err)
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("%w: no answer from %s for %s: %v", errRegistryUnavailable, r.url, registryPatience, err)
		case <-time.After(wait):
		}
	}
}

// register registers schema under subject, or finds it registered, and
// returns its id.
func (r *schemaRegistry) register(ctx context.Context, subject, schema string) (uint32, error) {
	id, err := r.cl.RegisterSchema(ctx, subject, sr.Schema{Schema: schema, Type: sr.TypeAvro}, -1, -1)
	if err != nil {
		return 0, fmt.Errorf("registering the results' schema under subject %s at %s: %w", subject, r.url, err)
	}
	return uint32(id), nil
}

// registeredAvroEncoder registers the schema of rows of cols under r's
// subject, <topic>-value by default, and returns their encoder, which
// writes each record after the registered id.
func registeredAvroEncoder(r *v1alpha1.SchemaRegistry, topic string, cols []value.Column, log *slog.Logger) (*format.AvroEncoder, error) {
	schema, err := format.AvroSchemaOf(cols)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), registryPatience)
	defer cancel()
	reg, err := newSchemaRegistry(ctx, r, log)
	if err != nil {
		return nil, err
	}
	subject := r.Subject
	if subject == "" {
		subject = topic + "-value"
	}
	id, err := reg.register(ctx, subject, schema)
	if err != nil {
		return nil, err
	}
	log.Info("kafka: the results' Avro schema is registered", "component", "kafka", "registry", r.URL, "subject", subject, "schema_id", id)
	return format.NewAvroEncoder(cols, format.AvroWireHeader(id)), nil
}
