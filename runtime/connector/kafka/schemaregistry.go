package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/connector"
	"github.com/sluice-dev/sluice/runtime/format"
	"github.com/sluice-dev/sluice/runtime/value"
)

// registryPatience is how long a schema lookup retries a registry that does
// not answer before the source fails: a record is never handed to the
// error policy for want of the registry.
const registryPatience = 30 * time.Second

// schemaRegistry is a client of a Confluent-compatible schema registry,
// with the writer schemas it read, which never change for an id.
type schemaRegistry struct {
	ctx context.Context
	cl  *sr.Client
	url string
	log *slog.Logger

	mu      sync.Mutex
	schemas map[uint32]format.WriterSchema
}

// newSchemaRegistry reads r's credentials and returns its client. Its
// lookups end with ctx. f, the format whose settings r is, names them in
// errors.
func newSchemaRegistry(ctx context.Context, f v1alpha1.Format, r *v1alpha1.SchemaRegistry, log *slog.Logger) (*schemaRegistry, error) {
	section := string(f) + ".registry"
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if r.CAFile != "" {
		cfg, err := tlsConfig(&v1alpha1.KafkaTLS{Enabled: true, CAFile: r.CAFile})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", section, err)
		}
		transport.TLSClientConfig = cfg
	}
	opts := []sr.ClientOpt{sr.URLs(r.URL), sr.HTTPClient(&http.Client{Timeout: 10 * time.Second, Transport: transport}), sr.UserAgent("sluice")}
	if r.UsernameEnv != "" || r.UsernameFile != "" {
		user, err := readSecret(section, "username", r.UsernameEnv, r.UsernameFile)
		if err != nil {
			return nil, err
		}
		pass, err := readSecret(section, "password", r.PasswordEnv, r.PasswordFile)
		if err != nil {
			return nil, err
		}
		opts = append(opts, sr.BasicAuth(user, pass))
	}
	cl, err := sr.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", section, err)
	}
	return &schemaRegistry{ctx: ctx, cl: cl, url: r.URL, log: log, schemas: map[uint32]format.WriterSchema{}}, nil
}

// writerSchema returns the schema of id, with the schemas it references.
// A registry that does not know the id fails the record; one that cannot be
// reached is retried for registryPatience, and then fails with
// format.ErrRegistryUnavailable.
func (r *schemaRegistry) writerSchema(id uint32) (format.WriterSchema, error) {
	r.mu.Lock()
	ws, ok := r.schemas[id]
	r.mu.Unlock()
	if ok {
		return ws, nil
	}
	ctx, cancel := context.WithTimeout(r.ctx, registryPatience)
	defer cancel()
	var got sr.Schema
	err := r.retry(ctx, fmt.Sprintf("schema %d", id), func() (err error) {
		got, err = r.cl.SchemaByID(ctx, int(id))
		return err
	})
	if err != nil {
		return ws, err
	}
	ws = format.WriterSchema{Type: got.Type.String(), Text: got.Schema}
	if ws.References, err = r.references(ctx, got.References, map[string]bool{}); err != nil {
		return ws, err
	}
	r.mu.Lock()
	r.schemas[id] = ws
	r.mu.Unlock()
	return ws, nil
}

// references returns the schemas refs name, and those they reference,
// each after its own references.
func (r *schemaRegistry) references(ctx context.Context, refs []sr.SchemaReference, seen map[string]bool) ([]format.SchemaReference, error) {
	var out []format.SchemaReference
	for _, ref := range refs {
		if seen[ref.Name] {
			continue
		}
		seen[ref.Name] = true
		var got sr.SubjectSchema
		err := r.retry(ctx, fmt.Sprintf("subject %s version %d, referenced as %s,", ref.Subject, ref.Version, ref.Name), func() (err error) {
			got, err = r.cl.SchemaByVersion(ctx, ref.Subject, ref.Version)
			return err
		})
		if err != nil {
			return nil, err
		}
		deeper, err := r.references(ctx, got.References, seen)
		if err != nil {
			return nil, err
		}
		out = append(append(out, deeper...), format.SchemaReference{Name: ref.Name, Text: got.Schema.Schema})
	}
	return out, nil
}

