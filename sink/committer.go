package sink

import (
	"sync"

	"github.com/flumed/flumed/channel"
)

// taken is a batch delivered to the next hop (or sent, and answered OK) and
// not yet committed: its take transaction and how many events it holds.
type taken struct {
	txn channel.Txn
	n   int
}

// commitAll commits batches of ch together (channel.CommitAll): a file
// channel makes all of them durable with one sync.
func commitAll(ch channel.Channel, batches []taken) []error {
	txns := make([]channel.Txn, len(batches))
	for i, b := range batches {
		txns[i] = b.txn
	}
	return channel.CommitAll(ch, txns)
}

// committer commits the batches the runner hands it, in the order handed,
// each time everything handed so far as one group. Its goroutine runs while
// there is work and ends when there is none, so a sink never stopped leaves
// nothing behind. The runner hands at most limit batches ahead of it and
// then waits: the batches handed over hold their events in memory until
// committed.
type committer struct {
	mu      sync.Mutex
	cond    *sync.Cond // signalled when the queue is taken or the goroutine ends
	queue   []taken
	running bool
	limit   int
	commit  func([]taken)
}

func newCommitter(limit int, commit func([]taken)) *committer {
	c := &committer{limit: limit, commit: commit}
	c.cond = sync.NewCond(&c.mu)
	return c
}

func (c *committer) hand(batches []taken) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.running && len(c.queue) >= c.limit {
		c.cond.Wait()
	}
	c.queue = append(c.queue, batches...)
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
		c.cond.Broadcast()
		c.mu.Unlock()
		c.commit(group)
		c.mu.Lock()
	}
	c.running = false
	c.cond.Broadcast()
	c.mu.Unlock()
}

func (c *committer) wait() {
	c.mu.Lock()
	for c.running {
		c.cond.Wait()
	}
	c.mu.Unlock()
}
