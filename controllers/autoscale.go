package controllers

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// The autoscaler sizes a Continuous query's engines from the figures they
// report at each poll, as the Horizontal Pod Autoscaler does from metrics:
// each poll gives a recommendation, the engines the lag asks for; engines
// are added up to the fewest recommended over the scale-up window and
// removed down to the most recommended over the scale-down window, at most
// maxStep at once. The recommendations are the operator's memory, not the
// status: a new operator starts its windows afresh.

// engineWarmUp is how long an engine must have run before its figures
// count: its rates are over the last 10 s.
const engineWarmUp = 10 * time.Second

// lagTolerance is the band around targetLagSeconds within which the
// engines are enough: a lag a tenth off the target changes nothing.
const lagTolerance = 0.1

// recommendation is the engines one poll asked for, and why.
type recommendation struct {
	at      time.Time
	engines int32
	why     string
}

// recommendations keeps each query's recent recommendations.
type recommendations struct {
	mu      sync.Mutex
	byQuery map[types.NamespacedName][]recommendation
}

// add records r and returns the query's recommendations of the last keep,
// and the newest before: it says whether they cover all of keep.
func (rs *recommendations) add(q types.NamespacedName, r recommendation, keep time.Duration) []recommendation {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.byQuery == nil {
		rs.byQuery = map[types.NamespacedName][]recommendation{}
	}
	h := append(rs.byQuery[q], r)
	first := 0
	for first+1 < len(h) && r.at.Sub(h[first+1].at) >= keep {
		first++
	}
	h = slices.Clone(h[first:])
	rs.byQuery[q] = h
	return slices.Clone(h)
}

// forget drops a query's recommendations: after a change of engines, whose
// figures were of the old number, and for a query not autoscaled.
func (rs *recommendations) forget(q types.NamespacedName) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	delete(rs.byQuery, q)
}

// autoscale decides the engines of an autoscaled query from this poll's
// reports, the status observeEngines folded from them, and the recent
// polls, and fills status.autoscaling; it returns
// the engines to run, current when nothing changes, and why. A poll during
// a rollout recommends nothing; one in which some engine did not answer,
// or has not run a rate window yet, may add engines but not remove any: an
// engine starved of CPU may be too slow to answer exactly when more are
// needed, and the lag of those that answer is a floor. A change is
// recorded (scaled) once made.
func (r *StreamQueryReconciler) autoscale(sq *v1alpha1.StreamQuery, old, status *v1alpha1.StreamQueryStatus, reports []engineReport, current int32, rollingOut bool) (int32, string) {
	key := types.NamespacedName{Namespace: sq.Namespace, Name: sq.Name}
	a := sq.Spec.Autoscaling
	if a == nil || sq.Spec.Suspend {
		r.recommended.forget(key)
		return current, ""
	}
	st := &v1alpha1.AutoscalingStatus{DesiredReplicas: current}
	if o := old.Autoscaling; o != nil {
		st.LastScaleTime, st.LastScaleReason, st.Partitions, st.Limit = o.LastScaleTime, o.LastScaleReason, o.Partitions, o.Limit
	}
	status.Autoscaling = st
	warm := func(rep engineReport) bool { return rep.doc != nil && rep.doc.UptimeSeconds >= engineWarmUp.Seconds() }
	if rollingOut || !slices.ContainsFunc(reports, warm) {
		return current, ""
	}
	complete := int32(len(reports)) == current && !slices.ContainsFunc(reports, func(rep engineReport) bool { return !warm(rep) })
	if n := partitions(reports); n > 0 {
		st.Partitions = n
	}
	upper, limit := a.MaxReplicas, fmt.Sprintf("maxReplicas %d", a.MaxReplicas)
	if st.Partitions > 0 && st.Partitions < upper {
		upper, limit = max(st.Partitions, a.MinReplicas), fmt.Sprintf("the sources' %d partitions: more engines would get none", st.Partitions)
	}
	want, why := lagWants(a, current, status)
	if bp := status.Backpressure; bp != nil && a.Backpressure.Rank() > 0 && bp.Level.Rank() >= a.Backpressure.Rank() && want <= current {
		want, why = current+1, fmt.Sprintf("backpressure %s, at or above %s", bp.Level, a.Backpressure)
	}
	if !complete && want < current {
		want, why = current, "not every engine answered with its figures: none is removed"
	}
	st.Limit = ""
	if want > upper {
		st.Limit = fmt.Sprintf("%d engines asked for (%s), held at %d by %s", want, why, upper, limit)
	}
	want = min(max(want, a.MinReplicas), upper)

	now := r.now()
	up, down := a.ScaleUpStabilization.Duration, a.ScaleDownStabilization.Duration
	history := r.recommended.add(key, recommendation{at: now, engines: want, why: why}, max(up, down))
	desired, reason := current, ""
	if lowest, ok := over(history, now, up, slices.MinFunc); ok && lowest.engines > current {
		desired, reason = min(lowest.engines, current+a.MaxStep), lowest.why
	} else if highest, ok := over(history, now, down, slices.MaxFunc); ok && highest.engines < current {
		desired, reason = max(highest.engines, current-a.MaxStep), highest.why
	}
	return desired, reason
}

