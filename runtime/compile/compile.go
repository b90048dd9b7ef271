// Package compile turns a StreamQuery spec into a checked, typed program:
// the structural checks of the API, every source's schema and the SQL, with
// each problem placed in the spec. It is what `engine validate`, `engine run`
// and the operator ask of a manifest, and it links no connector and no
// client (TestDependencies keeps it so), so that the operator can check
// queries without the engine's Kafka client.
package compile

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unsafe"

	corev1 "k8s.io/api/core/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/connector/schemas"
	"github.com/sluice-dev/sluice/runtime/format"
	"github.com/sluice-dev/sluice/runtime/sql"
	"github.com/sluice-dev/sluice/runtime/streamop"
	"github.com/sluice-dev/sluice/runtime/value"
)

// Plan checks a spec of one query (not a statement set, see PlanSet),
// defaulted (the caller's is left as it is), and plans its query. It returns the program and the
// columns of each source it reads; a nil error means the spec can run, and
// otherwise the error is the spec's v1alpha1.Problems.
func Plan(spec *v1alpha1.StreamQuerySpec) (*streamop.Program, map[string][]value.Column, error) {
	return plan(spec, (*v1alpha1.StreamQuerySpec).Validate)
}

// plan is Plan, checking the spec's structure with validate.
func plan(spec *v1alpha1.StreamQuerySpec, validate func(*v1alpha1.StreamQuerySpec) v1alpha1.Problems) (*streamop.Program, map[string][]value.Column, error) {
	if len(spec.Statements) > 0 {
		return nil, nil, errors.New("a statement set has a program per statement: plan it with PlanSet")
	}
	spec = spec.DeepCopy()
	spec.Default()
	ps := validate(spec)
	catalog := sql.Catalog{}
	tables := sql.Tables{}
	inputs := map[string][]value.Column{}
	namesBroken := false
	for i, src := range spec.Sources {
		cols, err := sourceSchema(src, i, &ps)
		if cols == nil {
			continue
		}
		namesBroken = namesBroken || !distinctNames(cols)
		if err == nil {
			inputs[src.Name] = cols
		}
		catalog[src.Name] = cols
		if src.Table != nil {
			t := sql.Table{Key: src.Table.Key}
			if et := src.EventTime; et != nil {
				t.Time = et.Column
			}
			tables[src.Name] = t
		}
	}
	if spec.Query == "" || namesBroken {
		// Validate reported the missing query, or the nameless or
		// twice-declared column, which a query would only report again.
		return nil, nil, ps
	}
	// The query is planned even when other fields have problems, so that one
	// run of validate reports them all.
	root, err := sql.PlanTables(spec.Query, catalog, tables)
	if err != nil {
		return nil, nil, append(ps, queryProblems(err)...)
	}
	if len(ps) > 0 {
		return nil, nil, ps
	}
	prog, err := streamop.Compile(root)
	if err != nil {
		ps.Add("spec.query", "%v", err)
		return nil, nil, ps
	}
	for _, c := range prog.Output {
		if c.Type.Kind == value.KindInterval {
			ps.Add("spec.query", "output column %s is an interval, which sinks cannot write; cast it or extract epoch from it", c.Name)
		}
	}
	if k := spec.Sink.Kafka; k != nil && k.Delivery == v1alpha1.ExactlyOnce && prog.Changes() {
		// An aborted transaction takes its partitions back to their last
		// commit; an outer group holds rows built from many.
		ps.Add("spec.sink.kafka.delivery", "exactlyOnce is not supported yet for %s: use atLeastOnce with spec.state", changesOf(prog))
	} else if k != nil && k.Delivery == v1alpha1.ExactlyOnce && prog.AfterJoin() {
		// An aborted transaction takes its partitions back to their last
		// commit, and the state built from them with them; a joined row
		// is built from two partitions, which no one owns.
		ps.Add("spec.sink.kafka.delivery", "exactlyOnce is not supported yet for an aggregation, OVER or top-N of a join's rows: use atLeastOnce with spec.state")
	} else if k != nil && k.Delivery == v1alpha1.ExactlyOnce && prog.MoreStreams() {
		// The rows joined so far wait for the next stream as state, each
		// built from several partitions, which no one owns.
		ps.Add("spec.sink.kafka.delivery", "exactlyOnce is not supported yet for a join of more than two streams: use atLeastOnce with spec.state")
	} else if k != nil && k.Delivery == v1alpha1.ExactlyOnce && prog.PairsLookedUp() {
		// Pairs wait for the tables as state, each built from two
		// partitions, which no one owns.
		ps.Add("spec.sink.kafka.delivery", "exactlyOnce is not supported yet for a join of two streams with tables: use atLeastOnce with spec.state")
	}
	if k := spec.Sink.Kafka; k != nil && k.Delivery == v1alpha1.ExactlyOnce && prog.Stateful() && spec.State == nil {
		ps.Add("spec.sink.kafka.delivery", "exactlyOnce for a stateful query commits its state with its results and offsets: add spec.state (e.g. state: {checkpointInterval: 1s}), which keeps checkpoints in the Kafka topic <group>.checkpoints")
	}
	for i, src := range spec.Sources {
		if src.Table != nil && !slices.Contains(prog.JoinedTables(), src.Name) && slices.Contains(prog.Sources(), src.Name) {
			// Its tombstones would come out as rows of NULLs, and each
			// engine would write every row.
			ps.Add(fmt.Sprintf("spec.sources[%d].table", i), "%s is a table, which a query reads only joined with a stream: stream JOIN %[1]s ON ...; remove table to read it as a stream", src.Name)
		}
		if et := src.EventTime; et != nil && et.AllowedLateness.Duration > 0 {
			if msg := latenessProblem(prog); msg != "" {
				ps.Add(fmt.Sprintf("spec.sources[%d].eventTime.allowedLateness", i), "%s", msg)
			}
		}
		t := prog.EventTimeOf(src.Name)
		if et := src.EventTime; t >= 0 && et != nil && et.Column != inputs[src.Name][t].Name {
			ps.Add(fmt.Sprintf("spec.sources[%d].eventTime.column", i), "is %s, but the query's event time for %s is %s; they must be the same column", et.Column, src.Name, inputs[src.Name][t].Name)
		}
	}
	if _, err := SinkSchema(spec.Sink, prog.Output); err != nil {
		ps.Add("spec.sink.format", "%v", err)
	}
	if k := spec.Sink.Kafka; k != nil && k.Key != "" && !slices.ContainsFunc(prog.Output, func(c value.Column) bool { return c.Name == k.Key }) {
		ps.Add("spec.sink.kafka.key", "%q is not an output column of the query", k.Key)
	}
	if prog.Continuous() {
		checkContinuous(spec, prog, &ps)
	}
	if ei := spec.Runtime.EmitInterval; ei != nil && ei.Duration > 0 && !emitsChanges(prog) {
		ps.Add("spec.runtime.emitInterval", "%s", emitChangesOnly)
	}
	checkChannels(spec, bufferEdges(spec, prog), bufferWidth(prog, inputs), &ps)
	checkMetrics(spec.Metrics, prog.Output, &ps)
	switch several := spec.SeveralEngines(); {
	case spec.State == nil:
	case !prog.Stateful():
		ps.Add("spec.state", "the query keeps no state to checkpoint: it has no GROUP BY, OVER or join")
	case spec.State.TTL != nil && ttlProblem(prog) != "":
		ps.Add("spec.state.ttl", "%s", ttlProblem(prog))
	case several && prog.TableJoin() && !prog.PairsLookedUp():
		// An interval join is refused on several engines below, with
		// tables or without.
		ps.Add("spec.state", "%s", tableStateOnOneEngine)
	}
	if p, ok := StatePartitioning(spec, prog, ""); ok && spec.SeveralEngines() {
		field := "spec.replicas"
		if spec.Autoscaling != nil {
			field = "spec.autoscaling"
		}
		switch {
		case !p.Whole && !p.Repartition:
			ps.Add(field, "%s", p.Problem)
		case p.Repartition && spec.State == nil:
			// Rebuilt by replay, a partition of the repartition topic,
			// whose rows of many windows are interleaved, would write
			// again windows already written, with part of their rows.
			ps.Add(field, "on several engines, this query's rows are repartitioned by %s through Kafka, and each partition's state must move between engines with its checkpoints: add spec.state (e.g. state: {checkpointInterval: 1s}), which keeps them in the topic <group>.checkpoints", p.Keys)
		}
	}
	if len(ps) > 0 {
		return nil, nil, ps
	}
	return prog, inputs, nil
}

