package avrorpc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
)

// ErrProtocol marks input that breaks the wire protocol or one of the limits.
// A server closes the connection that sent it; a client gives the connection up.
var ErrProtocol = errors.New("avro rpc protocol violation")

func protoErrorf(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrProtocol, fmt.Sprintf(format, a...))
}

// splitSize is where outgoing payloads are cut into buffers, as Java's
// ByteBufferOutputStream does (8 KiB). Receivers join buffers, so the split only
// matters for byte-exact comparison with recordings.
const splitSize = 8192

// frameReader reads Netty frame packs: int32 serial, int32 buffer count (>= 1),
// then count times int32 length + bytes. All integers are big-endian.
//
// Memory grows only as bytes arrive: a declared length is checked against the
// limits first, and the payload buffer is enlarged step by step (at most
// doubling) while it fills, so a peer that declares 60 MiB and sends 10 bytes
// makes us hold a few KiB. Each enlargement is charged to the shared budget.
type frameReader struct {
	r      io.Reader
	lim    Limits
	budget *budget // nil: no shared budget
	hint   int     // size of the previous frame: the next one likely needs as much
	held   int     // bytes charged to the budget for the frame being read or handled
	hdr    [8]byte
}

// read returns the next frame's serial and joined payload. It returns io.EOF
// only when the stream ends cleanly between frames. The payload is freshly
// allocated: decoded events may alias it. Call release once the frame has been
// handled.
func (fr *frameReader) read() (int32, []byte, error) {
	if _, err := io.ReadFull(fr.r, fr.hdr[:8]); err != nil {
		return 0, nil, err
	}
	serial := int32(binary.BigEndian.Uint32(fr.hdr[0:4]))
	count := int32(binary.BigEndian.Uint32(fr.hdr[4:8]))
	if count <= 0 {
		return 0, nil, protoErrorf("frame %d declares %d buffers", serial, count)
	}
	if int(count) > fr.lim.MaxBuffers {
		return 0, nil, protoErrorf("frame %d declares %d buffers, more than the limit of %d", serial, count, fr.lim.MaxBuffers)
	}
	var payload []byte
	for i := int32(0); i < count; i++ {
		if _, err := io.ReadFull(fr.r, fr.hdr[:4]); err != nil {
			return 0, nil, truncated(err)
		}
		n := int32(binary.BigEndian.Uint32(fr.hdr[0:4]))
		if n < 0 {
			return 0, nil, protoErrorf("frame %d buffer %d has negative length %d", serial, i, n)
		}
		if int64(len(payload))+int64(n) > int64(fr.lim.MaxFrameBytes) {
			return 0, nil, protoErrorf("frame %d is larger than the limit of %d bytes (buffer %d declares %d more after %d)",
				serial, fr.lim.MaxFrameBytes, i, n, len(payload))
		}
		var err error
		if payload, err = fr.fill(payload, int(n), i == count-1); err != nil {
			return 0, nil, err
		}
	}
	fr.hint = len(payload)
	return serial, payload, nil
}

// fill appends the next n bytes of the stream to p, enlarging p only when it
// is full: at least doubling it (or to the previous frame's size), never past
// the frame limit, and for the frame's last buffer never past its end.
func (fr *frameReader) fill(p []byte, n int, last bool) ([]byte, error) {
	for n > 0 {
		if len(p) == cap(p) {
			grow := max(cap(p), 4096, fr.hint-len(p))
			grow = min(grow, fr.lim.MaxFrameBytes-len(p))
			if last {
				grow = min(grow, n)
			}
			if !fr.budget.take(grow) {
				return p, fmt.Errorf("%w: %d bytes in flight on all connections", errBudget, fr.budget.limit)
			}
			fr.held += grow
			q := make([]byte, len(p), len(p)+grow)
			copy(q, p)
			p = q
		}
		m := min(n, cap(p)-len(p))
		if _, err := io.ReadFull(fr.r, p[len(p):len(p)+m]); err != nil {
			return p, truncated(err)
		}
		p = p[:len(p)+m]
		n -= m
	}
	return p, nil
}

// release returns what the last frame charged to the shared budget.
func (fr *frameReader) release() {
	fr.budget.give(fr.held)
	fr.held = 0
}

// truncated turns an EOF inside a frame into io.ErrUnexpectedEOF.
func truncated(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// errBudget means the server-wide budget for frame bytes in flight is spent.
var errBudget = errors.New("server memory budget exhausted")

// budget is a server-wide cap on frame bytes held by all connections at once.
// A connection that cannot get more is closed rather than made to wait, so
// connections never wait on each other.
type budget struct {
	limit int64
	used  atomic.Int64
}

func (b *budget) take(n int) bool {
	if b == nil {
		return true
	}
	if b.used.Add(int64(n)) > b.limit {
		b.used.Add(-int64(n))
		return false
	}
	return true
}

func (b *budget) give(n int) {
	if b != nil && n != 0 {
		b.used.Add(-int64(n))
	}
}

// frameBuilder appends one frame pack to a byte slice.
type frameBuilder struct {
	b       []byte
	countAt int
	count   int
}

// start begins a frame with serial.
func (f *frameBuilder) start(serial int32) {
	f.b = binary.BigEndian.AppendUint32(f.b, uint32(serial))
	f.countAt = len(f.b)
	f.count = 0
	f.b = append(f.b, 0, 0, 0, 0)
}

// buffer appends one buffer holding p (which may be empty).
func (f *frameBuilder) buffer(p []byte) {
	f.b = binary.BigEndian.AppendUint32(f.b, uint32(len(p)))
	f.b = append(f.b, p...)
	f.count++
}

// split appends p as buffers of at most splitSize bytes (one empty buffer when
// p is empty), like Java's sender.
func (f *frameBuilder) split(p []byte) {
	for {
		n := min(len(p), splitSize)
		f.buffer(p[:n])
		p = p[n:]
		if len(p) == 0 {
			return
		}
	}
}

// finish patches the buffer count and returns the bytes built so far. A frame
// is never left with zero buffers: Java's decoder would never finish it.
func (f *frameBuilder) finish() []byte {
	if f.count == 0 {
		f.buffer(nil)
	}
	binary.BigEndian.PutUint32(f.b[f.countAt:], uint32(f.count))
	return f.b
}
