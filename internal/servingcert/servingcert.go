// Package servingcert keeps the TLS certificate of the operator's webhook
// server without cert-manager: a CA and a serving certificate it signs,
// kept in a Secret so that every replica of the manager serves the same
// one, renewed well before they expire, and the CA written into the
// webhook configuration's caBundle so that the API server trusts them.
package servingcert

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The Secret's keys: the serving certificate and key as a TLS Secret holds
// them, and the CA bundle the API server is given: the current CA, then
// the previous one while it is valid, so that a renewal never leaves the
// API server distrusting a replica that still serves the old certificate.
const (
	KeyCert   = corev1.TLSCertKey
	KeyKey    = corev1.TLSPrivateKeyKey
	KeyBundle = "ca.crt"
)

// DefaultValidity is how long a CA and its serving certificate are valid.
// They are renewed once less than a third of it is left.
const DefaultValidity = 365 * 24 * time.Hour

// Rotator keeps the certificate. It is a manager Runnable that runs on
// every replica, leader or not: each serves the webhook. What it reads
// and writes, its Secret and the webhook configuration, it may touch by
// name only (config/rbac/webhook_cert_role.yaml, the chart's
// templates/webhook.yaml), not by a rule generated for every object of
// their kinds.
type Rotator struct {
	// Reader reads the Secret and the webhook configuration uncached;
	// Writer writes them.
	Reader client.Reader
	Writer client.Writer
	// Secret is where the certificate is kept.
	Secret types.NamespacedName
	// Webhook names the ValidatingWebhookConfiguration whose webhooks get
	// the CA bundle.
	Webhook string
	// DNSNames and IPs are the names the certificate is valid for: the
	// webhook Service's, <service>.<namespace>.svc.
	DNSNames []string
	IPs      []net.IP
	// Validity defaults to DefaultValidity; Interval, how often the Secret
	// and the webhook configuration are checked, to a minute.
	Validity, Interval time.Duration
	// Log receives renewals and failures.
	Log logr.Logger
	// Now is the clock; nil is time.Now.
	Now func() time.Time

	current atomic.Pointer[tls.Certificate]
}

// GetCertificate serves the current certificate, for tls.Config.
func (r *Rotator) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c := r.current.Load(); c != nil {
		return c, nil
	}
	return nil, errors.New("no serving certificate yet")
}

// ReadyCheck fails until a certificate is loaded: the manager is not ready
// to serve the webhook before.
func (r *Rotator) ReadyCheck(*http.Request) error {
	if r.current.Load() == nil {
		return errors.New("the webhook's serving certificate is not loaded yet")
	}
	return nil
}

// NeedLeaderElection is false: every replica serves the webhook.
func (r *Rotator) NeedLeaderElection() bool { return false }

