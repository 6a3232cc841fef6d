package sink

// recoverLease, our one-call Hadoop IPC client, against the real NameNode:
// a file another client left open (its lease held, its last block under
// construction, unreadable by Hadoop's shell) is closed, and then read whole
// up to what the writer's close would have kept; on a closed file it answers
// true at once; a missing file is the NameNode's FileNotFoundException.

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/flumed/flumed/internal/hdfstest"
)

func TestRecoverLeaseClosesAFileAnotherClientLeftOpen(t *testing.T) {
	in := hdfstest.Get(t)
	c := in.Client(t)
	if err := c.MkdirAll("/lease", 0o755); err != nil {
		t.Fatal(err)
	}
	w, err := c.Create("/lease/open.tmp")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("abandoned\n")); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil { // the bytes reach the DataNode; the file stays open
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := waitLeaseRecovered(ctx, in.Addr, in.User, "/lease/open.tmp"); err != nil {
		t.Fatal(err)
	}
	_ = w.Close() // fails (its lease is gone) and ends the writer's goroutines
	if open := in.Fsck(t, "/lease"); len(open) > 0 {
		t.Fatalf("still open after recoverLease: %v", open)
	}
	if got := string(in.Cat(t, "/lease/open.tmp")); got != "abandoned\n" {
		t.Errorf("after recovery Hadoop reads %q, want the flushed bytes", got)
	}
	closed, err := recoverLease(ctx, in.Addr, in.User, "/lease/open.tmp")
	if err != nil || !closed {
		t.Errorf("recoverLease of a closed file: %v, %v; want true at once", closed, err)
	}
	_, err = recoverLease(ctx, in.Addr, in.User, "/lease/missing")
	if err == nil || !strings.Contains(err.Error(), "FileNotFoundException") {
		t.Errorf("recoverLease of a missing file: %v; want the NameNode's FileNotFoundException", err)
	}
}
