package nexmark_test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"modernc.org/sqlite"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/examples/nexmark"
	"github.com/sluice-dev/sluice/runtime/connector/bundle"
	gen "github.com/sluice-dev/sluice/runtime/connector/nexmark"
	"github.com/sluice-dev/sluice/runtime/pipeline"
	"github.com/sluice-dev/sluice/runtime/value"
)

// oracleCases are the SQLite forms of the queries: timestamps are integer
// milliseconds (dt), and the columns named in times are turned back into
// the engine's text; prices are integer cents, and a euro price is printed
// with its three decimals.
var oracleCases = map[string]struct {
	counts map[string]int64 // records of each source
	sqlite string
	times  []int // the result's columns that are timestamps
	// columns, if set, are the only ones the sources make and the tables
	// hold, for a case whose many events would otherwise be slow to load.
	columns []string
	// groups, for a changelog (a continuous aggregation, a top-N without
	// a window), are the columns that name a group or rank: its result is
	// the last row written of each.
	// name a group: its result is the last row written of each.
	groups []int
	// summed, for windows of processing time, whose rows depend on when
	// the engine read the bids, says the result is each first column's
	// sum of the second over the windows.
	summed bool
}{
	"q0": {counts: map[string]int64{"bid": 4600}, sqlite: `SELECT auction, bidder, price, dt, extra FROM bid`, times: []int{3}},
	"q1": {counts: map[string]int64{"bid": 4600}, sqlite: `SELECT auction, bidder, printf('%d.%03d', price*908/1000, price*908%1000), dt, extra FROM bid`, times: []int{3}},
	"q2": {counts: map[string]int64{"bid": 46000}, sqlite: `SELECT auction, price FROM bid WHERE auction % 123 = 0`},
	"q3": {counts: map[string]int64{"auction": 3000, "person": 1000}, sqlite: `SELECT P.name, P.city, P.state, A.id FROM auction A JOIN person P ON A.seller = P.id
		WHERE A.category = 10 AND P.state IN ('OR', 'ID', 'CA')`},
	// A session closes once a bidder's next bid is 10 s later or more,
	// and ends 10 s after its last bid.
	"q11": {counts: map[string]int64{"bid": 115_000}, sqlite: `WITH o AS (
			SELECT bidder, dt, CASE WHEN dt - LAG(dt) OVER (PARTITION BY bidder ORDER BY dt) < 10000 THEN 0 ELSE 1 END AS brk FROM bid),
		s AS (SELECT bidder, dt, SUM(brk) OVER (PARTITION BY bidder ORDER BY dt ROWS UNBOUNDED PRECEDING) AS sid FROM o)
		SELECT bidder, count(*), min(dt), max(dt) + 10000 FROM s GROUP BY bidder, sid`, times: []int{2, 3}, columns: []string{"bidder", "datetime"}},
	// The suite's join of each window's counts with their maximum: a
	// bid is in the five windows of 10 s that start on the 2 s before it.
	"q5": {counts: map[string]int64{"bid": 115_000}, sqlite: `WITH w AS (
			SELECT auction, (dt / 2000 - k) * 2000 AS ws FROM bid, (SELECT 0 AS k UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4)),
		c AS (SELECT auction, ws, count(*) AS num FROM w GROUP BY auction, ws),
		m AS (SELECT ws, max(num) AS maxn FROM c GROUP BY ws)
		SELECT c.auction, c.num, c.ws, c.ws + 10000 FROM c JOIN m ON c.ws = m.ws AND c.num >= m.maxn`, times: []int{2, 3}, columns: []string{"auction", "datetime"}},
	// The suite's join of the bids with each window's maximum price, for
	// the bids from the window's end - 10 s to its end.
	"q7": {counts: map[string]int64{"bid": 115_000}, sqlite: `WITH m AS (SELECT dt / 10000 * 10000 + 10000 AS we, max(price) AS maxprice FROM bid GROUP BY dt / 10000)
		SELECT B.auction, B.price, B.bidder, B.dt, B.extra FROM bid B JOIN m ON B.price = m.maxprice AND B.dt BETWEEN m.we - 10000 AND m.we`, times: []int{3}},
	// The latest bid of each bidder and auction, and the ten highest bids
	// of each auction. Ties (bids of one millisecond, or of one price)
	// rank in the order they came: one partition makes them in event
	// order, which is the tables' rowid order.
	"q18": {counts: map[string]int64{"bid": 46000}, groups: []int{0, 1}, sqlite: `SELECT auction, bidder, price, channel, url, dt, extra FROM (
			SELECT *, ROW_NUMBER() OVER (PARTITION BY bidder, auction ORDER BY dt DESC, rowid) AS rn FROM bid) WHERE rn <= 1`, times: []int{5}},
	"q19": {counts: map[string]int64{"bid": 46000}, groups: []int{0, 7}, sqlite: `SELECT auction, bidder, price, channel, url, dt, extra, rn FROM (
			SELECT *, ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price DESC, rowid) AS rn FROM bid) WHERE rn <= 10`, times: []int{5}},
	// The suite's join of the people and the sellers of each 10-second
	// window, each grouped first.
	"q8": {counts: map[string]int64{"person": 3000, "auction": 9000}, sqlite: `SELECT P.id, P.name, P.starttime FROM
			(SELECT id, name, dt / 10000 * 10000 AS starttime FROM person GROUP BY id, name, dt / 10000) P
			JOIN (SELECT seller, dt / 10000 * 10000 AS starttime FROM auction GROUP BY seller, dt / 10000) A
			ON P.id = A.seller AND P.starttime = A.starttime`, times: []int{2}},
	// The highest bid of each auction while it was open; ties rank in
	// the order the join wrote them, that of the bids in one partition.
	"q9": {counts: map[string]int64{"bid": 46000, "auction": 3000}, groups: []int{0}, sqlite: `SELECT id, itemname, description, initialbid, reserve, dt, expires, seller, category, extra,
			auction, bidder, price, bdt, bextra FROM (
			SELECT A.*, B.auction, B.bidder, B.price, B.dt AS bdt, B.extra AS bextra,
				ROW_NUMBER() OVER (PARTITION BY A.id ORDER BY B.price DESC, B.dt, B.rowid) AS rn
			FROM auction A JOIN bid B ON A.id = B.auction AND B.dt BETWEEN A.dt AND A.expires) WHERE rn <= 1`, times: []int{5, 6, 13}},
	// The average winning price of each category's auctions.
	"q4": {counts: map[string]int64{"bid": 46000, "auction": 3000}, groups: []int{0}, sqlite: `SELECT category, avg(final) FROM (
			SELECT A.id, A.category, max(B.price) AS final
			FROM auction A JOIN bid B ON A.id = B.auction AND B.dt BETWEEN A.dt AND A.expires GROUP BY A.id, A.category)
		GROUP BY category`},
	// The average of each seller's auction's winning price and its ten
	// auctions before, in the order of their start.
	"q6": {counts: map[string]int64{"bid": 46000, "auction": 3000}, groups: []int{0}, sqlite: `SELECT id, seller,
			avg(final) OVER (PARTITION BY seller ORDER BY dt, id ROWS BETWEEN 10 PRECEDING AND CURRENT ROW) FROM (
			SELECT A.id, A.seller, A.dt, max(B.price) AS final
			FROM auction A JOIN bid B ON A.id = B.auction AND B.dt BETWEEN A.dt AND A.expires GROUP BY A.id, A.seller, A.dt)`},
	// Windows of processing time: each bidder's bids over all windows.
	"q12": {counts: map[string]int64{"bid": 46000}, summed: true, sqlite: `SELECT bidder, count(*) FROM bid GROUP BY bidder`, columns: []string{"bidder"}},
	"q13": {counts: map[string]int64{"bid": 46000, "side_input": 10000}, sqlite: `SELECT B.auction, B.bidder, B.price, B.dt, S.value
		FROM bid B JOIN side_input S ON B.auction % 10000 = S.key`, times: []int{3}, columns: []string{"auction", "bidder", "price", "datetime", "key", "value"}},
	// Only nightTime: 46,000 bids span 5 s of event time after midnight.
	"q14": {counts: map[string]int64{"bid": 46000}, sqlite: `SELECT auction, bidder, printf('%d.%03d', price*908/1000, price*908%1000),
			CASE WHEN dt / 3600000 % 24 BETWEEN 8 AND 18 THEN 'dayTime' WHEN dt / 3600000 % 24 <= 6 OR dt / 3600000 % 24 >= 20 THEN 'nightTime' ELSE 'otherTime' END,
			dt, extra, length(extra) - length(replace(extra, 'c', ''))
		FROM bid WHERE price * 908 > 1000000000 AND price * 908 < 50000000000`, times: []int{4}},
	"q10": {counts: map[string]int64{"bid": 4600}, sqlite: `SELECT auction, bidder, price, dt, extra, '2024-01-01', '00:00' FROM bid`, times: []int{3}},
	"q15": {counts: map[string]int64{"bid": 46000}, groups: []int{0}, sqlite: `SELECT strftime('%Y-%m-%d', dt / 1000, 'unixepoch'),
			count(*), count(*) FILTER (WHERE price < 10000), count(*) FILTER (WHERE price >= 10000 AND price < 1000000), count(*) FILTER (WHERE price >= 1000000),
			count(DISTINCT bidder), count(DISTINCT bidder) FILTER (WHERE price < 10000), count(DISTINCT bidder) FILTER (WHERE price >= 10000 AND price < 1000000), count(DISTINCT bidder) FILTER (WHERE price >= 1000000),
			count(DISTINCT auction), count(DISTINCT auction) FILTER (WHERE price < 10000), count(DISTINCT auction) FILTER (WHERE price >= 10000 AND price < 1000000), count(DISTINCT auction) FILTER (WHERE price >= 1000000)
		FROM bid GROUP BY 1`, columns: []string{"auction", "bidder", "price", "datetime"}},
	"q16": {counts: map[string]int64{"bid": 46000}, groups: []int{0, 1}, sqlite: `SELECT channel, strftime('%Y-%m-%d', dt / 1000, 'unixepoch'), max(strftime('%H:%M', dt / 1000, 'unixepoch')),
			count(*), count(*) FILTER (WHERE price < 10000), count(*) FILTER (WHERE price >= 10000 AND price < 1000000), count(*) FILTER (WHERE price >= 1000000),
			count(DISTINCT bidder), count(DISTINCT bidder) FILTER (WHERE price < 10000), count(DISTINCT bidder) FILTER (WHERE price >= 10000 AND price < 1000000), count(DISTINCT bidder) FILTER (WHERE price >= 1000000),
			count(DISTINCT auction), count(DISTINCT auction) FILTER (WHERE price < 10000), count(DISTINCT auction) FILTER (WHERE price >= 10000 AND price < 1000000), count(DISTINCT auction) FILTER (WHERE price >= 1000000)
		FROM bid GROUP BY 1, 2`, columns: []string{"auction", "bidder", "price", "channel", "datetime"}},
	"q17": {counts: map[string]int64{"bid": 46000}, groups: []int{0, 1}, sqlite: `SELECT auction, strftime('%Y-%m-%d', dt / 1000, 'unixepoch'),
			count(*), count(*) FILTER (WHERE price < 10000), count(*) FILTER (WHERE price >= 10000 AND price < 1000000), count(*) FILTER (WHERE price >= 1000000),
			min(price), max(price), avg(price), sum(price)
		FROM bid GROUP BY 1, 2`, columns: []string{"auction", "price", "datetime"}},
	"q20": {counts: map[string]int64{"bid": 46000, "auction": 3000}, sqlite: `SELECT B.auction, B.bidder, B.price, B.channel, B.url, B.dt, B.extra,
			A.itemname, A.description, A.initialbid, A.reserve, A.dt, A.expires, A.seller, A.category, A.extra
		FROM bid B JOIN auction A ON B.auction = A.id WHERE A.category = 10`, times: []int{5, 11, 12}},
	// The channel's id cut from the URL without a regular expression.
	"q21": {counts: map[string]int64{"bid": 46000}, sqlite: `WITH b AS (
			SELECT auction, bidder, price, channel, CASE WHEN instr(url, '&channel_id=') > 0 THEN substr(url, instr(url, '&channel_id=') + 12) END AS t FROM bid),
		c AS (SELECT auction, bidder, price, channel, CASE WHEN instr(t, '&') > 0 THEN substr(t, 1, instr(t, '&') - 1) ELSE t END AS id FROM b)
		SELECT auction, bidder, price, channel,
			CASE lower(channel) WHEN 'apple' THEN '0' WHEN 'google' THEN '1' WHEN 'facebook' THEN '2' WHEN 'baidu' THEN '3' ELSE id END
		FROM c WHERE id IS NOT NULL OR lower(channel) IN ('apple', 'google', 'facebook', 'baidu')`, columns: []string{"auction", "bidder", "price", "channel", "url"}},
	"q22": {counts: map[string]int64{"bid": 4600}, sqlite: `SELECT auction, bidder, price, channel, dir(url, 4), dir(url, 5), dir(url, 6) FROM bid`},
}