// lateWindowsOnly and emitChangesOnly say what allowedLateness and
// emitInterval apply to; tableStateOnOneEngine why spec.state of a table
// join is refused on several engines.
const (
	tableStateOnOneEngine = "on several engines, state moves with its partitions for windows and moving aggregates; a table join's table is every engine's: checkpoint it on one engine"
	lateWindowsOnly       = "applies to queries over TUMBLE or HOP windows only"
	emitChangesOnly       = "applies to a GROUP BY without a window, whose groups' rows are written again at each change; windows write theirs when they close, and other queries each row once"
)

// latenessProblem says why a source's eventTime.allowedLateness does not
// apply to prog, or "" if it does.
func latenessProblem(prog *streamop.Program) string {
	switch {
	case prog.ProcTime():
		return "windows of processing time (PROCTIME()) take every record when it is processed: none is late"
	case prog.WindowJoin():
		return "a window join joins each window's rows once, when both sides have closed it, and a late record would change a row already joined: remove allowedLateness, or raise eventTime.maxOutOfOrderness to wait for late records before windows close"
	case prog.AfterJoin():
		return "a join drops late records before its rows reach what reads them: remove allowedLateness, or raise eventTime.maxOutOfOrderness to wait for late records"
	case prog.Ranked() && !prog.Continuous():
		return "a window top-N ranks a window's rows once, when the window closes, and a late record would change ranks already written: remove allowedLateness, or raise eventTime.maxOutOfOrderness to wait for late records before windows close"
	case !prog.Windowed():
		return lateWindowsOnly
	}
	return ""
}

