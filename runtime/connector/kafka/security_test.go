package kafka_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/connector/kafka"
)

// fakeCluster starts a kfake cluster with opts and topic "t". The security
// tests need kfake's TLS and SASL settings, so they do not run against
// KAFKA_BROKERS.
func fakeCluster(t *testing.T, opts ...kfake.Opt) []string {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(1, "t")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// roundTrip produces one record to topic t with a client of sec's options
// and reads it back with another.
func roundTrip(t *testing.T, brokers []string, sec *v1alpha1.KafkaSecurity) error {
	t.Helper()
	opts, err := kafka.ClientOptions(brokers, sec)
	if err != nil {
		t.Fatalf("ClientOptions: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	// A client that cannot connect gives up after a few quick retries.
	prod, err := kgo.NewClient(append(opts, kgo.DefaultProduceTopic("t"), kgo.RecordRetries(2), kgo.RequestRetries(2),
		kgo.RetryBackoffFn(func(int) time.Duration { return 20 * time.Millisecond }), kgo.MetadataMinAge(50*time.Millisecond))...)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	want := "v" + strings.ReplaceAll(t.Name(), "/", "-")
	if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte(want)}).FirstErr(); err != nil {
		return err
	}
	consumeWith(t, opts, "t", func(r *kgo.Record) bool { return string(r.Value) == want })
	return nil
}

// TestSASL: each mechanism authenticates with the right password, read
// from an environment variable or a file, and fails with a wrong one.
func TestSASL(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, mech := range []v1alpha1.SASLMechanism{v1alpha1.SASLPlain, v1alpha1.SASLScramSHA256, v1alpha1.SASLScramSHA512} {
		t.Run(string(mech), func(t *testing.T) {
			brokers := fakeCluster(t, kfake.EnableSASL(), kfake.Superuser(string(mech), "sluice", "s3cret"))
			t.Setenv("KAFKA_USER", "sluice")
			t.Setenv("KAFKA_PASSWORD", "s3cret")
			t.Setenv("KAFKA_WRONG_PASSWORD", "guess")
			for _, tt := range []struct {
				name string
				sasl v1alpha1.KafkaSASL
				ok   bool
			}{
				{"env", v1alpha1.KafkaSASL{UsernameEnv: "KAFKA_USER", PasswordEnv: "KAFKA_PASSWORD"}, true},
				// A mounted file may end in a line break, which is not part
				// of the password.
				{"file", v1alpha1.KafkaSASL{UsernameFile: file("user", "sluice"), PasswordFile: file("password", "s3cret\n")}, true},
				{"wrong password", v1alpha1.KafkaSASL{UsernameEnv: "KAFKA_USER", PasswordEnv: "KAFKA_WRONG_PASSWORD"}, false},
			} {
				tt.sasl.Mechanism = mech
				err := roundTrip(t, brokers, &v1alpha1.KafkaSecurity{SASL: &tt.sasl})
				switch {
				case tt.ok && err != nil:
					t.Errorf("%s: %v", tt.name, err)
				case !tt.ok && err == nil:
					t.Errorf("%s: the record was produced", tt.name)
				case !tt.ok:
					t.Logf("%s: %v", tt.name, err)
				}
			}
		})
	}
}

// TestTLS: a broker with a certificate of a CA of the test's own is reached
// with caFile, and not without it; a broker that asks for a client
// certificate is reached with certFile and keyFile.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t)
	serverCert := ca.issue(t, false)
	caFile := filepath.Join(dir, "ca.crt")
	writePEM(t, caFile, "CERTIFICATE", ca.cert.Raw)

	t.Run("server", func(t *testing.T) {
		brokers := fakeCluster(t, kfake.TLS(&tls.Config{Certificates: []tls.Certificate{serverCert}, MinVersion: tls.VersionTLS12}))
		if err := roundTrip(t, brokers, &v1alpha1.KafkaSecurity{TLS: &v1alpha1.KafkaTLS{Enabled: true, CAFile: caFile}}); err != nil {
			t.Errorf("with caFile: %v", err)
		}
		err := roundTrip(t, brokers, &v1alpha1.KafkaSecurity{TLS: &v1alpha1.KafkaTLS{Enabled: true}})
		if err == nil || !strings.Contains(err.Error(), "unknown authority") {
			t.Errorf("without caFile: %v; want a certificate signed by an unknown authority", err)
		}
		err = roundTrip(t, brokers, &v1alpha1.KafkaSecurity{TLS: &v1alpha1.KafkaTLS{Enabled: true, CAFile: caFile, ServerName: "kafka.example"}})
		if err == nil || !strings.Contains(err.Error(), "kafka.example") {
			t.Errorf("with serverName kafka.example: %v; want a certificate not valid for it", err)
		}
		if err := roundTrip(t, brokers, &v1alpha1.KafkaSecurity{TLS: &v1alpha1.KafkaTLS{Enabled: true, InsecureSkipVerify: true}}); err != nil {
			t.Errorf("insecureSkipVerify: %v", err)
		}
	})

	t.Run("client certificate", func(t *testing.T) {
		pool := x509.NewCertPool()
		pool.AddCert(ca.cert)
		brokers := fakeCluster(t, kfake.TLS(&tls.Config{
			Certificates: []tls.Certificate{serverCert},
			ClientAuth:   tls.RequireAndVerifyClientCert,
			ClientCAs:    pool,
			MinVersion:   tls.VersionTLS12,
		}))
		client := ca.issue(t, true)
		certFile, keyFile := filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key")
		writePEM(t, certFile, "CERTIFICATE", client.Certificate[0])
		key, err := x509.MarshalPKCS8PrivateKey(client.PrivateKey)
		if err != nil {
			t.Fatal(err)
		}
		writePEM(t, keyFile, "PRIVATE KEY", key)
		if err := roundTrip(t, brokers, &v1alpha1.KafkaSecurity{TLS: &v1alpha1.KafkaTLS{Enabled: true, CAFile: caFile, CertFile: certFile, KeyFile: keyFile}}); err != nil {
			t.Errorf("with a client certificate: %v", err)
		}
		err = roundTrip(t, brokers, &v1alpha1.KafkaSecurity{TLS: &v1alpha1.KafkaTLS{Enabled: true, CAFile: caFile}})
		if err == nil || !strings.Contains(err.Error(), "certificate required") {
			t.Errorf("without a client certificate: %v; want the broker to require one", err)
		}
	})
}

