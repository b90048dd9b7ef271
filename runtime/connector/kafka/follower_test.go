package kafka

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/connector/schemas"
	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/value"
)

// TestDrivenFollower: the follower of an exactly-once source that commits
// every interval (the upstream part of a repartitioned join reads its
// second topic so) has its offsets committed in the owner's transactions,
// with what was written of its records. A transaction that would commit
// offsets of partitions the group took from the follower aborts, and the
// follower goes back to its records of that transaction, which are read
// and written again: a read_committed reader sees each record once, and
// the group's offsets cover all.
//
// The test stands in for the pipeline: each lane's records are written to
// the output in the open transaction, then acknowledged, and it can hold
// the acknowledgements back, which holds the transaction open.
func TestDrivenFollower(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "trades", "quotes", "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	j := startJoined(t, brokers, 50*time.Millisecond)
	defer j.close()
	if !j.follower.driven() {
		t.Fatal("the follower of a source that commits every interval is not driven by its poll loop")
	}
	committed := kgo.FetchIsolationLevel(kgo.ReadCommitted())

	// Both topics' records commit with what was written of them.
	j.produce(ctx, 50)
	waitCommitted(t, ctx, j.prod, map[string]int64{"trades": 50, "quotes": 50})
	checkOnce(t, readOut(t, brokers, 100, committed), 100)

	// Another member takes a partition of quotes while the follower's
	// records are in the open transaction: it aborts, and both sources
	// read them again, the partition taken once it is back.
	j.hold(true)
	before := j.handed.Load()
	j.produce(ctx, 50)
	j.waitHanded(t, ctx, before+100)
	other, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumerGroup("drv"), kgo.ConsumeTopics("quotes"), kgo.DisableAutoCommit())
	if err != nil {
		t.Fatal(err)
	}
	for !j.follower.moved.Load() {
		if ctx.Err() != nil {
			t.Fatal("the follower kept its partitions when another member joined")
		}
		pctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		other.PollRecords(pctx, 1) // joins the group, and commits nothing
		cancel()
	}
	j.hold(false)
	other.Close() // the partition goes back to the follower
	waitCommitted(t, ctx, j.prod, map[string]int64{"trades": 100, "quotes": 100})
	checkOnce(t, readOut(t, brokers, 200, committed), 200)
	if got := j.handed.Load() - before; got < 200 {
		t.Errorf("%d records handed to the lanes since the transaction held open; want its 100, and again after its abort", got)
	}
	if all := readOut(t, brokers, 300); len(all) < 300 {
		t.Errorf("%d records in the output's log; want the 200 committed and the 100 of the aborted transaction", len(all))
	}
}

// TestDrivenFollowerClose: closing an exactly-once source that commits
// every interval commits the last transaction with its driven follower's
// offsets, once every record fetched is handled.
func TestDrivenFollowerClose(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "trades", "quotes", "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	j := startJoined(t, brokers, time.Hour) // only the close commits
	defer j.close()
	j.produce(ctx, 10)
	j.waitHanded(t, ctx, 20)
	for !j.owner.drained(nil) || !j.follower.drained(nil) {
		if ctx.Err() != nil {
			t.Fatal("the records handed were not acknowledged")
		}
		time.Sleep(time.Millisecond)
	}
	j.close()
	checkOnce(t, readOut(t, brokers, 20, kgo.FetchIsolationLevel(kgo.ReadCommitted())), 20)
	waitCommitted(t, ctx, j.prod, map[string]int64{"trades": 10, "quotes": 10})
}

// drivenPair is an exactly-once source of trades, in group drv, and its
// driven follower of quotes, with a stand-in for the pipeline: each lane's
// records are written to the topic out in the open transaction, then
// acknowledged, unless hold holds the acknowledgements, and the
// transaction with them, back.
type drivenPair struct {
	owner, follower *Source
	prod            *kgo.Client
	produced        int
	handed          atomic.Int64 // records the lanes read
	stop            context.CancelFunc
	readers         sync.WaitGroup
	closed          bool

	mu      sync.Mutex
	holding bool
	held    []message.Ack
}

