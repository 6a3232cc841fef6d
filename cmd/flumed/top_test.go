package main

import (
	"strings"
	"testing"
	"time"
)

func TestTopShowsTheOldestQueuedEventsAgeAtAGlance(t *testing.T) {
	for millis, want := range map[string]string{
		"0":        "0s",
		"1234":     "1.2s",
		"59999":    "59.9s",
		"252345":   "4m12s",
		"11100000": "3h5m",
		"":         "-", // the Kafka channel reports none
		"x":        "-",
	} {
		if got := oldest(millis); got != want {
			t.Errorf("oldest(%q) = %q, want %q", millis, got, want)
		}
	}
	cur := &snapshot{at: time.Now(), m: map[string]map[string]string{"CHANNEL.c1": {
		"ChannelSize": "7", "ChannelCapacity": "100", "ChannelFillPercentage": "7.0", "OldestEventAgeMillis": "252345",
	}}}
	view := renderTop("http://x", nil, cur)
	for _, want := range []string{"oldest", "4m12s"} {
		if !strings.Contains(view, want) {
			t.Errorf("no %q in the view:\n%s", want, view)
		}
	}
}
