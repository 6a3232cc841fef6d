package sink

import (
	"bytes"
	"fmt"

	"github.com/hamba/avro/v2"
	"github.com/hamba/avro/v2/ocf"

	"github.com/flumed/flumed/channel"
)

// flumeEventSchema is the record FlumeEventAvroEventSerializer writes: the
// same fields as the wire's AvroFlumeEvent, under the name "Event" with no
// namespace. A reader resolving by name (Avro's own) needs exactly this.
var flumeEventSchema = avro.MustParse(`{"type": "record", "name": "Event", "fields": [
	{"name": "headers", "type": {"type": "map", "values": "string"}},
	{"name": "body", "type": "bytes"}]}`)

// avroFileEvent is one record of flumeEventSchema.
type avroFileEvent struct {
	Headers map[string]string `avro:"headers"`
	Body    []byte            `avro:"body"`
}

// avroEventSerializer is Flume's AVRO_EVENT: an Avro object container file
// (header with the schema, the codec and a random sync marker; then blocks,
// each ended by the marker). A block is written when syncIntervalBytes of
// records are buffered, as Avro's DataFileWriter does, and at the end of
// every batch, as Flume's flush does, so a synced batch is readable.
type avroEventSerializer struct {
	out *bytes.Buffer // what the encoder wrote and Append has not handed out
	enc *ocf.Encoder
}

func newAvroEventSerializer(o SerializerOptions) (*avroEventSerializer, error) {
	codec := ocf.CodecName(o.CompressionCodec)
	if codec == "" {
		codec = ocf.Null
	}
	interval := o.SyncIntervalBytes
	if interval < 1 {
		interval = serializerSyncInterval.Default()
	}
	s := &avroEventSerializer{out: new(bytes.Buffer)}
	// WithBlockLength(0): blocks end by size and batch, never by a count.
	enc, err := ocf.NewEncoderWithSchema(flumeEventSchema, s.out, ocf.WithCodec(codec),
		ocf.WithBlockLength(0), ocf.WithBlockSize(interval))
	if err != nil {
		return nil, fmt.Errorf("avro_event serializer: %w", err)
	}
	s.enc = enc
	return s, nil
}

func (s *avroEventSerializer) Append(buf []byte, events []channel.Event) ([]byte, error) {
	for _, e := range events {
		h := e.Headers
		if h == nil {
			h = map[string]string{} // Avro's map: never null
		}
		if err := s.enc.Encode(avroFileEvent{Headers: h, Body: e.Body}); err != nil {
			return buf, fmt.Errorf("avro_event: encode: %w", err)
		}
	}
	if err := s.enc.Flush(); err != nil {
		return buf, fmt.Errorf("avro_event: flush: %w", err)
	}
	buf = append(buf, s.out.Bytes()...)
	s.out.Reset()
	return buf, nil
}