// ttlChangesOnly says what spec.state.ttl applies to.
const ttlChangesOnly = "applies to a GROUP BY without a window, whose groups live until they expire; the state of windows, OVER frames and joins ends with their time bounds"

// ttlProblem says why spec.state.ttl does not apply to prog, or "" if it
// does.
func ttlProblem(prog *streamop.Program) string {
	switch {
	case !prog.Continuous():
		return ttlChangesOnly
	case prog.Changes():
		return fmt.Sprintf("is not supported yet for %s: an inner group that expired would leave its last row in the outer groups, or frames, for ever", changesOf(prog))
	case rankNeeded(prog):
		return "applies to a top-N without a window of one row per partition (rank <= 1): a partition that expired and starts again with fewer rows would leave its earlier rows at the ranks after, as the changelog has no deletes"
	}
	return ""
}

// changesOf names what prog, of a GROUP BY's rows (Changes), computes.
func changesOf(prog *streamop.Program) string {
	if prog.OverChanges() {
		return "OVER of a GROUP BY's rows"
	}
	return "an aggregation of a GROUP BY's rows"
}

// emitsChanges says prog writes a changelog that spec.runtime.emitInterval
// paces: a GROUP BY without a window.
func emitsChanges(prog *streamop.Program) bool { return prog.Continuous() && !prog.Distinct() }

// checkContinuous checks what a continuous aggregation (GROUP BY
// without a window) needs: its groups live for ever, so over Kafka, whose
// offsets a restart reads on from, they must be checkpointed, or the
// counts would start again from zero; and its result is a changelog, the
// latest row of each group, which a Kafka sink keys by the group.
func checkContinuous(spec *v1alpha1.StreamQuerySpec, prog *streamop.Program, ps *v1alpha1.Problems) {
	if spec.State == nil {
		for _, name := range prog.Sources() {
			if i := slices.IndexFunc(spec.Sources, func(s v1alpha1.Source) bool { return s.Name == name }); i >= 0 && spec.Sources[i].Kafka != nil {
				_, _, ranks := prog.RankKey()
				switch {
				case prog.OverChanges():
					ps.Add("spec.state", "OVER of a GROUP BY's rows keeps the groups and their rows for as long as the query runs: over Kafka, add spec.state (e.g. state: {checkpointInterval: 10s}) so that they outlive a restart, which would otherwise start every group and frame again from nothing")
				case prog.Distinct():
					ps.Add("spec.state", "SELECT DISTINCT keeps the rows it has written for as long as the query runs (or spec.state.ttl): over Kafka, add spec.state (e.g. state: {checkpointInterval: 10s}) so that they outlive a restart, which would otherwise write them again")
				case ranks:
					ps.Add("spec.state", "a top-N without a window keeps each partition's top rows for as long as the query runs (or spec.state.ttl): over Kafka, add spec.state (e.g. state: {checkpointInterval: 10s}) so that they outlive a restart, which would otherwise rank every partition again from nothing")
				default:
					ps.Add("spec.state", "a GROUP BY without a window keeps its groups for as long as the query runs: over Kafka, add spec.state (e.g. state: {checkpointInterval: 10s}) so that they outlive a restart, which would otherwise start every group again from nothing")
				}
				break
			}
		}
	}
	k := spec.Sink.Kafka
	if k == nil || prog.Distinct() {
		return // SELECT DISTINCT writes each row once: a stream, keyed as any
	}
	key, _ := prog.StateKey()
	if keys, ok := prog.OverChangesKeys(); ok {
		group := groupHint(keys)
		switch {
		case k.Key == "":
			ps.Add("spec.sink.kafka.key", "OVER of a GROUP BY's rows writes each group's row again whenever it, or a row its frames hold, changes: set key to the output column that names the inner group (%s), so that readers, and compaction, keep the latest row of each", group)
		case !prog.NamesGroup(k.Key):
			ps.Add("spec.sink.kafka.key", "%q does not name the inner group: the key of OVER of a GROUP BY's rows is computed from the inner group's keys alone, all of them (%s)", k.Key, group)
		}
		return
	}
	if rank, needed, ok := prog.RankKey(); ok {
		names := strings.Join(key.Keys, ", ")
		if needed {
			names += ", and " + rank
		}
		switch {
		case k.Key == "":
			ps.Add("spec.sink.kafka.key", "a top-N without a window writes the row of each rank again whenever it changes: set key to the output column that names the partition and rank (PARTITION BY %s), so that readers, and compaction, keep the latest row of each", names)
		case !prog.NamesGroup(k.Key):
			ps.Add("spec.sink.kafka.key", "%q does not name the partition and rank: the key of a top-N without a window is computed from its PARTITION BY columns alone, all of them, and its rank if it keeps more than one row (%s)", k.Key, names)
		}
		return
	}
	group := groupHint(key.Keys)
	switch {
	case k.Key == "":
		ps.Add("spec.sink.kafka.key", "a GROUP BY without a window writes each group's row again whenever it changes: set key to the output column that names the group (%s), so that readers, and compaction, keep the latest row of each", group)
	case !prog.NamesGroup(k.Key):
		ps.Add("spec.sink.kafka.key", "%q does not name the group: the key of a GROUP BY without a window is computed from the group's keys alone, all of them (%s)", k.Key, group)
	}
}

