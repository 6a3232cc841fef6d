package avrorpc

// Contract: the byte transcripts recorded between Flume's Java client and
// Avro's Java server (testdata/avro-rpc, copied from the shared fixtures) are
// the wire contract.
//
//   - Fed a recorded client stream, the Server hands the handler exactly the
//     recorded events and answers with exactly the recorded server bytes (for
//     deflate: the same bytes once inflated, since compressors differ).
//   - Talking to a scripted server that plays the recorded server frames, the
//     Client sends exactly the recorded client bytes (it speaks as Flume 1.10's
//     client does), and where it cannot (the unknown-hash case: it is not a
//     Flume 1.9 client) its frames decode to the same calls.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zlib"

	"github.com/flumed/flumed/internal/await"
)

var fixtureDir = filepath.Join("..", "..", "testdata", "avro-rpc")

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir, name))
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	return b
}

// fixtureEvent is event i of the recordings: header seq=i, body "event-i".
func fixtureEvent(i int) Event {
	return Event{Headers: map[string]string{"seq": fmt.Sprint(i)}, Body: []byte(fmt.Sprintf("event-%d", i))}
}

// bigEvent is event i of batch2-big: 10000 'x' then i.
func bigEvent(i int) Event {
	return Event{Headers: map[string]string{"seq": fmt.Sprint(i)}, Body: []byte(strings.Repeat("x", 10000) + fmt.Sprint(i))}
}

func events(from, to int) []Event {
	var out []Event
	for i := from; i < to; i++ {
		out = append(out, fixtureEvent(i))
	}
	return out
}

// recordedCall is one call as a handler saw it.
type recordedCall struct {
	Message string
	Events  []Event
}

type fixtureCase struct {
	name    string
	deflate bool
	status  Status
	calls   []recordedCall
	// javaHashes: the server knows only its own hash, as the recording's Java
	// server did (so it answers the 1.9 client NONE, byte for byte).
	javaHashes bool
}

var fixtureCases = []fixtureCase{
	{name: "append1", calls: []recordedCall{{"append", events(0, 1)}}},
	{name: "append2-same-conn", calls: []recordedCall{{"append", events(0, 1)}, {"append", events(1, 2)}}},
	{name: "batch3", calls: []recordedCall{{"appendBatch", events(0, 3)}}},
	{name: "batch3-failed", status: StatusFailed, calls: []recordedCall{{"appendBatch", events(0, 3)}}},
	{name: "batch2-big", calls: []recordedCall{{"appendBatch", []Event{bigEvent(0), bigEvent(1)}}}},
	{name: "batch3-deflate", deflate: true, calls: []recordedCall{{"appendBatch", events(0, 3)}}},
	{name: "batch3x2-deflate-same-conn", deflate: true, calls: []recordedCall{{"appendBatch", events(0, 3)}, {"appendBatch", events(3, 6)}}},
	{name: "append1-unknown-client-hash", javaHashes: true, calls: []recordedCall{{"append", events(0, 1)}}},
}

// recorder is a Handler that keeps every call and answers a fixed status.
type recorder struct {
	mu     sync.Mutex
	status Status
	calls  []recordedCall
}

func (r *recorder) Append(e Event) Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, recordedCall{"append", []Event{e}})
	return r.status
}

func (r *recorder) AppendBatch(ev []Event) Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, recordedCall{"appendBatch", ev})
	return r.status
}

func (r *recorder) got() []recordedCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recordedCall(nil), r.calls...)
}

// startServer serves h on a loopback port and stops it when the test ends.
func startServer(t testing.TB, h Handler, o ServerOptions) (*Server, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(h, o)
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return s, l.Addr().String()
}

// inflateAll inflates a recorded zlib stream that may lack its trailer.
func inflateAll(t testing.TB, b []byte) []byte {
	t.Helper()
	zr, err := zlib.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil && err != io.ErrUnexpectedEOF {
		t.Fatalf("inflate: %v", err)
	}
	return out
}

func sameEvents(a, b []Event) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i].Body, b[i].Body) || len(a[i].Headers) != len(b[i].Headers) {
			return false
		}
		for k, v := range a[i].Headers {
			if w, ok := b[i].Headers[k]; !ok || w != v {
				return false
			}
		}
	}
	return true
}

