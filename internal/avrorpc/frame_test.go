package avrorpc

// Contract: the frame reader joins a frame's buffers, refuses zero or
// negative counts, negative lengths, too many buffers and frames over the
// limit, and allocates only as bytes arrive — a declared length is a claim,
// not a reason to allocate. The builder never emits a zero-count frame and
// splits payloads at 8 KiB as Java does.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"testing"
)

func frameBytes(serial int32, lens ...int32) []byte {
	var b []byte
	b = binary.BigEndian.AppendUint32(b, uint32(serial))
	b = binary.BigEndian.AppendUint32(b, uint32(len(lens)))
	for _, n := range lens {
		b = binary.BigEndian.AppendUint32(b, uint32(n))
		if n > 0 {
			b = append(b, bytes.Repeat([]byte{'a'}, int(n))...)
		}
	}
	return b
}

func TestFramesJoinTheirBuffers(t *testing.T) {
	fr := frameReader{r: bytes.NewReader(frameBytes(7, 3, 0, 5)), lim: DefaultLimits()}
	serial, payload, err := fr.read()
	if err != nil || serial != 7 || string(payload) != "aaaaaaaa" {
		t.Fatalf("got %d %q %v", serial, payload, err)
	}
	if _, _, err := fr.read(); err != io.EOF {
		t.Fatalf("at the end: %v, want io.EOF", err)
	}
}

func TestBadFrameHeadersAreProtocolErrors(t *testing.T) {
	lim := Limits{MaxFrameBytes: 100, MaxBuffers: 4}.withDefaults()
	header := func(serial, count uint32, rest ...uint32) []byte {
		b := binary.BigEndian.AppendUint32(nil, serial)
		b = binary.BigEndian.AppendUint32(b, count)
		for _, r := range rest {
			b = binary.BigEndian.AppendUint32(b, r)
		}
		return b
	}
	cases := map[string][]byte{
		"zero buffers":                 header(1, 0),
		"negative count":               header(1, 0xffffffff),
		"too many buffers":             header(1, 5),
		"negative length":              header(1, 1, 0x80000000),
		"2 GiB declared":               header(1, 1, 0x7fffffff),
		"zero-filled stream (a bomb)":  make([]byte, 64),
		"frame limit hit by the total": frameBytes(1, 50, 51),
	}
	cases["second buffer passes limit"] = func() []byte {
		b := header(1, 2, 60)
		b = append(b, bytes.Repeat([]byte{'a'}, 60)...)
		return binary.BigEndian.AppendUint32(b, 41)
	}()
	for name, b := range cases {
		fr := frameReader{r: bytes.NewReader(b), lim: lim}
		if _, _, err := fr.read(); !errors.Is(err, ErrProtocol) {
			t.Errorf("%s: err = %v, want ErrProtocol", name, err)
		}
	}
}

func TestATruncatedFrameIsUnexpectedEOF(t *testing.T) {
	b := frameBytes(1, 10)
	fr := frameReader{r: bytes.NewReader(b[:len(b)-3]), lim: DefaultLimits()}
	if _, _, err := fr.read(); err != io.ErrUnexpectedEOF {
		t.Fatalf("err = %v", err)
	}
}

func TestADeclaredLengthAllocatesOnlyAsBytesArrive(t *testing.T) {
	b := binary.BigEndian.AppendUint32(nil, 1)
	b = binary.BigEndian.AppendUint32(b, 1)
	b = binary.BigEndian.AppendUint32(b, 60<<20) // 60 MiB declared, within the limit
	b = append(b, "0123456789"...)               // 10 bytes sent
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range 20 {
		fr := frameReader{r: bytes.NewReader(b), lim: DefaultLimits()}
		if _, _, err := fr.read(); err != io.ErrUnexpectedEOF {
			t.Fatalf("err = %v", err)
		}
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / 20; per > 64<<10 {
		t.Fatalf("%d bytes allocated per 10-byte frame that declared 60 MiB", per)
	}
}

func TestTheBudgetIsChargedWhileAFrameIsHeldAndReleasedAfter(t *testing.T) {
	bud := &budget{limit: 1 << 20}
	fr := frameReader{r: bytes.NewReader(frameBytes(1, 5000)), lim: DefaultLimits(), budget: bud}
	if _, _, err := fr.read(); err != nil {
		t.Fatal(err)
	}
	if bud.used.Load() < 5000 {
		t.Fatalf("budget charged %d for a 5000-byte frame", bud.used.Load())
	}
	fr.release()
	if bud.used.Load() != 0 {
		t.Fatalf("budget still charged %d after release", bud.used.Load())
	}
	small := &budget{limit: 4096}
	fr = frameReader{r: bytes.NewReader(frameBytes(1, 5000)), lim: DefaultLimits(), budget: small}
	if _, _, err := fr.read(); !errors.Is(err, errBudget) {
		t.Fatalf("err = %v, want errBudget", err)
	}
	fr.release()
	if small.used.Load() != 0 {
		t.Fatalf("refused frame left %d charged", small.used.Load())
	}
}

func TestTheBuilderSplitsAt8KiBAndNeverWritesZeroBuffers(t *testing.T) {
	f := frameBuilder{}
	f.start(3)
	f.split(make([]byte, 2*splitSize+1))
	frames := splitFrames(t, f.finish())
	if len(frames) != 1 || len(frames[0].buffers) != 3 || len(frames[0].buffers[2]) != 1 {
		t.Fatalf("got %+v", frames)
	}
	f = frameBuilder{}
	f.start(4)
	if got := splitFrames(t, f.finish()); len(got[0].buffers) != 1 || len(got[0].buffers[0]) != 0 {
		t.Fatalf("empty frame: %+v", got)
	}
}
