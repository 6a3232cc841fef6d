package agent

import (
	"fmt"
	"sync/atomic"

	"github.com/flumed/flumed/channel"
)

// proxy stands for a channel before it is open, so sources' channel
// processors can be built (and the configuration checked) without opening
// anything. Once the channel opens, the proxy forwards to it; sources start
// only after that, so the not-open path is a safety net.
type proxy struct {
	name   string
	target atomic.Pointer[channel.Channel]
}

var (
	_ channel.Channel        = (*proxy)(nil)
	_ channel.GroupCommitter = (*proxy)(nil)
	_ channel.Originator     = (*proxy)(nil)
)

func newProxy(name string) *proxy { return &proxy{name: name} }

func (p *proxy) set(ch channel.Channel) { p.target.Store(&ch) }

func (p *proxy) Name() string { return p.name }

func (p *proxy) Begin() channel.Txn {
	if t := p.target.Load(); t != nil {
		return (*t).Begin()
	}
	return notOpenTxn{name: p.name}
}

func (p *proxy) Stats() channel.Stats {
	if t := p.target.Load(); t != nil {
		return (*t).Stats()
	}
	return channel.Stats{}
}

// Close does nothing: the agent closes the real channel itself.
func (p *proxy) Close() error { return nil }

// SyncsTakeCommits implements channel.GroupCommitter for the channel behind
// the proxy: a proxy that hid it would make a sink on a file channel pay one
// sync per take commit.
func (p *proxy) SyncsTakeCommits() bool {
	if t := p.target.Load(); t != nil {
		return channel.SyncsTakeCommits(*t)
	}
	return false
}

// CommitAll implements channel.GroupCommitter with the group commit of the
// channel behind the proxy, if it has one. Before it opens there is nothing
// to commit: every transaction of a proxy not yet open fails.
func (p *proxy) CommitAll(txns []channel.Txn) []error {
	if t := p.target.Load(); t != nil {
		return channel.CommitAll(*t, txns)
	}
	errs := make([]error, len(txns))
	for i, x := range txns {
		errs[i] = x.Commit()
	}
	return errs
}

// Origin implements channel.Originator for the channel behind the proxy: a
// proxy that hid it would make its sinks send without identity, and the
// next hop put every resend again. Zero (no identity) when the channel has
// none or is not open.
func (p *proxy) Origin() channel.OriginID {
	if t := p.target.Load(); t != nil {
		if o, ok := (*t).(channel.Originator); ok {
			return o.Origin()
		}
	}
	return channel.OriginID{}
}

// notOpenTxn is the transaction of a channel that is not open yet.
type notOpenTxn struct{ name string }

func (t notOpenTxn) err() error {
	return fmt.Errorf("channel %s is not open: %w", t.name, channel.ErrClosed)
}

func (t notOpenTxn) Put(...channel.Event) error        { return t.err() }
func (t notOpenTxn) Take(int) ([]channel.Event, error) { return nil, t.err() }
func (t notOpenTxn) Commit() error                     { return t.err() }
func (t notOpenTxn) Rollback() error                   { return nil }
