package streamop

import (
	"cmp"
	"math"
	"slices"

	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/plan"
	"github.com/sluice-dev/sluice/runtime/value"
)

// temporalJoin joins a stream with a versioned table as of each stream
// row's event time (FOR SYSTEM_TIME AS OF): the row joins the version of
// its key's table row that was current then, the latest whose version
// time is not after the row's. A row waits until the watermark passes its
// time, since table versions up to it may still come, and until the table
// is loaded. The result does not depend on how fast either source is
// read, as long as no table partition is idle with versions to come.
// Further tables joined as of the row's time too (lookup.versions) are
// looked up at its time when it is written; those joined as read, as they
// are then.
type temporalJoin struct {
	*tableJoin
	versions *versioned // the first table's
	// tables are the versions of every table joined as of a time: the
	// first's, then the further tables' (lookup.versions).
	tables  []*versioned
	pending asOfRows
	seq     uint64
	// sweptAt is the floor of the last sweep of every key's versions, and
	// rows the rows taken since: a sweep visits every key, so it waits
	// for rows enough to pay for it.
	sweptAt int64
	rows    int
}

// versioned is a table's rows as versions by time, for a join as of a
// time: each key's versions, by version time, arrival order within one
// time: the latest at or before the floor (the one a row not yet late
// may still join), and those after it.
type versioned struct {
	keys map[string][]version
	held int // versions held
	// pruned is the latest time versions were forgotten up to: a row
	// before it, of a partition that came to replay since, is late, as
	// the version it joins may be gone.
	pruned int64
	// stamp is the table's column of a record's timestamp (Kafka's
	// _timestamp), a tombstone's version time, -1 if there is none.
	stamp int
}

func newVersioned(table *plan.Scan) *versioned {
	v := &versioned{keys: map[string][]version{}, stamp: -1, pruned: math.MinInt64}
	for i, c := range table.Cols {
		if c.Name == "_timestamp" && c.Type.Kind == value.KindTimestamp {
			v.stamp = i
		}
	}
	return v
}

// version is a table row as of a time; nil row for a deletion.
type version struct {
	ts  int64
	row value.Row
}

// asOfRow is a stream row waiting for the watermark to pass its time.
type asOfRow struct {
	ts     int64
	seq    uint64
	row    value.Row
	source owner
}

// asOfRows are the waiting rows, in time order, in arrival order within
// one time: rows mostly come in time order, so a row goes at the end, or
// a little before it, and rows leave from the front.
type asOfRows struct {
	rows []asOfRow
	head int // rows[:head] have left
}

func (q *asOfRows) len() int { return len(q.rows) - q.head }

// first is the earliest row; the queue is not empty.
func (q *asOfRows) first() *asOfRow { return &q.rows[q.head] }

// push adds r after the rows of its time and before later ones.
func (q *asOfRows) push(r asOfRow) {
	n := len(q.rows)
	if n == q.head || q.rows[n-1].ts <= r.ts {
		q.rows = append(q.rows, r)
		return
	}
	at, _ := slices.BinarySearchFunc(q.rows[q.head:], r.ts+1, func(x asOfRow, ts int64) int { return cmp.Compare(x.ts, ts) })
	q.rows = slices.Insert(q.rows, q.head+at, r)
}

// pop takes the earliest row out; the queue is not empty.
func (q *asOfRows) pop() asOfRow {
	r := q.rows[q.head]
	q.rows[q.head] = asOfRow{}
	q.head++
	if q.head == len(q.rows) {
		q.rows, q.head = q.rows[:0], 0
	} else if q.head >= 1024 && q.head*2 >= len(q.rows) {
		// Move the rest to the front, so that the slice does not grow
		// without end while rows keep waiting.
		n := copy(q.rows, q.rows[q.head:])
		clear(q.rows[n:])
		q.rows, q.head = q.rows[:n], 0
	}
	return r
}

// all are the waiting rows, in order.
func (q *asOfRows) all() []asOfRow { return q.rows[q.head:] }

