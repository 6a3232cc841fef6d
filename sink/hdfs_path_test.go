package sink

// hdfs.path and hdfs.filePrefix take Flume's escapes (BucketPath): %{header}
// (empty when missing), %[localhost|IP|FQDN], and the time escapes of Unix
// date with Java's formats, of the timestamp header (or the sink's clock),
// in hdfs.timeZone, rounded down by hdfs.round/roundValue/roundUnit. %% is a
// percent sign and an unknown letter nothing.

import (
	"strings"
	"testing"
	"time"
)

func TestPathEscapesAreFlumes(t *testing.T) {
	hosts := hostNames{host: "web1", ip: "10.0.0.7", fqdn: "web1.example.com"}
	ts := time.Date(2026, 3, 5, 14, 7, 9, 123e6, time.UTC).UnixMilli()
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	headers := map[string]string{"host": "app3", "topic": "a.b-c"}
	cases := []struct {
		name, in, want string
		loc            *time.Location
		round          pathRounding
	}{
		{"date and time", "/logs/%Y/%m/%d/%H%M%S", "/logs/2026/03/05/140709", nil, pathRounding{}},
		{"names and unpadded fields", "%y %b %B %a %A %e %n %k %l %I %p %j", "26 Mar March Thu Thursday 5 3 14 2 02 PM 064", nil, pathRounding{}},
		{"Java's %c and %D", "%c|%D", "Thu Mar 5 14:07:09 2026|03/05/26", nil, pathRounding{}},
		{"seconds and the header as written", "%s %t", "1772719629 1772719629123", nil, pathRounding{}},
		{"headers, a missing one empty", "/%{host}/%{topic}/%{missing}x", "/app3/a.b-c/x", nil, pathRounding{}},
		{"static escapes in any case", "%[localhost] %[IP] %[fqdn]", "web1 10.0.0.7 web1.example.com", nil, pathRounding{}},
		{"a percent sign and an unknown letter", "100%% %x!", "100% !", nil, pathRounding{}},
		{"the time zone", "%H %z", "09 -0500", ny, pathRounding{}},
		{"rounded down to 10 minutes", "%H%M%S %s", "140000 1772719200", nil, pathRounding{Unit: time.Minute, Value: 10}},
		{"rounded down to 6 hours", "%H%M%S", "120000", nil, pathRounding{Unit: time.Hour, Value: 6}},
		{"rounded down to 5 seconds", "%H%M%S", "140705", nil, pathRounding{Unit: time.Second, Value: 5}},
		{"no escapes", "/plain/dir", "/plain/dir", nil, pathRounding{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tmpl, err := parsePathTemplate(tc.in, hosts)
			if err != nil {
				t.Fatal(err)
			}
			loc := tc.loc
			if loc == nil {
				loc = time.UTC
			}
			var b strings.Builder
			tmpl.expand(&b, headers, ts, "1772719629123", loc, tc.round)
			if b.String() != tc.want {
				t.Errorf("%q = %q, want %q", tc.in, b.String(), tc.want)
			}
		})
	}
}

func TestAnUnknownStaticEscapeIsAConfigurationError(t *testing.T) {
	if _, err := parsePathTemplate("/x/%[hostname]", hostNames{}); err == nil || !strings.Contains(err.Error(), "%[hostname]") {
		t.Fatalf("err = %v, want one naming %%[hostname]", err)
	}
}

func TestOnlyTimeEscapesNeedATimestamp(t *testing.T) {
	for in, want := range map[string]bool{"/a/%{h}/%[IP]": false, "/a/%Y": true, "/a/%%Y": false, "/a/%s": true} {
		tmpl, err := parsePathTemplate(in, hostNames{})
		if err != nil {
			t.Fatal(err)
		}
		if tmpl.needsTime != want {
			t.Errorf("%q needs a timestamp: %v, want %v", in, tmpl.needsTime, want)
		}
	}
}

func TestFileSystemRoots(t *testing.T) {
	cases := []struct{ in, scheme, authority, path string }{
		{"hdfs://nn:8020/logs/%Y", "hdfs", "nn:8020", "/logs/%Y"},
		{"hdfs:///logs/%{h}", "hdfs", "", "/logs/%{h}"},
		{"/logs", "hdfs", "", "/logs"},
		{"file:///var/x/%[IP]", "file", "", "/var/x/%[IP]"},
	}
	for _, tc := range cases {
		s, a, p, err := fsRoot(tc.in)
		if err != nil || s != tc.scheme || a != tc.authority || p != tc.path {
			t.Errorf("fsRoot(%q) = %q %q %q %v, want %q %q %q", tc.in, s, a, p, err, tc.scheme, tc.authority, tc.path)
		}
	}
	if _, _, _, err := fsRoot("s3a://bucket/x"); err == nil || !strings.Contains(err.Error(), "hdfs:// and file://") {
		t.Errorf("s3a: err = %v", err)
	}
}
