// Command kfake runs a Kafka wire-protocol broker on loopback (franz-go's
// kfake, which keeps everything in memory): for trying the Kafka examples
// without a cluster, and for benchmarks with the broker in a process of its
// own, as it is in production. With -host it listens on another local
// address, such as the node address of hack/cluster.sh, which pods reach.
//
//	go run ./hack/kfake -topics in:4,out:4
//	KAFKA_BROKERS=127.0.0.1:9092 go test -run XXX -bench KafkaFilter ./runtime/connector/kafka
//
// It runs until interrupted.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "kfake:", err)
		os.Exit(1)
	}
}

func run() error {
	host := flag.String("host", "127.0.0.1", "address to listen on, and to advertise to clients")
	port := flag.Int("port", 9092, "port of the first broker; the others take the next ones")
	brokers := flag.Int("brokers", 1, "number of brokers")
	topics := flag.String("topics", "", "topics to create, as name:partitions[,name:partitions...]")
	partitions := flag.Int("partitions", 4, "partitions of a topic created on first use")
	flag.Parse()

	opts := []kfake.Opt{kfake.NumBrokers(*brokers), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(*partitions)}
	ports := make([]int, *brokers)
	for i := range ports {
		ports[i] = *port + i
	}
	opts = append(opts, kfake.Ports(ports...), kfake.ListenFn(func(network, address string) (net.Listener, error) {
		_, p, err := net.SplitHostPort(address)
		if err != nil {
			return nil, err
		}
		return net.Listen(network, net.JoinHostPort(*host, p))
	}))
	for t := range strings.SplitSeq(*topics, ",") {
		if t == "" {
			continue
		}
		name, n, ok := strings.Cut(t, ":")
		p, err := strconv.ParseInt(n, 10, 32)
		if !ok || name == "" || err != nil || p < 1 {
			return fmt.Errorf("-topics: %q is not name:partitions", t)
		}
		opts = append(opts, kfake.SeedTopics(int32(p), name))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Println("brokers:", strings.Join(c.ListenAddrs(), ","))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	return nil
}
