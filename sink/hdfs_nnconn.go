package sink

// A bound on every NameNode call of the Go client. colinmarc/hdfs sets no
// deadline on its NameNode connection: a call whose answer never comes
// blocks the sink's goroutine for good. The fault test caught it under load
// after the HDFS restarts: the NameNode dropped a getFileInfo ("skipped
// Call#4908", its handler found the connection closed) while the client
// went on waiting for the answer; the sink stopped delivering, with 50
// events in its channel, until the agent was killed.
//
// The client's calls are request then response, one at a time on the
// connection (its Execute holds a lock across both) and nothing reads
// between calls, so a deadline set when a request is written bounds the
// wait for its answer, and an idle connection never times out. After a
// failed read the connection's framing is lost (a late answer would be
// taken for the next call's): it is closed, so that the client's next
// write fails and it dials again.

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"time"
)

// errConnDropped: the connection was given up after a failed read.
var errConnDropped = errors.New("namenode connection dropped after a failed or late answer")

// namenodeDialer returns a dial function whose connections bound each call
// (write of the request, then read of its answer) to timeout.
func namenodeDialer(timeout time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &callConn{Conn: c, timeout: timeout}, nil
	}
}

// callConn is a NameNode connection whose every request sets the deadline
// of its answer, and which closes itself once a read fails.
type callConn struct {
	net.Conn
	timeout time.Duration
	dropped atomic.Bool
}

func (c *callConn) Write(p []byte) (int, error) {
	if c.dropped.Load() {
		return 0, errConnDropped
	}
	if err := c.Conn.SetDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

func (c *callConn) Read(p []byte) (int, error) {
	if c.dropped.Load() {
		return 0, errConnDropped
	}
	n, err := c.Conn.Read(p)
	if err != nil {
		c.dropped.Store(true)
		_ = c.Conn.Close()
	}
	return n, err
}
