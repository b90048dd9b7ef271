package pipeline

// The correctness oracle of the stateful SQL: differential testing against
// SQLite. A seeded generator writes a stream of trades with out-of-order and
// late rows; the test decides itself which rows are late (the watermark rule
// below), loads the on-time rows into an in-memory SQLite table and runs, for
// each query, the engine over the file and an equivalent SQLite query over
// the table. The final outputs must agree row for row.
//
// The watermark rule, with one file partition, direct mode and batches of one
// row: the watermark a row is judged by is the one left by the rows before
// it, W = max(event times so far) - maxOutOfOrderness, and a row is late iff
// its event time < W. At the end of the input every window closes. Late
// rows are dropped, so the final result of every query is the batch result
// over the on-time rows: that is what SQLite computes.
//
// SQLite has no windowing table functions, no decimals and no standard
// deviations, so the SQLite side translates: timestamps are integer
// milliseconds and prices integer cents; a tumbling window starts at
// ts - ts % size; a hopping window is a join with the offsets 0..size/slide-1;
// sessions are numbered with LAG and a running SUM; FIRST_VALUE and
// LAST_VALUE order by (ts, seq), seq being the arrival order; the exact
// decimal AVG and the standard deviations are computed in Go from exact
// integer SUMs and COUNTs (the dec_avg and stddev_from functions registered
// below).
//
// TestOracleJoins does the same for interval joins of trades with a second
// stream, quotes, and for joins with a table; its watermark rule, for two
// sources read in turn, is described above it.

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"modernc.org/sqlite"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/value"
)

// oracleBound is the sources' maxOutOfOrderness.
const oracleBound = 5 * time.Second

// oracleEpoch is the event time the generated streams start at.
var oracleEpoch = time.Date(2024, 1, 2, 9, 30, 0, 0, time.UTC)

// trade is one generated input row. Times are milliseconds since the epoch,
// prices cents.
type trade struct {
	seq      int // arrival order: the line number, from 0
	id       int64
	symbol   string
	cents    int64
	hasPrice bool
	qty      int64
	hasQty   bool
	ts       int64
	late     bool // by the watermark rule
}

// oracleGen configures a generated stream.
type oracleGen struct {
	seed    uint64
	rows    int
	symbols int
	// maxStep is the largest step forward of event time, in half seconds;
	// steps are uniform in 0..maxStep, so equal event times are common.
	maxStep int
	// inOrder leaves out the on-time rows that jump back: event times never
	// decrease but for the late rows, which are dropped.
	inOrder bool
}

// oracleSymbols are the symbols drawn from; some need JSON escaping or are
// not ASCII.
var oracleSymbols = []string{
	"AAPL", "MSFT", "GOOG", "AMZN", "NVDA", "META", "TSLA", "BRK.B", `Q"T`, "ÆØÅ", "JPM", "V",
	"XOM", "WMT", "PG", "MA", "HD", "CVX", "KO", "PEP",
}

// generate returns the stream: event times move forward in steps of 0 to
// maxStep/2 s; about 12% of the rows jump back by up to the bound (exactly
// the bound included), so they are out of order but on time, and about 3%
// by more than the bound, so they are late.
func (g oracleGen) generate() []trade {
	r := rand.New(rand.NewPCG(g.seed, 0x5EED))
	bound := oracleBound.Milliseconds()
	cur := oracleEpoch.UnixMilli()
	out := make([]trade, g.rows)
	for i := range out {
		tr := trade{seq: i, id: int64(1000 + i), symbol: oracleSymbols[r.IntN(g.symbols)]}
		switch p := r.IntN(100); {
		case i >= 20 && p < 3: // late: 1 ms to 60 s behind the watermark
			tr.ts = cur - bound - 1 - r.Int64N(60_000)
		case i >= 1 && p < 15 && !g.inOrder: // out of order, on time: 0 to 5 s back, in quarter seconds
			tr.ts = cur - 250*r.Int64N(bound/250+1)
		default:
			cur += 500 * r.Int64N(int64(g.maxStep)+1)
			tr.ts = cur
		}
		if r.IntN(100) >= 6 {
			tr.hasPrice = true
			tr.cents = 100 + r.Int64N(50_000)
			if r.IntN(100) < 4 {
				tr.cents = -r.Int64N(2_000) // negative: AVG rounds half away from zero
			}
		}
		if r.IntN(100) >= 3 {
			tr.hasQty = true
			tr.qty = 1 + r.Int64N(12)
			if r.IntN(10) == 0 {
				tr.qty = 100 * (1 + r.Int64N(10))
			}
		}
		out[i] = tr
	}
	markLate(out)
	return out
}

// markLate applies the watermark rule: a row is late iff its event time is
// before max(event times of the rows before it) - the bound.
func markLate(trades []trade) {
	high := int64(math.MinInt64)
	for i := range trades {
		trades[i].late = high != math.MinInt64 && trades[i].ts < high-oracleBound.Milliseconds()
		high = max(high, trades[i].ts)
	}
}

// jsonLines writes the stream as JSON lines, varying the encodings the JSON
// decoder accepts: prices with 0 to 2 decimals, some quoted, NULL prices
// missing or null; timestamps in UTC, with an offset, or as integer
// milliseconds; keys in varying order.
func jsonLines(trades []trade, seed uint64) string {
	r := rand.New(rand.NewPCG(seed, 0x11E5))
	var b strings.Builder
	for _, tr := range trades {
		var fields []string
		fields = append(fields, `"id":`+strconv.FormatInt(tr.id, 10))
		sym, _ := json.Marshal(tr.symbol)
		fields = append(fields, `"symbol":`+string(sym))
		switch {
		case tr.hasPrice:
			p := formatCents(tr.cents, r.IntN(4) == 0)
			if r.IntN(10) == 0 {
				p = `"` + p + `"`
			}
			fields = append(fields, `"price":`+p)
		case r.IntN(2) == 0:
			fields = append(fields, `"price":null`)
		}
		if tr.hasQty {
			fields = append(fields, `"qty":`+strconv.FormatInt(tr.qty, 10))
		} else {
			fields = append(fields, `"qty":null`)
		}
		writeRecord(&b, r, append(fields, tsField(r, tr.ts, 2*3600+30*60)))
	}
	return b.String()
}

// tsField encodes an event time in ms the ways JSON sources may carry it:
// mostly RFC 3339 in UTC, sometimes in the zone offset (seconds) given, or
// as integer milliseconds.
func tsField(r *rand.Rand, ms int64, offset int) string {
	t := time.UnixMilli(ms).UTC()
	switch r.IntN(20) {
	case 0:
		return `"ts":` + strconv.FormatInt(ms, 10)
	case 1:
		return `"ts":"` + t.In(time.FixedZone("", offset)).Format(time.RFC3339Nano) + `"`
	}
	return `"ts":"` + t.Format(time.RFC3339Nano) + `"`
}

// writeRecord writes fields as one JSON line, in reverse order now and then:
// the decoder takes fields in any order.
func writeRecord(b *strings.Builder, r *rand.Rand, fields []string) {
	if r.IntN(4) == 0 {
		slices.Reverse(fields)
	}
	b.WriteString("{" + strings.Join(fields, ",") + "}\n")
}

// formatCents writes cents as a decimal number, with trailing zeros of the
// fraction dropped if trim.
func formatCents(c int64, trim bool) string {
	sign := ""
	if c < 0 {
		sign, c = "-", -c
	}
	s := fmt.Sprintf("%s%d.%02d", sign, c/100, c%100)
	if trim {
		s = strings.TrimSuffix(strings.TrimRight(s, "0"), ".")
		if s == "-" || s == "" || s == "-0" {
			s = "0"
		}
	}
	return s
}

// registerOracleFunctions registers, once per process, the SQLite functions
// the translations use for what SQLite lacks:
//
//	dec_avg(sum, count, up)   the exact AVG of integers at scale s as an integer
//	                          at scale s+up, rounded half away from zero; NULL if count is 0
//	stddev_from(n, sum, sumsq, ddof, scale)
//	                          sqrt((n·sumsq - sum²) / (n·(n-ddof))) / 10^scale, from exact
//	                          integer sums; NULL if n - ddof ≤ 0
var registerOracleFunctions = sync.OnceValue(func() error {
	err := sqlite.RegisterDeterministicScalarFunction("dec_avg", 3, func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
		if args[0] == nil || args[1] == nil || args[1].(int64) == 0 {
			return nil, nil
		}
		sum, n, up := args[0].(int64), args[1].(int64), args[2].(int64)
		q := new(big.Rat).SetFrac(new(big.Int).Mul(big.NewInt(sum), new(big.Int).Exp(big.NewInt(10), big.NewInt(up), nil)), big.NewInt(n))
		return roundHalfAway(q), nil
	})
	if err != nil {
		return err
	}
	return sqlite.RegisterDeterministicScalarFunction("stddev_from", 5, func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
		if args[0] == nil || args[1] == nil || args[2] == nil {
			return nil, nil
		}
		n, s, ss, ddof, scale := args[0].(int64), args[1].(int64), args[2].(int64), args[3].(int64), args[4].(int64)
		if n-ddof <= 0 {
			return nil, nil
		}
		num := new(big.Int).Sub(new(big.Int).Mul(big.NewInt(n), big.NewInt(ss)), new(big.Int).Mul(big.NewInt(s), big.NewInt(s)))
		v, _ := new(big.Rat).SetFrac(num, big.NewInt(n*(n-ddof))).Float64()
		return math.Sqrt(v) / math.Pow10(int(scale)), nil
	})
})

// roundHalfAway rounds q to an integer, halves away from zero.
func roundHalfAway(q *big.Rat) int64 {
	num, den := new(big.Int).Abs(q.Num()), q.Denom()
	quo, rem := new(big.Int).QuoRem(num, den, new(big.Int))
	if rem.Lsh(rem, 1).Cmp(den) >= 0 {
		quo.Add(quo, big.NewInt(1))
	}
	if q.Sign() < 0 {
		quo.Neg(quo)
	}
	return quo.Int64()
}

// oracleData is one generated stream: its file, and its on-time rows in
// SQLite as table t(seq, id, symbol, price, qty, ts), price in cents and ts
// in milliseconds.
type oracleData struct {
	name   string
	trades []trade
	path   string
	db     *sql.DB
}

// newOracleData writes trades, whose late flags are set, to a file and
// their on-time rows to SQLite.
func newOracleData(t *testing.T, name string, trades []trade, seed uint64) *oracleData {
	t.Helper()
	if err := registerOracleFunctions(); err != nil {
		t.Fatalf("registering the SQLite functions: %v", err)
	}
	d := &oracleData{name: name, trades: trades}
	d.path = filepath.Join(t.TempDir(), name+".jsonl")
	if err := os.WriteFile(d.path, []byte(jsonLines(d.trades, seed)), 0o644); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1) // every connection to :memory: is a database of its own
	t.Cleanup(func() { db.Close() })
	d.db = db
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatalf("SQLite: %s: %v", q, err)
		}
	}
	// t holds the on-time rows; every, all of them, late ones too, which
	// a GROUP BY without a window takes.
	exec(`CREATE TABLE t (seq INTEGER PRIMARY KEY, id INTEGER NOT NULL, symbol TEXT NOT NULL, price INTEGER, qty INTEGER, ts INTEGER NOT NULL)`)
	exec(`CREATE TABLE every (seq INTEGER PRIMARY KEY, id INTEGER NOT NULL, symbol TEXT NOT NULL, price INTEGER, qty INTEGER, ts INTEGER NOT NULL)`)
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	ins, err := tx.Prepare(`INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)`)
	if err != nil {
		t.Fatal(err)
	}
	insEvery, err := tx.Prepare(`INSERT INTO every VALUES (?, ?, ?, ?, ?, ?)`)
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range d.trades {
		var price, qty any
		if tr.hasPrice {
			price = tr.cents
		}
		if tr.hasQty {
			qty = tr.qty
		}
		if _, err := insEvery.Exec(tr.seq, tr.id, tr.symbol, price, qty, tr.ts); err != nil {
			t.Fatal(err)
		}
		if tr.late {
			continue
		}
		if _, err := ins.Exec(tr.seq, tr.id, tr.symbol, price, qty, tr.ts); err != nil {
			t.Fatal(err)
		}
	}
	ins.Close()
	insEvery.Close()
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	exec(`CREATE INDEX t_symbol_ts ON t (symbol, ts)`)
	exec(`CREATE INDEX t_ts ON t (ts, seq)`)
	return d
}

// colType is the type of an output column.
type colType struct {
	kind  value.Kind
	scale uint8
}

var (
	cTS   = colType{kind: value.KindTimestamp}
	cStr  = colType{kind: value.KindString}
	cInt  = colType{kind: value.KindInt}
	cDbl  = colType{kind: value.KindDouble}
	cDec2 = colType{kind: value.KindDecimal, scale: 2}
	cDec6 = colType{kind: value.KindDecimal, scale: 6}
)

// cell is one output value in a form both sides convert to: ints, decimals
// (unscaled at the column's scale) and timestamps (milliseconds) in i,
// doubles in f, strings in s.
type cell struct {
	null bool
	i    int64
	f    float64
	s    string
}

func cmpCell(ct colType, a, b cell) int {
	switch {
	case a.null && b.null:
		return 0
	case a.null:
		return -1
	case b.null:
		return 1
	}
	switch ct.kind {
	case value.KindDouble:
		return cmp.Compare(a.f, b.f)
	case value.KindString:
		return strings.Compare(a.s, b.s)
	}
	return cmp.Compare(a.i, b.i)
}

// sameCell compares exactly but doubles, which agree to a relative 1e-9 (or
// an absolute 1e-12 around zero, where a stddev of equal values may keep a
// rounding residue).
func sameCell(ct colType, a, b cell) bool {
	if a.null || b.null {
		return a.null == b.null
	}
	if ct.kind == value.KindDouble {
		d := math.Abs(a.f - b.f)
		return a.f == b.f || d <= 1e-9*max(math.Abs(a.f), math.Abs(b.f)) || d <= 1e-12
	}
	return cmpCell(ct, a, b) == 0
}

func formatCell(ct colType, c cell) string {
	if c.null {
		return "NULL"
	}
	switch ct.kind {
	case value.KindTimestamp:
		return time.UnixMilli(c.i).UTC().Format("15:04:05.000")
	case value.KindDecimal:
		return value.DecimalValue(c.i, ct.scale).String()
	case value.KindDouble:
		return strconv.FormatFloat(c.f, 'g', 17, 64)
	case value.KindString:
		return strconv.Quote(c.s)
	}
	return strconv.FormatInt(c.i, 10)
}

