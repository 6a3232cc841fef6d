// Package charset names the character sets flumed's sources accept for
// Flume's charset keys. flumed keeps bytes as they are, so it accepts only
// the sets whose decoding is the identity on bytes (UTF-8 and the ASCII
// supersets it treats alike); it must never pretend to transcode.
package charset

import "strings"

// Supported reports whether a charset name is one flumed handles by keeping
// bytes as they are: UTF-8 and the single-byte ASCII supersets whose decode and
// re-encode are the identity. Anything else (UTF-16, Shift_JIS, ...) would need
// real transcoding, which flumed does not do.
func Supported(name string) bool {
	switch strings.ToLower(strings.ReplaceAll(name, "_", "-")) {
	case "utf-8", "utf8", "us-ascii", "ascii", "iso-8859-1", "iso8859-1", "latin1":
		return true
	}
	return false
}

// IsLatin1 reports whether a supported charset name is ISO-8859-1.
func IsLatin1(name string) bool {
	switch strings.ToLower(strings.ReplaceAll(name, "_", "-")) {
	case "iso-8859-1", "iso8859-1", "latin1":
		return true
	}
	return false
}
