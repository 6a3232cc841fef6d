package source

import (
	"bufio"
	"bytes"
	"io"
)

// lineReader splits a byte stream into lines the way Java's
// BufferedReader.readLine does ("\n", "\r" and "\r\n" end a line and are not
// part of it; a last line without a terminator still counts), but never holds
// more than max bytes of one line: a longer line comes out in pieces of max
// bytes, each marked as split. It is what keeps a child that never writes a
// newline from growing flumed's memory without bound.
type lineReader struct {
	r      *bufio.Reader
	max    int
	skipLF bool // the last line ended with '\r': a '\n' right after belongs to it
}

func newLineReader(r io.Reader, max int) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, min(max+1, 64<<10)), max: max}
}

// next returns the next line, a fresh slice the caller may keep. split is set
// when the line was cut at max bytes and the rest follows as the next line.
// At the end of the stream it returns io.EOF (after the last line).
func (lr *lineReader) next() (line []byte, split bool, err error) {
	for {
		buf, err := lr.fill()
		if err != nil {
			if line != nil && err == io.EOF {
				return line, false, nil
			}
			return nil, false, err
		}
		if lr.skipLF {
			lr.skipLF = false
			if buf[0] == '\n' {
				_, _ = lr.r.Discard(1)
				continue
			}
		}
		if line == nil {
			line = []byte{}
		}
		room := lr.max - len(line)
		if i := bytes.IndexAny(buf, "\r\n"); i >= 0 && i <= room {
			line = append(line, buf[:i]...)
			lr.skipLF = buf[i] == '\r'
			_, _ = lr.r.Discard(i + 1)
			return line, false, nil
		}
		n := min(len(buf), room)
		line = append(line, buf[:n]...)
		_, _ = lr.r.Discard(n)
		if len(line) < lr.max {
			continue
		}
		// The line is full: if its terminator comes right after, it was not
		// too long after all.
		if b, err := lr.r.Peek(1); err == nil && (b[0] == '\n' || b[0] == '\r') {
			lr.skipLF = b[0] == '\r'
			_, _ = lr.r.Discard(1)
			return line, false, nil
		}
		return line, true, nil
	}
}

// fill returns the buffered bytes, reading more when none are buffered.
func (lr *lineReader) fill() ([]byte, error) {
	if _, err := lr.r.Peek(1); err != nil {
		return nil, err
	}
	return lr.r.Peek(lr.r.Buffered())
}
