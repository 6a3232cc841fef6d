package kafkaclient

// The Java property mapping: Flume's login lines are read, what would
// weaken the durability rule is refused, and an unknown property is an
// error with a did-you-mean (the spec's check, exercised here through a
// spec holding both groups).

import (
	"strings"
	"testing"

	"github.com/flumed/flumed/internal/config"
)

var spec = &config.Spec{Type: "kafka", Keys: []config.Decl{Producer, Consumer}}

func checked(kv map[string]string) *config.Context {
	c := config.FromMap("a1.channels.c1.", kv)
	c.Check(spec)
	return c
}

func TestParseJAASReadsFlumesLoginLines(t *testing.T) {
	for _, tc := range []struct{ line, user, pass string }{
		{`org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="p";`, "u", "p"},
		{`org.apache.kafka.common.security.scram.ScramLoginModule required password="a\"b" username = "me";`, "me", `a"b`},
	} {
		u, p, err := ParseJAAS(tc.line)
		if err != nil || u != tc.user || p != tc.pass {
			t.Errorf("%s: %q %q %v", tc.line, u, p, err)
		}
	}
	if _, _, err := ParseJAAS(`PlainLoginModule required password="p";`); err == nil {
		t.Error("a line without a username was accepted")
	}
}

func TestWhatWouldLoseOrRepeatEventsIsRefused(t *testing.T) {
	for _, tc := range []struct {
		kv   map[string]string
		want string
	}{
		{map[string]string{"kafka.producer.acks": "0"}, "kafka.producer.acks: 0 is refused"},
		{map[string]string{"kafka.consumer.enable.auto.commit": "true"}, "enable.auto.commit: true is refused"},
		{map[string]string{"kafka.producer.lingerms": "1"}, "did you mean kafka.producer.linger.ms?"},
		{map[string]string{"kafka.consumer.max.poll.record": "1"}, "did you mean kafka.consumer.max.poll.records?"},
	} {
		c := checked(tc.kv)
		ProducerOptions(c)
		ConsumerOptions(c)
		if err := c.Problems().Err(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.kv, err, tc.want)
		}
	}
}

func TestAcksOneWarnsAndTurnsIdempotenceOff(t *testing.T) {
	c := checked(map[string]string{"kafka.producer.acks": "1", "kafka.producer.max.in.flight.requests.per.connection": "1"})
	opts, ok := ProducerOptions(c)
	if !ok || len(opts) == 0 {
		t.Fatalf("ok %v, problems %v", ok, c.Problems().Err())
	}
	if ws := c.Problems().Warnings(); len(ws) != 1 || !strings.Contains(ws[0].String(), "leader") {
		t.Fatalf("warnings %v", ws)
	}
}