// TestOracleThreeStreams: a join of the three kinds of event, each
// auction with its seller's registration of the 10 seconds before and its
// bids of the second after it, as SQLite joins them: every one of 3,000
// people, 9,000 auctions and 138,000 bids in two partitions a source. The
// generator's streams are in event-time order, each partition's, so no
// row is late.
func TestOracleThreeStreams(t *testing.T) {
	spec, err := nexmark.Spec("q8")
	if err != nil {
		t.Fatal(err)
	}
	bids, _ := nexmark.Spec("q2")
	spec.Sources = append(spec.Sources, bids.Sources[0])
	spec.Query = `SELECT P.id, P.name, A.id AS auction, B.bidder, B.price, B.dateTime
		FROM person P
		JOIN auction A ON P.id = A.seller AND A.dateTime BETWEEN P.dateTime AND P.dateTime + INTERVAL '10' SECOND
		JOIN bid B ON B.auction = A.id AND B.dateTime BETWEEN A.dateTime AND A.dateTime + INTERVAL '1' SECOND
		WHERE B.price > 1000`
	counts := map[string]int64{"person": 3000, "auction": 9000, "bid": 138_000}
	want := sqliteRows(t, counts, nil, `SELECT P.id, P.name, A.id, B.bidder, B.price, B.dt
		FROM person P
		JOIN auction A ON P.id = A.seller AND A.dt BETWEEN P.dt AND P.dt + 10000
		JOIN bid B ON B.auction = A.id AND B.dt BETWEEN A.dt AND A.dt + 1000
		WHERE B.price > 1000`, []int{5})
	got := specRows(t, "three streams", spec, counts, nil, nil)
	compareRows(t, got, want, 1000)
	// Aggregated: each person's bids, a changelog of which the last row
	// of each person is SQLite's.
	spec.Query = `SELECT P.id, count(*) AS bids, max(B.price) AS top, sum(B.price) AS total
		FROM person P
		JOIN auction A ON P.id = A.seller AND A.dateTime BETWEEN P.dateTime AND P.dateTime + INTERVAL '10' SECOND
		JOIN bid B ON B.auction = A.id AND B.dateTime BETWEEN A.dateTime AND A.dateTime + INTERVAL '1' SECOND
		GROUP BY P.id`
	want = sqliteRows(t, counts, nil, `SELECT P.id, count(*), max(B.price), sum(B.price)
		FROM person P
		JOIN auction A ON P.id = A.seller AND A.dt BETWEEN P.dt AND P.dt + 10000
		JOIN bid B ON B.auction = A.id AND B.dt BETWEEN A.dt AND A.dt + 1000
		GROUP BY P.id`, nil)
	got = specRows(t, "three streams", spec, counts, nil, []int{0})
	compareRows(t, got, want, 100)
	// LEFT JOIN: the auctions of the people's first 10 seconds with no
	// bid in their first 100 milliseconds too, once, with NULLs.
	spec.Query = `SELECT P.id, A.id AS auction, B.bidder, B.price
		FROM person P
		JOIN auction A ON P.id = A.seller AND A.dateTime BETWEEN P.dateTime AND P.dateTime + INTERVAL '10' SECOND
		LEFT JOIN bid B ON B.auction = A.id AND B.dateTime BETWEEN A.dateTime AND A.dateTime + INTERVAL '100 milliseconds'`
	want = sqliteRows(t, counts, nil, `SELECT P.id, A.id, B.bidder, B.price
		FROM person P
		JOIN auction A ON P.id = A.seller AND A.dt BETWEEN P.dt AND P.dt + 10000
		LEFT JOIN bid B ON B.auction = A.id AND B.dt BETWEEN A.dt AND A.dt + 100`, nil)
	if !slices.ContainsFunc(want, func(r string) bool { return strings.HasSuffix(r, "\t<nil>\t<nil>") }) {
		t.Errorf("no auction without bids: the LEFT JOIN's case tests nothing of it")
	}
	got = specRows(t, "three streams", spec, counts, nil, nil)
	compareRows(t, got, want, 1000)
	// RIGHT JOIN: every bid, the ones on no auction of a person's first 10
	// seconds with NULLs before.
	spec.Query = strings.Replace(spec.Query, "LEFT JOIN bid", "RIGHT JOIN bid", 1)
	want = sqliteRows(t, counts, nil, `SELECT X.pid, X.aid, B.bidder, B.price
		FROM bid B LEFT JOIN (SELECT P.id AS pid, A.id AS aid, A.dt AS adt FROM person P
			JOIN auction A ON P.id = A.seller AND A.dt BETWEEN P.dt AND P.dt + 10000) X
		ON B.auction = X.aid AND B.dt BETWEEN X.adt AND X.adt + 100`, nil)
	if !slices.ContainsFunc(want, func(r string) bool { return strings.HasPrefix(r, "<nil>\t<nil>\t") }) {
		t.Errorf("no bid without an auction: the RIGHT JOIN's case tests nothing of it")
	}
	got = specRows(t, "three streams", spec, counts, nil, nil)
	compareRows(t, got, want, 100_000)
	// The cases after use a third of the events: under the race detector
	// each of the above takes half a minute.
	counts = map[string]int64{"person": 1000, "auction": 3000, "bid": 46_000}
	// The first two by LEFT JOIN, the third bound by the first's time:
	// the people with no auction in their first second too, with NULLs.
	spec.Query = `SELECT P.id, A.id AS auction, B.auction AS bid_on, B.price
		FROM person P
		LEFT JOIN auction A ON P.id = A.seller AND A.dateTime BETWEEN P.dateTime AND P.dateTime + INTERVAL '1' SECOND
		JOIN bid B ON B.bidder = P.id AND B.dateTime BETWEEN P.dateTime AND P.dateTime + INTERVAL '10' SECOND`
	want = sqliteRows(t, counts, nil, `SELECT P.id, A.id, B.auction, B.price
		FROM person P
		LEFT JOIN auction A ON P.id = A.seller AND A.dt BETWEEN P.dt AND P.dt + 1000
		JOIN bid B ON B.bidder = P.id AND B.dt BETWEEN P.dt AND P.dt + 10000`, nil)
	if !slices.ContainsFunc(want, func(r string) bool { return strings.Contains(r, "\t<nil>\t") }) {
		t.Errorf("no person without an auction: the LEFT JOIN's case tests nothing of it")
	}
	got = specRows(t, "three streams, LEFT JOIN first", spec, counts, nil, nil)
	compareRows(t, got, want, 1000)
	// Then a table, looked up by the third stream's column: the bids of
	// bidders whose key is past the table's are dropped.
	side, _ := nexmark.Spec("q13")
	spec.Sources = append(spec.Sources, side.Sources[1])
	counts["side_input"] = 10_000
	spec.Query = `SELECT P.id, A.id AS auction, B.bidder, B.price, S.value
		FROM person P
		JOIN auction A ON P.id = A.seller AND A.dateTime BETWEEN P.dateTime AND P.dateTime + INTERVAL '10' SECOND
		JOIN bid B ON B.auction = A.id AND B.dateTime BETWEEN A.dateTime AND A.dateTime + INTERVAL '1' SECOND
		JOIN side_input S ON S.key = mod(B.bidder * 3, 20000)`
	want = sqliteRows(t, counts, nil, `SELECT P.id, A.id, B.bidder, B.price, S.value
		FROM person P
		JOIN auction A ON P.id = A.seller AND A.dt BETWEEN P.dt AND P.dt + 10000
		JOIN bid B ON B.auction = A.id AND B.dt BETWEEN A.dt AND A.dt + 1000
		JOIN side_input S ON S.key = (B.bidder * 3) % 20000`, nil)
	got = specRows(t, "three streams and a table", spec, counts, nil, nil)
	compareRows(t, got, want, 1000)
	// A stream after the table: joined before it, the select list's
	// columns each from its input.
	spec.Query = `SELECT P.id, A.id AS auction, S.value, B.bidder, B.price
		FROM person P
		JOIN auction A ON P.id = A.seller AND A.dateTime BETWEEN P.dateTime AND P.dateTime + INTERVAL '10' SECOND
		JOIN side_input S ON S.key = mod(A.id * 3, 20000)
		JOIN bid B ON B.auction = A.id AND B.dateTime BETWEEN A.dateTime AND A.dateTime + INTERVAL '1' SECOND`
	want = sqliteRows(t, counts, nil, `SELECT P.id, A.id, S.value, B.bidder, B.price
		FROM person P
		JOIN auction A ON P.id = A.seller AND A.dt BETWEEN P.dt AND P.dt + 10000
		JOIN side_input S ON S.key = (A.id * 3) % 20000
		JOIN bid B ON B.auction = A.id AND B.dt BETWEEN A.dt AND A.dt + 1000`, nil)
	got = specRows(t, "a stream after a table", spec, counts, nil, nil)
	compareRows(t, got, want, 1000)
	// By LEFT JOIN, with the rest of its ON: the auctions with no such bid
	// too, with NULLs.
	spec.Query = strings.Replace(spec.Query, "JOIN bid B ON B.auction = A.id AND B.dateTime BETWEEN A.dateTime AND A.dateTime + INTERVAL '1' SECOND",
		"LEFT JOIN bid B ON B.auction = A.id AND B.dateTime BETWEEN A.dateTime AND A.dateTime + INTERVAL '100 milliseconds' AND B.price > 1000", 1)
	want = sqliteRows(t, counts, nil, `SELECT P.id, A.id, S.value, B.bidder, B.price
		FROM person P
		JOIN auction A ON P.id = A.seller AND A.dt BETWEEN P.dt AND P.dt + 10000
		JOIN side_input S ON S.key = (A.id * 3) % 20000
		LEFT JOIN bid B ON B.auction = A.id AND B.dt BETWEEN A.dt AND A.dt + 100 AND B.price > 1000`, nil)
	if !slices.ContainsFunc(want, func(r string) bool { return strings.HasSuffix(r, "\t<nil>\t<nil>") }) {
		t.Errorf("no auction without bids: the LEFT JOIN's case tests nothing of it")
	}
	got = specRows(t, "a stream after a table, LEFT JOIN", spec, counts, nil, nil)
	compareRows(t, got, want, 1000)
}

