package sql_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/runtime/expr"
	"github.com/sluice-dev/sluice/runtime/plan"
	"github.com/sluice-dev/sluice/runtime/sql"
	"github.com/sluice-dev/sluice/runtime/value"
)

// joinCatalog has three streams, trades, quotes and fills, and tables.
var joinCatalog = sql.Catalog{
	"trades": catalog["trades"],
	"fills": {
		{Name: "symbol", Type: value.String},
		{Name: "qty", Type: value.Int},
		{Name: "at", Type: value.Timestamp},
		{Name: "ts", Type: value.Timestamp},
	},
	"fills2": {
		{Name: "symbol", Type: value.String},
		{Name: "ts", Type: value.Timestamp},
	},
	"quotes": {
		{Name: "symbol", Type: value.String},
		{Name: "bid", Type: value.Decimal(10, 2)},
		{Name: "ts", Type: value.Timestamp},
	},
	"symbols": {
		{Name: "symbol", Type: value.String},
		{Name: "name", Type: value.String},
		{Name: "sector", Type: value.String},
	},
	"sectors": {
		{Name: "sector", Type: value.String},
		{Name: "label", Type: value.String},
		{Name: "weight", Type: value.Int},
	},
	"rates": {
		{Name: "currency", Type: value.String},
		{Name: "rate", Type: value.Decimal(18, 6)},
		{Name: "ts", Type: value.Timestamp},
	},
	"limits": {
		{Name: "symbol", Type: value.String},
		{Name: "cap", Type: value.Int},
		{Name: "since", Type: value.Timestamp},
	},
}

// joinTables: symbols and sectors have no version time, rates and limits
// do (their eventTime, ts and since).
var joinTables = sql.Tables{"symbols": {Key: []string{"symbol"}}, "sectors": {Key: []string{"sector"}}, "rates": {Key: []string{"currency"}, Time: "ts"},
	"limits": {Key: []string{"symbol"}, Time: "since"}}

// within5s is the time bound of the interval joins below.
const within5s = " AND t.ts BETWEEN q.ts - INTERVAL '5' SECOND AND q.ts + INTERVAL '5' SECOND"