func startJoined(t *testing.T, brokers []string, interval time.Duration) *drivenPair {
	t.Helper()
	cols := append([]value.Column{{Name: "v", Type: value.String}}, schemas.KafkaMeta...)
	owner, err := Open(&v1alpha1.KafkaSource{Brokers: brokers, Topic: "trades"}, "t", v1alpha1.FormatJSON, cols, Options{
		Group: "drv", TransactionalID: "drv.a", TransactionInterval: interval,
		Producer: &v1alpha1.KafkaSink{Brokers: brokers, Topic: "out"},
	})
	if err != nil {
		t.Fatal(err)
	}
	follower, err := Open(&v1alpha1.KafkaSource{Brokers: brokers, Topic: "quotes"}, "q", v1alpha1.FormatJSON, cols, Options{Group: "drv", Owner: owner})
	if err != nil {
		owner.Close()
		t.Fatal(err)
	}
	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		owner.Close()
		follower.Close()
		t.Fatal(err)
	}
	t.Cleanup(prod.Close)
	j := &drivenPair{owner: owner, follower: follower, prod: prod}
	ctx, stop := context.WithCancel(context.Background())
	j.stop = stop
	for _, l := range append(owner.Lanes(), follower.Lanes()...) {
		j.readers.Go(func() {
			var b message.Batch
			var errs message.ErrorBatch
			for ctx.Err() == nil {
				b.Reset(len(cols))
				if err := l.Read(ctx, &b, 100, 5*time.Millisecond, &errs); err != nil {
					t.Error(err)
					return
				}
				if b.Len() == 0 {
					continue
				}
				j.handed.Add(int64(b.Len()))
				recs := make([]*kgo.Record, 0, b.Len())
				for _, off := range b.Offsets {
					recs = append(recs, &kgo.Record{Topic: "out", Value: fmt.Appendf(nil, "%s/%d/%d", l.origin.Topic, l.origin.Partition, off)})
				}
				if err := owner.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
					if ctx.Err() == nil {
						t.Error(err)
					}
					return
				}
				b.Origin = l.Origin()
				a, _ := message.AckOf(&b)
				j.mu.Lock()
				if j.holding {
					j.held = append(j.held, a)
				} else {
					l.acked(a)
				}
				j.mu.Unlock()
			}
		})
	}
	return j
}

// hold holds the acknowledgements back, or gives those held.
func (j *drivenPair) hold(on bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.holding = on
	if !on {
		for _, a := range j.held {
			a.Origin.Acked(a)
		}
		j.held = nil
	}
}

// produce writes n records to each topic.
func (j *drivenPair) produce(ctx context.Context, n int) {
	for i := range n {
		for _, topic := range []string{"trades", "quotes"} {
			r := &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "%d", j.produced+i), Value: []byte(`{"v":"x"}`)}
			j.prod.Produce(ctx, r, nil)
		}
	}
	j.produced += n
	j.prod.Flush(ctx)
}

// waitHanded waits until the lanes read n records in all.
func (j *drivenPair) waitHanded(t *testing.T, ctx context.Context, n int64) {
	t.Helper()
	for j.handed.Load() < n {
		if ctx.Err() != nil {
			t.Fatalf("the lanes read %d records; want %d", j.handed.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// close stops the stand-in and closes the sources, owner first, as the
// pipeline does.
func (j *drivenPair) close() {
	if j.closed {
		return
	}
	j.closed = true
	j.stop()
	j.readers.Wait()
	j.owner.Close()
	j.follower.Close()
}

// readOut reads the output topic until it holds n records, and a little
// more, so that a record beyond n shows.
func readOut(t *testing.T, brokers []string, n int, opts ...kgo.Opt) []string {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.ConsumeTopics("out"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var got []string
	deadline := time.Now().Add(30 * time.Second)
	quiet := time.Time{}
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
		cancel()
		switch {
		case len(got) < n:
		case quiet.IsZero():
			quiet = time.Now().Add(300 * time.Millisecond)
		case time.Now().After(quiet):
			return got
		}
	}
	t.Fatalf("the output holds %d records after 30 s; want %d", len(got), n)
	return nil
}

// checkOnce checks that out holds n distinct records, each once.
func checkOnce(t *testing.T, out []string, n int) {
	t.Helper()
	seen := map[string]int{}
	for _, v := range out {
		seen[v]++
	}
	if len(out) != n || len(seen) != n {
		t.Errorf("the output holds %d records, %d distinct; want %d, each once", len(out), len(seen), n)
	}
}

// waitCommitted waits until the group drv committed want's offsets, the
// sum over each topic's partitions.
func waitCommitted(t *testing.T, ctx context.Context, cl *kgo.Client, want map[string]int64) {
	t.Helper()
	adm := kadm.NewClient(cl)
	var got map[string]int64
	for ctx.Err() == nil {
		got = map[string]int64{}
		offsets, err := adm.FetchOffsets(ctx, "drv")
		if err == nil {
			offsets.Each(func(o kadm.OffsetResponse) { got[o.Topic] += o.At })
		}
		if got["trades"] == want["trades"] && got["quotes"] == want["quotes"] {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the group committed %v; want %v", got, want)
}
