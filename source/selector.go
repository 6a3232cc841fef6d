package source

import (
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/config"
)

// selector decides which of a source's channels get each event (Flume's
// ChannelSelector, FLUME.md §2.14). Channels are named by their index in the
// source's channel list. A failure to put into a required channel fails the
// source's whole call; failures of optional channels are only logged.
// Implementations are immutable after configuration and safe for concurrent use.
type selector interface {
	required(ev *channel.Event) []int
	optional(ev *channel.Event) []int
}

// SelectorFactory reads a selector's keys (the context of "selector.",
// checked against its type's spec) for a source with the given channels.
// Problems go into c; ok is false when the selector cannot be used.
type SelectorFactory func(c *config.Context, channels []string) (s selector, ok bool)

// replicatingSelector sends every event to every channel: the ones named in
// "optional" as optional, the others as required.
type replicatingSelector struct {
	req, opt []int
}

var replicatingOptional = config.List("optional", " ", "", "channels whose failures are only logged")

var replicatingType = &config.Spec{Type: "replicating", Classes: []string{"org.apache.flume.channel.ReplicatingChannelSelector"},
	Doc: "as in Flume (the default)", Keys: []config.Decl{replicatingOptional}}

func newReplicatingSelector(c *config.Context, channels []string) (selector, bool) {
	opt, ok := channelIndexes(c, replicatingOptional.Name(), replicatingOptional.Get(c), channels)
	s := &replicatingSelector{opt: opt}
	for i := range channels {
		if !slices.Contains(opt, i) {
			s.req = append(s.req, i)
		}
	}
	return s, ok
}

func (s *replicatingSelector) required(*channel.Event) []int { return s.req }
func (s *replicatingSelector) optional(*channel.Event) []int { return s.opt }

// multiplexingSelector routes on the value of one header: mapping.<value>
// names the required channels for a value, default those for a missing, blank
// or unmapped value, and optional.<value> adds optional channels for a value.
type multiplexingSelector struct {
	header  string
	mapping map[string][]int
	def     []int
	optMap  map[string][]int
}

var (
	multiplexingHeader   = config.String("header", "flume.selector.header", "the header whose value chooses the channels")
	multiplexingDefault  = config.List("default", " ", "", "the required channels of an event whose value is missing, blank or unmapped")
	multiplexingMapping  = config.List("mapping.*", " ", "", "the required channels of an event with this header value")
	multiplexingOptional = config.List("optional.*", " ", "", "more channels for this header value, whose failures are only logged")
)

var multiplexingType = &config.Spec{Type: "multiplexing", Classes: []string{"org.apache.flume.channel.MultiplexingChannelSelector"},
	Doc: "as in Flume; without `default` a warning (unmapped events are dropped)", Keys: []config.Decl{multiplexingHeader, multiplexingDefault, multiplexingMapping, multiplexingOptional}}

// DefaultSelectorHeader is the header the multiplexing selector reads when
// selector.header is not set.
var DefaultSelectorHeader = multiplexingHeader.Default()

func newMultiplexingSelector(c *config.Context, channels []string) (selector, bool) {
	s := &multiplexingSelector{
		header:  multiplexingHeader.Get(c),
		mapping: map[string][]int{},
		optMap:  map[string][]int{},
	}
	defNames, set := multiplexingDefault.Lookup(c)
	def, ok := channelIndexes(c, multiplexingDefault.Name(), defNames, channels)
	s.def = def
	if !set {
		c.Warnf("default", "no default channels: events whose %s header is missing or matches no mapping are dropped", s.header)
	}
	for _, m := range multiplexingMapping.Instances(c) {
		value := m.Names[0]
		idx, good := channelIndexes(c, m.Key, m.Value, channels)
		ok = ok && good
		if good && len(idx) == 0 {
			c.Errorf("mapping."+value, "no channel configured for header value %q", value)
			ok = false
		}
		s.mapping[value] = idx
	}
	for _, o := range multiplexingOptional.Instances(c) {
		value := o.Names[0]
		idx, good := channelIndexes(c, o.Key, o.Value, channels)
		ok = ok && good
		// A channel already required for this value (or by default, when the
		// value has no mapping) is not also optional: it would get the events
		// twice.
		req, mapped := s.mapping[value]
		if !mapped {
			req = s.def
		}
		idx = slices.DeleteFunc(idx, func(i int) bool { return slices.Contains(req, i) })
		if len(idx) > 0 {
			s.optMap[value] = idx
		}
	}
	return s, ok
}

func (s *multiplexingSelector) required(ev *channel.Event) []int {
	v, ok := ev.Headers[s.header]
	if !ok || strings.TrimSpace(v) == "" {
		return s.def
	}
	if m, ok := s.mapping[v]; ok {
		return m
	}
	return s.def
}

func (s *multiplexingSelector) optional(ev *channel.Event) []int {
	v, ok := ev.Headers[s.header]
	if !ok {
		return nil
	}
	return s.optMap[v]
}

// loadBalancingSelector (Flume 1.10+) sends each event to one channel, in
// turn (policy round_robin, the default) or at random (policy random); every
// channel is required for the events it gets.
type loadBalancingSelector struct {
	one    [][]int // one[i] is the list holding only channel i
	random bool
	next   atomic.Uint64
}

var loadBalancingPolicy = config.OneOf("policy", "round_robin", []string{"round_robin", "random"}, "how the channel of each event is chosen")

var loadBalancingType = &config.Spec{Type: "load_balancing", Classes: []string{"org.apache.flume.channel.LoadBalancingChannelSelector"},
	Doc: "as in Flume 1.10+", Keys: []config.Decl{loadBalancingPolicy}}

func newLoadBalancingSelector(c *config.Context, channels []string) (selector, bool) {
	s := &loadBalancingSelector{
		random: loadBalancingPolicy.Get(c) == "random",
	}
	for i := range channels {
		s.one = append(s.one, []int{i})
	}
	return s, len(channels) > 0
}

func (s *loadBalancingSelector) required(*channel.Event) []int {
	if s.random {
		return s.one[rand.IntN(len(s.one))]
	}
	return s.one[(s.next.Add(1)-1)%uint64(len(s.one))]
}

func (s *loadBalancingSelector) optional(*channel.Event) []int { return nil }

// channelIndexes returns the indexes in channels of names, the value of key. A name the source is not connected to is
// a problem (Flume: "Selector channel not found"); a name listed twice counts
// once.
func channelIndexes(c *config.Context, key string, names, channels []string) ([]int, bool) {
	ok := true
	var out []int
	for _, name := range names {
		i := slices.Index(channels, name)
		if i < 0 {
			c.Errorf(key, "selector channel not found: %s (the source's channels are %s)", name, strings.Join(channels, " "))
			ok = false
			continue
		}
		if slices.Contains(out, i) {
			c.Warnf(key, "channel %s is listed twice", name)
			continue
		}
		out = append(out, i)
	}
	return out, ok
}
