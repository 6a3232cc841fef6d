package avrorpc

import (
	"crypto/md5"
	_ "embed" // the protocol text
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"github.com/hamba/avro/v2"
)

// ProtocolText is Flume's AvroSourceProtocol exactly as Avro Java prints it
// for Flume 1.10/1.11 (with the licence header as doc). Its MD5 is the hash
// those Flume versions send, so using the same text makes a Java peer answer
// BOTH at once.
//
//go:embed flume-protocol.avpr
var ProtocolText string

// Hash is an Avro protocol hash: the MD5 of the protocol's JSON text.
type Hash [16]byte

func (h Hash) String() string { return hex.EncodeToString(h[:]) }

var (
	// ProtocolHash is the MD5 of ProtocolText, 8076c53714e01f6e2c1deb9544e7b1fe.
	ProtocolHash = Hash(md5.Sum([]byte(ProtocolText)))
	// Flume19Hash is what a Flume 1.9 client (Avro 1.7.4) sends: the same
	// protocol with a differently extracted doc string.
	Flume19Hash = Hash{0x86, 0xaa, 0xda, 0xe2, 0xc4, 0x54, 0x74, 0xc0, 0xfe, 0x93, 0xff, 0xd0, 0xf2, 0x35, 0x0a, 0x65}
)

// Handshake match values (enum HandshakeMatch {BOTH, CLIENT, NONE}).
const (
	matchBoth   = 0
	matchClient = 1
	matchNone   = 2
)

var matchNames = [...]string{"BOTH", "CLIENT", "NONE"}

// maxProtocolText bounds a protocol text received in a handshake; Flume's is
// about 1.3 KB.
const maxProtocolText = 256 << 10

// maxHandshakeMeta bounds the entries of a handshake or call metadata map.
const maxHandshakeMeta = 256

// handshakeRequest is org.apache.avro.ipc.HandshakeRequest.
type handshakeRequest struct {
	clientHash     Hash
	clientProtocol *string // union {null, string}
	serverHash     Hash
}

// handshakeResponse is org.apache.avro.ipc.HandshakeResponse; meta is always
// null when we write it, as the Java server writes it.
type handshakeResponse struct {
	match          int
	serverProtocol *string // union {null, string}
	serverHash     *Hash   // union {null, MD5}
}

// appendHandshakeRequest writes the request the way Flume's Java client does:
// meta is an empty map (02 00), not null.
func appendHandshakeRequest(b []byte, r *handshakeRequest) []byte {
	b = append(b, r.clientHash[:]...)
	if r.clientProtocol == nil {
		b = append(b, 0)
	} else {
		b = append(b, 2)
		b = appendString(b, *r.clientProtocol)
	}
	b = append(b, r.serverHash[:]...)
	return append(b, 2, 0)
}

func decodeHandshakeRequest(d *decoder) (handshakeRequest, error) {
	var r handshakeRequest
	if err := d.fixed(r.clientHash[:]); err != nil {
		return r, fmt.Errorf("handshake clientHash: %w", err)
	}
	branch, err := d.index("handshake clientProtocol union", 2)
	if err != nil {
		return r, err
	}
	if branch == 1 {
		s, err := d.string("handshake clientProtocol", maxProtocolText)
		if err != nil {
			return r, err
		}
		r.clientProtocol = &s
	}
	if err := d.fixed(r.serverHash[:]); err != nil {
		return r, fmt.Errorf("handshake serverHash: %w", err)
	}
	if err := decodeNullableMeta(d, "handshake meta"); err != nil {
		return r, err
	}
	return r, nil
}

// decodeNullableMeta skips a union {null, map<bytes>}.
func decodeNullableMeta(d *decoder, what string) error {
	branch, err := d.index(what+" union", 2)
	if err != nil || branch == 0 {
		return err
	}
	return d.skipBytesMap(what, maxHandshakeMeta)
}

func appendHandshakeResponse(b []byte, r *handshakeResponse) []byte {
	b = appendLong(b, int64(r.match))
	if r.serverProtocol == nil {
		b = append(b, 0)
	} else {
		b = append(b, 2)
		b = appendString(b, *r.serverProtocol)
	}
	if r.serverHash == nil {
		b = append(b, 0)
	} else {
		b = append(b, 2)
		b = append(b, r.serverHash[:]...)
	}
	return append(b, 0) // meta: null
}

