package e2e

// A flumed agent with a file channel and an hdfs sink writing to a real HDFS
// of its own (internal/hdfstest: Apache Hadoop 3.3.0, one NameNode, one
// DataNode) loses nothing through every fault a site sees:
//
//   - the agent SIGKILLed 5 times mid-stream;
//   - the DataNode killed mid-stream, then started again;
//   - the NameNode killed mid-stream, then started again (same port);
//   - HDFS full: a space quota on the sink's directory, then cleared.
//
// During each HDFS fault the sink fails (EventWriteFail goes up), the
// runner backs off, the events wait in the agent's file channel, and once
// HDFS is back delivery resumes without a restart of the agent. A sender
// agent (seq → memory → avro, not killed) feeds the agent throughout, so
// every fault strikes mid-stream. At the end the agent is stopped
// gracefully, and Hadoop's own FsShell reads every file back: every event is
// there, every line is a whole event, and the repeats stay within what was
// in flight at each fault (sink.Window batches).
//
// fsck may find a block CORRUPT: the Go client appends without a new
// generation stamp, and a DataNode's late report of an earlier append makes
// the NameNode mark the only replica corrupt although its bytes are whole
// (README, "HDFS"; no fault is needed, only load). The test then checks
// what flumed guarantees: such a file is a final one that Hadoop reads
// whole, its events counted with the rest.

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/flumed/flumed/internal/hdfstest"
	"github.com/flumed/flumed/sink"
)

