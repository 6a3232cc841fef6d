package channel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"

	kcompress "github.com/klauspost/compress"
	"github.com/klauspost/compress/s2"
)

// The file channel's record codec. One record holds one committed put
// transaction; the wal package frames it (length, version, CRC32C), so this
// codec never sees a torn record, only records written by a buggy or hostile
// writer, and bounds every length it reads. The layout is in FILE_FORMAT.md.

const (
	recordVersion = 1 // bump on any layout change; decoders refuse unknown versions
	recordKindPut = 1 // a committed put transaction

	recordHeaderSize = 28

	// recordFlagSynced marks a record written with fsyncPerTransaction=true:
	// it was durable before its commit returned. Without it the record was
	// written in interval mode, inside a stated window of loss.
	recordFlagSynced = 1 << 0
	// recordFlagS2 marks a body compressed with S2 (klauspost/compress).
	recordFlagS2 = 1 << 1

	recordKnownFlags = recordFlagSynced | recordFlagS2 | recordFlagEncrypted | recordFlagOrigins

	// maxRecordEvents bounds the event count a decoder accepts before it
	// allocates: far above any transactionCapacity flumed accepts.
	maxRecordEvents = 1 << 24
	// maxRecordBody bounds a record's uncompressed body. A put transaction
	// larger than this is refused at Put (ErrTxnFull), so a record this large
	// is damage, never data.
	maxRecordBody = 256 << 20
)

// errBadRecord is wrapped by every decoding error: the record is not one this
// codec wrote. Such a record is never delivered.
var errBadRecord = errors.New("bad file channel record")

// recordHeader is the fixed part of a record.
type recordHeader struct {
	Version    byte
	Kind       byte
	Flags      byte
	FirstSeq   uint64 // sequence number of the first event; the rest follow without gaps
	Count      uint32 // events in the record, at least one
	CommitMs   int64  // commit time, unix milliseconds
	BodyLength uint32 // uncompressed body bytes
}

// Synced reports whether the record was written in fsync-per-commit mode.
func (h recordHeader) Synced() bool { return h.Flags&recordFlagSynced != 0 }

// EndSeq is the sequence number after the record's last event.
func (h recordHeader) EndSeq() uint64 { return h.FirstSeq + uint64(h.Count) }

// recordBuilder accumulates one put transaction's events, already encoded,
// so Commit only has to stamp the header. It is owned by one transaction.
type recordBuilder struct {
	buf    []byte // header placeholder, then the Avro-encoded events
	count  int
	events int64 // body bytes of the events, for Flume's accounting
}

func (b *recordBuilder) reset() {
	if b.buf == nil {
		b.buf = make([]byte, recordHeaderSize, 4096)
	}
	b.buf = b.buf[:recordHeaderSize]
	b.count = 0
	b.events = 0
}

// grow makes room for n more bytes of events, so a Put's events are encoded
// without reallocating the record.
func (b *recordBuilder) grow(n int) {
	if b.buf == nil {
		b.buf = make([]byte, recordHeaderSize, recordHeaderSize+n)
		return
	}
	b.buf = slices.Grow(b.buf, n)
}

// add encodes e after the events already added.
func (b *recordBuilder) add(e Event) {
	if b.buf == nil {
		b.reset()
	}
	b.buf = appendAvroEvent(b.buf, e)
	b.count++
	b.events += int64(len(e.Body))
}

// bodyLen is the encoded size of the events added so far.
func (b *recordBuilder) bodyLen() int { return len(b.buf) - recordHeaderSize }

// finish returns the record: the header is left to stamp (see stampRecord)
// and the body is compressed with S2 when compress is set, the body is at
// least threshold bytes, a sample of it looks compressible, and compression
// saves at least an eighth. The builder must not be reused while the result
// is in use.
func (b *recordBuilder) finish(flags byte, compress bool, threshold int) []byte {
	body := b.buf[recordHeaderSize:]
	rec := b.buf
	// The estimate costs a pass over 8 KiB; compressing what will not shrink
	// (already compressed or encrypted bodies) costs a pass over everything.
	if compress && len(body) >= threshold && kcompress.Estimate(body[:min(len(body), 8<<10)]) >= 0.1 {
		scratch := compressScratch(recordHeaderSize + s2.MaxEncodedLen(len(body)))
		c := s2.Encode((*scratch)[recordHeaderSize:], body) // a prefix of (*scratch)[recordHeaderSize:]
		if len(c) < len(body)-len(body)/8 {
			// A copy of exactly the record's size: the tail cache and the
			// events decoded from it keep the record, and a compressible
			// body's worst-case buffer is many times its compressed size.
			rec = make([]byte, recordHeaderSize+len(c))
			copy(rec[recordHeaderSize:], c)
			flags |= recordFlagS2
		}
		scratchPool.Put(scratch)
	}
	rec[0] = recordVersion
	rec[1] = recordKindPut
	rec[2] = flags
	rec[3] = 0
	binary.LittleEndian.PutUint32(rec[12:], uint32(b.count))
	binary.LittleEndian.PutUint32(rec[24:], uint32(len(body)))
	return rec
}

