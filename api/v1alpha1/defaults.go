package v1alpha1

import (
	"time"

	"github.com/sluice-dev/sluice/api/enginestatus"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The defaults of fields left out. The CRD's +kubebuilder:default markers
// state the same values (TestCRDDefaults holds them together), so that the
// API server and Default fill a spec alike.
const (
	DefaultReplicas              = 1
	DefaultMaxUnavailable        = 1
	DefaultMaxRecordBytes        = 1 << 20
	DefaultStartOffset           = "earliest"
	DefaultSessionTimeout        = 45 * time.Second
	DefaultDatagenPartitions     = 1
	DefaultDatagenKeys           = 10
	DefaultIdleTimeout           = 30 * time.Second
	DefaultTransactionInterval   = time.Second
	DefaultMaxBatchBytes         = 1000012 // Kafka's default max.message.bytes
	DefaultMaxRetries            = 3
	DefaultRetryBackoff          = 100 * time.Millisecond
	DefaultChannelCapacity       = 16
	DefaultBatchSize             = 512
	DefaultBatchLinger           = 5 * time.Millisecond
	DefaultShutdownTimeout       = 30 * time.Second
	DefaultQueueUtilization      = 80 // percent
	DefaultQueueSustained        = 30 * time.Second
	DefaultProcessingRatePercent = 50
	DefaultRateBaseline          = 5 * time.Minute
	DefaultErrorRatePercent      = 5
	DefaultErrorWindow           = time.Minute
	DefaultMemoryPercent         = 90
	DefaultStallTimeout          = 5 * time.Minute
	DefaultCheckpointInterval    = 10 * time.Second
	// DefaultStateDir is where spec.state.volume's claim is mounted.
	DefaultStateDir         = "/var/lib/sluice/state"
	DefaultTargetLagSeconds = 30
	DefaultScaleUpWindow    = 30 * time.Second
	DefaultScaleDownWindow  = 5 * time.Minute
	DefaultMaxScaleStep     = 2
)

// Default fills every field left out that has a fixed default, as CRD
// defaulting does, so that a manifest run locally behaves like one applied
// to a cluster and no reader of a spec needs a default of its own. Fields
// whose default depends on the run stay empty: runtime.parallelism (the
// partitions, at most the CPUs) and a Kafka source's group (from the
// query's namespace and name).
func (s *StreamQuerySpec) Default() {
	for i := range s.Sources {
		s.Sources[i].Default()
	}
	if s.Sink != nil {
		s.Sink.Default()
	}
	for i := range s.Statements {
		s.Statements[i].Sink.Default()
	}
	if st := s.State; st != nil {
		durationOr(&st.CheckpointInterval, DefaultCheckpointInterval)
		if st.Volume != nil {
			orDefault(&st.Dir, DefaultStateDir)
		}
	}
	for i := range s.Metrics {
		orDefault(&s.Metrics[i].MaxSeries, DefaultMetricSeries)
	}
	ep := &s.ErrorPolicy
	orDefault(&ep.Strategy, FailFast)
	if ep.MaxRetries == nil {
		ep.MaxRetries = ptr(int32(DefaultMaxRetries))
	}
	durationOr(&ep.RetryBackoff, DefaultRetryBackoff)
	if ep.DeadLetter != nil {
		ep.DeadLetter.Default()
	}
	rt := &s.Runtime
	orDefault(&rt.Mode, Pipelined)
	orDefault(&rt.ChannelCapacity, DefaultChannelCapacity)
	orDefault(&rt.BatchSize, DefaultBatchSize)
	durationOr(&rt.BatchLinger, DefaultBatchLinger)
	durationOr(&rt.ShutdownTimeout, DefaultShutdownTimeout)
	h := &s.Health
	orDefault(&h.QueueUtilizationPercent, DefaultQueueUtilization)
	durationOr(&h.QueueSustained, DefaultQueueSustained)
	orDefault(&h.ProcessingRatePercent, DefaultProcessingRatePercent)
	durationOr(&h.RateBaseline, DefaultRateBaseline)
	if h.ErrorRatePercent == nil {
		h.ErrorRatePercent = ptr(int32(DefaultErrorRatePercent))
	}
	durationOr(&h.ErrorWindow, DefaultErrorWindow)
	orDefault(&h.MemoryPercent, DefaultMemoryPercent)
	durationOr(&h.StallTimeout, DefaultStallTimeout)
	if s.Replicas == nil {
		s.Replicas = ptr(int32(DefaultReplicas))
	}
	if a := s.Autoscaling; a != nil {
		orDefault(&a.MinReplicas, 1)
		orDefault(&a.TargetLagSeconds, DefaultTargetLagSeconds)
		orDefault(&a.Backpressure, enginestatus.LevelHigh)
		durationOr(&a.ScaleUpStabilization, DefaultScaleUpWindow)
		durationOr(&a.ScaleDownStabilization, DefaultScaleDownWindow)
		orDefault(&a.MaxStep, DefaultMaxScaleStep)
	}
	if b := s.PodDisruptionBudget; b != nil && b.MaxUnavailable == nil {
		b.MaxUnavailable = ptr(intstr.FromInt32(DefaultMaxUnavailable))
	}
}

// Default fills the source's defaults.
func (s *Source) Default() {
	orDefault(&s.Format, FormatJSON)
	orDefault(&s.MaxRecordBytes, DefaultMaxRecordBytes)
	if k := s.Kafka; k != nil {
		orDefault(&k.StartOffset, DefaultStartOffset)
		durationOr(&k.SessionTimeout, DefaultSessionTimeout)
		orDefault(&k.KeyFormat, KeyFormatString)
	}
	if d := s.Datagen; d != nil {
		orDefault(&d.Partitions, DefaultDatagenPartitions)
		orDefault(&d.Keys, DefaultDatagenKeys)
	}
	if et := s.EventTime; et != nil {
		durationOr(&et.IdleTimeout, DefaultIdleTimeout)
		orDefault(&et.LateRecords, LateDrop)
	}
}

// Default fills the sink's defaults.
func (s *Sink) Default() {
	orDefault(&s.Format, FormatJSON)
	if k := s.Kafka; k != nil {
		orDefault(&k.Delivery, AtLeastOnce)
		// TransactionInterval stays unset: the source defaults it, since
		// with spec.state the checkpoints pace the transactions instead.
		orDefault(&k.Compression, CompressionSnappy)
		orDefault(&k.KeyFormat, KeyFormatString)
		orDefault(&k.MaxBatchBytes, DefaultMaxBatchBytes)
	}
}

// orDefault sets *v to def when it is the zero value.
func orDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// durationOr sets *d to def when it is unset.
func durationOr(d **metav1.Duration, def time.Duration) {
	if *d == nil {
		*d = &metav1.Duration{Duration: def}
	}
}

func ptr[T any](v T) *T { return &v }