// groupHint says what names the groups of GROUP BY keys, for a Kafka
// sink's key.
func groupHint(keys []string) string {
	switch len(keys) {
	case 0:
		return "one group of all rows: a constant, such as 'all' AS k"
	case 1:
		return "GROUP BY " + keys[0]
	}
	return "GROUP BY " + strings.Join(keys, ", ") + "; with several, an expression of them all, such as " + strings.Join(keys, " || '/' || ") + " AS k"
}

// rankNeeded reports whether prog is a top-N without a window that keeps
// more than one row per partition.
func rankNeeded(prog *streamop.Program) bool {
	_, needed, ok := prog.RankKey()
	return ok && needed
}

// Partitioning is how a stateful query's state is keyed against the
// partitions its engines divide.
type Partitioning struct {
	// Describe says it in a line, for engine validate.
	Describe string
	// Whole says each engine holds whole keys however many engines share
	// the partitions; Repartition, when not, that several engines pass the
	// rows on through the repartition topic, keyed by the state's key, so
	// that they do; Problem, when neither, why, and what to do.
	Whole       bool
	Repartition bool
	Problem     string
	// Keys and Topic, when Repartition, are what rows are keyed by and
	// the topic they go through.
	Keys, Topic string
}

// StatePartitioning returns the partitioning of a stateful query's state;
// ok is false for a stateless one. group is the query's consumer group,
// which names its repartition topic; empty when not known. Each engine
// holds the state of the partitions it reads, so a key whose rows are in
// partitions of two engines would be aggregated in two halves, both
// written, wrong. A table join holds the whole table on every engine and
// is keyed by nothing else.
func StatePartitioning(spec *v1alpha1.StreamQuerySpec, prog *streamop.Program, group string) (p Partitioning, ok bool) {
	if !prog.Stateful() {
		return Partitioning{}, false
	}
	const oneEngine = "run one engine (rows are repartitioned by key through Kafka for windowed and moving aggregates by a key, and interval joins, only)"
	key, isKeyed := prog.StateKey()
	switch {
	case prog.OverChanges():
		return Partitioning{
			Describe: "OVER of a GROUP BY's rows: one engine only",
			Problem:  "on several engines, each engine would hold the rows of the groups it aggregates, and a frame holds the rows of groups of every partition: run one engine for OVER of a GROUP BY's rows",
		}, true
	case prog.Changes():
		return Partitioning{
			Describe: "an aggregation of a GROUP BY's rows: one engine only",
			Problem:  "on several engines, each engine would aggregate the rows of the groups it holds, and an outer group holds the rows of inner groups of every partition: run one engine to aggregate a GROUP BY's rows",
		}, true
	case prog.WindowJoin():
		return Partitioning{
			Describe: "a window join: one engine only",
			Problem:  "on several engines, each engine would aggregate the partitions it reads, and a window join's sides are keyed by their own GROUP BYs, which no one repartition keeps together with the join's keys: run one engine for a window join",
		}, true
	case prog.AfterJoin():
		return Partitioning{
			Describe: "an aggregation, OVER or top-N of a join's rows: one engine only",
			Problem:  "on several engines, the rows of a join are each engine's, and their aggregation, OVER or top-N is keyed by other columns than the join's, which no one repartition keeps together: run one engine to aggregate or rank a join's rows",
		}, true
	case prog.MoreStreams():
		return Partitioning{
			Describe: "a join of more than two streams: one engine only",
			Problem:  "on several engines, an interval join's rows are repartitioned by its keys through Kafka, and a further stream is joined by other keys, which no one repartition keeps together: run one engine to join more than two streams",
		}, true
	case prog.PairsLookedUp():
		return Partitioning{
			Describe: "a join of two streams, then tables: one engine only",
			Problem:  "on several engines, an interval join's rows are repartitioned by its keys through Kafka, and the tables' rows, every engine's, are not: run one engine to join two streams with tables",
		}, true
	case prog.TemporalJoin():
		return Partitioning{
			Describe: "a join as of each row's time with a table: one engine only",
			Problem:  "on several engines, a partition that moves replays its rows on another engine, whose table may have forgotten the versions they join, being past them: run one engine for a join FOR SYSTEM_TIME AS OF",
		}, true
	case prog.TableJoin():
		return Partitioning{Describe: "a table join: every engine holds the whole of each table", Whole: true}, true
	case !isKeyed:
		return joinPartitioning(spec, prog, group), true
	case len(key.Keys) == 0 && prog.Ranked():
		return Partitioning{
			Describe: "a top-N of all groups or rows of each window: one engine only",
			Problem:  "on several engines, each engine ranks the partitions it reads, and this top-N ranks all groups or rows of a window together (its PARTITION BY has no key besides the window): " + oneEngine,
		}, true
	case len(key.Keys) == 0:
		return Partitioning{
			Describe: "one group of all rows: one engine only",
			Problem:  "on several engines, each engine aggregates the partitions it reads, and this query's state is one group of all rows (no key besides the window): " + oneEngine,
		}, true
	}
	keys := strings.Join(key.Keys, ", ")
	i := slices.IndexFunc(spec.Sources, func(s v1alpha1.Source) bool { return s.Name == key.Source })
	if i < 0 || spec.Sources[i].Kafka == nil {
		return Partitioning{Describe: fmt.Sprintf("keyed by %s, from %s, which engines do not divide: one engine only", keys, key.Source),
			Problem: fmt.Sprintf("source %s is read whole by every engine: run one engine", key.Source)}, true
	}
	src := &spec.Sources[i]
	if slices.Contains(key.Columns, "_partition") || slices.Contains(key.Columns, "_key") {
		// The partition itself, or the record key that chose it.
		return Partitioning{Describe: fmt.Sprintf("keyed by %s, which decide the partitions of source %s: each engine holds whole keys", keys, src.Name), Whole: true}, true
	}
	parts := src.PartitionColumns()
	how := "by " + strings.Join(parts, ", ") + " (kafka.partitionedBy)"
	switch {
	case len(parts) == 0:
		how = "by nothing the spec declares (no key column that is the whole record key in its schema, no kafka.partitionedBy)"
	case len(src.Kafka.PartitionedBy) == 0:
		how = "by its record key, " + strings.Join(parts, ", ")
	}
	p.Describe = fmt.Sprintf("keyed by %s; source %s is partitioned %s", keys, src.Name, how)
	missing := slices.ContainsFunc(parts, func(c string) bool { return !slices.Contains(key.Columns, c) })
	if p.Whole = len(parts) > 0 && !missing; p.Whole {
		p.Describe += ": each engine holds whole keys"
		return p, true
	}
	if len(src.Kafka.TopicNames()) == 1 {
		p.Repartition, p.Keys, p.Topic = true, keys, repartitionTopic(src, group)
		if spec.SeveralEngines() {
			p.Describe += fmt.Sprintf(": its rows are repartitioned by %s through the topic %s, so each engine holds whole keys", keys, p.Topic)
		} else {
			p.Describe += fmt.Sprintf(": one engine holds every key (on several, its rows would be repartitioned by %s through the topic %s)", keys, p.Topic)
		}
		return p, true
	}
	p.Describe += ": one engine only"
	p.Problem = fmt.Sprintf("on several engines, each engine aggregates the partitions it reads, so all rows of a key must be in one partition: the state is keyed by %s, and source %s is partitioned %s, and it reads several topics, which are not repartitioned. Declare spec.sources[%d].kafka.partitionedBy if its producer partitions by columns among the keys, or run one engine",
		keys, src.Name, how, i)
	return p, true
}