func TestHDFSSinkLosesNothingThroughAgentKillsDataNodeAndNameNodeRestartsAndAFullHDFS(t *testing.T) {
	const (
		total       = 60_000
		kills       = 5
		senderBatch = 100
		hdfsBatch   = 50
		dir         = "/e2e"
	)
	in := hdfstest.New(t)
	c := newCluster(t)
	p := c.ports(3) // agent; two metrics servers
	agentPort := p[0]

	agentConf := c.config("agent.properties",
		"a1.sources = r1",
		"a1.channels = c1",
		"a1.sinks = k1",
		"a1.sources.r1.type = avro",
		"a1.sources.r1.bind = 127.0.0.1",
		fmt.Sprintf("a1.sources.r1.port = %d", agentPort),
		"a1.sources.r1.channels = c1",
		fileChannel("c1", c.path("agent")),
		"a1.sinks.k1.type = hdfs",
		"a1.sinks.k1.channel = c1",
		"a1.sinks.k1.hdfs.path = "+in.URL+dir,
		"a1.sinks.k1.hdfs.fileType = DataStream",
		fmt.Sprintf("a1.sinks.k1.hdfs.batchSize = %d", hdfsBatch),
		"a1.sinks.k1.hdfs.rollCount = 5000",
		"a1.sinks.k1.hdfs.rollSize = 0",
		"a1.sinks.k1.hdfs.rollInterval = 0",
		"a1.sinks.k1.hdfs.inUseList = "+c.path("agent", "inuse"),
		// A dead DataNode or NameNode fails a batch within seconds, not
		// Flume's 30: the test waits for the failures.
		"a1.sinks.k1.hdfs.callTimeout = 5000",
	)
	senderConf := c.seqSender(total, senderBatch, agentPort)
	agent := c.proc(ProcOptions{Name: "agent", Configs: []string{agentConf}, MetricsPort: p[1], ReadyPort: agentPort,
		Env: []string{"HADOOP_USER_NAME=" + in.User}})
	sender := c.proc(ProcOptions{Name: "sender", Configs: []string{senderConf}, MetricsPort: p[2]})
	c.start(agent)
	c.start(sender)

	// delivering waits until this run of the agent has written a batch
	// past what it had written when asked (counters start again with a run).
	delivered := func() int64 { return c.read(agent, "SINK.k1", "EventDrainSuccessCount") }
	delivering := func(what string) {
		t.Helper()
		from := delivered()
		c.metric(agent, "SINK.k1", "EventDrainSuccessCount", what+": the agent writes to HDFS", func(n int64) bool { return n > from })
	}
	notDone := func(what string) {
		t.Helper()
		sent, queued := c.read(sender, "SOURCE.r1", "EventAcceptedCount"), c.read(agent, "CHANNEL.c1", "ChannelSize")
		if sent >= total && queued == 0 {
			t.Fatalf("%s: every event was delivered before it; raise total", what)
		}
		t.Logf("%s: the sender has sent %d of %d events, the agent's channel holds %d", what, sent, total, queued)
	}

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 17))
	for k := 1; k <= kills; k++ {
		what := fmt.Sprintf("kill %d", k)
		delivering(what)
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond) // the random moment of the kill, not a wait
		notDone(what)
		c.kill(agent)
		c.start(agent)
	}

	// hdfsFault kills part of HDFS mid-stream, checks that the sink fails
	// and the events wait in the channel, then gives HDFS back (heal) and
	// waits for delivery to resume, with the agent still up.
	hdfsFault := func(what string, fault, heal func()) {
		t.Helper()
		delivering(what)
		notDone(what)
		fails := c.read(agent, "SINK.k1", "EventWriteFail")
		fault()
		c.metric(agent, "SINK.k1", "EventWriteFail", what+": the sink fails", func(n int64) bool { return n > fails })
		// The sender goes on sending; nothing is taken for good while HDFS
		// is down, so the channel holds events.
		c.metric(agent, "CHANNEL.c1", "ChannelSize", what+": events wait in the channel", func(n int64) bool { return n > 0 })
		heal()
		delivering(what + ", healed")
		t.Logf("%s: the sink failed %d times, then delivered again", what, c.read(agent, "SINK.k1", "EventWriteFail")-fails)
	}
	hdfsFault("DataNode killed", func() { in.KillDataNode(t) }, func() { in.Restart(t) })
	hdfsFault("NameNode killed", func() { in.KillNameNode(t) }, func() { in.Restart(t) })
	errLines := func() int { return bytes.Count(readFile(t, c.path("agent.err")), []byte("HDFS is full")) }
	before := errLines()
	hdfsFault("HDFS full", func() {
		in.Tool(t, "dfsadmin", "-setSpaceQuota", "1m", dir)
	}, func() {
		if errLines() == before {
			t.Errorf("HDFS full: the agent logged no line saying so:\n%s", agent.Tail("stderr", 10))
		}
		in.Tool(t, "dfsadmin", "-clrSpaceQuota", dir)
	})

	// Everything sent, then delivered; a graceful stop rolls the files.
	c.metric(sender, "SOURCE.r1", "EventAcceptedCount", "the sender sends every event", func(n int64) bool { return n >= total })
	c.metric(sender, "CHANNEL.c1", "ChannelSize", "the sender's channel drains into the agent", func(n int64) bool { return n == 0 })
	// On a busy machine the backlog the faults left takes the sink longer
	// than one await.Limit to write (a close and an append per batch): wait
	// for as long as it drains, so that only a stuck sink fails. And after
	// the HDFS restarts a grossly overloaded machine (load 30, the
	// NameNode's JVM paused 10 s at a time) had HDFS calls time out one
	// after another for over a minute while the sink retried as it
	// should: a sink is stuck only when nothing moves for drainStall.
	const drainStall = 3 * time.Minute
	for left := c.read(agent, "CHANNEL.c1", "ChannelSize"); left > 0; {
		since := time.Now()
		n := left
		for ; n >= left; n = c.read(agent, "CHANNEL.c1", "ChannelSize") {
			if time.Since(since) > drainStall {
				t.Fatalf("the agent's sink drained nothing for %v (%d events left in its channel)", drainStall, left)
			}
			time.Sleep(10 * lookEvery) // polling the condition
		}
		left = n
	}
	c.idle(agent)
	if err := agent.Terminate(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err, _ := agent.Exited(); err != nil {
		t.Errorf("the agent's graceful stop: %v\n%s", err, agent.Tail("stderr", 20))
	}

	// Hadoop reads every file (in use or rolled) back; none is still open.
	files := in.Ls(t, dir)
	for _, f := range files {
		if strings.HasSuffix(f, ".tmp") {
			t.Errorf("%s is still in use after the agent stopped", f)
		}
	}
	seen := make([]int, total)
	records, garbage := 0, []string{}
	whole := map[string]bool{} // read to the end by Hadoop, checksums verified
	for _, f := range files {
		// One file at a time, so that a file Hadoop cannot read is named.
		out, err := in.TryDfs("-cat", f)
		if err != nil {
			t.Errorf("hdfs dfs -cat %s: %v", f, err)
		} else {
			whole[strings.TrimPrefix(f, in.URL)] = true
		}
		for _, l := range strings.Split(string(out), "\n") {
			if l == "" {
				continue
			}
			n, ok := ParseDecimal(l)
			if !ok || n < 0 || n >= total {
				garbage = append(garbage, l)
				continue
			}
			seen[n]++
			records++
		}
	}
	var lost []int
	for i, n := range seen {
		if n == 0 {
			lost = append(lost, i)
		}
	}
	window := sink.Window(sink.DefaultPipelineDepth)
	bound := (kills + 3) * window * hdfsBatch
	t.Logf("%d files; %d records for %d events: %d duplicates (bound %d); %d lines not events",
		len(files), records, total, records-total+len(lost), bound, len(garbage))
	if len(lost) > 0 {
		t.Fatalf("%d events lost: %s", len(lost), Ranges(lost))
	}
	if len(garbage) > 0 {
		t.Errorf("%d lines are not whole events: %q", len(garbage), garbage[:min(5, len(garbage))])
	}
	if dups := records - total; dups > bound {
		t.Errorf("%d duplicates, more than (%d kills + 3 faults) × %d batches of %d", dups, kills, window, hdfsBatch)
	}
	// No file is left open. A block fsck finds CORRUPT is one whose only
	// replica the NameNode marked corrupt after a late DataNode report of
	// an earlier append (README, "HDFS"): flumed guarantees its events, not
	// fsck's verdict, so such a file must be a final one that Hadoop read
	// whole above, checksums verified, with its events counted.
	open, corrupt := in.FsckFiles(t, dir)
	if len(open) > 0 {
		t.Errorf("files still open for write: %v", open)
	}
	for _, f := range corrupt {
		if !whole[f] || strings.HasSuffix(f, ".tmp") {
			t.Errorf("fsck finds %s CORRUPT, and it is not a final file Hadoop read whole (%v)", f, files)
		}
	}
	if len(corrupt) > 0 {
		t.Logf("%d files with a block the NameNode marks corrupt, each read whole: %v; the agent said so %d times",
			len(corrupt), corrupt, bytes.Count(readFile(t, c.path("agent.err")), []byte("refuses to append")))
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