// compareRows reports the first difference of the engine's rows from
// SQLite's, both sorted, and fewer than least rows as testing too little.
func compareRows(t *testing.T, got, want []string, least int) {
	t.Helper()
	t.Logf("%d rows", len(got))
	if !slices.Equal(got, want) || len(want) < least {
		t.Errorf("%d rows, SQLite %d", len(got), len(want))
		for i := range min(len(got), len(want)) {
			if got[i] != want[i] {
				t.Errorf("first difference, in sorted order:\n engine %s\n sqlite %s", got[i], want[i])
				break
			}
		}
	}
}

// TestOracle runs each query Sluice expresses on a bounded run of the
// generators and checks its rows against SQLite's over the same events,
// made by the generator itself.
func TestOracle(t *testing.T) {
	if err := registerDir(); err != nil {
		t.Fatal(err)
	}
	for _, q := range nexmark.Queries() {
		t.Run(q, func(t *testing.T) {
			c, ok := oracleCases[q]
			if !ok {
				t.Fatalf("%s has no oracle case", q)
			}
			want := sqliteRows(t, c.counts, c.columns, c.sqlite, c.times)
			if len(want) == 0 {
				t.Fatal("SQLite returned no rows: the case tests nothing")
			}
			got := engineRows(t, q, c.counts, c.columns, c.groups)
			if c.summed {
				got = sumOverWindows(t, got)
			}
			compareRows(t, got, want, 1)
		})
	}
}

