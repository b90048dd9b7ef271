package v1alpha1

import (
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Upper bounds of the spec's sizes, counts and durations. Every number a user
// writes has one, so that no manifest that validates can exhaust the engine's
// memory or stall it: the CRD's markers repeat each bound (a test compares
// them), and docs/manifest.md lists them all.
const (
	MaxSources       = 16
	MaxStatements    = 16
	MaxMetrics       = 32
	MaxMetricLabels  = 8
	MaxMetricBuckets = 64
	MaxMetricSeries  = 100_000
	// DefaultMetricSeries is a metric's maxSeries when the spec sets none.
	DefaultMetricSeries = 1000
	MaxColumns          = 1024
	MaxQueryLength      = 256 << 10 // characters, as the API server counts them
	MaxFormatSchema     = 1 << 20   // characters of an avro or protobuf schema
	MaxJSONSchema       = 1 << 18   // characters of a source's jsonSchema
	MaxTableKeys        = 64
	MaxBrokers          = 64
	MaxTopics           = 16
	MaxRecordBytesMax   = 64 << 20 // the bound of maxRecordBytes

	MaxDatagenCount      = 1_000_000_000_000 // a millisecond apart, 31 years of trades
	MaxDatagenRate       = 1_000_000_000
	MaxDatagenPartitions = 1024
	MaxDatagenKeys       = 1_000_000
	// MaxDatagenSymbols bounds partitions × keys: each partition keeps a
	// price per symbol.
	MaxDatagenSymbols = 1_000_000

	MaxParallelism     = 256
	MaxChannelCapacity = 4096
	MaxBatchSize       = 65536
	MaxBatchLinger     = time.Minute
	MaxShutdownTimeout = time.Hour
	MaxEmitInterval    = time.Hour

	MinCheckpointInterval = 100 * time.Millisecond
	MaxCheckpointInterval = time.Hour
	MinStateTTL           = time.Second
	MaxStateTTL           = 366 * 24 * time.Hour

	MaxRetriesMax   = 100 // the bound of maxRetries
	MaxRetryBackoff = time.Minute

	MaxSessionTimeout      = 30 * time.Minute // Kafka's group.max.session.timeout.ms
	MaxTransactionInterval = 30 * time.Second // within the producer's 40s transaction timeout
	MaxLinger              = time.Minute
	MaxBatchBytesMax       = 100 << 20 // the bound of maxBatchBytes: the most a client writes in one request

	MaxOutOfOrderness  = 7 * 24 * time.Hour
	MaxIdleTimeout     = 24 * time.Hour
	MaxAllowedLateness = 7 * 24 * time.Hour

	MaxHealthWindow = time.Hour // queueSustained, rateBaseline and errorWindow
	MaxLagTime      = 24 * time.Hour
	MaxStallTimeout = 24 * time.Hour

	MaxReplicas = 128

	MaxTargetLagSeconds = 86400     // spec.autoscaling.targetLagSeconds: a day
	MaxScaleWindow      = time.Hour // the autoscaling stabilization windows
)

// checkRange records a problem when v is outside [lo, hi].
func (ps *Problems) checkRange(field string, v, lo, hi int64) {
	if v < lo || v > hi {
		ps.Add(field, "must be between %d and %d, got %d", lo, hi, v)
	}
}

// checkDuration records a problem when a set duration is above hi, or below
// lo, or when positive is true not above 0.
func (ps *Problems) checkDuration(field string, d *metav1.Duration, lo, hi time.Duration, positive bool) {
	switch {
	case d == nil:
	case positive && (d.Duration <= 0 || d.Duration > hi):
		ps.Add(field, "must be positive and at most %s, got %s", shortDuration(hi), d.Duration)
	case d.Duration < lo || d.Duration > hi:
		ps.Add(field, "must be between %s and %s, got %s", shortDuration(lo), shortDuration(hi), d.Duration)
	}
}

// shortDuration writes a bound as the manifests do: 1m, not 1m0s.
func shortDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "0s"
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}
