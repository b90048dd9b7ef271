package kafka

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/connector/schemas"
	"github.com/sluice-dev/sluice/runtime/value"
)

// TestRevokeInOpenTransaction: franz-go's transaction session passes on
// only the first revoke of a transaction, its callback skipped for the
// next ones until the transaction ends. Two members join one after the
// other while an exactly-once source's transaction is open, each taking
// partitions from it: the source must not go on taking as its own the
// partitions the second took, whose state it would restore after the
// abort, and whose windows it would write as their new owner does.
func TestRevokeInOpenTransaction(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(6, "in", "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cols := append([]value.Column{{Name: "v", Type: value.String}}, schemas.KafkaMeta...)
	src, err := Open(&v1alpha1.KafkaSource{Brokers: brokers, Topic: "in"}, "t", v1alpha1.FormatJSON, cols, Options{
		Group: "rv", TransactionalID: "rv.a", TransactionInterval: time.Hour, // one transaction, open throughout
		Producer: &v1alpha1.KafkaSink{Brokers: brokers, Topic: "out"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	mine := func() []int32 {
		src.mu.Lock()
		defer src.mu.Unlock()
		return slices.Sorted(maps.Keys(src.assigned))
	}
	adm, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	// coordinator is the group's assignment of the source's member, once
	// the group is stable with want members.
	coordinator := func(want int) ([]int32, bool) {
		groups, err := kadm.NewClient(adm).DescribeGroups(ctx, "rv")
		if err != nil || groups.Error() != nil {
			return nil, false
		}
		g := groups["rv"]
		member, _ := src.cl.GroupMetadata()
		if g.State != "Stable" || len(g.Members) != want {
			return nil, false
		}
		for _, m := range g.Members {
			if a, ok := m.Assigned.AsConsumer(); ok && m.MemberID == member {
				var parts []int32
				for _, t := range a.Topics {
					parts = append(parts, t.Partitions...)
				}
				slices.Sort(parts)
				return parts, true
			}
		}
		return nil, false
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			if ctx.Err() != nil {
				t.Fatalf("waiting for %s: the source takes %v as its own", what, mine())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor("the source to own every partition", func() bool { return len(mine()) == 6 })
	join := func() {
		cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumerGroup("rv"), kgo.ConsumeTopics("in"), kgo.DisableAutoCommit())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		go func() {
			for ctx.Err() == nil {
				pctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
				cl.PollRecords(pctx, 1) // takes part in the rebalances
				cancel()
			}
		}()
	}
	for members := 2; members <= 3; members++ {
		join()
		waitFor(fmt.Sprintf("the source to agree with the group of %d members", members), func() bool {
			parts, ok := coordinator(members)
			return ok && len(parts) < 6 && slices.Equal(parts, mine())
		})
	}
	// The second revoke, untold, took the partitions' records out of the
	// open transaction, which must abort.
	if !src.spoiled.Load() {
		t.Error("the open transaction is not marked to abort")
	}
	for _, l := range src.lanes {
		if away, owned := l.origin.Away.Load(), slices.Contains(mine(), l.origin.Partition); away == owned {
			t.Errorf("partition %d: away %v, owned %v", l.origin.Partition, away, owned)
		}
	}
}
