// Package enginestatus defines the JSON document an engine serves on /status.
// The engine encodes it and the operator decodes it with these same types, so
// the two cannot disagree on its shape. docs/status.md describes each field.
package enginestatus

import (
	"fmt"
	"time"
)

// Version identifies this schema of the document. A change that removes or
// re-means a field gets a new version.
const Version = "sluice.dev/engine-status/v1"

// Path is where the engine serves the document.
const Path = "/status"

// Port is the engine's default HTTP port.
const Port = 8080

// Document is the engine's status.
type Document struct {
	// Version is the schema version, Version.
	Version string `json:"version"`
	// Engine is the engine build's version.
	Engine string `json:"engine"`
	// Pipeline is the query's state: Starting, Running, Draining, Finished or Failed.
	Pipeline State `json:"pipeline"`
	// Run identifies this run of the pipeline; correlation ids start with it.
	Run string `json:"run"`
	// Health is the verdict, Healthy, Degraded or Unhealthy, and Checks the
	// checks that decided it.
	Health Health  `json:"health"`
	Checks []Check `json:"checks"`
	// Backpressure summarises how full the channels are.
	Backpressure Backpressure `json:"backpressure"`
	// Edges are the channels between stages.
	Edges []Edge `json:"edges"`
	// Records counts what happened to every record read.
	Records Records `json:"records"`
	// Rates are per second, over the last few seconds.
	Rates Rates `json:"rates"`
	// Latency is the time from a batch leaving its source to being written.
	Latency Latency `json:"latency"`
	// Sources is each source partition's progress.
	Sources []Partition `json:"sources"`
	// Lag is the total consumer lag in records, for sources that have one.
	Lag *int64 `json:"lag,omitempty"`
	// EventTime is set for a stateful query (windows, moving aggregates).
	EventTime *EventTime `json:"eventTime,omitempty"`
	// Checkpoints is set for a query that checkpoints its state
	// (spec.state).
	Checkpoints *Checkpoints `json:"checkpoints,omitempty"`
	// Metrics are the query's business metrics (spec.metrics), if any.
	Metrics []UserMetric `json:"metrics,omitempty"`
	// Statements, of a statement set (spec.statements), are each
	// statement's state and counts. Records then counts the records read
	// once, as in, and what became of them summed over the statements,
	// each of which takes every record of the sources it reads; a record
	// is in flight until every statement has handled it.
	Statements []Statement `json:"statements,omitempty"`
	// Warnings are what a user should know that is not a health problem:
	// a business metric at its series limit.
	Warnings []string `json:"warnings,omitempty"`
	// LastError is the most recent error, empty if none.
	LastError string `json:"lastError,omitempty"`
	// StartTime is when the pipeline started; UptimeSeconds how long ago.
	StartTime     time.Time `json:"startTime"`
	UptimeSeconds float64   `json:"uptimeSeconds"`
}

// Check is one health check: its measured value against its threshold.
type Check struct {
	Name      CheckName `json:"name"`
	Status    Health    `json:"status"`
	Value     float64   `json:"value"`
	Threshold float64   `json:"threshold"`
	Message   string    `json:"message,omitempty"`
}

// Backpressure says whether senders are waiting on full channels.
type Backpressure struct {
	// Active is true when the fullest channel is above the high-water mark.
	Active bool `json:"active"`
	// Level is None, Low, Medium or High.
	Level Level `json:"level"`
	// MaxUtilization is the fullest channel's depth over its capacity: the
	// most it was now or in the samples of the last 3 seconds.
	MaxUtilization float64 `json:"maxUtilization"`
	// Edge names the fullest channel.
	Edge string `json:"edge,omitempty"`
}

// Edge is one channel between stages.
type Edge struct {
	Name           string  `json:"name"`
	Depth          int     `json:"depth"`
	Capacity       int     `json:"capacity"`
	Utilization    float64 `json:"utilization"`
	BlockedSends   int64   `json:"blockedSends"`
	BlockedSeconds float64 `json:"blockedSeconds"`
}

// Records counts what happened to the records of a run, from the pipeline
// to /status and the metrics. In = Out + Filtered + DeadLettered + Skipped +
// Failed + Aggregated + Late + Revoked + Restored + Repartitioned +
// InFlight, always: every record read ends in exactly one of those, or is
// still in flight. A repartitioned query's engine reads records twice:
// from its source, and, as rows keyed by the state's key, from its
// repartition topic; both count in In.
type Records struct {
	In           int64 `json:"in"`
	Out          int64 `json:"out"`
	Filtered     int64 `json:"filtered"`
	DeadLettered int64 `json:"deadLettered"`
	Skipped      int64 `json:"skipped"`
	// Failed counts records that stopped a FailFast pipeline, or that were
	// lost to it while in flight when it stopped.
	Failed int64 `json:"failed"`
	// Aggregated counts records a windowed aggregation or a join absorbed:
	// their results are rows of their groups, or joined rows. Late counts records that arrived
	// behind the watermark and were dropped.
	Aggregated int64 `json:"aggregated"`
	Late       int64 `json:"late"`
	// Revoked counts records a stateful stage dropped because their Kafka
	// partition moved to another engine while they were in flight; the new
	// owner reads them again.
	Revoked int64 `json:"revoked"`
	// Restored counts records read again after a restart from a checkpoint
	// (spec.state) whose state already holds them: they are dropped.
	Restored int64 `json:"restored"`
	// Repartitioned counts rows written to the query's repartition topic,
	// which this engine or another reads again.
	Repartitioned int64 `json:"repartitioned,omitempty"`
	InFlight      int64 `json:"inFlight"`
	// Retries counts sink write attempts that were retried.
	Retries int64 `json:"retries"`
	// Results counts the rows a windowed aggregation or a join wrote. They are not
	// records read, so they are outside the balance of the other counts.
	Results int64 `json:"results"`
}

