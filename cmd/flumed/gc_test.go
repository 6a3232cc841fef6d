package main

// The garbage-collection headroom follows the channels: the large one when
// any channel is a file channel, by alias or by Flume's class name, the lean
// one otherwise.

import (
	"strings"
	"testing"

	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/internal/gcpolicy"
)

func TestGCHeadroomIsLargeOnlyWithAFileChannel(t *testing.T) {
	for _, c := range []struct {
		name  string
		types []string
		want  int64
	}{
		{"a memory channel alone gets the lean headroom", []string{"memory"}, gcpolicy.LeanHeadroom},
		{"a kafka channel gets the lean headroom", []string{"kafka"}, gcpolicy.LeanHeadroom},
		{"a file channel gets the large headroom", []string{"file"}, gcpolicy.Headroom},
		{"a file channel beside a memory channel gets the large headroom", []string{"memory", "FILE"}, gcpolicy.Headroom},
		{"Flume's class name counts as the file channel", []string{"org.apache.flume.channel.file.FileChannel"}, gcpolicy.Headroom},
	} {
		t.Run(c.name, func(t *testing.T) {
			var lines, names []string
			for i, typ := range c.types {
				name := "c" + string(rune('1'+i))
				names = append(names, name)
				lines = append(lines, "a1.channels."+name+".type = "+typ)
			}
			lines = append(lines, "a1.channels = "+strings.Join(names, " "))
			f := config.Build(config.Options{}, config.Source{Name: "agent.properties", Data: []byte(strings.Join(lines, "\n"))})
			if got := gcHeadroom(f.Agent("a1")); got != c.want {
				t.Fatalf("headroom %d MiB, want %d MiB", got>>20, c.want>>20)
			}
		})
	}
}
