package syslog

import "bytes"

// first runs Flume's extractEvent over msg once: blank lines are skipped,
// the message ends at the first "\n" or at EventSize bytes (Incomplete), or
// at the end of msg. A "\n" inside a bad PRI does not end it (Flume reads it
// as a bad PRI byte).
func (p *Parser) first(msg []byte) (Event, bool) {
	msg = bytes.TrimLeft(msg, "\n")
	if len(msg) == 0 {
		return Event{}, false
	}
	bad, start := priEnd(msg)
	end := len(msg)
	if i := bytes.IndexByte(msg[start:], '\n'); i >= 0 {
		end = start + i
	}
	// At EventSize bytes Flume cuts the message before it looks for "\n",
	// so a message of exactly EventSize bytes is Incomplete too.
	incomplete := false
	if end >= p.o.EventSize {
		end, incomplete = p.o.EventSize, true
	}
	return p.frame(msg[:end], bad, incomplete)
}

// framed parses a whole octet-counted frame: newlines inside it are part of
// the message, except one at its end, which senders such as rsyslog (whose
// forwarding templates end in "\n") add and receivers drop (rsyslog's
// DropTrailingLFOnReception).
func (p *Parser) framed(msg []byte, incomplete bool) (Event, bool) {
	if !incomplete && len(msg) > 0 && msg[len(msg)-1] == '\n' {
		msg = msg[:len(msg)-1]
	}
	if len(msg) == 0 {
		return Event{}, false
	}
	bad, _ := priEnd(msg)
	return p.frame(msg, bad, incomplete)
}

func (p *Parser) frame(msg []byte, bad, incomplete bool) (Event, bool) {
	if len(msg) == 0 {
		return Event{}, false
	}
	if !bad && priDigits(msg) == "" {
		// "<" then nothing: Flume fails to read an empty PRI and drops it.
		return Event{}, false
	}
	return p.build(msg, bad, incomplete), true
}

// priEnd checks the PRI at the start of msg with Flume's rules and returns
// whether it is bad and where the data after it starts: after ">", or after
// the first byte that made it bad (a non-digit, a fourth digit, ">" right
// after "<"), or at the end of msg when msg ends inside the PRI.
func priEnd(msg []byte) (bad bool, start int) {
	if msg[0] != '<' {
		return true, 1
	}
	for i, digits := 1, 0; i < len(msg); i++ {
		switch b := msg[i]; {
		case b == '>':
			return digits == 0, i + 1
		case b < '0' || b > '9' || digits == 3:
			return true, i + 1
		}
		digits++
	}
	return false, len(msg)
}

// Datagram parses one UDP datagram as Flume's syslogudp source does: the
// first message only (up to "\n" or EventSize bytes); whatever follows in
// the same datagram is dropped, and a datagram of blank lines gives no
// event (ok is false).
func (p *Parser) Datagram(b []byte) (e Event, ok bool) { return p.first(b) }
