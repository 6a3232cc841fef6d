package sink

// A minimal Hadoop IPC client for one call, ClientProtocol.recoverLease,
// which github.com/colinmarc/hdfs/v2 does not expose (its RPC code is
// internal). After a crash mid-batch, a file the sink was appending to stays
// open under the dead process's lease until the NameNode's hard limit
// (1 h); recoverLease has the NameNode close it now.
//
// The wire format (Hadoop's RPC v9, simple authentication), from Hadoop's
// RpcHeader.proto, IpcConnectionContext.proto, ProtobufRpcEngine.proto and
// ClientNamenodeProtocol.proto:
//
//	connection header: "hrpc" 0x09 (version) 0x00 (service class) 0x00 (no SASL)
//	then frames:       uint32 big-endian length, then protobuf messages, each
//	                   preceded by its uvarint length
//	context frame:     RpcRequestHeaderProto{callId -3}, IpcConnectionContextProto
//	call frame:        RpcRequestHeaderProto{callId n}, RequestHeaderProto,
//	                   RecoverLeaseRequestProto
//	reply frame:       RpcResponseHeaderProto, then (on success) the response
//
// One connection per call: recovery runs only when a sink starts.

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

const clientProtocol = "org.apache.hadoop.hdfs.protocol.ClientProtocol"

// recoverLease asks the NameNode at addr to recover path's lease, as user.
// It returns true once the file is closed (at once if it already was), false
// while the NameNode is still recovering its last block: call it again.
func recoverLease(ctx context.Context, addr, user, path string) (closed bool, err error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false, fmt.Errorf("recover lease of %s: %w", path, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	clientID := make([]byte, 16)
	_, _ = rand.Read(clientID)

	w := bufio.NewWriter(conn)
	w.WriteString("hrpc")
	w.Write([]byte{9, 0, 0}) // version 9, service class 0, auth: none (simple)

	// IpcConnectionContextProto{userInfo(2){effectiveUser(1)}, protocol(3)}
	var user1, ctxMsg []byte
	user1 = protowire.AppendTag(user1, 1, protowire.BytesType)
	user1 = protowire.AppendString(user1, user)
	ctxMsg = protowire.AppendTag(ctxMsg, 2, protowire.BytesType)
	ctxMsg = protowire.AppendBytes(ctxMsg, user1)
	ctxMsg = protowire.AppendTag(ctxMsg, 3, protowire.BytesType)
	ctxMsg = protowire.AppendString(ctxMsg, clientProtocol)
	writeFrame(w, rpcHeader(-3, -1, clientID), ctxMsg)

	// RequestHeaderProto{methodName(1), declaringClassProtocolName(2), clientProtocolVersion(3)}
	var req, arg []byte
	req = protowire.AppendTag(req, 1, protowire.BytesType)
	req = protowire.AppendString(req, "recoverLease")
	req = protowire.AppendTag(req, 2, protowire.BytesType)
	req = protowire.AppendString(req, clientProtocol)
	req = protowire.AppendTag(req, 3, protowire.VarintType)
	req = protowire.AppendVarint(req, 1)
	// RecoverLeaseRequestProto{src(1), clientName(2)}
	arg = protowire.AppendTag(arg, 1, protowire.BytesType)
	arg = protowire.AppendString(arg, path)
	arg = protowire.AppendTag(arg, 2, protowire.BytesType)
	arg = protowire.AppendString(arg, fmt.Sprintf("flumed-recover-%d", os.Getpid()))
	writeFrame(w, rpcHeader(0, 0, clientID), req, arg)
	if err := w.Flush(); err != nil {
		return false, fmt.Errorf("recover lease of %s: send: %w", path, err)
	}

	var n uint32
	if err := binary.Read(conn, binary.BigEndian, &n); err != nil {
		return false, fmt.Errorf("recover lease of %s: read reply: %w", path, err)
	}
	if n > 1<<20 {
		return false, fmt.Errorf("recover lease of %s: a reply of %d bytes", path, n)
	}
	frame := make([]byte, n)
	if _, err := io.ReadFull(conn, frame); err != nil {
		return false, fmt.Errorf("recover lease of %s: read reply: %w", path, err)
	}
	hdr, rest, err := delimited(frame)
	if err != nil {
		return false, fmt.Errorf("recover lease of %s: reply header: %w", path, err)
	}
	if err := rpcStatus(hdr); err != nil {
		return false, fmt.Errorf("recover lease of %s: %w", path, err)
	}
	body, _, err := delimited(rest)
	if err != nil {
		return false, fmt.Errorf("recover lease of %s: reply: %w", path, err)
	}
	// RecoverLeaseResponseProto{result(1) bool}
	for len(body) > 0 {
		num, typ, l := protowire.ConsumeTag(body)
		if l < 0 {
			return false, fmt.Errorf("recover lease of %s: reply: %w", path, protowire.ParseError(l))
		}
		body = body[l:]
		if num == 1 && typ == protowire.VarintType {
			v, l := protowire.ConsumeVarint(body)
			if l < 0 {
				return false, fmt.Errorf("recover lease of %s: reply: %w", path, protowire.ParseError(l))
			}
			return v != 0, nil
		}
		if l = protowire.ConsumeFieldValue(num, typ, body); l < 0 {
			return false, fmt.Errorf("recover lease of %s: reply: %w", path, protowire.ParseError(l))
		}
		body = body[l:]
	}
	return false, fmt.Errorf("recover lease of %s: the reply has no result", path)
}

// rpcHeader is RpcRequestHeaderProto{rpcKind(1)=RPC_PROTOCOL_BUFFER,
// rpcOp(2)=RPC_FINAL_PACKET, callId(3) sint32, clientId(4), retryCount(5) sint32}.
func rpcHeader(callID, retry int32, clientID []byte) []byte {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, 2)
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	b = protowire.AppendVarint(b, 0)
	b = protowire.AppendTag(b, 3, protowire.VarintType)
	b = protowire.AppendVarint(b, protowire.EncodeZigZag(int64(callID)))
	b = protowire.AppendTag(b, 4, protowire.BytesType)
	b = protowire.AppendBytes(b, clientID)
	b = protowire.AppendTag(b, 5, protowire.VarintType)
	return protowire.AppendVarint(b, protowire.EncodeZigZag(int64(retry)))
}