// TestJoinErrorPositions: the joins the planner rejects, each with its
// message at its place.
func TestJoinErrorPositions(t *testing.T) {
	tests := []struct {
		query string
		at    string // the text at the error's offset
		msg   string // the whole message
	}{
		{
			"SELECT symbol FROM trades t JOIN quotes q ON t.symbol = q.symbol" + within5s,
			"symbol FROM", `column "symbol" is in both trades and quotes; qualify it, as quotes.symbol`,
		},
		{
			"SELECT * FROM symbols s JOIN trades t ON s.symbol = t.symbol",
			"symbols s", "symbols is a table; write the stream first: stream JOIN table",
		},
		{
			"SELECT * FROM trades t JOIN symbols s ON t.note = s.name",
			"t.note = s.name", "a join with table symbols matches its whole key, [symbol], with equalities in ON; found [name]",
		},
		{
			// Of one kind: an int expression does not look up a string key.
			"SELECT * FROM trades t JOIN symbols s ON length(t.symbol) = s.symbol",
			"length(t.symbol) = s.symbol", "the table's key symbols.symbol is string and length(trades.symbol) is int: cast the expression to string",
		},
		{
			"SELECT * FROM trades t LEFT JOIN symbols s ON t.symbol = s.symbol AND t.note = s.name",
			"t.symbol = s.symbol AND", "a join with table symbols matches its whole key, [symbol], with equalities in ON; found [name symbol]",
		},
		{
			"SELECT * FROM trades t JOIN quotes q ON t.symbol = q.symbol",
			"t.symbol = q.symbol", "a join of two streams needs a time bound in ON: left.ts BETWEEN right.ts - INTERVAL 'a' AND right.ts + INTERVAL 'b'",
		},
		{
			"SELECT * FROM trades t JOIN quotes q ON t.symbol = q.symbol AND t.ts > q.ts",
			"t.symbol = q.symbol", "a join of two streams needs a time bound in ON: left.ts BETWEEN right.ts - INTERVAL 'a' AND right.ts + INTERVAL 'b'",
		},
		{
			"SELECT * FROM trades t CROSS JOIN quotes q",
			"quotes q", "a join needs ON with its conditions",
		},
		{
			"SELECT * FROM trades t JOIN quotes q ON t.ts BETWEEN q.ts AND q.ts + INTERVAL '1' SECOND",
			"t.ts BETWEEN", "a join needs at least one equality of a column of trades and one of quotes in ON",
		},
		{
			"SELECT * FROM trades JOIN trades ON trades.symbol = trades.symbol",
			"trades ON", "both sides of the join are called trades; give one an alias",
		},
		{
			// OVER over a join orders by a time the watermark follows.
			"SELECT t.symbol, avg(r.rate) OVER (PARTITION BY t.symbol ORDER BY r.ts ROWS 3 PRECEDING) AS a FROM trades t JOIN rates r ON r.currency = t.note",
			"r.ts ROWS", "OVER over a join with a table is over the time of the stream, trades; rates.ts is the table's",
		},
		{
			// A window over a join's rows is over an event time the
			// watermark follows.
			"WITH j AS (SELECT t.symbol, t.ts AS tts, q.ts AS qts, t.ts + INTERVAL '1' SECOND AS later FROM trades t JOIN quotes q ON t.symbol = q.symbol" + within5s + ") SELECT window_start, count(*) FROM TUMBLE(j, later, INTERVAL '1' MINUTE) GROUP BY window_start, window_end",
			"t.ts + INTERVAL '1' SECOND AS", "the second argument of TUMBLE is the event-time column, a timestamp column of the join, or PROCTIME()",
		},
		{
			"WITH j AS (SELECT q.ts, s.rate FROM quotes q JOIN rates FOR SYSTEM_TIME AS OF q.ts AS s ON s.currency = q.symbol) SELECT window_start, count(*) FROM TUMBLE(j, s.ts, INTERVAL '1' MINUTE) GROUP BY window_start, window_end",
			"s.ts, INTERVAL", `missing FROM-clause entry for table "s"`,
		},
		{
			"WITH j AS (SELECT q.ts AS qts, r.ts AS rts FROM quotes q JOIN rates FOR SYSTEM_TIME AS OF q.ts AS r ON r.currency = q.symbol) SELECT window_start, count(*) FROM TUMBLE(j, rts, INTERVAL '1' MINUTE) GROUP BY window_start, window_end",
			// At the column's expression in the WITH query.
			"r.ts AS rts", "a window over a join is over the event time of one of its streams, which the watermark follows: quotes.ts, not rates.ts",
		},
		{
			// Of a RIGHT JOIN, the left's.
			"WITH j AS (SELECT q.symbol, t.ts AS tts FROM trades t RIGHT JOIN quotes q ON t.symbol = q.symbol" + within5s + ") SELECT window_start, count(*) FROM TUMBLE(j, tts, INTERVAL '1' MINUTE) GROUP BY window_start, window_end",
			"t.ts AS tts", "a window over a join is over the event time of one of its streams, which the watermark follows: quotes.ts, not trades.ts",
		},
		{
			"WITH j AS (SELECT q.symbol, t.ts FROM trades t FULL JOIN quotes q ON t.symbol = q.symbol" + within5s + ") SELECT symbol, count(*) OVER (PARTITION BY symbol ORDER BY ts ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) FROM j",
			"t.ts FROM", "OVER over a FULL JOIN's rows is not supported: each stream's time is NULL in the other's rows that matched nothing, and the watermark follows the two",
		},
		{
			// The right's time of a LEFT JOIN is NULL for a left row that
			// matched nothing.
			"WITH j AS (SELECT t.symbol, q.ts AS qts FROM trades t LEFT JOIN quotes q ON t.symbol = q.symbol" + within5s + ") SELECT window_start, count(*) FROM TUMBLE(j, qts, INTERVAL '1' MINUTE) GROUP BY window_start, window_end",
			"q.ts AS qts", "a window over a join is over the event time of one of its streams, which the watermark follows: trades.ts, not quotes.ts",
		},
		{
			"WITH j AS (SELECT t.symbol, r.ts FROM trades t JOIN rates r ON r.currency = t.note) SELECT window_start, count(*) FROM TUMBLE(j, ts, INTERVAL '1' MINUTE) GROUP BY window_start, window_end",
			"r.ts FROM", "a window over a join with a table is over the time of the stream, trades; rates.ts is the table's",
		},
		{
			"WITH j AS (SELECT t.ts, s.sector FROM trades t JOIN symbols s ON t.symbol = s.symbol), k AS (SELECT * FROM TUMBLE(j, ts, INTERVAL '1' MINUTE)) SELECT window_start, count(*) FROM k GROUP BY window_start, window_end",
			"k AS", "WITH query k may only filter and compute columns of one source or join yet: a windowing function is not supported in it",
		},
		{
			// Two columns of one name, as in PostgreSQL.
			"WITH j AS (SELECT * FROM trades t JOIN quotes q ON t.symbol = q.symbol" + within5s + ") SELECT symbol, count(*) FROM j GROUP BY symbol",
			"symbol, count(*) FROM j", `column reference "symbol" is ambiguous: WITH query j has 2 columns of that name`,
		},
		{
			"WITH j AS (SELECT t.symbol, q.bid, q.ts FROM trades t JOIN quotes q ON t.symbol = q.symbol" + within5s + ") " +
				"SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY bid DESC) AS rn FROM TUMBLE(j, ts, INTERVAL '1' MINUTE)) WHERE rn <= 1",
			"ROW_NUMBER", "a top-N of the rows of a join's windows is not supported yet; a top-N of a join's rows without a window is",
		},
		{
			"SELECT * FROM trades t JOIN symbols s ON t.symbol = s.symbol JOIN quotes q ON q.symbol = t.symbol",
			"quotes q ON", "the inputs of a join after the first two are tables: quotes is a stream (give it table: {key: [...]} in the manifest to read it as one)",
		},
		{
			// The inputs' times before a RIGHT JOIN's stream are NULL in
			// its rows that matched nothing.
			"SELECT f.symbol FROM trades t JOIN quotes q ON t.symbol = q.symbol" + within5s + " RIGHT JOIN fills f ON f.symbol = t.symbol AND f.ts BETWEEN t.ts AND t.ts + INTERVAL '1' SECOND" +
				" JOIN fills2 g ON g.symbol = f.symbol AND g.ts BETWEEN q.ts AND q.ts + INTERVAL '1' SECOND",
			"g.symbol = f.symbol", "the time bound of fills2 is on quotes.ts, which an outer join before it leaves NULL in the rows it writes with NULLs: bound it by the time of an input no outer join leaves NULL",
		},
		{
			"WITH j AS (SELECT f.symbol, t.ts FROM trades t JOIN quotes q ON t.symbol = q.symbol" + within5s + " RIGHT JOIN fills f ON f.symbol = t.symbol AND f.ts BETWEEN t.ts AND t.ts + INTERVAL '1' SECOND)" +
				" SELECT window_start, count(*) FROM TUMBLE(j, ts, INTERVAL '1' MINUTE) GROUP BY window_start, window_end",
			"t.ts FROM", "a window over a join with a stream joined by RIGHT or FULL JOIN is not supported: the times of the inputs before it are NULL in its rows that matched nothing",
		},
		{
			"SELECT t.symbol FROM trades t JOIN quotes q ON t.symbol = q.symbol" + within5s + " LEFT JOIN fills f ON f.symbol = t.symbol AND f.ts BETWEEN t.ts AND t.ts + INTERVAL '1' SECOND" +
				" JOIN fills2 g ON g.symbol = t.symbol AND g.ts BETWEEN f.ts AND f.ts + INTERVAL '1' SECOND",
			"g.symbol = t.symbol", "the time bound of fills2 is on fills.ts, which an outer join before it leaves NULL in the rows it writes with NULLs: bound it by the time of an input no outer join leaves NULL",
		},
		{
			"SELECT * FROM trades t LEFT JOIN quotes q ON t.symbol = q.symbol" + within5s + " JOIN fills f ON f.symbol = t.symbol AND f.ts BETWEEN q.ts AND q.ts + INTERVAL '1' SECOND",
			"f.symbol = t.symbol", "the time bound of fills is on quotes.ts, which an outer join before it leaves NULL in the rows it writes with NULLs: bound it by the time of an input no outer join leaves NULL",
		},
		{
			"SELECT * FROM trades t RIGHT JOIN quotes q ON t.symbol = q.symbol" + within5s + " JOIN fills f ON f.symbol = q.symbol AND f.ts BETWEEN t.ts AND t.ts + INTERVAL '1' SECOND",
			"f.symbol = q.symbol", "the time bound of fills is on trades.ts, which an outer join before it leaves NULL in the rows it writes with NULLs: bound it by the time of an input no outer join leaves NULL",
		},
		{
			"SELECT * FROM trades t FULL JOIN quotes q ON t.symbol = q.symbol" + within5s + " JOIN fills f ON f.symbol = q.symbol AND f.ts BETWEEN t.ts AND t.ts + INTERVAL '1' SECOND",
			"f.symbol = q.symbol", "the time bound of fills is on trades.ts, which an outer join before it leaves NULL in the rows it writes with NULLs: bound it by the time of an input no outer join leaves NULL",
		},
		{
			"SELECT * FROM trades t JOIN quotes q ON t.symbol = q.symbol" + within5s + " JOIN fills f ON f.symbol = t.symbol",
			"f.symbol = t.symbol", "a join of streams needs a time bound in ON: fills.ts BETWEEN ts - INTERVAL 'a' AND ts + INTERVAL 'b', ts the event time of an input before it",
		},
		{
			"SELECT * FROM trades t JOIN quotes q ON t.symbol = q.symbol" + within5s + " JOIN fills f ON f.ts BETWEEN t.ts AND t.ts + INTERVAL '1' SECOND",
			"f.ts BETWEEN", "a join needs at least one equality of a column of the inputs before fills and one of it in ON",
		},
		{
			"SELECT * FROM trades t JOIN quotes q ON t.symbol = q.symbol" + within5s + " JOIN fills f ON f.symbol = t.symbol AND f.at BETWEEN f.ts AND f.ts + INTERVAL '1' SECOND",
			"f.symbol = t.symbol", "a join of streams needs a time bound in ON: fills.ts BETWEEN ts - INTERVAL 'a' AND ts + INTERVAL 'b', ts the event time of an input before it",
		},
		{
			"SELECT * FROM trades t JOIN quotes q ON t.symbol = q.symbol" + within5s + " JOIN fills f ON f.symbol = t.symbol AND f.ts BETWEEN f.at AND f.at + INTERVAL '1' SECOND JOIN fills g ON g.symbol = t.symbol AND g.ts BETWEEN t.ts AND t.ts + INTERVAL '1' SECOND",
			"f.symbol = t.symbol", "a join of streams needs a time bound in ON: fills.ts BETWEEN ts - INTERVAL 'a' AND ts + INTERVAL 'b', ts the event time of an input before it",
		},
		{
			"SELECT * FROM trades t JOIN quotes q ON t.symbol = q.symbol" + within5s + " JOIN fills f ON f.symbol = t.symbol AND f.ts BETWEEN t.ts AND t.ts + INTERVAL '1' SECOND JOIN fills g ON g.symbol = t.symbol AND g.ts BETWEEN t.ts AND t.ts + INTERVAL '1' SECOND",
			"fills g ON", "two inputs of the join are called fills; a stream is joined once, each input with its own name",
		},
		{
			"SELECT * FROM trades t JOIN quotes q ON t.symbol = q.symbol" + within5s + " JOIN fills f ON f.symbol = t.symbol AND f.ts BETWEEN t.ts AND t.ts + INTERVAL '1' SECOND" +
				" JOIN fills2 g ON g.symbol = t.symbol AND g.ts BETWEEN f.at AND f.at + INTERVAL '1' SECOND",
			"g.symbol = t.symbol", "the time bound of fills2 is on fills.at, which is no input's event time: bound it by the time of an input before it, that of its own time bound",
		},
		{
			"SELECT * FROM trades t JOIN quotes q ON t.symbol = q.symbol" + within5s + " JOIN fills t ON t.symbol = q.symbol AND t.ts BETWEEN q.ts AND q.ts + INTERVAL '1' SECOND",
			"fills t ON", "two inputs of the join are called t; a stream is joined once, each input with its own name",
		},
		{
			"SELECT * FROM trades t JOIN quotes q ON t.symbol = q.symbol" + within5s + " JOIN fills f ON f.symbol = t.symbol AND f.ts BETWEEN t.ts AND t.ts + INTERVAL '1' SECOND JOIN symbols s ON s.symbol = t.symbol JOIN fills2 g ON g.symbol = s.symbol AND g.ts BETWEEN t.ts AND t.ts + INTERVAL '1' SECOND",
			"g.symbol = s.symbol", "the ON of fills2 reads a table's column, which a stream after a table may not: join it before the tables",
		},
		{
			"SELECT * FROM trades t JOIN quotes q ON t.symbol = q.symbol" + within5s + " JOIN symbols s ON s.symbol = t.symbol JOIN fills f ON f.symbol = t.symbol AND f.ts BETWEEN t.ts AND t.ts + INTERVAL '1' SECOND AND f.qty > length(s.name)",
			"f.symbol = t.symbol", "the ON of fills reads a table's column, which a stream after a table may not: join it before the tables",
		},
		{
			"SELECT * FROM trades t JOIN quotes q ON t.symbol = q.symbol" + within5s + " JOIN symbols s ON s.symbol = t.symbol RIGHT JOIN fills f ON f.symbol = t.symbol AND f.ts BETWEEN t.ts AND t.ts + INTERVAL '1' SECOND",
			"fills f ON", "fills is a stream after a table, joined by RIGHT or FULL JOIN: join it before the tables",
		},
		{
			"SELECT * FROM trades t JOIN symbols s ON t.symbol = s.symbol JOIN rates FOR SYSTEM_TIME AS OF t.ts AS r ON r.currency = t.note",
			"FOR SYSTEM_TIME AS OF t.ts AS r", "a table is joined FOR SYSTEM_TIME AS OF after the first only if the first is: join rates first, and the tables joined as read after it",
		},
		{
			"SELECT * FROM fills f JOIN rates FOR SYSTEM_TIME AS OF f.ts AS r ON r.currency = f.symbol JOIN limits FOR SYSTEM_TIME AS OF f.at AS l ON l.symbol = f.symbol",
			"f.at AS l", "the tables of a join are joined as of one time, the stream row's: fills.ts, as rates is",
		},
		{
			"SELECT * FROM trades t JOIN rates FOR SYSTEM_TIME AS OF t.ts AS r ON r.currency = t.note JOIN limits FOR SYSTEM_TIME AS OF l.since AS l ON l.symbol = t.symbol",
			"l.since AS l", "FOR SYSTEM_TIME AS OF takes the time of the stream's row, a column of trades, not of the table",
		},
		{
			"SELECT * FROM trades t JOIN rates FOR SYSTEM_TIME AS OF t.ts AS r ON r.currency = t.note LEFT JOIN symbols FOR SYSTEM_TIME AS OF t.ts AS s ON s.symbol = t.symbol",
			"FOR SYSTEM_TIME AS OF t.ts AS s", "a join FOR SYSTEM_TIME AS OF joins each row with the version of the table's row at its time: give source symbols an eventTime, the column of its rows' version time",
		},
		{
			"SELECT * FROM trades t JOIN limits FOR SYSTEM_TIME AS OF t.ts AS l ON l.symbol = t.symbol JOIN rates FOR SYSTEM_TIME AS OF t.ts AS r ON r.currency = t.note JOIN rates r2 ON r2.currency = t.symbol",
			"rates r2 ON", "rates is joined FOR SYSTEM_TIME AS OF already; only a table joined as read may be joined again",
		},
		{
			"SELECT * FROM trades t JOIN rates FOR SYSTEM_TIME AS OF t.ts AS r ON r.currency = t.note JOIN limits a ON a.symbol = t.symbol JOIN limits FOR SYSTEM_TIME AS OF t.ts AS b ON b.symbol = t.note",
			"FOR SYSTEM_TIME AS OF t.ts AS b", "limits is joined already; a table joined FOR SYSTEM_TIME AS OF is joined once",
		},
		{
			"SELECT * FROM trades t JOIN quotes q ON t.symbol = q.symbol" + within5s + " JOIN rates FOR SYSTEM_TIME AS OF t.ts AS r ON r.currency = t.note",
			"FOR SYSTEM_TIME AS OF t.ts AS r", "the tables after a join of two streams are joined as read yet, not FOR SYSTEM_TIME AS OF",
		},
		{
			"SELECT * FROM trades t JOIN symbols ON t.symbol = symbols.symbol JOIN symbols b ON t.note = b.symbol",
			"symbols b ON", "symbols is joined already; to join it again, give each of its inputs an alias",
		},
		{
			"SELECT a.name, symbols.sector FROM trades t JOIN symbols a ON t.symbol = a.symbol JOIN symbols b ON t.note = b.symbol",
			"symbols.sector", `column "sector" is in both inputs of table symbols; qualify it by an alias, as b.sector`,
		},
		{
			// A GROUP BY key is the column it binds to, not its name.
			"SELECT b.sector, count(*) FROM trades t JOIN symbols a ON t.symbol = a.symbol JOIN symbols b ON b.symbol = t.note GROUP BY a.sector",
			"b.sector", `column "sector" must be in GROUP BY or inside an aggregate function`,
		},
		{
			"SELECT * FROM trades t JOIN symbols s ON t.symbol = s.symbol JOIN sectors trades ON trades.sector = s.sector",
			"sectors trades", "two inputs of the join are called trades; give one another alias",
		},
		{
			"SELECT * FROM trades t JOIN symbols a ON t.symbol = a.symbol JOIN symbols symbols ON symbols.symbol = t.note",
			"symbols symbols", "two inputs of the join are called symbols; give one another alias",
		},
		{
			"SELECT symbols.* FROM trades t JOIN symbols a ON t.symbol = a.symbol JOIN symbols b ON b.symbol = t.note",
			"symbols.*", "symbols.* is ambiguous: table symbols is joined more than once; name an input by its alias, as b.*",
		},
		{
			"SELECT sector FROM trades t JOIN sectors x ON x.sector = t.note JOIN symbols a ON t.symbol = a.symbol JOIN symbols b ON b.symbol = t.note",
			"sector FROM", `column "sector" is in both sectors and a; qualify it, as a.sector`,
		},
		{
			"SELECT t.price FROM trades t JOIN rates FOR SYSTEM_TIME AS OF t.ts AS r ON t.note = r.currency JOIN rates r2 ON r2.currency = t.symbol",
			"rates r2 ON", "rates is joined FOR SYSTEM_TIME AS OF already; only a table joined as read may be joined again",
		},
		{
			"SELECT * FROM trades t JOIN symbols s ON t.symbol = s.symbol JOIN sectors s ON s.sector = 'x'",
			"sectors s ON", "two inputs of the join are called s; give one another alias",
		},
		{
			"SELECT * FROM trades t JOIN symbols s ON t.symbol = s.symbol JOIN sectors x ON x.label = s.name",
			"x.label = s.name", "a join with table sectors matches its whole key, [sector], with equalities in ON; found [label]",
		},
		{
			"SELECT * FROM trades t JOIN symbols s ON t.symbol = s.symbol LEFT JOIN sectors x ON x.weight > 1",
			"x.weight > 1", "a join needs at least one equality of a column of the inputs before sectors and one of it in ON",
		},
		{
			"SELECT * FROM trades t JOIN symbols s ON t.symbol = s.symbol JOIN sectors x ON x.sector = s.sector JOIN sectors x ON x.sector = t.note",
			"sectors x ON x.sector = t", "two inputs of the join are called x; give one another alias",
		},
		{
			"SELECT sector FROM trades t JOIN symbols s ON t.symbol = s.symbol JOIN sectors x ON x.sector = s.sector",
			"sector FROM", `column "sector" is in both symbols and sectors; qualify it, as sectors.sector`,
		},
		{
			// A WITH query as any input of a join of three.
			"WITH trades AS (SELECT * FROM trades WHERE price > 1) SELECT * FROM trades t JOIN symbols s ON t.symbol = s.symbol JOIN sectors x ON x.sector = s.sector",
			"trades t JOIN symbols", "each side of a join is a source; joins of WITH queries are not supported yet",
		},
		{
			"WITH symbols AS (SELECT * FROM symbols) SELECT * FROM trades t JOIN symbols s ON t.symbol = s.symbol JOIN sectors x ON x.sector = s.sector",
			"symbols s ON", "each side of a join is a source; joins of WITH queries are not supported yet",
		},
		{
			"SELECT * FROM trades t JOIN (symbols s JOIN sectors x ON x.sector = s.sector) ON t.symbol = s.symbol",
			"symbols s JOIN sectors", "each side of a join is a source, joined left to right; joins of subqueries and of joins in parentheses are not supported",
		},
		{
			// A table's column that is not its key, equated with a column
			// of another type: the pair is widened, and still not the key.
			"SELECT * FROM trades t JOIN symbols s ON t.symbol = s.symbol JOIN sectors x ON x.sector = s.sector AND x.weight = t.price",
			"x.sector = s.sector AND", "a join with table sectors matches its whole key, [sector], with equalities in ON; found [sector weight]",
		},
		{
			"SELECT * FROM trades t JOIN sectors x ON x.weight = t.price AND x.sector = t.symbol",
			"x.weight = t.price", "a join with table sectors matches its whole key, [sector], with equalities in ON; found [sector weight]",
		},
		{
			"SELECT * FROM trades t JOIN symbols s ON t.symbol = s.symbol FULL JOIN sectors x ON x.sector = s.sector",
			"sectors x ON", "sectors is a table: the tables after the first two inputs are looked up with JOIN or LEFT JOIN, not RIGHT or FULL JOIN",
		},
		{
			"SELECT * FROM trades t JOIN nosuch n ON t.symbol = n.symbol",
			"nosuch", `unknown source "nosuch" (the manifest defines fills, fills2, limits, quotes, rates, sectors, symbols, trades)`,
		},
		{
			"SELECT t.price FROM trades t JOIN symbols FOR SYSTEM_TIME AS OF t.ts AS s ON t.symbol = s.symbol",
			"FOR SYSTEM_TIME", "a join FOR SYSTEM_TIME AS OF joins each row with the version of the table's row at its time: give source symbols an eventTime, the column of its rows' version time",
		},
		{
			// quotes is an unreserved keyword of PostgreSQL's, as a name.
			"SELECT t.price FROM trades t JOIN quotes FOR SYSTEM_TIME AS OF t.ts AS q ON t.symbol = q.symbol" + within5s,
			"FOR SYSTEM_TIME", "FOR SYSTEM_TIME AS OF applies to a table, and quotes is a stream: give it table: {key: [...]} in the manifest",
		},
		{
			"SELECT t.price FROM trades t JOIN rates FOR SYSTEM_TIME AS OF r.ts AS r ON t.note = r.currency",
			"r.ts AS r", "FOR SYSTEM_TIME AS OF takes the time of the stream's row, a column of trades, not of the table",
		},
		{
			"SELECT t.price FROM trades t JOIN rates FOR SYSTEM_TIME AS OF t.quantity AS r ON t.note = r.currency",
			"t.quantity", "FOR SYSTEM_TIME AS OF takes a timestamp column; trades.quantity is int",
		},
		{
			"SELECT price FROM trades FOR SYSTEM_TIME AS OF ts WHERE price > 1",
			"FOR SYSTEM_TIME", "FOR SYSTEM_TIME AS OF applies to the table of a join: stream JOIN table FOR SYSTEM_TIME AS OF stream.time",
		},
		{
			// A reserved word after the dot is a column's name.
			"SELECT t.price FROM trades t JOIN rates FOR SYSTEM_TIME AS OF t.end AS r ON t.note = r.currency",
			"t.end", `unknown column "end" in trades or rates (it has symbol, price, quantity, ts, score, active, note, rates.currency, rates.rate, rates.ts)`,
		},
		{
			// The join's error alone: the clause is not said to be unused.
			"SELECT t.price FROM trades t RIGHT JOIN rates FOR SYSTEM_TIME AS OF t.ts AS r ON t.note = r.currency",
			"rates", "rates is a table: a join with a table is a JOIN or a LEFT JOIN, which keep the stream's rows; a RIGHT or FULL JOIN would keep the table's, which are not a stream",
		},
		{
			"SELECT t.price FROM trades t JOIN rates FOR SYSTEM_TIME AS OF t.nope AS r ON t.note = r.currency",
			"t.nope", `unknown column "nope" in trades or rates (it has symbol, price, quantity, ts, score, active, note, rates.currency, rates.rate, rates.ts)`,
		},
	}
	for _, tt := range tests {
		_, err := sql.PlanTables(tt.query, joinCatalog, joinTables)
		es := sql.AsErrors(err)
		if len(es) == 0 {
			t.Errorf("PlanTables(%q) = %v; want the error %q", tt.query, err, tt.msg)
			continue
		}
		e := es[0]
		if e.Msg != tt.msg {
			t.Errorf("PlanTables(%q) error %q; want %q", tt.query, e.Msg, tt.msg)
		}
		if e.Offset < 0 || e.Offset > len(tt.query) || !strings.HasPrefix(tt.query[e.Offset:], tt.at) {
			t.Errorf("PlanTables(%q) error at offset %d (%q); want it at %q", tt.query, e.Offset, tt.query[min(max(e.Offset, 0), len(tt.query)):], tt.at)
		}
	}
}

