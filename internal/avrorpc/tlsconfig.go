package avrorpc

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/flumed/flumed/internal/config"
)

// This file turns Flume's TLS keys (FLUME.md §2.2, §2.10) into tls.Configs,
// for the avro source (ServerTLS) and the avro sink (ClientTLS). Key stores
// are PKCS12 (what keytool makes by default since Java 9); JKS is refused
// with the keytool command that converts it. flumed also takes PEM files:
// ssl-cert/ssl-key for a certificate and key, ssl-ca (or a PEM truststore) for
// trusted CAs. Like Flume, a missing keystore or truststore falls back to the
// FLUME_SSL_KEYSTORE_* / FLUME_SSL_TRUSTSTORE_* environment variables.

// store names a key or trust store and where its settings came from.
type store struct {
	path, password, typ string
	key                 string // the config key that named it, for messages
}

// readStore reads prefix (keystore or truststore), -password and -type, with
// the environment fallback.
func readStore(c *config.Context, prefix, env string) store {
	s := store{
		path:     c.String(prefix, ""),
		password: c.String(prefix+"-password", ""),
		typ:      c.String(prefix+"-type", ""),
		key:      prefix,
	}
	if s.path == "" {
		s.path = os.Getenv(env + "_PATH")
		if s.password == "" {
			s.password = os.Getenv(env + "_PASSWORD")
		}
		if s.typ == "" {
			s.typ = os.Getenv(env + "_TYPE")
		}
	}
	return s
}

// errJKS explains what to do with a Java KeyStore.
func errJKS(path string) error {
	return fmt.Errorf("%s is a JKS keystore, which flumed does not read; convert it with "+
		"keytool -importkeystore -srckeystore %s -destkeystore %s.p12 -deststoretype PKCS12 "+
		"(or give PEM files with ssl-cert/ssl-key or ssl-ca)", path, path, strings.TrimSuffix(path, ".jks"))
}

func readStoreFile(s store) ([]byte, error) {
	switch strings.ToLower(s.typ) {
	case "", "pkcs12", "pem":
	case "jks", "jceks":
		return nil, errJKS(s.path)
	default:
		return nil, fmt.Errorf("%s-type %q: flumed reads PKCS12 and PEM", s.key, s.typ)
	}
	b, err := os.ReadFile(s.path)
	if err != nil {
		return nil, err
	}
	if bytes.HasPrefix(b, []byte{0xfe, 0xed, 0xfe, 0xed}) || bytes.HasPrefix(b, []byte{0xce, 0xce, 0xce, 0xce}) {
		return nil, errJKS(s.path)
	}
	return b, nil
}

func isPEM(s store, b []byte) bool {
	return strings.EqualFold(s.typ, "pem") || bytes.Contains(b, []byte("-----BEGIN"))
}

// loadKeyPair loads a certificate chain and private key from a PKCS12 or PEM
// key store.
func loadKeyPair(s store) (tls.Certificate, error) {
	b, err := readStoreFile(s)
	if err != nil {
		return tls.Certificate{}, err
	}
	if isPEM(s, b) {
		return tls.X509KeyPair(b, b)
	}
	key, leaf, cas, err := pkcs12.DecodeChain(b, s.password)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("read PKCS12 %s: %w", s.path, err)
	}
	cert := tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}
	for _, ca := range cas {
		cert.Certificate = append(cert.Certificate, ca.Raw)
	}
	return cert, nil
}

// loadPool loads trusted certificates from a PKCS12 trust store (or a key
// store, whose certificates are then trusted) or a PEM file.
func loadPool(s store) (*x509.CertPool, error) {
	b, err := readStoreFile(s)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if isPEM(s, b) {
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("%s holds no PEM certificate", s.path)
		}
		return pool, nil
	}
	certs, err := pkcs12.DecodeTrustStore(b, s.password)
	if err != nil {
		_, leaf, cas, err2 := pkcs12.DecodeChain(b, s.password)
		if err2 != nil {
			return nil, fmt.Errorf("read PKCS12 %s: %w", s.path, err)
		}
		certs = append([]*x509.Certificate{leaf}, cas...)
	}
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

// tlsVersions are the protocol names Java uses, in order.
var tlsVersions = []struct {
	name string
	v    uint16
}{{"TLSv1", tls.VersionTLS10}, {"TLSv1.1", tls.VersionTLS11}, {"TLSv1.2", tls.VersionTLS12}, {"TLSv1.3", tls.VersionTLS13}}

