package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/sluice-dev/sluice/api/enginestatus"
)

// EngineAddress returns the host:port of a pod's engine HTTP server. The
// default is the pod IP and the engine port; tests substitute an address.
type EngineAddress func(pod *corev1.Pod) string

// PodIPAddress is the EngineAddress of a real cluster.
func PodIPAddress(pod *corev1.Pod) string {
	return net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(enginestatus.Port))
}

// engineReport is what one pod's engine said, or why it said nothing.
type engineReport struct {
	pod   string
	ready bool
	doc   *enginestatus.Document
	err   error
}

// statusPoller reads engines' /status documents.
type statusPoller struct {
	client  *http.Client
	address EngineAddress
	// attempts and timeout bound one poll: a few quick tries (a refused
	// connection while an engine starts), all within one timeout, so that
	// an engine that does not answer costs a reconcile that timeout once.
	attempts int
	timeout  time.Duration
}

// poll reads the status of each pod concurrently. A pod that does not answer
// yields an error in its report, never a failed poll.
func (p *statusPoller) poll(ctx context.Context, pods []*corev1.Pod) []engineReport {
	reports := make([]engineReport, len(pods))
	var wg sync.WaitGroup
	for i, pod := range pods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reports[i] = engineReport{pod: pod.Name, ready: podReady(pod)}
			reports[i].doc, reports[i].err = p.get(ctx, p.address(pod))
		}()
	}
	wg.Wait()
	return reports
}

func (p *statusPoller) get(ctx context.Context, addr string) (*enginestatus.Document, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	var lastErr error
	for attempt := range p.attempts {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return nil, lastErr
			case <-time.After(time.Duration(attempt) * 100 * time.Millisecond):
			}
		}
		doc, err := p.getOnce(ctx, addr)
		if err == nil {
			return doc, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

func (p *statusPoller) getOnce(ctx context.Context, addr string) (*enginestatus.Document, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+enginestatus.Path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", enginestatus.Path, resp.Status)
	}
	var doc enginestatus.Document
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", enginestatus.Path, err)
	}
	if doc.Version != enginestatus.Version {
		return nil, fmt.Errorf("engine status version %q, want %q", doc.Version, enginestatus.Version)
	}
	return &doc, nil
}
