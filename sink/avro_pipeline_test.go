package sink

// Contract of the avro sink's pipeline (pipeline-depth N > 1), against real
// memory and file channels on the agent's side and an avrorpc server putting
// into a real file channel on the collector's side (what the avro source
// does):
//
//   - every event reaches the collector exactly once when nothing fails, and
//     the collector handles several of the sink's calls at once;
//   - one goroutine holds up to N take transactions; when one batch fails
//     (FAILED, or no answer within request-timeout, or the drain deadline),
//     every uncommitted transaction rolls back, latest first, so the channel
//     holds the failed batch and every later one at its head in the original
//     order; nothing is lost and only batches that were in flight come again;
//   - Process returns Backoff only with nothing in flight, and Stop waits for
//     the batches in flight and commits those answered OK;
//   - depth 1 is Flume's sink: one call at a time, committed before Process
//     returns.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/avrorpc"
	"github.com/flumed/flumed/internal/await"
	"github.com/flumed/flumed/internal/config"
)

// pipeCollector is a collector for pipeline tests. It puts what it accepts
// into a channel when it has one, records accepted bodies, counts how many
// calls it handles at once, and can hold calls and choose each batch's
// answer by its first body.
type pipeCollector struct {
	ch channel.Channel // nil: record only

	mu        sync.Mutex
	bodies    []string
	inside    int
	maxInside int
	delay     time.Duration                     // each call takes this long
	hold      func(first string) bool           // true: wait for release before answering
	answer    func(first string) avrorpc.Status // nil: OK
	release   chan struct{}
}

func (c *pipeCollector) Append(e avrorpc.Event) avrorpc.Status {
	return c.AppendBatch([]avrorpc.Event{e})
}

func (c *pipeCollector) AppendBatch(evs []avrorpc.Event) avrorpc.Status {
	first := string(evs[0].Body)
	c.mu.Lock()
	c.inside++
	c.maxInside = max(c.maxInside, c.inside)
	hold, answer, delay := c.hold, c.answer, c.delay
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.inside--
		c.mu.Unlock()
	}()
	time.Sleep(delay)
	if hold != nil && hold(first) {
		<-c.release
	}
	st := avrorpc.StatusOK
	if answer != nil {
		st = answer(first)
	}
	if st != avrorpc.StatusOK {
		return st
	}
	if c.ch != nil {
		txn := c.ch.Begin()
		put := make([]channel.Event, len(evs))
		for i, e := range evs {
			put[i] = channel.Event(e)
		}
		if err := txn.Put(put...); err != nil {
			txn.Rollback()
			return avrorpc.StatusFailed
		}
		if err := txn.Commit(); err != nil {
			return avrorpc.StatusFailed
		}
	}
	c.mu.Lock()
	for _, e := range evs {
		c.bodies = append(c.bodies, string(e.Body))
	}
	c.mu.Unlock()
	return avrorpc.StatusOK
}

func (c *pipeCollector) got() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.bodies)
}

func (c *pipeCollector) set(f func(c *pipeCollector)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(c)
}

// servePipe serves col on a loopback port until the end of the test; held
// calls are released first, so the server can close.
func servePipe(t *testing.T, col *pipeCollector) string {
	t.Helper()
	col.release = make(chan struct{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := avrorpc.NewServer(col, avrorpc.ServerOptions{})
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(l) }()
	t.Cleanup(func() { s.Close(); <-done })
	t.Cleanup(func() { close(col.release) }) // runs first
	return l.Addr().String()
}

func openFileChannel(t *testing.T, name string) *channel.File {
	t.Helper()
	dir := t.TempDir()
	o := channel.DefaultFileOptions()
	o.CheckpointDir, o.DataDir = filepath.Join(dir, "checkpoint"), filepath.Join(dir, "data")
	o.MinimumRequiredSpace = -1
	o.SegmentSize = 1 << 20
	f, err := channel.OpenFile(name, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// agentChannels are the channels the sink drains in these tests, each
// holding n events e0…e(n-1).
func agentChannels(t *testing.T, n int) map[string]channel.Channel {
	file := openFileChannel(t, "c1")
	fillNumbered(t, file, n)
	return map[string]channel.Channel{"memory": newMemoryWith(t, n), "file": file}
}

// peek returns the bodies queued in ch, head first, leaving them there.
func peek(t *testing.T, ch channel.Channel) []string {
	t.Helper()
	txn := ch.Begin()
	evs, err := txn.Take(1000)
	if err != nil {
		t.Fatal(err)
	}
	if err := txn.Rollback(); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		out = append(out, string(e.Body))
	}
	return out
}

func bodiesFrom(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("e%d", i))
	}
	return out
}

