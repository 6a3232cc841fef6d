package syslog

// Flume's two formats, matched by hand. Flume matches each message against
// two regular expressions (SyslogUtils' RFC 5424 and RFC 3164 patterns,
// written out in fuzz_test.go, where FuzzMatchersAreFlumesPatterns holds
// these functions to them). Go's regexp package ran them at a third of the
// syslog TCP source's time; these functions take the same decisions in one
// pass. Each returns what regexp's FindStringSubmatchIndex would for the
// pattern up to the body: groups 1 priority, 2 version, 3 stamp, 4 host,
// an index of -1 for a group that did not take part. Both patterns are
// anchored and their only choices are the optional version digit and the
// optional separator after it (tried in the order the leftmost-first
// semantics of both engines try them); every other repetition is followed
// by a character it cannot take, so its longest run is the only one that
// can match.
//
// The patterns:
//
//	rfc5424 ^<(\d{1,3})>(\d?)S?(?:(STAMP)|-)S(?:(H)|-)S
//	rfc3164 ^<(\d{1,3})>(\d)?S?([A-Z][a-z][a-z]S{1,2}\d{1,2}S\d\d:\d\d:\d\d)S(H)S
//
// where S is Java's \s ([ \t\n\x0B\f\r]), H is \w[\w.@-]*, and STAMP is
// \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:[+-]\d\d:\d\d|Z)?.

// match is a submatch index array: [2i], [2i+1] bound group i.
type match [10]int

// text is what the matchers read: the parser reads a message's bytes as
// they came, the tests hold the matchers to the patterns on strings.
type text interface{ ~string | ~[]byte }

// isSpace is Java's \s.
func isSpace(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\x0B', '\f', '\r':
		return true
	}
	return false
}

// isHost is the class after a host's first character: \w, '.', '@', '-'.
func isHost(c byte) bool {
	return isWord(c) || c == '.' || c == '@' || c == '-'
}

// isWord is \w.
func isWord(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || isDigit(c) || c == '_'
}

// digitsAt says whether s[i:i+n] are all digits.
func digitsAt[T text](s T, i, n int) bool {
	if i+n > len(s) {
		return false
	}
	for j := i; j < i+n; j++ {
		if !isDigit(s[j]) {
			return false
		}
	}
	return true
}

// spaceAt says whether s[i] is a \s.
func spaceAt[T text](s T, i int) bool { return i < len(s) && isSpace(s[i]) }

// pri matches <(\d{1,3})> at the start of s and returns the end of the
// digits (the priority is s[1:end]), or -1.
func pri[T text](s T) int {
	if len(s) < 3 || s[0] != '<' {
		return -1
	}
	i := 1
	for i < len(s) && i < 4 && isDigit(s[i]) {
		i++
	}
	if i == 1 || i >= len(s) || s[i] != '>' {
		return -1
	}
	return i
}

// versionChoices are the starts of what follows "(\d?)S?" or "(\d)?S?" at
// i, in the order a backtracking engine tries them, with the end of the
// version digit (i when it is not taken): digit and separator, digit alone,
// separator alone, neither.
func versionChoices[T text](s T, i int) (starts, vends [4]int, n int) {
	add := func(start, vend int) {
		starts[n], vends[n] = start, vend
		n++
	}
	if i < len(s) && isDigit(s[i]) {
		if spaceAt(s, i+1) {
			add(i+2, i+1)
		}
		add(i+1, i+1)
	}
	if spaceAt(s, i) {
		add(i+1, i)
	}
	add(i, i)
	return starts, vends, n
}

// host matches H at i and returns its end, or -1.
func host[T text](s T, i int) int {
	if i >= len(s) || !isWord(s[i]) {
		return -1
	}
	i++
	for i < len(s) && isHost(s[i]) {
		i++
	}
	return i
}

