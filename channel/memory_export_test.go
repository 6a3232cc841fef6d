package channel

import "github.com/flumed/flumed/internal/clock"

// SetClock makes the keep-alive waits of takes and commits use c, a fake in
// tests, so that a test knows when a call waits and decides when keep-alive
// passes. Call it before the channel is used.
func (m *Memory) SetClock(c clock.Clock) { m.clock = c }
