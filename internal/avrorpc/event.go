package avrorpc

import (
	"fmt"
	"unsafe"
)

// Event is one AvroFlumeEvent: {headers: map<string>, body: bytes}. It has the
// same shape as channel.Event, so callers convert with a plain conversion.
type Event struct {
	Headers map[string]string
	Body    []byte
}

// Limits bound what one peer may make this process hold. Every count and
// length read from the wire is checked against them, and against the bytes
// actually received, before anything is allocated for it.
type Limits struct {
	// MaxFrameBytes bounds the sum of the buffer lengths of one frame: the
	// size of one Avro message (handshake + call + all its events).
	MaxFrameBytes int
	// MaxBuffers bounds the number of buffers in one frame (Java splits
	// payloads at 8 KiB, so a frame of MaxFrameBytes needs MaxFrameBytes/8192).
	MaxBuffers int
	// MaxBatchEvents bounds the events of one appendBatch.
	MaxBatchEvents int
	// MaxHeaders bounds the headers of one event.
	MaxHeaders int
	// MaxHeaderBytes bounds one header key or value.
	MaxHeaderBytes int
	// MaxBodyBytes bounds one event body.
	MaxBodyBytes int
}

// DefaultLimits are generous for Flume traffic (a batch of 100,000 events, a
// frame of 64 MiB) and still bound one connection's memory.
func DefaultLimits() Limits {
	return Limits{
		MaxFrameBytes:  64 << 20,
		MaxBuffers:     1 << 16,
		MaxBatchEvents: 100_000,
		MaxHeaders:     1024,
		MaxHeaderBytes: 64 << 10,
		MaxBodyBytes:   64 << 20,
	}
}

// withDefaults fills zero fields from DefaultLimits.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxFrameBytes <= 0 {
		l.MaxFrameBytes = d.MaxFrameBytes
	}
	if l.MaxBuffers <= 0 {
		l.MaxBuffers = d.MaxBuffers
	}
	if l.MaxBatchEvents <= 0 {
		l.MaxBatchEvents = d.MaxBatchEvents
	}
	if l.MaxHeaders <= 0 {
		l.MaxHeaders = d.MaxHeaders
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = d.MaxHeaderBytes
	}
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = d.MaxBodyBytes
	}
	return l
}

// appendEvent appends one AvroFlumeEvent (headers as one map block, as Java
// writes them).
func appendEvent(b []byte, e *Event) []byte {
	if len(e.Headers) > 0 {
		b = appendLong(b, int64(len(e.Headers)))
		for k, v := range e.Headers {
			b = appendString(b, k)
			b = appendString(b, v)
		}
	}
	b = append(b, 0)
	return appendBytes(b, e.Body)
}

// appendEventArray appends an array<AvroFlumeEvent> as one block.
func appendEventArray(b []byte, events []Event) []byte {
	if len(events) > 0 {
		b = appendLong(b, int64(len(events)))
		for i := range events {
			b = appendEvent(b, &events[i])
		}
	}
	return append(b, 0)
}

// eventShape is what a validating pass over events found: enough to allocate
// the decoded events exactly, once.
type eventShape struct {
	events      int
	headerBytes int
}

// eventReader decodes events in two passes over the same bytes: scan checks
// every count and length against the limits and the bytes present, then read
// allocates exactly what scan measured. Nothing is allocated for input that
// fails the scan.
type eventReader struct {
	lim   Limits
	shape eventShape
	arena []byte // header keys and values, filled once, never rewritten
}

// scanEvent validates one event.
func (r *eventReader) scanEvent(d *decoder) error {
	total := 0
	for {
		n, err := d.blockCount("event headers", r.lim.MaxHeaders-total, 2)
		if err != nil {
			return err
		}
		if n == 0 {
			break
		}
		total += n
		for i := 0; i < 2*n; i++ {
			m, err := d.length("header", r.lim.MaxHeaderBytes)
			if err != nil {
				return err
			}
			d.off += m
			r.shape.headerBytes += m
		}
	}
	m, err := d.length("event body", r.lim.MaxBodyBytes)
	if err != nil {
		return err
	}
	d.off += m
	r.shape.events++
	return nil
}

