// Package channel holds the queue between sources and sinks: the Event type, the
// transactional Channel contract, the memory and file (write-ahead-log) channels,
// and a registry of channel types by their Flume type name.
//
// A channel never knows about sources or sinks; they meet only here, as in Flume.
// A channel must never acknowledge (return nil from Commit) an event it could lose
// afterwards: for the file channel a nil Commit means durable on disk.
package channel

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Event is one log event: Flume's headers plus an opaque body.
// Header values may be empty; bodies may be empty or binary.
type Event struct {
	Headers map[string]string
	Body    []byte
}

// Size is the number of bytes the event occupies in byte-capacity accounting:
// the body only, as Flume's memory channel counts it.
func (e Event) Size() int { return len(e.Body) }

// Channel is a transactional queue of events.
//
// Begin may be called from any goroutine; each Txn it returns belongs to the
// goroutine that uses it. Stats may be called at any time, also after Close.
// After Close, Begin still returns a Txn, but every call on it fails with ErrClosed.
type Channel interface {
	// Name is the component name from the configuration (e.g. "c1").
	Name() string
	// Begin starts a transaction. A transaction either puts or takes, never both.
	Begin() Txn
	// Stats returns Flume's channel counters as of now.
	Stats() Stats
	// Close stops the channel: in-flight transactions fail with ErrClosed, the file
	// channel writes a final checkpoint, fsyncs and releases its directory lock.
	// Close is idempotent.
	Close() error
}

// Txn is one channel transaction. It is not safe for concurrent use.
//
// Exactly one of Commit or Rollback ends a transaction; any call after that
// returns ErrTxnDone.
type Txn interface {
	// Put stages events. They are invisible to takers until Commit.
	// It returns ErrTxnFull past transactionCapacity (the events of that call are
	// not staged), ErrFull when the channel refuses more (capacity, byte capacity
	// or disk floor; Flume's file channel checks capacity at put), ErrClosed after
	// Close, and ErrMixed when the transaction has already taken.
	Put(events ...Event) error
	// Take removes up to max events from the head of the queue and returns them,
	// oldest first. It returns an empty slice (and nil) when none are available,
	// possibly after waiting the channel's keep-alive. Past transactionCapacity
	// it returns ErrTxnFull.
	//
	// The events are read-only to the taker: it must not modify an event's
	// Headers map or Body slice (copy them to change them). The channel may
	// share them with its read-ahead, and a rolled-back take hands the same
	// events to the next taker, so a change would reach another transaction,
	// or be taken again as if it were the event that was put.
	Take(max int) ([]Event, error)
	// Commit makes staged puts visible to takers and taken events permanently
	// gone. When Commit returns nil the outcome is durable for channels that
	// promise durability. A failed Commit leaves the transaction rolled back.
	Commit() error
	// Rollback discards staged puts and returns taken events to the head of the
	// queue in their original order, ahead of anything newer.
	Rollback() error
}

// GroupCommitter is the optional power of a channel whose take commits cost
// a sync each when made one at a time and one sync for all when made
// together: the file channel with fsyncPerTransaction, whose every take
// commit waits for a checkpoint sync. A sink that keeps several take
// transactions open (sink.Engine) asks for it through the package functions
// SyncsTakeCommits and CommitAll, which answer for any channel (false, and
// one Commit per transaction, without it).
//
// A channel that wraps another (the agent's proxy, a test double) must
// implement it by forwarding to the channel it wraps: one that hides it
// leaves a file channel behind it paying one sync per take commit, and its
// sinks committing inline instead of in groups.
type GroupCommitter interface {
	// SyncsTakeCommits reports whether every take commit costs a sync of its
	// own unless several are committed together with CommitAll. It does not
	// change while the channel is open. Any goroutine may call it, also
	// after Close.
	SyncsTakeCommits() bool
	// CommitAll commits txns, all begun on this channel and not yet
	// finished, and returns each one's outcome as its Commit would: nil
	// means committed, and as durable on return as Commit makes it;
	// otherwise that transaction is rolled back. Open take transactions
	// commit as one group made durable by one sync: all of them or none,
	// and on failure their events go back to the head in their order. If
	// any of txns is not an open take of this channel, each commits by
	// itself, in the order given, and a finished one gets ErrTxnDone.
	// The caller owns every transaction it passes, from whichever goroutine
	// (a Txn belongs to the goroutine that uses it, one at a time). After
	// Close every open transaction's outcome is ErrClosed.
	CommitAll(txns []Txn) []error
}

// CommitAll commits txns, all begun on ch, together when ch is a
// GroupCommitter and one by one, in the order given, otherwise. It returns
// each transaction's outcome as Commit would (nil: committed; otherwise
// rolled back).
func CommitAll(ch Channel, txns []Txn) []error {
	if g, ok := ch.(GroupCommitter); ok {
		return g.CommitAll(txns)
	}
	return commitEach(txns)
}

// commitEach commits txns one by one, in order: what CommitAll does for a
// channel without group commits, or for transactions it cannot group.
func commitEach(txns []Txn) []error {
	errs := make([]error, len(txns))
	for i, t := range txns {
		errs[i] = t.Commit()
	}
	return errs
}

