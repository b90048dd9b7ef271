package telemetry

import (
	"encoding/json"
	"os"
	"os/exec"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"gopkg.in/yaml.v3"

	"github.com/sluice-dev/sluice/internal/testtools"
)

const (
	rulesFile          = "../../config/prometheus/sluice-rules.yaml"
	rulesTestFile      = "../../config/prometheus/sluice-rules.test.yaml"
	prometheusRuleFile = "../../config/prometheus/prometheusrule.yaml"
	dashboardFile      = "../../config/grafana/sluice-engine.json"
	runbooksFile       = "../../docs/runbooks.md"
)

// external are metrics the rules use that another exporter provides.
var external = map[string]string{
	"kube_pod_container_status_restarts_total": "kube-state-metrics",
	"kube_pod_labels":                          "kube-state-metrics",
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func readRules(t *testing.T) ruleFile {
	t.Helper()
	var rf ruleFile
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &rf); err != nil {
		t.Fatal(err)
	}
	return rf
}

// exportedNames is every metric name the engine's /metrics serves, with the
// series names of histograms.
func exportedNames(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	mfs = append(mfs, exported(t)...)
	for _, mf := range mfs {
		names[mf.GetName()] = true
		if mf.GetType().String() == "HISTOGRAM" {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				names[mf.GetName()+s] = true
			}
		}
	}
	return names
}

var metricName = regexp.MustCompile(`\b(?:sluice|process|go|kube)_[a-z0-9_]+\b`)

// TestConfigMetricsExist checks that every metric the dashboard and the
// alerting rules name is one the engine exports.
func TestConfigMetricsExist(t *testing.T) {
	names := exportedNames(t)
	var exprs []string
	for _, g := range readRules(t).Groups {
		for _, r := range g.Rules {
			exprs = append(exprs, r.Expr)
		}
	}
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	if len(exprs) < 20 {
		t.Fatalf("found only %d expressions", len(exprs))
	}
	for _, e := range exprs {
		for _, m := range metricName.FindAllStringIndex(e, -1) {
			name := e[m[0]:m[1]]
			if name == "sluice_dev_query" {
				continue // a label: the ServiceMonitor's, naming the StreamQuery
			}
			if !names[name] && external[name] == "" {
				t.Errorf("%q names %s, which the engine does not export", e, name)
			}
		}
	}
}

// TestPrometheusRuleMatchesRules keeps the PrometheusRule manifest's groups
// equal to the plain rules file, and every alert's runbook a real section.
func TestPrometheusRuleMatchesRules(t *testing.T) {
	plain := readRules(t)
	b, err := os.ReadFile(prometheusRuleFile)
	if err != nil {
		t.Fatal(err)
	}
	var pr struct {
		APIVersion string   `yaml:"apiVersion"`
		Kind       string   `yaml:"kind"`
		Spec       ruleFile `yaml:"spec"`
	}
	if err := yaml.Unmarshal(b, &pr); err != nil {
		t.Fatal(err)
	}
	if pr.Kind != "PrometheusRule" || pr.APIVersion != "monitoring.coreos.com/v1" {
		t.Errorf("%s is a %s %s", prometheusRuleFile, pr.APIVersion, pr.Kind)
	}
	if !reflect.DeepEqual(pr.Spec, plain) {
		t.Errorf("%s differs from %s", prometheusRuleFile, rulesFile)
	}
	runbooks, err := os.ReadFile(runbooksFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range plain.Groups {
		for _, r := range g.Rules {
			anchor := strings.ToLower(r.Alert)
			if url := r.Annotations["runbook_url"]; !strings.HasSuffix(url, "docs/runbooks.md#"+anchor) {
				t.Errorf("%s: runbook_url %q; want docs/runbooks.md#%s", r.Alert, url, anchor)
			}
			if !strings.Contains(string(runbooks), "\n## "+r.Alert+"\n") {
				t.Errorf("docs/runbooks.md has no section ## %s", r.Alert)
			}
		}
	}
}

// TestAlertRules runs promtool's checks and unit tests of the rules.
func TestAlertRules(t *testing.T) {
	promtool := testtools.Path(t, "promtool")
	for _, args := range [][]string{{"check", "rules", rulesFile}, {"test", "rules", rulesTestFile}} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
