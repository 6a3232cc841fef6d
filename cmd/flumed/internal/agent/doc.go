// Package agent is flumed's composition root: it turns one agent of a Flume
// configuration into running components through the channel, sink and source
// registries, starts them in Flume's order (channels, sinks and their runners,
// sources), supervises them (a component that fails to start is retried with
// backoff, and its dependents wait), stops them gracefully (sources first,
// then sinks drain the channels until empty or a deadline, then channels
// close), reloads a new configuration changing only what changed
// (reload.go; WatchConfig sees the files change), and serves Flume's
// monitoring JSON over HTTP. It also builds the
// process's slog logger.
//
// Nothing starts unless the whole configuration is valid: Build reports every
// problem at once. This package must only be imported by cmd/flumed, and it
// must never hold events itself: they live in channels.
package agent
