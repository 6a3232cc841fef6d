// Package avrorpc speaks Apache Flume's Avro RPC (AvroSourceProtocol) on the
// wire, byte-compatible with Flume 1.9–1.11's NettyAvroRpcClient and Avro's
// NettyServer: a Server for the avro source and a Client for the avro sink.
// It knows nothing about channels; it has its own Event type with the same
// shape as channel.Event. It must never import channel, and never let a peer
// make it allocate more than the bytes that peer has actually sent, within
// explicit Limits.
//
// # Wire format
//
// Each direction of a connection is a sequence of frame packs (Netty's
// transport, all integers big-endian int32):
//
//	serial  int32   request number; a reply carries its request's serial
//	count   int32   number of buffers, >= 1 (Java never finishes a 0-count frame)
//	count × (length int32, bytes)
//
// The buffers of a frame are concatenated into one Avro message; where they
// are split means nothing (Java splits at 8 KiB, and so do we).
//
// A request is [HandshakeRequest, only until the connection has handshaken]
// + call metadata (map<bytes>, empty) + message name (string) + parameters
// ("append": one AvroFlumeEvent; "appendBatch": an array of them). A reply is
// [HandshakeResponse, a zero-length buffer once handshaken] + metadata +
// error flag (boolean) + Status (enum OK, FAILED, UNKNOWN) or, when the flag
// is set, a system error string. AvroFlumeEvent is {headers: map<string>,
// body: bytes}.
//
// # Handshake
//
// Once per connection. Our protocol text (ProtocolText) is the one Flume
// 1.10/1.11 hash, so ProtocolHash = 8076c537…, the hash those clients send.
// The server answers like Avro's Java Responder: a known client hash (ours,
// and Flume 1.9's 86aadae2…) or a client protocol we can serve gives BOTH when
// the client guessed our hash and CLIENT otherwise; an unknown hash without a
// protocol gives NONE with our protocol and hash, and the client repeats the
// call with its protocol text. A client protocol is accepted when it declares
// append or appendBatch with exactly our schemas (Avro canonical form, so doc
// strings do not matter). The Client sends what Flume 1.10's client sends
// (our hash, no protocol, our hash as its guess), so a Java server answers
// BOTH at once; on NONE it retries with ProtocolText.
//
// # Compression and TLS
//
// compression-type=deflate puts one zlib stream (RFC 1950) under each
// direction for the connection's life, sync-flushed after every write.
// With TLS as well, the layering is Flume 1.10+'s: zlib(TLS(frames)) — the
// zlib codec at the socket end. (Flume 1.9 used TLS(zlib(frames)); the two do
// not interoperate when both are on.)
//
// # Limits
//
// Every length and count from the wire is checked against Limits and against
// the bytes actually present before anything is allocated for it: a frame's
// declared buffer lengths against MaxFrameBytes, with the payload buffer grown
// only as bytes arrive; an array or map block count against the limit and
// against the bytes left (an event takes at least two). Events are decoded in
// two passes, a validating scan that allocates nothing and a build that
// allocates exactly. On the server, the frame bytes held by all connections
// together are capped (MaxMemory), connections are capped (MaxConnections), a
// started frame must complete within ReadTimeout and idle connections may be
// closed (IdleTimeout). Inflated input is bounded the same way, because the
// frame reader pulls from the inflater only what the limits allow. Any
// violation closes only the offending connection.
package avrorpc
