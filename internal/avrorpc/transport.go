package avrorpc

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/zlib"
)

// flateHuffmanOnly is the zlib level for Huffman-only coding: no match search,
// so the compressor needs almost no memory.
const flateHuffmanOnly = zlib.HuffmanOnly

// zlibConn carries a connection inside one zlib stream (RFC 1950) per
// direction for the connection's life, as Netty's JZlibEncoder/JZlibDecoder at
// the socket end of Flume's pipeline do. Every Write is compressed as one piece
// and sync-flushed, so the peer can decode each frame as soon as it arrives.
//
// Read and Write may be used by one goroutine each. Deadlines and addresses
// are the raw connection's.
type zlibConn struct {
	net.Conn
	level  int
	finish bool // write the final block and trailer on Close (Java's client does)
	br     *bufio.Reader
	zr     io.ReadCloser // created on the first Read: creating it reads the stream header
	zw     *zlib.Writer  // created on the first Write
}

func newZlibConn(raw net.Conn, level int, finish bool) *zlibConn {
	return &zlibConn{Conn: raw, level: level, finish: finish, br: bufio.NewReaderSize(raw, 4096)}
}

func (c *zlibConn) Read(p []byte) (int, error) {
	if c.zr == nil {
		zr, err := zlib.NewReader(c.br)
		if err != nil {
			return 0, inflateError(err)
		}
		c.zr = zr
	}
	n, err := c.zr.Read(p)
	if err != nil {
		err = inflateError(err)
	}
	return n, err
}

// inflateError tells corrupt compressed input (a protocol violation) from the
// stream simply ending or the network failing. A peer that closes without
// finishing its stream (the Java server never does) has ended cleanly.
func inflateError(err error) error {
	var corrupt flate.CorruptInputError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return io.EOF
	case errors.As(err, &corrupt), errors.Is(err, zlib.ErrHeader),
		errors.Is(err, zlib.ErrChecksum), errors.Is(err, zlib.ErrDictionary):
		return protoErrorf("deflate stream: %v", err)
	}
	return err
}

func (c *zlibConn) Write(p []byte) (int, error) {
	if c.zw == nil {
		zw, err := zlib.NewWriterLevel(c.Conn, c.level)
		if err != nil {
			return 0, fmt.Errorf("deflate level %d: %w", c.level, err)
		}
		c.zw = zw
	}
	n, err := c.zw.Write(p)
	if err == nil {
		err = c.zw.Flush()
	}
	return n, err
}

func (c *zlibConn) Close() error {
	if c.finish && c.zw != nil {
		_ = c.zw.Close() // best effort: the peer does not need the trailer
	}
	return c.Conn.Close()
}

// layer builds the stack Flume 1.10+ uses over a raw connection: the zlib
// codec sits at the socket end, TLS above it, frames on top, so the wire
// carries zlib(TLS(frames)). (Flume 1.9 layered TLS outside zlib; the two do not
// interoperate when both options are on.) It returns the connection to read
// and write frames on.
func layer(raw net.Conn, deflate bool, level int, tlsCfg *tls.Config, server bool) net.Conn {
	c := raw
	if deflate {
		c = newZlibConn(raw, level, !server)
	}
	if tlsCfg != nil {
		if server {
			c = tls.Server(c, tlsCfg)
		} else {
			c = tls.Client(c, tlsCfg)
		}
	}
	return c
}