// engineRows runs query q with counts and returns its rows, each as its
// columns' text joined by tabs, sorted; of a continuous aggregation whose
// groups or ranks are named by its groups columns, the last row of each.
func engineRows(t *testing.T, q string, counts map[string]int64, columns []string, groups []int) []string {
	t.Helper()
	spec, err := nexmark.Spec(q)
	if err != nil {
		t.Fatal(err)
	}
	return specRows(t, q, spec, counts, columns, groups)
}

// specRows runs spec, the manifest of query q or one like it, as
// engineRows says.
func specRows(t *testing.T, q string, spec *v1alpha1.StreamQuerySpec, counts map[string]int64, columns []string, groups []int) []string {
	t.Helper()
	for i := range spec.Sources {
		d := spec.Sources[i].Datagen
		n, ok := counts[spec.Sources[i].Name]
		if d == nil || !ok {
			t.Fatalf("source %s: no count for it", spec.Sources[i].Name)
		}
		// Two partitions make every other event each, as one would all:
		// but a session is cut by its bidder's events in event time,
		// which two partitions interleave, and ties of ROW_NUMBER are
		// ranked in the order they come.
		if columns != nil {
			kind, _ := gen.KindOf(d.Generator)
			for _, c := range kind.Columns() {
				if slices.Contains(columns, c.Name) {
					spec.Sources[i].Schema = append(spec.Sources[i].Schema, v1alpha1.Column{Name: c.Name, Type: c.Type.String()})
				}
			}
		}
		d.Count, d.Partitions = n, 1
		if q != "q9" && q != "q11" && q != "q18" && q != "q19" && n%2 == 0 {
			d.Count, d.Partitions = n/2, 2
		}
	}
	out := filepath.Join(t.TempDir(), "out.jsonl")
	spec.Sink = &v1alpha1.Sink{File: &v1alpha1.FileSink{Path: out}}
	spec.Runtime.Mode = v1alpha1.Direct
	p, err := pipeline.New(spec, pipeline.Options{Connectors: bundle.All()})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	latest := map[string]int{} // a group's row in rows
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.UseNumber()
		// The columns in the order written.
		var fields []string
		tok, err := dec.Token()
		for err == nil && dec.More() {
			if _, err = dec.Token(); err != nil { // the name
				break
			}
			var v any
			if err = dec.Decode(&v); err == nil {
				fields = append(fields, fmt.Sprint(v))
			}
		}
		if err != nil || tok != json.Delim('{') {
			t.Fatalf("output line %q: %v", sc.Text(), err)
		}
		row := strings.Join(fields, "\t")
		if len(groups) > 0 {
			var names []string
			for _, g := range groups {
				names = append(names, fields[g])
			}
			group := strings.Join(names, "\t")
			if i, ok := latest[group]; ok {
				rows[i] = row
				continue
			}
			latest[group] = len(rows)
		}
		rows = append(rows, row)
	}
	slices.Sort(rows)
	return rows
}