// TestClientOptionsErrors: a secret or certificate that cannot be read is an
// error naming the field and the variable or path, and never the secret.
func TestClientOptionsErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	notPEM := filepath.Join(dir, "not-pem")
	for p, content := range map[string]string{empty: "\n", notPEM: "hello"} {
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	missing := filepath.Join(dir, "missing")
	const secret = "do-not-print-me"
	t.Setenv("KAFKA_USER", secret)
	t.Setenv("KAFKA_EMPTY", "")
	plain := func(s v1alpha1.KafkaSASL) *v1alpha1.KafkaSecurity {
		s.Mechanism = v1alpha1.SASLPlain
		return &v1alpha1.KafkaSecurity{SASL: &s}
	}
	tests := []struct {
		name string
		sec  *v1alpha1.KafkaSecurity
		want []string
	}{
		{"unset variable", plain(v1alpha1.KafkaSASL{UsernameEnv: "KAFKA_USER", PasswordEnv: "SLUICE_TEST_UNSET"}), []string{"sasl.passwordEnv", "SLUICE_TEST_UNSET", "not set"}},
		{"empty variable", plain(v1alpha1.KafkaSASL{UsernameEnv: "KAFKA_EMPTY", PasswordEnv: "KAFKA_USER"}), []string{"sasl.usernameEnv", "KAFKA_EMPTY", "empty"}},
		{"missing file", plain(v1alpha1.KafkaSASL{UsernameEnv: "KAFKA_USER", PasswordFile: missing}), []string{"sasl.passwordFile", missing, "no such file"}},
		{"empty file", plain(v1alpha1.KafkaSASL{UsernameFile: empty, PasswordEnv: "KAFKA_USER"}), []string{"sasl.usernameFile", empty, "empty"}},
		{"env and file", plain(v1alpha1.KafkaSASL{UsernameEnv: "KAFKA_USER", PasswordEnv: "KAFKA_USER", PasswordFile: missing}), []string{"sasl: set only one of passwordEnv and passwordFile"}},
		{"no password", plain(v1alpha1.KafkaSASL{UsernameEnv: "KAFKA_USER"}), []string{"sasl: set passwordEnv or passwordFile"}},
		{"unknown mechanism", &v1alpha1.KafkaSecurity{SASL: &v1alpha1.KafkaSASL{Mechanism: "GSSAPI", UsernameEnv: "KAFKA_USER", PasswordEnv: "KAFKA_USER"}}, []string{"sasl.mechanism", "GSSAPI"}},
		{"missing CA", &v1alpha1.KafkaSecurity{TLS: &v1alpha1.KafkaTLS{Enabled: true, CAFile: missing}}, []string{"tls.caFile", missing}},
		{"CA not PEM", &v1alpha1.KafkaSecurity{TLS: &v1alpha1.KafkaTLS{Enabled: true, CAFile: notPEM}}, []string{"tls.caFile", notPEM, "no PEM certificate"}},
		{"certificate without key", &v1alpha1.KafkaSecurity{TLS: &v1alpha1.KafkaTLS{Enabled: true, CertFile: notPEM}}, []string{"certFile and keyFile go together"}},
		{"bad key pair", &v1alpha1.KafkaSecurity{TLS: &v1alpha1.KafkaTLS{Enabled: true, CertFile: notPEM, KeyFile: missing}}, []string{"tls.certFile", "tls.keyFile", notPEM, missing}},
	}
	for _, tt := range tests {
		_, err := kafka.ClientOptions([]string{"127.0.0.1:9092"}, tt.sec)
		if err == nil {
			t.Errorf("%s: no error", tt.name)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not contain %q", tt.name, err, w)
			}
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%s: error %q prints the secret", tt.name, err)
		}
	}
	// TLS settings without enabled: true are not used (validation reports
	// them), so they cannot fail.
	if _, err := kafka.ClientOptions([]string{"127.0.0.1:9092"}, &v1alpha1.KafkaSecurity{TLS: &v1alpha1.KafkaTLS{CAFile: missing}}); err != nil {
		t.Errorf("TLS not enabled: %v", err)
	}
}

