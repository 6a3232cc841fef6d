package syslog

import "strings"

// KeepFields says which parsed fields are put back in front of the body
// (Flume's keepFields). The zero value keeps none, Flume's default.
type KeepFields struct {
	All                                    bool
	Priority, Version, Timestamp, Hostname bool
}

// ParseKeepFields reads Flume's keepFields value: "none"/"false" (or empty)
// keep nothing, "all"/"true" keep the whole message as the body, anything else
// keeps each of priority, version, timestamp and hostname it contains. Flume
// looks for the words as substrings, so "hostnames" keeps the hostname too.
func ParseKeepFields(s string) KeepFields {
	s = strings.ToLower(strings.TrimSpace(s))
	switch s {
	case "", "none", "false":
		return KeepFields{}
	case "all", "true":
		return KeepFields{All: true}
	}
	return KeepFields{
		Priority:  strings.Contains(s, "priority"),
		Version:   strings.Contains(s, "version"),
		Timestamp: strings.Contains(s, "timestamp"),
		Hostname:  strings.Contains(s, "hostname"),
	}
}

// prepend puts the kept fields in front of body in Flume's order:
// <priority>version timestamp hostname body. The version is kept only when
// the message had one.
func (k KeepFields) prepend(body, priority, version, stamp, host string) string {
	if k.Hostname {
		body = host + " " + body
	}
	if k.Timestamp {
		body = stamp + " " + body
	}
	if k.Version && version != "" {
		body = version + " " + body
	}
	if k.Priority {
		body = "<" + priority + ">" + body
	}
	return body
}
