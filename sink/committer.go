package sink

import "sync"

// committer is the engine's commit goroutine: it commits the batches the
// runner hands it, in the order handed, each time everything handed since
// its last commit as one group (one sync on a file channel). It owns the
// batches from hand until their commit returns. Its goroutine runs while
// there is work and ends when there is none, so a sink never stopped leaves
// nothing behind.
//
// It counts what it holds (queued, and the group being committed), so that
// the runner can wait for room in the engine's window before it takes the
// next batch: every batch held is delivered and not yet committed, what a
// crash would deliver again.
type committer struct {
	mu      sync.Mutex
	cond    *sync.Cond // signalled when a group is committed or the goroutine ends
	queue   []*batch   // handed, not yet taken up by a group
	held    int        // batches handed and not yet committed, queue included
	running bool
	blocked int // callers of waitBelow and wait not yet returned (tests look)
	commit  func([]*batch)
}

func newCommitter(commit func([]*batch)) *committer {
	c := &committer{commit: commit}
	c.cond = sync.NewCond(&c.mu)
	return c
}

// hand queues batches for the next group and starts the goroutine if it is
// not running. It never waits.
func (c *committer) hand(bs []*batch) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.queue = append(c.queue, bs...)
	c.held += len(bs)
	if !c.running {
		c.running = true
		go c.run()
	}
}

func (c *committer) run() {
	c.mu.Lock()
	for len(c.queue) > 0 {
		group := c.queue
		c.queue = nil
		c.mu.Unlock()
		c.commit(group)
		c.mu.Lock()
		c.held -= len(group)
		c.cond.Broadcast()
	}
	c.running = false
	c.cond.Broadcast()
	c.mu.Unlock()
}

// waitBelow returns once fewer than n batches are held.
func (c *committer) waitBelow(n int) {
	c.mu.Lock()
	c.blocked++
	for c.held >= n {
		c.cond.Wait()
	}
	c.blocked--
	c.mu.Unlock()
}

// wait returns once every batch handed has been committed and the goroutine
// has ended.
func (c *committer) wait() {
	c.mu.Lock()
	c.blocked++
	for c.running {
		c.cond.Wait()
	}
	c.blocked--
	c.mu.Unlock()
}

// waiting reports whether a caller is blocked in waitBelow or wait with
// batches held: evidence for a test that the runner has stopped for the
// committer.
func (c *committer) waiting() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.blocked > 0 && c.held > 0
}
