package source

// The http source over TLS with Flume's key store keys, driven by curl:
// a PKCS12 keystore made by openssl in the test (its default AES/PBKDF2
// encryption, and the 3DES/SHA-1 one older Java keytools write) serves
// https; a wrong keystore-password is a configuration problem, never a
// plain-text listener. A Java KeyStore (JKS, Flume's default
// keystore-type), which flumed does not read, is refused with the keytool
// command that converts it, and the PKCS12 store that command made
// (testdata/jks, made by keytool) serves curl.

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// httpsFromSnippet starts an http source with ssl on from Flume keys.
func httpsFromSnippet(t *testing.T, keys string) (*HTTP, *fakeChannel) {
	t.Helper()
	src, ps := fromSnippet(t, httpType, newHTTPSource, "bind = 127.0.0.1\nport = 0\nssl = true\n"+keys)
	if len(ps) > 0 {
		t.Fatalf("problems %q", ps)
	}
	ch := newFakeChannel("c1")
	if err := src.Start(context.Background(), processor(t, ch)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.Stop() })
	return src.(*HTTP), ch
}

// curlHTTPS posts one event to s over https, trusting ca, and checks that
// it was answered 200 and put.
func curlHTTPS(t *testing.T, s *HTTP, ch *fakeChannel, ca string) {
	t.Helper()
	if code := curl(t, "--cacert", ca, "--data-binary", `[{"body":"secret"}]`, "https://"+s.Addr().String()+"/"); code != "200" {
		t.Fatalf("https: %s", code)
	}
	if got := ch.bodies(); len(got) != 1 || got[0] != "secret" {
		t.Fatalf("bodies %q", got)
	}
}

func openssl(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("openssl", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func TestHTTPSourceServesCurlWithAPKCS12Keystore(t *testing.T) {
	needTool(t, "openssl", "openssl")
	dir := t.TempDir()
	openssl(t, dir, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", "key.pem", "-out", "cert.pem", "-days", "1", "-subj", "/CN=localhost",
		"-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost")
	cases := []struct{ name, file string }{
		{"openssl's default encryption", "default.p12"},
		{"3DES and SHA-1 as older keytools write", "3des.p12"},
	}
	openssl(t, dir, "pkcs12", "-export", "-inkey", "key.pem", "-in", "cert.pem", "-out", "default.p12", "-passout", "pass:secret")
	openssl(t, dir, "pkcs12", "-export", "-inkey", "key.pem", "-in", "cert.pem", "-out", "3des.p12", "-passout", "pass:secret",
		"-certpbe", "PBE-SHA1-3DES", "-keypbe", "PBE-SHA1-3DES", "-macalg", "sha1")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, ch := httpsFromSnippet(t, "keystore = "+filepath.Join(dir, tc.file)+"\nkeystore-password = secret\nkeystore-type = PKCS12\n")
			curlHTTPS(t, s, ch, filepath.Join(dir, "cert.pem"))
		})
	}
	t.Run("a wrong keystore-password is a configuration problem", func(t *testing.T) {
		_, ps := fromSnippet(t, httpType, newHTTPSource, "bind = 127.0.0.1\nport = 0\nssl = true\nkeystore = "+
			filepath.Join(dir, "default.p12")+"\nkeystore-password = wrong\nkeystore-type = PKCS12\n")
		if got := strings.Join(ps, "\n"); !strings.Contains(got, "keystore") || !strings.Contains(got, "default.p12") {
			t.Fatalf("problems %q, want one naming the keystore", ps)
		}
	})
}

func TestHTTPSourceRefusesAJKSKeystoreWithTheCommandThatConvertsIt(t *testing.T) {
	jks, err := filepath.Abs("testdata/jks/keystore.jks")
	if err != nil {
		t.Fatal(err)
	}
	hint := "keytool -importkeystore -srckeystore " + jks + " -destkeystore " + strings.TrimSuffix(jks, ".jks") + ".p12 -deststoretype PKCS12"
	for _, typ := range []string{"keystore-type = JKS\n", "" /* Flume's default type is JKS */} {
		_, ps := fromSnippet(t, httpType, newHTTPSource, "bind = 127.0.0.1\nport = 0\nssl = true\nkeystore = "+jks+"\nkeystore-password = changeit\n"+typ)
		if got := strings.Join(ps, "\n"); !strings.Contains(got, hint) {
			t.Fatalf("%q: problems %q, want the hint %q", typ, ps, hint)
		}
	}
	// What that command made (testdata/jks/README.md) serves curl.
	s, ch := httpsFromSnippet(t, "keystore = testdata/jks/keystore.p12\nkeystore-password = changeit\nkeystore-type = PKCS12\n")
	curlHTTPS(t, s, ch, "testdata/jks/cert.pem")
}
