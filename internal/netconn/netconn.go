// Package netconn is the one place where every network source keeps its
// connections: a cap on how many are open, where the connection idle the
// longest is closed to make room for a new one (a crowd of idle peers must
// not lock out a client that has work to send; Flume serves it too), an idle
// timeout, and one memory budget that every connection's buffers are charged
// to. It knows nothing of protocols or events. It must never close a
// connection that is in the middle of a message or a call: at the cap with
// every connection busy, the new one is refused instead.
//
// A source's reader goroutine calls Waiting before it blocks for the next
// message and Started once a message begins; work done elsewhere for the
// connection (a call handled on another goroutine) is bracketed by Hold and
// Release. A connection is idle, and may be evicted, only while its reader is
// waiting and nothing is held.
package netconn

import (
	"container/list"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flumed/flumed/internal/clock"
)

// Defaults for Options' zero values.
const (
	DefaultMaxConnections = 1024
	DefaultMaxMemory      = 512 << 20
)

// Errors of Admit.
var (
	ErrFull   = errors.New("netconn: every connection is busy at the cap")
	ErrClosed = errors.New("netconn: manager closed")
)

// Options configure a Manager. Zero values mean the documented defaults.
type Options struct {
	// MaxConnections caps open connections. At the cap a new connection
	// closes the one idle the longest; when none is idle it is refused.
	MaxConnections int
	// IdleTimeout closes a connection whose reader waits this long for the
	// next message (through the read deadline set by Waiting). Zero keeps
	// idle connections open, as Flume does.
	IdleTimeout time.Duration
	// MaxMemory caps the bytes all connections hold at once (Reserve).
	MaxMemory int64
	Clock     clock.Clock
	Log       *slog.Logger
}

// Stats are a manager's counters.
type Stats struct {
	Open     int64 // connections open now
	Idle     int64 // of which idle (evictable)
	Accepted int64 // admitted in total
	Refused  int64 // refused at the cap with every connection busy
	Evicted  int64 // closed idle to make room for a new one
	Memory   int64 // bytes reserved now
}

// Manager tracks the connections of one source. Safe for concurrent use.
type Manager struct {
	o   Options
	log *slog.Logger

	mu     sync.Mutex
	closed bool
	conns  map[*Conn]struct{}
	idle   list.List // *Conn, longest idle first

	memory                              atomic.Int64
	accepted, refused, evicted, lastLog atomic.Int64
}

// New returns a manager with o's defaults filled in.
func New(o Options) *Manager {
	if o.MaxConnections <= 0 {
		o.MaxConnections = DefaultMaxConnections
	}
	if o.MaxMemory <= 0 {
		o.MaxMemory = DefaultMaxMemory
	}
	o.Clock = clock.Or(o.Clock)
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Manager{o: o, log: o.Log, conns: map[*Conn]struct{}{}}
}

// Options returns the options in effect, defaults filled in.
func (m *Manager) Options() Options { return m.o }

// Stats returns the manager's counters.
func (m *Manager) Stats() Stats {
	m.mu.Lock()
	open, idle := int64(len(m.conns)), int64(m.idle.Len())
	m.mu.Unlock()
	return Stats{Open: open, Idle: idle, Accepted: m.accepted.Load(), Refused: m.refused.Load(), Evicted: m.evicted.Load(), Memory: m.memory.Load()}
}

// Admit registers a newly accepted connection. At the cap it closes the
// connection idle the longest to make room, or, when every connection is
// busy, returns ErrFull; after Close it returns ErrClosed. On error the
// caller closes raw. The new connection starts busy: its reader calls
// Waiting before it first blocks.
func (m *Manager) Admit(raw net.Conn) (*Conn, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrClosed
	}
	var victim *Conn
	if len(m.conns) >= m.o.MaxConnections {
		front := m.idle.Front()
		if front == nil {
			m.mu.Unlock()
			m.refused.Add(1)
			m.warn("refusing connection: max-connections reached and every connection is busy",
				"remote", raw.RemoteAddr().String(), "max", m.o.MaxConnections)
			return nil, ErrFull
		}
		victim = front.Value.(*Conn)
		m.forget(victim)
		victim.evicted.Store(true)
	}
	c := &Conn{Conn: raw, m: m, reading: true, busy: 1}
	m.conns[c] = struct{}{}
	m.mu.Unlock()
	m.accepted.Add(1)
	if victim != nil {
		m.evicted.Add(1)
		m.warn("closing the longest-idle connection to make room",
			"remote", victim.RemoteAddr().String(), "idle", m.o.Clock.Now().Sub(victim.idleSince).Round(time.Millisecond),
			"new", raw.RemoteAddr().String(), "max", m.o.MaxConnections)
		victim.Conn.Close() // its reader sees the error and calls Close
	}
	return c, nil
}