func TestAtDepthFourEveryEventReachesTheCollectorExactlyOnce(t *testing.T) {
	for name, ch := range agentChannels(t, 2000) {
		t.Run(name, func(t *testing.T) {
			col := &pipeCollector{ch: openFileChannel(t, "collector"), delay: 2 * time.Millisecond}
			s := newAvroTo(t, servePipe(t, col), AvroOptions{BatchSize: 50, PipelineDepth: 4})
			drain(t, ch, NewDefault(s))
			got := col.got()
			slices.SortFunc(got, func(a, b string) int { return numberOf(a) - numberOf(b) })
			if !slices.Equal(got, bodiesFrom(0, 2000)) {
				t.Fatalf("the collector accepted %d events, want e0…e1999 once each", len(got))
			}
			if st := col.ch.Stats(); st.Size != 2000 {
				t.Fatalf("the collector's channel holds %d events", st.Size)
			}
			if st := ch.Stats(); st.Size != 0 || st.TakeSuccesses != 2000 {
				t.Fatalf("the agent's channel: %+v", st)
			}
			if m := s.FlumeMetrics(); m["EventDrainSuccessCount"] != "2000" || m["BatchCompleteCount"] != "40" || m["ConnectionCreatedCount"] != "1" {
				t.Fatalf("metrics %v", m)
			}
			if col.maxInside < 2 {
				t.Fatalf("the collector never had two calls at once (max %d): nothing was pipelined", col.maxInside)
			}
		})
	}
}

func numberOf(body string) int {
	var n int
	fmt.Sscanf(body, "e%d", &n)
	return n
}

func TestAFailureAmongFourBatchesInFlightRollsBackEveryUncommittedOneInOrder(t *testing.T) {
	// Batches of 10: b1 (e0…) is the connection's first call and is answered
	// at once; b2…b5 are held until all four are in flight, then b3 fails
	// (FAILED, or no answer within request-timeout) while b2, b4 and b5 are
	// answered OK. b2 commits; b3, b4 and b5 (and b6, if it was sent, which
	// the collector holds to the end) roll back, latest first.
	for fail, never := range map[string]bool{"the collector answers FAILED": false, "the collector never answers": true} {
		for name, ch := range agentChannels(t, 100) {
			t.Run(fail+"/"+name, func(t *testing.T) {
				col := &pipeCollector{}
				addr := servePipe(t, col)
				var entered sync.WaitGroup
				entered.Add(4)
				all := make(chan struct{})
				go func() { entered.Wait(); close(all) }()
				col.set(func(c *pipeCollector) {
					c.hold = func(first string) bool {
						switch first {
						case "e0":
							return false
						case "e10", "e20", "e30", "e40":
							entered.Done()
							<-all
							return never && first == "e20"
						}
						return true
					}
					c.answer = func(first string) avrorpc.Status {
						if first == "e20" {
							return avrorpc.StatusFailed
						}
						return avrorpc.StatusOK
					}
				})
				s := newAvroTo(t, addr, AvroOptions{BatchSize: 10, PipelineDepth: 4, RequestTimeout: time.Second})
				s.Start(context.Background(), ch)
				var err error
				for range 10 {
					if _, err = s.Process(context.Background()); err != nil {
						break
					}
				}
				var se *avrorpc.StatusError
				var ne net.Error
				if !never && !errors.As(err, &se) || never && !(errors.As(err, &ne) && ne.Timeout()) {
					t.Fatalf("err = %v, want the batch's failure", err)
				}
				if s.eng.inFlight() != 0 {
					t.Fatalf("%d batches still in flight after the failure", s.eng.inFlight())
				}
				if got := peek(t, ch); !slices.Equal(got, bodiesFrom(20, 100)) {
					t.Fatalf("channel head after the failure: %v, want e20…e99 in order", got)
				}
				m := s.FlumeMetrics()
				if m["EventDrainSuccessCount"] != "20" || m["EventWriteFail"] != "1" || m["ConnectionClosedCount"] != "1" {
					t.Fatalf("metrics %v", m)
				}
				// b4 and b5 were answered OK, so the collector records them,
				// but its handlers may still be on their way there when the
				// sink has already seen b3 fail: wait for them, or a loaded
				// machine counts them only once.
				await.True(t, "the collector recording b4 and b5", func() bool {
					got := col.got()
					return slices.Contains(got, "e30") && slices.Contains(got, "e40")
				})
				accepted := col.got()
				col.set(func(c *pipeCollector) { c.hold, c.answer = nil, nil })
				for st := Ready; st == Ready; {
					if st, err = s.Process(context.Background()); err != nil {
						t.Fatal(err)
					}
				}
				redelivered := col.got()[len(accepted):]
				if !slices.Equal(redelivered[:10], bodiesFrom(20, 30)) {
					t.Fatalf("redelivery starts %v, want the failed batch e20…e29 first", redelivered[:10])
				}
				seen := map[string]int{}
				for _, b := range col.got() {
					seen[b]++
				}
				for _, b := range bodiesFrom(0, 100) {
					n := numberOf(b)
					dup := n >= 30 && n < 50 // b4, b5 were accepted, then rolled back
					if want := map[bool]int{false: 1, true: 2}[dup]; seen[b] != want {
						t.Fatalf("%s reached the collector %d times, want %d", b, seen[b], want)
					}
				}
			})
		}
	}
}