// protocolRange turns include-protocols/exclude-protocols into a version
// range. Without include-protocols the base set is TLSv1.2 and TLSv1.3 (Go's
// defaults); TLSv1 and TLSv1.1 are enabled only when included. SSLv3 and
// SSLv2Hello are never enabled and may be named. The enabled set must be
// contiguous, since crypto/tls takes a range.
func protocolRange(include, exclude []string) (lo, hi uint16, err error) {
	enabled := map[uint16]bool{tls.VersionTLS12: true, tls.VersionTLS13: true}
	lookup := func(name string) (uint16, bool, error) {
		for _, tv := range tlsVersions {
			if strings.EqualFold(name, tv.name) {
				return tv.v, true, nil
			}
		}
		if strings.EqualFold(name, "SSLv3") || strings.EqualFold(name, "SSLv2Hello") {
			return 0, false, nil
		}
		return 0, false, fmt.Errorf("unknown protocol %q (want TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3)", name)
	}
	if len(include) > 0 {
		enabled = map[uint16]bool{}
		for _, n := range include {
			v, ok, err := lookup(n)
			if err != nil {
				return 0, 0, err
			}
			if ok {
				enabled[v] = true
			}
		}
	}
	for _, n := range exclude {
		v, ok, err := lookup(n)
		if err != nil {
			return 0, 0, err
		}
		if ok {
			delete(enabled, v)
		}
	}
	for _, tv := range tlsVersions {
		if !enabled[tv.v] {
			if lo != 0 && hi == 0 {
				hi = tv.v - 1
			}
			continue
		}
		if lo == 0 {
			lo = tv.v
		} else if hi != 0 {
			return 0, 0, errors.New("the enabled protocols are not a contiguous range")
		}
	}
	if lo == 0 {
		return 0, 0, errors.New("no protocol left enabled")
	}
	if hi == 0 {
		hi = tls.VersionTLS13
	}
	return lo, hi, nil
}

// cipherSuites turns include/exclude-cipher-suites (IANA names, which Java
// uses too) into crypto/tls suite IDs; nil means Go's defaults. TLS 1.3 suites
// cannot be restricted in crypto/tls: naming them only warns.
func cipherSuites(c *config.Context, include, exclude []string) ([]uint16, bool) {
	if len(include) == 0 && len(exclude) == 0 {
		return nil, true
	}
	ok := true
	byName := map[string]uint16{}
	var defaults []uint16
	for _, s := range tls.CipherSuites() {
		byName[s.Name] = s.ID
		if !slices.Contains(s.SupportedVersions, tls.VersionTLS13) {
			defaults = append(defaults, s.ID)
		}
	}
	for _, s := range tls.InsecureCipherSuites() {
		byName[s.Name] = s.ID
	}
	resolve := func(key string, names []string) []uint16 {
		var out []uint16
		for _, n := range names {
			id, known := byName[n]
			switch {
			case !known:
				c.Errorf(key, "unknown cipher suite %q", n)
				ok = false
			case id>>8 == 0x13: // TLS_AES_*, TLS_CHACHA20_*: TLS 1.3
				c.Warnf(key, "%s is a TLS 1.3 suite, which Go always enables; ignored", n)
			default:
				out = append(out, id)
			}
		}
		return out
	}
	suites := defaults
	if len(include) > 0 {
		suites = resolve("include-cipher-suites", include)
	}
	drop := resolve("exclude-cipher-suites", exclude)
	suites = slices.DeleteFunc(slices.Clone(suites), func(id uint16) bool { return slices.Contains(drop, id) })
	if len(suites) == 0 {
		c.Errorf("include-cipher-suites", "no TLS 1.2 cipher suite left enabled")
		ok = false
	}
	return suites, ok
}

// splitList splits a Flume list value (space- or comma-separated).
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' })
}

// commonTLS reads the protocol and cipher keys both sides share; false means
// a problem was recorded.
func commonTLS(c *config.Context, cfg *tls.Config) bool {
	inc := splitList(c.String("include-protocols", ""))
	exc := splitList(c.String("exclude-protocols", ""))
	lo, hi, err := protocolRange(inc, exc)
	if err != nil {
		c.Errorf("include-protocols", "%v", err)
	}
	cfg.MinVersion, cfg.MaxVersion = lo, hi
	var ok bool
	cfg.CipherSuites, ok = cipherSuites(c,
		splitList(c.String("include-cipher-suites", "")),
		splitList(c.String("exclude-cipher-suites", "")))
	return err == nil && ok
}

