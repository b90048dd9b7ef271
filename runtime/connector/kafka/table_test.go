package kafka_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/connector/bundle"
	"github.com/sluice-dev/sluice/runtime/pipeline"
)

// produceTxn writes recs to their partitions in one transaction, which
// commits or aborts: each partition's log ends with the transaction's
// marker, which the client reads past without a record.
func produceTxn(t *testing.T, brokers []string, topic string, commit bool, recs ...*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.TransactionalID(fmt.Sprintf("table-test-%t", commit)))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
		t.Fatal(err)
	}
}

// produceTo writes recs to the partitions they name, outside transactions.
func produceTo(t *testing.T, brokers []string, topic string, recs ...*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// symbolsTable is the tests' table, symbols: names by symbol, the record
// key.
func symbolsTable(brokers []string) v1alpha1.Source {
	return v1alpha1.Source{
		Name:   "symbols",
		Kafka:  &v1alpha1.KafkaSource{Brokers: brokers, Topic: "symbols"},
		Schema: []v1alpha1.Column{{Name: "sym", Type: "string", Key: true}, {Name: "name", Type: "string"}},
		Table:  &v1alpha1.TableSource{Key: []string{"sym"}},
	}
}

// tradeColumns are the columns of the tests' trades.
var tradeColumns = []v1alpha1.Column{{Name: "symbol", Type: "string"}, {Name: "qty", Type: "int"}}

func tableRec(p int32, key, value string) *kgo.Record {
	r := &kgo.Record{Partition: p, Key: []byte(key)}
	if value != "" {
		r.Value = []byte(value)
	}
	return r
}

// TestKafkaTableJoin: a stream joins a table read from a Kafka topic, through
// the engine and the real client. The table's three partitions end three
// ways when the query starts: after a record (a tombstone), after an
// aborted transaction's record and marker, and empty. The trades written before the start wait until the table is
// loaded, and each sees the table as it stood then: a deleted key and an
// aborted row are not in it. Rows and tombstones written later update it.
func TestKafkaTableJoin(t *testing.T) {
	brokers := cluster(t, 3, "symbols", "trades", "out")
	trades, out := "trades", "out"
	produceTo(t, brokers, "symbols",
		tableRec(0, "AAPL", `{"name": "Apple"}`),
		tableRec(0, "IBM", `{"name": "IBM"}`),
		tableRec(0, "IBM", ""), // a tombstone: the last record of partition 0
	)
	produceTxn(t, brokers, "symbols", true,
		tableRec(1, "MSFT", `{"name": "Microsoft"}`),
		tableRec(1, "MSFT", `{"name": "Microsoft Corp"}`),
	)
	// Partition 1 ends with an aborted transaction, after a committed one:
	// no record is left to read after the committed ones.
	produceTxn(t, brokers, "symbols", false, tableRec(1, "GOOG", `{"name": "Alphabet"}`))
	var first []*kgo.Record
	for i, sym := range []string{"AAPL", "IBM", "MSFT", "GOOG", "XYZ"} {
		first = append(first, &kgo.Record{Partition: 0, Value: fmt.Appendf(nil, `{"symbol": %q, "qty": %d}`, sym, i)})
	}
	produceTo(t, brokers, trades, first...)

	spec := &v1alpha1.StreamQuerySpec{
		Sources: []v1alpha1.Source{
			{
				Name:   "trades",
				Kafka:  &v1alpha1.KafkaSource{Brokers: brokers, Topic: trades},
				Schema: tradeColumns,
			},
			symbolsTable(brokers),
		},
		Query: "SELECT t.qty, t.symbol, s.name FROM trades t LEFT JOIN symbols s ON t.symbol = s.sym",
		Sink:  &v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: brokers, Topic: out}},
	}
	p, stop := run(t, spec, "table")
	want := []string{
		`{"qty":0,"symbol":"AAPL","name":"Apple"}`,
		`{"qty":1,"symbol":"IBM","name":null}`,
		`{"qty":2,"symbol":"MSFT","name":"Microsoft Corp"}`,
		`{"qty":3,"symbol":"GOOG","name":null}`,
		`{"qty":4,"symbol":"XYZ","name":null}`,
	}
	// The sink's partitions take the rows in any order.
	got := map[string]bool{}
	for _, r := range consume(t, brokers, out, len(want)) {
		got[string(r.Value)] = true
	}
	for _, w := range want {
		if !got[w] {
			t.Errorf("no row %s; got %v", w, got)
		}
	}

	// Later rows update the table as they are read: a trade read after
	// them sees them. The two topics are read apart, so trades go on until
	// one does.
	produceTo(t, brokers, "symbols", tableRec(2, "XYZ", `{"name": "Xyz"}`), tableRec(0, "AAPL", ""))
	seen := map[string]bool{}
	deadline := time.Now().Add(30 * time.Second)
	n := len(want)
	for qty := 100; !seen["XYZ"] || !seen["AAPL"]; qty += 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the table's updates were not seen: %v", seen)
		}
		produceTo(t, brokers, trades,
			&kgo.Record{Value: fmt.Appendf(nil, `{"symbol": "XYZ", "qty": %d}`, qty)},
			&kgo.Record{Value: fmt.Appendf(nil, `{"symbol": "AAPL", "qty": %d}`, qty+1)})
		n += 2
		for _, r := range consume(t, brokers, out, n) {
			var row struct {
				Qty    int
				Symbol string
				Name   *string
			}
			if err := json.Unmarshal(r.Value, &row); err != nil {
				t.Fatal(err)
			}
			switch {
			case row.Qty < qty:
			case row.Symbol == "XYZ" && row.Name != nil && *row.Name == "Xyz":
				seen["XYZ"] = true
			case row.Symbol == "AAPL" && row.Name == nil:
				seen["AAPL"] = true
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// The table's records: five at the start (the aborted one is not
	// read), two since.
	if c := p.Snapshot().Counts; c.Results != int64(n) || c.In != int64(n+7) || c.InFlight != 0 {
		t.Errorf("counts %+v; want %d results of %d records in", c, n, n+7)
	}
}

// TestKafkaTableRestart: with spec.state, a Kafka table's rows are not in
// the checkpoints: a restarted engine reads the topic again whole, since a
// tombstone compaction removed meanwhile would leave a restored row for
// good, and takes in what was written since, a tombstone here, before it
// joins the trades written meanwhile. The trades' offsets are the
// checkpoint's.
func TestKafkaTableRestart(t *testing.T) {
	brokers := cluster(t, 2, "symbols", "trades", "out")
	produceTo(t, brokers, "symbols",
		tableRec(0, "AAPL", `{"name": "Apple"}`),
		tableRec(1, "MSFT", `{"name": "Microsoft"}`),
	)
	produceTo(t, brokers, "trades", &kgo.Record{Value: []byte(`{"symbol": "MSFT", "qty": 1}`)})
	spec := &v1alpha1.StreamQuerySpec{
		Sources: []v1alpha1.Source{
			{Name: "trades", Kafka: &v1alpha1.KafkaSource{Brokers: brokers, Topic: "trades"}, Schema: tradeColumns},
			symbolsTable(brokers),
		},
		Query: "SELECT t.qty, t.symbol, s.name FROM trades t LEFT JOIN symbols s ON t.symbol = s.sym",
		Sink:  &v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: brokers, Topic: "out"}},
		State: &v1alpha1.StateSpec{},
	}
	_, stop := run(t, spec, "table-restart")
	if got := consume(t, brokers, "out", 1); string(got[0].Value) != `{"qty":1,"symbol":"MSFT","name":"Microsoft"}` {
		t.Errorf("first run: %s", got[0].Value)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	produceTo(t, brokers, "symbols", tableRec(1, "MSFT", ""))
	produceTo(t, brokers, "trades", &kgo.Record{Value: []byte(`{"symbol": "MSFT", "qty": 2}`)},
		&kgo.Record{Value: []byte(`{"symbol": "AAPL", "qty": 3}`)})
	p, stop := run(t, spec, "table-restart")
	got := map[string]bool{}
	for _, r := range consume(t, brokers, "out", 3) {
		got[string(r.Value)] = true
	}
	for _, w := range []string{`{"qty":2,"symbol":"MSFT","name":null}`, `{"qty":3,"symbol":"AAPL","name":"Apple"}`} {
		if !got[w] {
			t.Errorf("second run: no row %s; got %v", w, got)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// The table's three records, read again, and the two new trades.
	if c := p.Snapshot().Counts; c.Restored != 0 || c.In != 5 || c.Results != 2 {
		t.Errorf("second run: counts %+v; want 5 records in, none restored, 2 results", c)
	}
}

// TestKafkaTablesRestart: a stream joined with two tables, a Kafka topic's
// and a file's, restarted from a checkpoint: the Kafka table is read again
// whole, as in TestKafkaTableRestart, and the file's rows are restored
// from the checkpoint, its reader starting after them.
func TestKafkaTablesRestart(t *testing.T) {
	brokers := cluster(t, 2, "symbols", "trades", "out")
	produceTo(t, brokers, "symbols",
		tableRec(0, "AAPL", `{"name": "Apple"}`),
		tableRec(1, "MSFT", `{"name": "Microsoft"}`),
	)
	sectors := filepath.Join(t.TempDir(), "sectors.jsonl")
	if err := os.WriteFile(sectors, []byte(`{"name": "Apple", "sector": "Hardware"}`+"\n"+`{"name": "Microsoft", "sector": "Software"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	produceTo(t, brokers, "trades", &kgo.Record{Value: []byte(`{"symbol": "MSFT", "qty": 1}`)})
	spec := &v1alpha1.StreamQuerySpec{
		Sources: []v1alpha1.Source{
			{Name: "trades", Kafka: &v1alpha1.KafkaSource{Brokers: brokers, Topic: "trades"}, Schema: tradeColumns},
			symbolsTable(brokers),
			{
				Name: "sectors", File: &v1alpha1.FileSource{Path: sectors}, Format: v1alpha1.FormatJSON,
				Schema: []v1alpha1.Column{{Name: "name", Type: "string"}, {Name: "sector", Type: "string"}},
				Table:  &v1alpha1.TableSource{Key: []string{"name"}},
			},
		},
		Query: "SELECT t.qty, t.symbol, s.name, x.sector FROM trades t LEFT JOIN symbols s ON t.symbol = s.sym LEFT JOIN sectors x ON x.name = s.name",
		Sink:  &v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: brokers, Topic: "out"}},
		State: &v1alpha1.StateSpec{},
	}
	_, stop := run(t, spec, "tables-restart")
	if got := consume(t, brokers, "out", 1); string(got[0].Value) != `{"qty":1,"symbol":"MSFT","name":"Microsoft","sector":"Software"}` {
		t.Errorf("first run: %s", got[0].Value)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	produceTo(t, brokers, "symbols", tableRec(1, "MSFT", ""))
	produceTo(t, brokers, "trades", &kgo.Record{Value: []byte(`{"symbol": "MSFT", "qty": 2}`)},
		&kgo.Record{Value: []byte(`{"symbol": "AAPL", "qty": 3}`)})
	p, stop := run(t, spec, "tables-restart")
	got := map[string]bool{}
	for _, r := range consume(t, brokers, "out", 3) {
		got[string(r.Value)] = true
	}
	for _, w := range []string{`{"qty":2,"symbol":"MSFT","name":null,"sector":null}`, `{"qty":3,"symbol":"AAPL","name":"Apple","sector":"Hardware"}`} {
		if !got[w] {
			t.Errorf("second run: no row %s; got %v", w, got)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// The Kafka table's three records, read again, and the two new
	// trades; none of the file's.
	if c := p.Snapshot().Counts; c.Restored != 0 || c.In != 5 || c.Results != 2 {
		t.Errorf("second run: counts %+v; want 5 records in, none restored, 2 results", c)
	}
}

// TestKafkaPairsWithTable: the pairs of two Kafka streams, trades and
// quotes, looked up in a Kafka table, which the engine reads whole and
// no consumer group: a table's records are not taken for a stream's. Both
// streams' records are written before the query starts, so pairs may be
// made before the table is read, and wait for it. A pair whose symbol the
// table lacks gets NULL.
func TestKafkaPairsWithTable(t *testing.T) {
	brokers := cluster(t, 2, "symbols", "trades", "quotes", "out")
	produceTo(t, brokers, "symbols", tableRec(0, "AAPL", `{"name": "Apple"}`), tableRec(1, "MSFT", `{"name": "Microsoft"}`))
	var trades, quotes []*kgo.Record
	for i, sym := range []string{"AAPL", "MSFT", "XYZ"} {
		ts := fmt.Sprintf("2026-12-07T00:00:0%dZ", i)
		trades = append(trades, &kgo.Record{Value: fmt.Appendf(nil, `{"symbol": %q, "qty": %d, "ts": %q}`, sym, i, ts)})
		quotes = append(quotes, &kgo.Record{Value: fmt.Appendf(nil, `{"symbol": %q, "bid": %d, "ts": %q}`, sym, 10*i, ts)})
	}
	produceTo(t, brokers, "trades", trades...)
	produceTo(t, brokers, "quotes", quotes...)
	at := &v1alpha1.EventTime{Column: "ts", MaxOutOfOrderness: metav1.Duration{Duration: time.Second}}
	spec := &v1alpha1.StreamQuerySpec{
		Sources: []v1alpha1.Source{
			{Name: "trades", Kafka: &v1alpha1.KafkaSource{Brokers: brokers, Topic: "trades"}, EventTime: at,
				Schema: []v1alpha1.Column{{Name: "symbol", Type: "string"}, {Name: "qty", Type: "int"}, {Name: "ts", Type: "timestamp"}}},
			{Name: "quotes", Kafka: &v1alpha1.KafkaSource{Brokers: brokers, Topic: "quotes"}, EventTime: at,
				Schema: []v1alpha1.Column{{Name: "symbol", Type: "string"}, {Name: "bid", Type: "int"}, {Name: "ts", Type: "timestamp"}}},
			symbolsTable(brokers),
		},
		Query: `SELECT t.qty, q.bid, t.symbol, s.name FROM trades t JOIN quotes q
			ON t.symbol = q.symbol AND t.ts BETWEEN q.ts - INTERVAL '1' SECOND AND q.ts
			LEFT JOIN symbols s ON s.sym = t.symbol`,
		Sink: &v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: brokers, Topic: "out"}},
	}
	p, stop := run(t, spec, "pairs-table")
	got := map[string]bool{}
	for _, r := range consume(t, brokers, "out", 3) {
		got[string(r.Value)] = true
	}
	for _, w := range []string{
		`{"qty":0,"bid":0,"symbol":"AAPL","name":"Apple"}`,
		`{"qty":1,"bid":10,"symbol":"MSFT","name":"Microsoft"}`,
		`{"qty":2,"bid":20,"symbol":"XYZ","name":null}`,
	} {
		if !got[w] {
			t.Errorf("no row %s; got %v", w, got)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// The six stream records and the table's two.
	if c := p.Snapshot().Counts; c.Results != 3 || c.In != 8 || c.InFlight != 0 {
		t.Errorf("counts %+v; want 3 results of 8 records in", c)
	}
}

// TestKafkaTableEndsWithStreams: a file of trades joined with a Kafka table
// is a batch query. The table's topic does not end, but the run does, once
// the trades are read and joined, pipelined and direct.
func TestKafkaTableEndsWithStreams(t *testing.T) {
	brokers := cluster(t, 2, "symbols", "out")
	produceTo(t, brokers, "symbols", tableRec(0, "AAPL", `{"name": "Apple"}`), tableRec(1, "MSFT", `{"name": "Microsoft"}`))
	trades := t.TempDir() + "/trades.csv"
	if err := os.WriteFile(trades, []byte("symbol,qty\nMSFT,1\nAAPL,2\nIBM,3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []v1alpha1.ExecutionMode{v1alpha1.Pipelined, v1alpha1.Direct} {
		spec := &v1alpha1.StreamQuerySpec{
			Sources: []v1alpha1.Source{
				{
					Name: "trades", File: &v1alpha1.FileSource{Path: trades}, Format: v1alpha1.FormatCSV,
					Schema: tradeColumns,
				},
				symbolsTable(brokers),
			},
			Query:   "SELECT t.qty, s.name FROM trades t JOIN symbols s ON t.symbol = s.sym",
			Sink:    &v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: brokers, Topic: "out"}},
			Runtime: v1alpha1.RuntimeSpec{Mode: mode},
		}
		p, err := pipeline.New(spec, pipeline.Options{Connectors: bundle.All()})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = p.Run(ctx)
		timedOut := ctx.Err()
		cancel()
		if err != nil || timedOut != nil {
			t.Fatalf("%s: the run did not end by itself: %v, %v", mode, err, timedOut)
		}
		if c := p.Snapshot().Counts; c.Results != 2 || c.In != 5 {
			t.Errorf("%s: counts %+v; want 2 results of 5 records", mode, c)
		}
	}
}

// TestKafkaTableAsOf: orders join the rate of their currency as of their
// own time, from a Kafka table of rates with versions by its event time; a
// tombstone's version time is its record's timestamp. The result does not
// depend on when each topic is read: every record is written before the
// query starts, and each order still sees the rate of its time.
func TestKafkaTableAsOf(t *testing.T) {
	brokers := cluster(t, 1, "rates", "orders", "out")
	at := func(hhmm string) time.Time {
		ts, err := time.Parse(time.RFC3339, "2024-01-02T"+hhmm+":00Z")
		if err != nil {
			t.Fatal(err)
		}
		return ts
	}
	rate := func(hhmm, r string) *kgo.Record {
		return &kgo.Record{Key: []byte("EUR"), Value: fmt.Appendf(nil, `{"rate": %s, "ts": %q}`, r, at(hhmm).Format(time.RFC3339))}
	}
	tombstone := &kgo.Record{Key: []byte("EUR"), Timestamp: at("10:10")}
	produceTo(t, brokers, "rates", rate("10:00", "1.0"), rate("10:05", "1.1"), tombstone, rate("10:20", "1.3"))
	var orders []*kgo.Record
	for i, hhmm := range []string{"10:25", "10:01", "10:12", "10:06", "11:00"} {
		orders = append(orders, &kgo.Record{Value: fmt.Appendf(nil, `{"id": %d, "currency": "EUR", "ts": %q}`, i, at(hhmm).Format(time.RFC3339))})
	}
	produceTo(t, brokers, "orders", orders...)
	// The rates' partition goes idle soon, and holds the watermark back
	// no more; the orders' does not.
	bound := metav1.Duration{Duration: 30 * time.Minute}
	quick := &v1alpha1.EventTime{Column: "ts", MaxOutOfOrderness: bound, IdleTimeout: &metav1.Duration{Duration: 200 * time.Millisecond}}
	spec := &v1alpha1.StreamQuerySpec{
		Sources: []v1alpha1.Source{
			{
				Name:      "orders",
				Kafka:     &v1alpha1.KafkaSource{Brokers: brokers, Topic: "orders"},
				Schema:    []v1alpha1.Column{{Name: "id", Type: "int"}, {Name: "currency", Type: "string"}, {Name: "ts", Type: "timestamp"}},
				EventTime: &v1alpha1.EventTime{Column: "ts", MaxOutOfOrderness: bound},
			},
			{
				Name:      "rates",
				Kafka:     &v1alpha1.KafkaSource{Brokers: brokers, Topic: "rates"},
				Schema:    []v1alpha1.Column{{Name: "currency", Type: "string", Key: true}, {Name: "rate", Type: "decimal(10,2)"}, {Name: "ts", Type: "timestamp"}},
				Table:     &v1alpha1.TableSource{Key: []string{"currency"}},
				EventTime: quick,
			},
		},
		Query: `SELECT o.id, r.rate FROM orders o LEFT JOIN rates FOR SYSTEM_TIME AS OF o.ts AS r ON o.currency = r.currency`,
		Sink:  &v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: brokers, Topic: "out"}},
	}
	// With 30 minutes out of order allowed, orders wait until one 30
	// minutes after them is read, 11:00, which itself waits, and until
	// the rates' partition is idle.
	run(t, spec, "as-of")
	var got []string
	for _, r := range consume(t, brokers, "out", 4) {
		got = append(got, string(r.Value))
	}
	want := []string{`{"id":1,"rate":1.00}`, `{"id":3,"rate":1.10}`, `{"id":2,"rate":null}`, `{"id":0,"rate":1.30}`}
	if !slices.Equal(got, want) {
		t.Errorf("got %v\nwant %v (in time order)", got, want)
	}
}