// sumOverWindows turns rows of a key, a count and a 10-second window into
// each key's sum of the counts, sorted, after checking that no key's
// window is written twice.
func sumOverWindows(t *testing.T, rows []string) []string {
	t.Helper()
	sums := map[string]int64{}
	seen := map[string]bool{}
	for _, row := range rows {
		f := strings.Split(row, "\t")
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			t.Fatalf("row %q: %v", row, err)
		}
		start, err1 := time.Parse(time.RFC3339Nano, f[2])
		end, err2 := time.Parse(time.RFC3339Nano, f[3])
		if err1 != nil || err2 != nil || end.Sub(start) != 10*time.Second {
			t.Fatalf("row %q: want a window of 10 s", row)
		}
		if window := f[0] + "@" + f[2]; seen[window] {
			t.Fatalf("bidder %s's window of %s written twice", f[0], f[2])
		} else {
			seen[window] = true
		}
		sums[f[0]] += n
	}
	var out []string
	for k, n := range sums {
		out = append(out, k+"\t"+strconv.FormatInt(n, 10))
	}
	slices.Sort(out)
	return out
}

// registerDir registers, once per process, the SQLite function dir(s, n),
// split_part(s, '/', n), which SQLite lacks.
var registerDir = sync.OnceValue(func() error {
	return sqlite.RegisterDeterministicScalarFunction("dir", 2, func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
		parts := strings.Split(args[0].(string), "/")
		if n := int(args[1].(int64)); n <= len(parts) {
			return parts[n-1], nil
		}
		return "", nil
	})
})

