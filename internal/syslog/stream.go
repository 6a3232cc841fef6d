package syslog

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// Stream reads the messages of one TCP connection. Not safe for concurrent
// use: one goroutine per connection.
type Stream struct {
	p   *Parser
	r   *bufio.Reader
	buf []byte // the message being read; never longer than EventSize

	multi    *MultiportLines // frame and parse as multiport_syslogtcp does
	cache    streamCache
	bytewise bool // tests: never take whole messages from the buffer

	// Skipped counts bytes of oversized octet-counted frames that were read
	// and dropped (beyond the EventSize kept as an Incomplete event).
	Skipped int64
}

// ErrTruncated is returned when the stream ends inside a message: Flume
// drops such a tail too, since a message is complete only at its "\n" or
// its octet count.
var ErrTruncated = errors.New("syslog: stream ended inside a message")

// NewStream reads messages from r; r should be buffered by the caller only
// through bufSize (bufio.Reader's size; 0 means 64 KiB).
func NewStream(p *Parser, r io.Reader, bufSize int) *Stream {
	if bufSize <= 0 {
		bufSize = 64 << 10
	}
	return &Stream{p: p, r: bufio.NewReaderSize(r, bufSize), buf: make([]byte, 0, 256)}
}

// Buffered says how many bytes have been read from the connection and not
// yet returned as events: a source puts a batch when the next message would
// have to wait for the network.
func (s *Stream) Buffered() int { return s.r.Buffered() }

// Next returns the next event. At a clean end of stream it returns io.EOF;
// ended inside a message, ErrTruncated; other errors are the reader's.
func (s *Stream) Next() (Event, error) {
	for {
		e, err := s.next()
		if err != errEmpty {
			return e, err
		}
	}
}

// errEmpty says a frame held no event; Next reads on.
var errEmpty = errors.New("syslog: empty frame")

func (s *Stream) next() (Event, error) {
	s.buf = s.buf[:0]
	if s.multi != nil {
		return s.multiLine()
	}
	if !s.bytewise {
		if e, ok := s.whole(); ok {
			return e, nil
		}
	}
	// START: blank lines between messages mean nothing.
	var b byte
	var err error
	for {
		if b, err = s.r.ReadByte(); err != nil {
			return Event{}, err
		}
		if b != '\n' {
			break
		}
	}
	s.buf = append(s.buf, b)
	if s.p.o.OctetCounting && b >= '1' && b <= '9' {
		if n, ok := s.octetCount(); ok {
			return s.counted(n)
		}
		// Not a count: the digits read are the start of an Invalid message.
		return s.data(true)
	}
	bad := false
	if b == '<' {
		bad, err = s.pri()
		if err != nil {
			return Event{}, eofInside(err)
		}
	} else {
		bad = true
	}
	return s.data(bad)
}

// whole builds the next message straight from the read buffer when all of
// it is there, which is what a busy connection almost always has: it starts
// with "<", its "\n" is within EventSize bytes, and its PRI ends before the
// "\n" (a "\n" inside a bad PRI would not end it). Reading byte by byte
// into s.buf, as next does otherwise, gives the same event; ok is false when
// next must do that.
func (s *Stream) whole() (Event, bool) {
	b, _ := s.r.Peek(s.r.Buffered())
	skip := 0
	for skip < len(b) && b[skip] == '\n' {
		skip++
	}
	b = b[skip:]
	if len(b) == 0 || b[0] != '<' {
		return Event{}, false
	}
	end := bytes.IndexByte(b[:min(len(b), s.p.o.EventSize)], '\n')
	if end < 0 {
		return Event{}, false
	}
	line := b[:end]
	bad, start := priEnd(line)
	if !bad && start == len(line) && line[len(line)-1] != '>' {
		return Event{}, false // the line ends inside the PRI
	}
	e := s.p.buildCached(line, bad, false, &s.cache)
	_, _ = s.r.Discard(skip + end + 1)
	return e, true
}

// pri reads after "<" up to and including ">" or the first byte that makes
// the PRI bad (a non-digit, a fourth digit, or ">" right after "<"). Like
// Flume, it does not stop at "\n": a "\n" is just a bad PRI byte.
func (s *Stream) pri() (bad bool, err error) {
	for digits := 0; ; {
		b, err := s.r.ReadByte()
		if err != nil {
			return false, err
		}
		s.buf = append(s.buf, b)
		switch {
		case b == '>':
			return digits == 0, nil
		case b < '0' || b > '9' || digits == 3:
			return true, nil
		}
		digits++
	}
}

