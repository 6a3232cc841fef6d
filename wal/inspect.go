package wal

import (
	"errors"
	"io"
	"os"

	"github.com/flumed/flumed/internal/fsutil"
)

// Info describes a log directory as it is on disk, read without changing
// anything (no lock taken, nothing repaired), so it works on a copy and beside
// a running writer.
type Info struct {
	Dir        string
	Segments   []SegmentInfo // live segments, oldest first
	FirstIndex uint64        // FirstIndex > LastIndex when the log is empty
	LastIndex  uint64        // index of the last intact record of the last segment
	Bytes      int64         // total size of the live segments
	// Released lists files of released segments a crash during Release left
	// in sealed/: the next Open removes them.
	Released []string
	Temps    []string // leftovers of interrupted atomic writes the next Open removes
	Broken   []string // evidence copies kept by earlier repairs
	// Unsealed lists segment files before the tail in the log directory:
	// rolls a crash interrupted before their move into sealed/. The next
	// Open moves them there.
	Unsealed []string
	// Strays lists files in sealed/ named like segments that are no part of
	// the log (at or past the tail). An Open that lists sealed/ (after a
	// crash) sets them aside as .broken; otherwise the log never looks at
	// them.
	Strays []string
	// Manifest says whether the next Open can trust the list of sealed
	// segments: "" (no manifest: no segment was ever sealed), "ok", or what
	// is wrong with it (the next Open rewrites or rebuilds it).
	Manifest string
	// TornTail is what the next Open would cut from the last segment: nil
	// when its tail is clean.
	TornTail *CorruptionError
	// TornBytes is the size of that tail.
	TornBytes int64
}

// Inspect reads dir. It lists the log directory and sealed/ and reads the
// last segment, whatever the size of the log.
func Inspect(dir string) (*Info, error) {
	v, err := viewDir(dir)
	if err != nil {
		return nil, err
	}
	info := &Info{Dir: dir, Temps: v.st.temps, Broken: v.broken, Released: v.released,
		Unsealed: v.unsealed, Strays: v.strays, Manifest: manifestHealth(v)}
	live := v.segs
	if len(live) == 0 {
		info.FirstIndex = 1
		return info, nil
	}
	for i, s := range live {
		si := SegmentInfo{Name: s.name(), First: s.first, Size: s.size, Sealed: s.sealed}
		if i+1 < len(live) {
			si.Last = live[i+1].first - 1
		}
		info.Segments = append(info.Segments, si)
		info.Bytes += s.size
	}
	info.FirstIndex = v.front
	tail := live[len(live)-1]
	r := &Reader{src: &dirSource{dir: dir, segs: live[len(live)-1:], first: tail.first}, next: tail.first}
	defer r.Close()
	last := tail.first - 1
	for {
		rec, err := r.Next()
		var ce *CorruptionError
		switch {
		case err == nil:
			last = rec.Index
			continue
		case errors.As(err, &ce) && errors.Is(err, ErrTornTail):
			info.TornTail = ce
			info.TornBytes = tail.size - ce.Offset
			continue
		case errors.As(err, &ce):
			continue
		case err == io.EOF:
		default:
			return nil, err
		}
		break
	}
	info.LastIndex = last
	info.Segments[len(info.Segments)-1].Last = last
	return info, nil
}

// manifestHealth says what the next Open will make of the manifest.
func manifestHealth(v *dirView) string {
	m := v.man
	switch {
	case !m.exists && v.st.sealed:
		return "missing: the next open rebuilds it from " + sealedDirName + "/"
	case !m.exists:
		return ""
	case m.bad != nil:
		return "damaged (" + m.bad.Error() + "): the next open rebuilds it from " + sealedDirName + "/"
	case m.torn:
		return "torn last entry: the next open rewrites it"
	}
	return "ok"
}

// VerifyReport is the result of a full scan.
type VerifyReport struct {
	Records uint64 // intact records
	Bytes   int64  // bytes of the segments scanned
	// Damaged lists the first MaxReported damaged records (torn tail
	// included); DamagedCount counts them all.
	Damaged      []*CorruptionError
	DamagedCount uint64
}

// MaxReported bounds VerifyReport.Damaged.
const MaxReported = 1000

// OK reports whether every record was intact.
func (v *VerifyReport) OK() bool { return v.DamagedCount == 0 }

// Verify reads every record of dir and checks its CRC, read-only. progress,
// if not nil, is called now and then with the bytes scanned so far and the
// total, for a progress bar.
func Verify(dir string, progress func(done, total int64)) (*VerifyReport, error) {
	v, err := viewDir(dir)
	if err != nil {
		return nil, err
	}
	live := v.segs
	var total int64
	before := map[string]int64{} // bytes in the segments before each one
	for _, s := range live {
		before[s.name()] = total
		total += s.size
	}
	r := &Reader{src: &dirSource{dir: dir, segs: live, first: v.front}, next: v.front}
	defer r.Close()
	rep := &VerifyReport{Bytes: total}
	var lastReport int64
	for {
		rec, err := r.Next()
		var ce *CorruptionError
		switch {
		case err == nil:
			rep.Records++
			if done := before[rec.Segment] + rec.Offset; progress != nil && done-lastReport >= 4<<20 {
				progress(done, total)
				lastReport = done
			}
			continue
		case errors.As(err, &ce):
			rep.DamagedCount++
			if len(rep.Damaged) < MaxReported {
				rep.Damaged = append(rep.Damaged, ce)
			}
			continue
		case err == io.EOF:
			if progress != nil {
				progress(total, total)
			}
			return rep, nil
		default:
			return nil, err
		}
	}
}

// Repair locks dir and repairs it as Open would, without opening the log,
// for an operator's "wal repair": it returns what it changed.
func Repair(dir string, opts Options) (Recovered, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return Recovered{}, err
	}
	if _, err := os.Stat(dir); err != nil {
		return Recovered{}, err
	}
	lock, err := fsutil.LockDir(dir)
	if err != nil {
		return Recovered{}, err
	}
	defer lock.Unlock()
	rec, _, err := repair(dir, opts.FS)
	if err == nil {
		logRecovered(opts.Logger, dir, rec)
	}
	return rec, err
}
