package controllers

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// TestSilentEngineCostsOneTimeout: an engine that accepts connections and
// never answers costs a poll one timeout, not one per attempt: the poller
// makes one request to it, where it used to make three.
func TestSilentEngineCostsOneTimeout(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var conns atomic.Int32
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			defer c.Close() // held open, never answered
		}
	}()
	p := &statusPoller{
		client:   &http.Client{},
		address:  func(*corev1.Pod) string { return l.Addr().String() },
		attempts: 3,
		timeout:  300 * time.Millisecond,
	}
	reports := p.poll(context.Background(), []*corev1.Pod{{}})
	if reports[0].err == nil {
		t.Fatal("a silent engine answered")
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d requests to a silent engine; want 1, all attempts within one timeout", n)
	}
}
