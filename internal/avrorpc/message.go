package avrorpc

import (
	"fmt"
)

// Status is Flume's reply to append and appendBatch (enum Status {OK, FAILED,
// UNKNOWN}).
type Status int

// The Status symbols, in their wire order.
const (
	StatusOK Status = iota
	StatusFailed
	StatusUnknown
)

func (s Status) String() string {
	switch s {
	case StatusOK:
		return "OK"
	case StatusFailed:
		return "FAILED"
	case StatusUnknown:
		return "UNKNOWN"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// StatusError is a call answered with a Status other than OK.
type StatusError struct {
	Status Status
}

func (e *StatusError) Error() string { return "remote answered " + e.Status.String() }

// RemoteError is a call the server answered with an Avro error (for example
// a message it does not know), carrying the server's text.
type RemoteError struct {
	Message string
}

func (e *RemoteError) Error() string { return "remote error: " + e.Message }

// Message names of Flume's protocol.
const (
	msgAppend      = "append"
	msgAppendBatch = "appendBatch"
)

// maxMessageName bounds a message name; Flume's are at most 11 bytes.
const maxMessageName = 1024

// call is one decoded request after the handshake part.
type call struct {
	message string    // "append", "appendBatch", or "" for a handshake ping
	events  []Event   // one for append
	id      *Identity // appendBatch: its events' identity, nil when none (identity.go)
}

// unknownMessageError is a well-formed call of a message we do not serve. It
// is answered with an Avro system error, as Java's Responder answers it, and
// the connection stays open.
type unknownMessageError struct{ name string }

func (e *unknownMessageError) Error() string {
	return "org.apache.avro.AvroRuntimeException: No such remote message: " + e.name
}

// decodeCall decodes call metadata, the message name and its parameters.
func decodeCall(d *decoder, lim Limits) (call, error) {
	var c call
	meta, err := readCallMeta(d)
	if err != nil {
		return c, err
	}
	name, err := d.string("message name", maxMessageName)
	if err != nil {
		return c, err
	}
	c.message = name
	switch name {
	case "":
		return c, nil
	case msgAppend:
		e, err := decodeEvent(d, lim)
		if err != nil {
			return c, fmt.Errorf("append: %w", err)
		}
		c.events = []Event{e}
	case msgAppendBatch:
		if c.events, err = decodeEventArray(d, lim); err != nil {
			return c, fmt.Errorf("appendBatch: %w", err)
		}
		c.id = meta.identity(len(c.events))
	default:
		return c, &unknownMessageError{name: name}
	}
	return c, nil
}

// appendStatusResponse appends a reply frame laid out as Java's Responder
// lays it out: handshake buffer (empty once past the handshake), call metadata
// buffer (an empty map), then error flag false and the Status.
func appendStatusResponse(b []byte, serial int32, hs []byte, st Status) []byte {
	f := frameBuilder{b: b}
	f.start(serial)
	f.buffer(hs)
	f.buffer([]byte{0})
	f.buffer([]byte{0, byte(st) << 1})
	return f.finish()
}

// appendErrorResponse appends a reply carrying an Avro system error: error
// flag true, union branch 0 (string), the text.
func appendErrorResponse(b []byte, serial int32, hs []byte, text string) []byte {
	f := frameBuilder{b: b}
	f.start(serial)
	f.buffer(hs)
	f.buffer([]byte{0})
	f.buffer(appendString([]byte{1, 0}, text))
	return f.finish()
}

// appendHandshakeOnly appends a reply holding only a handshake response: the
// answer to a NONE handshake or to a handshake ping.
func appendHandshakeOnly(b []byte, serial int32, hs []byte) []byte {
	f := frameBuilder{b: b}
	f.start(serial)
	f.buffer(hs)
	return f.finish()
}

// appendCallRequest appends a request frame laid out as Java's Requestor lays
// it out: buffer 1 = [handshake] + call metadata (empty unless id names the
// events) + message name, then the parameters in buffers of at most 8 KiB.
func appendCallRequest(b []byte, serial int32, hs *handshakeRequest, id *Identity, message string, params []byte) []byte {
	f := frameBuilder{b: b}
	f.start(serial)
	at := len(f.b)
	f.b = append(f.b, 0, 0, 0, 0)
	if hs != nil {
		f.b = appendHandshakeRequest(f.b, hs)
	}
	f.b = appendCallMeta(f.b, id)
	f.b = appendString(f.b, message)
	putLen(f.b[at:], len(f.b)-at-4)
	f.count++
	f.split(params)
	return f.finish()
}

func putLen(b []byte, n int) {
	b[0], b[1], b[2], b[3] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
}

// decodeCallResponse decodes what follows the handshake in a reply: call
// metadata, the error flag, then a Status or a system error string.
func decodeCallResponse(d *decoder) (Status, error) {
	if err := d.skipBytesMap("response metadata", maxHandshakeMeta); err != nil {
		return 0, err
	}
	isErr, err := d.boolean()
	if err != nil {
		return 0, fmt.Errorf("response error flag: %w", err)
	}
	if isErr {
		if _, err := d.index("error union", 1); err != nil {
			return 0, err
		}
		text, err := d.string("error text", 1<<20)
		if err != nil {
			return 0, err
		}
		return 0, &RemoteError{Message: text}
	}
	st, err := d.index("status", 3)
	if err != nil {
		return 0, err
	}
	return Status(st), nil
}