// scanArray validates an array<AvroFlumeEvent>.
func (r *eventReader) scanArray(d *decoder) error {
	for {
		// An event takes at least 2 bytes: an empty map and an empty body.
		n, err := d.blockCount("event batch", r.lim.MaxBatchEvents-r.shape.events, 2)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		for i := 0; i < n; i++ {
			if err := r.scanEvent(d); err != nil {
				return fmt.Errorf("event %d: %w", r.shape.events, err)
			}
		}
	}
}

// str returns the next header string, copied into the arena. The arena was
// allocated with the exact size scan measured and is only appended to, so
// its bytes never move or change once written: that is what makes the
// unsafe.String view safe (the same reasoning as strings.Builder).
func (r *eventReader) str(d *decoder) string {
	n, _ := d.length("header", 0)
	if n == 0 {
		return ""
	}
	start := len(r.arena)
	r.arena = append(r.arena, d.buf[d.off:d.off+n]...)
	d.off += n
	return unsafe.String(&r.arena[start], n)
}

// readEvent decodes one event already validated by scanEvent. Bodies alias
// the payload, which the caller must not reuse.
func (r *eventReader) readEvent(d *decoder, e *Event) {
	for {
		n, _ := d.blockCount("event headers", noLimit, 0)
		if n == 0 {
			break
		}
		if e.Headers == nil {
			e.Headers = make(map[string]string, n)
		}
		for i := 0; i < n; i++ {
			k := r.str(d)
			e.Headers[k] = r.str(d)
		}
	}
	e.Body, _ = d.rawBytes("event body", 0)
}

// decodeEvent decodes one event (append's parameter).
func decodeEvent(d *decoder, lim Limits) (Event, error) {
	r := eventReader{lim: lim}
	scan := *d
	if err := r.scanEvent(&scan); err != nil {
		return Event{}, err
	}
	r.arena = make([]byte, 0, r.shape.headerBytes)
	var e Event
	r.readEvent(d, &e)
	return e, nil
}

// decodeEventArray decodes appendBatch's parameter.
func decodeEventArray(d *decoder, lim Limits) ([]Event, error) {
	r := eventReader{lim: lim}
	scan := *d
	if err := r.scanArray(&scan); err != nil {
		return nil, err
	}
	r.arena = make([]byte, 0, r.shape.headerBytes)
	events := make([]Event, r.shape.events)
	i := 0
	for {
		n, _ := d.blockCount("event batch", noLimit, 0)
		if n == 0 {
			break
		}
		for ; n > 0; n-- {
			r.readEvent(d, &events[i])
			i++
		}
	}
	return events, nil
}

// AppendEvents appends events as an Avro array<AvroFlumeEvent> (appendBatch's
// parameter), for other encoders of Flume's wire event and for benchmarks.
func AppendEvents(dst []byte, events []Event) []byte { return appendEventArray(dst, events) }

// DecodeEvents decodes b, which must hold exactly one array<AvroFlumeEvent>,
// within lim (zero fields: DefaultLimits). Bodies alias b.
func DecodeEvents(b []byte, lim Limits) ([]Event, error) {
	d := newDecoder(b)
	events, err := decodeEventArray(d, lim.withDefaults())
	if err != nil {
		return nil, err
	}
	if d.remaining() != 0 {
		return nil, fmt.Errorf("%d bytes after the events", d.remaining())
	}
	return events, nil
}

// AppendEvent appends one AvroFlumeEvent, as Flume's Kafka components write
// a record's value with useFlumeEventFormat (a SpecificDatumWriter, no
// container).
func AppendEvent(dst []byte, e Event) []byte { return appendEvent(dst, &e) }

// DecodeEvent decodes b, which must hold exactly one AvroFlumeEvent, within
// lim (zero fields: DefaultLimits). The body aliases b.
func DecodeEvent(b []byte, lim Limits) (Event, error) {
	d := newDecoder(b)
	e, err := decodeEvent(d, lim.withDefaults())
	if err != nil {
		return Event{}, err
	}
	if d.remaining() != 0 {
		return Event{}, fmt.Errorf("%d bytes after the event", d.remaining())
	}
	return e, nil
}
