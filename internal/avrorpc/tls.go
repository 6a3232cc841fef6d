package avrorpc

import (
	"crypto/tls"

	"github.com/flumed/flumed/internal/tlsconfig"
)

// The TLS builders live in internal/tlsconfig (the Kafka client options use
// them from packages that must not import the wire code); these names keep
// avrorpc's callers (internal/tlskeys, the tests) as they were.

// TLSOptions are the TLS settings of a server or a client (tlsconfig.TLSOptions).
type TLSOptions = tlsconfig.TLSOptions

// TLSProblem is a TLS setting that cannot be used, or is ignored.
type TLSProblem = tlsconfig.TLSProblem

// ServerTLSConfig builds a server's tls.Config (tlsconfig.ServerTLSConfig).
func ServerTLSConfig(o TLSOptions) (*tls.Config, []TLSProblem) { return tlsconfig.ServerTLSConfig(o) }

// ClientTLSConfig builds a client's tls.Config (tlsconfig.ClientTLSConfig).
func ClientTLSConfig(o TLSOptions) (*tls.Config, []TLSProblem) { return tlsconfig.ClientTLSConfig(o) }