// TestJoinErrorLists: queries with more than one problem get each, in text
// order.
func TestJoinErrorLists(t *testing.T) {
	type at struct{ at, msg string }
	tests := []struct {
		query string
		want  []at
	}{
		{
			// Reversed bounds are the time bound, wrong: that alone is said.
			"SELECT t.price FROM trades t JOIN quotes q ON t.symbol = q.symbol AND t.ts BETWEEN q.ts + INTERVAL '5' SECOND AND q.ts",
			[]at{
				{"BETWEEN q.ts +", "the lower time bound is above the upper one"},
			},
		},
		{
			// SELECT * names the columns unqualified: shared names collide.
			"SELECT * FROM trades t JOIN quotes q ON t.symbol = q.symbol" + within5s,
			[]at{
				{"* FROM", `output column "symbol" is also produced at offset 7; give one an alias with AS`},
				{"* FROM", `output column "ts" is also produced at offset 7; give one an alias with AS`},
			},
		},
	}
	for _, tt := range tests {
		checkErrorList(t, tt.query, tt.want)
	}
}

// TestJoinErrorsReportedOnce: a column that cannot be resolved in ON is
// one error.
func TestJoinErrorsReportedOnce(t *testing.T) {
	type at struct{ at, msg string }
	checkErrorList(t, "SELECT t.price FROM trades t JOIN quotes q ON t.symbol = q.symbol AND ts BETWEEN q.ts AND q.ts + INTERVAL '1' SECOND", []at{
		{"t.symbol = q.symbol", "a join of two streams needs a time bound in ON: left.ts BETWEEN right.ts - INTERVAL 'a' AND right.ts + INTERVAL 'b'"},
		{"ts BETWEEN", `column "ts" is in both trades and quotes; qualify it, as quotes.ts`},
	})
	checkErrorList(t, "SELECT t.price FROM trades t JOIN quotes q ON t.nope = q.symbol AND t.symbol = q.symbol"+within5s, []at{
		{"t.nope", `unknown column "nope" in trades or quotes (it has symbol, price, quantity, ts, score, active, note, quotes.symbol, quotes.bid, quotes.ts)`},
	})
}