// scratchPool recycles compression buffers; a record never aliases one.
var scratchPool sync.Pool // *[]byte

func compressScratch(n int) *[]byte {
	if p, ok := scratchPool.Get().(*[]byte); ok && cap(*p) >= n {
		*p = (*p)[:n]
		return p
	}
	b := make([]byte, n)
	return &b
}

// stampRecord writes the sequence number and commit time, which only the
// put loop knows, into a finished record.
func stampRecord(rec []byte, firstSeq uint64, commitMs int64) {
	binary.LittleEndian.PutUint64(rec[4:], firstSeq)
	binary.LittleEndian.PutUint64(rec[16:], uint64(commitMs))
}

// decodeRecordHeader parses and checks a record's fixed header.
func decodeRecordHeader(rec []byte) (recordHeader, error) {
	var h recordHeader
	if len(rec) < recordHeaderSize {
		return h, fmt.Errorf("%w: %d bytes, shorter than the %d-byte header", errBadRecord, len(rec), recordHeaderSize)
	}
	h = recordHeader{
		Version:    rec[0],
		Kind:       rec[1],
		Flags:      rec[2],
		FirstSeq:   binary.LittleEndian.Uint64(rec[4:]),
		Count:      binary.LittleEndian.Uint32(rec[12:]),
		CommitMs:   int64(binary.LittleEndian.Uint64(rec[16:])),
		BodyLength: binary.LittleEndian.Uint32(rec[24:]),
	}
	switch {
	case h.Version != recordVersion:
		return h, fmt.Errorf("%w: version %d, want %d", errBadRecord, h.Version, recordVersion)
	case h.Kind != recordKindPut:
		return h, fmt.Errorf("%w: unknown kind %d", errBadRecord, h.Kind)
	case h.Flags&^recordKnownFlags != 0 || rec[3] != 0:
		return h, fmt.Errorf("%w: unknown flags %#x/%#x", errBadRecord, h.Flags, rec[3])
	case h.Count == 0 || h.Count > maxRecordEvents:
		return h, fmt.Errorf("%w: event count %d out of range", errBadRecord, h.Count)
	case h.BodyLength > maxRecordBody:
		return h, fmt.Errorf("%w: body length %d over the %d limit", errBadRecord, h.BodyLength, maxRecordBody)
	case h.FirstSeq > math.MaxUint64-uint64(h.Count):
		return h, fmt.Errorf("%w: sequence numbers overflow", errBadRecord)
	}
	return h, nil
}

// decodeRecord parses a whole record, opening a sealed one with keys (nil
// when the channel has none: a sealed record is then ErrRecordKey). The
// returned events' bodies alias rec (or the decompressed or opened body):
// takers treat events as read-only.
func decodeRecord(rec []byte, kr *Keyring) (recordHeader, []Event, error) {
	h, err := decodeRecordHeader(rec)
	if err != nil {
		return h, nil, err
	}
	if rec, _, err = splitOriginTrailer(rec, h); err != nil {
		return h, nil, err
	}
	body := rec[recordHeaderSize:]
	if h.Flags&recordFlagEncrypted != 0 {
		if body, err = kr.open(rec); err != nil {
			return h, nil, err
		}
	}
	body, err = recordBody(h, body)
	if err != nil {
		return h, nil, err
	}
	// Every event takes at least two bytes (an empty map and an empty body),
	// so the count is bounded by the body before anything is allocated.
	if uint64(h.Count) > uint64(len(body))/2 {
		return h, nil, fmt.Errorf("%w: %d events cannot fit in %d body bytes", errBadRecord, h.Count, len(body))
	}
	events := make([]Event, h.Count)
	var keys keyCache
	for i := range events {
		var n int
		events[i], n, err = decodeAvroEvent(body, &keys)
		if err != nil {
			return h, nil, fmt.Errorf("event %d of %d: %w", i, h.Count, err)
		}
		body = body[n:]
	}
	if len(body) != 0 {
		return h, nil, fmt.Errorf("%w: %d bytes after the last event", errBadRecord, len(body))
	}
	return h, events, nil
}

// recordBody returns the uncompressed event bytes of a record.
func recordBody(h recordHeader, body []byte) ([]byte, error) {
	if h.Flags&recordFlagS2 == 0 {
		if len(body) != int(h.BodyLength) {
			return nil, fmt.Errorf("%w: body is %d bytes, header says %d", errBadRecord, len(body), h.BodyLength)
		}
		return body, nil
	}
	n, err := s2.DecodedLen(body)
	if err != nil || n != int(h.BodyLength) {
		return nil, fmt.Errorf("%w: compressed body decodes to %d bytes, header says %d (%v)", errBadRecord, n, h.BodyLength, err)
	}
	out, err := s2.Decode(make([]byte, n), body)
	if err != nil {
		return nil, fmt.Errorf("%w: decompress body: %v", errBadRecord, err)
	}
	return out, nil
}

