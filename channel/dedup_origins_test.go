// The receiver's origin table: each origin keeps its own ranges; an origin
// silent past Silence is forgotten; past MaxOrigins the one heard from
// longest ago is dropped and logged; the table survives a restart (encoded
// and decoded) with its ranges and last-seen times; and a model test with
// several origins, out-of-order commits, restarts and the bounds shows the
// table never claims an event that was not committed.
package channel_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/flumed/flumed/channel"
)

var t0 = time.UnixMilli(1_700_000_000_000)

func origin(b byte) channel.OriginID { return channel.OriginID{15: b} }

func reopen(t rapid.TB, o *channel.Origins, opts channel.OriginsOptions) *channel.Origins {
	t.Helper()
	b := o.AppendBinary(nil)
	got, n, err := channel.DecodeOrigins(append(b, 0xCC), opts)
	if err != nil {
		t.Fatalf("decode %x: %v", b, err)
	}
	if n != len(b) {
		t.Fatalf("decode read %d bytes of %d", n, len(b))
	}
	return got
}

func TestOrigins(t *testing.T) {
	t.Run("origins keep their own ranges", func(t *testing.T) {
		o := channel.NewOrigins(channel.OriginsOptions{})
		o.Commit(origin(1), 1, 101, t0)
		o.Commit(origin(2), 101, 201, t0)
		if !o.Committed(origin(1), 50) || o.Committed(origin(2), 50) || o.Committed(origin(1), 150) || !o.Committed(origin(2), 150) {
			t.Fatalf("ranges leak between origins: %+v", o.Info())
		}
		if o.Committed(origin(3), 1) {
			t.Fatal("an unknown origin has committed events")
		}
	})
	t.Run("an origin silent past Silence is forgotten, one heard from within it is kept", func(t *testing.T) {
		o := channel.NewOrigins(channel.OriginsOptions{})
		o.Commit(origin(1), 1, 2, t0)
		o.Commit(origin(2), 1, 2, t0.Add(time.Hour))
		if n := o.Expire(t0.Add(channel.DefaultOriginSilence)); n != 0 {
			t.Fatalf("forgot %d origins at exactly Silence", n)
		}
		if n := o.Expire(t0.Add(channel.DefaultOriginSilence + time.Minute)); n != 1 {
			t.Fatalf("forgot %d origins, want 1", n)
		}
		if o.Committed(origin(1), 1) || !o.Committed(origin(2), 1) {
			t.Fatalf("wrong origin forgotten: %+v", o.Info())
		}
	})
	t.Run("past MaxOrigins the origin heard from longest ago is dropped and logged", func(t *testing.T) {
		var logs bytes.Buffer
		o := channel.NewOrigins(channel.OriginsOptions{MaxOrigins: 2, Log: slog.New(slog.NewTextHandler(&logs, nil))})
		o.Commit(origin(1), 1, 2, t0)
		o.Commit(origin(2), 1, 2, t0.Add(time.Second))
		o.Commit(origin(1), 2, 3, t0.Add(2*time.Second)) // heard from again: now the newer
		o.Commit(origin(3), 1, 2, t0.Add(3*time.Second))
		if o.Len() != 2 || o.Committed(origin(2), 1) || !o.Committed(origin(1), 2) || !o.Committed(origin(3), 1) {
			t.Fatalf("want origins 1 and 3 kept: %+v", o.Info())
		}
		if !strings.Contains(logs.String(), "too many origins") || !strings.Contains(logs.String(), origin(2).String()) {
			t.Fatalf("the drop is not logged with its origin: %q", logs.String())
		}
	})
	t.Run("a restart keeps ranges and last-seen times", func(t *testing.T) {
		o := channel.NewOrigins(channel.OriginsOptions{})
		o.Commit(origin(1), 1, 101, t0)
		o.Commit(origin(1), 201, 301, t0.Add(time.Second))
		o.Commit(origin(9), 5, 6, t0.Add(2*time.Second))
		got := reopen(t, o, channel.OriginsOptions{})
		want := o.Info()
		info := got.Info()
		if len(info) != len(want) {
			t.Fatalf("%+v, want %+v", info, want)
		}
		for i := range want {
			if info[i].ID != want[i].ID || info[i].Ranges != want[i].Ranges || !info[i].LastSeen.Equal(want[i].LastSeen) {
				t.Fatalf("%+v, want %+v", info[i], want[i])
			}
		}
	})
	t.Run("a restart with a lower MaxOrigins keeps the origins heard from last", func(t *testing.T) {
		o := channel.NewOrigins(channel.OriginsOptions{})
		for i := byte(1); i <= 5; i++ {
			o.Commit(origin(i), 1, 2, t0.Add(time.Duration(i)*time.Second))
		}
		got := reopen(t, o, channel.OriginsOptions{MaxOrigins: 2})
		if got.Len() != 2 || !got.Committed(origin(4), 1) || !got.Committed(origin(5), 1) {
			t.Fatalf("want origins 4 and 5: %+v", got.Info())
		}
	})
	t.Run("an identity survives its text form", func(t *testing.T) {
		id := channel.NewOriginID()
		if id == (channel.OriginID{}) || id == channel.NewOriginID() {
			t.Fatalf("identities are not random: %s", id)
		}
		back, err := channel.ParseOriginID(id.String())
		if err != nil || back != id {
			t.Fatalf("ParseOriginID(%s) = %s, %v", id, back, err)
		}
		if _, err := channel.ParseOriginID("abc"); err == nil {
			t.Fatal("a short id parses")
		}
	})
}

