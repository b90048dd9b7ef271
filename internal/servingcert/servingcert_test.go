package servingcert

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"net"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

// cas parses the CA certificates of a bundle.
func cas(t *testing.T, bundle []byte) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for block, rest := pem.Decode(bundle); block != nil; block, rest = pem.Decode(rest) {
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// TestIssueAndRenew: an issued certificate verifies against its bundle for
// the Service's name; it is renewed once less than a third of its
// validity is left, or when the names change; a renewal's bundle keeps
// the previous CA while it is valid, and drops it once it is not.
func TestIssueAndRenew(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := &Rotator{DNSNames: []string{"sluice-webhook.sluice.svc"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Now: func() time.Time { return now }}
	data, err := r.issue(nil)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data[KeyCert])
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(data[KeyBundle])
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "sluice-webhook.sluice.svc", Roots: roots, CurrentTime: now}); err != nil {
		t.Errorf("the serving certificate does not verify against its bundle: %v", err)
	}
	if r.renewable(data) {
		t.Error("a new certificate is renewable")
	}
	now = now.Add(DefaultValidity / 2)
	if r.renewable(data) {
		t.Error("renewable with half of its validity left")
	}
	now = now.Add(DefaultValidity / 4)
	if !r.renewable(data) {
		t.Error("not renewable with a quarter of its validity left")
	}
	other := &Rotator{DNSNames: []string{"other.sluice.svc"}, Now: r.Now}
	if !other.renewable(data) {
		t.Error("not renewable for a name it does not carry")
	}
	if !r.renewable(map[string][]byte{KeyCert: []byte("junk")}) {
		t.Error("an unreadable certificate is not renewable")
	}

	renewed, err := r.issue(data[KeyBundle])
	if err != nil {
		t.Fatal(err)
	}
	old := cas(t, data[KeyBundle])
	both := cas(t, renewed[KeyBundle])
	if len(both) != 2 || !both[1].Equal(old[0]) {
		t.Fatalf("the renewal's bundle holds %d CAs; want the new one and the previous", len(both))
	}
	now = now.Add(DefaultValidity / 2) // the first CA has expired, the second has not
	again, err := r.issue(renewed[KeyBundle])
	if err != nil {
		t.Fatal(err)
	}
	if got := cas(t, again[KeyBundle]); len(got) != 2 || !got[1].Equal(both[0]) {
		t.Errorf("a second renewal's bundle holds %d CAs; want the new one and the one before, not the expired first", len(got))
	}
}

// TestStaleReplicaKeepsBundle: a replica that read the Secret before
// another renewed it does not put its older bundle back into the webhook
// configuration, whose bundle already holds its CA; a configuration
// without it gets it. (The API server is client-go's fake here; the
// controllers suite runs the rotator against a real one.)
func TestStaleReplicaKeepsBundle(t *testing.T) {
	ctx := context.Background()
	secret := types.NamespacedName{Namespace: "sluice", Name: "webhook-cert"}
	r := &Rotator{Secret: secret, Webhook: "sluice-validating", DNSNames: []string{"sluice-webhook.sluice.svc"}}
	old, err := r.issue(nil)
	if err != nil {
		t.Fatal(err)
	}
	renewed, err := r.issue(old[KeyBundle])
	if err != nil {
		t.Fatal(err)
	}
	config := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: r.Webhook},
		Webhooks:   []admissionregistrationv1.ValidatingWebhook{{Name: "vstreamquery.streaming.sluice.dev", ClientConfig: admissionregistrationv1.WebhookClientConfig{CABundle: renewed[KeyBundle]}}},
	}
	stale := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: secret.Name, Namespace: secret.Namespace}, Data: old}
	c := fake.NewClientBuilder().WithObjects(config, stale).Build()
	r.Reader, r.Writer = c, c
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	var got admissionregistrationv1.ValidatingWebhookConfiguration
	if err := c.Get(ctx, types.NamespacedName{Name: r.Webhook}, &got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Webhooks[0].ClientConfig.CABundle, renewed[KeyBundle]) {
		t.Error("a stale replica replaced the renewed bundle with its older one")
	}

	got.Webhooks[0].ClientConfig.CABundle = nil // emptied by an upgrade
	if err := c.Update(ctx, &got); err != nil {
		t.Fatal(err)
	}
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, types.NamespacedName{Name: r.Webhook}, &got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Webhooks[0].ClientConfig.CABundle, old[KeyBundle]) {
		t.Error("an emptied caBundle was not restored")
	}
}
