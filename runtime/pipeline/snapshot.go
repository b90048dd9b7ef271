package pipeline

import (
	"slices"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/api/enginestatus"
	"github.com/sluice-dev/sluice/runtime/usermetric"
)

// Snapshot is the state of a pipeline at one moment, for status, metrics and
// progress lines.
type Snapshot struct {
	Run       string
	State     enginestatus.State
	Started   time.Time
	Counts    enginestatus.Records
	Batches   int64
	Edges     []EdgeSnapshot
	LastError string
	// LatencyP50 and LatencyP99 are the time from a batch leaving its source to
	// its rows being written, over the whole run.
	LatencyP50, LatencyP99 time.Duration
	Partitions, Workers    int
	// Sources holds each partition's progress.
	Sources []PartitionProgress
	// StageErrors counts failed records by stage, in the order of ErrorStages.
	StageErrors [numErrorStages]int64
	// Traced counts records written within a sampled trace.
	Traced int64
	// ActiveWorkers is the number of partition workers running.
	ActiveWorkers int64
	// Stateful says the query has a stateful stage; Watermark (ns since the
	// epoch, math.MinInt64 before any) and StateRows are its progress, and
	// ExpiredGroups the groups it dropped for spec.state.ttl.
	Stateful      bool
	Watermark     int64
	StateRows     int64
	ExpiredGroups int64
	// Unavailable says why a connector cannot reach its service (Kafka
	// brokers gone), while its client retries; empty when all can.
	Unavailable string
	// Metrics are the business metrics' states.
	Metrics []enginestatus.UserMetric
	// Checkpoints is what the run did of checkpoints (spec.state), nil
	// without.
	Checkpoints *CheckpointStats
	// Statements, of a statement set, are its statements' own states and
	// counts; Counts then has the records read once, and what became of
	// them summed over the statements.
	Statements []StatementSnapshot
}

// StatementSnapshot is the state of one statement of a statement set.
type StatementSnapshot struct {
	Name      string
	State     enginestatus.State
	Counts    enginestatus.Records
	LastError string
	// Stateful says the statement has a stateful stage.
	Stateful bool
}

// availability is a connector that knows whether its service is reachable.
type availability interface{ Unavailable() error }

// PartitionProgress is how far one source partition has been handled.
type PartitionProgress struct {
	Source string `json:"source"`
	// Topic is the Kafka topic of the partition, for Kafka sources.
	Topic     string `json:"topic,omitempty"`
	Partition int32  `json:"partition"`
	// Committed is the offset (line, sequence number) up to which every record
	// has been written or handled by the error policy; -1 before any.
	Committed int64 `json:"committed"`
	// Lag is the records of the partition not handled yet, for sources that
	// know it (Kafka); -1 otherwise.
	Lag int64 `json:"lag"`
}

// lagger is a reader that knows its partition's lag.
type lagger interface{ Lag() int64 }

// handledReporter is a reader that knows where its partition's handled
// records end from before this run, as a Kafka consumer group does.
type handledReporter interface{ Handled() (int64, bool) }

// Snapshot returns the pipeline's current state. It takes no lock that a stage
// holds while processing.
func (p *Pipeline) Snapshot() Snapshot {
	s := Snapshot{
		Run:           p.runID,
		State:         states[p.state.Load()],
		Started:       p.started,
		Counts:        p.stats.counts(),
		Batches:       p.stats.batches.Load(),
		LatencyP50:    p.stats.latency.quantile(0.50),
		LatencyP99:    p.stats.latency.quantile(0.99),
		Partitions:    len(p.readers),
		Workers:       p.parallelism,
		Traced:        p.stats.traced.Load(),
		ActiveWorkers: p.stats.activeWorkers.Load(),
		Stateful:      p.prog != nil && p.prog.Stateful(),
		Watermark:     p.stats.watermark.Load(),
		StateRows:     p.stats.stateRows.Load(),
		ExpiredGroups: p.stats.expiredGroups.Load(),
		Metrics:       p.metrics.Status(),
	}
	if st, ok := p.Checkpoints(); ok {
		s.Checkpoints = &st
	}
	for i := range s.StageErrors {
		s.StageErrors[i] = p.stats.stageErrors[i].Load()
	}
	for i, r := range p.readers {
		o := r.Origin()
		off, ok := p.committed[i].Offset()
		if h, isH := r.(handledReporter); isH {
			// A Kafka partition's progress before this engine read it is
			// the group's committed offset.
			if o, known := h.Handled(); known && (!ok || o > off) {
				off, ok = o, true
			}
		}
		if !ok {
			off = -1
		}
		lag := int64(-1)
		if l, ok := r.(lagger); ok {
			lag = l.Lag()
		}
		s.Sources = append(s.Sources, PartitionProgress{Source: o.Source, Topic: o.Topic, Partition: o.Partition, Committed: off, Lag: lag})
	}
	var unavailable []string
	note := func(c any) {
		if a, ok := c.(availability); ok {
			// The lanes of one source share its client: one message each.
			if err := a.Unavailable(); err != nil && !slices.Contains(unavailable, err.Error()) {
				unavailable = append(unavailable, err.Error())
			}
		}
	}
	note(p.sink)
	for _, r := range p.readers {
		note(r)
	}
	s.Unavailable = strings.Join(unavailable, "; ")
	p.mu.Lock()
	s.LastError = p.lastError
	edges := p.edges
	p.mu.Unlock()
	s.Edges = make([]EdgeSnapshot, len(edges))
	for i, e := range edges {
		s.Edges[i] = e.snapshot()
	}
	if p.upstream != nil {
		s.addUpstream(p.upstream.Snapshot())
	}
	if p.parts != nil {
		p.setSnapshot(&s)
	}
	return s
}

// addUpstream adds to a repartitioned query's snapshot that of its
// upstream part: the records read from the source and what became of them
// (rows written to the repartition topic count as Repartitioned), its
// partitions, edges (named "upstream/...") and problems.
func (s *Snapshot) addUpstream(up Snapshot) {
	c, u := &s.Counts, up.Counts
	c.In += u.In
	c.Filtered += u.Filtered
	c.DeadLettered += u.DeadLettered
	c.Skipped += u.Skipped
	c.Failed += u.Failed
	c.Repartitioned += u.Out
	c.InFlight += u.InFlight
	c.Retries += u.Retries
	s.Batches += up.Batches
	s.Partitions += up.Partitions
	s.Workers += up.Workers
	s.ActiveWorkers += up.ActiveWorkers
	for i := range s.StageErrors {
		s.StageErrors[i] += up.StageErrors[i]
	}
	s.Sources = append(up.Sources, s.Sources...)
	for _, e := range up.Edges {
		e.Name = "upstream/" + e.Name
		s.Edges = append(s.Edges, e)
	}
	if s.Unavailable == "" {
		s.Unavailable = up.Unavailable
	}
	if s.LastError == "" {
		s.LastError = up.LastError
	}
	if up.State == enginestatus.Failed {
		s.State = enginestatus.Failed
	}
}

// Metrics returns the query's business metrics (spec.metrics), a set of
// each statement's of a statement set; nil if it declares none.
func (p *Pipeline) Metrics() []*usermetric.Set {
	var sets []*usermetric.Set
	if len(p.metrics.Metrics()) > 0 {
		sets = append(sets, p.metrics)
	}
	for _, part := range p.parts {
		sets = append(sets, part.p.Metrics()...)
	}
	return sets
}