// data reads the rest of a newline-terminated message. At EventSize bytes the
// message is cut and Incomplete, even when its "\n" comes next (Flume checks
// the size before it sees the "\n"; the "\n" then reads as a blank line).
func (s *Stream) data(bad bool) (Event, error) {
	max := s.p.o.EventSize
	for len(s.buf) < max {
		if s.r.Buffered() == 0 {
			if _, err := s.r.Peek(1); err != nil {
				return Event{}, eofInside(err)
			}
		}
		peek, _ := s.r.Peek(min(s.r.Buffered(), max-len(s.buf)))
		if i := bytes.IndexByte(peek, '\n'); i >= 0 {
			s.buf = append(s.buf, peek[:i]...)
			_, _ = s.r.Discard(i + 1)
			return s.p.buildCached(s.buf, bad, false, &s.cache), nil
		}
		s.buf = append(s.buf, peek...)
		_, _ = s.r.Discard(len(peek))
	}
	return s.p.buildCached(s.buf, bad, true, &s.cache), nil
}

// octetCount reads the rest of "LEN SP" after the first digit, which is
// in s.buf. When what follows is not up to nine digits and a space, it
// returns false with the digits read so far in s.buf.
func (s *Stream) octetCount() (int, bool) {
	n := int(s.buf[0] - '0')
	for digits := 1; digits <= 9; digits++ {
		peek, err := s.r.Peek(1)
		if err != nil {
			return 0, false
		}
		c := peek[0]
		if c == ' ' {
			_, _ = s.r.Discard(1)
			return n, true
		}
		if c < '0' || c > '9' || digits == 9 {
			return 0, false
		}
		_, _ = s.r.Discard(1)
		n = n*10 + int(c-'0')
		s.buf = append(s.buf, c)
	}
	return 0, false
}

// counted reads an octet-counted message of n bytes, keeping at most
// EventSize of them.
func (s *Stream) counted(n int) (Event, error) {
	s.buf = s.buf[:0]
	keep := min(n, s.p.o.EventSize)
	for len(s.buf) < keep {
		peek, err := s.r.Peek(min(keep-len(s.buf), s.r.Size()))
		if len(peek) == 0 && err != nil {
			return Event{}, eofInside(err)
		}
		s.buf = append(s.buf, peek...)
		_, _ = s.r.Discard(len(peek))
	}
	if skip := n - keep; skip > 0 {
		d, err := s.r.Discard(skip)
		s.Skipped += int64(d)
		if err != nil {
			return Event{}, eofInside(err)
		}
	}
	e, ok := s.p.framed(s.buf, keep < n)
	if !ok {
		return Event{}, errEmpty // "1 <": Flume would drop it too
	}
	return e, nil
}

func eofInside(err error, inside ...bool) error {
	if err == io.EOF && (len(inside) == 0 || inside[0]) {
		return ErrTruncated
	}
	return err
}

// Ready says whether Next can return without waiting for the network: a
// whole message (or EventSize bytes of one) is already buffered. It may say
// false when Next would not wait; a source uses it to put what it has
// before it blocks.
func (s *Stream) Ready() bool {
	n := s.r.Buffered()
	if n == 0 {
		return false
	}
	b, _ := s.r.Peek(n)
	b = bytes.TrimLeft(b, "\n")
	if len(b) == 0 {
		return false
	}
	if s.p.o.OctetCounting && b[0] >= '1' && b[0] <= '9' {
		i, count := 0, 0
		for i < len(b) && i < 10 && b[i] >= '0' && b[i] <= '9' {
			count = count*10 + int(b[i]-'0')
			i++
		}
		if i < len(b) && b[i] == ' ' && i <= 9 {
			return len(b)-i-1 >= count
		}
		if i == len(b) {
			return false
		}
	}
	return len(b) >= s.p.o.EventSize || bytes.IndexByte(b, '\n') >= 0
}

// NewMultiportStream reads messages as multiport_syslogtcp does (see
// Parser.Multiport): lines of at most EventSize bytes counting the "\n".
func NewMultiportStream(p *Parser, r io.Reader, bufSize int, cs MultiportLines) *Stream {
	s := NewStream(p, r, bufSize)
	s.multi = &cs
	return s
}

func (s *Stream) multiLine() (Event, error) {
	max := s.p.o.EventSize
	for len(s.buf) < max {
		if s.r.Buffered() == 0 {
			if _, err := s.r.Peek(1); err != nil {
				return Event{}, eofInside(err, len(s.buf) > 0)
			}
		}
		peek, _ := s.r.Peek(min(s.r.Buffered(), max-len(s.buf)))
		if i := bytes.IndexByte(peek, '\n'); i >= 0 {
			s.buf = append(s.buf, peek[:i]...)
			_, _ = s.r.Discard(i + 1)
			if e, ok := s.p.Multiport(s.buf, false, *s.multi); ok {
				return e, nil
			}
			return Event{}, errEmpty
		}
		s.buf = append(s.buf, peek...)
		_, _ = s.r.Discard(len(peek))
	}
	e, _ := s.p.Multiport(s.buf, true, *s.multi)
	return e, nil
}