// checkErrorList plans query and compares all its errors with want.
func checkErrorList[A ~struct{ at, msg string }](t *testing.T, query string, want []A) {
	t.Helper()
	_, err := sql.PlanTables(query, joinCatalog, joinTables)
	es := sql.AsErrors(err)
	ok := len(es) == len(want)
	for i := 0; ok && i < len(es); i++ {
		w := struct{ at, msg string }(want[i])
		ok = es[i].Msg == w.msg && es[i].Offset >= 0 && es[i].Offset <= len(query) && strings.HasPrefix(query[es[i].Offset:], w.at)
	}
	if !ok {
		var got []string
		for _, e := range es {
			got = append(got, fmt.Sprintf("\t%d %q: %s", e.Offset, query[min(max(e.Offset, 0), len(query)):], e.Msg))
		}
		t.Errorf("PlanTables(%q) errors:\n%s\nwant %d: %v", query, strings.Join(got, "\n"), len(want), want)
	}
}

// TestJoinPlans: what the planner makes of the joins it takes: the kind,
// the keys, the bounds whichever side's time comes first, and the ON
// conditions that are neither, which the join applies to its pairs.
func TestJoinPlans(t *testing.T) {
	tests := []struct {
		query    string
		describe string // the Join's Describe, with the rest of ON at its end
	}{
		{
			"SELECT t.price, q.bid FROM trades t JOIN quotes q ON t.symbol = q.symbol" + within5s,
			"IntervalJoin JOIN ON trades.symbol = quotes.symbol AND trades.ts BETWEEN quotes.ts - 5s AND quotes.ts + 5s",
		},
		{
			// The right side's time first: q.ts ∈ [t.ts, t.ts + 2s] ⟺ t.ts ∈ [q.ts - 2s, q.ts].
			"SELECT t.price, q.bid FROM trades t JOIN quotes q ON q.symbol = t.symbol AND q.ts BETWEEN t.ts AND t.ts + INTERVAL '2' SECOND",
			"IntervalJoin JOIN ON trades.symbol = quotes.symbol AND trades.ts BETWEEN quotes.ts - 2s AND quotes.ts + 0s",
		},
		{
			"SELECT t.price, q.bid FROM trades t JOIN quotes q ON t.symbol = q.symbol AND t.ts BETWEEN q.ts - INTERVAL '3' SECOND AND q.ts - INTERVAL '1' SECOND AND t.price > q.bid",
			"IntervalJoin JOIN ON trades.symbol = quotes.symbol AND trades.ts BETWEEN quotes.ts - 3s AND quotes.ts + -1s AND (trades.price > quotes.bid)",
		},
		{
			"SELECT t.price, s.name FROM trades t LEFT JOIN symbols s ON s.symbol = t.symbol",
			"TableJoin LEFT JOIN table symbols ON trades.symbol = symbols.symbol",
		},
		{
			// A fourth stream bound by the third's time.
			"SELECT t.price, g.ts AS g_ts FROM trades t JOIN quotes q ON t.symbol = q.symbol" + within5s +
				" JOIN fills f ON f.symbol = t.symbol AND f.ts BETWEEN t.ts AND t.ts + INTERVAL '1' SECOND" +
				" JOIN fills2 g ON g.symbol = f.symbol AND g.ts BETWEEN f.ts - INTERVAL '1' SECOND AND f.ts",
			"IntervalJoin JOIN ON trades.symbol = quotes.symbol AND trades.ts BETWEEN quotes.ts - 5s AND quotes.ts + 5s" +
				" JOIN stream fills ON trades.symbol = fills.symbol AND trades.ts BETWEEN fills.ts - 1s AND fills.ts + 0s" +
				" JOIN stream fills2 ON fills.symbol = fills2.symbol AND fills.ts BETWEEN fills2.ts - 0s AND fills2.ts + 1s",
		},
		{
			// A third stream joined with RIGHT JOIN, a fourth bound by its time.
			"SELECT f.qty, g.ts AS g_ts FROM trades t JOIN quotes q ON t.symbol = q.symbol" + within5s +
				" RIGHT JOIN fills f ON f.symbol = t.symbol AND f.ts BETWEEN t.ts AND t.ts + INTERVAL '1' SECOND" +
				" FULL JOIN fills2 g ON g.symbol = f.symbol AND g.ts BETWEEN f.ts - INTERVAL '1' SECOND AND f.ts",
			"IntervalJoin JOIN ON trades.symbol = quotes.symbol AND trades.ts BETWEEN quotes.ts - 5s AND quotes.ts + 5s" +
				" RIGHT JOIN stream fills ON trades.symbol = fills.symbol AND trades.ts BETWEEN fills.ts - 1s AND fills.ts + 0s" +
				" FULL JOIN stream fills2 ON fills.symbol = fills2.symbol AND fills.ts BETWEEN fills2.ts - 0s AND fills2.ts + 1s",
		},
		{
			// A third stream joined with LEFT JOIN, a fourth after it.
			"SELECT t.price, f.qty, g.ts AS g_ts FROM trades t JOIN quotes q ON t.symbol = q.symbol" + within5s +
				" LEFT JOIN fills f ON f.symbol = t.symbol AND f.ts BETWEEN t.ts AND t.ts + INTERVAL '1' SECOND" +
				" JOIN fills2 g ON g.symbol = f.symbol AND g.ts BETWEEN q.ts - INTERVAL '1' SECOND AND q.ts",
			"IntervalJoin JOIN ON trades.symbol = quotes.symbol AND trades.ts BETWEEN quotes.ts - 5s AND quotes.ts + 5s" +
				" LEFT JOIN stream fills ON trades.symbol = fills.symbol AND trades.ts BETWEEN fills.ts - 1s AND fills.ts + 0s" +
				" JOIN stream fills2 ON fills.symbol = fills2.symbol AND quotes.ts BETWEEN fills2.ts - 0s AND fills2.ts + 1s",
		},
		{
			// A third stream bound by the second's time, either way round.
			"SELECT t.price, f.qty FROM trades t JOIN quotes q ON t.symbol = q.symbol" + within5s +
				" JOIN fills f ON q.symbol = f.symbol AND q.ts BETWEEN f.ts - INTERVAL '2' SECOND AND f.ts AND f.qty > 1",
			"IntervalJoin JOIN ON trades.symbol = quotes.symbol AND trades.ts BETWEEN quotes.ts - 5s AND quotes.ts + 5s" +
				" JOIN stream fills ON quotes.symbol = fills.symbol AND quotes.ts BETWEEN fills.ts - 2s AND fills.ts + 0s AND (fills.qty > 1)",
		},
		{
			// Keys of two kinds or scales of numbers widen to one type: a
			// key's bytes are its value's, and would never be equal.
			"SELECT t.price, q.bid FROM trades t JOIN quotes q ON t.price = q.bid" + within5s,
			"IntervalJoin JOIN ON trades.price = CAST(quotes.bid AS decimal(18,4)) AND trades.ts BETWEEN quotes.ts - 5s AND quotes.ts + 5s",
		},
		{
			// A table's key may be matched by an expression of the stream.
			"SELECT t.price, s.name FROM trades t JOIN symbols s ON s.symbol = upper(t.note) AND t.price > 1",
			"TableJoin JOIN table symbols ON upper(trades.note) = symbols.symbol AND (trades.price > 1)",
		},
		{
			// An expression equated with a column that is not the key, or
			// with the key matched already, is a condition of ON.
			"SELECT t.price, s.name FROM trades t LEFT JOIN symbols s ON t.symbol = s.symbol AND s.sector = upper(t.note) AND s.symbol = upper(t.note)",
			"TableJoin LEFT JOIN table symbols ON trades.symbol = symbols.symbol AND ((symbols.sector = upper(trades.note)) AND (symbols.symbol = upper(trades.note)))",
		},
		{
			"SELECT t.price, s.name FROM trades t JOIN symbols s ON t.symbol = s.symbol AND s.sector <> 'Energy'",
			"TableJoin JOIN table symbols ON trades.symbol = symbols.symbol AND (symbols.sector <> 'Energy')",
		},
		{
			// Flink's form, FOR SYSTEM_TIME AS OF before the alias.
			"SELECT t.price * r.rate AS usd FROM trades t LEFT JOIN rates FOR SYSTEM_TIME AS OF t.ts AS r ON r.currency = t.note",
			"TableJoin LEFT JOIN table rates FOR SYSTEM_TIME AS OF trades.ts (versions by rates.ts) ON trades.note = rates.currency",
		},
		{
			// With comments between its words; a reserved word as the
			// column after a dot.
			"SELECT r.rate FROM trades t JOIN rates -- versioned\n FOR /* as of */ SYSTEM_TIME AS OF t.ts AS r ON r.currency = t.note",
			"TableJoin JOIN table rates FOR SYSTEM_TIME AS OF trades.ts (versions by rates.ts) ON trades.note = rates.currency",
		},
		{
			// In any case, over lines, without AS.
			"SELECT t.price * rates.rate AS usd FROM trades t JOIN rates for system_time\n as of t.ts ON rates.currency = t.note",
			"TableJoin JOIN table rates FOR SYSTEM_TIME AS OF trades.ts (versions by rates.ts) ON trades.note = rates.currency",
		},
		{
			// A BETWEEN of other columns is part of the rest of ON, before the
			// time bound as after it.
			"SELECT t.price, q.bid FROM trades t JOIN quotes q ON t.symbol = q.symbol AND t.price BETWEEN q.bid AND q.bid + 1" + within5s,
			"IntervalJoin JOIN ON trades.symbol = quotes.symbol AND trades.ts BETWEEN quotes.ts - 5s AND quotes.ts + 5s AND ((trades.price >= quotes.bid) AND (trades.price <= (quotes.bid + 1)))",
		},
		{
			// More tables, looked up in turn: a key of a table joined
			// before, or of the stream.
			"SELECT t.price, s.name, x.label FROM trades t JOIN symbols s ON t.symbol = s.symbol LEFT JOIN sectors x ON x.sector = s.sector AND x.weight > 0",
			"TableJoin JOIN table symbols ON trades.symbol = symbols.symbol LEFT JOIN table sectors ON symbols.sector = sectors.sector AND (sectors.weight > 0)",
		},
		{
			"SELECT t.price, q.bid FROM trades t LEFT JOIN quotes q ON t.symbol = q.symbol" + within5s + " AND q.bid > 0",
			"IntervalJoin LEFT JOIN ON trades.symbol = quotes.symbol AND trades.ts BETWEEN quotes.ts - 5s AND quotes.ts + 5s AND (quotes.bid > 0)",
		},
		{
			// A table twice: the second's columns are named by its number,
			// which an alias's change leaves alone.
			"SELECT t.price, s.name, b.name AS noted FROM trades t JOIN symbols s ON t.symbol = s.symbol LEFT JOIN symbols b ON b.symbol = t.note AND b.sector <> s.sector",
			"TableJoin JOIN table symbols ON trades.symbol = symbols.symbol LEFT JOIN table symbols ON trades.note = symbols#2.symbol AND (symbols#2.sector <> symbols.sector)",
		},
		{
			"SELECT t.price, q.bid FROM trades t RIGHT JOIN quotes q ON t.symbol = q.symbol" + within5s,
			"IntervalJoin RIGHT JOIN ON trades.symbol = quotes.symbol AND trades.ts BETWEEN quotes.ts - 5s AND quotes.ts + 5s",
		},
		{
			"SELECT t.price, q.bid, s.name FROM trades t FULL JOIN quotes q ON t.symbol = q.symbol" + within5s + " LEFT JOIN symbols s ON s.symbol = q.symbol",
			"IntervalJoin FULL JOIN ON trades.symbol = quotes.symbol AND trades.ts BETWEEN quotes.ts - 5s AND quotes.ts + 5s LEFT JOIN table symbols ON quotes.symbol = symbols.symbol",
		},
		{
			// Two streams, then a table: the pairs are looked up in it.
			"SELECT t.price, q.bid, s.name FROM trades t JOIN quotes q ON t.symbol = q.symbol" + within5s + " LEFT JOIN symbols s ON s.symbol = q.symbol",
			"IntervalJoin JOIN ON trades.symbol = quotes.symbol AND trades.ts BETWEEN quotes.ts - 5s AND quotes.ts + 5s LEFT JOIN table symbols ON quotes.symbol = symbols.symbol",
		},
		{
			// The first table as of the stream row's time, the next as read.
			"SELECT r.rate, s.name FROM trades t JOIN rates FOR SYSTEM_TIME AS OF t.ts AS r ON r.currency = t.note LEFT JOIN symbols s ON t.symbol = s.symbol",
			"TableJoin JOIN table rates FOR SYSTEM_TIME AS OF trades.ts (versions by rates.ts) ON trades.note = rates.currency LEFT JOIN table symbols ON trades.symbol = symbols.symbol",
		},
		{
			// The first two by LEFT JOIN, then a third bound by the first's
			// time.
			"SELECT t.price, q.bid, f.qty FROM trades t LEFT JOIN quotes q ON t.symbol = q.symbol" + within5s +
				" LEFT JOIN fills f ON f.symbol = t.symbol AND f.ts BETWEEN t.ts AND t.ts + INTERVAL '1' SECOND",
			"IntervalJoin LEFT JOIN ON trades.symbol = quotes.symbol AND trades.ts BETWEEN quotes.ts - 5s AND quotes.ts + 5s" +
				" LEFT JOIN stream fills ON trades.symbol = fills.symbol AND trades.ts BETWEEN fills.ts - 1s AND fills.ts + 0s",
		},
		{
			// Three streams, then tables looked up by a column of the
			// third and of the first table.
			"SELECT t.price, f.qty, s.name, x.label FROM trades t JOIN quotes q ON t.symbol = q.symbol" + within5s +
				" JOIN fills f ON f.symbol = q.symbol AND f.ts BETWEEN t.ts AND t.ts + INTERVAL '1' SECOND" +
				" LEFT JOIN symbols s ON s.symbol = f.symbol JOIN sectors x ON x.sector = s.sector",
			"IntervalJoin JOIN ON trades.symbol = quotes.symbol AND trades.ts BETWEEN quotes.ts - 5s AND quotes.ts + 5s" +
				" JOIN stream fills ON quotes.symbol = fills.symbol AND trades.ts BETWEEN fills.ts - 1s AND fills.ts + 0s" +
				" LEFT JOIN table symbols ON fills.symbol = symbols.symbol JOIN table sectors ON symbols.sector = sectors.sector",
		},
		{
			// A stream after a table: joined before it, the tables' columns
			// after its; the select list names each by its place.
			"SELECT s.name, f.qty, x.label FROM trades t JOIN quotes q ON t.symbol = q.symbol" + within5s +
				" LEFT JOIN symbols s ON s.symbol = q.symbol AND s.name <> t.note JOIN fills f ON f.symbol = t.symbol AND f.ts BETWEEN t.ts AND t.ts + INTERVAL '1' SECOND" +
				" JOIN sectors x ON x.sector = s.sector AND x.weight > f.qty",
			"IntervalJoin JOIN ON trades.symbol = quotes.symbol AND trades.ts BETWEEN quotes.ts - 5s AND quotes.ts + 5s" +
				" JOIN stream fills ON trades.symbol = fills.symbol AND trades.ts BETWEEN fills.ts - 1s AND fills.ts + 0s" +
				" LEFT JOIN table symbols ON quotes.symbol = symbols.symbol AND (symbols.name <> trades.note) JOIN table sectors ON symbols.sector = sectors.sector AND (sectors.weight > fills.qty)",
		},
		{
			// Two tables before the stream, the second looked up by the
			// first's column: both move after it.
			"SELECT s.name, x.label, f.qty FROM trades t JOIN quotes q ON t.symbol = q.symbol" + within5s +
				" JOIN symbols s ON s.symbol = q.symbol JOIN sectors x ON x.sector = s.sector AND x.weight > length(s.name)" +
				" LEFT JOIN fills f ON f.symbol = t.symbol AND f.ts BETWEEN t.ts AND t.ts + INTERVAL '1' SECOND AND f.qty > 2",
			"IntervalJoin JOIN ON trades.symbol = quotes.symbol AND trades.ts BETWEEN quotes.ts - 5s AND quotes.ts + 5s" +
				" LEFT JOIN stream fills ON trades.symbol = fills.symbol AND trades.ts BETWEEN fills.ts - 1s AND fills.ts + 0s AND (fills.qty > 2)" +
				" JOIN table symbols ON quotes.symbol = symbols.symbol JOIN table sectors ON symbols.sector = sectors.sector AND (sectors.weight > length(symbols.name))",
		},
		{
			// Two tables as of the stream row's time, one as read between.
			"SELECT r.rate, s.name, l.cap FROM trades t JOIN rates FOR SYSTEM_TIME AS OF t.ts AS r ON r.currency = t.note LEFT JOIN symbols s ON t.symbol = s.symbol LEFT JOIN limits FOR SYSTEM_TIME AS OF t.ts AS l ON l.symbol = s.symbol AND l.cap > 0",
			"TableJoin JOIN table rates FOR SYSTEM_TIME AS OF trades.ts (versions by rates.ts) ON trades.note = rates.currency LEFT JOIN table symbols ON trades.symbol = symbols.symbol LEFT JOIN table limits FOR SYSTEM_TIME AS OF trades.ts (versions by limits.since) ON symbols.symbol = limits.symbol AND (limits.cap > 0)",
		},
		{
			// Four inputs; a table with a version time joined as read.
			"SELECT label, r.rate FROM trades t JOIN symbols s ON t.symbol = s.symbol JOIN sectors x ON x.sector = s.sector LEFT JOIN rates r ON r.currency = t.note AND x.weight > 2",
			"TableJoin JOIN table symbols ON trades.symbol = symbols.symbol JOIN table sectors ON symbols.sector = sectors.sector LEFT JOIN table rates ON trades.note = rates.currency AND (sectors.weight > 2)",
		},
		{
			"SELECT label FROM trades t LEFT JOIN symbols s ON t.symbol = s.symbol JOIN sectors ON upper(t.note) = sectors.sector AND s.name IS NOT NULL",
			"TableJoin LEFT JOIN table symbols ON trades.symbol = symbols.symbol JOIN table sectors ON upper(trades.note) = sectors.sector AND (symbols.name IS NOT NULL)",
		},
		{
			"SELECT t.price, q.bid FROM trades t JOIN quotes q ON t.symbol = q.symbol" + within5s + " AND t.price BETWEEN q.bid AND q.bid + 1",
			"IntervalJoin JOIN ON trades.symbol = quotes.symbol AND trades.ts BETWEEN quotes.ts - 5s AND quotes.ts + 5s AND ((trades.price >= quotes.bid) AND (trades.price <= (quotes.bid + 1)))",
		},
	}
	for _, tt := range tests {
		root, err := sql.PlanTables(tt.query, joinCatalog, joinTables)
		if err != nil {
			t.Errorf("PlanTables(%q): %v", tt.query, err)
			continue
		}
		j, ok := root.Inputs()[0].(*plan.Join) // below the select list
		if !ok {
			t.Errorf("PlanTables(%q): %s below the select list; want a Join: ON conditions are the join's", tt.query, root.Inputs()[0].Describe())
			continue
		}
		if got := j.Describe(); got != tt.describe {
			t.Errorf("PlanTables(%q) join:\n\t%s\nwant\n\t%s", tt.query, got, tt.describe)
		}
		// Each column the select list and the further inputs' ON read is
		// at the place of the column of its name, qualified by its input,
		// in the join's rows (inputs: the first two, the further streams,
		// the tables; a table's second input is table#2).
		cols := j.Columns()
		var qualified []string
		inputs := map[string]int{}
		add := func(s *plan.Scan) {
			inputs[s.Source]++
			q := s.Source
			if n := inputs[s.Source]; n > 1 {
				q = fmt.Sprintf("%s#%d", q, n)
			}
			for _, c := range s.Cols {
				qualified = append(qualified, q+"."+c.Name)
			}
		}
		add(j.Left)
		add(j.Right)
		for _, st := range j.Streams {
			add(st.Stream)
		}
		for _, l := range j.Lookups {
			add(l.Table)
		}
		exprs := root.(*plan.Project).Exprs
		for _, l := range j.Lookups {
			exprs = append(append(exprs, l.Keys...), l.On)
		}
		for _, st := range j.Streams {
			exprs = append(append(exprs, st.Keys...), st.Time, st.On)
		}
		for _, e := range exprs {
			if e == nil {
				continue
			}
			expr.MapColumns(e, func(c *expr.Column) expr.Expr {
				if c.Index >= len(cols) || strings.Contains(c.Name, ".") && c.Name != qualified[c.Index] || !strings.Contains(c.Name, ".") && c.Name != cols[c.Index].Name {
					t.Errorf("PlanTables(%q): %s reads column %d of the join's rows, which is not of its name", tt.query, c.Name, c.Index)
				}
				return c
			})
		}
	}
}