// joinPartitioning is the partitioning of an interval join's state. The
// consumer group assigns the partitions of its two topics apart, even
// where both are partitioned by the join's keys, so on several engines the
// rows of both sources always go through one repartition topic, keyed by
// the join's keys.
func joinPartitioning(spec *v1alpha1.StreamQuerySpec, prog *streamop.Program, group string) Partitioning {
	keys := prog.JoinKeys()
	var topic string
	for _, name := range prog.Sources() {
		i := slices.IndexFunc(spec.Sources, func(s v1alpha1.Source) bool { return s.Name == name })
		src := &spec.Sources[i]
		if src.Kafka == nil || len(src.Kafka.TopicNames()) != 1 {
			return Partitioning{
				Describe: fmt.Sprintf("an interval join keyed by %s: one engine only", keys),
				Problem:  fmt.Sprintf("on several engines, an interval join's rows are repartitioned by its keys through Kafka, which needs each source to be one Kafka topic: source %s is not; run one engine", name),
			}
		}
		if topic == "" {
			// The join's rows go through its first source's topic: both
			// sources of one query share its consumer group.
			topic = repartitionTopic(src, group)
		}
	}
	p := Partitioning{Repartition: true, Keys: keys, Topic: topic}
	if spec.SeveralEngines() {
		p.Describe = fmt.Sprintf("an interval join keyed by %s: the rows of both sources are repartitioned by the keys through the topic %s, so each engine holds both sides of whole keys", keys, topic)
	} else {
		p.Describe = fmt.Sprintf("an interval join keyed by %s: one engine holds every key (on several, the rows of both sources would be repartitioned by the keys through the topic %s)", keys, topic)
	}
	return p
}

