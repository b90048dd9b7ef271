// Command manager is the Sluice operator: it reconciles StreamQuery resources
// into engine Deployments and reports the engines' health on their status.
package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/controllers"
	"github.com/sluice-dev/sluice/internal/servingcert"
	internalwebhook "github.com/sluice-dev/sluice/internal/webhook"
)

// defaultEngineImage is the engine image of queries that name none.
const defaultEngineImage = "ghcr.io/sluice-dev/sluice-engine:dev"

func main() {
	var (
		metricsAddr, probeAddr, engineImage, namespaces string
		leaderElect                                     bool
		pollInterval                                    time.Duration
		concurrency                                     int
		serviceMonitors                                 string
		apiQPS                                          float64
		apiBurst                                        int
		webhookPort                                     int
		webhookConfig, webhookService, webhookSecret    string
	)
	flag.StringVar(&metricsAddr, "metrics-bind-address", ":8080", "address of the manager's own metrics; 0 disables them")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "address of /healthz and /readyz")
	flag.BoolVar(&leaderElect, "leader-elect", false, "elect a leader, so that one of several replicas reconciles")
	flag.DurationVar(&pollInterval, "poll-interval", 15*time.Second, "how often each running query's engines are polled for /status")
	flag.StringVar(&engineImage, "engine-image", defaultEngineImage, "the engine image of queries that do not set spec.image")
	flag.StringVar(&namespaces, "namespaces", "", "comma-separated namespaces whose queries to run; empty runs those of every namespace")
	flag.IntVar(&concurrency, "max-concurrent-reconciles", 4, "how many queries are reconciled, and their engines polled, at once")
	flag.Float64Var(&apiQPS, "kube-api-qps", 50, "requests per second the manager may make to the API server; each reconcile of a query makes one to a few")
	flag.IntVar(&apiBurst, "kube-api-burst", 100, "requests the manager may make at once above --kube-api-qps")
	flag.StringVar(&serviceMonitors, "service-monitors", "auto", "a ServiceMonitor per query for the Prometheus Operator: auto (when its CRD is installed at start), true or false")
	flag.IntVar(&webhookPort, "webhook-port", 9443, "port of the validating admission webhook, which refuses invalid queries at kubectl apply; 0 serves none")
	flag.StringVar(&webhookConfig, "webhook-config", "sluice-validating-webhook-configuration", "the ValidatingWebhookConfiguration whose CA bundle the manager keeps")
	flag.StringVar(&webhookService, "webhook-service", "sluice-webhook-service", "the Service of the webhook, in the manager's namespace: its serving certificate's name")
	flag.StringVar(&webhookSecret, "webhook-secret", "sluice-webhook-cert", "the Secret, in the manager's namespace, where the manager keeps the webhook's CA and serving certificate")
	opts := zap.Options{}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))
	log := ctrl.Log.WithName("setup")

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		fail(err)
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		fail(err)
	}
	var watched []string
	for ns := range strings.SplitSeq(namespaces, ",") {
		if ns = strings.TrimSpace(ns); ns != "" {
			watched = append(watched, ns)
		}
	}
	cfg := ctrl.GetConfigOrDie()
	// client-go's default of 20 requests a second bounds the queries the
	// manager can create and keep polled: a first reconcile makes about 7,
	// and 20 a second is fewer than 300 status updates per 15 s poll.
	cfg.QPS, cfg.Burst = float32(apiQPS), apiBurst
	var rotator *servingcert.Rotator
	var webhookServer webhook.Server // started only when a webhook is registered
	if webhookPort != 0 {
		ns := os.Getenv("POD_NAMESPACE")
		if ns == "" {
			fail(errors.New("the webhook needs the manager's namespace in POD_NAMESPACE (the downward API); --webhook-port=0 serves no webhook"))
		}
		rotator = &servingcert.Rotator{
			Secret:   types.NamespacedName{Namespace: ns, Name: webhookSecret},
			Webhook:  webhookConfig,
			DNSNames: []string{webhookService + "." + ns + ".svc", webhookService + "." + ns + ".svc.cluster.local"},
			Log:      ctrl.Log.WithName("webhook-certificate"),
		}
		webhookServer = webhook.NewServer(webhook.Options{
			Port:    webhookPort,
			TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.GetCertificate = rotator.GetCertificate }},
		})
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		WebhookServer:          webhookServer,
		Cache:                  controllers.CacheOptions(watched),
		Metrics:                metricsserver.Options{BindAddress: metricsAddr},
		HealthProbeBindAddress: probeAddr,
		LeaderElection:         leaderElect,
		LeaderElectionID:       "sluice-operator.streaming.sluice.dev",
		// A manager that stops (a rollout, a drained node) hands the lease
		// over at once rather than leaving it to expire: the reconciler
		// does nothing after the stop that a successor could repeat.
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		fail(fmt.Errorf("creating the manager: %w", err))
	}
	var monitors *bool
	switch serviceMonitors {
	case "auto":
	case "true", "false":
		on := serviceMonitors == "true"
		monitors = &on
	default:
		fail(fmt.Errorf("--service-monitors %q: want auto, true or false", serviceMonitors))
	}
	r := &controllers.StreamQueryReconciler{
		Client:       mgr.GetClient(),
		Scheme:       mgr.GetScheme(),
		Recorder:     mgr.GetEventRecorder("sluice-operator"),
		EngineImage:  engineImage,
		PollInterval: pollInterval,
		// Each reconcile polls its engines: several at once keep one slow
		// engine from holding up every other query.
		MaxConcurrentReconciles: concurrency,
		ServiceMonitors:         monitors,
	}
	if err := r.SetupWithManager(mgr); err != nil {
		fail(fmt.Errorf("setting up the StreamQuery controller: %w", err))
	}
	if rotator != nil {
		// Uncached: the manager's cache holds only what it made.
		rotator.Reader, rotator.Writer = mgr.GetAPIReader(), mgr.GetClient()
		if err := mgr.Add(rotator); err != nil {
			fail(fmt.Errorf("adding the webhook certificate's rotator: %w", err))
		}
		if err := (internalwebhook.Validator{}).SetupWithManager(mgr); err != nil {
			fail(fmt.Errorf("setting up the webhook: %w", err))
		}
		if err := mgr.AddReadyzCheck("webhook-certificate", rotator.ReadyCheck); err != nil {
			fail(fmt.Errorf("adding the webhook certificate's readiness check: %w", err))
		}
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		fail(err)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		fail(err)
	}
	log.Info("starting the manager", "engineImage", engineImage, "pollInterval", pollInterval, "namespaces", namespaces, "maxConcurrentReconciles", concurrency)
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		fail(fmt.Errorf("running the manager: %w", err))
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "manager:", err)
	os.Exit(1)
}
