// Package tlskeys declares Flume's TLS keys once, as two config key groups,
// Server and Client, that every component serving or dialing TLS includes in
// its spec (the avro source and sink; later thrift and http), and reads them
// into the avrorpc.TLSOptions a tls.Config is built from. Problems are
// recorded in the component's context at the key at fault. A spec includes
// one of the two: they share key names.
//
// It must never hold wire code or read files itself (avrorpc builds the
// tls.Config), and never echo a password: the config package masks values
// of keys that look secret.
package tlskeys

import (
	"crypto/tls"
	"os"

	"github.com/flumed/flumed/internal/avrorpc"
	"github.com/flumed/flumed/internal/config"
)

// The keys both sides have with the same meaning.
var (
	ssl     = config.Bool("ssl", false, "use TLS")
	sslCert = config.String("ssl-cert", "", "a PEM certificate chain, instead of a keystore (with ssl-key)").Flumed()
	sslKey  = config.String("ssl-key", "", "the PEM private key of ssl-cert").Flumed()
	sslCA   = config.String("ssl-ca", "", "a PEM file of CAs to trust, instead of a truststore").Flumed()

	includeProtocols = config.List("include-protocols", " ,", "",
		"the protocols to enable (TLSv1, TLSv1.1, TLSv1.2, TLSv1.3); TLSv1.2 and TLSv1.3 when unset")
	excludeProtocols = config.List("exclude-protocols", " ,", "",
		"protocols to disable; SSLv3 is never enabled")
	includeCipherSuites = config.List("include-cipher-suites", " ,", "",
		"the TLS 1.2 cipher suites to enable (IANA names); Go's defaults when unset")
	excludeCipherSuites = config.List("exclude-cipher-suites", " ,", "",
		"TLS 1.2 cipher suites to disable (TLS 1.3 suites cannot be, and get a warning)")
)

// stores are the keystore and truststore keys of one side: Flume has a
// keystore on the server and a truststore on the client; flumed adds the
// other on each side (mutual TLS), so the same names differ in status.
type stores struct {
	keystore, keystorePassword, keystoreType       config.Key[string]
	truststore, truststorePassword, truststoreType config.Key[string]
}

func newStores(flumedKeystore, flumedTruststore bool) stores {
	mark := func(k config.Key[string], flumed bool) config.Key[string] {
		if flumed {
			return k.Flumed()
		}
		return k
	}
	return stores{
		keystore: mark(config.String("keystore", "",
			"a PKCS12 (or PEM) store with the certificate chain and key; FLUME_SSL_KEYSTORE_PATH when unset"), flumedKeystore),
		keystorePassword: mark(config.String("keystore-password", "",
			"the keystore's password; FLUME_SSL_KEYSTORE_PASSWORD when unset"), flumedKeystore),
		keystoreType: mark(config.String("keystore-type", "",
			"PKCS12 or PEM (JKS is refused with the keytool command that converts it); FLUME_SSL_KEYSTORE_TYPE when unset"), flumedKeystore),
		truststore: mark(config.String("truststore", "",
			"a PKCS12 (or PEM) store of CAs to trust; FLUME_SSL_TRUSTSTORE_PATH when unset"), flumedTruststore),
		truststorePassword: mark(config.String("truststore-password", "",
			"the truststore's password; FLUME_SSL_TRUSTSTORE_PASSWORD when unset"), flumedTruststore),
		truststoreType: mark(config.String("truststore-type", "",
			"PKCS12 or PEM; FLUME_SSL_TRUSTSTORE_TYPE when unset"), flumedTruststore),
	}
}

func (s stores) decls() []config.Decl {
	return []config.Decl{s.keystore, s.keystorePassword, s.keystoreType, s.truststore, s.truststorePassword, s.truststoreType}
}

var (
	serverStores = newStores(false, true)
	clientAuth   = config.OneOf("ssl-client-auth", "none", []string{"none", "optional", "required"},
		"client certificates: none, optional or required (verified against the truststore or ssl-ca)").Flumed()

	clientStores  = newStores(true, false)
	trustAllCerts = config.Bool("trust-all-certs", false, "accept any server certificate (no verification at all)")
	verifyHost    = config.Bool("ssl-hostname-verification", true,
		"check that the server's certificate names the host (the chain is checked either way)").Flumed()
)

