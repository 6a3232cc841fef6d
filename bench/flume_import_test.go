package bench

// BenchmarkFlumeImport: a file channel opening on the directories of an
// Apache Flume file channel that holds 1,000,000 queued events of 500 bytes
// (Flume's format, written by channel/flumefile/flumefiletest's encoder,
// which the fixtures check byte for byte), imports them into its own log.
// Its baseline, in the same iteration: reading the same Flume data files
// sequentially (1 MiB reads, nothing done with the bytes). Both start with
// the page cache dropped when the benchmark runs as root (a migration reads
// files Flume wrote long ago), else both read from the cache. Reported:
// read-MB/s and import-MB/s (bytes of Flume data files per second),
// import-events/s, and import/read, the ratio of the two speeds.
//
// Beside them, to read that ratio by: write-MB/s, the disk's synced
// sequential write of as many bytes (8 MiB writes, one fdatasync at the
// end, as dd conv=fdatasync), which bounds an import of bodies that do not
// shrink, since it must write what it reads and sync it; and import-cpu-s,
// the CPU seconds (user and system) the process spent per import, which
// does not depend on the disk and matters when the cores are shared (the
// read needs almost none).
//
//	go test -run '^$' -bench FlumeImport -benchtime 3x -timeout 30m ./bench/
//
// data=log-lines are bodies like a web server's log, which the channel's S2
// compression shrinks; data=random do not shrink, so the import writes as
// many bytes as it reads.

import (
	cryptorand "crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/channel/flumefile/flumefiletest"
)

const (
	flumeEvents   = 1_000_000
	flumeBodySize = 500
	flumeTxn      = 100       // events per put transaction, as a Flume source commits them
	flumeMaxFile  = 256 << 20 // Flume's maxFileSize here: several data files
)

// flumeChannel is a generated Flume channel: its directory and data files.
type flumeChannel struct {
	dir   string
	logs  []string
	bytes int64
}

var flumeChannels = map[string]flumeChannel{}

// writeFlumeChannel writes a Flume file channel as a clean stop leaves it:
// every event committed and in the checkpoint's queue.
func writeFlumeChannel(b *testing.B, data string) flumeChannel {
	if c, ok := flumeChannels[data]; ok {
		return c
	}
	dir, err := os.MkdirTemp("", "flumed-flume-")
	if err != nil {
		b.Fatal(err)
	}
	ckDir, dataDir := filepath.Join(dir, "checkpoint"), filepath.Join(dir, "data")
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		b.Fatal(err)
	}
	line := strings.Repeat("2026-11-24 10:00:00 INFO web-1 GET /api/v1/items?id=42 200 12ms ", 8)[:flumeBodySize]
	body := make([]byte, flumeBodySize)
	var (
		queue  []int64
		active []flumefiletest.ActiveLog
		c      = flumeChannel{dir: dir}
		wo     = int64(1_000_000)
		txn    = int64(1)
		w      *flumefiletest.LogWriter
		id     int32
	)
	closeLog := func() {
		if w == nil {
			return
		}
		if err := w.Close(flumefiletest.LogMeta{CheckpointPosition: w.Pos(), CheckpointWriteOrd: wo}); err != nil {
			b.Fatal(err)
		}
		st, err := os.Stat(w.Path)
		if err != nil {
			b.Fatal(err)
		}
		c.logs, c.bytes = append(c.logs, w.Path), c.bytes+st.Size()
		w = nil
	}
	for i := 0; i < flumeEvents; i += flumeTxn {
		if w == nil || w.Pos() > flumeMaxFile-(flumeTxn+1)*(flumeBodySize+100) {
			closeLog()
			id++
			if w, err = flumefiletest.CreateLog(dataDir, id); err != nil {
				b.Fatal(err)
			}
			active = append(active, flumefiletest.ActiveLog{ID: id})
		}
		for j := range flumeTxn {
			if data == "random" {
				cryptorand.Read(body)
			} else {
				copy(body, line)
				copy(body[40:], fmt.Sprintf("%07d", i+j))
			}
			wo++
			off, err := w.Append(flumefiletest.PutRecord(txn, wo, flumefiletest.Put{
				Headers: []flumefiletest.Header{{Key: "host", Value: "web-1"}, {Key: "timestamp", Value: "1795000000000"}},
				Body:    body}))
			if err != nil {
				b.Fatal(err)
			}
			queue = append(queue, flumefiletest.Pointer(id, off))
			active[len(active)-1].Count++
		}
		wo++
		if _, err := w.Append(flumefiletest.CommitRecord(txn, wo, flumefiletest.TypePut)); err != nil {
			b.Fatal(err)
		}
		txn++
	}
	closeLog()
	err = flumefiletest.WriteCheckpoint(ckDir, flumefiletest.Checkpoint{Capacity: flumeEvents, WriteOrder: wo,
		Queue: queue, ActiveLogs: active})
	if err != nil {
		b.Fatal(err)
	}
	flumeChannels[data] = c
	return c
}

