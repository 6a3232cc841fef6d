package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/flumed/flumed/internal/avrorpc"
	"github.com/flumed/flumed/internal/config"
)

// avroClientFlags are flume-ng avro-client's options, and the RPC client
// properties Flume reads from an -P file, as flags.
type avroClientFlags struct {
	host, file, headerFile    string
	port, batchSize           int
	rpcProps, dirname         string
	compression               string
	compressionLevel          int
	ssl, trustAllCerts        bool
	truststore, truststorePwd string
	truststoreType, caFile    string
	connectTimeout, timeout   time.Duration
}

func newAvroClientCmd() *cobra.Command {
	var f avroClientFlags
	cmd := &cobra.Command{
		Use:   "avro-client -H host -p port [-F file] [-R headerFile]",
		Short: "Send the lines of a file (or stdin) to an avro source, as flume-ng avro-client does",
		Long: `Sends every line of a file, or of stdin, as one event (the line without its
terminator: \n, \r\n or \r, as Java's readLine), in batches, to an avro source,
with the headers of a Java properties file (-R) on every event.

Unlike Flume's avro-client, which logs a failure and exits 0, it stops at the
first batch the source does not acknowledge and exits 1, saying how many
events were acknowledged and the line the unacknowledged batch starts at:
everything before that line was delivered (the batch itself may have been,
in part: resend from that line for at-least-once).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAvroClient(cmd.Context(), f, cmd.InOrStdin(), cmd.ErrOrStderr())
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &exitError{exitUsage, err} })
	fl := cmd.Flags()
	fl.StringVarP(&f.host, "host", "H", "", "host name of the avro source")
	fl.IntVarP(&f.port, "port", "p", 0, "port of the avro source")
	fl.StringVarP(&f.file, "filename", "F", "", "file to send, a line per event (default: stdin)")
	fl.StringVarP(&f.headerFile, "headerFile", "R", "", "Java properties file of headers set on every event")
	fl.StringVarP(&f.rpcProps, "rpcProps", "P", "", "Flume RPC client properties file (not supported: use the flags)")
	fl.StringVar(&f.dirname, "dirname", "", "spooling directory to send (not supported: use a spooldir source)")
	fl.IntVar(&f.batchSize, "batch-size", 5, "events per appendBatch call (Flume's avro-client sends 5)")
	fl.StringVar(&f.compression, "compression-type", "none", "none, or deflate (the source needs compression-type = deflate)")
	fl.IntVar(&f.compressionLevel, "compression-level", 6, "deflate level, 0-9")
	fl.BoolVar(&f.ssl, "ssl", false, "connect with TLS")
	fl.StringVar(&f.truststore, "truststore", "", "PKCS#12 (or PEM) truststore of the CAs to trust (default: the system's)")
	fl.StringVar(&f.truststorePwd, "truststore-password", "", "the truststore's password")
	fl.StringVar(&f.truststoreType, "truststore-type", "", "the truststore's type (JKS is refused with a conversion hint)")
	fl.StringVar(&f.caFile, "ssl-ca", "", "PEM file of the CAs to trust, instead of a truststore")
	fl.BoolVar(&f.trustAllCerts, "trust-all-certs", false, "do not verify the server's certificate")
	fl.DurationVar(&f.connectTimeout, "connect-timeout", avrorpc.DefaultConnectTimeout, "bound on connecting and the TLS handshake")
	fl.DurationVar(&f.timeout, "request-timeout", avrorpc.DefaultRequestTimeout, "bound on waiting for each batch's reply")
	return cmd
}

// usage is a command-line problem: exit 2 (as the wal commands), nothing sent.
func usage(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

func (f avroClientFlags) options() (avrorpc.ClientOptions, error) {
	switch {
	case f.rpcProps != "":
		return avrorpc.ClientOptions{}, usage("--rpcProps is not supported by flumed avro-client; give -H, -p and the flags (--batch-size, --compression-type, --ssl, --truststore, ...)")
	case f.dirname != "":
		return avrorpc.ClientOptions{}, usage("--dirname is not supported by flumed avro-client; run an agent with a spooldir source instead")
	case f.host == "" || f.port == 0:
		return avrorpc.ClientOptions{}, usage("both --host (-H) and --port (-p) are required")
	case f.port < 1 || f.port > 65535:
		return avrorpc.ClientOptions{}, usage("--port %d is not a TCP port", f.port)
	case f.batchSize < 1:
		return avrorpc.ClientOptions{}, usage("--batch-size must be at least 1, not %d", f.batchSize)
	case f.compressionLevel < 0 || f.compressionLevel > 9:
		return avrorpc.ClientOptions{}, usage("--compression-level must be 0-9, not %d", f.compressionLevel)
	}
	o := avrorpc.ClientOptions{ConnectTimeout: f.connectTimeout, RequestTimeout: f.timeout, DeflateLevel: f.compressionLevel}
	switch strings.ToLower(f.compression) {
	case "none", "":
	case "deflate":
		o.Deflate = true
	default:
		return o, usage("--compression-type must be none or deflate, not %q", f.compression)
	}
	tlsSet := f.truststore != "" || f.caFile != "" || f.trustAllCerts
	if tlsSet && !f.ssl {
		return o, usage("--truststore, --ssl-ca and --trust-all-certs need --ssl")
	}
	if f.ssl {
		cfg, problems := avrorpc.ClientTLSConfig(avrorpc.TLSOptions{Truststore: f.truststore,
			TruststorePassword: f.truststorePwd, TruststoreType: f.truststoreType, CAFile: f.caFile,
			TrustAllCerts: f.trustAllCerts})
		var errs []error
		for _, p := range problems {
			if !p.Warning {
				errs = append(errs, fmt.Errorf("--%s", p.Error()))
			}
		}
		if len(errs) > 0 {
			return o, &exitError{code: exitUsage, err: errors.Join(errs...)}
		}
		o.TLS = cfg
	}
	return o, nil
}

// readHeaders reads a Java properties file of headers (Flume loads it with
// java.util.Properties).
func readHeaders(path string) (map[string]string, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, usage("header file: %w", err)
	}
	props, problems := config.Parse(path, b)
	if len(problems) > 0 {
		return nil, usage("header file: %s", problems[0])
	}
	h := make(map[string]string, len(props))
	for _, p := range props {
		h[p.Key] = p.Value
	}
	return h, nil
}

func runAvroClient(ctx context.Context, f avroClientFlags, stdin io.Reader, stderr io.Writer) error {
	o, err := f.options()
	if err != nil {
		return err
	}
	headers, err := readHeaders(f.headerFile)
	if err != nil {
		return err
	}
	in := stdin
	if f.file != "" {
		file, err := os.Open(f.file)
		if err != nil {
			return usage("%w", err)
		}
		defer file.Close()
		in = file
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	addr := fmt.Sprintf("%s:%d", f.host, f.port)
	c, err := avrorpc.Dial(ctx, addr, o)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", addr, err)
	}
	defer c.Close()

	lines := bufio.NewScanner(in)
	lines.Buffer(make([]byte, 64<<10), 1<<30)
	lines.Split(javaLines)
	var (
		batch            []avrorpc.Event
		line, firstLine  int // line numbers, from 1
		acked, batches   int
		ackedBytes, size int64
	)
	send := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := c.AppendBatch(ctx, batch); err != nil {
			return fmt.Errorf("%d events acknowledged; the batch of lines %d-%d was not: %w", acked, firstLine, line, err)
		}
		acked += len(batch)
		ackedBytes += size
		batches++
		batch, size = batch[:0], 0
		return nil
	}
	for lines.Scan() {
		line++
		if len(batch) == 0 {
			firstLine = line
		}
		batch = append(batch, avrorpc.Event{Headers: headers, Body: bytes.Clone(lines.Bytes())})
		size += int64(len(lines.Bytes()))
		if len(batch) == f.batchSize {
			if err := send(); err != nil {
				return err
			}
		}
	}
	if err := lines.Err(); err != nil {
		// What was read is sent first: the report then names the line where
		// reading stopped.
		if serr := send(); serr != nil {
			return serr
		}
		return fmt.Errorf("%d events acknowledged; read after line %d: %w", acked, line, err)
	}
	if err := send(); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "flumed avro-client: %d events (%d bytes) in %d batches sent to %s, all acknowledged\n",
		acked, ackedBytes, batches, addr)
	return nil
}

// javaLines splits as Java's BufferedReader.readLine (Flume's
// SimpleTextLineEventReader): a line ends at "\n", "\r\n" or "\r", and a
// last line without a terminator is a line too.
func javaLines(data []byte, atEOF bool) (int, []byte, error) {
	i := bytes.IndexAny(data, "\r\n")
	switch {
	case i < 0 && atEOF && len(data) > 0:
		return len(data), data, nil
	case i < 0:
		return 0, nil, nil
	case data[i] == '\n':
		return i + 1, data[:i], nil
	case i+1 < len(data):
		if data[i+1] == '\n' {
			return i + 2, data[:i], nil
		}
		return i + 1, data[:i], nil
	case atEOF:
		return i + 1, data[:i], nil
	}
	return 0, nil, nil // a "\r" at the end of data: a "\n" may follow
}
