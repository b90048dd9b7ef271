package pipeline

import (
	"time"
)

// Snapshot is the state of a pipeline at one moment, for status, metrics and
// progress lines.
type Snapshot struct {
	Run       string
	State     State
	Started   time.Time
	Counts    Counts
	Retries   int64
	Batches   int64
	Edges     []EdgeSnapshot
	LastError string
	// LatencyP50 and LatencyP99 are the time from a batch leaving its source to
	// its rows being written, over the whole run.
	LatencyP50, LatencyP99 time.Duration
	Partitions, Workers    int
}

// Snapshot returns the pipeline's current state. It takes no lock that a stage
// holds while processing.
func (p *Pipeline) Snapshot() Snapshot {
	s := Snapshot{
		Run:        p.runID,
		State:      State(p.state.Load()),
		Started:    p.started,
		Counts:     p.stats.counts(),
		Retries:    p.stats.retries.Load(),
		Batches:    p.stats.batches.Load(),
		LatencyP50: p.stats.latency.quantile(0.50),
		LatencyP99: p.stats.latency.quantile(0.99),
		Partitions: len(p.readers),
		Workers:    p.parallelism,
	}
	p.mu.Lock()
	s.LastError = p.lastError
	edges := p.edges
	p.mu.Unlock()
	s.Edges = make([]EdgeSnapshot, len(edges))
	for i, e := range edges {
		s.Edges[i] = e.snapshot()
	}
	return s
}
