package kafka

import (
	"errors"
	"fmt"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/connector"
)

// Register adds the Kafka source, sink and dead-letter sink to r under the
// spec key "kafka".
func Register(r *connector.Registry) {
	r.RegisterSource("kafka", openSource)
	r.RegisterSink("kafka", openSink)
	r.RegisterDeadLetter("kafka", openDeadLetter)
	r.RegisterStateStore("kafka", openCheckpointStore)
	r.RegisterRepartition("kafka", func(env connector.RepartitionEnv) (connector.Sink, error) { return OpenRepartitioner(env) }, repartitionExists)
	r.RegisterSchemaResolver("kafka", resolveLatestSchema)
}

// topics is an opened Kafka source: one consumer per topic, since the group
// gives each member partitions of the topic it subscribes to.
type topics []*Source

// Readers implements connector.Source.
func (t topics) Readers() []connector.Reader {
	var readers []connector.Reader
	for _, s := range t {
		for _, l := range s.Lanes() {
			readers = append(readers, l)
		}
	}
	return readers
}

// Close implements connector.Source.
func (t topics) Close() error {
	var errs []error
	for _, s := range t {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}

// Transaction implements connector.Transactional.
func (t topics) Transaction() connector.Transaction {
	for _, s := range t {
		if s.Transactional() {
			return s
		}
	}
	return nil
}

// System implements connector.Transaction.
func (s *Source) System() string { return "kafka" }

func openSource(env connector.SourceEnv) (connector.Source, error) {
	src := env.Source
	group := groupOf(src, env.Group)
	opts := Options{Group: group, Schema: src.Schema, Avro: src.Avro, Protobuf: src.Protobuf, JSONSchema: src.JSONSchema, Stateful: env.Stateful, Read: env.Read, Logger: env.Logger.With("source", src.Name)}
	if env.StaticMembership {
		opts.Instance = env.Instance
	}
	if src.Table != nil {
		// Every engine reads the whole table, in no group and in no
		// transaction: it commits nothing.
		opts.Table, opts.Group, opts.Instance = true, "", ""
	}
	exactlyOnce := false
	if k := env.Query.ExactlyOnceSink(); k != nil && src.Table == nil {
		exactlyOnce = true
		owner, err := joined(env.Transaction)
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", src.Name, err)
		}
		opts.Owner = owner
		if owner == nil {
			// Unique among the group's live members, stable across a
			// restart of the same member: a restarted engine fences the
			// open transaction of the process it replaces.
			opts.TransactionalID = group + "." + env.Instance
			if env.Repartition != nil {
				// The engine's upstream part has the other.
				opts.TransactionalID += ".repartition"
			}
			opts.Producer = k
			if k.TransactionInterval != nil {
				opts.TransactionInterval = k.TransactionInterval.Duration
			}
			// A query with state commits at its checkpoints; a statement
			// set every interval, its statements with state checkpointing
			// at each commit (connector.RoundTransaction), every
			// checkpoint interval.
			opts.Checkpointed = env.Stateful && env.Query.State != nil && len(env.Query.Statements) == 0
			if opts.Checkpointed {
				opts.OnRewind = env.Rewound
			} else {
				opts.OnAbort = env.Aborted
				if st := env.Query.State; st != nil && st.CheckpointInterval != nil && env.RoundCheckpoints > 0 {
					// Within the producer's transaction timeout.
					opts.TransactionInterval = min(st.CheckpointInterval.Duration, v1alpha1.MaxTransactionInterval)
					opts.Rounds = env.RoundCheckpoints
				}
			}
		}
	}
	names := src.Kafka.TopicNames()
	if env.Repartition != nil {
		// The rows of the source's topic, repartitioned by this query's
		// engines.
		names = []string{v1alpha1.RepartitionTopic(group)}
		opts.Repartition = env.Repartition
	}
	var opened topics
	for _, topic := range names {
		spec := *src.Kafka
		spec.Topic, spec.Topics = topic, nil
		if opts.Repartition != nil {
			// Every row the engines wrote is read, whatever the source's
			// own start.
			spec.StartOffset = "earliest"
		}
		s, err := Open(&spec, src.Name, src.Format, env.Columns, opts)
		if err != nil {
			_ = opened.Close()
			return nil, err
		}
		opened = append(opened, s)
		if exactlyOnce && opts.Owner == nil {
			// The source's other topics commit in this one's transactions.
			opts.Owner, opts.TransactionalID = s, ""
		}
	}
	return opened, nil
}

// groupOf is the consumer group of src: its own, else the query's (group),
// else one named after it.
func groupOf(src *v1alpha1.Source, group string) string {
	switch {
	case src.Kafka.Group != "":
		return src.Kafka.Group
	case group != "":
		return group
	}
	return "sluice." + src.Name
}

// joined returns the exactly-once source whose transaction t is, or nil.
func joined(t connector.Transaction) (*Source, error) {
	if t == nil {
		return nil, nil
	}
	if s, ok := t.(*Source); ok {
		return s, nil
	}
	return nil, fmt.Errorf("kafka cannot join a %s transaction", t.System())
}

func openSink(env connector.SinkEnv) (connector.Sink, error) {
	txn, err := joined(env.Transaction)
	if err != nil {
		return nil, fmt.Errorf("sink: %w", err)
	}
	spec := env.Spec.Kafka
	key := -1
	for i, c := range env.Columns {
		if spec.Key != "" && c.Name == spec.Key {
			key = i
		}
	}
	// The key's schema first: a refused one leaves nothing registered.
	var keyEnc connector.Encoder
	reg := env.Spec.Registry()
	if key >= 0 {
		keyCols := env.Columns[key : key+1] // the key column alone, in its format
		switch spec.KeyFormat {
		case v1alpha1.KeyFormatJSON:
			keyEnc = connector.NewEncoder(v1alpha1.FormatJSON, keyCols)
		case v1alpha1.KeyFormatAvro, v1alpha1.KeyFormatProtobuf:
			if keyEnc, err = registeredEncoder(v1alpha1.Format(spec.KeyFormat), reg, spec.Topic+"-key", "keys", keyCols, env.Logger); err != nil {
				return nil, fmt.Errorf("sink: %w", err)
			}
		}
	}
	enc := connector.NewEncoder(env.Spec.Format, env.Columns)
	if reg != nil {
		if enc, err = registeredEncoder(env.Spec.Format, reg, reg.SubjectOf(spec.Topic), "results", env.Columns, env.Logger); err != nil {
			return nil, fmt.Errorf("sink: %w", err)
		}
	}
	s, err := OpenSink(spec, enc, key, txn, env.Logger)
	if err != nil {
		return nil, err
	}
	s.keyEnc, s.keyLines = keyEnc, spec.KeyFormat == v1alpha1.KeyFormatJSON
	return s, nil
}

func openDeadLetter(env connector.SinkEnv) (connector.DeadLetterSink, error) {
	txn, err := joined(env.Transaction)
	if err != nil {
		return nil, fmt.Errorf("dead-letter sink: %w", err)
	}
	return OpenDeadLetter(env.Spec.Kafka, txn)
}