// sqliteRows loads the events counts says into SQLite and returns the
// query's rows as engineRows does.
func sqliteRows(t *testing.T, counts map[string]int64, columns []string, query string, times []int) []string {
	t.Helper()
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	tables := map[string]gen.Kind{"person": gen.Person, "auction": gen.Auction, "bid": gen.Bid, "side_input": gen.SideInput}
	for name, n := range counts {
		kind := tables[name]
		var cols, marks []string
		var made []int
		for i, c := range kind.Columns() {
			if columns != nil && !slices.Contains(columns, c.Name) {
				continue
			}
			col := c.Name
			if col == "datetime" {
				col = "dt"
			}
			cols, marks, made = append(cols, col), append(marks, "?"), append(made, i)
		}
		if _, err := db.Exec(fmt.Sprintf("CREATE TABLE %s (%s)", name, strings.Join(cols, ", "))); err != nil {
			t.Fatal(err)
		}
		tx, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		ins, err := tx.Prepare(fmt.Sprintf("INSERT INTO %s VALUES (%s)", name, strings.Join(marks, ", ")))
		if err != nil {
			t.Fatal(err)
		}
		g, err := gen.New(kind, made)
		if err != nil {
			t.Fatal(err)
		}
		row := make(value.Row, len(made))
		args := make([]any, len(made))
		for i := range n {
			g.Fill(i, row)
			for k, v := range row {
				switch v.Kind() {
				case value.KindInt:
					args[k] = v.Int()
				case value.KindTimestamp:
					args[k] = v.Nanos() / 1e6
				default:
					args[k] = v.Str()
				}
			}
			if _, err := ins.Exec(args...); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	rs, err := db.Query(query)
	if err != nil {
		t.Fatalf("SQLite: %v\n%s", err, query)
	}
	defer rs.Close()
	names, _ := rs.Columns()
	var rows []string
	for rs.Next() {
		vals := make([]any, len(names))
		ptrs := make([]any, len(names))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rs.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		fields := make([]string, len(vals))
		for i, v := range vals {
			switch v := v.(type) {
			case int64:
				fields[i] = strconv.FormatInt(v, 10)
				if slices.Contains(times, i) {
					fields[i] = value.TimestampValue(v * 1e6).String()
				}
			default:
				fields[i] = fmt.Sprint(v)
			}
		}
		rows = append(rows, strings.Join(fields, "\t"))
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(rows)
	return rows
}
