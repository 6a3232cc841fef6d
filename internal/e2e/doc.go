// Package e2e runs real flumed processes on 127.0.0.1 and checks what they
// deliver: the seed's failover exercise (an agent, a failover sink group, two
// collectors, SIGKILLs and restarts at each step) and a crash chain (sender →
// middle agent → collector with the middle agent SIGKILLed while events flow).
//
// The package is a harness plus its tests. The harness builds ./cmd/flumed
// once (Build), starts processes with their output captured to files and to
// a line hook (Proc), waits for readiness (a listening port, /metrics),
// SIGKILLs and restarts them, reads Flume's /metrics JSON and times a
// counter's increases (CounterWatch), appends numbered lines to a log file at
// a steady rate (Writer), and records where every event landed and when
// (Ledger, RollReader, LoggerHook). The demo (cmd/flumed-demo) and the
// pipeline benchmarks (bench) use the same harness.
//
// Two environment variables help outside CI: FLUMED_BIN=path uses that
// binary instead of building one (e.g. built from a clean copy of a commit),
// and FLUMED_E2E_KEEP=dir copies a failed test's directory (configurations,
// logs with the goroutine dumps of processes still running, channels,
// outputs) there.
//
// Events are numbered bodies ("ev-000042"): a collector's file_roll output
// (or the logger sink's ASCII column, since such bodies are shorter than
// 16 bytes) tells exactly which events arrived, how many times, and — from
// when the harness first saw them — how long failover and failback took.
//
// It must never be imported by flumed itself (cmd/flumed and its agent,
// sources, sinks, channels): it is test and tooling code, and it never
// reaches into a process except through its command line, its signals, its
// files and its HTTP monitoring.
package e2e
