// Package argocd_test runs the Argo CD health check of StreamQuery against
// sample statuses, and against the statuses the end-to-end suite recorded on
// a real cluster (testdata/).
package argocd_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/config/argocd"
)

func health(t *testing.T, sq *v1alpha1.StreamQuery) (string, string) {
	t.Helper()
	b, err := json.Marshal(sq)
	if err != nil {
		t.Fatal(err)
	}
	status, msg, err := argocd.Health(b)
	if err != nil {
		t.Fatal(err)
	}
	return status, msg
}

func cond(typ string, status metav1.ConditionStatus, reason, msg string) metav1.Condition {
	return metav1.Condition{Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: 2}
}

func TestHealthCheck(t *testing.T) {
	query := func(st *v1alpha1.StreamQueryStatus) *v1alpha1.StreamQuery {
		sq := &v1alpha1.StreamQuery{ObjectMeta: metav1.ObjectMeta{Name: "q", Generation: 2}}
		if st != nil {
			sq.Status = *st
		}
		return sq
	}
	tests := []struct {
		name       string
		status     *v1alpha1.StreamQueryStatus
		want, text string
	}{
		{"not reconciled", nil, "Missing", "not reconciled"},
		{"old generation", &v1alpha1.StreamQueryStatus{Phase: v1alpha1.PhaseRunning, ObservedGeneration: 1}, "Progressing", "generation 2"},
		{"suspended", &v1alpha1.StreamQueryStatus{Phase: v1alpha1.PhaseSuspended, ObservedGeneration: 2}, "Suspended", "suspended"},
		{"invalid query", &v1alpha1.StreamQueryStatus{Phase: v1alpha1.PhaseFailed, ObservedGeneration: 2, Conditions: []metav1.Condition{
			cond("Ready", metav1.ConditionFalse, "InvalidQuery", "spec.query: line 1, column 8: unknown column"),
		}}, "Degraded", "line 1, column 8"},
		{"crash loop", &v1alpha1.StreamQueryStatus{Phase: v1alpha1.PhaseDegraded, ObservedGeneration: 2, Conditions: []metav1.Condition{
			cond("Ready", metav1.ConditionFalse, "CrashLoopBackOff", "engine pod q-1 is crash-looping"),
			cond("Degraded", metav1.ConditionTrue, "CrashLoopBackOff", "engine pod q-1 is crash-looping (7 restarts in all)"),
		}}, "Degraded", "crash-looping"},
		{"rolling out", &v1alpha1.StreamQueryStatus{Phase: v1alpha1.PhaseRunning, ObservedGeneration: 2, Conditions: []metav1.Condition{
			cond("Ready", metav1.ConditionFalse, "PodsNotReady", "1 of 2 engines ready"),
			cond("Progressing", metav1.ConditionTrue, "RollingOut", "1 of 2 engines updated and ready"),
			cond("Degraded", metav1.ConditionFalse, "Healthy", "no engine reports a problem"),
		}}, "Progressing", "1 of 2"},
		{"healthy", &v1alpha1.StreamQueryStatus{Phase: v1alpha1.PhaseRunning, ObservedGeneration: 2, Conditions: []metav1.Condition{
			cond("Ready", metav1.ConditionTrue, "Running", "2 of 2 engines ready"),
			cond("Progressing", metav1.ConditionFalse, "RolledOut", "every engine runs the current spec"),
			cond("Degraded", metav1.ConditionFalse, "Healthy", "no engine reports a problem"),
		}}, "Healthy", "2 of 2"},
		{"batch run ended", &v1alpha1.StreamQueryStatus{Phase: v1alpha1.PhaseSucceeded, ObservedGeneration: 2, Conditions: []metav1.Condition{
			cond("Ready", metav1.ConditionFalse, "Completed", "sluice: finished in 2s: 100 in, 100 out"),
			cond("Progressing", metav1.ConditionFalse, "Completed", "sluice: finished in 2s: 100 in, 100 out"),
		}}, "Healthy", "100 in, 100 out"},
		{"batch run failed", &v1alpha1.StreamQueryStatus{Phase: v1alpha1.PhaseFailed, ObservedGeneration: 2, Conditions: []metav1.Condition{
			cond("Ready", metav1.ConditionFalse, "RunFailed", "PodFailurePolicy: exit code 1: sluice: failed: open in.jsonl"),
		}}, "Degraded", "open in.jsonl"},
		{"pending", &v1alpha1.StreamQueryStatus{Phase: v1alpha1.PhasePending, ObservedGeneration: 2, Conditions: []metav1.Condition{
			cond("Ready", metav1.ConditionFalse, "PodsNotReady", "0 of 1 engines ready"),
		}}, "Progressing", "0 of 1"},
	}
	for _, tt := range tests {
		got, msg := health(t, query(tt.status))
		if got != tt.want || !strings.Contains(msg, tt.text) {
			t.Errorf("%s: health %s %q; want %s with %q", tt.name, got, msg, tt.want, tt.text)
		}
	}
}

// TestConfigMapSnippet keeps the argocd-cm snippet's Lua equal to health.lua.
func TestConfigMapSnippet(t *testing.T) {
	script, err := os.ReadFile("health.lua")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("argocd-cm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	if err := yaml.Unmarshal(b, &cm); err != nil {
		t.Fatal(err)
	}
	if got := cm.Data["resource.customizations.health.streaming.sluice.dev_StreamQuery"]; got != string(script) {
		t.Errorf("argocd-cm.yaml's health check differs from health.lua")
	}
}

// TestRecordedStatuses judges the check on the StreamQuery objects the
// end-to-end suite saved from a real cluster, each in a scenario whose
// health is known (test/e2e writes them with SLUICE_E2E_FIXTURES=1).
func TestRecordedStatuses(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.json")
	if len(files) == 0 {
		t.Fatal("no recorded statuses in testdata")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var fixture struct {
			Want    string          `json:"wantHealth"`
			Message string          `json:"wantMessage"`
			Object  json.RawMessage `json:"object"`
		}
		if err := json.Unmarshal(b, &fixture); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		got, msg, err := argocd.Health(fixture.Object)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if got != fixture.Want || !strings.Contains(msg, fixture.Message) {
			t.Errorf("%s: health %s %q; want %s with %q", f, got, msg, fixture.Want, fixture.Message)
		}
	}
}
