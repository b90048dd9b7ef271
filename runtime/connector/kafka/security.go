package kafka

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// ClientOptions returns the options that connect a client to brokers as sec
// says: the seed brokers, a TLS dialer and a SASL mechanism. It reads the
// certificates and the SASL credentials now, so that a missing environment
// variable or an unreadable file fails the engine as it starts, with an
// error that names the field and the variable or path, never the secret. A
// nil sec connects in plain text without authenticating.
func ClientOptions(brokers []string, sec *v1alpha1.KafkaSecurity) ([]kgo.Opt, error) {
	opts := []kgo.Opt{kgo.SeedBrokers(brokers...)}
	if sec == nil {
		return opts, nil
	}
	if t := sec.TLS; t != nil && t.Enabled {
		cfg, err := tlsConfig(t)
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(cfg))
	}
	if s := sec.SASL; s != nil {
		m, err := saslMechanism(s)
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.SASL(m))
	}
	return opts, nil
}

// tlsConfig builds the TLS configuration of t. Without a server name the
// client verifies each broker by the host of its address.
func tlsConfig(t *v1alpha1.KafkaTLS) (*tls.Config, error) {
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify, // asked for explicitly; documented as for tests only
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.caFile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.caFile: %s holds no PEM certificate", t.CAFile)
		}
		cfg.RootCAs = pool
	}
	switch {
	case t.CertFile != "" && t.KeyFile != "":
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls.certFile %s and tls.keyFile %s: %w", t.CertFile, t.KeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	case t.CertFile != "" || t.KeyFile != "":
		return nil, fmt.Errorf("tls: certFile and keyFile go together: set both for a client certificate, or neither")
	}
	return cfg, nil
}

// saslMechanism reads the credentials of s and returns its mechanism.
func saslMechanism(s *v1alpha1.KafkaSASL) (sasl.Mechanism, error) {
	user, err := readSecret("sasl", "username", s.UsernameEnv, s.UsernameFile)
	if err != nil {
		return nil, err
	}
	pass, err := readSecret("sasl", "password", s.PasswordEnv, s.PasswordFile)
	if err != nil {
		return nil, err
	}
	switch s.Mechanism {
	case v1alpha1.SASLPlain:
		return plain.Auth{User: user, Pass: pass}.AsMechanism(), nil
	case v1alpha1.SASLScramSHA256:
		return scram.Auth{User: user, Pass: pass}.AsSha256Mechanism(), nil
	case v1alpha1.SASLScramSHA512:
		return scram.Auth{User: user, Pass: pass}.AsSha512Mechanism(), nil
	}
	return nil, fmt.Errorf("sasl.mechanism: unknown mechanism %q (want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)", s.Mechanism)
}

// readSecret reads the secret name (e.g. password) of section (sasl) from
// the environment variable env or from the file at path, whichever is set.
// A file's trailing line break is not part of the secret. Errors name the
// field and the variable or path, never the secret.
func readSecret(section, name, env, path string) (string, error) {
	switch {
	case env != "" && path != "":
		return "", fmt.Errorf("%[1]s: set only one of %[2]sEnv and %[2]sFile", section, name)
	case env != "":
		v, ok := os.LookupEnv(env)
		if !ok {
			return "", fmt.Errorf("%s.%sEnv: environment variable %s is not set", section, name, env)
		}
		if v == "" {
			return "", fmt.Errorf("%s.%sEnv: environment variable %s is empty", section, name, env)
		}
		return v, nil
	case path != "":
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("%s.%sFile: %w", section, name, err)
		}
		v := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if v == "" {
			return "", fmt.Errorf("%s.%sFile: %s is empty", section, name, path)
		}
		return v, nil
	}
	return "", fmt.Errorf("%[1]s: set %[2]sEnv or %[2]sFile", section, name)
}
