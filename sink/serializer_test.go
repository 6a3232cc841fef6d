package sink

// The serializers write what Flume's built-in ones write: TEXT the bodies,
// HEADER_AND_TEXT the headers as Java prints a HashMap, a space and the body
// (byte for byte what Java prints: testdata/header_and_text/expected.txt
// comes from the JDK, see Gen.java there), AVRO_EVENT Avro object container
// files of Flume's Event record that Apache Avro's own reader (Debian's
// python3-avro) reads with Flume's schema as its reader schema, checking
// every block's sync marker. A file sink's settings reach the serializer
// through sink.serializer.*, under Flume's names and builder class names.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/config"
)

func TestHeaderAndTextIsWhatJavaPrints(t *testing.T) {
	raw, err := os.ReadFile("testdata/header_and_text/events.tsv")
	if err != nil {
		t.Fatal(err)
	}
	var events []channel.Event
	for _, line := range strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n") {
		f := strings.Split(line, "\t")
		e := channel.Event{Body: []byte(f[0]), Headers: map[string]string{}}
		for _, kv := range f[1:] {
			k, v, _ := strings.Cut(kv, "=")
			e.Headers[k] = v
		}
		events = append(events, e)
	}
	want, err := os.ReadFile("testdata/header_and_text/expected.txt")
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSerializer(SerializerOptions{Type: "header_and_text", AppendNewline: true})
	if err != nil {
		t.Fatal(err)
	}
	// In two batches: a batch boundary changes nothing.
	got, _ := s.Append(nil, events[:3])
	got, _ = s.Append(got, events[3:])
	if !bytes.Equal(got, want) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		for i := range min(len(gl), len(wl)) {
			if gl[i] != wl[i] {
				t.Fatalf("line %d:\n got %s\nwant %s", i+1, gl[i], wl[i])
			}
		}
		t.Fatalf("got %d bytes, want %d", len(got), len(want))
	}
}

