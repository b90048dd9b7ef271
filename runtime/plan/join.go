package plan

import (
	"fmt"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/runtime/expr"
	"github.com/sluice-dev/sluice/runtime/value"
)

// JoinKind says how a join matches rows.
type JoinKind uint8

// The join kinds.
const (
	// IntervalJoin joins two streams: rows with equal keys whose event
	// times are within bounds of each other.
	IntervalJoin JoinKind = iota
	// TableJoin looks each row of a stream up in a table, the latest row per
	// key of another source.
	TableJoin
)

// Join joins the rows of two sources. Its rows are the left source's
// columns, then the right's. For a TableJoin the right source is the table.
type Join struct {
	Kind        JoinKind
	Left, Right *Scan
	// LeftKeys and RightKeys are the equality keys, over each side's rows.
	LeftKeys, RightKeys []expr.Expr
	// For an IntervalJoin: a pair matches when
	// right.time - Lower <= left.time <= right.time + Upper.
	LeftTime, RightTime *expr.Column
	Lower, Upper        int64
	// Outer keeps left rows that match nothing, with NULL right columns
	// (LEFT JOIN); RightOuter, of an IntervalJoin, keeps right rows that
	// match nothing, with NULL left columns (RIGHT JOIN). Both: FULL JOIN.
	Outer, RightOuter bool
	// On is the rest of ON, over the joined row: a pair matches only where
	// it is TRUE. Nil when ON has only keys and time bounds.
	On expr.Expr
	// AsOf, for a TableJoin FOR SYSTEM_TIME AS OF, is the left rows' time
	// column: each left row joins the version of its key's table row that
	// was current at its time, the latest whose TableTime, a column of the
	// right rows, is not after it. Nil for a join with the table as read.
	AsOf, TableTime *expr.Column
	// Lookups are the further tables of a join of more than two inputs,
	// `stream JOIN t1 ON ... JOIN t2 ON ...` or `s1 JOIN s2 ON ... [JOIN
	// s3 ON ...] JOIN t ON ...` (a stream after a table is joined before
	// it): each row of the streams is looked up in each in turn. Their
	// columns come last.
	Lookups []*Lookup
	// Streams are the further streams of an interval join of more than
	// two, `s1 JOIN s2 ON ... JOIN s3 ON ...`: the rows joined so far
	// are joined with each in turn, within a time bound, as the first two
	// are. Their columns follow the first two's, before the Lookups'.
	Streams []*StreamStep
}

// StreamStep is a further stream of an interval join: the rows joined so
// far pair with its rows of equal keys whose times are within a bound.
type StreamStep struct {
	Stream *Scan
	// Keys are over the rows joined so far, StreamKeys over the stream's.
	Keys, StreamKeys []expr.Expr
	// A pair matches when
	// stream.time - Lower <= time <= stream.time + Upper, where Time is a
	// column of the rows joined so far (an event time of an input before
	// it) and StreamTime the stream's.
	Time, StreamTime *expr.Column
	Lower, Upper     int64
	// On is the rest of ON, over the rows joined so far and the stream's.
	On expr.Expr
	// Outer keeps the rows joined so far that pair with none of the
	// stream's, with NULL columns of it (LEFT JOIN); RightOuter the
	// stream's rows that pair with none of them, with NULL columns of
	// the inputs before it (RIGHT JOIN). Both: FULL JOIN.
	Outer, RightOuter bool
}

// Join returns the interval join of the rows joined before step i of
// j.Streams with the stream of that step, as a plan of two inputs: a
// left input of the rows joined so far, a scan of no source.
func (j *Join) Join(i int) *Join {
	s := j.Streams[i]
	before := append(append([]value.Column(nil), j.Left.Cols...), j.Right.Cols...)
	for _, p := range j.Streams[:i] {
		before = append(before, p.Stream.Cols...)
	}
	return &Join{
		Kind: IntervalJoin, Left: &Scan{Cols: before}, Right: s.Stream, LeftKeys: s.Keys, RightKeys: s.StreamKeys,
		LeftTime: s.Time, RightTime: s.StreamTime, Lower: s.Lower, Upper: s.Upper, On: s.On, Outer: s.Outer, RightOuter: s.RightOuter,
	}
}

// Span is how far apart the event times of the inputs of one of j's
// rows may be, of an interval join: the bounds of its two streams, and
// of each further stream with the rows before it.
func (j *Join) Span() int64 {
	if j.Kind != IntervalJoin {
		return 0
	}
	span := max(abs(j.Lower), abs(j.Upper))
	for _, s := range j.Streams {
		span += max(abs(s.Lower), abs(s.Upper))
	}
	return span
}

func abs(d int64) int64 {
	if d < 0 {
		return -d
	}
	return d
}

