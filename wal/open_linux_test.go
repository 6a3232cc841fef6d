package wal

// The restart-cost contract, watched by the kernel: opening a log that a
// clean Close left, and asking for its bounds, segments and stats, neither
// lists sealed/ nor opens any file in it, however many segments it holds; a
// reader opened at the first index opens exactly the one segment holding it.
// (inotify reports every open of the directory, which listing needs, and of
// any file in it.)

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sealedWatch records opens and reads in sealed/.
type sealedWatch struct {
	t  *testing.T
	fd int
}

func watchSealed(t *testing.T, dir string) *sealedWatch {
	t.Helper()
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		t.Skipf("inotify unavailable: %v", err)
	}
	if _, err := unix.InotifyAddWatch(fd, dir+"/"+sealedDirName, unix.IN_OPEN|unix.IN_ACCESS); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return &sealedWatch{t: t, fd: fd}
}

// events returns what happened since the last call: "open" or "access",
// with the file name ("." for sealed/ itself).
func (w *sealedWatch) events() []string {
	w.t.Helper()
	var out []string
	buf := make([]byte, 64<<10)
	for {
		n, err := unix.Read(w.fd, buf)
		if errors.Is(err, unix.EAGAIN) {
			return out
		}
		if err != nil {
			w.t.Fatal(err)
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := "."
			if ev.Len > 0 {
				raw := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
				name = string(bytes.TrimRight(raw, "\x00"))
			}
			kind := "access"
			if ev.Mask&unix.IN_OPEN != 0 {
				kind = "open"
			}
			out = append(out, kind+" "+name)
			off += unix.SizeofInotifyEvent + int(ev.Len)
		}
	}
}

func TestOpenTouchesNothingInSealed(t *testing.T) {
	dir := t.TempDir()
	buildLog(t, dir, 1500)
	w := watchSealed(t, dir)

	l, err := Open(dir, Options{SegmentSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	segs, st := l.Segments(), l.Stats()
	if len(segs) < 50 || st.FirstIndex != 1 || st.LastIndex != 1500 || l.Recovered().Changed() {
		t.Fatalf("setup: %d segments, stats %+v, repair %s", len(segs), st, l.Recovered())
	}
	if ev := w.events(); len(ev) > 0 {
		t.Fatalf("Open touched sealed/: %v", ev)
	}

	r, err := l.NewReader(0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if rec, err := r.Next(); err != nil || rec.Index != 1 {
		t.Fatalf("Next = %d, %v", rec.Index, err)
	}
	ev := w.events()
	if !slices.Contains(ev, "open "+segs[0].Name) {
		t.Fatalf("the watch saw no open of the first segment (%v): it proves nothing", ev)
	}
	for _, e := range ev {
		if !strings.HasSuffix(e, " "+segs[0].Name) {
			t.Fatalf("the first read did more than open and read its segment: %v", ev)
		}
	}
}
