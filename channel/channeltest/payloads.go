package channeltest

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/flumed/flumed/channel"
)

// payload is one event a channel must hand back byte for byte.
type payload struct {
	name  string
	event channel.Event
}

// payloads are the events sources really produce and the edge cases a codec
// gets wrong. A nil and an empty headers map are equivalent, and so are a nil
// and an empty body: a channel need not tell them apart.
func payloadCases() []payload {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	mib := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	mib[0], mib[len(mib)-1] = 0, 0xff
	many := make(map[string]string, 100)
	for i := range 100 {
		many[fmt.Sprintf("h%03d", i)] = strings.Repeat("v", i)
	}
	return []payload{
		{"nil headers and a text body", channel.Event{Body: []byte("hello world\r")}},
		{"an empty headers map", channel.Event{Headers: map[string]string{}, Body: []byte("x")}},
		{"an empty header value", channel.Event{Headers: map[string]string{"empty": "", "k": "v"}, Body: []byte("x")}},
		{"an empty header key", channel.Event{Headers: map[string]string{"": "no key"}, Body: []byte("x")}},
		{"an empty body", channel.Event{Headers: map[string]string{"k": "v"}, Body: []byte{}}},
		{"a nil body and nil headers", channel.Event{}},
		{"a binary body with all 256 byte values", channel.Event{Body: all}},
		{"a body of 4 KiB of zero bytes", channel.Event{Body: make([]byte, 4096)}},
		{"a 1 MiB body", channel.Event{Headers: map[string]string{"size": "1MiB"}, Body: mib}},
		{"unicode header keys and values", channel.Event{
			Headers: map[string]string{"clé": "valeur", "键": "值", "emoji 🚀": "ünïcödé ✓", "rtl": "שלום"},
			Body:    []byte("ünïcödé body ✓"),
		}},
		{"header values with separators, newlines and NUL", channel.Event{
			Headers: map[string]string{"a=b": "c=d, e:f", "nl": "line1\nline2\r\n", "nul": "x\x00y", "sp": "  padded  "},
			Body:    []byte("{ headers:{} body: }"),
		}},
		{"a hundred headers", channel.Event{Headers: many, Body: []byte("many")}},
	}
}

func (s suite) payloads(t *testing.T) {
	cases := payloadCases()
	t.Run("events survive byte for byte one per transaction", func(t *testing.T) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				ch := s.open(t, small)
				put(t, ch, c.event)
				got := take(t, ch, 1)
				if len(got) != 1 {
					t.Fatalf("took %d events, want 1", len(got))
				}
				wantSame(t, c.name, got[0], c.event)
			})
		}
	})

	t.Run("events survive byte for byte together in one transaction", func(t *testing.T) {
		ch := s.open(t, Options{Capacity: 100, TransactionCapacity: len(cases)})
		events := make([]channel.Event, len(cases))
		for i, c := range cases {
			events[i] = c.event
		}
		put(t, ch, events...)
		got := take(t, ch, len(cases))
		if len(got) != len(cases) {
			t.Fatalf("took %d events, want %d", len(got), len(cases))
		}
		for i, c := range cases {
			wantSame(t, c.name, got[i], c.event)
		}
	})

	t.Run("events survive byte for byte through a rolled back take", func(t *testing.T) {
		ch := s.open(t, Options{Capacity: 100, TransactionCapacity: len(cases)})
		for _, c := range cases {
			put(t, ch, c.event)
		}
		tx := ch.Begin()
		if _, err := tx.Take(len(cases)); err != nil {
			t.Fatalf("take: %v", err)
		}
		if err := tx.Rollback(); err != nil {
			t.Fatalf("rollback: %v", err)
		}
		got := take(t, ch, len(cases))
		if len(got) != len(cases) {
			t.Fatalf("took %d events, want %d", len(got), len(cases))
		}
		for i, c := range cases {
			wantSame(t, c.name, got[i], c.event)
		}
	})
}

// wantSame fails the test unless got is want byte for byte (see sameEvent).
func wantSame(t *testing.T, what string, got, want channel.Event) {
	t.Helper()
	if sameEvent(got, want) {
		return
	}
	if !bytes.Equal(got.Body, want.Body) {
		t.Errorf("%s: body differs: got %d bytes %s, want %d bytes %s",
			what, len(got.Body), preview(got.Body), len(want.Body), preview(want.Body))
	}
	if len(got.Headers) != len(want.Headers) {
		t.Errorf("%s: got %d headers, want %d", what, len(got.Headers), len(want.Headers))
	}
	for k, v := range want.Headers {
		if g, ok := got.Headers[k]; !ok || g != v {
			t.Errorf("%s: header %q: got %q (present %v), want %q", what, k, g, ok, v)
		}
	}
}

func preview(b []byte) string {
	if len(b) > 32 {
		return fmt.Sprintf("%q…", b[:32])
	}
	return fmt.Sprintf("%q", b)
}
