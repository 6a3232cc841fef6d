// Package counter holds Flume's monitoring counters for sources and sinks, with
// Flume's exact attribute names, safe for concurrent use.
//
// It only counts; exporting (Flume JSON, Prometheus) belongs to the agent (cmd/flumed/internal/agent).
package counter

import (
	"strconv"
	"sync/atomic"
	"time"
)

// Lifecycle holds the StartTime/StopTime attributes every Flume counter group has.
type Lifecycle struct {
	start, stop atomic.Int64 // epoch ms, 0 when unset
}

// Started records the start time.
func (l *Lifecycle) Started() { l.start.Store(time.Now().UnixMilli()); l.stop.Store(0) }

// Stopped records the stop time.
func (l *Lifecycle) Stopped() { l.stop.Store(time.Now().UnixMilli()) }

func (l *Lifecycle) fill(m map[string]string, typ string) {
	m["Type"] = typ
	m["StartTime"] = strconv.FormatInt(l.start.Load(), 10)
	m["StopTime"] = strconv.FormatInt(l.stop.Load(), 10)
}

// Source is Flume's SourceCounter.
type Source struct {
	Lifecycle
	EventReceived         atomic.Int64
	EventAccepted         atomic.Int64
	AppendReceived        atomic.Int64
	AppendAccepted        atomic.Int64
	AppendBatchReceived   atomic.Int64
	AppendBatchAccepted   atomic.Int64
	OpenConnections       atomic.Int64
	EventReadFail         atomic.Int64
	ChannelWriteFail      atomic.Int64
	GenericProcessingFail atomic.Int64
}

// FlumeMetrics renders the counters as Flume's JSON attributes (all strings).
func (s *Source) FlumeMetrics() map[string]string {
	m := map[string]string{}
	s.fill(m, "SOURCE")
	i := func(v *atomic.Int64) string { return strconv.FormatInt(v.Load(), 10) }
	m["EventReceivedCount"] = i(&s.EventReceived)
	m["EventAcceptedCount"] = i(&s.EventAccepted)
	m["AppendReceivedCount"] = i(&s.AppendReceived)
	m["AppendAcceptedCount"] = i(&s.AppendAccepted)
	m["AppendBatchReceivedCount"] = i(&s.AppendBatchReceived)
	m["AppendBatchAcceptedCount"] = i(&s.AppendBatchAccepted)
	m["OpenConnectionCount"] = i(&s.OpenConnections)
	m["EventReadFail"] = i(&s.EventReadFail)
	m["ChannelWriteFail"] = i(&s.ChannelWriteFail)
	m["GenericProcessingFail"] = i(&s.GenericProcessingFail)
	return m
}

// Sink is Flume's SinkCounter.
type Sink struct {
	Lifecycle
	ConnectionCreated atomic.Int64
	ConnectionClosed  atomic.Int64
	ConnectionFailed  atomic.Int64
	BatchEmpty        atomic.Int64
	BatchUnderflow    atomic.Int64
	BatchComplete     atomic.Int64
	EventDrainAttempt atomic.Int64
	EventDrainSuccess atomic.Int64
	EventWriteFail    atomic.Int64
	ChannelReadFail   atomic.Int64
}

// Batch counts one process() call that took n events out of a batch of size.
func (s *Sink) Batch(n, size int) {
	switch {
	case n == 0:
		s.BatchEmpty.Add(1)
	case n < size:
		s.BatchUnderflow.Add(1)
	default:
		s.BatchComplete.Add(1)
	}
}

// FlumeMetrics renders the counters as Flume's JSON attributes (all strings).
func (s *Sink) FlumeMetrics() map[string]string {
	m := map[string]string{}
	s.fill(m, "SINK")
	i := func(v *atomic.Int64) string { return strconv.FormatInt(v.Load(), 10) }
	m["ConnectionCreatedCount"] = i(&s.ConnectionCreated)
	m["ConnectionClosedCount"] = i(&s.ConnectionClosed)
	m["ConnectionFailedCount"] = i(&s.ConnectionFailed)
	m["BatchEmptyCount"] = i(&s.BatchEmpty)
	m["BatchUnderflowCount"] = i(&s.BatchUnderflow)
	m["BatchCompleteCount"] = i(&s.BatchComplete)
	m["EventDrainAttemptCount"] = i(&s.EventDrainAttempt)
	m["EventDrainSuccessCount"] = i(&s.EventDrainSuccess)
	m["EventWriteFail"] = i(&s.EventWriteFail)
	m["ChannelReadFail"] = i(&s.ChannelReadFail)
	return m
}

// Monitored is implemented by components that appear in Flume's metrics JSON.
// Components without counters in Flume (netcat source, logger and null sinks)
// do not implement it.
type Monitored interface {
	FlumeMetrics() map[string]string
}