// Lookup is a further table of a join: the rows joined so far, of a
// stream and a table or of two streams, are looked up in it by its whole
// key. Its columns follow theirs.
type Lookup struct {
	Table *Scan
	// Keys are over the rows joined so far, TableKeys over the table's;
	// together they equate every key column of the table.
	Keys, TableKeys []expr.Expr
	// Outer keeps the rows that match nothing, with NULL columns of the
	// table (LEFT JOIN).
	Outer bool
	// On is the rest of ON, over the row joined so far and the table's.
	On expr.Expr
	// TableTime, of a table joined FOR SYSTEM_TIME AS OF (after a first
	// table joined so), is its rows' version time: a row joins the version
	// of its key current at the join's AsOf time. Nil for a table joined
	// as read.
	TableTime *expr.Column
}

// Tables are the scans of a join's tables: a table join's first, and the
// lookups'.
func (j *Join) Tables() []*Scan {
	var tables []*Scan
	if j.Kind == TableJoin {
		tables = append(tables, j.Right)
	}
	for _, l := range j.Lookups {
		tables = append(tables, l.Table)
	}
	return tables
}

// Columns implements Node.
func (j *Join) Columns() []value.Column {
	cols := append(append([]value.Column(nil), j.Left.Cols...), j.Right.Cols...)
	for _, s := range j.Streams {
		cols = append(cols, s.Stream.Cols...)
	}
	for _, l := range j.Lookups {
		cols = append(cols, l.Table.Cols...)
	}
	return cols
}

// Inputs implements Node.
func (j *Join) Inputs() []Node {
	in := []Node{j.Left, j.Right}
	for _, s := range j.Streams {
		in = append(in, s.Stream)
	}
	for _, l := range j.Lookups {
		in = append(in, l.Table)
	}
	return in
}

// Describe implements Node.
func (j *Join) Describe() string {
	keys := KeyPairs(j.LeftKeys, j.RightKeys)
	kind, on := joinWords(j.Outer, j.RightOuter, j.On)
	var d string
	if j.Kind == TableJoin {
		asOf := ""
		if j.AsOf != nil {
			asOf = fmt.Sprintf(" FOR SYSTEM_TIME AS OF %s (versions by %s)", j.AsOf.Name, j.TableTime.Name)
		}
		d = fmt.Sprintf("TableJoin %s table %s%s ON %s%s", kind, j.Right.Source, asOf, strings.Join(keys, " AND "), on)
	} else {
		d = fmt.Sprintf("IntervalJoin %s ON %s AND %s BETWEEN %s - %s AND %s + %s%s", kind, strings.Join(keys, " AND "),
			j.LeftTime.Name, j.RightTime.Name, time.Duration(j.Lower), j.RightTime.Name, time.Duration(j.Upper), on)
	}
	for _, s := range j.Streams {
		kind, on := joinWords(s.Outer, s.RightOuter, s.On)
		d += fmt.Sprintf(" %s stream %s ON %s AND %s BETWEEN %s - %s AND %s + %s%s", kind, s.Stream.Source, strings.Join(KeyPairs(s.Keys, s.StreamKeys), " AND "),
			s.Time.Name, s.StreamTime.Name, time.Duration(s.Lower), s.StreamTime.Name, time.Duration(s.Upper), on)
	}
	for _, l := range j.Lookups {
		d += " " + l.describe(j.AsOf)
	}
	return d
}

func (l *Lookup) describe(asOf *expr.Column) string {
	kind, on := joinWords(l.Outer, false, l.On)
	versions := ""
	if l.TableTime != nil {
		versions = fmt.Sprintf(" FOR SYSTEM_TIME AS OF %s (versions by %s)", asOf.Name, l.TableTime.Name)
	}
	return fmt.Sprintf("%s table %s%s ON %s%s", kind, l.Table.Source, versions, strings.Join(KeyPairs(l.Keys, l.TableKeys), " AND "), on)
}

// joinWords are a join's kind and the rest of its ON, as Describe writes
// them: "LEFT JOIN" and " AND cond". Outer keeps the left rows that match
// nothing, rightOuter the right's.
func joinWords(outer, rightOuter bool, on expr.Expr) (kind, rest string) {
	switch {
	case outer && rightOuter:
		kind = "FULL JOIN"
	case outer:
		kind = "LEFT JOIN"
	case rightOuter:
		kind = "RIGHT JOIN"
	default:
		kind = "JOIN"
	}
	if on != nil {
		rest = " AND " + on.String()
	}
	return kind, rest
}

// KeyPairs describes a join's equality keys, a pair of a left and a
// right expression each: "l = r".
func KeyPairs(left, right []expr.Expr) []string {
	keys := make([]string, len(left))
	for i := range left {
		keys[i] = left[i].String() + " = " + right[i].String()
	}
	return keys
}
