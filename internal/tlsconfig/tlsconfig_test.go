package tlsconfig

// Protocol lists map to a version range and cipher suite lists to suites,
// with unknown names reported as problems.

import (
	"crypto/tls"
	"strings"
	"testing"
)

func TestProtocolListsMapToAVersionRange(t *testing.T) {
	cases := []struct {
		include, exclude string
		lo, hi           uint16
		err              bool
	}{
		{"", "SSLv3", tls.VersionTLS12, tls.VersionTLS13, false},
		{"", "SSLv3 TLSv1.3", tls.VersionTLS12, tls.VersionTLS12, false},
		{"TLSv1.2", "", tls.VersionTLS12, tls.VersionTLS12, false},
		{"TLSv1 TLSv1.1 TLSv1.2 TLSv1.3", "SSLv3", tls.VersionTLS10, tls.VersionTLS13, false},
		{"TLSv1.1,TLSv1.3", "", 0, 0, true},
		{"", "TLSv1.2 TLSv1.3", 0, 0, true},
		{"SSLv2Hello TLSv1.2", "", tls.VersionTLS12, tls.VersionTLS12, false},
	}
	for _, tc := range cases {
		split := func(s string) []string {
			return strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' })
		}
		lo, hi, err := protocolRange(split(tc.include), split(tc.exclude))
		if (err != nil) != tc.err || lo != tc.lo || hi != tc.hi {
			t.Errorf("include %q exclude %q: %x..%x %v", tc.include, tc.exclude, lo, hi, err)
		}
	}
}

func TestCipherSuiteListsSelectSuites(t *testing.T) {
	got, problems := cipherSuites([]string{"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"}, []string{"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"})
	if len(problems) > 0 || len(got) != 1 || got[0] != tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 {
		t.Fatalf("got %v %v", got, problems)
	}
	if _, problems := cipherSuites([]string{"TLS_NOPE"}, nil); len(problems) == 0 || problems[0].Warning {
		t.Fatal("an unknown suite was accepted")
	}
}