// forget removes c from the books; under mu.
func (m *Manager) forget(c *Conn) {
	if c.elem != nil {
		m.idle.Remove(c.elem)
		c.elem = nil
	}
	delete(m.conns, c)
}

// Close closes every connection and refuses new ones. Readers see their
// connection fail and call Conn.Close as usual.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	conns := make([]*Conn, 0, len(m.conns))
	for c := range m.conns {
		conns = append(conns, c)
	}
	m.mu.Unlock()
	for _, c := range conns {
		c.Conn.Close()
	}
}

// warn logs at most one warning a second; the rest are counted anyway.
func (m *Manager) warn(msg string, args ...any) {
	now := m.o.Clock.Now().UnixNano()
	last := m.lastLog.Load()
	if now-last < int64(time.Second) || !m.lastLog.CompareAndSwap(last, now) {
		return
	}
	m.log.Warn(msg, args...)
}

// Conn is one admitted connection. Its methods are safe for concurrent use.
type Conn struct {
	net.Conn
	m *Manager

	// under m.mu:
	reading   bool          // the reader is in a message
	busy      int           // holds, plus one while reading
	elem      *list.Element // in m.idle while busy == 0
	idleSince time.Time
	held      int64 // bytes reserved
	gone      bool

	evicted atomic.Bool
}

// Waiting says the reader is about to block for the next message: the
// connection is idle unless something is held, and the read deadline is set
// to the idle timeout. Only the reader's goroutine calls Waiting and
// Started; saying either twice in a row is the same as once.
func (c *Conn) Waiting() {
	var deadline time.Time
	if t := c.m.o.IdleTimeout; t > 0 {
		deadline = time.Now().Add(t) // a socket deadline is wall-clock time
	}
	_ = c.Conn.SetReadDeadline(deadline)
	c.m.mu.Lock()
	was := c.reading
	c.reading = false
	c.m.mu.Unlock()
	if was {
		c.release()
	}
}

// Started says the reader got the start of a message: the connection is
// busy until the reader is Waiting again.
func (c *Conn) Started() {
	c.m.mu.Lock()
	was := c.reading
	c.reading = true
	c.m.mu.Unlock()
	if !was {
		c.Hold()
	}
}

// Hold keeps the connection busy (not evictable) until Release: work for it
// that goes on beside its reader, such as a call being handled.
func (c *Conn) Hold() {
	m := c.m
	m.mu.Lock()
	defer m.mu.Unlock()
	c.busy++
	if c.elem != nil {
		m.idle.Remove(c.elem)
		c.elem = nil
	}
}

// Release ends a Hold.
func (c *Conn) Release() { c.release() }

func (c *Conn) release() {
	m := c.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if c.busy > 0 {
		c.busy--
	}
	if c.busy == 0 && c.elem == nil && !c.gone {
		if _, ok := m.conns[c]; ok {
			c.idleSince = m.o.Clock.Now()
			c.elem = m.idle.PushBack(c)
		}
	}
}

// Evicted says the manager closed the connection to make room for another:
// its reader's error is then no fault of the peer.
func (c *Conn) Evicted() bool { return c.evicted.Load() }

// Reserve charges n bytes to the shared memory budget; false (nothing
// charged) when that would pass MaxMemory.
func (c *Conn) Reserve(n int) bool {
	m := c.m
	if m.memory.Add(int64(n)) > m.o.MaxMemory {
		m.memory.Add(-int64(n))
		return false
	}
	m.mu.Lock()
	c.held += int64(n)
	m.mu.Unlock()
	return true
}

// Free gives back n reserved bytes.
func (c *Conn) Free(n int) {
	m := c.m
	m.mu.Lock()
	c.held -= int64(n)
	m.mu.Unlock()
	m.memory.Add(-int64(n))
}

// Close closes the connection, takes it off the books and gives back what
// it still had reserved. Safe to call more than once.
func (c *Conn) Close() error {
	m := c.m
	m.mu.Lock()
	held := c.held
	c.held = 0
	c.gone = true
	m.forget(c)
	m.mu.Unlock()
	m.memory.Add(-held)
	return c.Conn.Close()
}
