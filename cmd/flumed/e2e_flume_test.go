package main

// End to end, a Flume migration: the real flumed binary runs with a file
// channel configured as Flume's was (the a1.channels.c1 keys of each
// fixture's flume.properties), on a copy of the directories Apache Flume
// left, and an avro sink drains the channel to a collector in this test
// (Flume's Avro RPC, served by internal/avrorpc, one call at a time so that
// arrival order is delivery order). The collector receives exactly what real
// Flume delivered from the same directories: same events, same order, same
// bytes and headers. Flume's files end up set aside.

import (
	"bytes"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/flumed/flumed/channel/flumefile/flumefiletest"
	"github.com/flumed/flumed/internal/avrorpc"
	"github.com/flumed/flumed/internal/await"
	"github.com/flumed/flumed/internal/e2e"
)

// collector records every event it is sent, in order.
type collector struct {
	mu     sync.Mutex
	events []avrorpc.Event
}

func (c *collector) Append(e avrorpc.Event) avrorpc.Status {
	return c.AppendBatch([]avrorpc.Event{e})
}

func (c *collector) AppendBatch(evs []avrorpc.Event) avrorpc.Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range evs {
		c.events = append(c.events, avrorpc.Event{Headers: maps.Clone(e.Headers), Body: bytes.Clone(e.Body)})
	}
	return avrorpc.StatusOK
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.events)
}

// startCollector serves the Avro source protocol on a free port.
func startCollector(t *testing.T) (*collector, int) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &collector{}
	srv := avrorpc.NewServer(c, avrorpc.ServerOptions{MaxCallsPerConnection: 1})
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return c, l.Addr().(*net.TCPAddr).Port
}

// flumeAgentConfig is an agent with the fixture copy's channel keys, an idle
// avro source and an avro sink to port.
func flumeAgentConfig(t *testing.T, dir string, sinkPort int) string {
	t.Helper()
	c := flumefiletest.ReadChannel(t, dir)
	srcPort, err := e2e.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "a1.sources = r1\na1.channels = c1\na1.sinks = k1\n")
	fmt.Fprintf(&b, "a1.sources.r1.type = avro\na1.sources.r1.bind = 127.0.0.1\na1.sources.r1.port = %d\na1.sources.r1.channels = c1\n", srcPort)
	keys := make([]string, 0, len(c.Keys))
	for k := range c.Keys {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := c.Keys[k]
		switch k {
		case "checkpointDir", "backupCheckpointDir":
			v = filepath.Join(dir, v)
		case "dataDirs":
			var ds []string
			for _, d := range strings.Split(v, ",") {
				ds = append(ds, filepath.Join(dir, strings.TrimSpace(d)))
			}
			v = strings.Join(ds, ",")
		}
		fmt.Fprintf(&b, "a1.channels.c1.%s = %s\n", k, v)
	}
	fmt.Fprintf(&b, "a1.sinks.k1.type = avro\na1.sinks.k1.channel = c1\na1.sinks.k1.hostname = 127.0.0.1\na1.sinks.k1.port = %d\na1.sinks.k1.batch-size = 100\n", sinkPort)
	return b.String()
}

func TestE2EFlumedDeliversWhatFlumeWouldFromFlumesDirectories(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts a flumed process per fixture")
	}
	for _, name := range flumefiletest.Cases(t) {
		t.Run(name, func(t *testing.T) {
			dir := flumefiletest.Copy(t, name)
			want := flumefiletest.Expected(t, name)
			coll, port := startCollector(t)
			p := startAgent(t, flumeAgentConfig(t, dir, port))
			await.True(t, fmt.Sprintf("the collector to receive %d events", len(want)), func() bool {
				select {
				case <-p.exited:
					t.Fatalf("flumed exited: %v\n%s", p.waitErr, p.stderr)
				default:
				}
				return coll.count() >= len(want)
			})
			p.waitCounter(t, "CHANNEL.c1", "ChannelSize", 0)
			if code := p.stop(t, syscall.SIGTERM); code != 0 {
				t.Fatalf("exit %d\n%s", code, p.stderr)
			}
			coll.mu.Lock()
			got := coll.events
			coll.mu.Unlock()
			if len(got) != len(want) {
				t.Fatalf("collector received %d events, Flume delivered %d", len(got), len(want))
			}
			for i := range want {
				h := got[i].Headers
				if h == nil {
					h = map[string]string{}
				}
				if !bytes.Equal(got[i].Body, want[i].Body) || !maps.Equal(h, want[i].Headers) {
					t.Fatalf("event %d = %q %v, Flume delivered %q %v", i, got[i].Body, h, want[i].Body, want[i].Headers)
				}
			}
			t.Logf("collector received %d events; flumed: %d log lines", len(got), strings.Count(p.stderr.String(), "\n"))
			if !strings.Contains(p.stderr.String(), "imported the backlog of a Flume file channel") {
				t.Errorf("no import in the log:\n%s", p.stderr)
			}
			ck := filepath.Join(dir, flumefiletest.ReadChannel(t, dir).Keys["checkpointDir"])
			if _, err := os.Stat(filepath.Join(ck, "checkpoint")); !os.IsNotExist(err) {
				t.Errorf("Flume's checkpoint is still in place (%v)", err)
			}
		})
	}
}