// EventTime is the progress of a stateful query in event time.
type EventTime struct {
	// Watermark is the time before which no more records are expected.
	Watermark time.Time `json:"watermark"`
	// StateRows is the groups of open windows or of a continuous
	// aggregation, or the rows held for moving aggregates.
	StateRows int64 `json:"stateRows"`
	// ExpiredGroups counts the groups of a continuous aggregation dropped
	// since the engine started, no row having changed them for
	// spec.state.ttl.
	ExpiredGroups int64 `json:"expiredGroups,omitempty"`
}

// Partition is how far one source partition has been handled.
type Partition struct {
	Source string `json:"source"`
	// Topic is the Kafka topic of the partition, for Kafka sources: a
	// source can read several.
	Topic     string `json:"topic,omitempty"`
	Partition int32  `json:"partition"`
	// Committed is the offset (file line, generator sequence number, Kafka
	// offset) up to which every record has been written or handled by the
	// error policy; -1 before any.
	Committed int64 `json:"committed"`
	// Lag is the partition's records not handled yet (Kafka: the high
	// watermark less the next offset to commit); absent for sources
	// without one.
	Lag *int64 `json:"lag,omitempty"`
}

// Rates are records per second.
type Rates struct {
	Input  float64 `json:"input"`
	Output float64 `json:"output"`
	Error  float64 `json:"error"`
}

// Latency holds quantiles in seconds.
type Latency struct {
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
}

// Termination is what an engine writes as its container's termination
// message when its run ends (/dev/termination-log), for the operator: the
// final counts of a run that ended, and why one failed. Kubernetes keeps
// at most 4096 bytes of it; the engine cuts the summary until the
// document fits.
type Termination struct {
	// Summary is the run's last line: how it ended, why if it failed, and
	// its counts.
	Summary string `json:"summary"`
	// Failed says the run ended in failure.
	Failed bool `json:"failed"`
	// Records are the run's final counts.
	Records Records `json:"records"`
}

// Statement is the state of one statement of a statement set.
type Statement struct {
	Name     string  `json:"name"`
	Pipeline State   `json:"pipeline"`
	Records  Records `json:"records"`
	// Rates are the statement's: records it took, rows it wrote and
	// records that failed in it, per second.
	Rates Rates `json:"rates"`
	// LastError is the statement's most recent error, empty if none.
	LastError string `json:"lastError,omitempty"`
}

// UserMetric is a business metric's state.
type UserMetric struct {
	// Name is the exported name, sluice_user_<name>.
	Name string `json:"name"`
	// Series is how many series the metric has, at most MaxSeries, not
	// counting the overflow series.
	Series    int `json:"series"`
	MaxSeries int `json:"maxSeries"`
	// OverflowRows counts the rows with label values beyond the first
	// MaxSeries, counted in the series whose labels are all __overflow__.
	OverflowRows int64 `json:"overflowRows,omitempty"`
	// SkippedRows counts the rows whose value was NULL, or negative for a
	// counter, which the metric did not count.
	SkippedRows int64 `json:"skippedRows,omitempty"`
}

// Warning says what a user needs to know of the metric, or "".
func (m UserMetric) Warning() string {
	if m.OverflowRows == 0 {
		return ""
	}
	return fmt.Sprintf("metric %s reached its maxSeries of %d: %d rows with further label values are counted in the series whose labels are all __overflow__",
		m.Name, m.MaxSeries, m.OverflowRows)
}

// Checkpoints is what an engine did of checkpoints of its state.
type Checkpoints struct {
	// IntervalSeconds is spec.state.checkpointInterval.
	IntervalSeconds float64 `json:"intervalSeconds"`
	// Completed counts the checkpoints this run saved.
	Completed int64 `json:"completed"`
	// Aborted counts the exactly-once transactions of this engine's
	// partition checkpoints (several engines) that a rebalance aborted:
	// each took every partition read here back to its last committed
	// checkpoint.
	Aborted int64 `json:"aborted,omitempty"`
	// Last is the newest checkpoint this run saved, if any.
	Last *Checkpoint `json:"last,omitempty"`
	// Restored is the checkpoint the run started from, if any, and
	// RestoreSeconds how long reading it back into the state took.
	Restored       *Checkpoint `json:"restored,omitempty"`
	RestoreSeconds float64     `json:"restoreSeconds,omitempty"`
}

// Checkpoint is one checkpoint.
type Checkpoint struct {
	ID   uint64    `json:"id"`
	Time time.Time `json:"time"`
	// AgeSeconds is how long ago it was taken; DurationSeconds how long it
	// took from taking the state to saving it; StateBytes the state's size.
	AgeSeconds      float64 `json:"ageSeconds"`
	DurationSeconds float64 `json:"durationSeconds,omitempty"`
	StateBytes      int     `json:"stateBytes,omitempty"`
}
