package avrorpc

import (
	"errors"
	"fmt"
	"math"
)

// This file is the Avro binary encoding, by hand, for the few types the
// protocol uses: long/int (zig-zag varints), boolean, string, bytes, fixed,
// enum, union index, map and array blocks. A hand codec for this fixed schema
// avoids reflection and lets every count be checked against the bytes that
// actually remain before anything is allocated (see bench/avrorpc_test.go for
// the comparison with github.com/hamba/avro/v2).

// noLimit is the max to pass when only the bytes left bound a count.
const noLimit = math.MaxInt

// errShort means the payload ended inside a value.
var errShort = errors.New("payload ends inside a value")

// decoder reads Avro values from one frame payload.
type decoder struct {
	buf []byte
	off int
}

func newDecoder(b []byte) *decoder { return &decoder{buf: b} }

// remaining is the number of undecoded bytes.
func (d *decoder) remaining() int { return len(d.buf) - d.off }

// long reads a zig-zag varint of at most 10 bytes.
func (d *decoder) long() (int64, error) {
	var u uint64
	for shift := uint(0); shift < 70; shift += 7 {
		if d.off >= len(d.buf) {
			return 0, errShort
		}
		b := d.buf[d.off]
		d.off++
		if shift == 63 && b > 1 {
			return 0, errors.New("varint overflows 64 bits")
		}
		u |= uint64(b&0x7f) << shift
		if b < 0x80 {
			return int64(u>>1) ^ -int64(u&1), nil
		}
	}
	return 0, errors.New("varint longer than 10 bytes")
}

// int reads a zig-zag varint that must fit 32 bits (Avro's int).
func (d *decoder) int() (int32, error) {
	v, err := d.long()
	if err != nil {
		return 0, err
	}
	if v < math.MinInt32 || v > math.MaxInt32 {
		return 0, fmt.Errorf("int out of range: %d", v)
	}
	return int32(v), nil
}

// length reads a byte length (bytes or string) and checks it against what is
// left and against max (0 = only what is left).
func (d *decoder) length(what string, max int) (int, error) {
	n, err := d.long()
	if err != nil {
		return 0, err
	}
	if n < 0 {
		return 0, fmt.Errorf("%s has negative length %d", what, n)
	}
	if max > 0 && n > int64(max) {
		return 0, fmt.Errorf("%s of %d bytes exceeds the limit of %d", what, n, max)
	}
	if n > int64(d.remaining()) {
		return 0, fmt.Errorf("%s of %d bytes: %w", what, n, errShort)
	}
	return int(n), nil
}

// rawBytes returns the next n bytes without copying (capacity capped so an
// append by the owner cannot overwrite what follows).
func (d *decoder) rawBytes(what string, max int) ([]byte, error) {
	n, err := d.length(what, max)
	if err != nil {
		return nil, err
	}
	b := d.buf[d.off : d.off+n : d.off+n]
	d.off += n
	return b, nil
}

// string returns a copy of the next Avro string.
func (d *decoder) string(what string, max int) (string, error) {
	n, err := d.length(what, max)
	if err != nil {
		return "", err
	}
	s := string(d.buf[d.off : d.off+n])
	d.off += n
	return s, nil
}

// fixed reads n raw bytes (Avro fixed) into dst.
func (d *decoder) fixed(dst []byte) error {
	if d.remaining() < len(dst) {
		return errShort
	}
	copy(dst, d.buf[d.off:])
	d.off += len(dst)
	return nil
}

// boolean reads one byte that must be 0 or 1.
func (d *decoder) boolean() (bool, error) {
	if d.off >= len(d.buf) {
		return false, errShort
	}
	b := d.buf[d.off]
	d.off++
	switch b {
	case 0:
		return false, nil
	case 1:
		return true, nil
	}
	return false, fmt.Errorf("boolean byte %#x", b)
}

// index reads an enum symbol or union branch index in [0, n).
func (d *decoder) index(what string, n int) (int, error) {
	v, err := d.int()
	if err != nil {
		return 0, err
	}
	if v < 0 || int(v) >= n {
		return 0, fmt.Errorf("%s index %d out of range [0,%d)", what, v, n)
	}
	return int(v), nil
}

// blockCount reads the item count of the next map or array block. A negative
// count is followed by the block's byte size, which is read and ignored. The
// count is checked against max and against the bytes left, given that each
// item takes at least minItem bytes, before the caller allocates for it.
// Pass noLimit as max when only the bytes left bound the count.
func (d *decoder) blockCount(what string, max, minItem int) (int, error) {
	n, err := d.long()
	if err != nil {
		return 0, err
	}
	if n < 0 {
		if n == math.MinInt64 {
			return 0, fmt.Errorf("%s block count out of range", what)
		}
		n = -n
		if _, err := d.long(); err != nil {
			return 0, err
		}
	}
	if n > int64(max) {
		return 0, fmt.Errorf("%s block of %d items exceeds the limit (%d more allowed)", what, n, max)
	}
	if n*int64(minItem) > int64(d.remaining()) {
		return 0, fmt.Errorf("%s declares %d items but only %d bytes follow", what, n, d.remaining())
	}
	return int(n), nil
}

// skipBytesMap skips an Avro map<bytes> (call metadata, handshake meta),
// allowing at most max entries in total.
func (d *decoder) skipBytesMap(what string, max int) error {
	total := 0
	for {
		n, err := d.blockCount(what, max-total, 2)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		total += n
		for i := 0; i < n; i++ {
			if _, err := d.rawBytes(what+" key", 0); err != nil {
				return err
			}
			if _, err := d.rawBytes(what+" value", 0); err != nil {
				return err
			}
		}
	}
}

// appendLong appends v as a zig-zag varint.
func appendLong(b []byte, v int64) []byte {
	u := uint64(v<<1) ^ uint64(v>>63)
	for u >= 0x80 {
		b = append(b, byte(u)|0x80)
		u >>= 7
	}
	return append(b, byte(u))
}

// appendString appends an Avro string (or bytes: the encoding is the same).
func appendString(b []byte, s string) []byte {
	b = appendLong(b, int64(len(s)))
	return append(b, s...)
}

// appendBytes appends Avro bytes.
func appendBytes(b, v []byte) []byte {
	b = appendLong(b, int64(len(v)))
	return append(b, v...)
}
