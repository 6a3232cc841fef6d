package interceptor

// The Joda pattern subset of the millis serializer: each supported letter,
// quoted literals, adjacent numeric fields, zones, and the inputs Joda's
// parseMillis rejects (trailing text, impossible dates).

import (
	"testing"
	"time"
)

func TestJodaPatterns(t *testing.T) {
	utc := time.UTC
	cases := []struct {
		pattern, in string
		want        time.Time
	}{
		{"yyyy-MM-dd HH:mm:ss", "2024-02-29 23:59:58", time.Date(2024, 2, 29, 23, 59, 58, 0, utc)},
		{"yyyy-MM-dd'T'HH:mm:ss.SSSZ", "2023-11-14T22:13:20.123+0100", time.Date(2023, 11, 14, 21, 13, 20, 123e6, utc)},
		{"yyyy-MM-dd HH:mm:ss ZZ", "2023-11-14 22:13:20 -08:00", time.Date(2023, 11, 15, 6, 13, 20, 0, utc)},
		{"yyyy-MM-dd HH:mm:ssZ", "2023-11-14 22:13:20Z", time.Date(2023, 11, 14, 22, 13, 20, 0, utc)},
		{"yyyyMMddHHmmss", "20231114221320", time.Date(2023, 11, 14, 22, 13, 20, 0, utc)},
		{"dd/MMM/yyyy:HH:mm:ss Z", "14/Nov/2023:22:13:20 +0000", time.Date(2023, 11, 14, 22, 13, 20, 0, utc)},
		{"MMMM d, yyyy", "november 4, 2023", time.Date(2023, 11, 4, 0, 0, 0, 0, utc)},
		{"d.M.yy H:m", "4.7.23 9:5", time.Date(2023, 7, 4, 9, 5, 0, 0, utc)},
		{"HH:mm", "12:30", time.Date(1970, 1, 1, 12, 30, 0, 0, utc)},
		{"yyyy-MM-dd HH:mm:ss.S", "2023-01-02 03:04:05.5", time.Date(2023, 1, 2, 3, 4, 5, 500e6, utc)},
		{"'at' yyyy 'o''clock'", "at 2023 o'clock", time.Date(2023, 1, 1, 0, 0, 0, 0, utc)},
		{"yyyy-MM-dd ZZZ", "2023-06-01 Europe/Paris", time.Date(2023, 5, 31, 22, 0, 0, 0, utc)},
	}
	for _, tc := range cases {
		t.Run(tc.pattern, func(t *testing.T) {
			l, err := compileJoda(tc.pattern)
			if err != nil {
				t.Fatal(err)
			}
			got, err := l.parse(tc.in, utc)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(tc.want) {
				t.Errorf("parse(%q) = %v, want %v", tc.in, got.UTC(), tc.want)
			}
		})
	}
}

func TestJodaRejects(t *testing.T) {
	cases := []struct{ pattern, in string }{
		{"yyyy-MM-dd", "2023-02-30"},
		{"yyyy-MM-dd", "2023-13-01"},
		{"yyyy-MM-dd", "2023-01-01 trailing"},
		{"HH:mm", "24:00"},
		{"yyyy-MM-dd", "2023/01/01"},
		{"HH:mm Z", "10:00 +2500"},
	}
	for _, tc := range cases {
		l, err := compileJoda(tc.pattern)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := l.parse(tc.in, time.UTC); err == nil {
			t.Errorf("%q with %q parsed as %v", tc.in, tc.pattern, got)
		}
	}
	for _, p := range []string{"EEE yyyy", "hh:mm a", "yyyy 'open"} {
		if _, err := compileJoda(p); err == nil {
			t.Errorf("pattern %q was accepted", p)
		}
	}
}
