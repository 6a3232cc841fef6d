// Package syslog turns syslog bytes into Flume events exactly as Apache
// Flume's syslogtcp and syslogudp sources do (Flume's SyslogUtils), and
// frames a TCP stream as RFC 6587 describes (octet counting and newline). It
// is shared by the syslog sources; it knows nothing of channels or sockets,
// and it must never hold more than one message of EventSize bytes per stream,
// whatever a peer sends: an oversized message is cut, never buffered whole.
// (Besides its read buffer and that message, a stream keeps one block of at
// most 16 KiB that the bodies of its events are copied into, and its last
// stamps.)
//
// # Headers (Flume's)
//
//	Facility, Severity    PRI/8 and PRI%8; both "0" when the PRI is bad
//	priority, version     the PRI digits and the RFC 5424 version, when a format matched
//	timestamp             epoch milliseconds, when the stamp parsed
//	host                  the hostname field, unless it is RFC 5424's "-"
//	flume.syslog.status   "Invalid" (no or bad PRI) or "Incomplete" (cut at EventSize)
//
// # Rules kept from Flume, quirks included
//
// A message is "<" 1–3 digits ">" then data. Anything else is Invalid and its
// bytes become the body untouched. The message is matched against RFC 5424
// then RFC 3164 (Flume's two regular expressions, with Java's meaning of \s and
// of "." — a trailing "\r" defeats both, as in Flume); when neither matches,
// the event carries Facility and Severity and the raw message as its body.
//
// Timestamps are parsed the way Flume's SimpleDateFormats parse them:
//   - an RFC 5424 stamp with a fraction keeps at most three digits and reads
//     them as a number of milliseconds (".5" is 5 ms), and its zone is ignored:
//     the stamp is read in Location (Java's default zone); Flume's own test
//     (TestHeader11) pins this;
//   - a stamp without a fraction honours "Z" and ±hh:mm, or is read in
//     Location when it has no zone;
//   - an RFC 3164 stamp gets the current UTC year, is read in Location, and is
//     moved a year back when it lands more than a month in the future, or a
//     year on when it lands more than eleven months in the past;
//   - out-of-range fields roll over (month 13, day 0) as lenient Java does.
//
// keepFields ("none"/"false", "all"/"true", or any of priority, version,
// timestamp, hostname) puts fields back in front of the body as Flume does.
//
// # Framing (TCP)
//
// Newline framing follows Flume's state machine byte for byte: blank lines
// are skipped, a message ends at "\n" or when it reaches EventSize bytes (then
// it is Incomplete and the rest of the line becomes the next, Invalid,
// message), and a "\n" inside a bad PRI does not end the message. Octet
// counting ("LEN SP MSG", RFC 6587 §3.4.1) is flumed's addition, used by
// `logger --octet-count` and rsyslog's TCP_Framing="octet-counted": a frame
// that starts with a non-zero digit, up to nine digits and a space is
// octet-counted; a message longer than EventSize keeps its first EventSize
// bytes (Incomplete) and the rest is skipped without being held. Flume would
// turn such a frame into an Invalid event; with Options.OctetCounting false
// flumed does too.
//
// # Where flumed differs from Flume
//
// Flume keeps the priority and version of the previous message on a
// connection when the next one does not match a format; flumed starts every
// message clean. Flume re-encodes a parsed body through Java strings
// (invalid UTF-8 becomes U+FFFD); flumed keeps the bytes.
package syslog