// Server is the TLS keys of a component that accepts connections (the avro
// source; later thrift and http).
var Server = &config.Group{
	Name: "TLS server",
	Doc:  "the TLS keys of a component that accepts connections; the key stores are read when ssl is true",
	Keys: append([]config.Decl{ssl}, append(serverStores.decls(), sslCert, sslKey, sslCA, clientAuth,
		includeProtocols, excludeProtocols, includeCipherSuites, excludeCipherSuites)...),
}

// Client is the TLS keys of a component that connects (the avro sink; later
// thrift).
var Client = &config.Group{
	Name: "TLS client",
	Doc:  "the TLS keys of a component that connects; without a truststore or ssl-ca the system's CAs are trusted",
	Keys: append([]config.Decl{ssl}, append(clientStores.decls(), sslCert, sslKey, sslCA, trustAllCerts, verifyHost,
		includeProtocols, excludeProtocols, includeCipherSuites, excludeCipherSuites)...),
}

// ServerConfig reads the Server keys of c and builds the server's TLS
// configuration: nil when ssl is false; ok is false when a problem was
// recorded in c (never serve plain text then).
func ServerConfig(c *config.Context) (cfg *tls.Config, ok bool) {
	o := options(c, serverStores)
	o.ClientAuth = clientAuth.Get(c)
	if !ssl.Get(c) {
		return nil, true
	}
	cfg, problems := avrorpc.ServerTLSConfig(o)
	return cfg, record(c, problems)
}

// ClientConfig reads the Client keys of c and builds the client's TLS
// configuration: nil when ssl is false; ok is false when a problem was
// recorded in c.
func ClientConfig(c *config.Context) (cfg *tls.Config, ok bool) {
	o := options(c, clientStores)
	o.TrustAllCerts = trustAllCerts.Get(c)
	o.SkipHostnameVerification = !verifyHost.Get(c)
	if !ssl.Get(c) {
		return nil, true
	}
	cfg, problems := avrorpc.ClientTLSConfig(o)
	return cfg, record(c, problems)
}

// options reads the keys both sides have, whether or not ssl is on (Flume
// ignores them when it is off).
func options(c *config.Context, s stores) avrorpc.TLSOptions {
	o := avrorpc.TLSOptions{
		Keystore: s.keystore.Get(c), KeystorePassword: s.keystorePassword.Get(c), KeystoreType: s.keystoreType.Get(c),
		Truststore: s.truststore.Get(c), TruststorePassword: s.truststorePassword.Get(c), TruststoreType: s.truststoreType.Get(c),
		CertFile: sslCert.Get(c), KeyFile: sslKey.Get(c), CAFile: sslCA.Get(c),
		IncludeProtocols: includeProtocols.Get(c), ExcludeProtocols: excludeProtocols.Get(c),
		IncludeCipherSuites: includeCipherSuites.Get(c), ExcludeCipherSuites: excludeCipherSuites.Get(c),
	}
	// Like Flume, a store left out falls back to the environment.
	if o.Keystore == "" {
		o.Keystore = os.Getenv("FLUME_SSL_KEYSTORE_PATH")
		o.KeystorePassword = orEnv(o.KeystorePassword, "FLUME_SSL_KEYSTORE_PASSWORD")
		o.KeystoreType = orEnv(o.KeystoreType, "FLUME_SSL_KEYSTORE_TYPE")
	}
	if o.Truststore == "" {
		o.Truststore = os.Getenv("FLUME_SSL_TRUSTSTORE_PATH")
		o.TruststorePassword = orEnv(o.TruststorePassword, "FLUME_SSL_TRUSTSTORE_PASSWORD")
		o.TruststoreType = orEnv(o.TruststoreType, "FLUME_SSL_TRUSTSTORE_TYPE")
	}
	return o
}

func orEnv(v, env string) string {
	if v == "" {
		return os.Getenv(env)
	}
	return v
}

// record puts the builder's problems in c at their keys and reports whether
// there was none but warnings.
func record(c *config.Context, problems []avrorpc.TLSProblem) (ok bool) {
	ok = true
	for _, p := range problems {
		if p.Warning {
			c.Warnf(p.Option, "%v", p.Err)
			continue
		}
		c.Errorf(p.Option, "%v", p.Err)
		ok = false
	}
	return ok
}
