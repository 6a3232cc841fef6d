package main

// flumed avro-client sends a file (or stdin) to an avro source as Flume's
// avro-client does: a line per event, ended as Java's readLine ends lines,
// the -R file's headers on every event, batches of --batch-size. It exits 0
// only when every batch was acknowledged; otherwise 1, naming how many
// events were acknowledged and the lines of the batch that was not. Bad
// command lines exit 2 and send nothing. The tests send to a real flumed
// collector (avro source, file_roll with header_and_text).

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flumed/flumed/internal/await"
)

// startCollector runs a real flumed: an avro source on a free port into
// channel, drained by a file_roll sink writing header_and_text into dir (or,
// with sink set, by that sink).
func startAvroCollector(t *testing.T, sourceKeys, channel, sink string) (port int, dir string) {
	t.Helper()
	port, dir = freePort(t), t.TempDir()
	if sink == "" {
		sink = fmt.Sprintf(`a1.sinks.k1.type = file_roll
a1.sinks.k1.sink.directory = %s
a1.sinks.k1.sink.rollInterval = 0
a1.sinks.k1.sink.serializer = header_and_text
`, dir)
	}
	startAgent(t, fmt.Sprintf(`a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = avro
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = %d
a1.sources.r1.channels = c1
%s
%s
a1.sinks.k1.channel = c1
%s`, port, sourceKeys, channel, sink))
	await.NoError(t, "the avro source to listen", func() error {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			c.Close()
		}
		return err
	})
	return port, dir
}

// rolled is everything file_roll wrote into dir.
func rolled(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		b.Write(data)
	}
	return b.String()
}

func TestAvroClientSendsAFileWithHeadersAndEveryBatchIsAcknowledged(t *testing.T) {
	for _, compression := range []string{"none", "deflate"} {
		t.Run("compression="+compression, func(t *testing.T) {
			port, dir := startAvroCollector(t, "a1.sources.r1.compression-type = "+compression,
				memoryChannel(1000, 100), "")
			// Java's line ends: \n, \r\n and a lone \r; an empty line is an
			// event; the last line needs no terminator.
			input := "a\r\nb\n\nc\rd"
			var want strings.Builder
			for _, l := range []string{"a", "b", "", "c", "d"} {
				fmt.Fprintf(&want, "{host=web1, line.origin=file, env=prod} %s\n", l)
			}
			for i := range 18 {
				input += "\nline " + strconv.Itoa(i)
				fmt.Fprintf(&want, "{host=web1, line.origin=file, env=prod} line %d\n", i)
			}
			tmp := t.TempDir()
			file, headers := filepath.Join(tmp, "in.txt"), filepath.Join(tmp, "headers.properties")
			if err := os.WriteFile(file, []byte(input), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(headers, []byte("# Flume reads this with java.util.Properties\nhost = web1\nenv=prod\nline.origin: file\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			code, stdout, stderr := runToEnd(t, "avro-client", "-H", "127.0.0.1", "-p", strconv.Itoa(port),
				"-F", file, "-R", headers, "--batch-size", "5", "--compression-type", compression)
			if code != 0 || stdout != "" || !strings.Contains(stderr, "23 events (120 bytes) in 5 batches sent to 127.0.0.1:"+strconv.Itoa(port)+", all acknowledged") {
				t.Fatalf("exit %d, stdout %q, stderr %s", code, stdout, stderr)
			}
			await.NoError(t, "the collector to write every event", func() error {
				if got := rolled(t, dir); got != want.String() {
					return fmt.Errorf("wrote:\n%s\nwant:\n%s", got, want.String())
				}
				return nil
			})
		})
	}
}

func TestAvroClientExitsNonZeroWhenABatchIsNotAcknowledged(t *testing.T) {
	// The channel holds 4 events and its sink cannot deliver them (its next
	// hop is not listening): the third batch of 2 is answered FAILED.
	port, _ := startAvroCollector(t, "",
		memoryChannel(4, 4)+"a1.channels.c1.keep-alive = 1\n",
		fmt.Sprintf("a1.sinks.k1.type = avro\na1.sinks.k1.hostname = 127.0.0.1\na1.sinks.k1.port = %d\na1.sinks.k1.batch-size = 2\n", freePort(t)))
	cmd := exec.Command(flumed, "avro-client", "-H", "127.0.0.1", "-p", strconv.Itoa(port), "--batch-size", "2")
	cmd.Stdin = strings.NewReader("1\n2\n3\n4\n5\n6\n7\n8\n")
	out, err := cmd.CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit %v, want 1: %s", err, out)
	}
	if want := "4 events acknowledged; the batch of lines 5-6 was not: remote answered FAILED"; !strings.Contains(string(out), want) {
		t.Fatalf("output lacks %q:\n%s", want, out)
	}
}

func TestAvroClientRefusesABadCommandLineWithoutSending(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-H", "127.0.0.1"}, "both --host (-H) and --port (-p) are required"},
		{[]string{"-H", "127.0.0.1", "-p", "1", "-P", "rpc.properties"}, "--rpcProps is not supported by flumed avro-client"},
		{[]string{"-H", "127.0.0.1", "-p", "1", "--dirname", "/spool"}, "--dirname is not supported by flumed avro-client"},
		{[]string{"-H", "127.0.0.1", "-p", "1", "--compression-type", "gzip"}, `--compression-type must be none or deflate, not "gzip"`},
		{[]string{"-H", "127.0.0.1", "-p", "1", "--trust-all-certs"}, "need --ssl"},
		{[]string{"-H", "127.0.0.1", "-p", "1", "-R", "/no/such/headers"}, "header file: open /no/such/headers: no such file or directory"},
		{[]string{"-H", "127.0.0.1", "-p", "1", "--batch-sise", "5"}, "unknown flag: --batch-sise"},
	} {
		code, _, stderr := runToEnd(t, append([]string{"avro-client"}, tc.args...)...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, stderr, exitUsage, tc.want)
		}
	}
}