func TestDecodeOriginsRejectsWhatWasNeverWritten(t *testing.T) {
	o := channel.NewOrigins(channel.OriginsOptions{})
	o.Commit(origin(1), 1, 101, t0)
	good := o.AppendBinary(nil)
	twice := append([]byte{2}, good[1:]...)
	twice = append(twice, good[1:]...)
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"nothing", nil},
		{"a truncated id", good[:8]},
		{"a truncated range set", good[:len(good)-1]},
		{"an origin twice", twice},
		{"a count past the bytes", append([]byte{9}, good[1:]...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, _, err := channel.DecodeOrigins(tc.b, channel.OriginsOptions{}); err == nil {
				t.Fatalf("decoded %x as %+v", tc.b, got.Info())
			}
		})
	}
}

// TestOriginsModel: several origins, each a pipelined sender whose batches
// commit in any order, some resent, with restarts, expiry and a small
// MaxOrigins: the table never claims an event of an origin that was not
// committed for it.
func TestOriginsModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		opts := channel.OriginsOptions{
			MaxOrigins: rapid.IntRange(1, 4).Draw(t, "maxOrigins"),
			MaxRanges:  rapid.IntRange(1, 6).Draw(t, "maxRanges"),
			Silence:    time.Duration(rapid.IntRange(1, 100).Draw(t, "silence")) * time.Second,
		}
		o := channel.NewOrigins(opts)
		model := map[channel.OriginID]map[uint64]bool{}
		now := t0
		t.Repeat(map[string]func(*rapid.T){
			"commit": func(t *rapid.T) {
				id := origin(rapid.ByteRange(1, 6).Draw(t, "origin"))
				lo := rapid.Uint64Range(0, 100).Draw(t, "lo")
				hi := lo + rapid.Uint64Range(0, 20).Draw(t, "len")
				o.Commit(id, lo, hi, now)
				if model[id] == nil {
					model[id] = map[uint64]bool{}
				}
				for seq := lo; seq < hi; seq++ {
					model[id][seq] = true
				}
			},
			"time passes": func(t *rapid.T) {
				now = now.Add(time.Duration(rapid.IntRange(0, 60).Draw(t, "seconds")) * time.Second)
				o.Expire(now)
			},
			"restart": func(t *rapid.T) {
				o = reopen(t, o, opts)
			},
			"": func(t *rapid.T) {
				if o.Len() > opts.MaxOrigins {
					t.Fatalf("%d origins, bound %d", o.Len(), opts.MaxOrigins)
				}
				for b := byte(1); b <= 6; b++ {
					for seq := uint64(0); seq < 125; seq++ {
						if o.Committed(origin(b), seq) && !model[origin(b)][seq] {
							t.Fatalf("%s: claims %d, never committed", origin(b), seq)
						}
					}
				}
			},
		})
	})
}
