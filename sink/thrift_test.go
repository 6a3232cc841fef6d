package sink

// The thrift sink against a Python server generated from Flume's own
// flume.thrift by Debian's thrift-compiler, run with python3-thrift (both
// installed when missing): a batch is committed only once the server
// answered OK; FAILED rolls it back and the next Process sends it again.

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/await"
)

const thriftPyServer = `
import sys
sys.path.insert(0, sys.argv[1])
from flume import ThriftSourceProtocol
from flume.ttypes import Status
from thrift.transport import TSocket, TTransport
from thrift.protocol import TCompactProtocol, TBinaryProtocol
from thrift.server import TServer
fail = [int(sys.argv[3])]
class H:
    def append(self, e):
        return self.appendBatch([e])
    def appendBatch(self, events):
        if fail[0] > 0:
            fail[0] -= 1
            return Status.FAILED
        for e in events:
            print(e.headers.get("k", "") + ":" + e.body.decode(), flush=True)
        return Status.OK
if len(sys.argv) > 4:
    # TLS with the certificate and key in argv[4]; argv[5], if given, is
    # the only protocol version accepted (e.g. TLSv1_2).
    import ssl
    from thrift.transport import TSSLSocket
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[4])
    if len(sys.argv) > 5:
        ctx.minimum_version = ctx.maximum_version = getattr(ssl.TLSVersion, sys.argv[5])
    sock = TSSLSocket.TSSLServerSocket(host="127.0.0.1", port=0, ssl_context=ctx)
else:
    sock = TSocket.TServerSocket(host="127.0.0.1", port=0)
sock.listen()
print("PORT %d" % sock.handle.getsockname()[1], flush=True)
pf = TCompactProtocol.TCompactProtocolFactory() if sys.argv[2] == "compact" else TBinaryProtocol.TBinaryProtocolFactory()
s = TServer.TSimpleServer(ThriftSourceProtocol.Processor(H()), sock, TTransport.TFramedTransportFactory(), pf)
sock.listen = lambda: None
s.serve()
`

func needPackage(t *testing.T, bin, pkg string, ok func() bool) {
	t.Helper()
	if ok() {
		return
	}
	if out, err := exec.Command("apt-get", "-o", "DPkg::Lock::Timeout=600", "install", "-y", "--no-install-recommends", pkg).CombinedOutput(); err != nil || !ok() {
		t.Fatalf("%s is missing and installing %s failed: %v\n%s", bin, pkg, err, out)
	}
}

// pythonThriftServer starts the generated Python server and returns its
// address and its output lines (one per event received). tlsArgs, if any,
// are its certificate-and-key PEM file and the one TLS version it accepts.
func pythonThriftServer(t *testing.T, proto string, failFirst int, tlsArgs ...string) (string, <-chan string) {
	t.Helper()
	needPackage(t, "thrift", "thrift-compiler", func() bool { _, err := exec.LookPath("thrift"); return err == nil })
	needPackage(t, "python3-thrift", "python3-thrift", func() bool { return exec.Command("/usr/bin/python3", "-c", "import thrift").Run() == nil })
	dir := t.TempDir()
	idl, _ := filepath.Abs("../internal/thriftrpc/flume.thrift")
	if out, err := exec.Command("thrift", "--gen", "py", "-out", dir, idl).CombinedOutput(); err != nil {
		t.Fatalf("thrift --gen py: %v\n%s", err, out)
	}
	script := filepath.Join(dir, "server.py")
	if err := os.WriteFile(script, []byte(thriftPyServer), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/usr/bin/python3", append([]string{script, dir, proto, strconv.Itoa(failFirst)}, tlsArgs...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan string, 100)
	r := bufio.NewReader(out)
	first, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(first, "PORT ") {
		t.Fatalf("python server: %q %v", first, err)
	}
	go func() {
		defer close(lines)
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				if err != io.EOF {
					t.Log(err)
				}
				return
			}
			lines <- strings.TrimSpace(l)
		}
	}()
	return net.JoinHostPort("127.0.0.1", strings.TrimSpace(strings.TrimPrefix(first, "PORT "))), lines
}

func TestTheThriftSinkDeliversToAPythonServerFromFlumesIDL(t *testing.T) {
	for _, proto := range []string{"compact", "binary"} {
		t.Run(proto, func(t *testing.T) {
			addr, lines := pythonThriftServer(t, proto, 1) // the first call is answered FAILED
			mem := channel.NewMemory("c1", channel.MemoryOptions{Capacity: 100, TransactionCapacity: 100})
			defer mem.Close()
			tx := mem.Begin()
			_ = tx.Put(channel.Event{Headers: map[string]string{"k": "a"}, Body: []byte("one")}, channel.Event{Headers: map[string]string{"k": "b"}, Body: []byte("two")})
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			s := NewThrift("k1", ThriftOptions{Addr: addr, Compact: proto == "compact", RequestTimeout: 10 * time.Second}, nil)
			if err := s.Start(context.Background(), mem); err != nil {
				t.Fatal(err)
			}
			defer s.Stop()
			if _, err := s.Process(context.Background()); err == nil {
				t.Fatal("a FAILED answer gave no error")
			}
			await.True(t, "the batch is back in the channel", func() bool { return mem.Stats().Size == 2 })
			if _, err := s.Process(context.Background()); err != nil {
				t.Fatalf("second try: %v", err)
			}
			got := []string{await.Recv(t, "first event", lines), await.Recv(t, "second event", lines)}
			if strings.Join(got, ",") != "a:one,b:two" {
				t.Fatalf("server got %q", got)
			}
			_ = s.Stop()
			await.True(t, "the take committed", func() bool { return mem.Stats().Size == 0 })
		})
	}
}
