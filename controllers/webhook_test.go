package controllers

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/internal/servingcert"
	internalwebhook "github.com/sluice-dev/sluice/internal/webhook"
)

// TestAdmissionWebhook runs the validating webhook as the manager does,
// its certificate kept by the Rotator, against the suite's API server with
// config/webhook's generated configuration (called at a loopback URL, and
// only for this test's namespace): an invalid query is refused at create
// and at a spec update with the line and column of the problem, a valid
// one admitted, an update that leaves the spec alone admitted whatever
// the spec; a renewed certificate is served and trusted; and with the
// webhook down, queries are admitted (failurePolicy Ignore).
func TestAdmissionWebhook(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	// Stored before the webhook exists, as while the manager was down.
	stored := newQuery(ns, "stored-invalid", "SELECT nope FROM trades")
	if err := k8s.Create(ctx, stored); err != nil {
		t.Fatal(err)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	rot := &servingcert.Rotator{
		Reader: k8s, Writer: k8s,
		Secret:  types.NamespacedName{Namespace: ns, Name: "webhook-cert"},
		Webhook: "sluice-test-" + ns,
		IPs:     []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	b, err := os.ReadFile(filepath.Join("..", "config", "webhook", "manifests.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var config admissionregistrationv1.ValidatingWebhookConfiguration
	if err := yaml.UnmarshalStrict(bytes.TrimPrefix(b, []byte("---\n")), &config); err != nil {
		t.Fatal(err)
	}
	config.Name = rot.Webhook
	wh := &config.Webhooks[0]
	url := "https://127.0.0.1:" + strconv.Itoa(port) + *wh.ClientConfig.Service.Path
	wh.ClientConfig = admissionregistrationv1.WebhookClientConfig{URL: &url}
	wh.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: ns}}
	if err := k8s.Create(ctx, &config); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k8s.Delete(context.Background(), &config) })
	if err := rot.Sync(ctx); err != nil {
		t.Fatalf("the first sync: %v", err)
	}

	srv := webhook.NewServer(webhook.Options{Host: "127.0.0.1", Port: port,
		TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.GetCertificate = rot.GetCertificate }}})
	srv.Register(internalwebhook.Path, admission.WithValidator(scheme, internalwebhook.Validator{}))
	srvCtx, stop := context.WithCancel(ctx)
	defer stop()
	stopped := make(chan struct{})
	go func() { defer close(stopped); srv.Start(srvCtx) }()

	invalid := newQuery(ns, "bad", "SELECT symbol,\n  nope FROM trades")
	eventually(t, 15*time.Second, func() error {
		err := k8s.Create(ctx, invalid.DeepCopy())
		if err == nil {
			k8s.Delete(ctx, invalid)
			return fmt.Errorf("an invalid query was admitted")
		}
		if msg := err.Error(); !strings.Contains(msg, `spec.query: Invalid value: line 2, column 3: unknown column "nope"`) {
			return fmt.Errorf("refused with %q; want the field, line 2, column 3, and the problem", msg)
		}
		return nil
	})
	valid := newQuery(ns, "good", "SELECT symbol FROM trades")
	if err := k8s.Create(ctx, valid); err != nil {
		t.Fatalf("a valid query was refused: %v", err)
	}
	valid.Spec.Query = "SELECT symbol FROM nowhere"
	if err := k8s.Update(ctx, valid); err == nil || !strings.Contains(err.Error(), "spec.query") {
		t.Errorf("an update to an invalid spec: %v; want it refused", err)
	}
	// Retried on a conflict: the controller writes the query's status
	// meanwhile.
	eventually(t, 10*time.Second, func() error {
		got := getQuery(t, stored)
		got.Labels = map[string]string{"team": "data"}
		if err := k8s.Update(ctx, got); err != nil {
			return fmt.Errorf("a label on a stored invalid query was refused: %w; an update that leaves the spec must pass", err)
		}
		return nil
	})

	// A renewal: a certificate issued 300 days ago (by a rotator whose
	// clock says so) is renewed at the next sync: a new certificate in the
	// Secret, served, and trusted through the bundle, which keeps the old
	// CA too.
	var before corev1.Secret
	if err := k8s.Get(ctx, rot.Secret, &before); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Delete(ctx, &before); err != nil {
		t.Fatal(err)
	}
	aged := &servingcert.Rotator{Reader: k8s, Writer: k8s, Secret: rot.Secret, Webhook: rot.Webhook, IPs: rot.IPs,
		Now: func() time.Time { return time.Now().Add(-300 * 24 * time.Hour) }}
	if err := aged.Sync(ctx); err != nil {
		t.Fatalf("issuing an aged certificate: %v", err)
	}
	if err := k8s.Get(ctx, rot.Secret, &before); err != nil {
		t.Fatal(err)
	}
	if err := rot.Sync(ctx); err != nil {
		t.Fatalf("the renewing sync: %v", err)
	}
	var after corev1.Secret
	if err := k8s.Get(ctx, rot.Secret, &after); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(before.Data[servingcert.KeyCert], after.Data[servingcert.KeyCert]) || bytes.Count(after.Data[servingcert.KeyBundle], []byte("BEGIN CERTIFICATE")) != 2 {
		t.Fatalf("a certificate with 65 of its 365 days left was not renewed, or the bundle lacks one of the CAs")
	}
	conn, err := tls.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	served := conn.ConnectionState().PeerCertificates[0].Raw
	conn.Close()
	pair, _ := tls.X509KeyPair(after.Data[servingcert.KeyCert], after.Data[servingcert.KeyKey])
	if !bytes.Equal(served, pair.Certificate[0]) {
		t.Error("the server does not serve the renewed certificate")
	}
	eventually(t, 15*time.Second, func() error {
		if err := k8s.Create(ctx, invalid.DeepCopy()); err == nil || !strings.Contains(err.Error(), "line 2, column 3") {
			k8s.Delete(ctx, invalid)
			return fmt.Errorf("after the renewal: %v; want the invalid query refused by the webhook", err)
		}
		return nil
	})

	// Down: failurePolicy Ignore admits; the controller's InvalidQuery
	// condition is then what reports the query.
	stop()
	<-stopped
	eventually(t, 15*time.Second, func() error {
		return k8s.Create(ctx, invalid.DeepCopy())
	})
	var cfg admissionregistrationv1.ValidatingWebhookConfiguration
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(&config), &cfg); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cfg.Webhooks[0].ClientConfig.CABundle, after.Data[servingcert.KeyBundle]) {
		t.Error("the webhook configuration's caBundle is not the Secret's bundle")
	}
}