// Start keeps the certificate until ctx ends. A failed check is logged and
// tried again after a few seconds.
func (r *Rotator) Start(ctx context.Context) error {
	interval := r.Interval
	if interval <= 0 {
		interval = time.Minute
	}
	for {
		wait := interval
		if err := r.Sync(ctx); err != nil {
			r.Log.Error(err, "keeping the webhook's serving certificate")
			wait = min(interval, 5*time.Second)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// Sync makes one check: it creates or renews the certificate in the Secret
// when needed, serves what the Secret holds, and puts the CA bundle into
// the webhook configuration.
func (r *Rotator) Sync(ctx context.Context) error {
	var secret corev1.Secret
	err := r.Reader.Get(ctx, r.Secret, &secret)
	switch {
	case apierrors.IsNotFound(err):
		secret = corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: r.Secret.Name, Namespace: r.Secret.Namespace}, Type: corev1.SecretTypeTLS}
		if secret.Data, err = r.issue(nil); err != nil {
			return err
		}
		if err := r.Writer.Create(ctx, &secret); err != nil {
			// Another replica made it first: the next check reads it.
			return fmt.Errorf("creating the Secret %s: %w", r.Secret, err)
		}
		r.Log.Info("issued the webhook's serving certificate", "secret", r.Secret.String())
	case err != nil:
		return fmt.Errorf("reading the Secret %s: %w", r.Secret, err)
	case r.renewable(secret.Data):
		if secret.Data, err = r.issue(secret.Data[KeyBundle]); err != nil {
			return err
		}
		if err := r.Writer.Update(ctx, &secret); err != nil {
			return fmt.Errorf("renewing the certificate in the Secret %s: %w", r.Secret, err)
		}
		r.Log.Info("renewed the webhook's serving certificate", "secret", r.Secret.String())
	}
	cert, err := tls.X509KeyPair(secret.Data[KeyCert], secret.Data[KeyKey])
	if err != nil {
		return fmt.Errorf("the Secret %s: %w", r.Secret, err)
	}
	// The CA first: a certificate is served only once the API server has
	// been given what verifies it.
	if err := r.injectBundle(ctx, secret.Data[KeyBundle]); err != nil {
		return err
	}
	r.current.Store(&cert)
	return nil
}

// renewable says whether the Secret's certificate must be issued again:
// missing, unreadable, not for these names, or with less than a third of
// its validity left.
func (r *Rotator) renewable(data map[string][]byte) bool {
	pair, err := tls.X509KeyPair(data[KeyCert], data[KeyKey])
	if err != nil || len(pair.Certificate) == 0 || len(data[KeyBundle]) == 0 {
		return true
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return true
	}
	for _, name := range r.DNSNames {
		if leaf.VerifyHostname(name) != nil {
			return true
		}
	}
	for _, ip := range r.IPs {
		if leaf.VerifyHostname(ip.String()) != nil {
			return true
		}
	}
	lifetime := leaf.NotAfter.Sub(leaf.NotBefore)
	return r.now().After(leaf.NotAfter.Add(-lifetime / 3))
}

// issue makes a new CA and a serving certificate it signs, and the bundle
// of the new CA and the newest CA of the previous bundle, while it is
// valid.
func (r *Rotator) issue(previous []byte) (map[string][]byte, error) {
	validity := r.Validity
	if validity <= 0 {
		validity = DefaultValidity
	}
	now := r.now()
	// Backdated: a replica or API server whose clock is a little behind
	// accepts it too.
	notBefore, notAfter := now.Add(-time.Hour), now.Add(validity)
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating the webhook CA's key: %w", err)
	}
	ca := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "sluice-webhook-ca"},
		NotBefore: notBefore, NotAfter: notAfter,
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("creating the webhook CA: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating the webhook's serving key: %w", err)
	}
	name := "sluice-webhook"
	if len(r.DNSNames) > 0 {
		name = r.DNSNames[0]
	}
	leaf := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: name},
		NotBefore: notBefore, NotAfter: notAfter,
		DNSNames: r.DNSNames, IPAddresses: r.IPs,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("creating the webhook's serving certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding the webhook's serving key: %w", err)
	}
	bundle := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	if block, _ := pem.Decode(previous); block != nil {
		if old, err := x509.ParseCertificate(block.Bytes); err == nil && now.Before(old.NotAfter) {
			bundle = append(bundle, pem.EncodeToMemory(block)...)
		}
	}
	return map[string][]byte{
		KeyCert:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
		KeyKey:    pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		KeyBundle: bundle,
	}, nil
}

// injectBundle sets the CA bundle of every webhook of the configuration
// whose bundle lacks the newest CA of this one. A webhook that has it is
// left alone even if its bundle differs: a replica that read the Secret
// before another renewed it must not put the older bundle back.
func (r *Rotator) injectBundle(ctx context.Context, bundle []byte) error {
	var config admissionregistrationv1.ValidatingWebhookConfiguration
	if err := r.Reader.Get(ctx, types.NamespacedName{Name: r.Webhook}, &config); err != nil {
		return fmt.Errorf("reading the ValidatingWebhookConfiguration %s: %w", r.Webhook, err)
	}
	newest, _ := pem.Decode(bundle)
	if newest == nil {
		return fmt.Errorf("the Secret %s holds no CA", r.Secret)
	}
	changed := false
	for i := range config.Webhooks {
		if cc := &config.Webhooks[i].ClientConfig; !holds(cc.CABundle, newest.Bytes) {
			cc.CABundle, changed = bundle, true
		}
	}
	if !changed {
		return nil
	}
	if err := r.Writer.Update(ctx, &config); err != nil {
		return fmt.Errorf("setting the CA bundle of the ValidatingWebhookConfiguration %s: %w", r.Webhook, err)
	}
	r.Log.Info("set the webhook configuration's CA bundle", "webhook", r.Webhook)
	return nil
}

// holds says whether a PEM bundle holds the certificate der.
func holds(bundle, der []byte) bool {
	for block, rest := pem.Decode(bundle); block != nil; block, rest = pem.Decode(rest) {
		if bytes.Equal(block.Bytes, der) {
			return true
		}
	}
	return false
}

func (r *Rotator) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// serial is a random certificate serial number. crypto/rand does not fail.
func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}