// writeFrame writes the messages, each length-delimited, after the frame's
// length. Errors surface at Flush.
func writeFrame(w *bufio.Writer, msgs ...[]byte) {
	var frame []byte
	for _, m := range msgs {
		frame = protowire.AppendBytes(frame, m)
	}
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(frame)))
	w.Write(n[:])
	w.Write(frame)
}

func delimited(b []byte) (msg, rest []byte, err error) {
	msg, l := protowire.ConsumeBytes(b)
	if l < 0 {
		return nil, nil, protowire.ParseError(l)
	}
	return msg, b[l:], nil
}

// rpcStatus reads RpcResponseHeaderProto{status(2): 0 success, 1 error,
// 2 fatal; exceptionClassName(4); errorMsg(5)}.
func rpcStatus(hdr []byte) error {
	var status uint64
	var class, msg string
	for len(hdr) > 0 {
		num, typ, l := protowire.ConsumeTag(hdr)
		if l < 0 {
			return protowire.ParseError(l)
		}
		hdr = hdr[l:]
		switch {
		case num == 2 && typ == protowire.VarintType:
			status, l = protowire.ConsumeVarint(hdr)
		case num == 4 && typ == protowire.BytesType:
			class, l = protowire.ConsumeString(hdr)
		case num == 5 && typ == protowire.BytesType:
			msg, l = protowire.ConsumeString(hdr)
		default:
			l = protowire.ConsumeFieldValue(num, typ, hdr)
		}
		if l < 0 {
			return protowire.ParseError(l)
		}
		hdr = hdr[l:]
	}
	if status != 0 {
		if class == "" {
			return errors.New("the NameNode refused the call")
		}
		return fmt.Errorf("%s: %s", class, msg)
	}
	return nil
}

// waitLeaseRecovered calls recoverLease until the file is closed or ctx ends.
func waitLeaseRecovered(ctx context.Context, addr, user, path string) error {
	wait := 50 * time.Millisecond
	for {
		closed, err := recoverLease(ctx, addr, user, path)
		if err != nil {
			return err
		}
		if closed {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("recover lease of %s: still not closed: %w", path, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}