// stamp5424 matches STAMP at i and returns its end, or -1.
func stamp5424[T text](s T, i int) int {
	if !digitsAt(s, i, 4) || !at(s, i+4, '-') || !digitsAt(s, i+5, 2) || !at(s, i+7, '-') ||
		!digitsAt(s, i+8, 2) || !at(s, i+10, 'T') || !digitsAt(s, i+11, 2) || !at(s, i+13, ':') ||
		!digitsAt(s, i+14, 2) || !at(s, i+16, ':') || !digitsAt(s, i+17, 2) {
		return -1
	}
	i += 19
	if at(s, i, '.') && i+1 < len(s) && isDigit(s[i+1]) {
		j := i + 1
		for j < len(s) && j < i+7 && isDigit(s[j]) {
			j++
		}
		i = j
	}
	switch {
	case at(s, i, 'Z'):
		i++
	case (at(s, i, '+') || at(s, i, '-')) && digitsAt(s, i+1, 2) && at(s, i+3, ':') && digitsAt(s, i+4, 2):
		i += 6
	}
	return i
}

func at[T text](s T, i int, c byte) bool { return i < len(s) && s[i] == c }

// match5424 is rfc5424's FindStringSubmatchIndex.
func match5424[T text](s T) (m match, ok bool) {
	p := pri(s)
	if p < 0 {
		return m, false
	}
	starts, vends, n := versionChoices(s, p+1)
	for c := 0; c < n; c++ {
		m = match{0, -1, 1, p, p + 1, vends[c], -1, -1, -1, -1}
		i := starts[c]
		// The stamp, or failing that "-", then a separator: a stamp that
		// matched but is not followed by one fails, and "-" cannot start
		// where a stamp's digit is.
		if e := stamp5424(s, i); e >= 0 && spaceAt(s, e) {
			m[6], m[7] = i, e
			i = e + 1
		} else if at(s, i, '-') && spaceAt(s, i+1) {
			i += 2
		} else {
			continue
		}
		// The host, or failing that "-", then a separator.
		if e := host(s, i); e >= 0 && spaceAt(s, e) {
			m[8], m[9] = i, e
			i = e + 1
		} else if at(s, i, '-') && spaceAt(s, i+1) {
			i += 2
		} else {
			continue
		}
		m[1] = i
		return m, true
	}
	return m, false
}

// match3164 is rfc3164's FindStringSubmatchIndex.
func match3164[T text](s T) (m match, ok bool) {
	p := pri(s)
	if p < 0 {
		return m, false
	}
	starts, vends, n := versionChoices(s, p+1)
	for c := 0; c < n; c++ {
		m = match{0, -1, 1, p, -1, -1, -1, -1, -1, -1}
		if vends[c] > p+1 {
			m[4], m[5] = p+1, vends[c]
		}
		i := starts[c]
		e := stamp3164(s, i)
		if e < 0 || !spaceAt(s, e) {
			continue
		}
		m[6], m[7] = i, e
		h := host(s, e+1)
		if h < 0 || !spaceAt(s, h) {
			continue
		}
		m[8], m[9] = e+1, h
		m[1] = h + 1
		return m, true
	}
	return m, false
}

// stamp3164 matches [A-Z][a-z][a-z]S{1,2}\d{1,2}S\d\d:\d\d:\d\d at i and
// returns its end, or -1.
func stamp3164[T text](s T, i int) int {
	if i+3 > len(s) || s[i] < 'A' || s[i] > 'Z' || s[i+1] < 'a' || s[i+1] > 'z' || s[i+2] < 'a' || s[i+2] > 'z' {
		return -1
	}
	i += 3
	if !spaceAt(s, i) {
		return -1
	}
	i++
	if spaceAt(s, i) {
		i++
	}
	if !digitsAt(s, i, 1) {
		return -1
	}
	i++
	if digitsAt(s, i, 1) {
		i++
	}
	if !spaceAt(s, i) || !digitsAt(s, i+1, 2) || !at(s, i+3, ':') || !digitsAt(s, i+4, 2) ||
		!at(s, i+6, ':') || !digitsAt(s, i+7, 2) {
		return -1
	}
	return i + 9
}
