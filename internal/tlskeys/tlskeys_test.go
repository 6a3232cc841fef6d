package tlskeys

// Contract: a component that includes Server or Client in its spec gets
// Flume's TLS keys checked (a misspelt key has a "did you mean" among them)
// and read into avrorpc's options: with ssl off nothing is loaded and no key
// is a problem; with ssl on, what cannot be used is recorded at the key at
// fault, and ok is false so the component never falls back to plain text.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flumed/flumed/internal/config"
)

var (
	serverSpec = &config.Spec{Type: "server", Keys: []config.Decl{Server}}
	clientSpec = &config.Spec{Type: "client", Keys: []config.Decl{Client}}
)

func checked(spec *config.Spec, kv map[string]string) *config.Context {
	c := config.FromMap("a1.x.k1.", kv)
	c.Check(spec)
	return c
}

func TestWithSSLOffTheKeysAreAcceptedAndNothingIsLoaded(t *testing.T) {
	c := checked(serverSpec, map[string]string{"keystore": "/nonexistent.p12", "keystore-password": "pw", "include-protocols": "TLSv9"})
	cfg, ok := ServerConfig(c)
	if cfg != nil || !ok || c.Problems().Err() != nil {
		t.Fatalf("cfg %v ok %v problems %v", cfg, ok, c.Problems().Err())
	}
	c = checked(clientSpec, map[string]string{"truststore": "/nonexistent.p12", "trust-all-certs": "true"})
	if cfg, ok := ClientConfig(c); cfg != nil || !ok || c.Problems().Err() != nil {
		t.Fatalf("cfg %v ok %v problems %v", cfg, ok, c.Problems().Err())
	}
}

func TestProblemsAreRecordedAtTheKeyAtFault(t *testing.T) {
	dir := t.TempDir()
	jks := filepath.Join(dir, "keystore.jks")
	os.WriteFile(jks, []byte{0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2}, 0o600)
	cases := []struct {
		name string
		kv   map[string]string
		want string
	}{
		{"a JKS keystore", map[string]string{"ssl": "true", "keystore": jks, "keystore-password": "x"},
			"a1.x.k1.keystore: load keystore: " + jks + " is a JKS keystore"},
		{"ssl without a certificate", map[string]string{"ssl": "true"},
			"a1.x.k1.keystore: ssl is true but neither keystore nor ssl-cert/ssl-key is set"},
		{"an unknown protocol", map[string]string{"ssl": "true", "keystore": jks, "include-protocols": "TLSv9"},
			`a1.x.k1.include-protocols: unknown protocol "TLSv9"`},
		{"client auth without CAs", map[string]string{"ssl": "true", "ssl-client-auth": "required", "ssl-cert": "c.pem"},
			"a1.x.k1.ssl-client-auth: client certificates need a truststore or ssl-ca"},
		{"a bad ssl-client-auth is a type error", map[string]string{"ssl-client-auth": "always"},
			`a1.x.k1.ssl-client-auth: must be one of none, optional, required, not "always"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := checked(serverSpec, tc.kv)
			_, ok := ServerConfig(c)
			err := c.Problems().Err()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("problems %v, want one containing %q", err, tc.want)
			}
			if ok && tc.kv["ssl"] == "true" {
				t.Error("ok with a problem")
			}
		})
	}
}

func TestAMisspeltTLSKeyGetsADidYouMean(t *testing.T) {
	c := checked(clientSpec, map[string]string{"truststore-pasword": "secret"})
	want := "a1.x.k1.truststore-pasword: unknown key (did you mean truststore-password?)"
	if err := c.Problems().Err(); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("problems %v, want %q", err, want)
	}
}

func TestAClientConfigurationFromPEMFiles(t *testing.T) {
	ca := writeCA(t)
	c := checked(clientSpec, map[string]string{"ssl": "true", "ssl-ca": ca, "ssl-hostname-verification": "false",
		"exclude-protocols": "SSLv3, TLSv1.2"})
	cfg, ok := ClientConfig(c)
	if !ok || c.Problems().Err() != nil {
		t.Fatalf("ok %v problems %v", ok, c.Problems().Err())
	}
	if cfg.RootCAs == nil || !cfg.InsecureSkipVerify || cfg.VerifyConnection == nil || cfg.MinVersion != tls.VersionTLS13 {
		t.Errorf("config %+v", cfg)
	}
}

// writeCA writes a self-signed CA certificate as PEM and returns its path.
func writeCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
