package config

import (
	"bytes"
	"unicode/utf16"
	"unicode/utf8"
)

// Parse reads text in the syntax of java.util.Properties.load and returns
// every key/value pair in file order, duplicates included, each with the line
// its logical line starts on.
//
// The rules are Java's: "key=value", "key:value" or "key value" (the first
// unescaped '=', ':' or blank ends the key; blanks and at most one '=' or ':'
// around it are skipped); lines whose first non-blank character is '#' or '!'
// are comments; a line ending in an odd number of backslashes continues on the
// next line, whose leading blanks are dropped; "\uXXXX", "\t", "\n", "\r",
// "\f" are escapes and any other "\x" stands for x (so keys may contain
// escaped separators). Values keep their trailing blanks: Flume's trimming
// happens when files are merged, not here.
//
// Where Java throws on a malformed "\uXXXX" and stops, Parse reports the line
// as a problem, skips it and goes on, so one pass finds every such line.
func Parse(file string, data []byte) ([]Prop, []Problem) {
	var props []Prop
	var problems []Problem
	// A UTF-8 byte order mark (editors on Windows write one) is not part of
	// the first key. Java's Properties would read it into the key, where
	// Flume then fails to find it; nobody means that.
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	for _, l := range logicalLines(data) {
		pos := Pos{File: file, Line: l.line}
		rawKey, rawValue := splitKeyValue(l.text)
		key, okK := unescape(rawKey)
		value, okV := unescape(rawValue)
		if !okK || !okV {
			problems = append(problems, Problem{Pos: pos, Msg: `malformed \uXXXX escape; line ignored`})
			continue
		}
		props = append(props, Prop{Key: key, Value: value, Pos: pos})
	}
	return props, problems
}

// logicalLine is one key/value line after comments, blank lines and
// continuations are handled; line is where it starts (1-based).
type logicalLine struct {
	text []byte
	line int
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\f' }

// logicalLines is java.util.Properties.LineReader, over bytes: the syntax
// characters are all ASCII, so UTF-8 sequences pass through untouched.
func logicalLines(data []byte) []logicalLine {
	var (
		out  []logicalLine
		buf  []byte
		line = 1 // line of the byte being looked at
		// The reader's state, named as in Java.
		skipWhiteSpace     = true
		isCommentLine      = false
		isNewLine          = true
		appendedLineBegin  = false
		precedingBackslash = false
		skipLF             = false
		start              = 0
	)
	for i := 0; i < len(data); i++ {
		c := data[i]
		cur := line
		if c == '\r' || (c == '\n' && (i == 0 || data[i-1] != '\r')) {
			line++
		}
		if skipLF {
			skipLF = false
			if c == '\n' {
				continue
			}
		}
		if skipWhiteSpace {
			if isBlank(c) {
				continue
			}
			// Blank lines are skipped, but an empty continuation line ends
			// the logical line.
			if !appendedLineBegin && (c == '\r' || c == '\n') {
				continue
			}
			skipWhiteSpace = false
			appendedLineBegin = false
		}
		if isNewLine {
			isNewLine = false
			start = cur
			if c == '#' || c == '!' {
				isCommentLine = true
				continue
			}
		}
		if c != '\n' && c != '\r' {
			if isCommentLine {
				continue
			}
			buf = append(buf, c)
			if c == '\\' {
				precedingBackslash = !precedingBackslash
			} else {
				precedingBackslash = false
			}
			continue
		}
		// End of a natural line.
		if isCommentLine || len(buf) == 0 {
			isCommentLine = false
			isNewLine = true
			skipWhiteSpace = true
			precedingBackslash = false
			buf = buf[:0]
			continue
		}
		if precedingBackslash {
			buf = buf[:len(buf)-1]
			skipWhiteSpace = true
			appendedLineBegin = true
			precedingBackslash = false
			if c == '\r' {
				skipLF = true
			}
			continue
		}
		out = append(out, logicalLine{text: append([]byte(nil), buf...), line: start})
		buf = buf[:0]
		isNewLine = true
		skipWhiteSpace = true
	}
	if len(buf) > 0 && !isCommentLine {
		if precedingBackslash {
			buf = buf[:len(buf)-1]
		}
		out = append(out, logicalLine{text: buf, line: start})
	}
	return out
}

// splitKeyValue splits a logical line as Properties.load does, returning the
// still-escaped key and value.
func splitKeyValue(l []byte) (key, value []byte) {
	keyLen, valueStart := 0, len(l)
	hasSep, precedingBackslash := false, false
	for keyLen < len(l) {
		c := l[keyLen]
		if (c == '=' || c == ':') && !precedingBackslash {
			valueStart, hasSep = keyLen+1, true
			break
		}
		if isBlank(c) && !precedingBackslash {
			valueStart = keyLen + 1
			break
		}
		if c == '\\' {
			precedingBackslash = !precedingBackslash
		} else {
			precedingBackslash = false
		}
		keyLen++
	}
	for valueStart < len(l) {
		c := l[valueStart]
		if !isBlank(c) {
			if !hasSep && (c == '=' || c == ':') {
				hasSep = true
			} else {
				break
			}
		}
		valueStart++
	}
	return l[:keyLen], l[valueStart:]
}

// unescape is Properties.loadConvert. "\uXXXX" escapes are UTF-16 code
// units, so a surrogate pair written as two escapes becomes one character.
// It reports false for a malformed "\uXXXX".
func unescape(in []byte) (string, bool) {
	if !containsBackslash(in) {
		return string(in), true
	}
	out := make([]byte, 0, len(in))
	var units []uint16 // pending \u code units, decoded together for surrogates
	flush := func() {
		if len(units) > 0 {
			for _, r := range utf16.Decode(units) {
				out = utf8.AppendRune(out, r)
			}
			units = units[:0]
		}
	}
	for i := 0; i < len(in); i++ {
		c := in[i]
		if c != '\\' {
			flush()
			out = append(out, c)
			continue
		}
		i++
		if i == len(in) { // a lone trailing backslash stands for nothing
			break
		}
		c = in[i]
		if c == 'u' {
			if i+4 >= len(in) {
				return "", false
			}
			var v uint16
			for j := 1; j <= 4; j++ {
				d, ok := hexDigit(in[i+j])
				if !ok {
					return "", false
				}
				v = v<<4 | uint16(d)
			}
			i += 4
			units = append(units, v)
			continue
		}
		flush()
		switch c {
		case 't':
			c = '\t'
		case 'r':
			c = '\r'
		case 'n':
			c = '\n'
		case 'f':
			c = '\f'
		}
		out = append(out, c)
	}
	flush()
	return string(out), true
}

func containsBackslash(b []byte) bool {
	for _, c := range b {
		if c == '\\' {
			return true
		}
	}
	return false
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