// appendAvroEvent appends e encoded as Flume's AvroFlumeEvent
// {headers: map<string>, body: bytes} in Avro's binary encoding: the map as
// one block (count, then key/value strings) and a zero terminator, then the
// body as length-prefixed bytes. Lengths are zig-zag varints.
func appendAvroEvent(dst []byte, e Event) []byte {
	if len(e.Headers) > 0 {
		dst = binary.AppendVarint(dst, int64(len(e.Headers)))
		for k, v := range e.Headers {
			dst = binary.AppendVarint(dst, int64(len(k)))
			dst = append(dst, k...)
			dst = binary.AppendVarint(dst, int64(len(v)))
			dst = append(dst, v...)
		}
	}
	dst = append(dst, 0) // end of map
	dst = binary.AppendVarint(dst, int64(len(e.Body)))
	return append(dst, e.Body...)
}

// avroEventSize is len(appendAvroEvent(nil, e)) without encoding.
func avroEventSize(e Event) int {
	n := 1
	if len(e.Headers) > 0 {
		n += varintLen(int64(len(e.Headers)))
		for k, v := range e.Headers {
			n += varintLen(int64(len(k))) + len(k) + varintLen(int64(len(v))) + len(v)
		}
	}
	return n + varintLen(int64(len(e.Body))) + len(e.Body)
}

func varintLen(v int64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutVarint(b[:], v)
}

// decodeAvroEvent decodes one AvroFlumeEvent from the start of b and returns
// it with the bytes consumed. It accepts every block form Avro allows (several
// blocks, negative counts followed by a byte size). An event without headers
// comes back with nil Headers.
func decodeAvroEvent(b []byte, keys *keyCache) (Event, int, error) {
	var e Event
	pos := 0
	for {
		count, err := readAvroLong(b, &pos)
		if err != nil {
			return e, 0, fmt.Errorf("header count: %w", err)
		}
		if count == 0 {
			break
		}
		if count < 0 {
			if count == math.MinInt64 {
				return e, 0, fmt.Errorf("%w: header block count out of range", errBadRecord)
			}
			count = -count
			if _, err := readAvroLong(b, &pos); err != nil { // block byte size, not needed
				return e, 0, fmt.Errorf("header block size: %w", err)
			}
		}
		// Each entry takes at least two bytes: bound the count before allocating.
		if count > int64(len(b)-pos)/2 {
			return e, 0, fmt.Errorf("%w: %d headers cannot fit in %d bytes", errBadRecord, count, len(b)-pos)
		}
		if e.Headers == nil {
			e.Headers = make(map[string]string, count)
		}
		for range count {
			k, err := readAvroBytes(b, &pos)
			if err != nil {
				return e, 0, fmt.Errorf("header key: %w", err)
			}
			v, err := readAvroBytes(b, &pos)
			if err != nil {
				return e, 0, fmt.Errorf("header value: %w", err)
			}
			e.Headers[keys.intern(k)] = string(v)
		}
	}
	body, err := readAvroBytes(b, &pos)
	if err != nil {
		return e, 0, fmt.Errorf("body: %w", err)
	}
	e.Body = body[:len(body):len(body)] // a taker's append must not run into the next event
	return e, pos, nil
}

// readAvroLong reads a zig-zag varint at *pos.
func readAvroLong(b []byte, pos *int) (int64, error) {
	v, n := binary.Varint(b[*pos:])
	if n <= 0 {
		return 0, fmt.Errorf("%w: truncated or overlong varint at byte %d", errBadRecord, *pos)
	}
	*pos += n
	return v, nil
}

// readAvroBytes reads a length-prefixed byte string at *pos, aliasing b.
func readAvroBytes(b []byte, pos *int) ([]byte, error) {
	n, err := readAvroLong(b, pos)
	if err != nil {
		return nil, err
	}
	if n < 0 || n > int64(len(b)-*pos) {
		return nil, fmt.Errorf("%w: length %d at byte %d, %d bytes left", errBadRecord, n, *pos, len(b)-*pos)
	}
	s := b[*pos : *pos+int(n)]
	*pos += int(n)
	return s, nil
}

// keyCache interns header keys within one record: events of a transaction
// usually repeat the same few keys, and one string per key saves an
// allocation per header.
type keyCache struct {
	keys [8]string
	n    int
}

func (c *keyCache) intern(k []byte) string {
	for i := range c.n {
		if c.keys[i] == string(k) { // no allocation: the compiler compares in place
			return c.keys[i]
		}
	}
	s := string(k)
	if c.n < len(c.keys) {
		c.keys[c.n] = s
		c.n++
	}
	return s
}