func newTemporalJoin(n *plan.Join, reread map[string]bool) *temporalJoin {
	j := &temporalJoin{tableJoin: newTableJoin(n, reread), versions: newVersioned(n.Right), sweptAt: math.MinInt64}
	j.stream.time, j.table.time = n.AsOf.Index, n.TableTime.Index
	j.tables = []*versioned{j.versions}
	for _, l := range j.lookups {
		if l.versions != nil {
			j.tables = append(j.tables, l.versions)
		}
	}
	return j
}

// Process implements Stateful: table rows add versions, or, of a further
// table joined as read, replace their key's row; stream rows wait.
func (j *temporalJoin) Process(in, out *message.Batch, wm Watermark, fail Failures) (late, absorbed int) {
	if in.Origin != nil {
		if absorbed, ok := absorbLookups(in, j.lookups, fail, j.floor(wm)); ok {
			j.rows += absorbed
			return 0, absorbed
		}
	}
	if in.Origin != nil && in.Origin.Source == j.table.source {
		absorbed = j.versions.absorb(in, &j.table, fail, j.floor(wm))
		j.rows += absorbed
		return 0, absorbed
	}
	watermark := wm.For(in.Origin)
	src := ownerOf(in)
	for i, row := range in.Rows {
		ts, err := eventTime(row, j.stream.time)
		if err != nil {
			fail.Fail(in, i, "join", err)
			continue
		}
		if ts < watermark || ts < j.pruned() {
			late++
			continue
		}
		j.rows++
		j.seq++
		j.pending.push(asOfRow{ts: ts, seq: j.seq, row: ownValues(row), source: src})
		absorbed++
	}
	return late, absorbed
}

// pruned is the latest time any table's versions were forgotten up to.
func (j *temporalJoin) pruned() int64 {
	pruned := int64(math.MinInt64)
	for _, v := range j.tables {
		pruned = max(pruned, v.pruned)
	}
	return pruned
}

// absorb takes in, a batch of the table's rows, as versions by the
// table's time column, and returns the rows it took.
func (v *versioned) absorb(in *message.Batch, table *side, fail Failures, floor int64) (absorbed int) {
	deletes := tombstones(in.Deletes)
	for i, row := range in.Rows {
		deleted := deletes.at(in.Offsets[i])
		col := table.time
		if deleted && row[col].IsNull() && v.stamp >= 0 {
			col = v.stamp // a tombstone has only its key and record timestamp
		}
		ts, err := eventTime(row, col)
		if err == nil {
			err = table.keys.encode(row, 0)
		}
		if err != nil {
			fail.Fail(in, i, "join", err)
			continue
		}
		if vs := v.keys[string(table.keys.buf)]; deleted && len(vs) > 0 {
			// Written after the versions it deletes, it is not
			// before them, whatever their event times.
			ts = max(ts, vs[len(vs)-1].ts)
		}
		ver := version{ts: ts}
		if !deleted {
			ver.row = ownValues(row)
		}
		v.add(string(table.keys.buf), ver, floor)
		absorbed++
	}
	return absorbed
}

// floor is the earliest time a row still to join may have: that of the
// earliest row waiting, or of a row to come, which is not late: the
// pipeline's watermark, or a replaying partition's, which is behind it.
func (j *temporalJoin) floor(wm Watermark) int64 {
	floor := wm.For(nil)
	if r, ok := wm.(Replays); ok {
		floor = min(floor, r.Replaying())
	}
	if j.pending.len() > 0 {
		floor = min(floor, j.pending.first().ts)
	}
	return floor
}

// add inserts ver among key's versions, after those of its time, and
// drops the versions no row not yet late can join.
func (v *versioned) add(key string, ver version, floor int64) {
	vs := v.keys[key]
	at, _ := slices.BinarySearchFunc(vs, ver.ts+1, func(x version, ts int64) int { return cmp.Compare(x.ts, ts) })
	vs = slices.Insert(vs, at, ver)
	v.held++
	if vs = v.prune(key, vs, floor); vs != nil {
		v.keys[key] = vs
	}
}