func TestAvroClientSaysWhenNothingListens(t *testing.T) {
	code, _, stderr := runToEnd(t, "avro-client", "-H", "127.0.0.1", "-p", strconv.Itoa(freePort(t)), "-F", "/dev/null")
	if code != 1 || !strings.Contains(stderr, "connect to 127.0.0.1:") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

func TestJavaLineEnds(t *testing.T) {
	for in, want := range map[string][]string{
		"":              nil,
		"a":             {"a"},
		"a\n":           {"a"},
		"a\r\n\r\nb\r":  {"a", "", "b"},
		"\n\n":          {"", ""},
		"x\ry\r\r\nz\n": {"x", "y", "", "z"},
	} {
		var got []string
		data := []byte(in)
		for len(data) > 0 {
			n, tok, _ := javaLines(data, true)
			got = append(got, string(tok))
			data = data[n:]
		}
		if fmt.Sprint(got) != fmt.Sprint(want) || len(got) != len(want) {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

// selfSignedPEM writes a certificate for 127.0.0.1 and its key as PEM files.
func selfSignedPEM(t *testing.T, dir string) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "collector"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func TestAvroClientSendsOverTLSAndRefusesAnUntrustedServer(t *testing.T) {
	certs := t.TempDir()
	cert, key := selfSignedPEM(t, certs)
	port, dir := startAvroCollector(t, fmt.Sprintf("a1.sources.r1.ssl = true\na1.sources.r1.ssl-cert = %s\na1.sources.r1.ssl-key = %s\n", cert, key),
		memoryChannel(100, 100), "")
	p := strconv.Itoa(port)

	// The system's CAs do not know the collector: nothing is sent.
	cmd := exec.Command(flumed, "avro-client", "-H", "127.0.0.1", "-p", p, "--ssl")
	cmd.Stdin = strings.NewReader("never\n")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "certificate") {
		t.Fatalf("an untrusted server was accepted: %v: %s", err, out)
	}

	cmd = exec.Command(flumed, "avro-client", "-H", "127.0.0.1", "-p", p, "--ssl", "--ssl-ca", cert)
	cmd.Stdin = strings.NewReader("secret line\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	await.NoError(t, "the collector to write the event", func() error {
		if got := rolled(t, dir); got != "{} secret line\n" {
			return fmt.Errorf("wrote %q", got)
		}
		return nil
	})
}
