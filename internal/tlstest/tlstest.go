// Package tlstest makes throwaway PEM keys for tests that speak TLS with a
// real client or server we did not write (Python's ssl, curl, openssl): a
// CA and certificates it signed for 127.0.0.1 and localhost, written as
// files in the test's temp dir. It is test support: only _test.go files may
// import it, and it must never be used to make keys anything trusts for
// longer than the test runs (they expire within the hour).
package tlstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a certificate authority whose certificate is at File (PEM).
type CA struct {
	Dir  string
	File string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// Pair is a certificate the CA signed: Cert (chain, PEM), Key (PKCS8 PEM)
// and Both (certificate then key in one file, what Python's certfile and a
// flumed keystore of type PEM take).
type Pair struct {
	Cert, Key, Both string
}

// NewCA makes a CA in a fresh temp dir.
func NewCA(t testing.TB) *CA {
	t.Helper()
	key := genKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "flumed test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &CA{Dir: t.TempDir(), cert: cert, key: key}
	ca.File = ca.write(t, "ca.pem", pemBlock("CERTIFICATE", der))
	return ca
}

// Issue signs a server certificate (also good for client auth) for
// 127.0.0.1 and localhost and writes it as name.pem, name.key and
// name-both.pem.
func (ca *CA) Issue(t testing.TB, name string) Pair {
	t.Helper()
	key := genKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:    []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	c, k := pemBlock("CERTIFICATE", der), pemBlock("PRIVATE KEY", keyDER)
	return Pair{
		Cert: ca.write(t, name+".pem", c),
		Key:  ca.write(t, name+".key", k),
		Both: ca.write(t, name+"-both.pem", append(append([]byte{}, c...), k...)),
	}
}

func genKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func (ca *CA) write(t testing.TB, name string, b []byte) string {
	t.Helper()
	path := filepath.Join(ca.Dir, name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