// TestUnionAll: UNION ALL of stateless queries of sources of their own,
// through WITH queries too, its columns named as the first branch's; and
// what it refuses, at its place.
func TestUnionAll(t *testing.T) {
	root, err := sql.PlanTables(`WITH big AS (SELECT symbol, price, ts FROM trades WHERE quantity > 100)
		SELECT symbol, CAST(price AS decimal(12,6)) AS level, ts FROM big
		UNION ALL SELECT symbol, CAST(bid AS decimal(10,6)), ts FROM quotes WHERE bid > 1
		UNION ALL SELECT currency, rate, ts FROM rates`, joinCatalog, nil)
	if err != nil {
		t.Fatal(err)
	}
	u, ok := root.(*plan.Union)
	if !ok || len(u.Branches) != 3 {
		t.Fatalf("plan %s; want a UnionAll of three branches", root.Describe())
	}
	if got, want := fmt.Sprint(u.Columns()), fmt.Sprint([]value.Column{{Name: "symbol", Type: value.String}, {Name: "level", Type: value.Decimal(18, 6)}, {Name: "ts", Type: value.Timestamp}}); got != want {
		t.Errorf("columns %s; want %s: the first branch's names, decimals of one scale in the widest precision", got, want)
	}
	// A branch's own error alone: its missing column is no mismatch too.
	checkErrorList(t, "SELECT nosuch, symbol FROM trades UNION ALL SELECT symbol, bid FROM quotes", []struct{ at, msg string }{
		{"nosuch", `unknown column "nosuch" in trades (it has symbol, price, quantity, ts, score, active, note)`},
	})
	// A later branch names no column: its names may repeat.
	if _, err := sql.PlanTables("SELECT symbol, note FROM trades UNION ALL SELECT symbol, symbol FROM quotes", joinCatalog, nil); err != nil {
		t.Errorf("a later branch with a name twice: %v", err)
	}
	for _, tt := range []struct{ query, at, msg string }{
		{"SELECT symbol FROM trades UNION SELECT symbol FROM quotes", "symbol FROM trades", "UNION without ALL removes duplicates, which a stream cannot know it has seen the last of: write UNION ALL"},
		{"SELECT symbol FROM trades INTERSECT SELECT symbol FROM quotes", "symbol FROM trades", "INTERSECT and EXCEPT are not supported"},
		{"SELECT symbol FROM trades UNION ALL SELECT symbol, bid FROM quotes", "symbol, bid", "each branch of UNION ALL has as many columns as the first, 1; this one has 2"},
		{"SELECT symbol, quantity FROM trades UNION ALL SELECT symbol, bid FROM quotes", "symbol, bid", "column 2 of UNION ALL, quantity, is int in branch 1 and decimal(10,2) in this one: cast one to the other's type"},
		{"SELECT price FROM trades UNION ALL SELECT bid FROM quotes", "bid FROM", "column 1 of UNION ALL, price, is decimal(18,4) in branch 1 and decimal(10,2) in this one: cast one to the other's type"},
		{"SELECT symbol FROM trades UNION ALL SELECT note FROM trades", "note FROM", "each branch of UNION ALL reads a source of its own; trades is read by an earlier one"},
		{"SELECT symbol FROM trades UNION ALL SELECT symbol FROM quotes GROUP BY symbol", "symbol FROM quotes", "a branch of UNION ALL filters and computes the columns of a source; aggregating, joining, OVER and top-N are not supported in it yet"},
		{"WITH j AS (SELECT t.symbol, q.ts FROM trades t JOIN quotes q ON t.symbol = q.symbol" + within5s + ") SELECT symbol FROM trades UNION ALL SELECT symbol FROM TUMBLE(j, ts, INTERVAL '1' MINUTE)",
			"TUMBLE(j", "a windowing table function needs GROUP BY window_start, window_end and aggregates"},
		{"SELECT symbol FROM trades UNION ALL SELECT symbol FROM quotes ORDER BY symbol", "symbol", "ORDER BY is not supported on a stream; results are written as they come"},
		// Three branches: at the first SELECT, the offending clause, or the branch.
		{"SELECT symbol FROM trades UNION ALL SELECT symbol FROM quotes UNION SELECT currency FROM rates", "symbol FROM trades", "UNION without ALL removes duplicates, which a stream cannot know it has seen the last of: write UNION ALL"},
		{"SELECT symbol FROM trades UNION SELECT symbol FROM quotes UNION ALL SELECT currency FROM rates", "symbol FROM trades", "UNION without ALL removes duplicates, which a stream cannot know it has seen the last of: write UNION ALL"},
		{"SELECT symbol FROM trades UNION ALL SELECT symbol FROM quotes UNION ALL SELECT currency FROM rates LIMIT 5", "5", "LIMIT and OFFSET are not supported on a stream"},
		{"(SELECT symbol FROM trades UNION ALL SELECT symbol FROM quotes OFFSET 3) UNION ALL SELECT currency FROM rates", "3)", "LIMIT and OFFSET are not supported on a stream"},
		{"SELECT NULL AS a FROM trades UNION ALL SELECT symbol FROM quotes UNION ALL SELECT rate FROM rates", "rate FROM", "column 1 of UNION ALL, a, is string in branch 2 and decimal(18,6) in this one: cast one to the other's type"},
		{"SELECT * FROM (SELECT symbol FROM trades UNION ALL SELECT symbol FROM quotes) u", "SELECT *", "the subquery in FROM may only filter and compute columns of one source or join yet: UNION ALL (the whole query may be one), INTERSECT and EXCEPT is not supported in it"},
	} {
		_, err := sql.PlanTables(tt.query, joinCatalog, joinTables)
		es := sql.AsErrors(err)
		if len(es) == 0 || es[0].Msg != tt.msg {
			t.Errorf("PlanTables(%q) = %v; want %q", tt.query, err, tt.msg)
			continue
		}
		if !strings.HasPrefix(tt.query[es[0].Offset:], tt.at) {
			t.Errorf("PlanTables(%q): error at %q; want it at %q", tt.query, tt.query[es[0].Offset:], tt.at)
		}
	}
}