func sameCalls(a, b []recordedCall) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Message != b[i].Message || !sameEvents(a[i].Events, b[i].Events) {
			return false
		}
	}
	return true
}

func TestServerAnswersEveryRecordedClientWithTheRecordedBytes(t *testing.T) {
	for _, tc := range fixtureCases {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{status: tc.status}
			o := ServerOptions{Deflate: tc.deflate}
			if tc.javaHashes {
				o.ClientHashes = []Hash{}
			}
			_, addr := startServer(t, rec, o)
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(await.Limit))
			if _, err := conn.Write(readFixture(t, tc.name+".client-to-server.bin")); err != nil {
				t.Fatal(err)
			}
			want := readFixture(t, tc.name+".server-to-client.bin")
			var r io.Reader = conn
			if tc.deflate {
				want = inflateAll(t, want)
				zr, err := zlib.NewReader(conn)
				if err != nil {
					t.Fatal(err)
				}
				r = zr
			}
			got := make([]byte, len(want))
			if _, err := io.ReadFull(r, got); err != nil {
				t.Fatalf("read reply: %v (got %x)", err, got)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("reply differs from the recording\n got %x\nwant %x", got, want)
			}
			if !sameCalls(rec.got(), tc.calls) {
				t.Fatalf("handler saw %+v, want %+v", rec.got(), tc.calls)
			}
		})
	}
}

// splitFrames cuts a recorded stream into frames (serial, buffers).
func splitFrames(t testing.TB, stream []byte) []rawFrame {
	t.Helper()
	var out []rawFrame
	r := bytes.NewReader(stream)
	for r.Len() > 0 {
		var f rawFrame
		var hdr [4]byte
		read := func() int32 {
			if _, err := io.ReadFull(r, hdr[:]); err != nil {
				t.Fatalf("split frames: %v", err)
			}
			return int32(uint32(hdr[0])<<24 | uint32(hdr[1])<<16 | uint32(hdr[2])<<8 | uint32(hdr[3]))
		}
		f.serial = read()
		n := read()
		for i := int32(0); i < n; i++ {
			b := make([]byte, read())
			if _, err := io.ReadFull(r, b); err != nil {
				t.Fatal(err)
			}
			f.buffers = append(f.buffers, b)
		}
		out = append(out, f)
	}
	return out
}

type rawFrame struct {
	serial  int32
	buffers [][]byte
}

func (f rawFrame) bytes() []byte {
	fb := frameBuilder{}
	fb.start(f.serial)
	for _, b := range f.buffers {
		fb.buffer(b)
	}
	return fb.finish()
}

func (f rawFrame) payload() []byte { return bytes.Join(f.buffers, nil) }

// scriptedServer accepts one connection and, for each recorded reply frame,
// reads one request from the client and plays the reply. It returns the
// client's bytes (inflated when deflate).
func scriptedServer(t *testing.T, replies []rawFrame, deflate bool) (addr string, clientBytes func() []byte) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer l.Close()
		raw, err := l.Accept()
		if err != nil {
			return
		}
		defer raw.Close()
		raw.SetDeadline(time.Now().Add(await.Limit))
		c := layer(raw, deflate, 6, nil, true)
		fr := frameReader{r: io.TeeReader(c, &got), lim: DefaultLimits()}
		for _, reply := range replies {
			if _, _, err := fr.read(); err != nil {
				t.Errorf("scripted server read: %v", err)
				return
			}
			if _, err := c.Write(reply.bytes()); err != nil {
				t.Errorf("scripted server write: %v", err)
				return
			}
		}
		// Wait for the client to close, so every byte it sent is counted.
		io.Copy(&got, c)
	}()
	return l.Addr().String(), func() []byte { <-done; return got.Bytes() }
}