// SyncsTakeCommits reports whether every take commit on ch costs a sync of
// its own unless several are committed together with CommitAll: true when
// ch is a GroupCommitter that says so, as the file channel does with
// fsyncPerTransaction.
func SyncsTakeCommits(ch Channel) bool {
	g, ok := ch.(GroupCommitter)
	return ok && g.SyncsTakeCommits()
}

// Sentinel errors callers branch on (use errors.Is: they are usually wrapped
// with the reason).
var (
	// ErrFull means the channel refuses more events for now: capacity, byte
	// capacity, or the disk floor (minimumRequiredSpace). The caller backs off
	// and retries; takes still work.
	ErrFull = errors.New("channel full")
	// ErrClosed means the channel has been closed or has failed for good.
	ErrClosed = errors.New("channel closed")
	// ErrTxnFull means the transaction already holds transactionCapacity events.
	ErrTxnFull = errors.New("transaction capacity exceeded")
	// ErrTxnDone means the transaction was already committed or rolled back.
	ErrTxnDone = errors.New("transaction already finished")
	// ErrMixed means a transaction tried to put and take.
	ErrMixed = errors.New("transaction cannot both put and take")
)

// Stats are Flume's channel counters (FLUME.md §5). The file-only fields are
// zero for the memory channel.
type Stats struct {
	Type                   string // "memory", "file"
	Size                   int64  // events committed and not yet taken-and-committed
	Capacity               int64
	PutAttempts            int64 // EventPutAttemptCount: every Put call
	PutSuccesses           int64 // EventPutSuccessCount: events in committed puts
	TakeAttempts           int64 // EventTakeAttemptCount: every Take call, also empty ones
	TakeSuccesses          int64 // EventTakeSuccessCount: events in committed takes
	StartTime              time.Time
	StopTime               time.Time
	File                   bool // the fields below are meaningful
	Open                   bool
	Unhealthy              bool
	PutErrors              int64
	TakeErrors             int64
	CheckpointErrors       int64
	BackupCheckpointErrors int64

	// OldestAge is how long the oldest event the channel holds (committed,
	// its take not committed) has been in it, as of the Stats call: 0 when
	// it holds none. Memory and file channels set it (see their Stats for
	// the precision); the Kafka channel does not know it and leaves 0: its
	// queue is the topic.
	OldestAge time.Duration
}

// KnowsOldestAge reports whether OldestAge is measured (memory and file
// channels) rather than unknown (Kafka).
func (s Stats) KnowsOldestAge() bool { return s.Type != "kafka" }

// FlumeMetrics renders the stats as Flume's JSON monitoring attributes,
// every value a string, with Flume's exact attribute names.
func (s Stats) FlumeMetrics() map[string]string {
	ms := func(t time.Time) string {
		if t.IsZero() {
			return "0"
		}
		return strconv.FormatInt(t.UnixMilli(), 10)
	}
	i := func(v int64) string { return strconv.FormatInt(v, 10) }
	fill := "1.7976931348623157E308" // Java's Double.MAX_VALUE, what Flume shows for capacity 0
	if s.Capacity > 0 {
		fill = javaDouble(float64(s.Size) * 100 / float64(s.Capacity))
	}
	m := map[string]string{
		"Type":                  "CHANNEL",
		"StartTime":             ms(s.StartTime),
		"StopTime":              ms(s.StopTime),
		"ChannelSize":           i(s.Size),
		"ChannelCapacity":       i(s.Capacity),
		"ChannelFillPercentage": fill,
		"EventPutAttemptCount":  i(s.PutAttempts),
		"EventPutSuccessCount":  i(s.PutSuccesses),
		"EventTakeAttemptCount": i(s.TakeAttempts),
		"EventTakeSuccessCount": i(s.TakeSuccesses),
	}
	if s.KnowsOldestAge() {
		// flumed's, not Flume's: milliseconds, as Flume's times are.
		m["OldestEventAgeMillis"] = i(s.OldestAge.Milliseconds())
	}
	if s.File {
		b := func(v bool) string {
			if v {
				return "1"
			}
			return "0"
		}
		m["Open"] = strconv.FormatBool(s.Open)
		m["Closed"] = b(!s.Open)
		m["Unhealthy"] = b(s.Unhealthy)
		m["EventPutErrorCount"] = i(s.PutErrors)
		m["EventTakeErrorCount"] = i(s.TakeErrors)
		m["CheckpointWriteErrorCount"] = i(s.CheckpointErrors)
		m["CheckpointBackupWriteErrorCount"] = i(s.BackupCheckpointErrors)
	}
	return m
}

// javaDouble formats like Java's Double.toString for the values Flume shows:
// always at least one fractional digit ("0.0", "23.3428").
func javaDouble(f float64) string {
	s := strconv.FormatFloat(f, 'f', -1, 64)
	for _, c := range s {
		if c == '.' {
			return s
		}
	}
	return fmt.Sprintf("%s.0", s)
}
