package source

// The thrift source over TLS (Flume's ssl, keystore, keystore-type and
// exclude-protocols keys) against the Python client generated from Flume's
// flume.thrift, speaking TLS with Python's own ssl module through
// thrift.transport.TSSLSocket: it reaches the source with either protocol;
// a plain-text client puts nothing; a protocol version excluded by
// exclude-protocols is refused while the others still work.

import (
	"context"
	"strings"
	"testing"

	"github.com/flumed/flumed/internal/tlstest"
)

// startThriftTLS starts a thrift source from a Flume snippet with its key
// store in a PEM file made for the test, plus extra keys.
func startThriftTLS(t *testing.T, pair tlstest.Pair, extra string) (*Thrift, *fakeChannel) {
	t.Helper()
	src, ps := fromSnippet(t, thriftType, newThriftSource,
		"bind = 127.0.0.1\nport = 0\nssl = true\nkeystore = "+pair.Both+"\nkeystore-type = PEM\n"+extra)
	if len(ps) > 0 {
		t.Fatalf("problems %q", ps)
	}
	ch := newFakeChannel("c1")
	if err := src.Start(context.Background(), processor(t, ch)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.Stop() })
	return src.(*Thrift), ch
}

func TestAPythonThriftClientReachesTheThriftSourceOverTLS(t *testing.T) {
	client := pythonThriftClientArgs(t)
	ca := tlstest.NewCA(t)
	pair := ca.Issue(t, "thrift-source")
	for _, proto := range []string{"compact", "binary"} {
		t.Run(proto, func(t *testing.T) {
			s, ch := startThriftTLS(t, pair, "protocol = "+proto+"\n")
			out, err := client(s.Addr().String(), proto, ca.File)
			if err != nil || out != "OK\nOK" {
				t.Fatalf("replies %q (%v), want OK twice", out, err)
			}
			if got := strings.Join(ch.bodies(), ","); got != "one,b0,b1,b2" {
				t.Fatalf("bodies %q", got)
			}
			if out, err := client(s.Addr().String(), proto); err == nil {
				t.Fatalf("a plain-text client was answered %q", out)
			}
			if n := len(ch.events()); n != 4 {
				t.Fatalf("%d events after the plain-text client, want the 4 sent over TLS", n)
			}
		})
	}
}

func TestTheThriftSourceRefusesAnExcludedTLSProtocol(t *testing.T) {
	client := pythonThriftClientArgs(t)
	ca := tlstest.NewCA(t)
	s, ch := startThriftTLS(t, ca.Issue(t, "thrift-source"), "exclude-protocols = TLSv1.3\n")
	if out, err := client(s.Addr().String(), "compact", ca.File, "TLSv1_3"); err == nil {
		t.Fatalf("a TLSv1.3-only client was answered %q with TLSv1.3 excluded", out)
	}
	if n := len(ch.events()); n != 0 {
		t.Fatalf("%d events put by the refused client", n)
	}
	if out, err := client(s.Addr().String(), "compact", ca.File, "TLSv1_2"); err != nil || out != "OK\nOK" {
		t.Fatalf("a TLSv1.2 client: %q (%v), want OK twice", out, err)
	}
}
