package agent

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// repeatLimiter is a slog handler that keeps a failure repeating every few
// milliseconds (a collector down, a full channel) from flooding the log:
// the first warning or error with a given message and attributes is logged,
// identical ones within the interval are only counted, and the first one
// after the interval is logged with repeated=<count>. Info and debug lines
// pass untouched: the logger sink's events must never be dropped.
type repeatLimiter struct {
	next  slog.Handler
	every time.Duration
	now   func() time.Time
	state *repeatState // shared by the handlers derived with With
	ctx   string       // the attributes added with With, as a key
}

type repeatState struct {
	mu   sync.Mutex
	seen map[string]*repeatEntry
}

type repeatEntry struct {
	last       time.Time // when a line for this key was last written
	suppressed int
}

// maxRepeatKeys bounds the memory of the limiter; past it, the oldest
// entries are forgotten (their next occurrence is simply logged).
const maxRepeatKeys = 4096

func newRepeatLimiter(next slog.Handler, every time.Duration, now func() time.Time) *repeatLimiter {
	return &repeatLimiter{next: next, every: every, now: now, state: &repeatState{seen: map[string]*repeatEntry{}}}
}

func (h *repeatLimiter) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *repeatLimiter) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.next = h.next.WithAttrs(as)
	c.ctx = h.ctx + attrsKey(as)
	return &c
}

func (h *repeatLimiter) WithGroup(name string) slog.Handler {
	c := *h
	c.next = h.next.WithGroup(name)
	c.ctx = h.ctx + "{" + name + "}"
	return &c
}

func attrsKey(as []slog.Attr) string {
	var b strings.Builder
	for _, a := range as {
		b.WriteString(a.Key)
		b.WriteByte('=')
		b.WriteString(a.Value.String())
		b.WriteByte(' ')
	}
	return b.String()
}

func (h *repeatLimiter) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		return h.next.Handle(ctx, r)
	}
	var as []slog.Attr
	r.Attrs(func(a slog.Attr) bool {
		// Counters and delays change from one occurrence to the next
		// without making it a different failure.
		switch a.Key {
		case "retry_in", "consecutive_failures", "suppressed", "after_failures", "sleep":
		default:
			as = append(as, a)
		}
		return true
	})
	key := r.Level.String() + "|" + r.Message + "|" + h.ctx + attrsKey(as)
	now := h.now()

	st := h.state
	st.mu.Lock()
	e, ok := st.seen[key]
	if ok && now.Sub(e.last) < h.every {
		e.suppressed++
		st.mu.Unlock()
		return nil
	}
	repeated := 0
	if ok {
		repeated = e.suppressed
	} else {
		if len(st.seen) >= maxRepeatKeys {
			st.forgetOldest()
		}
		e = &repeatEntry{}
		st.seen[key] = e
	}
	e.last, e.suppressed = now, 0
	st.mu.Unlock()

	if repeated > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int("repeated", repeated))
	}
	return h.next.Handle(ctx, r)
}

func (st *repeatState) forgetOldest() {
	var oldest string
	var t time.Time
	for k, e := range st.seen {
		if oldest == "" || e.last.Before(t) {
			oldest, t = k, e.last
		}
	}
	delete(st.seen, oldest)
}