// repartitionTopic names the repartition topic of a source's rows, as the
// Kafka connector makes it: of the source's group, else the query's.
func repartitionTopic(src *v1alpha1.Source, group string) string {
	switch {
	case src.Kafka.Group != "":
		group = src.Kafka.Group
	case group == "":
		group = "<group>"
	}
	return v1alpha1.RepartitionTopic(group)
}

// bufferEdges returns the channels of prog's pipeline that checkChannels
// counts: one edge into each worker, at least one worker when the
// partitions are not known yet, and one out of them; a stateful plan has
// one more.
func bufferEdges(spec *v1alpha1.StreamQuerySpec, prog *streamop.Program) int64 {
	edges := int64(max(spec.Runtime.Parallelism, 1)) + 1
	if prog.Stateful() {
		edges++
	}
	return edges
}

// bufferWidth returns the widest row of prog's pipeline: its output's or
// a source's.
func bufferWidth(prog *streamop.Program, inputs map[string][]value.Column) int {
	width := prog.OutputWidth()
	for _, cols := range inputs {
		width = max(width, len(cols))
	}
	return width
}

// checkChannels refuses a spec whose edges channels, full, would hold more
// than the engine container's memory limit, when one is set. The estimate
// is a floor: every edge's capacity of batches of batchSize rows of width
// values, each its 32 bytes before any string it holds; readers, workers,
// state and the sink's writes in flight come on top.
func checkChannels(spec *v1alpha1.StreamQuerySpec, edges int64, width int, ps *v1alpha1.Problems) {
	limit, ok := spec.Resources.Limits[corev1.ResourceMemory]
	if !ok || limit.IsZero() {
		return
	}
	rt := spec.Runtime
	capacity, batch := int64(rt.ChannelCapacity), int64(rt.BatchSize)
	need := edges * capacity * batch * int64(width) * int64(unsafe.Sizeof(value.Value{}))
	if need > limit.Value() {
		ps.Add("spec.runtime", "the channels alone need at least %s when full (%d edges × %d batches × %d records × %d columns × %d bytes), more than the memory limit of %s in spec.resources.limits.memory; lower channelCapacity or batchSize, or raise the limit",
			mebibytes(need), edges, capacity, batch, width, unsafe.Sizeof(value.Value{}), mebibytes(limit.Value()))
	}
}

// targetLabels are the labels Prometheus gives every series of an engine
// it scrapes through the operator's ServiceMonitor: a metric's label of
// the same name would be renamed exported_<name>.
var targetLabels = []string{"namespace", "pod", "service", "endpoint", "container", "job", "instance", "sluice_dev_query"}

// checkMetrics checks spec.metrics against the query's output columns.
func checkMetrics(ms []v1alpha1.UserMetric, out []value.Column, ps *v1alpha1.Problems) {
	column := func(name string) (value.Column, bool) {
		i := slices.IndexFunc(out, func(c value.Column) bool { return c.Name == name })
		if i < 0 {
			return value.Column{}, false
		}
		return out[i], true
	}
	names := func() string {
		n := make([]string, len(out))
		for i, c := range out {
			n[i] = c.Name
		}
		return strings.Join(n, ", ")
	}
	for i, m := range ms {
		f := fmt.Sprintf("spec.metrics[%d]", i)
		if m.Value != "" {
			switch c, ok := column(m.Value); {
			case !ok:
				ps.Add(f+".value", "%q is not an output column of the query (it has %s)", m.Value, names())
			case !c.Type.Numeric():
				ps.Add(f+".value", "column %s is %s; a metric's value is a number (int, double or decimal)", c.Name, c.Type)
			}
		}
		for j, l := range m.Labels {
			lf := fmt.Sprintf("%s.labels[%d]", f, j)
			switch _, ok := column(l); {
			case !ok:
				ps.Add(lf, "%q is not an output column of the query (it has %s)", l, names())
			case !labelName.MatchString(l) || strings.HasPrefix(l, "__"):
				ps.Add(lf, "%q is not a Prometheus label name: name the column with letters, digits and _ (AS ...)", l)
			case slices.Contains(targetLabels, l):
				ps.Add(lf, "%q is a label Prometheus gives every engine series, which would rename this one exported_%s: name the column otherwise (AS ...)", l, l)
			}
		}
	}
}

var labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

func mebibytes(n int64) string { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) }

