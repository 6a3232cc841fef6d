package source

// The http source against curl: Flume's answers (200 committed, 400
// malformed with nothing put, 503 channel full with nothing put), flumed's
// 413 body limit and gzip bodies, the Blob handler's parameters, and TLS.

import (
	"bytes"
	"compress/gzip"
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
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flumed/flumed/internal/await"
	"github.com/flumed/flumed/source/internal/sourcetest"
)

func startHTTP(t *testing.T, o HTTPOptions) (*HTTP, *fakeChannel, string) {
	t.Helper()
	o.Addr = "127.0.0.1:0"
	s := NewHTTP("r1", o, sourcetest.DiscardLog())
	ch := newFakeChannel("c1")
	if err := s.Start(context.Background(), processor(t, ch)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	return s, ch, s.Addr().String()
}

// curl runs curl and returns the HTTP status it got.
func curl(t *testing.T, args ...string) string {
	t.Helper()
	bin := needTool(t, "curl", "curl")
	out, err := exec.Command(bin, append([]string{"-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "30"}, args...)...).Output()
	if err != nil {
		t.Fatalf("curl %q: %v (%s)", args, err, out)
	}
	return string(out)
}

func TestHTTPSourceAnswersAsFlumeDoes(t *testing.T) {
	_, ch, addr := startHTTP(t, HTTPOptions{MaxBodyBytes: 1000})
	url := "http://" + addr + "/"
	json := `[{"headers":{"a":"b","n":5},"body":"first"},{"body":"second"}]`
	if code := curl(t, "-H", "Content-Type: application/json; charset=UTF-8", "--data-binary", json, url); code != "200" {
		t.Fatalf("good batch: %s", code)
	}
	ev := ch.events()
	if len(ev) != 2 || string(ev[0].Body) != "first" || ev[0].Headers["a"] != "b" || ev[0].Headers["n"] != "5" || string(ev[1].Body) != "second" {
		t.Fatalf("events %v", ev)
	}
	for name, body := range map[string]string{
		"malformed JSON":      `[{"body":"x"}`,
		"not an array":        `{"body":"x"}`,
		"an object as header": `[{"headers":{"a":{}},"body":"x"}]`,
	} {
		if code := curl(t, "--data-binary", body, url); code != "400" {
			t.Errorf("%s: %s, want 400", name, code)
		}
	}
	if code := curl(t, "-H", "Content-Type: application/json; charset=ISO-8859-1", "--data-binary", json, url); code != "415" {
		t.Errorf("latin-1 JSON: %s, want 415", code)
	}
	if code := curl(t, "--data-binary", "["+strings.Repeat(`{"body":"x"},`, 200)+`{"body":"x"}]`, url); code != "413" {
		t.Errorf("huge body: %s, want 413", code)
	}
	if len(ch.events()) != 2 {
		t.Fatalf("a refused request put events: %d", len(ch.events()))
	}
	ch.setRefuse(1)
	if code := curl(t, "--data-binary", json, url); code != "503" {
		t.Errorf("channel full: %s, want 503", code)
	}
	if len(ch.events()) != 2 {
		t.Fatalf("a 503 put events: %d", len(ch.events()))
	}
}

func TestHTTPSourceReadsGzipBodiesWithinTheLimit(t *testing.T) {
	_, ch, addr := startHTTP(t, HTTPOptions{MaxBodyBytes: 10_000})
	dir := t.TempDir()
	write := func(name, json string) string {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		_, _ = zw.Write([]byte(json))
		_ = zw.Close()
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, b.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		return "@" + f
	}
	if code := curl(t, "-H", "Content-Encoding: gzip", "--data-binary", write("ok.gz", `[{"body":"zipped"}]`), "http://"+addr+"/"); code != "200" {
		t.Fatalf("gzip body: %s", code)
	}
	// 1 MB of zeros in a few KB: expands past the limit, so 413.
	bomb := `[{"body":"` + strings.Repeat("0", 1<<20) + `"}]`
	if code := curl(t, "-H", "Content-Encoding: gzip", "--data-binary", write("bomb.gz", bomb), "http://"+addr+"/"); code != "413" {
		t.Errorf("gzip bomb: %s, want 413", code)
	}
	if got := ch.bodies(); len(got) != 1 || got[0] != "zipped" {
		t.Fatalf("bodies %q", got)
	}
}

func TestHTTPBlobHandlerTakesTheBodyAndParameters(t *testing.T) {
	_, ch, addr := startHTTP(t, HTTPOptions{Handler: BlobHandler{Mandatory: []string{"host"}}})
	f := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(f, []byte("raw \x00 bytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code := curl(t, "--data-binary", "@"+f, "http://"+addr+"/?host=web1&x=1"); code != "200" {
		t.Fatalf("blob: %s", code)
	}
	if code := curl(t, "--data-binary", "no host", "http://"+addr+"/?x=1"); code != "400" {
		t.Errorf("missing mandatory parameter: %s, want 400", code)
	}
	ev := ch.events()
	if len(ev) != 1 || string(ev[0].Body) != "raw \x00 bytes" || ev[0].Headers["host"] != "web1" || ev[0].Headers["x"] != "1" {
		t.Fatalf("events %v", ev)
	}
}

func TestHTTPSourceOverTLS(t *testing.T) {
	certPEM, cfg := selfSigned(t)
	_, ch, addr := startHTTP(t, HTTPOptions{TLS: cfg})
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(addr)
	if code := curl(t, "--cacert", ca, "--data-binary", `[{"body":"secret"}]`, "https://localhost:"+port+"/"); code != "200" {
		t.Fatalf("https: %s", code)
	}
	if got := ch.bodies(); len(got) != 1 || got[0] != "secret" {
		t.Fatalf("bodies %q", got)
	}
}

func TestHTTPIdleConnectionsMakeRoomForAClient(t *testing.T) {
	s, ch, addr := startHTTP(t, HTTPOptions{MaxConnections: 10})
	var idle []net.Conn
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	for range 30 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
	}
	await.True(t, "the crowd is admitted and idle", func() bool {
		st := s.conns.Stats()
		return st.Accepted+st.Refused == 30 && st.Idle == st.Open
	})
	if code := curl(t, "--data-binary", `[{"body":"through"}]`, "http://"+addr+"/"); code != "200" {
		t.Fatalf("client behind an idle crowd: %s", code)
	}
	if got := ch.bodies(); len(got) != 1 {
		t.Fatalf("bodies %q", got)
	}
}

// selfSigned returns a PEM certificate for localhost and a server config.
func selfSigned(t *testing.T) ([]byte, *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		&tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}