// prune drops the versions before the latest one at or before floor, and
// the key itself when what is left is one deletion at or before floor.
func (v *versioned) prune(key string, vs []version, floor int64) []version {
	last, _ := slices.BinarySearchFunc(vs, floor+1, func(x version, ts int64) int { return cmp.Compare(x.ts, ts) })
	if drop := last - 1; drop > 0 {
		clear(vs[:drop])
		vs = vs[drop:]
		v.held -= drop
		v.pruned = max(v.pruned, floor)
	}
	if len(vs) == 1 && vs[0].row == nil && vs[0].ts <= floor {
		delete(v.keys, key)
		v.held--
		v.pruned = max(v.pruned, floor)
		return nil
	}
	return vs
}

// sweep prunes every key's versions of each table, once the floor moved
// on and enough rows came since the last sweep: a key that gets no new
// version and is not looked up is pruned only so.
func (j *temporalJoin) sweep(floor int64) {
	keys := 0
	for _, v := range j.tables {
		keys += len(v.keys)
	}
	if floor <= j.sweptAt || j.rows < keys/8 {
		return
	}
	j.sweptAt, j.rows = floor, 0
	for _, v := range j.tables {
		v.sweep(floor)
	}
}

// sweep prunes every key's versions.
func (v *versioned) sweep(floor int64) {
	for key, vs := range v.keys {
		if len(vs) > 1 || vs[0].row == nil {
			if vs = v.prune(key, vs, floor); vs != nil {
				v.keys[key] = vs
			}
		}
	}
}

// Advance implements Stateful: once the table is loaded, the rows the
// watermark passed join their key's version at their time, in time order.
func (j *temporalJoin) Advance(wm Watermark, out *message.Batch, fail func(error)) (dropped int) {
	if !j.loaded {
		return 0
	}
	watermark := wm.For(nil)
	for j.pending.len() > 0 && j.pending.first().ts < watermark {
		r := j.pending.pop()
		if !r.source.current() {
			continue // counted as aggregated when it came; its new owner joins it
		}
		if err := j.lookupAt(out, r, min(j.floor(wm), r.ts)); err != nil {
			fail(err)
		}
	}
	j.sweep(j.floor(wm))
	return 0
}

// lookupAt emits r joined with its key's version at r's time, and looked
// up in the further tables, those joined as of a time at r's time.
func (j *temporalJoin) lookupAt(out *message.Batch, r asOfRow, floor int64) error {
	if err := j.stream.keys.encode(r.row, 0); err != nil {
		return err
	}
	var match value.Row
	if !hasNull(j.stream.keys.vals) {
		match = j.versions.at(j.stream.keys.buf, r.ts, floor)
	}
	return j.emit(out, r.row, match, asOfTime{r.ts, floor})
}

// asOfTime is the time a row joins the tables joined as of a time at,
// and the floor of the rows still to join (temporalJoin.floor), below
// which their versions are dropped as they are looked up.
type asOfTime struct{ ts, floor int64 }

// at returns the version of key at ts, or nil: none, or a deletion. It
// drops the key's versions below floor first, if it has some.
func (v *versioned) at(key []byte, ts, floor int64) value.Row {
	vs := v.keys[string(key)]
	if len(vs) > 1 && vs[1].ts <= floor {
		// Versions to drop: the key's string, which a lookup does
		// without, only then.
		k := string(key)
		if vs = v.prune(k, vs, floor); vs != nil {
			v.keys[k] = vs
		}
	}
	at, _ := slices.BinarySearchFunc(vs, ts+1, func(x version, ts int64) int { return cmp.Compare(x.ts, ts) })
	if at > 0 {
		return vs[at-1].row
	}
	return nil
}

// Low implements Stateful: the earliest waiting row's time; nothing is
// acknowledged while the table is not loaded.
func (j *temporalJoin) Low() int64 {
	switch {
	case !j.loaded && j.pending.len() > 0:
		return math.MinInt64
	case j.pending.len() > 0:
		return j.pending.first().ts
	}
	return math.MaxInt64
}

// Size implements Stateful: the versions, the waiting rows and the
// further tables' rows.
func (j *temporalJoin) Size() int { return j.versions.held + j.pending.len() + rowsOf(j.lookups) }

// Pending is the number of stream rows waiting: restored, they are
// written without being read again.
func (j *temporalJoin) Pending() int { return j.pending.len() }