// scaled records a change of engines the autoscaler made: on the status,
// as an event, and by starting its windows afresh, since the figures so
// far were of the old number of engines.
func (r *StreamQueryReconciler) scaled(sq *v1alpha1.StreamQuery, status *v1alpha1.StreamQueryStatus, from, to int32, reason string) {
	r.recommended.forget(types.NamespacedName{Namespace: sq.Namespace, Name: sq.Name})
	at := metav1.NewTime(r.now().Truncate(time.Second))
	st := status.Autoscaling
	st.DesiredReplicas, st.LastScaleTime = to, &at
	st.LastScaleReason = fmt.Sprintf("%d → %d engines: %s", from, to, reason)
	if r.Recorder != nil {
		r.Recorder.Eventf(sq, nil, corev1.EventTypeNormal, "Scaled", "Autoscale", "%s", st.LastScaleReason)
	}
}

// over returns the pick (the fewest or the most engines) of the
// recommendations within window before now, once they cover it: the
// oldest kept is at least window old, or window is 0.
func over(history []recommendation, now time.Time, window time.Duration, pick func([]recommendation, func(a, b recommendation) int) recommendation) (recommendation, bool) {
	var in []recommendation
	covered := window == 0
	for _, h := range history {
		if now.Sub(h.at) <= window {
			in = append(in, h)
		}
		if now.Sub(h.at) >= window {
			covered = true
		}
	}
	if !covered || len(in) == 0 {
		return recommendation{}, false
	}
	return pick(in, func(a, b recommendation) int { return int(a.engines - b.engines) }), true
}

// lagWants is what the lag asks for: the engines that would catch up
// within targetLagSeconds, if the time to catch up scales with their
// number (the Horizontal Pod Autoscaler's proportion); the current engines
// within the tolerance band, or when the lag says nothing (no input rate).
func lagWants(a *v1alpha1.AutoscalingSpec, current int32, status *v1alpha1.StreamQueryStatus) (int32, string) {
	lag := status.Lag
	if lag == nil || lag.Records == nil {
		return current, "no consumer lag reported"
	}
	if lag.Seconds == nil {
		if *lag.Records == 0 {
			return a.MinReplicas, "no lag"
		}
		return current, fmt.Sprintf("%d records behind and reading nothing: more engines would not help", *lag.Records)
	}
	ratio := float64(*lag.Seconds) / float64(a.TargetLagSeconds)
	if math.Abs(ratio-1) <= lagTolerance {
		return current, fmt.Sprintf("lag %ds, at the target %ds", *lag.Seconds, a.TargetLagSeconds)
	}
	want := int32(min(math.Ceil(float64(current)*ratio), math.MaxInt32))
	return want, fmt.Sprintf("lag %ds (%d records) against the target %ds", *lag.Seconds, *lag.Records, a.TargetLagSeconds)
}

// partitions counts the source partitions the engines read.
func partitions(reports []engineReport) int32 {
	type partition struct {
		source, topic string
		n             int32
	}
	seen := map[partition]bool{}
	for _, rep := range reports {
		if rep.doc == nil {
			continue
		}
		for _, s := range rep.doc.Sources {
			seen[partition{s.Source, s.Topic, s.Partition}] = true
		}
	}
	return int32(len(seen))
}
