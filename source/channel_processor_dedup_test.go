// PutBatchFrom: the channel processor hands each event's upstream origin and
// number to every channel it puts into, through the interceptors and the
// selector, and each channel leaves out what it committed before by its own
// state: a replicating selector's channels, a multiplexing selector's, and a
// required channel that committed while another refused.
package source

import (
	"slices"
	"strconv"
	"testing"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/source/internal/sourcetest"
)

var upstreamOrigin = channel.OriginID{0xcc, 1}

func numbered(from, to int) ([]uint64, []channel.Event) {
	var seqs []uint64
	var evs []channel.Event
	for i := from; i < to; i++ {
		seqs = append(seqs, uint64(i))
		evs = append(evs, channel.Event{Body: []byte(strconv.Itoa(i))})
	}
	return seqs, evs
}

func memoryChannel(name string) *channel.Memory {
	return channel.NewMemory(name, channel.MemoryOptions{Capacity: 1000, TransactionCapacity: 100})
}

// drainBodies takes everything ch holds.
func drainBodies(t *testing.T, ch channel.Channel) []string {
	t.Helper()
	var out []string
	for {
		tx := ch.Begin()
		got, err := tx.Take(100)
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			return out
		}
		for _, e := range got {
			out = append(out, string(e.Body))
		}
	}
}

func bodiesOf(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, strconv.Itoa(i))
	}
	return out
}

func processorOver(t *testing.T, snippet string, chans ...channel.Channel) *ChannelProcessor {
	t.Helper()
	c := config.FromMap(srcPrefix, sourcetest.Props(t, snippet))
	p, err := NewChannelProcessor(c, chans, sourcetest.DiscardLog())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPutBatchFromEachChannelKeepsItsOwnState(t *testing.T) {
	t.Run("replicating: a channel that has part of a resend gets the rest, the other gets it all", func(t *testing.T) {
		c1, c2 := memoryChannel("c1"), memoryChannel("c2")
		p := processorOver(t, ``, c1, c2)
		seqs, evs := numbered(0, 5)
		tx := c1.Begin()
		if _, err := channel.PutFrom(tx, upstreamOrigin, seqs, evs); err != nil || tx.Commit() != nil {
			t.Fatal(err)
		}
		seqs, evs = numbered(0, 10)
		for range 2 { // the second is a resend of everything
			if err := p.PutBatchFrom(upstreamOrigin, seqs, evs); err != nil {
				t.Fatal(err)
			}
		}
		for _, ch := range []channel.Channel{c1, c2} {
			if got := drainBodies(t, ch); !slices.Equal(got, bodiesOf(0, 10)) {
				t.Errorf("%s holds %q, want 0..9 once each", ch.Name(), got)
			}
		}
	})

	t.Run("a required channel that committed while another refused does not get the resend again", func(t *testing.T) {
		c1, c2 := memoryChannel("c1"), newFakeChannel("c2")
		p := processorOver(t, ``, c1, c2)
		c2.setRefuse(1)
		seqs, evs := numbered(0, 3)
		if err := p.PutBatchFrom(upstreamOrigin, seqs, evs); err == nil {
			t.Fatal("the refusal of c2 was not returned")
		}
		if err := p.PutBatchFrom(upstreamOrigin, seqs, evs); err != nil {
			t.Fatal(err)
		}
		if got := drainBodies(t, c1); !slices.Equal(got, bodiesOf(0, 3)) {
			t.Errorf("c1 holds %q, want 0..2 once each", got)
		}
		if got := c2.bodies(); !slices.Equal(got, bodiesOf(0, 3)) {
			t.Errorf("c2 holds %q", got)
		}
	})

	t.Run("multiplexing after interceptors: each event's number follows it to its channel", func(t *testing.T) {
		c1, c2 := memoryChannel("c1"), memoryChannel("c2")
		p := processorOver(t, `
			interceptors = drop tag
			interceptors.drop.type = regex_filter
			interceptors.drop.regex = ^3$
			interceptors.drop.excludeEvents = true
			interceptors.tag.type = regex_extractor
			interceptors.tag.regex = ^(\d)
			interceptors.tag.serializers = s
			interceptors.tag.serializers.s.name = route
			selector.type = multiplexing
			selector.header = route
			selector.mapping.0 = c1
			selector.mapping.2 = c1
			selector.mapping.4 = c1
			selector.default = c2
		`, c1, c2)
		seqs, evs := numbered(0, 6)
		if err := p.PutBatchFrom(upstreamOrigin, seqs, evs); err != nil {
			t.Fatal(err)
		}
		// Resent in other batches, as after the sender's restart.
		for _, r := range [][2]int{{1, 4}, {4, 6}, {0, 2}} {
			seqs, evs := numbered(r[0], r[1])
			if err := p.PutBatchFrom(upstreamOrigin, seqs, evs); err != nil {
				t.Fatal(err)
			}
		}
		if got := drainBodies(t, c1); !slices.Equal(got, []string{"0", "2", "4"}) {
			t.Errorf("c1 holds %q, want 0 2 4", got)
		}
		if got := drainBodies(t, c2); !slices.Equal(got, []string{"1", "5"}) {
			t.Errorf("c2 holds %q, want 1 5 (3 is dropped)", got)
		}
	})
}
