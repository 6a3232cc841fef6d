package avrorpc

// Contract: TLS options (as Flume's TLS keys name them) build working
// configurations from PKCS12 key and trust stores or PEM files generated
// here; a client verifies the server's chain and host name by default, and
// fails against a wrong CA or a wrong name; mutual TLS refuses clients
// without a trusted certificate; deflate and TLS together work in Flume
// 1.10's layering; JKS stores and unknown protocol names are problems that
// say what to do, naming the key at fault. (Reading the keys into options is
// internal/tlskeys'.)

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

	"software.sslmate.com/src/go-pkcs12"
)

// pki is a CA and certificates it signed, written as files in a temp dir.
type pki struct {
	dir    string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	caFile string // PEM
}

func newPKI(t *testing.T, name string) *pki {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	p := &pki{dir: t.TempDir(), ca: ca, caKey: key}
	p.caFile = p.write(t, name+"-ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	return p
}

func (p *pki) write(t *testing.T, name string, b []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// issue signs a certificate for hosts and returns PEM cert/key files and a
// PKCS12 key store (password "secret").
func (p *pki) issue(t *testing.T, name string, client bool, hosts ...string) (certFile, keyFile, p12 string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile = p.write(t, name+".pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	keyFile = p.write(t, name+".key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	pfx, err := pkcs12.Modern.Encode(key, cert, []*x509.Certificate{p.ca}, "secret")
	if err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, p.write(t, name+".p12", pfx)
}

// truststore writes the CA as a PKCS12 trust store (password "secret").
func (p *pki) truststore(t *testing.T) string {
	pfx, err := pkcs12.Modern.EncodeTrustStore([]*x509.Certificate{p.ca}, "secret")
	if err != nil {
		t.Fatal(err)
	}
	return p.write(t, "truststore.p12", pfx)
}

func serverTLS(t *testing.T, o TLSOptions) *tls.Config {
	t.Helper()
	cfg, problems := ServerTLSConfig(o)
	if len(problems) > 0 {
		t.Fatalf("server TLS config: %v", problems)
	}
	return cfg
}

func clientTLS(t *testing.T, o TLSOptions) *tls.Config {
	t.Helper()
	cfg, problems := ClientTLSConfig(o)
	if len(problems) > 0 {
		t.Fatalf("client TLS config: %v", problems)
	}
	return cfg
}

func tryAppend(addr string, o ClientOptions) error {
	ctx := context.Background()
	c, err := Dial(ctx, addr, o)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.AppendBatch(ctx, events(0, 2))
}

func TestTLSRoundTrips(t *testing.T) {
	good := newPKI(t, "good")
	other := newPKI(t, "other")
	srvCert, srvKey, srvP12 := good.issue(t, "server", false, "127.0.0.1", "localhost")
	_, _, wrongNameP12 := good.issue(t, "elsewhere", false, "elsewhere.example")
	cliCert, cliKey, _ := good.issue(t, "client", true)
	_, _, strangerP12 := other.issue(t, "stranger", true)

	pkcs12Server := TLSOptions{Keystore: srvP12, KeystorePassword: "secret", KeystoreType: "PKCS12"}
	trustGood := TLSOptions{Truststore: good.truststore(t), TruststorePassword: "secret", TruststoreType: "PKCS12"}
	cases := []struct {
		name    string
		server  TLSOptions
		client  TLSOptions
		deflate bool
		wantErr string
	}{
		{name: "server certificate from PKCS12, client trusts a PKCS12 truststore", server: pkcs12Server, client: trustGood},
		{name: "server certificate from PEM, client trusts a PEM CA",
			server: TLSOptions{CertFile: srvCert, KeyFile: srvKey},
			client: TLSOptions{CAFile: good.caFile}},
		{name: "deflate under TLS", server: pkcs12Server, client: trustGood, deflate: true},
		{name: "a client trusting another CA is refused", server: pkcs12Server,
			client: TLSOptions{CAFile: other.caFile}, wantErr: "certificate"},
		{name: "trust-all-certs accepts any CA", server: pkcs12Server,
			client: TLSOptions{CAFile: other.caFile, TrustAllCerts: true}},
		{name: "a certificate for another host name is refused",
			server: TLSOptions{Keystore: wrongNameP12, KeystorePassword: "secret"},
			client: TLSOptions{CAFile: good.caFile}, wantErr: "certificate"},
		{name: "hostname verification can be turned off, the chain is still checked",
			server: TLSOptions{Keystore: wrongNameP12, KeystorePassword: "secret"},
			client: TLSOptions{CAFile: good.caFile, SkipHostnameVerification: true}},
		{name: "mutual TLS accepts a client certificate from the trusted CA",
			server: TLSOptions{Keystore: srvP12, KeystorePassword: "secret", ClientAuth: "required", CAFile: good.caFile},
			client: TLSOptions{CAFile: good.caFile, CertFile: cliCert, KeyFile: cliKey}},
		{name: "mutual TLS refuses a client without a certificate",
			server: TLSOptions{Keystore: srvP12, KeystorePassword: "secret", ClientAuth: "required", CAFile: good.caFile},
			client: TLSOptions{CAFile: good.caFile}, wantErr: "certificate"},
		{name: "mutual TLS refuses a client certificate from another CA",
			server: TLSOptions{Keystore: srvP12, KeystorePassword: "secret", ClientAuth: "required", CAFile: good.caFile},
			client: TLSOptions{CAFile: good.caFile, Keystore: strangerP12, KeystorePassword: "secret"}, wantErr: "certificate"},
		{name: "TLS 1.3 only on both sides", server: TLSOptions{Keystore: srvP12, KeystorePassword: "secret", IncludeProtocols: []string{"TLSv1.3"}},
			client: TLSOptions{CAFile: good.caFile, ExcludeProtocols: []string{"SSLv3", "TLSv1.2"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			_, addr := startServer(t, rec, ServerOptions{TLS: serverTLS(t, tc.server), Deflate: tc.deflate, ReadTimeout: 2 * time.Second})
			err := tryAppend(addr, ClientOptions{TLS: clientTLS(t, tc.client), Deflate: tc.deflate, DeflateLevel: 6, RequestTimeout: 2 * time.Second})
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("append: %v", err)
				}
				if !sameCalls(rec.got(), []recordedCall{{"appendBatch", events(0, 2)}}) {
					t.Fatalf("server got %+v", rec.got())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.wantErr)
			}
			if len(rec.got()) != 0 {
				t.Fatal("events delivered over a refused connection")
			}
		})
	}
}

func TestTLSConfigurationProblemsAreReported(t *testing.T) {
	dir := t.TempDir()
	jks := filepath.Join(dir, "keystore.jks")
	os.WriteFile(jks, []byte{0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2}, 0o600)
	cases := []struct {
		name   string
		o      TLSOptions
		option string
		want   string
	}{
		{"a JKS keystore is refused with the keytool command", TLSOptions{Keystore: jks, KeystorePassword: "x"}, "keystore", "keytool -importkeystore"},
		{"keystore-type JKS is refused the same way", TLSOptions{Keystore: jks, KeystoreType: "JKS"}, "keystore", "keytool"},
		{"a missing JKS path is a missing file, not a conversion", TLSOptions{Keystore: "/no/such/keystore.jks", KeystoreType: "JKS"}, "keystore", "no such file or directory"},
		{"ssl without a certificate", TLSOptions{}, "keystore", "neither keystore nor ssl-cert"},
		{"an unknown protocol", TLSOptions{Keystore: jks, IncludeProtocols: []string{"TLSv9"}}, "include-protocols", "unknown protocol"},
		{"client auth without CAs", TLSOptions{ClientAuth: "required"}, "keystore", "neither keystore"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, problems := ServerTLSConfig(tc.o)
			found := false
			for _, p := range problems {
				found = found || (!p.Warning && p.Option == tc.option && strings.Contains(p.Error(), tc.want))
			}
			if !found {
				t.Fatalf("problems %v, want one at %s mentioning %q", problems, tc.option, tc.want)
			}
		})
	}
}