// linkFlumeChannel makes a fresh directory whose files are hard links to
// c's: the import moves Flume's files aside, never changing them, so every
// iteration starts from the same bytes without copying them.
func linkFlumeChannel(b *testing.B, c flumeChannel) string {
	dst, err := os.MkdirTemp("", "flumed-flume-run-")
	if err != nil {
		b.Fatal(err)
	}
	for _, sub := range []string{"checkpoint", "data"} {
		if err := os.MkdirAll(filepath.Join(dst, sub), 0o755); err != nil {
			b.Fatal(err)
		}
		ents, err := os.ReadDir(filepath.Join(c.dir, sub))
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range ents {
			if err := os.Link(filepath.Join(c.dir, sub, e.Name()), filepath.Join(dst, sub, e.Name())); err != nil {
				b.Fatal(err)
			}
		}
	}
	return dst
}

// writeSequentially writes n bytes that do not compress to a new file in
// dir, 8 MiB at a time, and fdatasyncs it once at the end.
func writeSequentially(b *testing.B, dir string, n int64) {
	buf := make([]byte, 8<<20)
	cryptorand.Read(buf)
	f, err := os.Create(filepath.Join(dir, "baseline-write"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	for left := n; left > 0; left -= int64(len(buf)) {
		if _, err := f.Write(buf[:min(left, int64(len(buf)))]); err != nil {
			b.Fatal(err)
		}
	}
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		b.Fatal(err)
	}
}

// readSequentially reads the files whole, 1 MiB at a time.
func readSequentially(b *testing.B, paths []string) int64 {
	buf := make([]byte, 1<<20)
	var n int64
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			b.Fatal(err)
		}
		m, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{f}, buf)
		f.Close()
		if err != nil {
			b.Fatal(err)
		}
		n += m
	}
	return n
}

func BenchmarkFlumeImport(b *testing.B) {
	defer func() {
		for k, c := range flumeChannels {
			os.RemoveAll(c.dir)
			delete(flumeChannels, k)
		}
	}()
	for _, data := range []string{"log-lines", "random"} {
		b.Run(fmt.Sprintf("data=%s/events=%d/size=%d", data, flumeEvents, flumeBodySize), func(b *testing.B) {
			c := writeFlumeChannel(b, data)
			cold := dropCaches()
			var readTime, writeTime, importTime, importCPU time.Duration
			for b.Loop() {
				b.StopTimer()
				dir := linkFlumeChannel(b, c)
				dropCaches()
				b.StartTimer()
				began := time.Now()
				if n := readSequentially(b, c.logs); n != c.bytes {
					b.Fatalf("read %d bytes of %d", n, c.bytes)
				}
				readTime += time.Since(began)
				b.StopTimer()
				began = time.Now()
				writeSequentially(b, dir, c.bytes) // removed with dir, after the import
				writeTime += time.Since(began)
				dropCaches()
				o := channel.DefaultFileOptions()
				o.CheckpointDir, o.DataDir = filepath.Join(dir, "checkpoint"), filepath.Join(dir, "data")
				o.MinimumRequiredSpace = -1
				b.StartTimer()
				began, cpu := time.Now(), cpuTime()
				ch, err := channel.OpenFile("c1", o, nil)
				if err != nil {
					b.Fatal(err)
				}
				importTime += time.Since(began)
				importCPU += cpuTime() - cpu
				b.StopTimer()
				if got := ch.Stats().Size; got != flumeEvents {
					b.Fatalf("imported %d events, want %d", got, flumeEvents)
				}
				ch.Close()
				os.RemoveAll(dir)
				b.StartTimer()
			}
			mbps := func(d time.Duration) float64 { return float64(c.bytes) * float64(b.N) / d.Seconds() / 1e6 }
			b.ReportMetric(mbps(readTime), "read-MB/s")
			b.ReportMetric(mbps(importTime), "import-MB/s")
			b.ReportMetric(float64(flumeEvents)*float64(b.N)/importTime.Seconds(), "import-events/s")
			b.ReportMetric(readTime.Seconds()/importTime.Seconds(), "import/read")
			b.ReportMetric(mbps(writeTime), "write-MB/s")
			b.ReportMetric(importCPU.Seconds()/float64(b.N), "import-cpu-s")
			b.ReportMetric(map[bool]float64{true: 1}[cold], "cold-cache")
		})
	}
}