// keyPair reads the certificate keys: keystore* or ssl-cert/ssl-key.
func keyPair(c *config.Context, required bool) (*tls.Certificate, bool) {
	ks := readStore(c, "keystore", "FLUME_SSL_KEYSTORE")
	certFile, keyFile := c.String("ssl-cert", ""), c.String("ssl-key", "")
	switch {
	case certFile != "" || keyFile != "":
		if certFile == "" || keyFile == "" {
			c.Errorf("ssl-cert", "ssl-cert and ssl-key go together")
			return nil, false
		}
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			c.Errorf("ssl-cert", "load certificate: %v", err)
			return nil, false
		}
		return &cert, true
	case ks.path != "":
		cert, err := loadKeyPair(ks)
		if err != nil {
			c.Errorf("keystore", "load keystore: %v", err)
			return nil, false
		}
		return &cert, true
	case required:
		c.Errorf("keystore", "ssl is true but neither keystore nor ssl-cert/ssl-key is set")
		return nil, false
	}
	return nil, true
}

// trustPool reads the trusted CAs: truststore* or ssl-ca. Nil means none set.
func trustPool(c *config.Context) (*x509.CertPool, bool) {
	ts := readStore(c, "truststore", "FLUME_SSL_TRUSTSTORE")
	if ca := c.String("ssl-ca", ""); ca != "" {
		ts = store{path: ca, typ: "pem", key: "ssl-ca"}
	}
	if ts.path == "" {
		return nil, true
	}
	pool, err := loadPool(ts)
	if err != nil {
		c.Errorf(ts.key, "load trusted certificates: %v", err)
		return nil, false
	}
	return pool, true
}

// ServerTLS reads the avro source's TLS keys: ssl, keystore, keystore-password,
// keystore-type, ssl-cert, ssl-key, the protocol and cipher lists, and
// flumed's mutual TLS: ssl-client-auth (none, optional, required) with the
// client CAs in truststore* or ssl-ca. It returns nil when ssl is false; ok
// is false when a problem was recorded in c (never serve plain text then).
// Every key is read, so one pass reports every problem.
func ServerTLS(c *config.Context) (cfg *tls.Config, ok bool) {
	on := c.Bool("ssl", false)
	auth := c.OneOf("ssl-client-auth", "none", "none", "optional", "required")
	if !on {
		ignoreTLSKeys(c)
		return nil, true
	}
	cfg = &tls.Config{}
	ok = commonTLS(c, cfg)
	cert, certOK := keyPair(c, true)
	pool, poolOK := trustPool(c)
	if certOK && cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	cfg.ClientCAs = pool
	switch auth {
	case "optional":
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	case "required":
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	if auth != "none" && pool == nil && poolOK {
		c.Errorf("ssl-client-auth", "client certificates need a truststore or ssl-ca to verify them")
		ok = false
	}
	return cfg, ok && certOK && poolOK
}

// ignoreTLSKeys reads (and so accepts) the TLS keys without loading files:
// Flume ignores them when ssl is off.
func ignoreTLSKeys(c *config.Context) {
	for _, k := range []string{"keystore", "keystore-password", "keystore-type", "ssl-cert", "ssl-key",
		"truststore", "truststore-password", "truststore-type", "ssl-ca",
		"include-protocols", "exclude-protocols", "include-cipher-suites", "exclude-cipher-suites"} {
		c.Has(k)
	}
}

// ClientTLS reads the avro sink's TLS keys: ssl, trust-all-certs, truststore,
// truststore-password, truststore-type (or a PEM ssl-ca), the protocol and
// cipher lists, and flumed's ssl-hostname-verification (default true) and
// client certificate for mutual TLS (keystore* or ssl-cert/ssl-key). Without a
// truststore the system's CAs are trusted. It returns nil when ssl is false;
// ok is false when a problem was recorded in c.
func ClientTLS(c *config.Context) (cfg *tls.Config, ok bool) {
	on := c.Bool("ssl", false)
	trustAll := c.Bool("trust-all-certs", false)
	verifyHost := c.Bool("ssl-hostname-verification", true)
	if !on {
		ignoreTLSKeys(c)
		return nil, true
	}
	cfg = &tls.Config{}
	ok = commonTLS(c, cfg)
	cert, certOK := keyPair(c, false)
	pool, poolOK := trustPool(c)
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	cfg.RootCAs = pool
	switch {
	case trustAll:
		cfg.InsecureSkipVerify = true
	case !verifyHost:
		// Verify the chain but not the name: crypto/tls can only skip both,
		// so verify the chain ourselves.
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("server sent no certificate")
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter})
			return err
		}
	}
	return cfg, ok && certOK && poolOK
}