// sourceSchema resolves a source's columns: its declared schema, or its
// generator's.
func sourceSchema(src v1alpha1.Source, i int, ps *v1alpha1.Problems) ([]value.Column, error) {
	f := fmt.Sprintf("spec.sources[%d]", i)
	if src.JSONSchema != "" {
		fromValue := slices.ContainsFunc(src.Schema, func(c v1alpha1.Column) bool { return !c.Key && c.Header == "" })
		if (src.Format != "" && src.Format != v1alpha1.FormatJSON) || src.Datagen != nil {
			ps.Add(f+".jsonSchema", "checks the records of a source of format json read from a file, stdin or Kafka")
		} else if src.Kafka != nil && !fromValue {
			ps.Add(f+".jsonSchema", "checks record values, and this source reads no column from them, all from the key or headers")
		} else if _, err := format.CompileJSONSchema(src.JSONSchema); err != nil {
			ps.Add(f+".jsonSchema", "%v", err)
		}
	}
	if src.Datagen != nil && len(src.Schema) == 0 {
		cols, err := schemas.Generator(src.Datagen.Generator)
		if err != nil {
			ps.Add(f+".datagen.generator", "%v", err)
		}
		return cols, err
	}
	if subject := src.LatestSchemaSubject(); subject != "" {
		// connector.Registry.ResolveSchemas reads it before the query is
		// planned, unless the source has other problems.
		field, _, reg := src.FormatSchema()
		err := fmt.Errorf("the columns are the fields of the latest schema of subject %s at %s, which is read once the source has no other problem", subject, reg.URL)
		ps.Add(f+"."+field+".registry", "%v", err)
		return nil, err
	}
	if field, schema, _ := src.FormatSchema(); schema != "" && len(src.Schema) == 0 {
		cols, err := formatColumns(&src)
		if err != nil {
			ps.Add(f+"."+field+".schema", "%v", err)
			return nil, err
		}
		has := func(name string) bool {
			return slices.ContainsFunc(cols, func(c value.Column) bool { return c.Name == name })
		}
		if et := src.EventTime; et != nil && !has(et.Column) {
			ps.Add(f+".eventTime.column", "column %q is not a field of %s.schema", et.Column, field)
		}
		for j, name := range src.KafkaPartitionedBy() {
			if !has(name) {
				ps.Add(fmt.Sprintf("%s.kafka.partitionedBy[%d]", f, j), "%q is not a field of %s.schema", name, field)
			}
		}
		return withKafkaMeta(src, f, cols, ps), nil
	}
	cols := make([]value.Column, len(src.Schema))
	var firstErr error
	for j, c := range src.Schema {
		t, err := value.ParseType(c.Type)
		if err != nil {
			// The column stays, typed NULL, so that the query is still checked
			// without an error for every use of it.
			hint := ""
			if strings.HasPrefix(c.Type, "decimal(") && !strings.Contains(c.Type, ")") {
				// In a flow mapping, {name: p, type: decimal(19,4)}, the comma
				// ends the value.
				hint = `; quote a type with a comma in it: "decimal(p,s)"`
			}
			ps.Add(fmt.Sprintf("%s.schema[%d].type", f, j), "%v%s", err, hint)
			firstErr = err
		}
		cols[j] = value.Column{Name: c.Name, Type: t}
	}
	if field, schema, _ := src.FormatSchema(); schema != "" && firstErr == nil {
		// The declared columns read from the value must be fields of the
		// format's schema, of types that read as theirs.
		var valueCols []value.Column
		for j, c := range src.Schema {
			if !c.Key && c.Header == "" {
				valueCols = append(valueCols, cols[j])
			}
		}
		if err := checkFormatColumns(&src, valueCols); err != nil {
			ps.Add(f+"."+field+".schema", "%v", err)
			firstErr = err
		}
	}
	return withKafkaMeta(src, f, cols, ps), firstErr
}

// withKafkaMeta appends a Kafka source's metadata columns to the columns of
// its records, and checks the source's event time column.
func withKafkaMeta(src v1alpha1.Source, f string, cols []value.Column, ps *v1alpha1.Problems) []value.Column {
	if src.Kafka != nil {
		// A Kafka record's key, partition, offset and timestamp are columns
		// too, after the schema's. Schema columns read from the key or a
		// header (Column.Key, Column.Header) keep their declared place.
		for _, m := range schemas.KafkaMeta {
			if slices.ContainsFunc(cols, func(c value.Column) bool { return c.Name == m.Name }) {
				ps.Add(f+".schema", "column %s is reserved for the Kafka record's metadata", m.Name)
			}
		}
		cols = append(cols, schemas.KafkaMeta...)
	}
	if et := src.EventTime; et != nil {
		for _, c := range cols {
			if c.Name == et.Column && c.Type.Kind != value.KindTimestamp && c.Type.Kind != value.KindNull {
				ps.Add(f+".eventTime.column", "column %s is %s; event time must be a timestamp", c.Name, c.Type)
			}
		}
	}
	return cols
}