func TestStopWaitsForTheBatchesInFlightAndCommitsThem(t *testing.T) {
	col := &pipeCollector{delay: 50 * time.Millisecond}
	addr := servePipe(t, col)
	ch := newMemoryWith(t, 100)
	s := newAvroTo(t, addr, AvroOptions{BatchSize: 10, PipelineDepth: 4})
	s.Start(context.Background(), ch)
	for range 4 {
		if st, err := s.Process(context.Background()); st != Ready || err != nil {
			t.Fatalf("process: %v %v", st, err)
		}
	}
	if s.eng.inFlight() < 2 {
		t.Fatalf("%d batches in flight, want several", s.eng.inFlight())
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	got := col.got()
	slices.SortFunc(got, func(a, b string) int { return numberOf(a) - numberOf(b) })
	if !slices.Equal(got, bodiesFrom(0, 40)) {
		t.Fatalf("the collector accepted %v, want e0…e39", got)
	}
	if st := ch.Stats(); st.Size != 60 || st.TakeSuccesses != 40 {
		t.Fatalf("after Stop the channel: %+v, want the 4 batches committed and 60 left", st)
	}
	if m := s.FlumeMetrics(); m["EventDrainSuccessCount"] != "40" || m["ConnectionClosedCount"] != "1" {
		t.Fatalf("metrics %v", m)
	}
}

func TestADrainDeadlineRollsBackTheBatchesInFlight(t *testing.T) {
	col := &pipeCollector{}
	addr := servePipe(t, col)
	col.set(func(c *pipeCollector) { c.hold = func(first string) bool { return first != "e0" } })
	ch := newMemoryWith(t, 100)
	s := NewAvro("k1", AvroOptions{Hostname: "127.0.0.1", Port: mustPort(t, addr), BatchSize: 10, PipelineDepth: 4}, nil)
	s.Start(context.Background(), ch)
	r := NewRunner("g1", NewDefault(s), RunnerOptions{BackoffStep: time.Millisecond, ErrorSleep: time.Millisecond}, nil)
	r.Start(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := r.Drain(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Drain = %v, want the deadline", err)
	}
	s.Stop()
	if got := peek(t, ch); !slices.Equal(got, bodiesFrom(10, 100)) {
		t.Fatalf("channel after the drain deadline: %d events from %v, want e10…e99 in order", len(got), got[:1])
	}
}

func TestDepthOneIsFlumesSinkOneCallAtATimeCommittedBeforeProcessReturns(t *testing.T) {
	col := &pipeCollector{delay: time.Millisecond}
	addr := servePipe(t, col)
	ch := newMemoryWith(t, 50)
	s := newAvroTo(t, addr, AvroOptions{BatchSize: 10, PipelineDepth: 1})
	s.Start(context.Background(), ch)
	for i := 1; i <= 5; i++ {
		if st, err := s.Process(context.Background()); st != Ready || err != nil {
			t.Fatalf("process: %v %v", st, err)
		}
		if s.eng.inFlight() != 0 || ch.Stats().TakeSuccesses != int64(10*i) {
			t.Fatalf("after process %d: %d in flight, %d committed", i, s.eng.inFlight(), ch.Stats().TakeSuccesses)
		}
	}
	if col.maxInside != 1 {
		t.Fatalf("the collector had %d calls at once", col.maxInside)
	}
}

func TestAnEmptyChannelBacksOffOnlyOnceEverythingInFlightIsCommitted(t *testing.T) {
	col := &pipeCollector{delay: 20 * time.Millisecond}
	addr := servePipe(t, col)
	ch := newMemoryWith(t, 30) // three full batches, then nothing
	s := newAvroTo(t, addr, AvroOptions{BatchSize: 10, PipelineDepth: 4})
	s.Start(context.Background(), ch)
	var st Status
	for st = Ready; st == Ready; {
		var err error
		if st, err = s.Process(context.Background()); err != nil {
			t.Fatal(err)
		}
		if st == Backoff && (s.eng.inFlight() != 0 || ch.Stats().Size != 0) {
			t.Fatalf("Backoff with %d batches in flight, %d events uncommitted", s.eng.inFlight(), ch.Stats().Size)
		}
	}
	if got := col.got(); len(got) != 30 {
		t.Fatalf("the collector got %d events", len(got))
	}
}

func TestPipelineDepthIsReadAndChecked(t *testing.T) {
	for value, want := range map[string]string{"": "4", "1": "1", "8": "8", "0": "must be 1-64", "65": "must be 1-64", "x": "integer"} {
		kv := map[string]string{"hostname": "collector", "port": "4141"}
		if value != "" {
			kv["pipeline-depth"] = value
		}
		c := config.FromMap("a1.sinks.k1.", kv)
		sk, err := checkedSink("avro")("k1", c, nil)
		if strings.HasPrefix(want, "must") || want == "integer" {
			if err == nil && c.Problems().Err() == nil || !strings.Contains(fmt.Sprint(c.Problems().Err()), want) {
				t.Errorf("pipeline-depth=%s: problems %v, want %q", value, c.Problems().Err(), want)
			}
			continue
		}
		if err != nil || c.Problems().Err() != nil {
			t.Fatalf("pipeline-depth=%s: %v %v", value, err, c.Problems().Err())
		}
		if got := fmt.Sprint(sk.(*Avro).opts.PipelineDepth); got != want {
			t.Errorf("pipeline-depth=%s: depth %s, want %s", value, got, want)
		}
	}
}

// gatedChannel holds every take commit until open is closed, as a file
// channel's commit waits for its sync, only for as long as the test likes.
type gatedChannel struct {
	channel.Channel
	open chan struct{}
}

func (g *gatedChannel) Begin() channel.Txn { return &gatedTxn{Txn: g.Channel.Begin(), open: g.open} }

// SyncsTakeCommits: its commits are slow, as a syncing channel's.
func (g *gatedChannel) SyncsTakeCommits() bool { return true }

// CommitAll commits one by one, each held at the gate.
func (g *gatedChannel) CommitAll(txns []channel.Txn) []error {
	errs := make([]error, len(txns))
	for i, t := range txns {
		errs[i] = t.Commit()
	}
	return errs
}

type gatedTxn struct {
	channel.Txn
	open  chan struct{}
	taken bool
}

func (t *gatedTxn) Take(max int) ([]channel.Event, error) {
	evs, err := t.Txn.Take(max)
	t.taken = t.taken || len(evs) > 0
	return evs, err
}

func (t *gatedTxn) Commit() error {
	if t.taken {
		<-t.open
	}
	return t.Txn.Commit()
}

func TestASlowCommitDoesNotHoldUpTheNextBatchesAndIsWaitedForBeforeBackoff(t *testing.T) {
	col := &pipeCollector{}
	addr := servePipe(t, col)
	mem := newMemoryWith(t, 200)
	ch := &gatedChannel{Channel: mem, open: make(chan struct{})}
	s := newAvroTo(t, addr, AvroOptions{BatchSize: 10, PipelineDepth: 4})
	var opened sync.Once
	openGate := func() { opened.Do(func() { close(ch.open) }) }
	t.Cleanup(openGate) // before the sink's Stop, which waits for the commits
	s.Start(context.Background(), ch)
	done := make(chan error, 1)
	go func() {
		for {
			st, err := s.Process(context.Background())
			if err != nil || st == Backoff {
				done <- err
				return
			}
		}
	}()
	// While the first commit is stuck, the runner goes on sending until the
	// window is full: the group being committed, the answered batches
	// queued behind it and the batches in flight, Window(4) = 12 batches in
	// all (each holds its events in memory and would be sent again after a
	// crash), and then waits for the commit.
	await.True(t, "the runner to wait for the stuck commit", s.eng.committer.waiting)
	window := Window(4)
	await.True(t, "the collector to answer the window's batches", func() bool { return len(col.got()) >= 10*window })
	if n := len(col.got()); n != 10*window || n < 60 || n > 120 {
		t.Fatalf("with a commit stuck the collector got %d events, want the window's %d batches (6 to 12)", n, window)
	}
	if st := mem.Stats(); st.TakeSuccesses != 0 {
		t.Fatalf("%d events committed through a closed gate", st.TakeSuccesses)
	}
	openGate()
	if err := await.Recv(t, "the runner's Backoff", done); err != nil {
		t.Fatal(err)
	}
	// Backoff came only after every batch was committed.
	if st := mem.Stats(); st.Size != 0 || st.TakeSuccesses != 200 {
		t.Fatalf("at Backoff the channel: size %d, committed %d, want 0 and 200", st.Size, st.TakeSuccesses)
	}
	if m := s.FlumeMetrics(); m["EventDrainSuccessCount"] != "200" {
		t.Fatalf("metrics %v", m)
	}
	got := col.got()
	slices.SortFunc(got, func(a, b string) int { return numberOf(a) - numberOf(b) })
	if !slices.Equal(got, bodiesFrom(0, 200)) {
		t.Fatalf("the collector accepted %d events, want e0…e199 once each", len(got))
	}
}

func TestAFailedTakeCommitMakesTheNextProcessBackOff(t *testing.T) {
	col := &pipeCollector{}
	addr := servePipe(t, col)
	fake := newFakeChannel(nil)
	fake.put(numbered(20)...)
	fake.commitErr = errors.New("checkpoint: disk gone")
	s := newAvroTo(t, addr, AvroOptions{BatchSize: 10, PipelineDepth: 1})
	s.Start(context.Background(), fake)
	if st, err := s.Process(context.Background()); st != Ready || err != nil {
		t.Fatalf("first process = %v, %v", st, err)
	}
	if got := fake.bodies(); len(got) != 20 || got[0] != "e0" {
		t.Fatalf("after the failed commit the channel holds %v, want e0…e19", got)
	}
	if st, err := s.Process(context.Background()); st != Backoff || err != nil || len(col.got()) != 10 {
		t.Fatalf("after a failed commit: %v, %v, the collector has %d events; want Backoff and no new call", st, err, len(col.got()))
	}
	for st := Ready; st == Ready; {
		var err error
		if st, err = s.Process(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	want := append(bodiesFrom(0, 10), bodiesFrom(0, 20)...) // the first batch twice
	if got := col.got(); !slices.Equal(got, want) || fake.size() != 0 {
		t.Fatalf("the collector got %v (left %d), want e0…e9 then e0…e19", got, fake.size())
	}
	if m := s.FlumeMetrics(); m["ChannelReadFail"] != "1" || m["EventDrainSuccessCount"] != "20" {
		t.Fatalf("metrics %v", m)
	}
}

func TestWithACommitStuckTheSinkSendsExactlyItsWindowAtEveryDepth(t *testing.T) {
	// What a crash could deliver twice is what the sink sent and has not
	// committed: with the first commit held, the runner sends until
	// Window(depth) batches are uncommitted, and then waits.
	for _, depth := range []int{1, 2, 3, 8} {
		t.Run(fmt.Sprintf("depth=%d", depth), func(t *testing.T) {
			col := &pipeCollector{}
			addr := servePipe(t, col)
			mem := newMemoryWith(t, 500)
			ch := &gatedChannel{Channel: mem, open: make(chan struct{})}
			var opened sync.Once
			openGate := func() { opened.Do(func() { close(ch.open) }) }
			t.Cleanup(openGate)
			s := newAvroTo(t, addr, AvroOptions{BatchSize: 10, PipelineDepth: depth})
			s.Start(context.Background(), ch)
			done := make(chan error, 1)
			go func() {
				for {
					st, err := s.Process(context.Background())
					if err != nil || st == Backoff {
						done <- err
						return
					}
				}
			}()
			window := Window(depth)
			await.True(t, "the runner to wait for the stuck commit", s.eng.committer.waiting)
			await.True(t, "the collector to answer the window's batches", func() bool { return len(col.got()) >= 10*window })
			if n := len(col.got()); n != 10*window {
				t.Fatalf("with a commit stuck the collector got %d events, want %d batches of 10", n, window)
			}
			openGate()
			if err := await.Recv(t, "the runner's Backoff", done); err != nil {
				t.Fatal(err)
			}
			if st := mem.Stats(); st.Size != 0 || st.TakeSuccesses != 500 {
				t.Fatalf("at Backoff the channel: size %d, committed %d, want 0 and 500", st.Size, st.TakeSuccesses)
			}
		})
	}
}
