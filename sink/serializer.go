package sink

import (
	"fmt"
	"strings"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/config"
)

// SerializerOptions choose and configure the event serializer of a sink that
// writes files (file_roll's sink.serializer; HDFS's serializer, later).
// Zero values are the keys' defaults, so the struct stays comparable and a
// sink's options can embed it.
type SerializerOptions struct {
	Type              string // text, header_and_text or avro_event ("" is text)
	AppendNewline     bool   // text, header_and_text: end every event with "\n"
	SyncIntervalBytes int    // avro_event: an Avro block is written past this many bytes
	CompressionCodec  string // avro_event: null, deflate or snappy ("" is null)
}

// Serializer turns events into the bytes of one file. A file sink makes a new
// one (NewSerializer) for every file it creates, because some formats start
// a file with a header (Avro's, with the file's own sync marker).
type Serializer interface {
	// Append appends to buf the bytes of events, whole: nothing of a batch is
	// held back, so a batch written and fsynced is complete and readable in
	// the file (Flume's file sinks flush the serializer once per batch too).
	// The first call of a file's serializer also writes the file's header.
	// One goroutine at a time.
	Append(buf []byte, events []channel.Event) ([]byte, error)
}

// The serializers' keys, relative to the serializer's prefix
// ("sink.serializer." for file_roll). Flume's names and defaults
// (BodyTextEventSerializer, HeaderAndBodyTextEventSerializer,
// AvroEventSerializerConfigurationConstants).
var (
	serializerAppendNewline = config.Bool("appendNewline", true, "end every event with a newline")
	serializerSyncInterval  = config.Int("syncIntervalBytes", 2048000,
		"write an Avro block (and sync marker) once this many bytes are buffered; every batch also ends one")
	serializerCodec = config.OneOf("compressionCodec", "null", []string{"null", "deflate", "snappy"},
		"the Avro blocks' compression")
)

var (
	textSerializerType = &config.Spec{
		Type:    "text",
		Classes: []string{"org.apache.flume.serialization.BodyTextEventSerializer$Builder"},
		Doc:     "each event's body as it is",
		Keys:    []config.Decl{serializerAppendNewline},
	}
	headerAndTextSerializerType = &config.Spec{
		Type:    "header_and_text",
		Classes: []string{"org.apache.flume.serialization.HeaderAndBodyTextEventSerializer$Builder"},
		Doc:     "the headers as Java prints a map (`{k1=v1, k2=v2}`), a space, then the body",
		Keys:    []config.Decl{serializerAppendNewline},
	}
	avroEventSerializerType = &config.Spec{
		Type:    "avro_event",
		Classes: []string{"org.apache.flume.serialization.FlumeEventAvroEventSerializer$Builder"},
		Doc:     "Avro object container files of Flume's Event record (headers, body)",
		Keys:    []config.Decl{serializerSyncInterval, serializerCodec},
	}
)

// SerializerFactory reads a serializer's keys (already checked against its spec).
type SerializerFactory func(c *config.Context) SerializerOptions

// serializers is every serializer type flumed has, under Flume's aliases and
// builder class names, and the one Flume type it has not.
var serializers = config.NewRegistry("serializer", []config.Entry[SerializerFactory]{
	{Spec: textSerializerType, New: func(c *config.Context) SerializerOptions {
		return SerializerOptions{Type: "text", AppendNewline: serializerAppendNewline.Get(c)}
	}},
	{Spec: headerAndTextSerializerType, New: func(c *config.Context) SerializerOptions {
		return SerializerOptions{Type: "header_and_text", AppendNewline: serializerAppendNewline.Get(c)}
	}},
	{Spec: avroEventSerializerType, New: func(c *config.Context) SerializerOptions {
		o := SerializerOptions{Type: "avro_event", SyncIntervalBytes: serializerSyncInterval.Get(c),
			CompressionCodec: serializerCodec.Get(c)}
		if o.SyncIntervalBytes < 1 {
			c.Errorf(serializerSyncInterval.Name(), "must be at least 1, not %d", o.SyncIntervalBytes)
		}
		return o
	}},
}, []config.Unsupported{
	// The HDFS sink's own Avro serializer (records of a schema named in a header).
	{Classes: []string{"org.apache.flume.sink.hdfs.AvroEventSerializer$Builder"}},
})

// SerializerRegistry is every serializer type: the README's table is rendered
// from it.
func SerializerRegistry() *config.Registry[SerializerFactory] { return serializers }

// readSerializer resolves the serializer named by key and reads its keys
// under key + "." (which the sink's spec declares with config.Nested).
// Problems are recorded in c: an unknown type at key itself, bad keys at
// their own names. An unset key is TEXT, as in Flume.
func readSerializer(c *config.Context, key config.Key[string]) SerializerOptions {
	typ := key.Get(c)
	if strings.TrimSpace(typ) == "" {
		typ = "text"
	}
	sub := c.Sub(key.Name() + ".")
	e, found := serializers.Lookup(typ)
	if !found {
		c.Errorf(key.Name(), "%s", serializers.Unknown(typ))
		return SerializerOptions{Type: "text", AppendNewline: true}
	}
	sub.Check(e.Spec)
	return e.New(sub)
}

// NewSerializer makes the serializer of one file.
func NewSerializer(o SerializerOptions) (Serializer, error) {
	switch strings.ToLower(o.Type) {
	case "", "text":
		return textSerializer{newline: o.AppendNewline}, nil
	case "header_and_text":
		return headerAndTextSerializer{newline: o.AppendNewline}, nil
	case "avro_event":
		return newAvroEventSerializer(o)
	}
	return nil, fmt.Errorf("unknown serializer %q", o.Type)
}

// textSerializer is Flume's TEXT: the body, then "\n" when asked.
type textSerializer struct{ newline bool }

func (s textSerializer) Append(buf []byte, events []channel.Event) ([]byte, error) {
	for _, e := range events {
		buf = append(buf, e.Body...)
		if s.newline {
			buf = append(buf, '\n')
		}
	}
	return buf, nil
}