func decodeHandshakeResponse(d *decoder) (handshakeResponse, error) {
	var r handshakeResponse
	var err error
	if r.match, err = d.index("handshake match", 3); err != nil {
		return r, err
	}
	branch, err := d.index("handshake serverProtocol union", 2)
	if err != nil {
		return r, err
	}
	if branch == 1 {
		s, err := d.string("handshake serverProtocol", maxProtocolText)
		if err != nil {
			return r, err
		}
		r.serverProtocol = &s
	}
	if branch, err = d.index("handshake serverHash union", 2); err != nil {
		return r, err
	}
	if branch == 1 {
		var h Hash
		if err := d.fixed(h[:]); err != nil {
			return r, fmt.Errorf("handshake serverHash: %w", err)
		}
		r.serverHash = &h
	}
	return r, decodeNullableMeta(d, "handshake meta")
}

// handshake answers a HandshakeRequest as Avro's Java Responder does: a
// known client hash, or a client protocol we can serve, gives BOTH when the
// client guessed our hash and CLIENT otherwise; anything else gives NONE, and
// the client is expected to retry with its protocol text. Every answer but
// BOTH carries our protocol and hash.
func (s *Server) handshake(req *handshakeRequest) (handshakeResponse, error) {
	s.mu.Lock()
	known := s.known[req.clientHash]
	s.mu.Unlock()
	if !known && req.clientProtocol != nil {
		if err := checkProtocol(*req.clientProtocol); err != nil {
			return handshakeResponse{}, protoErrorf("client protocol %s: %v", req.clientHash, err)
		}
		known = true
		s.mu.Lock()
		if len(s.known) < maxLearned {
			s.known[req.clientHash] = true
		}
		s.mu.Unlock()
	}
	var r handshakeResponse
	switch {
	case !known:
		r.match = matchNone
	case req.serverHash == ProtocolHash:
		r.match = matchBoth
	default:
		r.match = matchClient
	}
	if r.match != matchBoth {
		r.serverProtocol = &ProtocolText
		r.serverHash = &ProtocolHash
	}
	return r, nil
}

// served are the messages this package speaks, in Flume's protocol.
var served = []string{"append", "appendBatch"}

var ourProtocol = sync.OnceValue(func() *avro.Protocol {
	p, err := avro.ParseProtocol(ProtocolText)
	if err != nil {
		panic(fmt.Sprintf("avrorpc: embedded protocol does not parse: %v", err))
	}
	return p
})

// checkProtocol reports whether a peer's protocol text declares messages we
// serve with exactly our schemas (compared by Avro canonical-form
// fingerprint, so doc strings and formatting do not matter). Every one of our
// messages it declares must match, and it must declare at least one.
func checkProtocol(text string) (err error) {
	defer func() {
		// The parser is a third-party library fed with bytes from the network:
		// a panic in it must cost one connection, not the process.
		if r := recover(); r != nil {
			err = fmt.Errorf("parse peer protocol: panic: %v", r)
		}
	}()
	p, err := avro.ParseProtocol(text)
	if err != nil {
		return fmt.Errorf("parse peer protocol: %w", err)
	}
	// Messages refer to named types by name only, so compare the named types
	// (Status, AvroFlumeEvent) themselves too.
	theirTypes := map[string][32]byte{}
	for _, nt := range p.Types() {
		theirTypes[nt.FullName()] = nt.Fingerprint()
	}
	for _, nt := range ourProtocol().Types() {
		if fp, ok := theirTypes[nt.FullName()]; !ok || fp != nt.Fingerprint() {
			return fmt.Errorf("peer protocol's %s differs from Flume's", nt.FullName())
		}
	}
	found := 0
	for _, name := range served {
		theirs := p.Message(name)
		if theirs == nil {
			continue
		}
		ours := ourProtocol().Message(name)
		if theirs.Request().Fingerprint() != ours.Request().Fingerprint() ||
			fingerprint(theirs.Response()) != fingerprint(ours.Response()) {
			return fmt.Errorf("peer protocol's %s message differs from Flume's", name)
		}
		found++
	}
	if found == 0 {
		return errors.New("peer protocol declares neither append nor appendBatch")
	}
	return nil
}

func fingerprint(s avro.Schema) [32]byte {
	if s == nil {
		return [32]byte{}
	}
	return s.Fingerprint()
}
