package avrorpc

// Contract (fuzzed, seeded with the recorded transcripts): no input makes the
// frame, handshake or call decoders panic or exceed their limits, and what
// they accept re-encodes to something that decodes the same.
//
//	go test -run '^$' -fuzz FuzzCall ./internal/avrorpc

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fixtureStreams returns every recorded stream, inflated where it was deflated.
func fixtureStreams(f *testing.F) [][]byte {
	f.Helper()
	names, err := filepath.Glob(filepath.Join(fixtureDir, "*.bin"))
	if err != nil || len(names) == 0 {
		f.Fatalf("no fixtures: %v", err)
	}
	var out [][]byte
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			f.Fatal(err)
		}
		if strings.Contains(n, "deflate") {
			b = inflateAll(f, b)
		}
		out = append(out, b)
	}
	return out
}

// fixturePayloads returns the joined payload of every recorded frame.
func fixturePayloads(f *testing.F) [][]byte {
	var out [][]byte
	for _, s := range fixtureStreams(f) {
		for _, fr := range splitFrames(f, s) {
			out = append(out, fr.payload())
		}
	}
	return out
}

var fuzzLimits = Limits{MaxFrameBytes: 1 << 20, MaxBuffers: 64, MaxBatchEvents: 1000, MaxHeaders: 16, MaxHeaderBytes: 1024, MaxBodyBytes: 64 << 10}

func FuzzFrame(f *testing.F) {
	for _, s := range fixtureStreams(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		bud := &budget{limit: 4 << 20}
		fr := frameReader{r: bytes.NewReader(b), lim: fuzzLimits, budget: bud}
		for {
			_, payload, err := fr.read()
			fr.release()
			if err != nil {
				break
			}
			if len(payload) > fuzzLimits.MaxFrameBytes {
				t.Fatalf("payload of %d bytes passed the limit", len(payload))
			}
		}
		if bud.used.Load() != 0 {
			t.Fatalf("budget leaked %d bytes", bud.used.Load())
		}
	})
}

func FuzzHandshake(f *testing.F) {
	for _, p := range fixturePayloads(f) {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if req, err := decodeHandshakeRequest(newDecoder(b)); err == nil {
			again, err := decodeHandshakeRequest(newDecoder(appendHandshakeRequest(nil, &req)))
			if err != nil || again.clientHash != req.clientHash || again.serverHash != req.serverHash ||
				(again.clientProtocol == nil) != (req.clientProtocol == nil) {
				t.Fatalf("request did not round-trip: %+v vs %+v (%v)", req, again, err)
			}
		}
		if resp, err := decodeHandshakeResponse(newDecoder(b)); err == nil {
			again, err := decodeHandshakeResponse(newDecoder(appendHandshakeResponse(nil, &resp)))
			if err != nil || again.match != resp.match || (again.serverHash == nil) != (resp.serverHash == nil) {
				t.Fatalf("response did not round-trip: %+v vs %+v (%v)", resp, again, err)
			}
		}
	})
}

func FuzzCall(f *testing.F) {
	for _, p := range fixturePayloads(f) {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// Through the server's whole request path, handshake included.
		rec := &recorder{}
		s := NewServer(rec, ServerOptions{Limits: fuzzLimits})
		var st connState
		for range 2 { // the same bytes before and after the handshake
			if _, err := s.respond(&st, 1, b, nil); err != nil {
				break
			}
		}
		for _, c := range rec.got() {
			if len(c.Events) > fuzzLimits.MaxBatchEvents {
				t.Fatalf("%d events passed the limit", len(c.Events))
			}
			enc := appendEventArray(nil, c.Events)
			back, err := decodeEventArray(newDecoder(enc), fuzzLimits)
			if err != nil || !sameEvents(back, c.Events) {
				t.Fatalf("accepted events did not round-trip: %v", err)
			}
		}
		// The call decoder alone, as the part after a handshake.
		if c, err := decodeCall(newDecoder(b), fuzzLimits); err == nil && len(c.events) > fuzzLimits.MaxBatchEvents {
			t.Fatalf("%d events passed the limit", len(c.events))
		}
	})
}
