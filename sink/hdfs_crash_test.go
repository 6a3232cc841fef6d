package sink

// Crash test of the hdfs sink's durability: the test binary runs itself as a
// child that drains a file channel into the real HDFS, and the parent
// SIGKILLs it at random moments, right after commits, over and over; a last
// child drains what is left. Then:
//
//   - no loss: every event is in HDFS, read by a client that trusts the
//     length the NameNode reports (what a take's commit must have made
//     durable: a sink that committed after a mere Flush loses here, since
//     the NameNode still has the length of the file's last close);
//   - duplicates only from batches in flight: at most Window(depth)
//     batches per kill;
//   - nothing torn, and no file left open or in use: each start recovers
//     the files the kill before it left (lease, cut, rename).

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/hdfstest"
)

const (
	hdfsCrashChannelEnv = "FLUMED_HDFS_CRASH_CHANNEL"
	hdfsCrashURLEnv     = "FLUMED_HDFS_CRASH_URL"
	hdfsCrashBatch      = 20
)

func hdfsCrashChannel(dir string) channel.FileOptions {
	o := channel.DefaultFileOptions()
	o.CheckpointDir = filepath.Join(dir, "checkpoint")
	o.DataDir = filepath.Join(dir, "data")
	o.MinimumRequiredSpace = -1
	o.Capacity, o.TransactionCapacity = 100_000, 1000
	return o
}

func crashBody(i int) string { return fmt.Sprintf("ev%06d", i) }

// TestHDFSCrashChild is the child: it drains the channel into HDFS and
// says "@ready", then "@c" after every Process that delivered, "@done"
// once the channel is empty.
func TestHDFSCrashChild(t *testing.T) {
	dir, url := os.Getenv(hdfsCrashChannelEnv), os.Getenv(hdfsCrashURLEnv)
	if dir == "" {
		t.Skip("the child of TestACommittedTakeSurvivesASIGKILLOfTheAgent: runs only when that test starts it")
	}
	ch, err := channel.OpenFile("c1", hdfsCrashChannel(dir), nil)
	if err != nil {
		t.Fatal(err)
	}
	s := hdfsSink(t, map[string]string{"hdfs.path": url, "hdfs.fileType": "DataStream",
		"hdfs.batchSize": fmt.Sprint(hdfsCrashBatch), "hdfs.rollCount": "300", "hdfs.rollSize": "0", "hdfs.rollInterval": "0",
		"hdfs.inUseList": filepath.Join(dir, "inuse")})
	if err := s.Start(context.Background(), ch); err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("@ready\n")
	for failures := 0; ; {
		st, err := s.Process(context.Background())
		if err != nil {
			// As the runner does: the batch is rolled back, and tried
			// again after a pause (a busy HDFS times out now and then).
			// The parent shows these lines if the child fails.
			if failures++; failures == 20 {
				t.Fatal(err)
			}
			fmt.Printf("@err %v\n", err)
			time.Sleep(500 * time.Millisecond) // a backoff, not a wait on a result
			continue
		}
		if st == Backoff && ch.Stats().Size == 0 {
			break
		}
		os.Stdout.WriteString("@c\n")
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("@done\n")
}

func TestACommittedTakeSurvivesASIGKILLOfTheAgent(t *testing.T) {
	const (
		total = 3000
		kills = 4
	)
	in := hdfstest.Get(t)
	dir := t.TempDir()
	ch, err := channel.OpenFile("c1", hdfsCrashChannel(dir), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < total; i += 1000 {
		txn := ch.Begin()
		for j := i; j < i+1000; j++ {
			if err := txn.Put(channel.Event{Body: []byte(crashBody(j))}); err != nil {
				t.Fatal(err)
			}
		}
		if err := txn.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 17))
	run := func(kill bool) {
		t.Helper()
		cmd := exec.Command(os.Args[0], "-test.run=^TestHDFSCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), hdfsCrashChannelEnv+"="+dir, hdfsCrashURLEnv+"="+in.URL+"/crash",
			"HADOOP_USER_NAME="+in.User)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := bufio.NewScanner(out)
		commits, at := 0, 1+rng.IntN(8)
		done := false
		var said strings.Builder // what else the child printed: its errors, its test's failure
		for lines.Scan() {
			switch l := lines.Text(); l {
			case "@c":
				commits++
			case "@done":
				done = true
			case "@ready":
			default:
				said.WriteString(l + "\n")
			}
			if kill && commits == at {
				// Right after a Process that delivered and committed (or
				// handed its commit to the channel's committer).
				_ = cmd.Process.Signal(syscall.SIGKILL)
				break
			}
		}
		_, _ = io.Copy(io.Discard, out)
		err = cmd.Wait()
		if !kill && (err != nil || !done) {
			t.Fatalf("the last child did not drain the channel: %v\n%s%s", err, said.String(), stderr.String())
		}
		if kill && commits < at {
			t.Fatalf("the child ended before its kill (%d commits of %d): %v\n%s%s", commits, at, err, said.String(), stderr.String())
		}
	}
	for range kills {
		run(true)
	}
	run(false)

	// Read every file, in use or rolled, as the NameNode reports it.
	c := in.Client(t)
	ents, err := c.ReadDir("/crash")
	if err != nil {
		t.Fatal(err)
	}
	seen := make([]int, total)
	for _, e := range ents {
		b, err := c.ReadFile("/crash/" + e.Name())
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(b), "\n")
		for i, l := range lines {
			var n int
			if len(l) != len(crashBody(0)) || !strings.HasPrefix(l, "ev") {
				if i == len(lines)-1 && (l == "" || strings.HasSuffix(e.Name(), ".tmp")) {
					continue // the end, or the torn tail of a file a kill left open
				}
				t.Fatalf("%s: line %d %q is not an event", e.Name(), i, l)
			}
			if _, err := fmt.Sscanf(l, "ev%06d", &n); err != nil || n >= total {
				t.Fatalf("%s: line %d %q is not an event", e.Name(), i, l)
			}
			seen[n]++
		}
	}
	// Every restart recovered the files the kill before it left in use,
	// open mid-append or closed (hdfs_inuse.go), and the last child's stop
	// rolled its own: none is open, none has its in-use name. A file fsck
	// finds CORRUPT (a late DataNode report of an append, see open in
	// hdfs.go) was read whole above, its events counted.
	open, corrupt := in.FsckFiles(t, "/crash")
	if len(open) > 0 {
		t.Errorf("files still open for write after the last child stopped: %v", open)
	}
	if len(corrupt) > 0 {
		t.Logf("files with a block the NameNode marks corrupt, read whole: %v", corrupt)
	}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("/crash/%s still has its in-use name after the last child stopped", e.Name())
		}
	}
	dups := 0
	for i, n := range seen {
		if n == 0 {
			t.Fatalf("event %d is lost: its take committed and it is not in HDFS at the NameNode's lengths", i)
		}
		dups += n - 1
	}
	bound := kills * Window(DefaultPipelineDepth) * hdfsCrashBatch
	t.Logf("%d files, %d duplicates after %d kills (bound %d)", len(ents), dups, kills, bound)
	if dups > bound {
		t.Errorf("%d duplicates, more than %d kills × %d batches of %d", dups, kills, Window(DefaultPipelineDepth), hdfsCrashBatch)
	}
}
