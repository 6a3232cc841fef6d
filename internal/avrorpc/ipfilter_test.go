package avrorpc

// Contract: ipFilterRules are Flume's comma-separated allow|deny:ip|name:<glob>
// rules; the first matching rule decides, a peer no rule matches is allowed,
// and a malformed rule is an error. A server with a filter closes denied
// peers at once and counts them as refused.

import (
	"context"
	"errors"
	"net"
	"testing"
)

func TestIPFilterRulesFirstMatchWins(t *testing.T) {
	addr := func(s string) net.Addr { return &net.TCPAddr{IP: net.ParseIP(s), Port: 4141} }
	cases := []struct {
		rules string
		peer  string
		allow bool
	}{
		{"allow:ip:127.*,deny:ip:*", "127.0.0.1", true},
		{"allow:ip:127.*,deny:ip:*", "10.1.2.3", false},
		{"deny:ip:10.1.?.3,allow:ip:*", "10.1.2.3", false},
		{"deny:ip:10.1.?.3,allow:ip:*", "10.1.22.3", true},
		{"deny:ip:192.168.*", "10.0.0.1", true}, // no rule matches: allowed
		{"allow:name:localhost,deny:ip:*", "127.0.0.1", true},
		{"allow:name:*.example.com,deny:ip:*", "10.0.0.7", true},
		{"allow:name:*.example.com,deny:ip:*", "10.0.0.8", false},
		{"ALLOW:IP:10.0.0.*, deny:ip:*", "10.0.0.9", true},
	}
	for _, tc := range cases {
		f, err := ParseIPFilter(tc.rules)
		if err != nil {
			t.Fatalf("%q: %v", tc.rules, err)
		}
		f.lookup = func(_ context.Context, ip string) ([]string, error) {
			if ip == "10.0.0.7" {
				return []string{"host7.example.com."}, nil
			}
			return nil, errors.New("no PTR record")
		}
		if got := f.Allow(addr(tc.peer)); got != tc.allow {
			t.Errorf("%q for %s: allow=%v, want %v", tc.rules, tc.peer, got, tc.allow)
		}
	}
}

func TestMalformedIPFilterRulesAreErrors(t *testing.T) {
	for _, r := range []string{"", "allow:127.0.0.1", "permit:ip:*", "allow:host:*", "allow:ip:"} {
		if _, err := ParseIPFilter(r); err == nil {
			t.Errorf("%q accepted", r)
		}
	}
}

func TestADeniedPeerIsClosedAndCountedAsRefused(t *testing.T) {
	f, err := ParseIPFilter("deny:ip:127.*")
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	s, addr := startServer(t, rec, ServerOptions{Filter: f.Allow})
	if err := tryAppend(addr, ClientOptions{}); err == nil {
		t.Fatal("a denied peer delivered events")
	}
	if len(rec.got()) != 0 || s.Stats().Refused != 1 {
		t.Fatalf("calls %d, stats %+v", len(rec.got()), s.Stats())
	}
}
