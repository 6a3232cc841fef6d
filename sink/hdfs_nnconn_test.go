package sink

// A NameNode that takes a call and never answers fails that call after
// hdfs.callTimeout; the calls after it fail too (at once, during the Go
// client's backoff, then on a new connection): the sink's goroutine is
// never stuck on it (hdfs_nnconn.go).

import (
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flumed/flumed/internal/await"
)

func TestANameNodeThatNeverAnswersFailsTheCallAfterTheCallTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() { _, _ = io.Copy(io.Discard, c); c.Close() }() // reads every call, answers none
		}
	}()
	fs, err := openFS("hdfs", ln.Addr().String(), 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	for i := range 2 {
		done := make(chan error, 1)
		t0 := time.Now()
		go func() { _, _, err := fs.Stat("/x"); done <- err }()
		if err := await.Recv(t, "the call to a silent NameNode to return", done); err == nil {
			t.Fatalf("call %d: no error from a NameNode that never answers", i)
		}
		t.Logf("call %d failed after %v", i, time.Since(t0).Round(time.Millisecond))
	}
	// The timed-out connection is dropped (a late answer would be taken for
	// the next call's): once the client's own backoff (5 s) has passed, a
	// call dials the NameNode again.
	await.True(t, "a call on a new connection", func() bool {
		_, _, _ = fs.Stat("/x")
		return conns.Load() >= 2
	})
}
