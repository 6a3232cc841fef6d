// Package tlsconfig turns TLS settings, as Flume's and Kafka's keys name
// them, into tls.Configs: key and trust stores (PKCS12 or PEM), protocol
// ranges and cipher suites. It was avrorpc's; it is its own leaf so that
// packages that must not import the wire code (channel, through the Kafka
// client options) can build TLS too. It reads no configuration and must
// never import another flumed package.
package tlsconfig

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
)

// This file turns TLS settings, as Flume's TLS keys name them (FLUME.md
// §2.2, §2.10), into tls.Configs for a server (ServerTLSConfig: the avro
// source) and a client (ClientTLSConfig: the avro sink). It reads no
// configuration: the components read the keys (internal/tlskeys) and fill
// TLSOptions. Key stores are PKCS12 (what keytool makes by default since
// Java 9); JKS is refused with the keytool command that converts it. PEM
// files work too: CertFile/KeyFile for a certificate and key, CAFile (or a
// PEM truststore) for trusted CAs.

// TLSOptions are the TLS settings of a server or a client. Each field is
// named after the Flume key that sets it.
type TLSOptions struct {
	// Keystore (keystore, keystore-password, keystore-type) holds the
	// certificate chain and key: a server's, or a client's for mutual TLS.
	Keystore, KeystorePassword, KeystoreType string
	// CertFile and KeyFile (ssl-cert, ssl-key) are a PEM certificate chain
	// and key, instead of a keystore.
	CertFile, KeyFile string
	// Truststore (truststore, truststore-password, truststore-type) holds the
	// CAs to trust: a client's for the server, a server's for client
	// certificates. A client without one trusts the system's CAs.
	Truststore, TruststorePassword, TruststoreType string
	// CAFile (ssl-ca) is a PEM file of CAs to trust, instead of a truststore.
	CAFile string
	// The protocol and cipher suite lists (include-protocols, ...): Java's
	// protocol names and IANA suite names.
	IncludeProtocols, ExcludeProtocols       []string
	IncludeCipherSuites, ExcludeCipherSuites []string
	// ClientAuth (ssl-client-auth, servers): "none" (or ""), "optional" or
	// "required" client certificates.
	ClientAuth string
	// TrustAllCerts (trust-all-certs, clients) skips verifying the server.
	TrustAllCerts bool
	// SkipHostnameVerification (ssl-hostname-verification = false, clients)
	// verifies the server's chain but not its name.
	SkipHostnameVerification bool
}

// TLSProblem is a TLS setting that cannot be used, or that is ignored
// (Warning). Option is the Flume key of the setting.
type TLSProblem struct {
	Option  string
	Err     error
	Warning bool
}

func (p TLSProblem) Error() string { return p.Option + ": " + p.Err.Error() }

func problem(option string, err error) []TLSProblem {
	return []TLSProblem{{Option: option, Err: err}}
}

// store names a key or trust store and the option that named it.
type store struct {
	path, password, typ string
	key                 string // the option that named it, for messages
}

// errJKS explains what to do with a Java KeyStore.
func errJKS(path string) error {
	return fmt.Errorf("%s is a JKS keystore, which flumed does not read; convert it with "+
		"keytool -importkeystore -srckeystore %s -destkeystore %s.p12 -deststoretype PKCS12 "+
		"(or give PEM files with ssl-cert/ssl-key or ssl-ca)", path, path, strings.TrimSuffix(path, ".jks"))
}