// TestPlansOverJoins: GROUP BY, DISTINCT and ROW_NUMBER top-Ns over the
// rows of a join, read directly, from a subquery or a WITH query, and
// windows over them by either stream's time.
func TestPlansOverJoins(t *testing.T) {
	const scans = "Scan trades [symbol string, price decimal(18,4), quantity int, ts timestamp, score double, active bool, note string]\n"
	const quotes = "Scan quotes [symbol string, bid decimal(10,2), ts timestamp]\n"
	const interval = "IntervalJoin JOIN ON trades.symbol = quotes.symbol AND trades.ts BETWEEN quotes.ts - 5s AND quotes.ts + 5s\n"
	tests := []struct{ query, explain string }{
		{
			"SELECT t.symbol, count(*) AS n, max(q.bid) AS top FROM trades t JOIN quotes q ON t.symbol = q.symbol" + within5s + " GROUP BY t.symbol",
			"Output [symbol string, n int, top decimal(10,2)]\n" +
				"  Project symbol AS symbol, count(*) AS n, max(quotes.bid) AS top\n" +
				"    Aggregate CONTINUOUS BY trades.symbol COMPUTE count(*), max(quotes.bid)\n" +
				"      " + interval + "        " + scans + "        " + quotes,
		},
		{
			"SELECT DISTINCT t.symbol, q.bid FROM trades t JOIN quotes q ON t.symbol = q.symbol" + within5s,
			"Output [symbol string, bid decimal(10,2)]\n" +
				"  Project symbol AS symbol, bid AS bid\n" +
				"    Aggregate CONTINUOUS BY trades.symbol, quotes.bid DISTINCT\n" +
				"      " + interval + "        " + scans + "        " + quotes,
		},
		{
			// The WITH query's WHERE filters the joined rows; the window is
			// over the quotes' time.
			"WITH j AS (SELECT t.symbol, t.price * 2 AS p2, q.ts FROM trades t JOIN quotes q ON t.symbol = q.symbol" + within5s + " WHERE q.bid > 1) " +
				"SELECT window_start, symbol, sum(p2) FROM TUMBLE(j, ts, INTERVAL '1' MINUTE) GROUP BY window_start, window_end, symbol",
			"Output [window_start timestamp, symbol string, sum decimal(18,4)]\n" +
				"  Project window_start AS window_start, symbol AS symbol, sum((trades.price * 2)) AS sum\n" +
				"    Aggregate TUMBLE(quotes.ts, 1m0s) BY trades.symbol COMPUTE sum((trades.price * 2))\n" +
				"      Filter (quotes.bid > 1)\n" +
				"        " + interval + "          " + scans + "          " + quotes,
		},
		{
			"WITH j AS (SELECT * FROM trades t JOIN symbols s ON t.symbol = s.symbol) " +
				"SELECT window_start, sector, count(*) AS n FROM HOP(j, ts, INTERVAL '1' MINUTE, INTERVAL '2' MINUTE) AS w GROUP BY window_start, window_end, w.sector",
			"Output [window_start timestamp, sector string, n int]\n" +
				"  Project window_start AS window_start, sector AS sector, count(*) AS n\n" +
				"    Aggregate HOP(trades.ts, slide 1m0s, size 2m0s) BY symbols.sector COMPUTE count(*)\n" +
				"      TableJoin JOIN table symbols ON trades.symbol = symbols.symbol\n" +
				"        " + scans + "        Scan symbols [symbol string, name string, sector string]\n",
		},
		{
			"SELECT sector, count(*) FROM (SELECT s.sector FROM trades t JOIN symbols s ON t.symbol = s.symbol) x GROUP BY sector",
			"Output [sector string, count int]\n" +
				"  Project sector AS sector, count(*) AS count\n" +
				"    Aggregate CONTINUOUS BY symbols.sector COMPUTE count(*)\n" +
				"      TableJoin JOIN table symbols ON trades.symbol = symbols.symbol\n" +
				"        " + scans + "        Scan symbols [symbol string, name string, sector string]\n",
		},
		{
			"SELECT symbol, bid, rn FROM (SELECT t.symbol, q.bid, ROW_NUMBER() OVER (PARTITION BY t.symbol ORDER BY q.bid DESC) AS rn FROM trades t JOIN quotes q ON t.symbol = q.symbol" + within5s + ") WHERE rn <= 2",
			"Output [symbol string, bid decimal(10,2), rn int]\n" +
				"  Project symbol AS symbol, bid AS bid, rn AS rn\n" +
				"    Project trades.symbol AS symbol, quotes.bid AS bid, rn AS rn\n" +
				"      TopN ROW_NUMBER() <= 2 PARTITION BY trades.symbol ORDER BY quotes.bid DESC\n" +
				"        " + interval + "          " + scans + "          " + quotes,
		},
	}
	// OVER over a join's rows, by either stream's time.
	tests = append(tests, struct{ query, explain string }{
		"SELECT t.symbol, avg(q.bid) OVER (PARTITION BY t.symbol ORDER BY q.ts ROWS 3 PRECEDING) AS a FROM trades t JOIN quotes q ON t.symbol = q.symbol" + within5s,
		"Output [symbol string, a decimal(18,6)]\n" +
			"  Project trades.symbol AS symbol, avg(quotes.bid) OVER (ROWS 3 PRECEDING) AS a\n" +
			"    Over PARTITION BY trades.symbol ORDER BY quotes.ts COMPUTE avg(quotes.bid) OVER (ROWS 3 PRECEDING)\n" +
			"      " + interval + "        " + scans + "        " + quotes,
	})
	// The ranking query's WHERE filters the joined rows before they are
	// ranked; its columns are either source's.
	tests = append(tests, struct{ query, explain string }{
		"SELECT * FROM (SELECT t.symbol, q.bid, ROW_NUMBER() OVER (PARTITION BY t.symbol ORDER BY q.bid) AS rn FROM trades t JOIN quotes q ON t.symbol = q.symbol" + within5s + " WHERE q.bid > 0) WHERE rn <= 3",
		"Output [symbol string, bid decimal(10,2), rn int]\n" +
			"  Project symbol AS symbol, bid AS bid, rn AS rn\n" +
			"    Project trades.symbol AS symbol, quotes.bid AS bid, rn AS rn\n" +
			"      TopN ROW_NUMBER() <= 3 PARTITION BY trades.symbol ORDER BY quotes.bid\n" +
			"        Filter (quotes.bid > 0)\n" +
			"          " + interval + "            " + scans + "            " + quotes,
	})
	for _, tt := range tests {
		n, err := sql.PlanTables(tt.query, joinCatalog, joinTables)
		if err != nil {
			t.Errorf("PlanTables(%q): %v", tt.query, err)
			continue
		}
		if got := plan.Explain(n); got != tt.explain {
			t.Errorf("PlanTables(%q):\n%s\nwant\n%s", tt.query, got, tt.explain)
		}
	}
}