// testCA is a certificate authority of a test's own.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "sluice test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key}
}

// issue makes a certificate for 127.0.0.1 (a server's) or for a client.
func (ca *testCA) issue(t *testing.T, client bool) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	if client {
		tmpl.Subject.CommonName = "sluice"
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		tmpl.IPAddresses = nil
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestSecurePipeline: the engine reads, writes and dead-letters through
// brokers that want TLS and SCRAM-SHA-512, with the password in a file and
// the username in the environment.
func TestSecurePipeline(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t)
	caFile := filepath.Join(dir, "ca.crt")
	writePEM(t, caFile, "CERTIFICATE", ca.cert.Raw)
	passwordFile := filepath.Join(dir, "password")
	if err := os.WriteFile(passwordFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KAFKA_USER", "sluice")
	brokers := fakeCluster(t, kfake.SeedTopics(2, "in", "out", "dlq"),
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{ca.issue(t, false)}, MinVersion: tls.VersionTLS12}),
		kfake.EnableSASL(), kfake.Superuser(string(v1alpha1.SASLScramSHA512), "sluice", "s3cret"))
	sec := v1alpha1.KafkaSecurity{
		TLS:  &v1alpha1.KafkaTLS{Enabled: true, CAFile: caFile},
		SASL: &v1alpha1.KafkaSASL{Mechanism: v1alpha1.SASLScramSHA512, UsernameEnv: "KAFKA_USER", PasswordFile: passwordFile},
	}
	opts, err := kafka.ClientOptions(brokers, &sec)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(append(opts, kgo.DefaultProduceTopic("in"))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	recs := []*kgo.Record{{Value: []byte(`{"id": 1}`)}, {Value: []byte(`{"id": "bad"}`)}, {Value: []byte(`{"id": 2}`)}}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	spec := &v1alpha1.StreamQuerySpec{
		Sources: []v1alpha1.Source{{
			Name:   "t",
			Kafka:  &v1alpha1.KafkaSource{Brokers: brokers, Topic: "in", KafkaSecurity: sec},
			Schema: []v1alpha1.Column{{Name: "id", Type: "int"}},
		}},
		Query: "SELECT id FROM t",
		Sink:  &v1alpha1.Sink{Kafka: &v1alpha1.KafkaSink{Brokers: brokers, Topic: "out", KafkaSecurity: sec}},
		ErrorPolicy: v1alpha1.ErrorPolicy{Strategy: v1alpha1.DeadLetter, DeadLetter: &v1alpha1.Sink{
			Kafka: &v1alpha1.KafkaSink{Brokers: brokers, Topic: "dlq", KafkaSecurity: sec},
		}},
	}
	_, stop := run(t, spec, "secure")
	for topic, n := range map[string]int{"out": 2, "dlq": 1} {
		got := 0
		consumeWith(t, opts, topic, func(*kgo.Record) bool { got++; return got == n })
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// consumeWith reads topic from the start with a client of opts, passing
// each record to f until f returns true.
func consumeWith(t *testing.T, opts []kgo.Opt, topic string, f func(*kgo.Record) bool) {
	t.Helper()
	cl, err := kgo.NewClient(append(opts, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s: %v", topic, ctx.Err())
		}
		for _, r := range fs.Records() {
			if f(r) {
				return
			}
		}
	}
}