func TestHeaderAndTextWithoutNewlineAndWithNilHeaders(t *testing.T) {
	s, _ := NewSerializer(SerializerOptions{Type: "header_and_text"})
	got, _ := s.Append(nil, []channel.Event{{Body: []byte("a")}, {Body: []byte("b"), Headers: map[string]string{"k": "v"}}})
	if want := "{} a{k=v} b"; string(got) != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestTextWritesTheBodies(t *testing.T) {
	s, _ := NewSerializer(SerializerOptions{AppendNewline: true})
	got, _ := s.Append(nil, []channel.Event{{Body: []byte("a"), Headers: map[string]string{"k": "v"}}, {Body: []byte("b")}})
	if string(got) != "a\nb\n" {
		t.Fatalf("got %q", got)
	}
}

// pythonAvro returns the Python that has Debian's python3-avro (and
// python3-snappy for the snappy codec), installing them when missing. Never
// skipped: without Apache Avro's reader the format is not checked.
func pythonAvro(t *testing.T) string {
	t.Helper()
	const py = "/usr/bin/python3" // Debian's: the packages are installed for it
	probe := func() error { return exec.Command(py, "-c", "import avro.datafile, snappy").Run() }
	if probe() == nil {
		return py
	}
	out, err := exec.Command("apt-get", "-o", "DPkg::Lock::Timeout=600", "install", "-y", "python3-avro", "python3-snappy").CombinedOutput()
	if err != nil {
		t.Fatalf("python3-avro is needed to check Avro files and could not be installed: %v\n%s", err, out)
	}
	if err := probe(); err != nil {
		t.Fatalf("python3-avro installed but not importable: %v", err)
	}
	return py
}

// readWithApacheAvro reads an Avro container file with Apache Avro's Python
// implementation, using Flume's Event schema as the reader schema (a writer
// schema of another name or shape fails resolution), and returns the writer
// schema and the records. Every block's sync marker is checked by the reader.
const readWithApacheAvro = `
import sys, json, base64
import avro.schema, avro.io, avro.datafile
flume = avro.schema.parse('{"type":"record","name":"Event","fields":[{"name":"headers","type":{"type":"map","values":"string"}},{"name":"body","type":"bytes"}]}')
with open(sys.argv[1], "rb") as f:
    r = avro.datafile.DataFileReader(f, avro.io.DatumReader(readers_schema=flume))
    recs = [{"headers": d["headers"], "body": base64.b64encode(d["body"]).decode()} for d in r]
    out = {"schema": json.loads(r.get_meta("avro.schema").decode()), "codec": r.get_meta("avro.codec").decode(), "records": recs}
json.dump(out, sys.stdout)
`

type pyAvroFile struct {
	Schema  map[string]any `json:"schema"`
	Codec   string         `json:"codec"`
	Records []struct {
		Headers map[string]string `json:"headers"`
		Body    string            `json:"body"`
	} `json:"records"`
}

func readAvroFile(t *testing.T, py, path string) (pyAvroFile, error) {
	t.Helper()
	cmd := exec.Command(py, "-c", readWithApacheAvro, path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return pyAvroFile{}, &exec.ExitError{ProcessState: cmd.ProcessState, Stderr: stderr.Bytes()}
	}
	var f pyAvroFile
	if err := json.Unmarshal(out, &f); err != nil {
		t.Fatalf("python output: %v: %s", err, out)
	}
	return f, nil
}

func TestAvroEventFilesAreReadByApacheAvro(t *testing.T) {
	py := pythonAvro(t)
	var events []channel.Event
	for i := range 300 {
		e := channel.Event{Body: bytes.Repeat([]byte{byte(i), 0, 0xff, '\n'}, i%40)}
		if i%3 != 0 {
			e.Headers = map[string]string{"n": strconv.Itoa(i), "host": "web1", "clé": "välue"}
		}
		events = append(events, e)
	}
	for _, codec := range []string{"null", "deflate", "snappy"} {
		t.Run("codec="+codec, func(t *testing.T) {
			s, err := NewSerializer(SerializerOptions{Type: "avro_event", CompressionCodec: codec, SyncIntervalBytes: 500})
			if err != nil {
				t.Fatal(err)
			}
			// Several batches, each ending a block, and blocks cut by the
			// interval inside them: many sync markers to check.
			var file []byte
			for lo := 0; lo < len(events); lo += 70 {
				file, err = s.Append(file, events[lo:min(lo+70, len(events))])
				if err != nil {
					t.Fatal(err)
				}
			}
			path := filepath.Join(t.TempDir(), "events.avro")
			if err := os.WriteFile(path, file, 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := readAvroFile(t, py, path)
			if err != nil {
				t.Fatalf("Apache Avro cannot read the file: %v: %s", err, err.(*exec.ExitError).Stderr)
			}
			if got.Codec != codec || got.Schema["name"] != "Event" || got.Schema["namespace"] != nil || len(got.Records) != len(events) {
				t.Fatalf("codec %q, schema %v, %d records; want %s, Event without namespace, %d",
					got.Codec, got.Schema, len(got.Records), codec, len(events))
			}
			for i, r := range got.Records {
				want := events[i]
				if body, _ := base64.StdEncoding.DecodeString(r.Body); !bytes.Equal(body, want.Body) ||
					!mapsEqual(r.Headers, want.Headers) {
					t.Fatalf("record %d = %+v, want %+v", i, r, want)
				}
			}
			if blocks := bytes.Count(file, file[len(file)-16:]); blocks < 8 {
				t.Fatalf("only %d sync markers: the interval did not cut blocks", blocks)
			}

			// The check has teeth: one flipped byte of the last sync marker
			// and Apache Avro refuses the file.
			file[len(file)-1] ^= 0xff
			if err := os.WriteFile(path, file, 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := readAvroFile(t, py, path); err == nil {
				t.Fatal("a file with a wrong sync marker was read")
			}
		})
	}
}

func TestAvroEventWithAnotherSchemaNameIsRefusedByTheReader(t *testing.T) {
	// The reader schema check has teeth too: the wire event's record name,
	// the likeliest mistake, does not resolve against Flume's Event.
	py := pythonAvro(t)
	path := filepath.Join(t.TempDir(), "wrong.avro")
	script := `
import sys, avro.schema, avro.io, avro.datafile
s = avro.schema.parse('{"type":"record","name":"AvroFlumeEvent","namespace":"org.apache.flume.source.avro","fields":[{"name":"headers","type":{"type":"map","values":"string"}},{"name":"body","type":"bytes"}]}')
w = avro.datafile.DataFileWriter(open(sys.argv[1], "wb"), avro.io.DatumWriter(), s)
w.append({"headers": {}, "body": b"x"})
w.close()
`
	if out, err := exec.Command(py, "-c", script, path).CombinedOutput(); err != nil {
		t.Fatalf("write: %v: %s", err, out)
	}
	if _, err := readAvroFile(t, py, path); err == nil {
		t.Fatal("a file of another record name was read as Flume's Event")
	}
}

func TestSerializerConfigUnderFlumesNames(t *testing.T) {
	f, _ := Lookup("file_roll")
	cases := []struct {
		name  string
		keys  map[string]string
		want  SerializerOptions
		probs []string
	}{
		{"unset is text with newlines", map[string]string{}, SerializerOptions{Type: "text", AppendNewline: true}, nil},
		{"header_and_text in any case", map[string]string{"sink.serializer": "HEADER_AND_TEXT", "sink.serializer.appendNewline": "false"},
			SerializerOptions{Type: "header_and_text"}, nil},
		{"the builder class of header_and_text", map[string]string{"sink.serializer": "org.apache.flume.serialization.HeaderAndBodyTextEventSerializer$Builder"},
			SerializerOptions{Type: "header_and_text", AppendNewline: true}, nil},
		{"the builder class of text", map[string]string{"sink.serializer": "org.apache.flume.serialization.BodyTextEventSerializer$Builder"},
			SerializerOptions{Type: "text", AppendNewline: true}, nil},
		{"avro_event with its keys", map[string]string{"sink.serializer": "avro_event", "sink.serializer.compressionCodec": "snappy", "sink.serializer.syncIntervalBytes": "4096"},
			SerializerOptions{Type: "avro_event", CompressionCodec: "snappy", SyncIntervalBytes: 4096}, nil},
		{"avro_event by its builder class, defaults", map[string]string{"sink.serializer": "org.apache.flume.serialization.FlumeEventAvroEventSerializer$Builder"},
			SerializerOptions{Type: "avro_event", CompressionCodec: "null", SyncIntervalBytes: 2048000}, nil},
		{"a codec flumed lacks", map[string]string{"sink.serializer": "avro_event", "sink.serializer.compressionCodec": "bzip2"},
			SerializerOptions{Type: "avro_event", CompressionCodec: "null", SyncIntervalBytes: 2048000},
			[]string{`a1.sinks.k1.sink.serializer.compressionCodec: must be one of null, deflate, snappy, not "bzip2"`}},
		{"a key of another serializer", map[string]string{"sink.serializer": "avro_event", "sink.serializer.appendNewlin": "false"},
			SerializerOptions{Type: "avro_event", CompressionCodec: "null", SyncIntervalBytes: 2048000},
			[]string{`a1.sinks.k1.sink.serializer.appendNewlin: unknown key`}},
		{"the HDFS sink's Avro serializer", map[string]string{"sink.serializer": "org.apache.flume.sink.hdfs.AvroEventSerializer$Builder"},
			SerializerOptions{Type: "text", AppendNewline: true},
			[]string{`a1.sinks.k1.sink.serializer: serializer type org.apache.flume.sink.hdfs.AvroEventSerializer$Builder is not supported by flumed (supported: avro_event, header_and_text, text)`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			keys := map[string]string{"sink.directory": "/d"}
			for k, v := range tc.keys {
				keys[k] = v
			}
			c := config.FromMap("a1.sinks.k1.", keys)
			s, _ := f("k1", c, nil)
			var probs []string
			for _, p := range c.Problems().Errors() {
				msg := p.String()
				probs = append(probs, msg[strings.Index(msg, " ")+1:])
			}
			if !slices.Equal(probs, tc.probs) {
				t.Fatalf("problems %q, want %q", probs, tc.probs)
			}
			if got := s.(*FileRoll).opts.Serializer; got != tc.want {
				t.Fatalf("serializer %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestFileRollAvroFilesAreWholeAcrossRollsAndFailures(t *testing.T) {
	// Every file file_roll writes with avro_event is a complete container
	// file: a new header and sync marker per file, a block per batch; the
	// file a failed write abandons is cut back to its last whole block, and
	// the batch is written again, after a fresh header, in the next file.
	py := pythonAvro(t)
	fx := newRollFixture(t, FileRollOptions{Serializer: SerializerOptions{Type: "avro_event", CompressionCodec: "deflate"}})
	fx.ch.put(bodyEvents("a", "b")...)
	fx.process(Ready)
	fx.ch.put(bodyEvents("c")...)
	fx.process(Ready)
	fx.s.closeFile() // a roll
	fx.ch.put(bodyEvents("d")...)
	fx.process(Ready)
	fx.faults.FailWrites(10, syscall.ENOSPC)
	fx.ch.put(bodyEvents("e", "f")...)
	if st, err := fx.s.Process(context.Background()); st != Backoff || err == nil {
		t.Fatalf("process = %v, %v; want an error", st, err)
	}
	fx.faults.Heal()
	fx.process(Ready)
	_ = fx.s.Stop()

	want := map[string][]string{fx.series() + "-1": {"a", "b", "c"}, fx.series() + "-2": {"d"}, fx.series() + "-3": {"e", "f"}}
	files := fx.contents()
	if len(files) != len(want) {
		t.Fatalf("files %v, want %v", slices.Sorted(maps.Keys(files)), want)
	}
	for name, bodies := range want {
		got, err := readAvroFile(t, py, filepath.Join(fx.dir, name))
		if err != nil {
			t.Fatalf("%s: Apache Avro cannot read it: %v: %s", name, err, err.(*exec.ExitError).Stderr)
		}
		var gotBodies []string
		for _, r := range got.Records {
			b, _ := base64.StdEncoding.DecodeString(r.Body)
			gotBodies = append(gotBodies, string(b))
		}
		if !slices.Equal(gotBodies, bodies) {
			t.Fatalf("%s holds %q, want %q", name, gotBodies, bodies)
		}
	}
}