// TestProcessingTimePlans: PROCTIME() as a window's time, directly or as
// a WITH query's column; refused where it is not supported yet.
func TestProcessingTimePlans(t *testing.T) {
	for _, q := range []string{
		"SELECT window_start, symbol, count(*) AS n FROM TUMBLE(trades, PROCTIME(), INTERVAL '10' SECOND) GROUP BY window_start, window_end, symbol",
		"WITH b AS (SELECT *, PROCTIME() AS p_time FROM trades) SELECT window_start, symbol, count(*) AS n FROM TUMBLE(b, p_time, INTERVAL '10' SECOND) GROUP BY window_start, window_end, symbol",
	} {
		n, err := sql.PlanTables(q, joinCatalog, joinTables)
		if err != nil {
			t.Errorf("PlanTables(%q): %v", q, err)
			continue
		}
		if got := plan.Explain(n); !strings.Contains(got, "Aggregate TUMBLE(PROCTIME(), 10s) BY symbol COMPUTE count(*)\n") {
			t.Errorf("PlanTables(%q):\n%s\nwant a window of processing time", q, got)
		}
	}
	for _, c := range []struct{ query, at, msg string }{
		{
			"WITH j AS (SELECT t.symbol, PROCTIME() AS pt FROM trades t JOIN quotes q ON t.symbol = q.symbol" + within5s + ") SELECT window_start, count(*) FROM TUMBLE(j, pt, INTERVAL '1' MINUTE) GROUP BY window_start, window_end",
			"PROCTIME() AS pt", "a window over a join is over the event time of one of its streams; processing-time windows of a join's rows are not supported yet",
		},
		{
			"SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY price DESC) AS rn FROM TUMBLE(trades, PROCTIME(), INTERVAL '1' MINUTE)) WHERE rn <= 1",
			"ROW_NUMBER", "a top-N of the rows of processing-time windows is not supported yet; a top-N of a processing-time GROUP BY is",
		},
	} {
		_, err := sql.PlanTables(c.query, joinCatalog, joinTables)
		var errs sql.Errors
		if !errors.As(err, &errs) || len(errs) == 0 || errs[0].Msg != c.msg || !strings.HasPrefix(c.query[errs[0].Offset:], c.at) {
			t.Errorf("PlanTables(%q) = %v; want %q at %q", c.query, err, c.msg, c.at)
		}
	}
}

// TestTableKeyOfAnotherType: a table's key column keeps its type; a
// stream's column of another kind of number must be cast to it.
func TestTableKeyOfAnotherType(t *testing.T) {
	cat := sql.Catalog{"trades": joinCatalog["trades"], "lots": {{Name: "size", Type: value.Int}, {Name: "label", Type: value.String}}}
	q := "SELECT t.symbol, l.label FROM trades t JOIN lots l ON t.price = l.size"
	_, err := sql.PlanTables(q, cat, sql.Tables{"lots": {Key: []string{"size"}}})
	es := sql.AsErrors(err)
	want := "the table's key lots.size is int and trades.price is decimal(18,4): cast trades.price to int"
	if len(es) == 0 || es[0].Msg != want || !strings.HasPrefix(q[es[0].Offset:], "t.price = l.size") {
		t.Errorf("PlanTables(%q) = %v; want %q at t.price", q, err, want)
	}
}
