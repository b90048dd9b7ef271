package pipeline

import (
	"math/bits"
	"sync/atomic"
	"time"

	"github.com/sluice-dev/sluice/api/enginestatus"
)

// ErrorStages are the stages a record can fail in, as error events name them.
var ErrorStages = [...]string{"decode", "filter", "project", "late", "aggregate", "join", "sink", "other"}

const numErrorStages = len(ErrorStages)

func stageIndex(stage string) int {
	for i, s := range ErrorStages[:numErrorStages-1] {
		if s == stage {
			return i
		}
	}
	return numErrorStages - 1
}

// stats holds a pipeline's counters. Stages add to them once per batch.
type stats struct {
	in, out, filtered, deadLettered, skipped, failed atomic.Int64
	aggregated, late, results, revoked, restored     atomic.Int64
	// watermark is the stateful stage's event-time watermark (ns since the
	// epoch), stateRows the groups or rows its operator holds, and
	// expiredGroups the groups it dropped for spec.state.ttl.
	watermark, stateRows, expiredGroups atomic.Int64
	retries, batches                    atomic.Int64
	// traced counts records written within a sampled trace.
	traced        atomic.Int64
	activeWorkers atomic.Int64
	// stageErrors counts failed records by the stage they failed in.
	stageErrors [numErrorStages]atomic.Int64
	latency     histogram
}

func (s *stats) counts() enginestatus.Records {
	// Read downstream counters first so that a concurrent snapshot never shows
	// more records accounted for than read.
	c := enginestatus.Records{
		Out: s.out.Load(), Filtered: s.filtered.Load(), DeadLettered: s.deadLettered.Load(),
		Skipped: s.skipped.Load(), Failed: s.failed.Load(),
		Aggregated: s.aggregated.Load(), Late: s.late.Load(), Results: s.results.Load(), Revoked: s.revoked.Load(),
		Restored: s.restored.Load(),
		Retries:  s.retries.Load(),
	}
	c.In = s.in.Load()
	c.InFlight = c.In - c.Out - c.Filtered - c.DeadLettered - c.Skipped - c.Failed - c.Aggregated - c.Late - c.Revoked - c.Restored
	return c
}

// EdgeStats measures one channel between stages.
type EdgeStats struct {
	Name string
	// input says the edge carries a source's batches to what reads them
	// first: a worker, or a statement of a set.
	input      bool
	capacity   int
	depth      func() int
	sends      atomic.Int64
	blocked    atomic.Int64 // sends that found the channel full
	blockedFor waitClock    // senders waiting on the full channel
	waitedFor  waitClock    // the receiver waiting on an empty channel
}

// EdgeSnapshot is an edge's state at one moment.
type EdgeSnapshot struct {
	Name           string  `json:"name"`
	Depth          int     `json:"depth"`
	Capacity       int     `json:"capacity"`
	Utilization    float64 `json:"utilization"`
	Sends          int64   `json:"sends"`
	BlockedSends   int64   `json:"blockedSends"`
	BlockedSeconds float64 `json:"blockedSeconds"`
	// ReceiveWaitSeconds is the time the receiver spent waiting for a message.
	ReceiveWaitSeconds float64 `json:"receiveWaitSeconds"`
	// Input says the edge carries a source's batches to what reads them
	// first: batches waiting in it are input not taken yet.
	Input bool `json:"input,omitempty"`
}

func (e *EdgeStats) snapshot() EdgeSnapshot {
	d := e.depth()
	now := time.Now()
	return EdgeSnapshot{
		Name: e.Name, Depth: d, Capacity: e.capacity,
		Utilization:  float64(d) / float64(e.capacity),
		Sends:        e.sends.Load(),
		BlockedSends: e.blocked.Load(), BlockedSeconds: e.blockedFor.read(now).Seconds(),
		ReceiveWaitSeconds: e.waitedFor.read(now).Seconds(),
		Input:              e.input,
	}
}

// histogram is a lock-free log-linear histogram of durations: 8 sub-buckets
// per power of two, so a quantile is within 12.5% of the true value.
type histogram struct {
	buckets [64 * 8]atomic.Int64
	total   atomic.Int64
}

func bucketOf(ns int64) int {
	if ns < 8 {
		return int(max(ns, 0))
	}
	u := uint64(ns)
	exp := bits.Len64(u) - 1 // ≥ 3
	sub := int(u>>(exp-3)) & 7
	return (exp-2)*8 + sub
}

// upper returns the largest value of bucket i.
func upper(i int) int64 {
	if i < 8 {
		return int64(i)
	}
	exp := i/8 + 2
	sub := i % 8
	return int64((8+sub+1)<<(exp-3)) - 1
}

// observe records a duration n times.
func (h *histogram) observe(ns int64, n int64) {
	h.buckets[bucketOf(ns)].Add(n)
	h.total.Add(n)
}

// quantile returns an upper bound of the q-quantile, 0 if empty.
func (h *histogram) quantile(q float64) time.Duration {
	total := h.total.Load()
	if total == 0 {
		return 0
	}
	rank := int64(q*float64(total)+0.5) - 1
	var seen int64
	for i := range h.buckets {
		seen += h.buckets[i].Load()
		if seen > rank {
			return time.Duration(upper(i))
		}
	}
	return time.Duration(upper(len(h.buckets) - 1))
}