func TestClientSendsTheRecordedBytesToARecordedServer(t *testing.T) {
	for _, tc := range fixtureCases {
		t.Run(tc.name, func(t *testing.T) {
			replies := splitFrames(t, maybeInflate(t, tc, "server-to-client"))
			addr, clientBytes := scriptedServer(t, replies, tc.deflate)
			c, err := Dial(context.Background(), addr, ClientOptions{Deflate: tc.deflate, DeflateLevel: 6})
			if err != nil {
				t.Fatal(err)
			}
			for _, call := range tc.calls {
				if call.Message == "append" {
					err = c.Append(context.Background(), call.Events[0])
				} else {
					err = c.AppendBatch(context.Background(), call.Events)
				}
				if tc.status == StatusFailed {
					if se, ok := err.(*StatusError); !ok || se.Status != StatusFailed {
						t.Fatalf("call returned %v, want a FAILED status error", err)
					}
				} else if err != nil {
					t.Fatalf("call: %v", err)
				}
			}
			c.Close()
			got := clientBytes()
			want := maybeInflate(t, tc, "client-to-server")
			if tc.javaHashes {
				// The recording's client was a Flume 1.9 speaker; ours is not,
				// so compare what the frames mean.
				checkRetriedHandshake(t, got, want)
				return
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("client bytes differ from the recording\n got %x\nwant %x", got, want)
			}
		})
	}
}

func maybeInflate(t *testing.T, tc fixtureCase, dir string) []byte {
	b := readFixture(t, tc.name+"."+dir+".bin")
	if tc.deflate {
		return inflateAll(t, b)
	}
	return b
}

// checkRetriedHandshake checks that both streams are: a handshake without a
// protocol and a call, then (after NONE) a handshake with a protocol we serve,
// the server's hash as the guess, and the same call.
func checkRetriedHandshake(t *testing.T, got, want []byte) {
	t.Helper()
	type decoded struct {
		hs   handshakeRequest
		call call
	}
	decode := func(stream []byte) []decoded {
		var out []decoded
		for _, f := range splitFrames(t, stream) {
			d := newDecoder(f.payload())
			hs, err := decodeHandshakeRequest(d)
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			c, err := decodeCall(d, DefaultLimits())
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			out = append(out, decoded{hs, c})
		}
		return out
	}
	g, w := decode(got), decode(want)
	if len(g) != 2 || len(w) != 2 {
		t.Fatalf("got %d frames, recording has %d; want 2 each", len(g), len(w))
	}
	for i := range g {
		if g[i].call.message != w[i].call.message || !sameEvents(g[i].call.events, w[i].call.events) {
			t.Errorf("frame %d: call %+v, recording %+v", i, g[i].call, w[i].call)
		}
	}
	if g[0].hs.clientProtocol != nil || g[1].hs.clientProtocol == nil {
		t.Fatalf("protocol text sent on the first try or missing on the retry")
	}
	if err := checkProtocol(*g[1].hs.clientProtocol); err != nil {
		t.Errorf("retry's protocol: %v", err)
	}
	if g[1].hs.serverHash != w[1].hs.serverHash {
		t.Errorf("retry guessed server hash %s, recording %s", g[1].hs.serverHash, w[1].hs.serverHash)
	}
}

func TestProtocolHashesAreTheRecordedOnes(t *testing.T) {
	if got := ProtocolHash.String(); got != "8076c53714e01f6e2c1deb9544e7b1fe" {
		t.Errorf("ProtocolHash = %s", got)
	}
	if !bytes.Equal([]byte(ProtocolText), readFixture(t, "flume-protocol.avpr")) {
		t.Errorf("embedded protocol text differs from the fixture")
	}
	h19 := hashOf(readFixture(t, "flume-1.9-protocol.avpr"))
	if h19 != Flume19Hash {
		t.Errorf("Flume19Hash = %s, fixture hashes to %s", Flume19Hash, h19)
	}
	if err := checkProtocol(string(readFixture(t, "flume-1.9-protocol.avpr"))); err != nil {
		t.Errorf("Flume 1.9 protocol rejected: %v", err)
	}
}

func TestTheRecordedReplyLayoutsAreWhatTheServerBuilds(t *testing.T) {
	frames := splitFrames(t, readFixture(t, "append2-same-conn.server-to-client.bin"))
	lens := func(f rawFrame) []int {
		var out []int
		for _, b := range f.buffers {
			out = append(out, len(b))
		}
		return out
	}
	if got := lens(frames[1]); !reflect.DeepEqual(got, []int{0, 1, 2}) {
		t.Fatalf("second reply's buffers %v, want [0 1 2]", got)
	}
	big := splitFrames(t, readFixture(t, "batch2-big.client-to-server.bin"))
	if got := lens(big[0]); !reflect.DeepEqual(got, []int{48, 8192, 8192, 3642}) {
		t.Fatalf("batch2-big buffers %v", got)
	}
}