// distinctNames reports whether every column has a name of its own.
func distinctNames(cols []value.Column) bool {
	seen := make(map[string]bool, len(cols))
	for _, c := range cols {
		if c.Name == "" || seen[c.Name] {
			return false
		}
		seen[c.Name] = true
	}
	return true
}

// formatColumns returns the columns of a source of format avro or
// protobuf that come from its schema.
func formatColumns(src *v1alpha1.Source) ([]value.Column, error) {
	if src.Format == v1alpha1.FormatAvro {
		return format.AvroColumns(src.Avro.Schema)
	}
	return format.ProtobufColumns(src.Protobuf.Schema, src.Protobuf.Message)
}

// checkFormatColumns checks the declared columns of a source of format
// avro or protobuf against its schema.
func checkFormatColumns(src *v1alpha1.Source, cols []value.Column) error {
	if src.Format == v1alpha1.FormatAvro {
		return format.CheckAvroColumns(cols, src.Avro.Schema)
	}
	return format.CheckProtobufColumns(cols, src.Protobuf.Schema, src.Protobuf.Message)
}

// SinkSchema returns the schema of a sink's records of format avro or
// protobuf for the output columns, or "" for other formats.
func SinkSchema(sink *v1alpha1.Sink, out []value.Column) (string, error) {
	switch sink.Format {
	case v1alpha1.FormatAvro:
		return format.AvroSchemaOf(out)
	case v1alpha1.FormatProtobuf:
		return format.ProtobufSchemaOf(out)
	}
	return "", nil
}

// queryProblems are the problems of spec.query of an error of the SQL
// front end.
func queryProblems(err error) v1alpha1.Problems {
	var ps v1alpha1.Problems
	for _, e := range sql.AsErrors(err) {
		ps = append(ps, v1alpha1.Problem{Field: "spec.query", Offset: e.Offset, Message: e.Msg})
	}
	if len(ps) == 0 {
		ps.Add("spec.query", "%v", err)
	}
	return ps
}

// CheckUnplanned checks what can be checked of a spec that cannot be
// planned yet, some of whose sources take their columns from their
// registries' latest schemas (v1alpha1.StreamQuerySpec.LatestSchemaSources),
// which only its engines read: its structure, and the query's syntax.
func CheckUnplanned(spec *v1alpha1.StreamQuerySpec) error {
	spec = spec.DeepCopy()
	spec.Default()
	ps := spec.Validate()
	for i, one := range spec.StatementSpecs() {
		if one.Query == "" {
			continue
		}
		if err := sql.CheckSyntax(one.Query); err != nil {
			for _, p := range queryProblems(err) {
				p.Field = spec.StatementField(i, p.Field)
				ps = append(ps, p)
			}
		}
	}
	if len(ps) > 0 {
		return ps
	}
	return nil
}

// PlanRead plans spec once connector.Registry.ResolveSchemas has read the
// latest schemas its sources take their columns from into it: resolved
// names those sources, and unread is its error. When some could not be
// read, the query is not planned (a source without its columns would fail
// it everywhere): the error is why they could not, and CheckUnplanned's
// problems. A query that keeps state of such a source's rows
// from one run or engine to another (spec.state, several engines) is
// refused: a new version of the schema, taken when an engine starts, would
// change its columns, and the state's.
func PlanRead(spec *v1alpha1.StreamQuerySpec, resolved []string, unread error) (*streamop.Program, map[string][]value.Column, error) {
	if unread != nil {
		var ps, more v1alpha1.Problems
		if !errors.As(unread, &ps) {
			return nil, nil, unread
		}
		errors.As(CheckUnplanned(spec), &more)
		return nil, nil, append(ps, more...)
	}
	prog, inputs, err := Plan(spec)
	if err != nil || len(resolved) == 0 || !prog.Stateful() || (spec.State == nil && !spec.SeveralEngines()) {
		return prog, inputs, err
	}
	return nil, nil, changingSchemaProblems(spec, resolved)
}

// changingSchemaProblems refuse a query that keeps state of the rows of
// the sources resolved, whose columns are their registries' latest
// schemas, beyond one engine's run.
func changingSchemaProblems(spec *v1alpha1.StreamQuerySpec, resolved []string) v1alpha1.Problems {
	var ps v1alpha1.Problems
	for i, src := range spec.Sources {
		if slices.Contains(resolved, src.Name) {
			field, _, _ := src.FormatSchema()
			ps.Add(fmt.Sprintf("spec.sources[%d].%s.registry", i, field), "the columns are the fields of the registry's latest schema, read as each engine starts, which a new version would change; the query keeps state of its rows (%s), which would then not read: declare the columns, or give %s.schema", keeps(spec), field)
		}
	}
	return ps
}

// keeps says where a stateful query keeps its state beyond an engine's run.
func keeps(spec *v1alpha1.StreamQuerySpec) string {
	if spec.State != nil {
		return "spec.state checkpoints it"
	}
	return "its engines pass it, and its rows, between them"
}