func formatRow(types []colType, r []cell) string {
	parts := make([]string, len(r))
	for i, c := range r {
		parts[i] = formatCell(types[i], c)
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// engineCell converts an engine value, checking that it is of the column's
// type, decimals at the column's scale.
func engineCell(v value.Value, ct colType) (cell, error) {
	if v.IsNull() {
		return cell{null: true}, nil
	}
	if v.Kind() != ct.kind {
		return cell{}, fmt.Errorf("a %s value %s, want %s", v.Kind(), v, ct.kind)
	}
	switch ct.kind {
	case value.KindDecimal:
		if v.Scale() != ct.scale {
			return cell{}, fmt.Errorf("decimal %s of scale %d, want scale %d", v, v.Scale(), ct.scale)
		}
		return cell{i: v.Unscaled()}, nil
	case value.KindTimestamp:
		if v.Nanos()%1e6 != 0 {
			return cell{}, fmt.Errorf("timestamp %s is not a whole millisecond", v)
		}
		return cell{i: v.Nanos() / 1e6}, nil
	case value.KindInt:
		return cell{i: v.Int()}, nil
	case value.KindDouble:
		return cell{f: v.Double()}, nil
	case value.KindString:
		return cell{s: v.Str()}, nil
	}
	return cell{}, fmt.Errorf("unexpected kind %s", v.Kind())
}

// sqliteCell converts a value SQLite returned for a column of type ct.
func sqliteCell(x any, ct colType) (cell, error) {
	switch x := x.(type) {
	case nil:
		return cell{null: true}, nil
	case int64:
		if ct.kind == value.KindDouble {
			return cell{f: float64(x)}, nil
		}
		if ct.kind != value.KindString {
			return cell{i: x}, nil
		}
	case float64:
		if ct.kind == value.KindDouble {
			return cell{f: x}, nil
		}
	case string:
		if ct.kind == value.KindString {
			return cell{s: x}, nil
		}
	case []byte:
		if ct.kind == value.KindString {
			return cell{s: string(x)}, nil
		}
	}
	return cell{}, fmt.Errorf("SQLite returned %T %v for a %s column", x, x, ct.kind)
}

// valueSink keeps the rows written, as values.
type valueSink struct {
	mu   sync.Mutex
	rows []value.Row
}

func (s *valueSink) Write(_ context.Context, b *message.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range b.Rows {
		row := make(value.Row, len(r))
		for i, v := range r {
			if v.Kind() == value.KindString {
				v = value.StringValue(strings.Clone(v.Str()))
			}
			row[i] = v
		}
		s.rows = append(s.rows, row)
	}
	return nil
}

func (s *valueSink) Flush(context.Context) error { return nil }
func (s *valueSink) Close() error                { return nil }

// oracleCase is one query and its SQLite translation.
type oracleCase struct {
	name string
	data *oracleData
	// query is the engine's, over source trades; sqlite the translation over
	// table t of the on-time rows. Both return the columns types.
	query, sqlite string
	types         []colType
	// key is how many leading columns identify a row: the window and its
	// keys, or the row's id for OVER. The engine must not return two rows of
	// one key.
	key int
	// where mirrors the query's WHERE, if it has one: the late rows it drops
	// are filtered, not late.
	where func(trade) bool
	// results says the query's rows are results, not records: a windowed
	// GROUP BY, or a join, whose inputs are all absorbed.
	results bool
	// inputs are the sources of a join, each with its records by lateness;
	// nil for a query of trades alone, data's.
	inputs []oracleInput
	// skip, if set, says why the case is skipped: an engine bug it finds.
	skip string
	// changelog says the query is a GROUP BY without a window, which
	// takes every row, late ones too, and writes a group's row again at
	// each change: its result is the last row written of each key, and
	// sqlite's is over table every.
	changelog bool
	// changes says the query aggregates the rows of windows, a
	// changelog of late rows left out: its result is the last row
	// written of each key.
	changes bool
	// emitInterval, of a changelog, is spec.runtime.emitInterval: so long
	// that each key's row is written once, at the end.
	emitInterval time.Duration
	// distinct says the query is a SELECT DISTINCT, which takes every
	// row, late ones too, and writes each distinct row once: sqlite's is
	// over table every.
	distinct bool
}

// oracleInput is one source of a join's spec, and how many of its records
// are late and on time.
type oracleInput struct {
	source     v1alpha1.Source
	late, kept int64
}

// oracleSpec is the spec of a query over a generated file: one partition,
// direct mode and batches of one row, so that lateness is decided row by row.
func oracleSpec(path, query string) *v1alpha1.StreamQuerySpec {
	return &v1alpha1.StreamQuerySpec{
		Sources: []v1alpha1.Source{{
			Name: "trades", File: &v1alpha1.FileSource{Path: path}, Format: v1alpha1.FormatJSON,
			Schema: []v1alpha1.Column{
				{Name: "id", Type: "int"}, {Name: "symbol", Type: "string"}, {Name: "price", Type: "decimal(10,2)"},
				{Name: "qty", Type: "int"}, {Name: "ts", Type: "timestamp"},
			},
			EventTime: &v1alpha1.EventTime{Column: "ts", MaxOutOfOrderness: metav1.Duration{Duration: oracleBound}},
		}},
		Query:       query,
		Sink:        &v1alpha1.Sink{Null: &v1alpha1.NullSink{}},
		ErrorPolicy: v1alpha1.ErrorPolicy{Strategy: v1alpha1.FailFast},
		Runtime:     v1alpha1.RuntimeSpec{Mode: v1alpha1.Direct, BatchSize: 1},
	}
}

func (c *oracleCase) run(t *testing.T) {
	if c.skip != "" {
		t.Skip(c.skip)
	}
	d := c.data
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf("engine query:\n\t%s\nSQLite query:\n\t%s\n%s", c.query, c.sqlite, fmt.Sprintf(format, args...))
	}

	// The expected rows, from SQLite.
	rows, err := d.db.Query(c.sqlite)
	if err != nil {
		t.Fatalf("SQLite query:\n\t%s\n%v", c.sqlite, err)
	}
	var want [][]cell
	for rows.Next() {
		raw := make([]any, len(c.types))
		ptrs := make([]any, len(raw))
		for i := range raw {
			ptrs[i] = &raw[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatalf("SQLite scan: %v", err)
		}
		r := make([]cell, len(raw))
		for i, x := range raw {
			if r[i], err = sqliteCell(x, c.types[i]); err != nil {
				t.Fatalf("SQLite query:\n\t%s\ncolumn %d: %v", c.sqlite, i, err)
			}
		}
		want = append(want, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("SQLite query:\n\t%s\n%v", c.sqlite, err)
	}
	rows.Close()
	if len(want) == 0 {
		t.Fatalf("SQLite query:\n\t%s\nreturned no rows: the case tests nothing", c.sqlite)
	}

	// The engine's rows.
	sink := &valueSink{}
	spec := oracleSpec(d.path, c.query)
	if c.inputs != nil {
		spec.Sources = nil
		for _, in := range c.inputs {
			spec.Sources = append(spec.Sources, in.source)
		}
	}
	if c.emitInterval > 0 {
		spec.Runtime.EmitInterval = &metav1.Duration{Duration: c.emitInterval}
	}
	p, err := runPipeline(t, spec, Options{Sink: sink})
	if err != nil {
		t.Fatalf("engine query:\n\t%s\nRun: %v", c.query, err)
	}
	rowsWritten := sink.rows
	if c.changelog || c.changes {
		rowsWritten = latestByKey(sink.rows, c.key)
	}
	var got [][]cell
	for n, row := range rowsWritten {
		if len(row) != len(c.types) {
			t.Fatalf("engine query:\n\t%s\nrow %d has %d columns, want %d: %v", c.query, n, len(row), len(c.types), row)
		}
		r := make([]cell, len(row))
		for i, v := range row {
			if r[i], err = engineCell(v, c.types[i]); err != nil {
				t.Fatalf("engine query:\n\t%s\nrow %d column %d: %v", c.query, n, i, err)
			}
		}
		got = append(got, r)
	}

	// Counts: the late rows are the test's, every record is accounted for.
	var late, kept int64
	for _, tr := range d.trades {
		if c.inputs != nil {
			break
		}
		if c.where != nil && !c.where(tr) {
			continue
		}
		if tr.late && !c.changelog && !c.distinct {
			late++
		} else {
			kept++
		}
	}
	for _, in := range c.inputs {
		late += in.late
		kept += in.kept
	}
	counts := p.Snapshot().Counts
	checkIdentity(t, counts)
	if counts.Late != late {
		fail("counts %+v: %d late, want %d (the rows with ts < the watermark left by the rows before them, that pass WHERE)", counts, counts.Late, late)
	}
	if c.results && (counts.Aggregated != kept || counts.Results != int64(len(sink.rows))) {
		fail("counts %+v: %d aggregated and %d results; want %d on-time rows aggregated and the %d rows written", counts, counts.Aggregated, counts.Results, kept, len(sink.rows))
	}
	if c.emitInterval > 0 && len(sink.rows) != len(got) {
		fail("%d rows written for %d keys: with an emit interval longer than the run, each key's is written once, at the end", len(sink.rows), len(got))
	} else if c.changelog && c.emitInterval == 0 && len(sink.rows) <= len(got) {
		fail("%d rows written for %d keys: a changelog writes a key's row at each change", len(sink.rows), len(got))
	}
	if !c.results && counts.Out != kept {
		fail("counts %+v: %d out, want one row per on-time row, %d", counts, counts.Out, kept)
	}

	c.compare(t, fail, got, want)
}

// latestByKey is a changelog's table: the last row written of each key,
// the first key columns of the rows, in the order the keys came.
func latestByKey(rows []value.Row, key int) []value.Row {
	at := map[string]int{}
	var out []value.Row
	for _, r := range rows {
		k := fmt.Sprint(r[:key])
		if i, ok := at[k]; ok {
			out[i] = r
			continue
		}
		at[k] = len(out)
		out = append(out, r)
	}
	return out
}

// compare sorts both sides by all columns and compares them row for row; on
// a difference it reports the rows by key: duplicates, missing, extra and
// different rows, the first few of each.
func (c *oracleCase) compare(t *testing.T, fail func(string, ...any), got, want [][]cell) {
	t.Helper()
	cmpRows := func(a, b []cell) int {
		for i, ct := range c.types {
			if r := cmpCell(ct, a[i], b[i]); r != 0 {
				return r
			}
		}
		return 0
	}
	slices.SortFunc(got, cmpRows)
	slices.SortFunc(want, cmpRows)
	keyOf := func(r []cell) string { return formatRow(c.types[:c.key], r[:c.key]) }
	var dups []string
	for i := 1; i < len(got); i++ {
		if keyOf(got[i]) == keyOf(got[i-1]) {
			dups = append(dups, fmt.Sprintf("\t%s\n\t%s", formatRow(c.types, got[i-1]), formatRow(c.types, got[i])))
		}
	}
	if len(dups) > 0 {
		fail("the engine returned %d rows of a key it had already returned; the first:\n%s", len(dups), strings.Join(dups[:min(3, len(dups))], "\n\n"))
	}
	equal := len(got) == len(want)
	for i := 0; equal && i < len(got); i++ {
		for j, ct := range c.types {
			if !sameCell(ct, got[i][j], want[i][j]) {
				equal = false
				break
			}
		}
	}
	if equal {
		return
	}
	byKey := func(rows [][]cell) (map[string][]cell, []string) {
		m := map[string][]cell{}
		var keys []string
		for _, r := range rows {
			k := keyOf(r)
			if _, ok := m[k]; !ok {
				keys = append(keys, k)
			}
			m[k] = r
		}
		return m, keys
	}
	gm, gkeys := byKey(got)
	wm, wkeys := byKey(want)
	var missing, extra, differ []string
	for _, k := range wkeys {
		g, ok := gm[k]
		switch {
		case !ok:
			missing = append(missing, "\t"+formatRow(c.types, wm[k]))
		case !rowsSame(c.types, g, wm[k]):
			differ = append(differ, fmt.Sprintf("\tengine: %s\n\tSQLite: %s", formatRow(c.types, g), formatRow(c.types, wm[k])))
		}
	}
	for _, k := range gkeys {
		if _, ok := wm[k]; !ok {
			extra = append(extra, "\t"+formatRow(c.types, gm[k]))
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "the engine returned %d rows, SQLite %d: %d differ, %d missing from the engine's, %d extra in the engine's", len(got), len(want), len(differ), len(missing), len(extra))
	section := func(title string, items []string) {
		if len(items) > 0 {
			fmt.Fprintf(&b, "\n%s (first %d of %d):\n%s", title, min(5, len(items)), len(items), strings.Join(items[:min(5, len(items))], "\n"))
		}
	}
	section("rows that differ", differ)
	section("rows missing from the engine's output", missing)
	section("rows only in the engine's output", extra)
	fail("%s", b.String())
}

func rowsSame(types []colType, a, b []cell) bool {
	for i, ct := range types {
		if !sameCell(ct, a[i], b[i]) {
			return false
		}
	}
	return true
}

// decAvg is the SQLite translation of AVG of a decimal(p,2) column stored
// as cents: the exact average at the engine's scale, 6, as an unscaled
// integer. over is "" or " OVER w".
func decAvg(col, over string) string {
	return fmt.Sprintf("dec_avg(sum(%[1]s)%[2]s, count(%[1]s)%[2]s, 4)", col, over)
}

// stddevOf is the SQLite translation of STDDEV_SAMP (ddof 1) or STDDEV_POP
// (ddof 0) of an integer column, or of a cents column with scale 2.
func stddevOf(col, over string, ddof, scale int) string {
	return fmt.Sprintf("stddev_from(count(%[1]s)%[2]s, sum(%[1]s)%[2]s, sum(%[1]s * %[1]s)%[2]s, %[3]d, %[4]d)", col, over, ddof, scale)
}

// wholeGroup is a window over all rows of a group in (ts, seq) order, for
// FIRST_VALUE and LAST_VALUE with the engine's tie order.
func wholeGroup(partition string) string {
	return "PARTITION BY " + partition + " ORDER BY ts, seq ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING"
}

// TestOracle compares the final results of windowed GROUP BY and OVER
// queries over a stream with out-of-order and late rows with SQLite's
// results over the on-time rows.
func TestOracle(t *testing.T) {
	gen := func(name string, g oracleGen) *oracleData {
		return newOracleData(t, name, g.generate(), g.seed)
	}
	// dense: about an hour of event time, 12 symbols, many equal event
	// times, for the windowed queries and ROWS frames.
	dense := gen("dense", oracleGen{seed: 1, rows: 3000, symbols: 12, maxStep: 6})
	// long: about 6 hours, 6 symbols, for RANGE frames of up to 4 hours.
	long := gen("long", oracleGen{seed: 2, rows: 2800, symbols: 6, maxStep: 36})
	// The same without out-of-order rows, so that the OVER queries are
	// checked on in-order streams too.
	denseInOrder := gen("dense-in-order", oracleGen{seed: 3, rows: 3000, symbols: 12, maxStep: 6, inOrder: true})
	longInOrder := gen("long-in-order", oracleGen{seed: 4, rows: 2800, symbols: 6, maxStep: 36, inOrder: true})

	t.Run("TheStreamsHaveLateOutOfOrderTiedAndNullRows", func(t *testing.T) {
		for _, d := range []*oracleData{dense, long, denseInOrder, longInOrder} {
			var late, ooo, ties, nullPrice, nullQty int
			high := int64(math.MinInt64)
			for i, tr := range d.trades {
				switch {
				case tr.late:
					late++
				case tr.ts < high:
					ooo++
				}
				if i > 0 && tr.ts == d.trades[i-1].ts {
					ties++
				}
				if !tr.hasPrice {
					nullPrice++
				}
				if !tr.hasQty {
					nullQty++
				}
				high = max(high, tr.ts)
			}
			span := time.Duration(high-d.trades[0].ts) * time.Millisecond
			t.Logf("%s: %d rows over %s: %d late, %d out of order on time, %d equal to the previous event time, %d NULL prices, %d NULL quantities",
				d.name, len(d.trades), span, late, ooo, ties, nullPrice, nullQty)
			inOrder := d == denseInOrder || d == longInOrder
			if late < 30 || (ooo < 100) != inOrder || ties < 30 || nullPrice < 30 || nullQty < 10 {
				t.Errorf("%s: too few rows of a kind the oracle must cover", d.name)
			}
			if (d == long || d == longInOrder) && span < 5*time.Hour {
				t.Errorf("%s spans %s; want over 5 hours so that the 4 hour frame matters", d.name, span)
			}
		}
	})

	cases := []oracleCase{
		{
			name: "Tumble1Minute/GroupByExpressionFilter",
			data: dense, results: true, key: 3,
			query: `SELECT window_start, window_end, qty % 4 AS bucket, count(*) AS n, count(*) FILTER (WHERE symbol IN ('AAPL', 'MSFT')) AS big_tech,
				max(price) FILTER (WHERE price < 100) AS cheap_high
				FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE)
				WHERE qty IS NOT NULL
				GROUP BY window_start, window_end, qty % 4`,
			sqlite: `SELECT ws, ws + 60000, qty % 4, count(*), count(*) FILTER (WHERE symbol IN ('AAPL', 'MSFT')), max(price) FILTER (WHERE price < 10000)
				FROM (SELECT *, ts - ts % 60000 AS ws FROM t WHERE qty IS NOT NULL)
				GROUP BY ws, qty % 4`,
			types: []colType{cTS, cTS, cInt, cInt, cInt, cDec2},
			where: func(tr trade) bool { return tr.hasQty },
		},
		{
			name: "Tumble1Minute/CountSumAvgMinMaxBySymbolHaving",
			data: dense, results: true, key: 3,
			query: `SELECT window_start, window_end, symbol, count(*) AS n, count(price) AS priced, sum(price) AS total,
				avg(price) AS avg_price, min(price) AS lo, max(price) AS hi
				FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE)
				GROUP BY window_start, window_end, symbol HAVING count(*) >= 3 AND max(qty) > 4`,
			sqlite: `SELECT ws, ws + 60000, symbol, count(*), count(price), sum(price), ` + decAvg("price", "") + `, min(price), max(price)
				FROM (SELECT *, ts - ts % 60000 AS ws FROM t)
				GROUP BY ws, symbol HAVING count(*) >= 3 AND max(qty) > 4`,
			types: []colType{cTS, cTS, cStr, cInt, cInt, cDec2, cDec6, cDec2, cDec2},
		},
		{
			name: "Tumble20Seconds/CountDistinctStddevFirstLastBySymbol",
			data: dense, results: true, key: 3,
			query: `SELECT window_start, window_end, symbol, count(DISTINCT qty) AS sizes, stddev(qty) AS sd, stddev_pop(qty) AS sd_pop,
				stddev_samp(price) AS sd_price, first_value(price) AS open, last_value(price) AS close
				FROM TUMBLE(trades, ts, INTERVAL '20' SECOND)
				GROUP BY window_start, window_end, symbol`,
			sqlite: `WITH x AS (SELECT *, ts - ts % 20000 AS ws FROM t),
				y AS (SELECT *, first_value(price) OVER g AS fv, last_value(price) OVER g AS lv FROM x WINDOW g AS (` + wholeGroup("ws, symbol") + `))
				SELECT ws, ws + 20000, symbol, count(DISTINCT qty), ` + stddevOf("qty", "", 1, 0) + `, ` + stddevOf("qty", "", 0, 0) + `,
				` + stddevOf("price", "", 1, 2) + `, min(fv), min(lv)
				FROM y GROUP BY ws, symbol`,
			types: []colType{cTS, cTS, cStr, cInt, cDbl, cDbl, cDbl, cDec2, cDec2},
		},
		{
			name: "Tumble5Minutes/WhereAndSpreadExpression",
			data: dense, results: true, key: 2,
			query: `SELECT window_start, symbol, max(price) - min(price) AS spread, count(*) AS n, sum(qty) AS volume
				FROM TUMBLE(trades, ts, INTERVAL '5' MINUTE)
				WHERE qty >= 3 AND symbol <> 'BRK.B'
				GROUP BY window_start, window_end, symbol`,
			sqlite: `SELECT ws, symbol, max(price) - min(price), count(*), sum(qty)
				FROM (SELECT *, ts - ts % 300000 AS ws FROM t WHERE qty >= 3 AND symbol <> 'BRK.B')
				GROUP BY ws, symbol`,
			types: []colType{cTS, cStr, cDec2, cInt, cInt},
			where: func(tr trade) bool { return tr.hasQty && tr.qty >= 3 && tr.symbol != "BRK.B" },
		},
		{
			name: "Hop1MinuteBy3Minutes/BySymbol",
			data: dense, results: true, key: 3,
			query: `SELECT window_start, window_end, symbol, count(*) AS n, sum(qty) AS volume, avg(qty) AS avg_qty,
				avg(price) AS avg_price, first_value(price) AS open, last_value(price) AS close
				FROM HOP(trades, ts, INTERVAL '1' MINUTE, INTERVAL '3' MINUTE)
				GROUP BY window_start, window_end, symbol`,
			sqlite: `WITH o(k) AS (VALUES (0), (1), (2)),
				x AS (SELECT t.*, ts - ts % 60000 - k * 60000 AS ws FROM t, o),
				y AS (SELECT *, first_value(price) OVER g AS fv, last_value(price) OVER g AS lv FROM x WINDOW g AS (` + wholeGroup("ws, symbol") + `))
				SELECT ws, ws + 180000, symbol, count(*), sum(qty), avg(qty), ` + decAvg("price", "") + `, min(fv), min(lv)
				FROM y GROUP BY ws, symbol`,
			types: []colType{cTS, cTS, cStr, cInt, cInt, cDbl, cDec6, cDec2, cDec2},
		},
		{
			name: "Hop1MinuteBy3Minutes/NoKey",
			data: dense, results: true, key: 2,
			query: `SELECT window_start, window_end, count(*) AS n, count(DISTINCT symbol) AS symbols, sum(price) AS total,
				min(ts) AS first_ts, max(ts) AS last_ts
				FROM HOP(trades, ts, INTERVAL '1' MINUTE, INTERVAL '3' MINUTE)
				GROUP BY window_start, window_end`,
			sqlite: `WITH o(k) AS (VALUES (0), (1), (2))
				SELECT ws, ws + 180000, count(*), count(DISTINCT symbol), sum(price), min(ts), max(ts)
				FROM (SELECT t.*, ts - ts % 60000 - k * 60000 AS ws FROM t, o)
				GROUP BY ws`,
			types: []colType{cTS, cTS, cInt, cInt, cDec2, cTS, cTS},
		},
		{
			name: "Session20Seconds/BySymbol",
			data: dense, results: true, key: 3,
			query: `SELECT window_start, window_end, symbol, count(*) AS n, sum(price) AS total, avg(price) AS avg_price,
				first_value(price) AS open, last_value(price) AS close, max(qty) AS max_qty
				FROM SESSION(trades, ts, INTERVAL '20' SECOND)
				GROUP BY window_start, window_end, symbol`,
			sqlite: `WITH a AS (SELECT *, CASE WHEN ts - lag(ts) OVER (PARTITION BY symbol ORDER BY ts, seq) < 20000 THEN 0 ELSE 1 END AS brk FROM t),
				b AS (SELECT *, sum(brk) OVER (PARTITION BY symbol ORDER BY ts, seq ROWS UNBOUNDED PRECEDING) AS sid FROM a),
				c AS (SELECT *, first_value(price) OVER g AS fv, last_value(price) OVER g AS lv FROM b WINDOW g AS (` + wholeGroup("symbol, sid") + `))
				SELECT min(ts), max(ts) + 20000, symbol, count(*), sum(price), ` + decAvg("price", "") + `, min(fv), min(lv), max(qty)
				FROM c GROUP BY symbol, sid`,
			types: []colType{cTS, cTS, cStr, cInt, cDec2, cDec6, cDec2, cDec2, cInt},
		},
		{
			name: "Session2Seconds/NoKeyHaving",
			data: dense, results: true, key: 2,
			query: `SELECT window_start, window_end, count(*) AS n, count(DISTINCT symbol) AS symbols, stddev_pop(qty) AS sd
				FROM SESSION(trades, ts, INTERVAL '2' SECOND)
				GROUP BY window_start, window_end HAVING count(*) > 1`,
			sqlite: `WITH a AS (SELECT *, CASE WHEN ts - lag(ts) OVER (ORDER BY ts, seq) < 2000 THEN 0 ELSE 1 END AS brk FROM t),
				b AS (SELECT *, sum(brk) OVER (ORDER BY ts, seq ROWS UNBOUNDED PRECEDING) AS sid FROM a)
				SELECT min(ts), max(ts) + 2000, count(*), count(DISTINCT symbol), ` + stddevOf("qty", "", 0, 0) + `
				FROM b GROUP BY sid HAVING count(*) > 1`,
			types: []colType{cTS, cTS, cInt, cInt, cDbl},
		},
	}
	// GROUP BY without a window: every row, late or not, in the order
	// read, which first_value and last_value follow.
	inArrival := "ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING"
	cases = append(cases, oracleCase{
		name: "Continuous/BySymbol",
		data: dense, results: true, changelog: true, key: 1,
		query: `SELECT symbol, count(*) AS n, count(price) AS priced, sum(price) AS total, avg(price) AS avg_price,
			min(price) AS lo, max(price) AS hi, sum(qty) AS volume, count(DISTINCT qty) AS sizes, stddev(qty) AS sd,
			first_value(price) AS open, last_value(price) AS close, max(ts) AS last_ts
			FROM trades GROUP BY symbol`,
		sqlite: `WITH y AS (SELECT *, first_value(price) OVER g AS fv, last_value(price) OVER g AS lv FROM every
				WINDOW g AS (PARTITION BY symbol ORDER BY seq ` + inArrival + `))
			SELECT symbol, count(*), count(price), sum(price), ` + decAvg("price", "") + `, min(price), max(price), sum(qty),
			count(DISTINCT qty), ` + stddevOf("qty", "", 1, 0) + `, min(fv), min(lv), max(ts)
			FROM y GROUP BY symbol`,
		types: []colType{cStr, cInt, cInt, cDec2, cDec6, cDec2, cDec2, cInt, cInt, cDbl, cDec2, cDec2, cTS},
	}, oracleCase{
		name: "Continuous/WhereTwoKeys",
		data: long, results: true, changelog: true, key: 2,
		query: `SELECT symbol, qty, count(*) AS n, max(price) - min(price) AS spread
			FROM trades WHERE qty >= 2 GROUP BY symbol, qty EMIT CHANGES`,
		sqlite: `SELECT symbol, qty, count(*), max(price) - min(price) FROM every WHERE qty >= 2 GROUP BY symbol, qty`,
		types:  []colType{cStr, cInt, cInt, cDec2},
		where:  func(tr trade) bool { return tr.hasQty && tr.qty >= 2 },
	}, oracleCase{
		name: "Continuous/GroupByExpressionsFilter",
		data: dense, results: true, changelog: true, key: 2,
		query: `SELECT substr(symbol, 1, 1) AS initial, qty % 3 AS bucket, count(*) AS n, count(*) FILTER (WHERE price > 250) AS dear,
			sum(qty) FILTER (WHERE price > 250) AS dear_volume, count(DISTINCT qty) FILTER (WHERE price <= 250) AS cheap_sizes,
			avg(price) FILTER (WHERE id % 2 = 0) AS even_avg, count(DISTINCT qty) AS sizes, count(DISTINCT qty) FILTER (WHERE price > 250) AS dear_sizes
			FROM trades WHERE qty IS NOT NULL GROUP BY SUBSTR(symbol, 1, 1), qty%3`,
		sqlite: `SELECT substr(symbol, 1, 1), qty % 3, count(*), count(*) FILTER (WHERE price > 25000), sum(qty) FILTER (WHERE price > 25000),
			count(DISTINCT qty) FILTER (WHERE price <= 25000), ` + decAvg("CASE WHEN id % 2 = 0 THEN price END", "") + `,
			count(DISTINCT qty), count(DISTINCT qty) FILTER (WHERE price > 25000)
			FROM every WHERE qty IS NOT NULL GROUP BY substr(symbol, 1, 1), qty % 3`,
		types: []colType{cStr, cInt, cInt, cInt, cInt, cInt, cDec6, cInt, cInt},
		where: func(tr trade) bool { return tr.hasQty },
	}, oracleCase{
		name: "Continuous/WhereTwoKeysEmitInterval",
		data: long, results: true, changelog: true, key: 2, emitInterval: time.Hour,
		query: `SELECT symbol, qty, count(*) AS n, max(price) - min(price) AS spread
			FROM trades WHERE qty >= 2 GROUP BY symbol, qty`,
		sqlite: `SELECT symbol, qty, count(*), max(price) - min(price) FROM every WHERE qty >= 2 GROUP BY symbol, qty`,
		types:  []colType{cStr, cInt, cInt, cDec2},
		where:  func(tr trade) bool { return tr.hasQty && tr.qty >= 2 },
	}, oracleCase{
		name: "Continuous/NoKey",
		data: dense, results: true, changelog: true, key: 0,
		query:  `SELECT count(*) AS n, count(DISTINCT symbol) AS symbols, sum(qty) AS volume, min(ts) AS first_ts FROM trades`,
		sqlite: `SELECT count(*), count(DISTINCT symbol), sum(qty), min(ts) FROM every`,
		types:  []colType{cInt, cInt, cInt, cTS},
	})
	// Aggregations of a GROUP BY's rows: the outer groups hold the latest
	// row of each inner group.
	cases = append(cases, oracleCase{
		name: "Changes/OfContinuous",
		data: dense, results: true, changelog: true, key: 1,
		query: `SELECT initial, count(*) AS symbols, sum(n) AS n, avg(hi) AS avg_hi, sum(volume) AS volume, count(volume) AS with_volume
			FROM (SELECT substr(symbol, 1, 1) AS initial, symbol, count(*) AS n, max(price) AS hi, sum(qty) AS volume FROM trades GROUP BY symbol) s
			GROUP BY initial`,
		sqlite: `SELECT initial, count(*), sum(n), ` + decAvg("hi", "") + `, sum(volume), count(volume)
			FROM (SELECT substr(symbol, 1, 1) AS initial, symbol, count(*) AS n, max(price) AS hi, sum(qty) AS volume FROM every GROUP BY symbol)
			GROUP BY initial`,
		types: []colType{cStr, cInt, cInt, cDec6, cInt, cInt},
	}, oracleCase{
		name: "Changes/OfContinuousWithWhere",
		data: long, results: true, changelog: true, key: 1,
		query: `WITH sized AS (SELECT symbol, qty, count(*) AS n, sum(price) AS total FROM trades WHERE qty >= 2 GROUP BY symbol, qty)
			SELECT symbol, count(*) AS sizes, sum(n) AS n, sum(total) AS total, avg(total) AS avg_total FROM sized GROUP BY symbol`,
		sqlite: `WITH sized AS (SELECT symbol, qty, count(*) AS n, sum(price) AS total FROM every WHERE qty >= 2 GROUP BY symbol, qty)
			SELECT symbol, count(*), sum(n), sum(total), ` + decAvg("total", "") + ` FROM sized GROUP BY symbol`,
		types: []colType{cStr, cInt, cInt, cDec2, cDec6},
		where: func(tr trade) bool { return tr.hasQty && tr.qty >= 2 },
	}, oracleCase{
		name: "Changes/OfWindows",
		data: dense, results: true, changes: true, key: 1,
		query: `SELECT symbol, count(*) AS windows, sum(n) AS n, avg(n) AS avg_n, sum(volume) AS volume
			FROM (SELECT window_start, symbol, count(*) AS n, sum(qty) AS volume FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY window_start, window_end, symbol) w
			GROUP BY symbol`,
		sqlite: `SELECT symbol, count(*), sum(n), avg(n), sum(volume)
			FROM (SELECT ts - ts % 60000 AS ws, symbol, count(*) AS n, sum(qty) AS volume FROM t GROUP BY ws, symbol)
			GROUP BY symbol`,
		types: []colType{cStr, cInt, cInt, cDbl, cInt},
	}, oracleCase{
		name: "Changes/ByWindow",
		data: dense, results: true, changes: true, key: 1,
		query: `SELECT window_start, count(*) AS symbols, sum(n) AS n
			FROM (SELECT window_start, symbol, count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY window_start, window_end, symbol) w
			GROUP BY window_start`,
		sqlite: `SELECT ws, count(*), sum(n) FROM (SELECT ts - ts % 60000 AS ws, symbol, count(*) AS n FROM t GROUP BY ws, symbol) GROUP BY ws`,
		types:  []colType{cTS, cInt, cInt},
	})
	// OVER of a GROUP BY's rows: each inner group's latest row, with its
	// frames over the latest rows of the groups before it; ties of ORDER
	// BY in the order of the groups' keys.
	w := func(n int) string {
		return fmt.Sprintf(" OVER (ORDER BY length(symbol) DESC, symbol ROWS BETWEEN %d PRECEDING AND CURRENT ROW)", n)
	}
	cases = append(cases, oracleCase{
		name: "Changes/OverOfContinuous",
		data: dense, results: true, changelog: true, key: 1,
		query: `SELECT symbol, n,
				sum(n) OVER (ORDER BY length(symbol) DESC ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS n3,
				avg(hi) OVER (ORDER BY length(symbol) DESC ROWS BETWEEN 5 PRECEDING AND CURRENT ROW) AS hi6,
				min(volume) OVER (ORDER BY length(symbol) DESC ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS volume2,
				count(volume) OVER (ORDER BY length(symbol) DESC ROWS BETWEEN 3 PRECEDING AND CURRENT ROW) AS with_volume4
			FROM (SELECT symbol, count(*) AS n, max(price) AS hi, sum(qty) AS volume FROM trades GROUP BY symbol) s`,
		sqlite: `SELECT symbol, n, sum(n)` + w(2) + `, ` + decAvg("hi", w(5)) + `, min(volume)` + w(1) + `, count(volume)` + w(3) + `
			FROM (SELECT symbol, count(*) AS n, max(price) AS hi, sum(qty) AS volume FROM every GROUP BY symbol)`,
		types: []colType{cStr, cInt, cInt, cDec6, cInt, cInt},
	}, oracleCase{
		name: "Changes/OverPartitioned",
		data: long, results: true, changelog: true, key: 1, emitInterval: time.Hour,
		query: `SELECT symbol, sum(n) OVER (PARTITION BY length(symbol) ORDER BY symbol DESC ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS n2
			FROM (SELECT symbol, count(*) AS n FROM trades WHERE qty >= 2 GROUP BY symbol) s`,
		sqlite: `SELECT symbol, sum(n) OVER (PARTITION BY length(symbol) ORDER BY symbol DESC ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
			FROM (SELECT symbol, count(*) AS n FROM every WHERE qty >= 2 GROUP BY symbol)`,
		types: []colType{cStr, cInt},
		where: func(tr trade) bool { return tr.hasQty && tr.qty >= 2 },
	})
	// Subqueries in FROM and WITH queries, merged into the query that
	// reads them; SQLite runs them as written, but for the window.
	cases = append(cases, oracleCase{
		name: "Subquery/TumbleOverWith",
		data: dense, results: true, key: 3,
		query: `WITH sized AS (SELECT symbol, qty * 2 AS double_qty, price AS p, ts FROM trades WHERE qty >= 2),
				dear AS (SELECT symbol, double_qty, ts FROM sized WHERE p > 150)
			SELECT window_start, window_end, symbol, count(*) AS n, sum(double_qty) AS s
			FROM TUMBLE(dear, ts, INTERVAL '1' MINUTE) GROUP BY window_start, window_end, symbol`,
		sqlite: `WITH sized AS (SELECT symbol, qty * 2 AS double_qty, price AS p, ts FROM t WHERE qty >= 2),
				dear AS (SELECT symbol, double_qty, ts FROM sized WHERE p > 15000)
			SELECT ws, ws + 60000, symbol, count(*), sum(double_qty) FROM (SELECT *, ts - ts % 60000 AS ws FROM dear) GROUP BY ws, symbol`,
		types: []colType{cTS, cTS, cStr, cInt, cInt},
		where: func(tr trade) bool { return tr.hasQty && tr.qty >= 2 && tr.hasPrice && tr.cents > 15000 },
	}, oracleCase{
		name: "Subquery/ContinuousFromSubquery",
		data: dense, results: true, changelog: true, key: 1,
		query: `SELECT x.s, count(*) AS n, max(x.p) AS hi FROM (SELECT substr(symbol, 1, 2) AS s, price AS p FROM trades WHERE price > 100) AS x
			WHERE p < 400 GROUP BY x.s`,
		sqlite: `SELECT x.s, count(*), max(x.p) FROM (SELECT substr(symbol, 1, 2) AS s, price AS p FROM every WHERE price > 10000) AS x
			WHERE p < 40000 GROUP BY x.s`,
		types: []colType{cStr, cInt, cDec2},
		where: func(tr trade) bool { return tr.hasPrice && tr.cents > 10000 && tr.cents < 40000 },
	}, oracleCase{
		name: "Subquery/StarWhereNull",
		data: dense, results: true, distinct: true, key: 2,
		// The query's WHERE reads only the subquery's rows: where qty is
		// NULL, the subquery's WHERE is NULL, and the cast of 'none',
		// an error, is never computed.
		query:  `SELECT DISTINCT * FROM (SELECT id, qty FROM trades WHERE qty > 0) AS x WHERE CAST(coalesce(CAST(qty AS string), 'none') AS int) = qty`,
		sqlite: `SELECT DISTINCT * FROM (SELECT id, qty FROM every WHERE qty > 0) AS x`,
		types:  []colType{cInt, cInt},
		where:  func(tr trade) bool { return tr.hasQty && tr.qty > 0 },
	})
	// SELECT DISTINCT: every row, late or not; each distinct row once.
	cases = append(cases, oracleCase{
		name: "Distinct/Columns",
		data: dense, results: true, distinct: true, key: 2,
		query:  `SELECT DISTINCT symbol, qty FROM trades`,
		sqlite: `SELECT DISTINCT symbol, qty FROM every`,
		types:  []colType{cStr, cInt},
	}, oracleCase{
		name: "Distinct/ExpressionsWhere",
		data: long, results: true, distinct: true, key: 4,
		query:  `SELECT DISTINCT upper(substr(symbol, 1, 2)) AS prefix, qty % 4 AS m, 'x' AS c, 1 + 1 AS two FROM trades WHERE price > 200`,
		sqlite: `SELECT DISTINCT upper(substr(symbol, 1, 2)), qty % 4, 'x', 2 FROM every WHERE price > 20000`,
		types:  []colType{cStr, cInt, cStr, cInt},
		where:  func(tr trade) bool { return tr.hasPrice && tr.cents > 20000 },
	})
	// The smallest input of a bug the oracle found, waiting rows compacted
	// in place in event-time order, which lost one: row 3 is out of order but on
	// time (15 s, the watermark left by rows 1 and 2). Row 4 moves the
	// watermark to 16 s, which releases row 3 alone; rows 2 (16 s) and 1
	// (20 s) wait, row 2 first in event-time order but after row 1 in the
	// slab.
	minimal := []trade{{id: 1, ts: 20_000, qty: 1}, {id: 2, ts: 16_000, qty: 2}, {id: 3, ts: 15_000, qty: 3}, {id: 4, ts: 21_000, qty: 4}}
	for i := range minimal {
		tr := &minimal[i]
		tr.seq, tr.symbol, tr.hasQty, tr.ts = i, "AAPL", true, oracleEpoch.UnixMilli()+tr.ts
	}
	markLate(minimal)
	cases = append(cases, oracleCase{
		name: "OverOutOfOrder/MinimalReproduction",
		data: newOracleData(t, "minimal", minimal, 5), key: 1,
		query:  `SELECT id, ts, qty, sum(qty) OVER (ORDER BY ts ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS s FROM trades`,
		sqlite: `SELECT id, ts, qty, sum(qty) OVER (ORDER BY ts, seq ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) FROM t`,
		types:  []colType{cInt, cTS, cInt, cInt},
	})
	cases = append(cases, overCases("OutOfOrder", dense, long)...)
	cases = append(cases, overCases("InOrder", denseInOrder, longInOrder)...)
	for i := range cases {
		c := &cases[i]
		t.Run(c.name, c.run)
	}
}

// overCases are the OVER queries: dense has many equal event times, long
// spans over 5 hours.
func overCases(variant string, dense, long *oracleData) []oracleCase {
	return []oracleCase{
		{
			name: "Over" + variant + "/RangeMovingAverages15Minutes1Hour4Hours",
			data: long, key: 1,
			query: `SELECT id, symbol, ts, price,
				avg(price) OVER (PARTITION BY symbol ORDER BY ts RANGE BETWEEN INTERVAL '15' MINUTE PRECEDING AND CURRENT ROW) AS ma15,
				avg(price) OVER (PARTITION BY symbol ORDER BY ts RANGE BETWEEN INTERVAL '1' HOUR PRECEDING AND CURRENT ROW) AS ma60,
				avg(price) OVER (PARTITION BY symbol ORDER BY ts RANGE BETWEEN INTERVAL '4' HOUR PRECEDING AND CURRENT ROW) AS ma240,
				count(*) OVER (PARTITION BY symbol ORDER BY ts RANGE BETWEEN INTERVAL '4' HOUR PRECEDING AND CURRENT ROW) AS n240
				FROM trades`,
			sqlite: `SELECT id, symbol, ts, price, ` + decAvg("price", " OVER w15") + `, ` + decAvg("price", " OVER w60") + `, ` + decAvg("price", " OVER w240") + `, count(*) OVER w240
				FROM t
				WINDOW w15 AS (PARTITION BY symbol ORDER BY ts RANGE BETWEEN 900000 PRECEDING AND CURRENT ROW),
				w60 AS (PARTITION BY symbol ORDER BY ts RANGE BETWEEN 3600000 PRECEDING AND CURRENT ROW),
				w240 AS (PARTITION BY symbol ORDER BY ts RANGE BETWEEN 14400000 PRECEDING AND CURRENT ROW)`,
			types: []colType{cInt, cStr, cTS, cDec2, cDec6, cDec6, cDec6, cInt},
		},
		{
			name: "Over" + variant + "/RowsMinMaxCountSumFirstLastStddev5Preceding",
			data: dense, key: 1,
			query: `SELECT id, symbol, ts,
				min(price) OVER (PARTITION BY symbol ORDER BY ts ROWS BETWEEN 5 PRECEDING AND CURRENT ROW) AS lo,
				max(price) OVER (PARTITION BY symbol ORDER BY ts ROWS BETWEEN 5 PRECEDING AND CURRENT ROW) AS hi,
				count(price) OVER (PARTITION BY symbol ORDER BY ts ROWS BETWEEN 5 PRECEDING AND CURRENT ROW) AS priced,
				count(*) OVER (PARTITION BY symbol ORDER BY ts ROWS BETWEEN 5 PRECEDING AND CURRENT ROW) AS n,
				sum(price) OVER (PARTITION BY symbol ORDER BY ts ROWS BETWEEN 5 PRECEDING AND CURRENT ROW) AS total,
				sum(qty) OVER (PARTITION BY symbol ORDER BY ts ROWS BETWEEN 5 PRECEDING AND CURRENT ROW) AS volume,
				first_value(price) OVER (PARTITION BY symbol ORDER BY ts ROWS BETWEEN 5 PRECEDING AND CURRENT ROW) AS first_p,
				last_value(price) OVER (PARTITION BY symbol ORDER BY ts ROWS BETWEEN 5 PRECEDING AND CURRENT ROW) AS last_p,
				stddev(qty) OVER (PARTITION BY symbol ORDER BY ts ROWS BETWEEN 5 PRECEDING AND CURRENT ROW) AS sd
				FROM trades`,
			sqlite: `SELECT id, symbol, ts, min(price) OVER w, max(price) OVER w, count(price) OVER w, count(*) OVER w,
				sum(price) OVER w, sum(qty) OVER w, first_value(price) OVER w, last_value(price) OVER w, ` + stddevOf("qty", " OVER w", 1, 0) + `
				FROM t
				WINDOW w AS (PARTITION BY symbol ORDER BY ts, seq ROWS BETWEEN 5 PRECEDING AND CURRENT ROW)`,
			types: []colType{cInt, cStr, cTS, cDec2, cDec2, cInt, cInt, cDec2, cInt, cDec2, cDec2, cDbl},
		},
		{
			name: "Over" + variant + "/RangeNoPartition30SecondsWithPeersFirstLast",
			data: dense, key: 1,
			query: `SELECT id, ts,
				count(*) OVER (ORDER BY ts RANGE BETWEEN INTERVAL '30' SECOND PRECEDING AND CURRENT ROW) AS n,
				sum(price) OVER (ORDER BY ts RANGE BETWEEN INTERVAL '30' SECOND PRECEDING AND CURRENT ROW) AS total,
				first_value(price) OVER (ORDER BY ts RANGE BETWEEN INTERVAL '30' SECOND PRECEDING AND CURRENT ROW) AS first_p,
				last_value(price) OVER (ORDER BY ts RANGE BETWEEN INTERVAL '30' SECOND PRECEDING AND CURRENT ROW) AS last_p,
				stddev_pop(qty) OVER (ORDER BY ts RANGE BETWEEN INTERVAL '30' SECOND PRECEDING AND CURRENT ROW) AS sd_pop,
				max(symbol) OVER (ORDER BY ts RANGE BETWEEN INTERVAL '30' SECOND PRECEDING AND CURRENT ROW) AS max_symbol
				FROM trades`,
			sqlite: `SELECT id, ts, count(*) OVER w, sum(price) OVER w,
				(SELECT price FROM t AS u WHERE u.ts BETWEEN t.ts - 30000 AND t.ts ORDER BY u.ts, u.seq LIMIT 1),
				(SELECT price FROM t AS u WHERE u.ts BETWEEN t.ts - 30000 AND t.ts ORDER BY u.ts DESC, u.seq DESC LIMIT 1),
				` + stddevOf("qty", " OVER w", 0, 0) + `, max(symbol) OVER w
				FROM t
				WINDOW w AS (ORDER BY ts RANGE BETWEEN 30000 PRECEDING AND CURRENT ROW)`,
			types: []colType{cInt, cTS, cInt, cDec2, cDec2, cDec2, cDbl, cStr},
		},
	}
}

// The joins. A second generated stream, quotes, joins trades: interval
// joins of the two, and joins of either with a table of symbols.
//
// The watermark rule of two sources in direct mode with batches of one row:
// the readers take turns, one row of trades, then one of quotes, until a
// file ends, and then the rest of the other (a file's end is seen on its
// turn after its last row). After each row the watermark becomes
// max(itself, min over the sources that have not ended of (the source's
// max event time so far - the bound)), MinInt64 while a source that has
// not ended has sent nothing. A row is late iff its event time is below the
// watermark left by the rows before it; the other stream holds the
// watermark back, so a row more than the bound behind its own stream can
// be on time. Late rows join nothing; a pair of on-time rows is always
// found, since a row stays in the join's state while an on-time row can
// still match it. So the final output is the batch join of the on-time
// rows: SQLite's join of t with qt, the on-time quotes.
//
// A table join has no event time: every row of the stream is joined, with
// the table's latest row per key, and SQLite's table s holds that row.

// quote is one generated row of quotes. Times are milliseconds since the
// epoch, bids cents.
type quote struct {
	seq       int
	id        int64
	symbol    string
	hasSymbol bool
	cents     int64
	hasBid    bool
	ts        int64
	late      bool
}

// joinTimes returns the n event times of one stream of a join: a clock of
// one row a second less a lag that wanders between 0 and 4 s, so that the
// streams drift apart and back within the bound; rows take the clock's time
// or stay at the stream's newest (equal times); about 12% jump back 0 to
// 5 s behind the stream's newest, on time; about 3% more than the bound
// behind it, half of them less than 5 s more, which the other stream may
// keep on time.
func joinTimes(r *rand.Rand, n int) []int64 {
	bound := oracleBound.Milliseconds()
	out := make([]int64, n)
	high, lag := oracleEpoch.UnixMilli(), int64(0)
	for i := range out {
		if r.IntN(10) == 0 {
			lag = min(max(lag+500*(2*r.Int64N(2)-1), 0), 4000)
		}
		switch p := r.IntN(100); {
		case i >= 20 && p < 3:
			if r.IntN(2) == 0 {
				out[i] = high - bound - 1 - r.Int64N(5_000)
			} else {
				out[i] = high - bound - 1 - r.Int64N(60_000)
			}
		case i >= 1 && p < 15:
			out[i] = high - 250*r.Int64N(bound/250+1)
		default:
			high = max(high, oracleEpoch.UnixMilli()+int64(i)*1000-lag+250*r.Int64N(5))
			out[i] = high
		}
	}
	return out
}

// markLateInTurn applies the watermark rule of two sources read in turn to
// their event times, and returns which rows are late.
func markLateInTurn(a, b []int64) (lateA, lateB []bool) {
	bound := oracleBound.Milliseconds()
	ts := [2][]int64{a, b}
	late := [2][]bool{make([]bool, len(a)), make([]bool, len(b))}
	var next [2]int
	var ended [2]bool
	high := [2]int64{math.MinInt64, math.MinInt64}
	wm := int64(math.MinInt64)
	for !ended[0] || !ended[1] {
		for s := range 2 {
			if ended[s] {
				continue
			}
			if next[s] == len(ts[s]) {
				ended[s] = true // the watermark moves on with the next row
				continue
			}
			t := ts[s][next[s]]
			late[s][next[s]] = t < wm
			high[s] = max(high[s], t)
			next[s]++
			low := int64(math.MaxInt64)
			for o := range 2 {
				if ended[o] {
					continue
				}
				if high[o] == math.MinInt64 {
					low = math.MinInt64
				} else {
					low = min(low, high[o]-bound)
				}
			}
			wm = max(wm, low)
		}
	}
	return late[0], late[1]
}

// quoteLines writes quotes as JSON lines, varying the encodings as
// jsonLines does; NULL symbols and bids are missing or null.
func quoteLines(quotes []quote, seed uint64) string {
	r := rand.New(rand.NewPCG(seed, 0x0E7E))
	var b strings.Builder
	for _, q := range quotes {
		fields := []string{`"qid":` + strconv.FormatInt(q.id, 10)}
		switch {
		case q.hasSymbol:
			sym, _ := json.Marshal(q.symbol)
			fields = append(fields, `"symbol":`+string(sym))
		case r.IntN(2) == 0:
			fields = append(fields, `"symbol":null`)
		}
		switch {
		case q.hasBid:
			p := formatCents(q.cents, r.IntN(4) == 0)
			if r.IntN(10) == 0 {
				p = `"` + p + `"`
			}
			fields = append(fields, `"bid":`+p)
		case r.IntN(2) == 0:
			fields = append(fields, `"bid":null`)
		}
		writeRecord(&b, r, append(fields, tsField(r, q.ts, -5*3600)))
	}
	return b.String()
}

// symbolRow is a row of the symbols table; an empty symbol is NULL.
type symbolRow struct {
	symbol, name string
	lot          int64
	hasLot       bool
}

// oracleTable is the symbols table's file: the join streams' symbols
// AMZN, NVDA, META and TSLA are not in it, MSFT comes twice (the second row
// wins), and a row has a NULL symbol, which matches nothing.
var oracleTable = []symbolRow{
	{"AAPL", "Apple", 100, true},
	{"MSFT", "Microsoft", 50, true},
	{"GOOG", "Alphabet", 10, true},
	{"BRK.B", "Berkshire Hathaway B", 1, true},
	{`Q"T`, `Quote "T"`, 7, true},
	{"", "no symbol", 3, true},
	{"ÆØÅ", "Æøå ASA", 25, true},
	{"XOM", "Exxon Mobil", 100, true},
	{"JPM", "JPMorgan Chase", 20, true},
	{"MSFT", "Microsoft Corp.", 75, true},
	{"V", "Visa", 0, false},
}

// lotRow is a row of the lots table, keyed by lot; hasLot false is NULL.
type lotRow struct {
	lot    int64
	hasLot bool
	label  string
}

// oracleLots is the lots table's file, the second table of a join of
// three inputs, looked up by the symbols' lot or the trades' qty: lots 3, 7
// and 25 are not in it, 10 comes twice (the second row wins), and a row
// has a NULL lot, which matches nothing.
var oracleLots = []lotRow{
	{100, true, "round lot"},
	{50, true, "half lot"},
	{10, true, "ten"},
	{1, true, "single"},
	{75, true, "three quarters"},
	{0, false, "no lot"},
	{20, true, "score"},
	{10, true, "tens"},
	{2, true, "pair"},
	{5, true, "five"},
}

// joinData is the data of the joins: trades in data.db's t, on-time rows
// only for the interval joins (all rows for the table joins, whose data is
// a second oracleData of the same trades), quotes in q with their late
// flags and the view qt of the on-time ones, the table's latest rows in s.
type joinData struct {
	interval, table *oracleData
	quotes          []quote
	quotesPath      string
	tablePath       string
	lotsPath        string
}

func newJoinData(t *testing.T) *joinData {
	t.Helper()
	g := oracleGen{seed: 11, rows: 3000, symbols: 12, maxStep: 2}
	trades := g.generate()
	r := rand.New(rand.NewPCG(12, 0x10))
	for i, ts := range joinTimes(r, len(trades)) {
		trades[i].ts = ts
	}
	// More quotes than trades: after trades ends, quotes goes on alone.
	quotes := make([]quote, 3300)
	for i := range quotes {
		q := &quotes[i]
		q.seq, q.id = i, int64(50_000+i)
		if r.IntN(100) >= 3 {
			q.hasSymbol, q.symbol = true, oracleSymbols[r.IntN(g.symbols)]
		}
		if r.IntN(100) >= 5 {
			q.hasBid, q.cents = true, 100+r.Int64N(50_000)
		}
	}
	qts := joinTimes(r, len(quotes))
	for i := range quotes {
		quotes[i].ts = qts[i]
	}
	tts := make([]int64, len(trades))
	for i, tr := range trades {
		tts[i] = tr.ts
	}
	lateT, lateQ := markLateInTurn(tts, qts)
	all := slices.Clone(trades)
	for i := range trades {
		trades[i].late, all[i].late = lateT[i], false
	}
	for i := range quotes {
		quotes[i].late = lateQ[i]
	}

	jd := &joinData{quotes: quotes}
	jd.interval = newOracleData(t, "join-trades", trades, g.seed)
	jd.table = newOracleData(t, "join-trades-all", all, g.seed)
	dir := t.TempDir()
	jd.quotesPath = filepath.Join(dir, "quotes.jsonl")
	if err := os.WriteFile(jd.quotesPath, []byte(quoteLines(quotes, 13)), 0o644); err != nil {
		t.Fatal(err)
	}
	var tb strings.Builder
	for _, row := range oracleTable {
		m := map[string]any{"name": row.name}
		if row.symbol != "" {
			m["symbol"] = row.symbol
		}
		if row.hasLot {
			m["lot"] = row.lot
		}
		line, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		tb.Write(append(line, '\n'))
	}
	jd.tablePath = filepath.Join(dir, "symbols.jsonl")
	if err := os.WriteFile(jd.tablePath, []byte(tb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	var lb strings.Builder
	for _, row := range oracleLots {
		m := map[string]any{"label": row.label}
		if row.hasLot {
			m["lot"] = row.lot
		}
		line, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		lb.Write(append(line, '\n'))
	}
	jd.lotsPath = filepath.Join(dir, "lots.jsonl")
	if err := os.WriteFile(jd.lotsPath, []byte(lb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, d := range []*oracleData{jd.interval, jd.table} {
		jd.load(t, d.db)
	}
	return jd
}

// load writes quotes and the table's latest rows to db.
func (jd *joinData) load(t *testing.T, db *sql.DB) {
	t.Helper()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatalf("SQLite: %s: %v", q, err)
		}
	}
	exec(`CREATE TABLE q (seq INTEGER PRIMARY KEY, qid INTEGER NOT NULL, symbol TEXT, bid INTEGER, ts INTEGER NOT NULL, late INTEGER NOT NULL)`)
	for _, q := range jd.quotes {
		var sym, bid any
		if q.hasSymbol {
			sym = q.symbol
		}
		if q.hasBid {
			bid = q.cents
		}
		exec(`INSERT INTO q VALUES (?, ?, ?, ?, ?, ?)`, q.seq, q.id, sym, bid, q.ts, q.late)
	}
	exec(`CREATE INDEX q_symbol_ts ON q (symbol, ts)`)
	exec(`CREATE VIEW qt AS SELECT * FROM q WHERE NOT late`)
	exec(`CREATE TABLE s (symbol TEXT, name TEXT NOT NULL, lot INTEGER)`)
	latest := map[string]symbolRow{}
	var order []string
	for _, row := range oracleTable {
		if _, ok := latest[row.symbol]; !ok {
			order = append(order, row.symbol)
		}
		latest[row.symbol] = row
	}
	for _, k := range order {
		row := latest[k]
		var sym, lot any
		if row.symbol != "" {
			sym = row.symbol
		}
		if row.hasLot {
			lot = row.lot
		}
		exec(`INSERT INTO s VALUES (?, ?, ?)`, sym, row.name, lot)
	}
	exec(`CREATE TABLE l (lot INTEGER, label TEXT NOT NULL)`)
	lots := map[lotRow]string{}
	var lotOrder []lotRow
	for _, row := range oracleLots {
		k := lotRow{lot: row.lot, hasLot: row.hasLot}
		if _, ok := lots[k]; !ok {
			lotOrder = append(lotOrder, k)
		}
		lots[k] = row.label
	}
	for _, k := range lotOrder {
		var lot any
		if k.hasLot {
			lot = k.lot
		}
		exec(`INSERT INTO l VALUES (?, ?)`, lot, lots[k])
	}
}

// The sources of the joins' specs.
func (jd *joinData) tradesInput(d *oracleData) oracleInput { return jd.tradesInputWhere(d, nil) }

// tradesInputWhere is tradesInput for a query that filters the trades by
// where before it judges them late: those it drops are neither late nor
// kept, but filtered.
func (jd *joinData) tradesInputWhere(d *oracleData, where func(trade) bool) oracleInput {
	in := oracleInput{source: oracleSpec(d.path, "").Sources[0]}
	for _, tr := range d.trades {
		if where != nil && !where(tr) {
			continue
		}
		if tr.late {
			in.late++
		} else {
			in.kept++
		}
	}
	return in
}

func (jd *joinData) quotesInput(withLate bool) oracleInput {
	in := oracleInput{source: v1alpha1.Source{
		Name: "quotes", File: &v1alpha1.FileSource{Path: jd.quotesPath}, Format: v1alpha1.FormatJSON,
		Schema: []v1alpha1.Column{
			{Name: "qid", Type: "int"}, {Name: "symbol", Type: "string"}, {Name: "bid", Type: "decimal(10,2)"}, {Name: "ts", Type: "timestamp"},
		},
		EventTime: &v1alpha1.EventTime{Column: "ts", MaxOutOfOrderness: metav1.Duration{Duration: oracleBound}},
	}}
	for _, q := range jd.quotes {
		if q.late && withLate {
			in.late++
		} else {
			in.kept++
		}
	}
	return in
}

// quotes2 is in, a source of quotes, again as a source of its own.
func quotes2(in oracleInput) oracleInput {
	in.source.Name = "quotes2"
	return in
}

func (jd *joinData) tableInput() oracleInput {
	return oracleInput{
		source: v1alpha1.Source{
			Name: "symbols", File: &v1alpha1.FileSource{Path: jd.tablePath}, Format: v1alpha1.FormatJSON,
			Schema: []v1alpha1.Column{{Name: "symbol", Type: "string"}, {Name: "name", Type: "string"}, {Name: "lot", Type: "int"}},
			Table:  &v1alpha1.TableSource{Key: []string{"symbol"}},
		},
		kept: int64(len(oracleTable)),
	}
}

func (jd *joinData) lotsInput() oracleInput {
	return oracleInput{
		source: v1alpha1.Source{
			Name: "lots", File: &v1alpha1.FileSource{Path: jd.lotsPath}, Format: v1alpha1.FormatJSON,
			Schema: []v1alpha1.Column{{Name: "lot", Type: "int"}, {Name: "label", Type: "string"}},
			Table:  &v1alpha1.TableSource{Key: []string{"lot"}},
		},
		kept: int64(len(oracleLots)),
	}
}

// TestOracleJoins compares interval joins of trades and quotes, and joins of
// either with a table, with SQLite's joins of the on-time rows.
func TestOracleJoins(t *testing.T) {
	jd := newJoinData(t)
	interval := jd.interval
	intervalInputs := []oracleInput{jd.tradesInput(interval), jd.quotesInput(true)}

	t.Run("TheStreamsHaveLateHeldBackAndNullRows", func(t *testing.T) {
		bound := oracleBound.Milliseconds()
		heldBack := 0
		count := func(name string, ts []int64, late []bool, nulls int) {
			var nLate, held, ooo int
			high := int64(math.MinInt64)
			for i, x := range ts {
				switch {
				case late[i]:
					nLate++
				case x < high-bound:
					held++ // behind its own stream by more than the bound, on time
				case x < high:
					ooo++
				}
				high = max(high, x)
			}
			t.Logf("%s: %d rows over %s: %d late, %d on time only as the other stream held the watermark, %d out of order, %d NULL keys",
				name, len(ts), time.Duration(high-ts[0])*time.Millisecond, nLate, held, ooo, nulls)
			if nLate < 30 || held < 1 || ooo < 100 {
				t.Errorf("%s: too few rows of a kind the oracle must cover", name)
			}
			heldBack += held
		}
		var tts, qts []int64
		var tl, ql []bool
		for _, tr := range interval.trades {
			tts, tl = append(tts, tr.ts), append(tl, tr.late)
		}
		nullSymbols := 0
		for _, q := range jd.quotes {
			qts, ql = append(qts, q.ts), append(ql, q.late)
			if !q.hasSymbol {
				nullSymbols++
			}
		}
		count("trades", tts, tl, 0)
		count("quotes", qts, ql, nullSymbols)
		if nullSymbols < 30 || heldBack < 10 {
			t.Errorf("%d quotes with a NULL symbol, %d rows on time only as the other stream held the watermark; want 30 or more, 10 or more", nullSymbols, heldBack)
		}
	})

	cases := []oracleCase{
		{
			name: "IntervalJoin5SecondsEitherWay/BySymbol",
			data: interval, inputs: intervalInputs, results: true, key: 2,
			query: `SELECT t.id, q.qid, t.symbol, t.price, q.bid, t.price - q.bid AS edge, t.ts AS trade_ts, q.ts AS quote_ts
				FROM trades t JOIN quotes q
				ON t.symbol = q.symbol AND t.ts BETWEEN q.ts - INTERVAL '5' SECOND AND q.ts + INTERVAL '5' SECOND`,
			sqlite: `SELECT t.id, q.qid, t.symbol, t.price, q.bid, t.price - q.bid, t.ts, q.ts
				FROM t JOIN qt AS q ON t.symbol = q.symbol AND t.ts BETWEEN q.ts - 5000 AND q.ts + 5000`,
			types: []colType{cInt, cInt, cStr, cDec2, cDec2, cDec2, cTS, cTS},
		},
		{
			// Every on-time trade: with the quotes it pairs with, or once
			// with NULLs when the watermark passes the last time a quote
			// could; the rest of ON decides which quotes pair.
			name: "IntervalJoin5SecondsEitherWay/Left",
			data: interval, inputs: intervalInputs, results: true, key: 2,
			query: `SELECT t.id, q.qid, t.symbol, t.price, q.bid, t.ts AS trade_ts
				FROM trades t LEFT JOIN quotes q
				ON t.symbol = q.symbol AND t.ts BETWEEN q.ts - INTERVAL '2' SECOND AND q.ts + INTERVAL '1' SECOND AND q.bid < t.price`,
			sqlite: `SELECT t.id, q.qid, t.symbol, t.price, q.bid, t.ts
				FROM t LEFT JOIN qt AS q ON t.symbol = q.symbol AND t.ts BETWEEN q.ts - 2000 AND q.ts + 1000 AND q.bid < t.price`,
			types: []colType{cInt, cInt, cStr, cDec2, cDec2, cTS},
		},
		{
			// Every on-time quote: with the trades it pairs with, or once
			// with NULLs when the watermark passes the last time a trade
			// could (its time plus Upper, 1 s), or at once for a NULL symbol.
			name: "IntervalJoin5SecondsEitherWay/Right",
			data: interval, inputs: intervalInputs, results: true, key: 2,
			query: `SELECT t.id, q.qid, q.symbol, t.price, q.bid, q.ts AS quote_ts
				FROM trades t RIGHT JOIN quotes q
				ON t.symbol = q.symbol AND t.ts BETWEEN q.ts - INTERVAL '2' SECOND AND q.ts + INTERVAL '1' SECOND AND q.bid < t.price`,
			sqlite: `SELECT t.id, q.qid, q.symbol, t.price, q.bid, q.ts
				FROM qt AS q LEFT JOIN t ON t.symbol = q.symbol AND t.ts BETWEEN q.ts - 2000 AND q.ts + 1000 AND q.bid < t.price`,
			types: []colType{cInt, cInt, cStr, cDec2, cDec2, cTS},
		},
		{
			// Every on-time trade and quote, paired or alone.
			name: "IntervalJoin5SecondsEitherWay/Full",
			data: interval, inputs: intervalInputs, results: true, key: 2,
			query: `SELECT t.id, q.qid, t.symbol, q.symbol AS qsymbol, t.ts AS trade_ts, q.ts AS quote_ts
				FROM trades t FULL JOIN quotes q
				ON t.symbol = q.symbol AND t.ts BETWEEN q.ts - INTERVAL '1' SECOND AND q.ts + INTERVAL '3' SECOND AND q.bid < t.price`,
			sqlite: `SELECT t.id, q.qid, t.symbol, q.symbol, t.ts, q.ts
				FROM t LEFT JOIN qt AS q ON t.symbol = q.symbol AND t.ts BETWEEN q.ts - 1000 AND q.ts + 3000 AND q.bid < t.price
				UNION ALL
				SELECT NULL, q.qid, NULL, q.symbol, NULL, q.ts FROM qt AS q
				WHERE NOT EXISTS (SELECT 1 FROM t WHERE t.symbol = q.symbol AND t.ts BETWEEN q.ts - 1000 AND q.ts + 3000 AND q.bid < t.price)`,
			types: []colType{cInt, cInt, cStr, cStr, cTS, cTS},
		},
		{
			// The quote's time first: q.ts ∈ [t.ts - 2 s, t.ts], the trade 0 to
			// 2 s after the quote. The ON condition on prices and WHERE filter
			// the pairs.
			name: "IntervalJoin0To2SecondsAfter/ResidualOnAndWhere",
			data: interval, inputs: intervalInputs, results: true, key: 2,
			query: `SELECT t.id, q.qid, t.symbol, t.price, q.bid, t.qty, t.ts AS trade_ts, q.ts AS quote_ts
				FROM trades AS t JOIN quotes AS q
				ON q.symbol = t.symbol AND q.ts BETWEEN t.ts - INTERVAL '2' SECOND AND t.ts AND t.price > q.bid
				WHERE t.qty >= 3 AND q.symbol <> 'BRK.B'`,
			sqlite: `SELECT t.id, q.qid, t.symbol, t.price, q.bid, t.qty, t.ts, q.ts
				FROM t JOIN qt AS q ON q.symbol = t.symbol AND t.ts BETWEEN q.ts AND q.ts + 2000 AND t.price > q.bid
				WHERE t.qty >= 3 AND q.symbol <> 'BRK.B'`,
			types: []colType{cInt, cInt, cStr, cDec2, cDec2, cInt, cTS, cTS},
		},
		{
			name: "IntervalJoin0To2SecondsAfter/ResidualOn",
			data: interval, inputs: intervalInputs, results: true, key: 2,
			query: `SELECT t.id, q.qid, t.price, q.bid, t.ts AS trade_ts, q.ts AS quote_ts
				FROM trades t JOIN quotes q
				ON t.symbol = q.symbol AND t.ts BETWEEN q.ts AND q.ts + INTERVAL '2' SECOND AND t.price > q.bid`,
			sqlite: `SELECT t.id, q.qid, t.price, q.bid, t.ts, q.ts
				FROM t JOIN qt AS q ON q.symbol = t.symbol AND t.ts BETWEEN q.ts AND q.ts + 2000 AND t.price > q.bid`,
			types: []colType{cInt, cInt, cDec2, cDec2, cTS, cTS},
		},
		{
			name: "IntervalJoin0To2SecondsAfter/Where",
			data: interval, inputs: intervalInputs, results: true, key: 2,
			query: `SELECT t.id, q.qid, t.qty, q.bid, t.ts AS trade_ts, q.ts AS quote_ts
				FROM trades t JOIN quotes q
				ON t.symbol = q.symbol AND t.ts BETWEEN q.ts AND q.ts + INTERVAL '2' SECOND
				WHERE t.qty >= 3 AND q.symbol <> 'BRK.B'`,
			sqlite: `SELECT t.id, q.qid, t.qty, q.bid, t.ts, q.ts
				FROM t JOIN qt AS q ON q.symbol = t.symbol AND t.ts BETWEEN q.ts AND q.ts + 2000
				WHERE t.qty >= 3 AND q.symbol <> 'BRK.B'`,
			types: []colType{cInt, cInt, cInt, cDec2, cTS, cTS},
		},
		{
			// A window join of two GROUP BYs of 10-second windows, each
			// side with its WHERE or HAVING, the joined rows filtered.
			name: "WindowJoin/TumbleBySymbol",
			data: interval, inputs: []oracleInput{jd.tradesInputWhere(interval, func(tr trade) bool { return tr.hasQty && tr.qty >= 2 }), jd.quotesInput(true)},
			results: true, key: 2,
			query: `SELECT T.symbol, T.ws, T.n, T.volume, Q.quotes, Q.hi
				FROM (SELECT symbol, window_start AS ws, count(*) AS n, sum(qty) AS volume FROM TUMBLE(trades, ts, INTERVAL '10' SECOND)
					WHERE qty >= 2 GROUP BY symbol, window_start, window_end) T
				JOIN (SELECT symbol, window_start AS ws, count(*) AS quotes, max(bid) AS hi FROM TUMBLE(quotes, ts, INTERVAL '10' SECOND)
					GROUP BY symbol, window_start, window_end HAVING count(*) > 1) Q
				ON T.symbol = Q.symbol AND T.ws = Q.ws
				WHERE T.n > 1`,
			sqlite: `SELECT T.symbol, T.ws, T.n, T.volume, Q.quotes, Q.hi
				FROM (SELECT symbol, ts - ts % 10000 AS ws, count(*) AS n, sum(qty) AS volume FROM t WHERE qty >= 2 GROUP BY symbol, ws) T
				JOIN (SELECT symbol, ts - ts % 10000 AS ws, count(*) AS quotes, max(bid) AS hi FROM qt GROUP BY symbol, ws HAVING count(*) > 1) Q
				ON T.symbol = Q.symbol AND T.ws = Q.ws
				WHERE T.n > 1`,
			types: []colType{cStr, cTS, cInt, cInt, cInt, cDec2},
		},
		{
			// An outer window join: each side's windows that match nothing
			// in the other, with NULLs, and a residual ON that lets some
			// pairs fail.
			name: "WindowJoin/FullTumbleBySymbol",
			data: interval, inputs: []oracleInput{jd.tradesInputWhere(interval, func(tr trade) bool { return tr.hasQty && tr.qty >= 4 }), jd.quotesInput(true)},
			results: true, key: 4,
			query: `SELECT T.symbol, Q.symbol AS qsym, T.ws, Q.ws AS qws, T.n, Q.quotes, Q.hi
				FROM (SELECT symbol, window_start AS ws, count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '10' SECOND)
					WHERE qty >= 4 GROUP BY symbol, window_start, window_end) T
				FULL JOIN (SELECT symbol, window_start AS ws, count(*) AS quotes, max(bid) AS hi FROM TUMBLE(quotes, ts, INTERVAL '10' SECOND)
					GROUP BY symbol, window_start, window_end HAVING count(*) > 1) Q
				ON T.symbol = Q.symbol AND T.ws = Q.ws AND T.n < Q.quotes`,
			sqlite: `WITH tw AS MATERIALIZED (SELECT symbol, ts - ts % 10000 AS ws, count(*) AS n FROM t WHERE qty >= 4 GROUP BY symbol, ws),
				qw AS MATERIALIZED (SELECT symbol, ts - ts % 10000 AS ws, count(*) AS quotes, max(bid) AS hi FROM qt GROUP BY symbol, ws HAVING count(*) > 1)
				SELECT tw.symbol, qw.symbol, tw.ws, qw.ws, tw.n, qw.quotes, qw.hi
				FROM tw FULL JOIN qw ON tw.symbol = qw.symbol AND tw.ws = qw.ws AND tw.n < qw.quotes`,
			types: []colType{cStr, cStr, cTS, cTS, cInt, cInt, cDec2},
		},
		{
			name: "WindowJoin/LeftTumbleBySymbol",
			data: interval, inputs: intervalInputs, results: true, key: 2,
			query: `SELECT T.symbol, T.ws, T.n, Q.quotes
				FROM (SELECT symbol, window_start AS ws, count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '10' SECOND) GROUP BY symbol, window_start, window_end) T
				LEFT JOIN (SELECT symbol, window_start AS ws, count(*) AS quotes FROM TUMBLE(quotes, ts, INTERVAL '10' SECOND)
					GROUP BY symbol, window_start, window_end HAVING max(bid) > 50) Q
				ON T.symbol = Q.symbol AND T.ws = Q.ws
				WHERE Q.quotes IS NULL OR Q.quotes > 1`,
			sqlite: `SELECT T.symbol, T.ws, T.n, Q.quotes
				FROM (SELECT symbol, ts - ts % 10000 AS ws, count(*) AS n FROM t GROUP BY symbol, ws) T
				LEFT JOIN (SELECT symbol, ts - ts % 10000 AS ws, count(*) AS quotes FROM qt GROUP BY symbol, ws HAVING max(bid) > 5000) Q
				ON T.symbol = Q.symbol AND T.ws = Q.ws
				WHERE Q.quotes IS NULL OR Q.quotes > 1`,
			types: []colType{cStr, cTS, cInt, cInt},
		},
		{
			name: "WindowJoin/RightHopByEnd",
			data: interval, inputs: []oracleInput{jd.tradesInputWhere(interval, func(tr trade) bool { return tr.hasQty && tr.qty >= 5 }), jd.quotesInput(true)},
			results: true, key: 2,
			query: `WITH t AS (SELECT symbol, window_end AS we, count(*) AS n FROM HOP(trades, ts, INTERVAL '5' SECOND, INTERVAL '15' SECOND) WHERE qty >= 5 GROUP BY symbol, window_start, window_end),
				q AS (SELECT symbol, window_end AS we, count(*) AS n FROM HOP(quotes, ts, INTERVAL '5' SECOND, INTERVAL '15' SECOND) GROUP BY symbol, window_start, window_end)
				SELECT q.symbol, q.we, t.n AS trades, q.n AS quotes FROM t RIGHT JOIN q ON t.we = q.we AND t.symbol = q.symbol`,
			sqlite: `WITH w AS (SELECT 0 AS k UNION ALL SELECT 1 UNION ALL SELECT 2),
				th AS (SELECT symbol, ts - ts % 5000 + 15000 - 5000 * k AS we FROM t, w WHERE qty >= 5),
				qh AS (SELECT symbol, ts - ts % 5000 + 15000 - 5000 * k AS we FROM qt, w),
				tt AS MATERIALIZED (SELECT symbol, we, count(*) AS n FROM th GROUP BY symbol, we),
				qq AS MATERIALIZED (SELECT symbol, we, count(*) AS n FROM qh GROUP BY symbol, we)
				SELECT qq.symbol, qq.we, tt.n, qq.n FROM qq LEFT JOIN tt ON tt.we = qq.we AND tt.symbol = qq.symbol`,
			types: []colType{cStr, cTS, cInt, cInt},
		},
		{
			// Hopping windows matched by their ends, a residual ON.
			name: "WindowJoin/HopByEnd",
			data: interval, inputs: intervalInputs, results: true, key: 2,
			query: `WITH t AS (SELECT symbol, window_end AS we, count(*) AS n, max(price) AS hi FROM HOP(trades, ts, INTERVAL '5' SECOND, INTERVAL '15' SECOND) GROUP BY symbol, window_start, window_end),
				q AS (SELECT symbol, window_end AS we, count(*) AS n, min(bid) AS lo FROM HOP(quotes, ts, INTERVAL '5' SECOND, INTERVAL '15' SECOND) GROUP BY symbol, window_start, window_end)
				SELECT t.symbol, t.we, t.n AS trades, q.n AS quotes, t.hi - q.lo AS spread FROM t JOIN q ON t.we = q.we AND t.symbol = q.symbol AND t.hi > q.lo`,
			sqlite: `WITH w AS (SELECT 0 AS k UNION ALL SELECT 1 UNION ALL SELECT 2),
				th AS (SELECT symbol, ts - ts % 5000 + 15000 - 5000 * k AS we, price FROM t, w),
				qh AS (SELECT symbol, ts - ts % 5000 + 15000 - 5000 * k AS we, bid FROM qt, w),
				tt AS (SELECT symbol, we, count(*) AS n, max(price) AS hi FROM th GROUP BY symbol, we),
				qq AS (SELECT symbol, we, count(*) AS n, min(bid) AS lo FROM qh GROUP BY symbol, we)
				SELECT tt.symbol, tt.we, tt.n, qq.n, tt.hi - qq.lo FROM tt JOIN qq ON tt.we = qq.we AND tt.symbol = qq.symbol AND tt.hi > qq.lo`,
			types: []colType{cStr, cTS, cInt, cInt, cDec2},
		},
		{
			// Both bounds below the quote's time: Upper is negative.
			name: "IntervalJoin3To1SecondsBefore/BySymbol",
			data: interval, inputs: intervalInputs, results: true, key: 2,
			query: `SELECT t.id, q.qid, t.ts AS trade_ts, q.ts AS quote_ts
				FROM trades t JOIN quotes q
				ON t.symbol = q.symbol AND t.ts BETWEEN q.ts - INTERVAL '3' SECOND AND q.ts - INTERVAL '1' SECOND`,
			sqlite: `SELECT t.id, q.qid, t.ts, q.ts
				FROM t JOIN qt AS q ON t.symbol = q.symbol AND t.ts BETWEEN q.ts - 3000 AND q.ts - 1000`,
			types: []colType{cInt, cInt, cTS, cTS},
		},
	}

	// The trades late by their own watermark: a window over a table
	// join's rows follows the stream's time alone.
	own := slices.Clone(jd.table.trades)
	markLate(own)
	ownData := newOracleData(t, "join-trades-own", own, 11)
	jd.load(t, ownData.db)

	// Aggregations of a join's rows. A pair's times may be either row's,
	// up to 5 s before the watermark: the windows close by the join's
	// bound, and not one pair is late.
	cases = append(cases,
		oracleCase{
			name: "AfterJoin/TumbleByQuoteTime",
			data: interval, inputs: intervalInputs, results: true, key: 3,
			query: `WITH j AS (
					SELECT t.symbol, t.qty, q.bid, q.ts FROM trades t JOIN quotes q
					ON t.symbol = q.symbol AND t.ts BETWEEN q.ts - INTERVAL '5' SECOND AND q.ts + INTERVAL '5' SECOND
					WHERE t.qty >= 3)
				SELECT window_start, window_end, symbol, count(*) AS n, sum(qty) AS qty, max(bid) AS top
				FROM TUMBLE(j, ts, INTERVAL '10' SECOND) GROUP BY window_start, window_end, symbol`,
			sqlite: `SELECT q.ts / 10000 * 10000, q.ts / 10000 * 10000 + 10000, t.symbol, count(*), sum(t.qty), max(q.bid)
				FROM t JOIN qt AS q ON t.symbol = q.symbol AND t.ts BETWEEN q.ts - 5000 AND q.ts + 5000
				WHERE t.qty >= 3 GROUP BY 1, 2, 3`,
			types: []colType{cTS, cTS, cStr, cInt, cInt, cDec2},
		},
		oracleCase{
			// Windows of a LEFT JOIN's rows by the trades' time: the trades
			// without a quote count once each.
			name: "AfterJoin/TumbleOverLeftJoin",
			data: interval, inputs: intervalInputs, results: true, key: 3,
			query: `WITH j AS (
					SELECT t.symbol, t.ts, q.qid FROM trades t LEFT JOIN quotes q
					ON t.symbol = q.symbol AND t.ts BETWEEN q.ts - INTERVAL '1' SECOND AND q.ts + INTERVAL '1' SECOND)
				SELECT window_start, window_end, symbol, count(*) AS n, count(qid) AS quoted
				FROM TUMBLE(j, ts, INTERVAL '10' SECOND) GROUP BY window_start, window_end, symbol`,
			sqlite: `SELECT t.ts / 10000 * 10000, t.ts / 10000 * 10000 + 10000, t.symbol, count(*), count(q.qid)
				FROM t LEFT JOIN qt AS q ON t.symbol = q.symbol AND t.ts BETWEEN q.ts - 1000 AND q.ts + 1000 GROUP BY 1, 2, 3`,
			types: []colType{cTS, cTS, cStr, cInt, cInt},
		},
		oracleCase{
			// Windows of a RIGHT JOIN's rows by the quotes' time: the
			// quotes without a trade count once each.
			name: "AfterJoin/TumbleOverRightJoin",
			data: interval, inputs: intervalInputs, results: true, key: 3,
			query: `WITH j AS (
					SELECT q.symbol, q.ts, t.id FROM trades t RIGHT JOIN quotes q
					ON t.symbol = q.symbol AND t.ts BETWEEN q.ts - INTERVAL '1' SECOND AND q.ts + INTERVAL '2' SECOND)
				SELECT window_start, window_end, symbol, count(*) AS n, count(id) AS traded
				FROM TUMBLE(j, ts, INTERVAL '10' SECOND) GROUP BY window_start, window_end, symbol`,
			sqlite: `SELECT q.ts / 10000 * 10000, q.ts / 10000 * 10000 + 10000, q.symbol, count(*), count(t.id)
				FROM qt AS q LEFT JOIN t ON t.symbol = q.symbol AND t.ts BETWEEN q.ts - 1000 AND q.ts + 2000 GROUP BY 1, 2, 3`,
			types: []colType{cTS, cTS, cStr, cInt, cInt},
		},
		oracleCase{
			// Windows of pairs looked up in a table, by the quotes' time.
			name: "AfterJoin/TumbleOverPairsAndTable",
			data: interval, inputs: append(intervalInputs[:2:2], jd.tableInput()), results: true, key: 3,
			query: `WITH j AS (
					SELECT s.name, t.qty, q.ts FROM trades t JOIN quotes q
					ON t.symbol = q.symbol AND t.ts BETWEEN q.ts - INTERVAL '5' SECOND AND q.ts + INTERVAL '5' SECOND
					LEFT JOIN symbols s ON s.symbol = q.symbol)
				SELECT window_start, window_end, name, count(*) AS n, sum(qty) AS qty
				FROM TUMBLE(j, ts, INTERVAL '10' SECOND) GROUP BY window_start, window_end, name`,
			sqlite: `SELECT q.ts / 10000 * 10000, q.ts / 10000 * 10000 + 10000, s.name, count(*), sum(t.qty)
				FROM t JOIN qt AS q ON t.symbol = q.symbol AND t.ts BETWEEN q.ts - 5000 AND q.ts + 5000
				LEFT JOIN s ON s.symbol = q.symbol GROUP BY 1, 2, 3`,
			types: []colType{cTS, cTS, cStr, cInt, cInt},
		},
		oracleCase{
			// The symbols of the most pairs in each window, ties included.
			name: "AfterJoin/WindowTopN",
			data: interval, inputs: intervalInputs, results: true, key: 3,
			query: `WITH j AS (
					SELECT t.symbol, q.ts FROM trades t JOIN quotes q
					ON t.symbol = q.symbol AND t.ts BETWEEN q.ts - INTERVAL '5' SECOND AND q.ts + INTERVAL '5' SECOND),
				c AS (SELECT window_start, window_end, symbol, count(*) AS n FROM TUMBLE(j, ts, INTERVAL '10' SECOND) GROUP BY window_start, window_end, symbol)
				SELECT window_start, window_end, symbol, n FROM (
					SELECT *, RANK() OVER (PARTITION BY window_start, window_end ORDER BY n DESC) AS r FROM c) WHERE r <= 1`,
			sqlite: `WITH c AS (SELECT q.ts / 10000 * 10000 AS ws, t.symbol AS symbol, count(*) AS n
					FROM t JOIN qt AS q ON t.symbol = q.symbol AND t.ts BETWEEN q.ts - 5000 AND q.ts + 5000 GROUP BY 1, 2),
				m AS (SELECT ws, max(n) AS top FROM c GROUP BY ws)
				SELECT c.ws, c.ws + 10000, c.symbol, c.n FROM c JOIN m ON c.ws = m.ws AND c.n = m.top`,
			types: []colType{cTS, cTS, cStr, cInt},
		},
		oracleCase{
			name: "AfterJoin/HopByTradeTime",
			data: interval, inputs: intervalInputs, results: true, key: 2,
			query: `WITH j AS (
					SELECT t.price - q.bid AS edge, t.ts FROM trades t JOIN quotes q
					ON t.symbol = q.symbol AND q.ts BETWEEN t.ts - INTERVAL '2' SECOND AND t.ts)
				SELECT window_start, window_end, count(*) AS n, min(edge) AS low, max(edge) AS high
				FROM HOP(j, ts, INTERVAL '2' SECOND, INTERVAL '4' SECOND) GROUP BY window_start, window_end`,
			// Each pair is in the two windows that start on the 2 s
			// boundaries at and before its trade's.
			sqlite: `SELECT b - k * 2000, b - k * 2000 + 4000, count(*), min(edge), max(edge)
				FROM (SELECT t.ts / 2000 * 2000 AS b, t.price - q.bid AS edge
					FROM t JOIN qt AS q ON q.symbol = t.symbol AND t.ts BETWEEN q.ts AND q.ts + 2000),
					(SELECT 0 AS k UNION ALL SELECT 1)
				GROUP BY 1, 2`,
			types: []colType{cTS, cTS, cInt, cDec2, cDec2},
		},
		oracleCase{
			// Windows of trades of the symbols listed, by the trades' time:
			// the table's rows come first, and the trades wait for them.
			name: "AfterJoin/TumbleOverTable",
			data: ownData, inputs: []oracleInput{jd.tradesInput(ownData), jd.tableInput()}, results: true, key: 3,
			query: `WITH j AS (SELECT t.ts, t.qty * s.lot AS shares, s.name FROM trades t JOIN symbols s ON t.symbol = s.symbol)
				SELECT window_start, window_end, name, count(*) AS n, sum(shares) AS shares
				FROM TUMBLE(j, ts, INTERVAL '5' SECOND) GROUP BY window_start, window_end, name`,
			sqlite: `SELECT t.ts / 5000 * 5000, t.ts / 5000 * 5000 + 5000, s.name, count(*), sum(t.qty * s.lot)
				FROM t JOIN s ON t.symbol = s.symbol GROUP BY 1, 2, 3`,
			types: []colType{cTS, cTS, cStr, cInt, cInt},
		},
		oracleCase{
			// Windows of a join of three inputs: the trades' lots' labels.
			name: "AfterJoin/TumbleOverTables",
			data: ownData, inputs: []oracleInput{jd.tradesInput(ownData), jd.tableInput(), jd.lotsInput()}, results: true, key: 3,
			query: `WITH j AS (SELECT t.ts, t.qty * s.lot AS shares, l.label FROM trades t JOIN symbols s ON t.symbol = s.symbol LEFT JOIN lots l ON l.lot = s.lot)
				SELECT window_start, window_end, label, count(*) AS n, sum(shares) AS shares
				FROM TUMBLE(j, ts, INTERVAL '5' SECOND) GROUP BY window_start, window_end, label`,
			sqlite: `SELECT t.ts / 5000 * 5000, t.ts / 5000 * 5000 + 5000, l.label, count(*), sum(t.qty * s.lot)
				FROM t JOIN s ON t.symbol = s.symbol LEFT JOIN l ON l.lot = s.lot GROUP BY 1, 2, 3`,
			types: []colType{cTS, cTS, cStr, cInt, cInt},
		},
		oracleCase{
			// A moving count of each label's trades over the 5 s before
			// each, over three inputs.
			name: "AfterJoin/OverTables",
			data: ownData, inputs: []oracleInput{jd.tradesInput(ownData), jd.tableInput(), jd.lotsInput()}, results: true, key: 1,
			query: `SELECT t.id, l.label, count(*) OVER (PARTITION BY l.label ORDER BY t.ts RANGE BETWEEN INTERVAL '5' SECOND PRECEDING AND CURRENT ROW) AS n5
				FROM trades t LEFT JOIN symbols s ON t.symbol = s.symbol JOIN lots l ON l.lot = t.qty`,
			sqlite: `SELECT t.id, l.label, count(*) OVER (PARTITION BY l.label ORDER BY t.ts RANGE BETWEEN 5000 PRECEDING AND CURRENT ROW)
				FROM t LEFT JOIN s ON t.symbol = s.symbol JOIN l ON l.lot = t.qty`,
			types: []colType{cInt, cStr, cInt},
		},
		oracleCase{
			// A moving sum of each name's shares over the 5 s before each
			// trade, the trades' peers of one time included.
			name: "AfterJoin/OverTable",
			data: ownData, inputs: []oracleInput{jd.tradesInput(ownData), jd.tableInput()}, results: true, key: 1,
			query: `SELECT t.id, s.name, sum(t.qty * s.lot) OVER (PARTITION BY s.name ORDER BY t.ts RANGE BETWEEN INTERVAL '5' SECOND PRECEDING AND CURRENT ROW) AS shares5
				FROM trades t JOIN symbols s ON t.symbol = s.symbol`,
			sqlite: `SELECT t.id, s.name, sum(t.qty * s.lot) OVER (PARTITION BY s.name ORDER BY t.ts RANGE BETWEEN 5000 PRECEDING AND CURRENT ROW)
				FROM t JOIN s ON t.symbol = s.symbol`,
			types: []colType{cInt, cStr, cInt},
		},
		oracleCase{
			// The pairs of each symbol in the 2 s before each, by the
			// quotes' time: RANGE frames, whose peers of one time are
			// counted together, whatever order they come in.
			name: "AfterJoin/OverInterval",
			data: interval, inputs: intervalInputs, results: true, key: 2,
			query: `SELECT t.id, q.qid, count(*) OVER (PARTITION BY t.symbol ORDER BY q.ts RANGE BETWEEN INTERVAL '2' SECOND PRECEDING AND CURRENT ROW) AS n
				FROM trades t JOIN quotes q ON t.symbol = q.symbol AND t.ts BETWEEN q.ts - INTERVAL '5' SECOND AND q.ts + INTERVAL '5' SECOND`,
			sqlite: `SELECT t.id, q.qid, count(*) OVER (PARTITION BY t.symbol ORDER BY q.ts RANGE BETWEEN 2000 PRECEDING AND CURRENT ROW)
				FROM t JOIN qt AS q ON t.symbol = q.symbol AND t.ts BETWEEN q.ts - 5000 AND q.ts + 5000`,
			types: []colType{cInt, cInt, cInt},
		},
		oracleCase{
			name: "AfterJoin/ContinuousOverTable",
			data: jd.table, inputs: []oracleInput{jd.tradesInput(jd.table), jd.tableInput()}, results: true, changelog: true, key: 1,
			query: `SELECT s.name, count(*) AS n, sum(t.qty * s.lot) AS shares
				FROM trades t JOIN symbols s ON t.symbol = s.symbol GROUP BY s.name`,
			sqlite: `SELECT s.name, count(*), sum(t.qty * s.lot) FROM t JOIN s ON t.symbol = s.symbol GROUP BY s.name`,
			types:  []colType{cStr, cInt, cInt},
		},
	)

	// The table joins: every stream row, none late.
	table := jd.table
	tradesTable := []oracleInput{jd.tradesInput(table), jd.tableInput()}
	cases = append(cases,
		oracleCase{
			name: "TableJoin/Inner",
			data: table, inputs: tradesTable, results: true, key: 1,
			query: `SELECT t.id, t.symbol, t.price, s.name, s.lot, t.qty * s.lot AS shares, t.ts
				FROM trades t JOIN symbols s ON t.symbol = s.symbol`,
			sqlite: `SELECT t.id, t.symbol, t.price, s.name, s.lot, t.qty * s.lot, t.ts
				FROM t JOIN s ON t.symbol = s.symbol`,
			types: []colType{cInt, cStr, cDec2, cStr, cInt, cInt, cTS},
		},
		oracleCase{
			name: "TableJoin/Left",
			data: table, inputs: tradesTable, results: true, key: 1,
			query: `SELECT t.id, t.symbol, s.symbol AS listed, s.name, s.lot
				FROM trades t LEFT JOIN symbols s ON s.symbol = t.symbol`,
			sqlite: `SELECT t.id, t.symbol, s.symbol, s.name, s.lot
				FROM t LEFT JOIN s ON s.symbol = t.symbol`,
			types: []colType{cInt, cStr, cStr, cStr, cInt},
		},
		oracleCase{
			// Quotes have NULL symbols: they match nothing, not even the
			// table's NULL symbol.
			name: "TableJoin/LeftNullKeys",
			data: table, inputs: []oracleInput{jd.quotesInput(false), jd.tableInput()}, results: true, key: 1,
			query: `SELECT q.qid, q.symbol, q.bid, s.name, s.lot
				FROM quotes q LEFT JOIN symbols s ON q.symbol = s.symbol`,
			sqlite: `SELECT q.qid, q.symbol, q.bid, s.name, s.lot
				FROM q LEFT JOIN s ON q.symbol = s.symbol`,
			types: []colType{cInt, cStr, cDec2, cStr, cInt},
		},
		oracleCase{
			name: "TableJoin/InnerWhere",
			data: table, inputs: tradesTable, results: true, key: 1,
			query: `SELECT t.id, s.name, t.qty * s.lot AS shares
				FROM trades t JOIN symbols s ON t.symbol = s.symbol
				WHERE t.qty * s.lot > 100`,
			sqlite: `SELECT t.id, s.name, t.qty * s.lot
				FROM t JOIN s ON t.symbol = s.symbol
				WHERE t.qty * s.lot > 100`,
			types: []colType{cInt, cStr, cInt},
		},
		oracleCase{
			// The WHERE's leading conjuncts of the stream's columns drop
			// rows before the join.
			name: "TableJoin/InnerWhereStreamFirst",
			data: table, inputs: tradesTable, results: true, key: 1,
			query: `SELECT t.id, s.name, t.qty
				FROM trades t JOIN symbols s ON t.symbol = s.symbol
				WHERE t.qty > 3 AND s.lot >= 20 AND t.qty < 9`,
			sqlite: `SELECT t.id, s.name, t.qty
				FROM t JOIN s ON t.symbol = s.symbol
				WHERE t.qty > 3 AND s.lot >= 20 AND t.qty < 9`,
			types: []colType{cInt, cStr, cInt},
		},
		oracleCase{
			name: "TableJoin/InnerWhereTableFirst",
			data: table, inputs: tradesTable, results: true, key: 1,
			query: `SELECT t.id, s.name, t.qty
				FROM trades t JOIN symbols s ON t.symbol = s.symbol
				WHERE s.lot >= 20 AND t.qty > 3`,
			sqlite: `SELECT t.id, s.name, t.qty
				FROM t JOIN s ON t.symbol = s.symbol
				WHERE s.lot >= 20 AND t.qty > 3`,
			types: []colType{cInt, cStr, cInt},
		},
		oracleCase{
			name: "TableJoin/LeftWhereStreamFirst",
			data: table, inputs: tradesTable, results: true, key: 1,
			query: `SELECT t.id, t.symbol, s.name
				FROM trades t LEFT JOIN symbols s ON t.symbol = s.symbol
				WHERE t.qty % 2 = 0 AND s.name IS NULL`,
			sqlite: `SELECT t.id, t.symbol, s.name
				FROM t LEFT JOIN s ON t.symbol = s.symbol
				WHERE t.qty % 2 = 0 AND s.name IS NULL`,
			types: []colType{cInt, cStr, cStr},
		},
		oracleCase{
			// An ON condition of a LEFT JOIN besides the key decides which
			// table row matches, not which stream rows stay.
			name: "TableJoin/LeftResidualOn",
			data: table, inputs: tradesTable, results: true, key: 1,
			query: `SELECT t.id, t.symbol, s.name, s.lot
				FROM trades t LEFT JOIN symbols s ON t.symbol = s.symbol AND s.lot >= 20`,
			sqlite: `SELECT t.id, t.symbol, s.name, s.lot
				FROM t LEFT JOIN s ON t.symbol = s.symbol AND s.lot >= 20`,
			types: []colType{cInt, cStr, cStr, cInt},
		},
		oracleCase{
			// The table's key matched by an expression of the stream's
			// columns: the odd quantities look up no symbol.
			name: "TableJoin/LeftExpressionKey",
			data: table, inputs: tradesTable, results: true, key: 1,
			query: `SELECT t.id, t.symbol, s.name, s.lot
				FROM trades t LEFT JOIN symbols s ON s.symbol = CASE WHEN t.qty % 2 = 0 THEN t.symbol ELSE 'none' END`,
			sqlite: `SELECT t.id, t.symbol, s.name, s.lot
				FROM t LEFT JOIN s ON s.symbol = CASE WHEN t.qty % 2 = 0 THEN t.symbol ELSE 'none' END`,
			types: []colType{cInt, cStr, cStr, cInt},
		},
	)

	// The pairs of two streams looked up in two tables, by a column of
	// either stream.
	cases = append(cases, oracleCase{
		name: "IntervalJoin5SecondsEitherWay/ThenTables",
		data: interval, inputs: append(intervalInputs[:2:2], jd.tableInput(), jd.lotsInput()), results: true, key: 2,
		query: `SELECT t.id, q.qid, s.name, l.label, t.price - q.bid AS edge
			FROM trades t JOIN quotes q
			ON t.symbol = q.symbol AND t.ts BETWEEN q.ts - INTERVAL '5' SECOND AND q.ts + INTERVAL '5' SECOND
			LEFT JOIN symbols s ON s.symbol = q.symbol
			JOIN lots l ON l.lot = t.qty AND l.label <> s.name`,
		sqlite: `SELECT t.id, q.qid, s.name, l.label, t.price - q.bid
			FROM t JOIN qt AS q ON t.symbol = q.symbol AND t.ts BETWEEN q.ts - 5000 AND q.ts + 5000
			LEFT JOIN s ON s.symbol = q.symbol
			JOIN l ON l.lot = t.qty AND l.label <> s.name`,
		types: []colType{cInt, cInt, cStr, cStr, cDec2},
	})

	// Joins of a stream with two tables: the second looked up by a column
	// of the first or of the stream.
	threeInputs := []oracleInput{jd.tradesInput(table), jd.tableInput(), jd.lotsInput()}
	cases = append(cases,
		oracleCase{
			name: "TableJoins/LeftLeft",
			data: table, inputs: threeInputs, results: true, key: 1,
			query: `SELECT t.id, t.symbol, s.name, s.lot, l.label, t.qty * s.lot AS shares
				FROM trades t LEFT JOIN symbols s ON t.symbol = s.symbol LEFT JOIN lots l ON l.lot = s.lot`,
			sqlite: `SELECT t.id, t.symbol, s.name, s.lot, l.label, t.qty * s.lot
				FROM t LEFT JOIN s ON t.symbol = s.symbol LEFT JOIN l ON l.lot = s.lot`,
			types: []colType{cInt, cStr, cStr, cInt, cStr, cInt},
		},
		oracleCase{
			// A table twice, first and again: each trade's lot by its
			// quantity, and its symbol's.
			name: "TableJoins/FirstTableAgain",
			data: table, inputs: threeInputs, results: true, key: 1,
			query: `SELECT t.id, a.label AS by_qty, s.name, b.label AS by_symbol
				FROM trades t LEFT JOIN lots a ON a.lot = t.qty LEFT JOIN symbols s ON t.symbol = s.symbol LEFT JOIN lots b ON b.lot = s.lot`,
			sqlite: `SELECT t.id, a.label, s.name, b.label
				FROM t LEFT JOIN l AS a ON a.lot = t.qty LEFT JOIN s ON t.symbol = s.symbol LEFT JOIN l AS b ON b.lot = s.lot`,
			types: []colType{cInt, cStr, cStr, cStr},
		},
		oracleCase{
			// A further table twice, the second an inner join.
			name: "TableJoins/LookupTwice",
			data: table, inputs: threeInputs, results: true, key: 1,
			query: `SELECT t.id, s.name, a.label AS by_qty, b.label AS by_symbol
				FROM trades t JOIN symbols s ON t.symbol = s.symbol LEFT JOIN lots a ON a.lot = t.qty JOIN lots b ON b.lot = s.lot AND b.label <> a.label`,
			sqlite: `SELECT t.id, s.name, a.label, b.label
				FROM t JOIN s ON t.symbol = s.symbol LEFT JOIN l AS a ON a.lot = t.qty JOIN l AS b ON b.lot = s.lot AND b.label <> a.label`,
			types: []colType{cInt, cStr, cStr, cStr},
		},
		oracleCase{
			// The rest of each ON decides whether its table's row matches:
			// an inner join's drops the row, a LEFT JOIN's gives NULLs.
			name: "TableJoins/InnerLeftResidualOn",
			data: table, inputs: threeInputs, results: true, key: 1,
			query: `SELECT t.id, s.name, l.label, t.qty
				FROM trades t JOIN symbols s ON s.symbol = t.symbol AND t.qty > 1
				LEFT JOIN lots l ON s.lot = l.lot AND l.label <> 'ten' AND t.qty < 8`,
			sqlite: `SELECT t.id, s.name, l.label, t.qty
				FROM t JOIN s ON s.symbol = t.symbol AND t.qty > 1
				LEFT JOIN l ON s.lot = l.lot AND l.label <> 'ten' AND t.qty < 8`,
			types: []colType{cInt, cStr, cStr, cInt},
		},
		oracleCase{
			// The second table looked up by the stream's column; WHERE over
			// all three.
			name: "TableJoins/LeftInnerWhere",
			data: table, inputs: threeInputs, results: true, key: 1,
			query: `SELECT t.id, t.symbol, s.name, l.label
				FROM trades t LEFT JOIN symbols s ON t.symbol = s.symbol JOIN lots l ON l.lot = t.qty
				WHERE s.name IS NULL OR l.label <> s.name`,
			sqlite: `SELECT t.id, t.symbol, s.name, l.label
				FROM t LEFT JOIN s ON t.symbol = s.symbol JOIN l ON l.lot = t.qty
				WHERE s.name IS NULL OR l.label <> s.name`,
			types: []colType{cInt, cStr, cStr, cStr},
		},
		oracleCase{
			name: "TableJoins/Continuous",
			data: table, inputs: threeInputs, results: true, changelog: true, key: 1,
			query: `SELECT l.label, count(*) AS n, sum(t.qty * s.lot) AS shares
				FROM trades t JOIN symbols s ON t.symbol = s.symbol JOIN lots l ON l.lot = s.lot GROUP BY l.label`,
			sqlite: `SELECT l.label, count(*), sum(t.qty * s.lot) FROM t JOIN s ON t.symbol = s.symbol JOIN l ON l.lot = s.lot GROUP BY l.label`,
			types:  []colType{cStr, cInt, cInt},
		},
		oracleCase{
			// Groups by a column of each input of a table joined twice:
			// two keys of one name.
			name: "TableJoins/GroupByTableTwice",
			data: table, inputs: threeInputs, results: true, changelog: true, key: 2,
			query: `SELECT a.label AS by_qty, b.label AS by_symbol, count(*) AS n
				FROM trades t JOIN symbols s ON t.symbol = s.symbol JOIN lots a ON a.lot = t.qty JOIN lots b ON b.lot = s.lot GROUP BY a.label, b.label`,
			sqlite: `SELECT a.label, b.label, count(*) FROM t JOIN s ON t.symbol = s.symbol JOIN l AS a ON a.lot = t.qty JOIN l AS b ON b.lot = s.lot GROUP BY a.label, b.label`,
			types:  []colType{cStr, cStr, cInt},
		},
	)

	// UNION ALL of the two streams: every row of each, none late (no
	// state), the decimals of one scale in the wider precision.
	cases = append(cases, oracleCase{
		name: "UnionAll/TradesAndQuotes",
		data: table, inputs: []oracleInput{jd.tradesInput(table), jd.quotesInput(false)}, key: 1,
		query: `SELECT t.id, t.symbol, t.price * t.qty AS amount, t.symbol || '/t' AS s FROM trades t
			UNION ALL SELECT qid, symbol, bid, symbol || '/q' FROM quotes`,
		sqlite: `SELECT id, symbol, price * qty, symbol || '/t' FROM t
			UNION ALL SELECT qid, symbol, bid, symbol || '/q' FROM q`,
		types: []colType{cInt, cStr, cDec2, cStr},
	})

	// Quotes as a versioned table, joined as of each trade's time: the
	// trades are late by the watermark rule of the interval joins, since
	// both sources have event time; the quotes are versions, none late.
	versioned := jd.quotesInput(false)
	versioned.source.Table = &v1alpha1.TableSource{Key: []string{"symbol"}}
	asOfInputs := []oracleInput{jd.tradesInput(interval), versioned}
	// The quote of the trade's symbol with the latest time not after the
	// trade's, the last read among equal times.
	const asOf = `(SELECT q2.seq FROM q AS q2 WHERE q2.symbol = t.symbol AND q2.ts <= t.ts ORDER BY q2.ts DESC, q2.seq DESC LIMIT 1)`
	cases = append(cases,
		oracleCase{
			name: "TemporalJoin/Left",
			data: interval, inputs: asOfInputs, results: true, key: 1,
			query: `SELECT t.id, q.qid, t.symbol, t.price, q.bid, t.price - q.bid AS edge, t.ts AS trade_ts, q.ts AS quote_ts
				FROM trades t LEFT JOIN quotes FOR SYSTEM_TIME AS OF t.ts AS q ON t.symbol = q.symbol`,
			sqlite: `SELECT t.id, q.qid, t.symbol, t.price, q.bid, t.price - q.bid, t.ts, q.ts
				FROM t LEFT JOIN q ON q.seq = ` + asOf,
			types: []colType{cInt, cInt, cStr, cDec2, cDec2, cDec2, cTS, cTS},
		},
		oracleCase{
			// Then a table as read, by the quote's symbol: trades whose
			// quote is missing find no symbol either.
			name: "TemporalJoin/LeftThenTable",
			data: interval, inputs: append(asOfInputs, jd.tableInput()), results: true, key: 1,
			query: `SELECT t.id, q.qid, q.bid, s.name, s.lot
				FROM trades t LEFT JOIN quotes FOR SYSTEM_TIME AS OF t.ts AS q ON t.symbol = q.symbol
				LEFT JOIN symbols s ON s.symbol = q.symbol`,
			sqlite: `SELECT t.id, q.qid, q.bid, s.name, s.lot
				FROM t LEFT JOIN q ON q.seq = ` + asOf + `
				LEFT JOIN s ON s.symbol = q.symbol`,
			types: []colType{cInt, cInt, cDec2, cStr, cInt},
		},
		oracleCase{
			// Two tables as of the trade's time, a table as read between:
			// the second's versions are looked up by the table's symbol.
			// quotes2 is the quotes again, a source of its own, so this
			// checks the query's way through the planner and the joins,
			// as of a time and not as read; TestTemporalJoinAgainstDefinition
			// checks tables of versions of their own.
			name: "TemporalJoin/TwoVersionedTables",
			data: interval, inputs: append(asOfInputs, jd.tableInput(), quotes2(versioned)), results: true, key: 1,
			query: `SELECT t.id, q.qid, s.name, b.qid AS qid2, b.bid AS bid2
				FROM trades t LEFT JOIN quotes FOR SYSTEM_TIME AS OF t.ts AS q ON t.symbol = q.symbol
				LEFT JOIN symbols s ON s.symbol = t.symbol
				JOIN quotes2 FOR SYSTEM_TIME AS OF t.ts AS b ON b.symbol = s.symbol AND b.bid > 0`,
			sqlite: `SELECT t.id, q.qid, s.name, b.qid, b.bid
				FROM t LEFT JOIN q ON q.seq = ` + asOf + `
				LEFT JOIN s ON s.symbol = t.symbol
				JOIN q AS b ON b.seq = (SELECT q2.seq FROM q AS q2 WHERE q2.symbol = s.symbol AND q2.ts <= t.ts ORDER BY q2.ts DESC, q2.seq DESC LIMIT 1) AND b.bid > 0`,
			types: []colType{cInt, cInt, cStr, cInt, cDec2},
		},
		oracleCase{
			// The rest of ON decides whether the version at the trade's
			// time matches, not which version.
			name: "TemporalJoin/InnerResidualOn",
			data: interval, inputs: asOfInputs, results: true, key: 1,
			query: `SELECT t.id, q.qid, q.bid
				FROM trades t JOIN quotes FOR SYSTEM_TIME AS OF t.ts q ON q.symbol = t.symbol AND q.bid < t.price`,
			sqlite: `SELECT t.id, q.qid, q.bid
				FROM t JOIN q ON q.seq = ` + asOf + ` AND q.bid < t.price`,
			types: []colType{cInt, cInt, cDec2},
		},
	)
	for i := range cases {
		c := &cases[i]
		t.Run(c.name, c.run)
	}
}
