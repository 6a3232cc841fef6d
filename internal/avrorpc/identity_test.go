package avrorpc

// Contract of the identity in the call metadata (identity.go):
//
//   - A client sending with an identity speaks to a recorded Apache Flume
//     server exactly as Flume's client does, except for the metadata map: its
//     request bytes, with the map put back to the recorded empty one, are the
//     recorded bytes, and the recorded replies (Java's responder ignoring
//     keys it does not know) complete every call.
//   - The server hands an identified batch to an OriginHandler with each
//     event's number, and a batch without one, or with one that does not
//     fit the batch, to AppendBatch as before.

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"testing"
)

var testIdentity = func(n int) *Identity {
	id := &Identity{Origin: [16]byte{0xfe, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 0xef}}
	for i := range n {
		id.Seqs = append(id.Seqs, uint64(1000+i))
	}
	return id
}

func TestAnIdentifiedClientDiffersFromTheRecordingOnlyInTheMetadataMap(t *testing.T) {
	for _, tc := range fixtureCases {
		if tc.javaHashes || tc.calls[0].Message != "appendBatch" {
			continue // append carries no identity
		}
		t.Run(tc.name, func(t *testing.T) {
			replies := splitFrames(t, maybeInflate(t, tc, "server-to-client"))
			addr, clientBytes := scriptedServer(t, replies, tc.deflate)
			c, err := Dial(context.Background(), addr, ClientOptions{Deflate: tc.deflate, DeflateLevel: 6})
			if err != nil {
				t.Fatal(err)
			}
			var ids []*Identity
			for _, call := range tc.calls {
				id := testIdentity(len(call.Events))
				ids = append(ids, id)
				p, err := c.SendFrom(context.Background(), id, call.Events)
				if err == nil {
					err = p.Wait(context.Background())
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
			got := splitFrames(t, clientBytes())
			want := splitFrames(t, maybeInflate(t, tc, "client-to-server"))
			if len(got) != len(want) {
				t.Fatalf("%d request frames, the recording has %d", len(got), len(want))
			}
			for i := range want {
				w := want[i].payload()
				at := 0
				if i == 0 { // the handshake comes before the metadata
					d := newDecoder(w)
					if _, err := decodeHandshakeRequest(d); err != nil {
						t.Fatal(err)
					}
					at = d.off
				}
				if w[at] != 0 {
					t.Fatalf("frame %d: the recording's metadata map is not the empty one", i)
				}
				meta := appendCallMeta(nil, ids[i])
				if len(meta) < 30 {
					t.Fatalf("the identity's map is only %d bytes", len(meta))
				}
				expect := slices.Concat(w[:at], meta, w[at+1:])
				if got[i].serial != want[i].serial || !bytes.Equal(got[i].payload(), expect) {
					t.Fatalf("frame %d differs from the recording beyond the metadata map\n got %x\nwant %x", i, got[i].payload(), expect)
				}
			}
		})
	}
}

// originRecorder is a recorder that also takes identified batches.
type originRecorder struct {
	recorder
	mu  sync.Mutex
	ids []*Identity
}

func (r *originRecorder) AppendBatchFrom(id *Identity, ev []Event) Status {
	r.mu.Lock()
	r.ids = append(r.ids, id)
	r.mu.Unlock()
	return r.AppendBatch(ev)
}

func TestTheServerHandsTheIdentityToAnOriginHandler(t *testing.T) {
	h := &originRecorder{}
	_, addr := startServer(t, h, ServerOptions{})
	c, err := Dial(context.Background(), addr, ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Out of order, with a gap: a batch taken after a rollback.
	id := &Identity{Origin: [16]byte{7}, Seqs: []uint64{50, 51, 10, 11, 12, 90}}
	send := func(id *Identity, evs []Event) {
		t.Helper()
		p, err := c.SendFrom(context.Background(), id, evs)
		if err == nil {
			err = p.Wait(context.Background())
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	send(id, events(0, 6))
	send(nil, events(6, 8)) // as Flume sends
	if len(h.ids) != 1 || h.ids[0].Origin != id.Origin || !slices.Equal(h.ids[0].Seqs, id.Seqs) {
		t.Fatalf("handler got identities %+v, want %+v", h.ids, id)
	}
	if calls := h.got(); len(calls) != 2 || !sameEvents(calls[0].Events, events(0, 6)) || !sameEvents(calls[1].Events, events(6, 8)) {
		t.Fatalf("handler saw %+v", calls)
	}
}

func TestAnIdentityThatDoesNotFitIsIgnored(t *testing.T) {
	good := callMeta{origin: make([]byte, 16), seqs: appendSeqRuns(nil, []uint64{1, 2, 3})}
	if id := good.identity(3); id == nil || !slices.Equal(id.Seqs, []uint64{1, 2, 3}) {
		t.Fatalf("a fitting identity read as %+v", id)
	}
	for name, m := range map[string]callMeta{
		"fewer numbers than events": good,
		"a short origin":            {origin: make([]byte, 15), seqs: good.seqs},
		"no numbers":                {origin: make([]byte, 16)},
		"garbage numbers":           {origin: make([]byte, 16), seqs: []byte{0xff, 0xff}},
		"a run past the events":     {origin: make([]byte, 16), seqs: appendSeqRuns(nil, []uint64{1, 2, 3, 4, 5})},
	} {
		n := 4
		if name == "a run past the events" {
			n = 3
		}
		if id := m.identity(n); id != nil {
			t.Errorf("%s: read as %+v, want none (put as today)", name, id)
		}
	}
}

func FuzzSeqRuns(f *testing.F) {
	f.Add(appendSeqRuns(nil, []uint64{1, 2, 3, 10, 9, 8}), 6)
	f.Add([]byte{1, 0x80}, 1)
	f.Fuzz(func(t *testing.T, b []byte, n int) {
		if n < 0 || n > 1<<12 {
			return
		}
		seqs, err := decodeSeqRuns(b, n)
		if err != nil {
			return
		}
		if len(seqs) != n {
			t.Fatalf("%d numbers for %d events", len(seqs), n)
		}
		back, err := decodeSeqRuns(appendSeqRuns(nil, seqs), n)
		if err != nil || !slices.Equal(back, seqs) {
			t.Fatalf("round trip %v -> %v (%v)", seqs, back, err)
		}
	})
}