// retry calls get until it succeeds, the registry says what was asked
// for does not exist (the record's error), or refuses the engine, or ctx
// ends (both format.ErrRegistryUnavailable).
func (r *schemaRegistry) retry(ctx context.Context, what string, get func() error) error {
	var patience time.Duration
	if deadline, ok := ctx.Deadline(); ok {
		patience = time.Until(deadline)
	}
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		err := get()
		var re *sr.ResponseError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &re) && notFound(re.ErrorCode):
			return fmt.Errorf("the registry at %s has no %s", r.url, what)
		case errors.As(err, &re) && re.StatusCode < 500 && re.StatusCode != http.StatusTooManyRequests && re.StatusCode != http.StatusRequestTimeout:
			// A 404 without the registry's own code is not the registry
			// answering (a wrong path, a proxy): not the record's fault.
			// Refused (authentication, a bad request): waiting will not help.
			return fmt.Errorf("%w: the registry at %s answered %d: %s", format.ErrRegistryUnavailable, r.url, re.StatusCode, re.Message)
		}
		r.log.Warn("kafka: the schema registry did not answer; retrying", "component", "kafka", "registry", r.url, "asked", what, "error", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: no answer from %s within %s: %v", format.ErrRegistryUnavailable, r.url, patience.Round(time.Second), err)
		case <-time.After(wait):
		}
	}
}

// register registers schema, of what (the results, their keys), under
// subject, or finds it registered, and returns its id.
func (r *schemaRegistry) register(ctx context.Context, subject, what string, schema sr.Schema) (uint32, error) {
	id, err := r.cl.RegisterSchema(ctx, subject, schema, -1, -1)
	if err != nil {
		return 0, fmt.Errorf("registering the %s' schema under subject %s at %s: %w", what, subject, r.url, err)
	}
	return uint32(id), nil
}

// registeredEncoder registers the schema of rows of cols, of format f
// (avro or protobuf), under subject in r, and returns their encoder, which
// writes each record after the registered id; what names them in the log
// (the results, their keys).
func registeredEncoder(f v1alpha1.Format, r *v1alpha1.SchemaRegistry, subject, what string, cols []value.Column, log *slog.Logger) (connector.Encoder, error) {
	schema := sr.Schema{Type: sr.TypeAvro}
	var err error
	if f == v1alpha1.FormatProtobuf {
		schema.Type = sr.TypeProtobuf
		schema.Schema, err = format.ProtobufSchemaOf(cols)
	} else {
		schema.Schema, err = format.AvroSchemaOf(cols)
	}
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), registryPatience)
	defer cancel()
	reg, err := newSchemaRegistry(ctx, f, r, log)
	if err != nil {
		return nil, err
	}
	id, err := reg.register(ctx, subject, what, schema)
	if err != nil {
		return nil, err
	}
	log.Info("kafka: the "+what+"' schema is registered", "component", "kafka", "registry", r.URL, "subject", subject, "schema_id", id, "format", f)
	if f == v1alpha1.FormatProtobuf {
		return format.NewProtobufEncoder(cols, format.ProtobufWireHeader(id)), nil
	}
	return format.NewAvroEncoder(cols, format.AvroWireHeader(id)), nil
}

// notFound reports whether a registry's error code says a subject (40401),
// a version (40402) or a schema (40403) does not exist.
func notFound(code int) bool { return code >= 40401 && code <= 40403 }