func readStoreFile(s store) ([]byte, error) {
	switch strings.ToLower(s.typ) {
	case "", "pkcs12", "pem", "jks", "jceks":
	default:
		return nil, fmt.Errorf("%s-type %q: flumed reads PKCS12 and PEM", s.key, s.typ)
	}
	// Read first: a path that does not exist is that, whatever its type
	// (JKS is Flume's default type, so a missing file would otherwise get
	// the conversion hint).
	b, err := os.ReadFile(s.path)
	if err != nil {
		return nil, err
	}
	if t := strings.ToLower(s.typ); t == "jks" || t == "jceks" {
		return nil, errJKS(s.path)
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
func cipherSuites(include, exclude []string) ([]uint16, []TLSProblem) {
	if len(include) == 0 && len(exclude) == 0 {
		return nil, nil
	}
	var problems []TLSProblem
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
				problems = append(problems, TLSProblem{Option: key, Err: fmt.Errorf("unknown cipher suite %q", n)})
			case id>>8 == 0x13: // TLS_AES_*, TLS_CHACHA20_*: TLS 1.3
				problems = append(problems, TLSProblem{Option: key, Warning: true,
					Err: fmt.Errorf("%s is a TLS 1.3 suite, which Go always enables; ignored", n)})
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
		problems = append(problems, TLSProblem{Option: "include-cipher-suites", Err: errors.New("no TLS 1.2 cipher suite left enabled")})
	}
	return suites, problems
}

// commonTLS applies the protocol and cipher lists both sides share.
func commonTLS(o TLSOptions, cfg *tls.Config) []TLSProblem {
	var problems []TLSProblem
	lo, hi, err := protocolRange(o.IncludeProtocols, o.ExcludeProtocols)
	if err != nil {
		problems = problem("include-protocols", err)
	}
	cfg.MinVersion, cfg.MaxVersion = lo, hi
	suites, more := cipherSuites(o.IncludeCipherSuites, o.ExcludeCipherSuites)
	cfg.CipherSuites = suites
	return append(problems, more...)
}

// keyPair loads the certificate: Keystore or CertFile/KeyFile.
func keyPair(o TLSOptions, required bool) (*tls.Certificate, []TLSProblem) {
	switch {
	case o.CertFile != "" || o.KeyFile != "":
		if o.CertFile == "" || o.KeyFile == "" {
			return nil, problem("ssl-cert", errors.New("ssl-cert and ssl-key go together"))
		}
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, problem("ssl-cert", fmt.Errorf("load certificate: %w", err))
		}
		return &cert, nil
	case o.Keystore != "":
		cert, err := loadKeyPair(store{path: o.Keystore, password: o.KeystorePassword, typ: o.KeystoreType, key: "keystore"})
		if err != nil {
			return nil, problem("keystore", fmt.Errorf("load keystore: %w", err))
		}
		return &cert, nil
	case required:
		return nil, problem("keystore", errors.New("ssl is true but neither keystore nor ssl-cert/ssl-key is set"))
	}
	return nil, nil
}

// trustPool loads the trusted CAs: CAFile, else Truststore. Nil means none
// set.
func trustPool(o TLSOptions) (*x509.CertPool, []TLSProblem) {
	ts := store{path: o.Truststore, password: o.TruststorePassword, typ: o.TruststoreType, key: "truststore"}
	if o.CAFile != "" {
		ts = store{path: o.CAFile, typ: "pem", key: "ssl-ca"}
	}
	if ts.path == "" {
		return nil, nil
	}
	pool, err := loadPool(ts)
	if err != nil {
		return nil, problem(ts.key, fmt.Errorf("load trusted certificates: %w", err))
	}
	return pool, nil
}

// ServerTLSConfig builds a server's TLS configuration: its certificate
// (required), the protocol and cipher lists, and mutual TLS (ClientAuth)
// with the client CAs in the truststore or CAFile. Every setting is tried,
// so every problem is returned at once; the configuration must not be used
// when one of them is not a warning (never serve plain text then).
func ServerTLSConfig(o TLSOptions) (*tls.Config, []TLSProblem) {
	cfg := &tls.Config{}
	problems := commonTLS(o, cfg)
	cert, certProblems := keyPair(o, true)
	pool, poolProblems := trustPool(o)
	problems = append(append(problems, certProblems...), poolProblems...)
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	cfg.ClientCAs = pool
	switch strings.ToLower(o.ClientAuth) {
	case "", "none":
	case "optional":
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	case "required":
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	default:
		problems = append(problems, problem("ssl-client-auth", fmt.Errorf("%q is not none, optional or required", o.ClientAuth))...)
	}
	if cfg.ClientAuth != tls.NoClientCert && pool == nil && len(poolProblems) == 0 {
		problems = append(problems, problem("ssl-client-auth", errors.New("client certificates need a truststore or ssl-ca to verify them"))...)
	}
	return cfg, problems
}

// ClientTLSConfig builds a client's TLS configuration: the CAs it trusts
// (the system's without a truststore or CAFile), the protocol and cipher
// lists, TrustAllCerts, SkipHostnameVerification, and a client certificate
// for mutual TLS when one is given. The configuration must not be used when
// a problem is not a warning.
func ClientTLSConfig(o TLSOptions) (*tls.Config, []TLSProblem) {
	cfg := &tls.Config{}
	problems := commonTLS(o, cfg)
	cert, certProblems := keyPair(o, false)
	pool, poolProblems := trustPool(o)
	problems = append(append(problems, certProblems...), poolProblems...)
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	cfg.RootCAs = pool
	switch {
	case o.TrustAllCerts:
		cfg.InsecureSkipVerify = true
	case o.SkipHostnameVerification:
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
	return cfg, problems
}
