package source

// The thrift source against a Python client generated from Flume's own
// flume.thrift by Debian's thrift-compiler, run with python3-thrift (both
// installed when missing): compact and binary protocols over framed
// transport; OK after the commit, FAILED when the channel refuses; a
// garbage frame and a frame over the limit close only their connection.

import (
	"context"
	"encoding/binary"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flumed/flumed/internal/await"
	"github.com/flumed/flumed/internal/thriftrpc"
	"github.com/flumed/flumed/source/internal/sourcetest"
)

const thriftPyClient = `
import sys
sys.path.insert(0, sys.argv[1])
from flume import ThriftSourceProtocol
from flume.ttypes import ThriftFlumeEvent, Status
from thrift.transport import TSocket, TTransport
from thrift.protocol import TCompactProtocol, TBinaryProtocol
host, port, proto = sys.argv[2], int(sys.argv[3]), sys.argv[4]
sock = TSocket.TSocket(host, port)
if len(sys.argv) > 5:
    # TLS: trust the CA in argv[5]; argv[6], if given, is the only
    # protocol version offered (e.g. TLSv1_2).
    import ssl
    from thrift.transport import TSSLSocket
    ctx = ssl.create_default_context(cafile=sys.argv[5])
    if len(sys.argv) > 6:
        ctx.minimum_version = ctx.maximum_version = getattr(ssl.TLSVersion, sys.argv[6])
    # The context checks the chain and the name already; thrift's own
    # check only repeats it through a deprecated call.
    sock = TSSLSocket.TSSLSocket(host, port, ssl_context=ctx, validate_callback=lambda cert, name: None)
t = TTransport.TFramedTransport(sock)
p = TCompactProtocol.TCompactProtocol(t) if proto == "compact" else TBinaryProtocol.TBinaryProtocol(t)
c = ThriftSourceProtocol.Client(p)
t.open()
print(Status._VALUES_TO_NAMES[c.append(ThriftFlumeEvent(headers={"k": "v"}, body=b"one"))])
print(Status._VALUES_TO_NAMES[c.appendBatch([ThriftFlumeEvent(headers={}, body=("b%d" % i).encode()) for i in range(3)])])
t.close()
`

// pythonThriftClient generates the Python code from flume.thrift and
// returns a function running the client against addr.
func pythonThriftClient(t *testing.T) func(addr, proto string) string {
	t.Helper()
	run := pythonThriftClientArgs(t)
	return func(addr, proto string) string {
		out, err := run(addr, proto)
		if err != nil {
			t.Fatalf("python client: %v\n%s", err, out)
		}
		return out
	}
}

// pythonThriftClientArgs is pythonThriftClient with the client's TLS
// arguments (CA file, protocol version) and its failure returned.
func pythonThriftClientArgs(t *testing.T) func(addr, proto string, tlsArgs ...string) (string, error) {
	t.Helper()
	compiler := needTool(t, "thrift", "thrift-compiler")
	// Debian's python3-thrift lives in the system Python, not in whatever
	// python3 comes first on PATH.
	hasThrift := func() bool { return exec.Command("/usr/bin/python3", "-c", "import thrift").Run() == nil }
	if !hasThrift() {
		if out, err := exec.Command("apt-get", "-o", "DPkg::Lock::Timeout=600", "install", "-y", "--no-install-recommends", "python3-thrift").CombinedOutput(); err != nil || !hasThrift() {
			t.Fatalf("python3-thrift is missing and installing it failed: %v\n%s", err, out)
		}
	}
	dir := t.TempDir()
	idl, err := filepath.Abs("../internal/thriftrpc/flume.thrift")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(compiler, "--gen", "py", "-out", dir, idl).CombinedOutput(); err != nil {
		t.Fatalf("thrift --gen py: %v\n%s", err, out)
	}
	script := filepath.Join(dir, "client.py")
	if err := os.WriteFile(script, []byte(thriftPyClient), 0o600); err != nil {
		t.Fatal(err)
	}
	return func(addr, proto string, tlsArgs ...string) (string, error) {
		h, p := hostPort(t, addr)
		// Debian's python3-thrift lives in the system Python.
		out, err := exec.Command("/usr/bin/python3", append([]string{script, dir, h, p, proto}, tlsArgs...)...).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
}

func startThrift(t *testing.T, o thriftrpc.ServerOptions) (*Thrift, *fakeChannel) {
	t.Helper()
	s := NewThrift("r1", "127.0.0.1:0", o, sourcetest.DiscardLog())
	ch := newFakeChannel("c1")
	if err := s.Start(context.Background(), processor(t, ch)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	return s, ch
}

func TestAPythonThriftClientFromFlumesIDLReachesTheThriftSource(t *testing.T) {
	client := pythonThriftClient(t)
	for _, proto := range []string{"compact", "binary"} {
		t.Run(proto, func(t *testing.T) {
			s, ch := startThrift(t, thriftrpc.ServerOptions{Compact: proto == "compact"})
			if got := client(s.Addr().String(), proto); got != "OK\nOK" {
				t.Fatalf("replies %q, want OK twice", got)
			}
			if got := ch.bodies(); strings.Join(got, ",") != "one,b0,b1,b2" {
				t.Fatalf("bodies %q", got)
			}
			if ch.events()[0].Headers["k"] != "v" {
				t.Fatalf("headers %v", ch.events()[0].Headers)
			}
			ch.setRefuse(-1)
			if got := client(s.Addr().String(), proto); got != "FAILED\nFAILED" {
				t.Fatalf("replies with a full channel %q, want FAILED twice", got)
			}
		})
	}
}

func TestBadThriftFramesCloseOnlyTheirConnection(t *testing.T) {
	s, ch := startThrift(t, thriftrpc.ServerOptions{Compact: true, MaxFrameBytes: 1024})
	for _, frame := range [][]byte{
		append(binary.BigEndian.AppendUint32(nil, 16), []byte("garbage garbage!")...),
		binary.BigEndian.AppendUint32(nil, 1<<30), // a frame over the limit
	} {
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(frame); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1)
		if _, err := c.Read(buf); err == nil {
			t.Errorf("frame %x: the connection stayed open", frame[:4])
		}
		c.Close()
	}
	await.True(t, "both counted", func() bool { return s.FlumeMetrics()["EventReadFail"] == "2" })
	if got := pythonThriftClient(t)(s.Addr().String(), "compact"); got != "OK\nOK" {
		t.Fatalf("a good client after the bad ones: %q", got)
	}
	if len(ch.events()) != 4 {
		t.Fatalf("events %d", len(ch.events()))
	}
}

func TestThriftSourceFromASnippet(t *testing.T) {
	src, ps := fromSnippet(t, thriftType, newThriftSource, "bind = 127.0.0.1\nport = 0\nprotocol = binary\nthreads = 4\n")
	if len(ps) > 0 {
		t.Fatalf("problems %q", ps)
	}
	ch := newFakeChannel("c1")
	if err := src.Start(context.Background(), processor(t, ch)); err != nil {
		t.Fatal(err)
	}
	defer src.Stop()
	if got := pythonThriftClient(t)(src.(*Thrift).Addr().String(), "binary"); got != "OK\nOK" {
		t.Fatalf("replies %q", got)
	}
}