// resolveLatestSchema reads the latest schema of src's subject
// (v1alpha1.Source.LatestSchemaSubject) and makes it src's schema: the
// reader schema of format avro, the .proto of format protobuf, whose
// fields are the source's columns, after those of the key and headers it
// declares. A registry that does not answer is
// retried until ctx ends. A schema the source cannot take its columns
// from is refused here, naming its subject and version, rather than by
// the planner as the manifest's own.
func resolveLatestSchema(ctx context.Context, src *v1alpha1.Source, log *slog.Logger) (connector.ResolvedSchema, error) {
	_, _, r := src.FormatSchema()
	subject := src.LatestSchemaSubject()
	resolved := connector.ResolvedSchema{Source: src.Name, Registry: r.URL, Subject: subject}
	reg, err := newSchemaRegistry(ctx, src.Format, r, log)
	if err != nil {
		return resolved, fmt.Errorf("reading the latest schema of subject %s: %w", subject, err)
	}
	var got sr.SubjectSchema
	err = reg.retry(ctx, "subject "+subject, func() (err error) {
		got, err = reg.cl.SchemaByVersion(ctx, subject, -1)
		return err
	})
	if err != nil {
		return resolved, fmt.Errorf("the columns are the fields of the latest schema of subject %s: %w", subject, err)
	}
	resolved.Version, resolved.ID = got.Version, got.ID
	which := fmt.Sprintf("the latest schema of subject %s (version %d, id %d)", subject, got.Version, got.ID)
	want := sr.TypeAvro
	if src.Format == v1alpha1.FormatProtobuf {
		want = sr.TypeProtobuf
	}
	text := got.Schema.Schema
	switch {
	case got.Type != want:
		return resolved, fmt.Errorf("%s is a %s schema, and format %s reads %s", which, got.Type, src.Format, want)
	case len(got.References) > 0:
		return resolved, fmt.Errorf("%s references other schemas (%s), which a source's columns are not taken from: declare the columns to read", which, got.References[0].Name)
	case utf8.RuneCountInString(text) > v1alpha1.MaxFormatSchema:
		return resolved, fmt.Errorf("%s is longer than the %d characters a source's schema may have: declare the columns to read", which, v1alpha1.MaxFormatSchema)
	}
	var cols []value.Column
	if src.Format == v1alpha1.FormatProtobuf {
		cols, err = format.ProtobufColumns(text, src.Protobuf.Message)
	} else {
		cols, err = format.AvroColumns(text)
	}
	if err != nil {
		return resolved, fmt.Errorf("%s: %w", which, err)
	}
	declared := func(name string) bool {
		return slices.ContainsFunc(src.Schema, func(d v1alpha1.Column) bool { return d.Name == name })
	}
	named := func(name string) bool {
		return declared(name) || slices.ContainsFunc(cols, func(c value.Column) bool { return c.Name == name })
	}
	if et := src.EventTime; et != nil && !named(et.Column) {
		return resolved, fmt.Errorf("%s has no field %s, the source's eventTime.column", which, et.Column)
	}
	for _, name := range src.KafkaPartitionedBy() {
		if !named(name) {
			return resolved, fmt.Errorf("%s has no field %s, of the source's kafka.partitionedBy", which, name)
		}
	}
	if len(src.Schema) > 0 {
		// Columns of the key or headers declared: the value's follow them,
		// declared as the manifest would.
		for _, c := range cols {
			if declared(c.Name) {
				return resolved, fmt.Errorf("%s has a field %s, which the source declares as a column of the key or a header: rename one", which, c.Name)
			}
		}
		for _, c := range cols {
			src.Schema = append(src.Schema, v1alpha1.Column{Name: c.Name, Type: c.Type.String()})
		}
	}
	// The manifest as if it had given the schema, which a subject would
	// then contradict.
	if src.Format == v1alpha1.FormatProtobuf {
		src.Protobuf.Schema = text
		src.Protobuf.Registry.Subject = ""
	} else {
		src.Avro.Schema = text
		src.Avro.Registry.Subject = ""
	}
	log.Info("kafka: the source's columns are the fields of its subject's latest schema", "component", "kafka", "source", src.Name, "registry", r.URL, "subject", subject, "version", got.Version, "schema_id", got.ID)
	return resolved, nil
}
