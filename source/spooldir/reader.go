package spooldir

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"
)

// This file is the spooling directory source's LINE deserializer: it cuts a
// file's bytes into lines, decodes them from inputCharset and re-encodes them
// as UTF-8, and splits lines longer than deserializer.maxLineLength
// characters.
//
// Flume's LineDeserializer counts UTF-16 chars, stops a line at '\n' only (a
// '\r' stays in the body), and at maxLineLength characters logs "truncating
// line" but in fact ends the event there and starts the next event with the
// rest of the line: a split, not a truncation. flumed does the same, except
// that a line of exactly maxLineLength characters is one event, where Flume
// follows it with an empty one.

// spoolCharset decodes one charset flumed supports for inputCharset.
type spoolCharset int

const (
	charsetUTF8 spoolCharset = iota
	charsetASCII
	charsetLatin1
)

// parseSpoolCharset maps Java charset names and their common aliases.
func parseSpoolCharset(name string) (spoolCharset, bool) {
	switch strings.ToUpper(strings.ReplaceAll(name, "_", "-")) {
	case "UTF-8", "UTF8":
		return charsetUTF8, true
	case "US-ASCII", "ASCII":
		return charsetASCII, true
	case "ISO-8859-1", "ISO8859-1", "LATIN1", "ISO-LATIN-1":
		return charsetLatin1, true
	}
	return 0, false
}

// Decode error policies (decodeErrorPolicy).
const (
	decodeFail = iota
	decodeReplace
	decodeIgnore
)

// errDecode is a malformed byte sequence under decodeErrorPolicy=FAIL.
var errDecode = errors.New("malformed input")

// spoolReader reads lines from one file up to the size it had when picked up.
// buf[r:w] holds the bytes from offset off on.
type spoolReader struct {
	f       *os.File
	limit   int64 // the size at pickup: bytes written later are not read
	buf     []byte
	r, w    int
	off     int64
	charset spoolCharset
	policy  int
	maxLine int // characters
	eof     bool
}

func newSpoolReader(f *os.File, off, limit int64, cs spoolCharset, policy, maxLine int) *spoolReader {
	return &spoolReader{f: f, off: off, limit: limit, charset: cs, policy: policy, maxLine: maxLine,
		buf: make([]byte, max(64<<10, 4*maxLine+8))}
}

// maxLineBytes is the most bytes maxLine characters can take.
func (sr *spoolReader) maxLineBytes() int { return 4*sr.maxLine + 4 }

// fill reads more of the file after the buffered bytes.
func (sr *spoolReader) fill() error {
	if sr.r > 0 {
		sr.w = copy(sr.buf, sr.buf[sr.r:sr.w])
		sr.r = 0
	}
	end := sr.off + int64(sr.w)
	room := int64(len(sr.buf) - sr.w)
	if rest := sr.limit - end; rest < room {
		room = rest
	}
	if room <= 0 {
		sr.eof = true
		return nil
	}
	n, err := sr.f.ReadAt(sr.buf[sr.w:sr.w+int(room)], end)
	sr.w += n
	if errors.Is(err, io.EOF) {
		err = nil // a short read at the end is not an error
	}
	if err != nil {
		return err
	}
	if n == 0 {
		sr.eof = true // the file shrank under us; the caller notices at the end
	}
	return nil
}

// next returns the next line decoded to UTF-8 (appended to dst) and the
// offset after it. ok is false at the end of the file.
func (sr *spoolReader) next(dst []byte) (line []byte, end int64, ok bool, err error) {
	for {
		window := sr.buf[sr.r:sr.w]
		nl := bytes.IndexByte(window, '\n')
		if nl < 0 && !sr.eof && len(window) < sr.maxLineBytes() {
			if err := sr.fill(); err != nil {
				return dst, sr.off, false, err
			}
			continue
		}
		if len(window) == 0 {
			return dst, sr.off, false, nil
		}
		seg := window
		if nl >= 0 {
			seg = window[:nl]
		}
		out, used, full, derr := sr.decode(dst, seg)
		if derr != nil {
			return dst, sr.off, false, fmt.Errorf("byte offset %d: %w", sr.off+int64(used), derr)
		}
		if !full && nl >= 0 {
			used = nl + 1 // the whole line fit: consume its newline too
		}
		sr.r += used
		sr.off += int64(used)
		return out, sr.off, true, nil
	}
}

// decode appends seg decoded to dst, stopping after maxLine characters. used
// is the number of bytes consumed; full reports that decoding stopped at the
// limit (the rest of the line follows as the next event).
func (sr *spoolReader) decode(dst, seg []byte) (out []byte, used int, full bool, err error) {
	chars := 0
	for used < len(seg) {
		if chars >= sr.maxLine {
			return dst, used, true, nil
		}
		b := seg[used]
		switch {
		case b < utf8.RuneSelf:
			dst = append(dst, b)
			used++
			chars++
		case sr.charset == charsetLatin1:
			dst = utf8.AppendRune(dst, rune(b))
			used++
			chars++
		case sr.charset == charsetASCII:
			if dst, err = sr.malformed(dst); err != nil {
				return dst, used, false, err
			}
			used++
			chars++
		default:
			r, size := utf8.DecodeRune(seg[used:])
			if r == utf8.RuneError && size <= 1 {
				if dst, err = sr.malformed(dst); err != nil {
					return dst, used, false, err
				}
				used++
				chars++
				continue
			}
			n := 1
			if r > 0xFFFF {
				n = 2 // a surrogate pair in Java's chars
			}
			if chars+n > sr.maxLine && chars > 0 {
				return dst, used, true, nil
			}
			dst = append(dst, seg[used:used+size]...)
			used += size
			chars += n
		}
	}
	return dst, used, false, nil
}

// malformed applies decodeErrorPolicy to one malformed byte.
func (sr *spoolReader) malformed(dst []byte) ([]byte, error) {
	switch sr.policy {
	case decodeReplace:
		return utf8.AppendRune(dst, utf8.RuneError), nil
	case decodeIgnore:
		return dst, nil
	}
	return dst, errDecode
}
