package source

import (
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/internal/netconn"
	"github.com/flumed/flumed/internal/syslog"
	"github.com/flumed/flumed/source/internal/charset"
)

// The syslog sources' keys (Flume's SyslogSourceConfigurationConstants)
// and flumed's own bounds.
var (
	syslogHost      = config.String("host", "0.0.0.0", "the address listened on")
	syslogPort      = config.ListenPort("port", "the port listened on").Required()
	syslogPorts     = config.String("ports", "", "the ports listened on, separated by spaces").Required()
	syslogEventSize = config.Int("eventSize", syslog.DefaultEventSize, "the longest message in bytes; a longer one is cut and marked Incomplete")
	syslogUDPSize   = config.Int("eventSize", 1<<16, "the longest message in bytes (Flume's syslogudp has no key: always 64 KiB)").Flumed()
	syslogKeep      = config.String("keepFields", "none", "fields put back in front of the body: none, all, or any of priority, version, timestamp, hostname")
	syslogClientIP  = config.String("clientIPHeader", "", "a header given the sender's IP address")
	syslogClientHN  = config.String("clientHostnameHeader", "", "a header given the sender's host name (reverse DNS, once per connection)")
	syslogUDPPort   = config.ListenPort("port", "the UDP port listened on").Required()
	syslogUDPHN     = config.String("clientHostnameHeader", "", "a header given the sender's host name (reverse DNS, remembered for up to 1024 senders)")
	syslogBatchUDP  = config.Int("batchSize", 100, "the most datagrams put in one transaction (Flume puts one at a time)").Flumed()
	syslogPortHdr   = config.String("portHeader", "", "a header given the port the message came in on")
	syslogBatch     = config.Int("batchSize", 100, "the most messages of one connection put in one transaction")
	syslogBatchTCP  = config.Int("batchSize", 100, "the most messages of one connection put in one transaction (Flume puts one at a time)").Flumed()
	syslogReadBuf   = config.Int("readBufferBytes", 1024, "bytes read from a connection at once (flumed reads at least 64 KiB)")
	syslogCharset   = config.String("charset.default", "UTF-8", "the charset of the ports without their own (UTF-8, US-ASCII, ISO-8859-1)")
	syslogPortCS    = config.String("charset.port.<port>", "", "the charset of one port")
	syslogOctets    = config.Bool("octetCounting", true, "also read RFC 6587 octet-counted frames (LEN SP MSG), as rsyslog and logger --octet-count send").Flumed()
	syslogMaxConns  = config.Int("max-connections", netconn.DefaultMaxConnections, "open connections at most; at the cap the longest-idle one is closed to make room").Flumed()
	syslogIdle      = config.Millis("idle-timeout", time.Hour, "close a connection silent this long; 0 never").Flumed()
	syslogRcvBuf    = config.Bytes("receiveBufferBytes", 4<<20, "SO_RCVBUF asked for the socket (the kernel caps it at net.core.rmem_max)").Flumed()
	syslogFormats   = config.Ignore("format.*", "custom syslog formats (format.regex, format.search, format.replace, format.dateFormat) are not supported by flumed; ignored")
	syslogNumProcs  = config.Ignore("numProcessors", "flumed serves each connection on its own goroutine; ignored")
)

var syslogTCPType = &config.Spec{
	Type: "syslogtcp", Classes: []string{"org.apache.flume.source.SyslogTcpSource"},
	Doc: "headers and bodies as Flume's SyslogUtils; also reads RFC 6587 octet-counted frames; puts up to batchSize " +
		"messages of a connection per transaction and, when the channel is full, retries without reading on (Flume " +
		"drops); at max-connections the longest-idle connection makes room",
	Keys: []config.Decl{syslogHost, syslogPort, syslogEventSize, syslogKeep, syslogClientIP, syslogClientHN,
		syslogBatchTCP, syslogOctets, syslogMaxConns, syslogIdle, syslogFormats, ProcessorKeys},
}

var multiportSyslogTCPType = &config.Spec{
	Type: "multiport_syslogtcp", Classes: []string{"org.apache.flume.source.MultiportSyslogTCPSource"},
	Doc: "headers and bodies as Flume's SyslogParser, per-port charsets; a full channel is retried, not dropped; a " +
		"line Flume would lose the batch for is an Invalid event; RFC 3164 years within the last 11 months, not 1999/2001",
	Keys: []config.Decl{syslogHost, syslogPorts, syslogEventSize, syslogKeep, syslogClientIP, syslogClientHN,
		syslogPortHdr, syslogBatch, syslogReadBuf, syslogCharset, syslogPortCS, syslogMaxConns, syslogIdle, syslogNumProcs, ProcessorKeys},
}

var syslogUDPType = &config.Spec{
	Type: "syslogudp", Classes: []string{"org.apache.flume.source.SyslogUDPSource"},
	Doc: "headers and bodies as Flume's SyslogUtils; puts in batches from a bounded queue; when the channel cannot " +
		"keep up datagrams are dropped and counted (SyslogDroppedCount); SO_RCVBUF set and logged",
	Keys: []config.Decl{syslogHost, syslogUDPPort, syslogUDPSize, syslogKeep, syslogClientIP, syslogUDPHN,
		syslogBatchUDP, syslogRcvBuf, syslogFormats, ProcessorKeys},
}

func syslogAddr(c *config.Context, port int) string {
	return net.JoinHostPort(syslogHost.Get(c), strconv.Itoa(port))
}

func syslogParser(c *config.Context, size int, octets bool) *syslog.Parser {
	if size < 1 {
		c.Errorf(syslogEventSize.Name(), "must be positive, not %d", size)
	}
	return syslog.NewParser(syslog.Options{EventSize: size, KeepFields: syslog.ParseKeepFields(syslogKeep.Get(c)), OctetCounting: octets})
}

func syslogTCPCommon(c *config.Context, batch config.Key[int]) SyslogTCPOptions {
	o := SyslogTCPOptions{
		BatchSize:            batch.Get(c),
		ClientIPHeader:       syslogClientIP.Get(c),
		ClientHostnameHeader: syslogClientHN.Get(c),
		MaxConnections:       syslogMaxConns.Get(c),
		IdleTimeout:          syslogIdle.Get(c),
	}
	if o.BatchSize < 1 {
		c.Errorf(batch.Name(), "must be at least 1, not %d", o.BatchSize)
	}
	if o.MaxConnections < 1 {
		c.Errorf(syslogMaxConns.Name(), "must be at least 1, not %d", o.MaxConnections)
	}
	if o.IdleTimeout < 0 {
		c.Errorf(syslogIdle.Name(), "must not be negative (0 never closes idle connections)")
	}
	return o
}

func newSyslogTCPSource(name string, c *config.Context, log *slog.Logger) (Source, error) {
	o := syslogTCPCommon(c, syslogBatchTCP)
	o.Ports = []SyslogPort{{Addr: syslogAddr(c, syslogPort.Get(c)), Parser: syslogParser(c, syslogEventSize.Get(c), syslogOctets.Get(c))}}
	return NewSyslogTCP(name, o, log), nil
}

func newMultiportSyslogTCPSource(name string, c *config.Context, log *slog.Logger) (Source, error) {
	o := syslogTCPCommon(c, syslogBatch)
	o.PortHeader = syslogPortHdr.Get(c)
	o.ReadBufferSize = max(syslogReadBuf.Get(c), 64<<10)
	parser := syslogParser(c, syslogEventSize.Get(c), false)
	def := syslogCharset.Get(c)
	if !charset.Supported(def) {
		c.Errorf(syslogCharset.Name(), "unsupported charset %q (flumed supports UTF-8, US-ASCII and ISO-8859-1)", def)
	}
	lines := func(cs string) *syslog.MultiportLines {
		return &syslog.MultiportLines{Latin1: charset.IsLatin1(cs), ASCII: strings.EqualFold(cs, "US-ASCII") || strings.EqualFold(cs, "ASCII")}
	}
	for _, f := range strings.Fields(syslogPorts.Get(c)) {
		port, err := strconv.Atoi(f)
		if err != nil || port < 0 || port > 65535 {
			c.Errorf(syslogPorts.Name(), "not a port number (0-65535): %q", f)
			continue
		}
		cs := def
		if v, ok := syslogPortCS.At(c, f); ok {
			if !charset.Supported(v) {
				c.Errorf("charset.port."+f, "unsupported charset %q (flumed supports UTF-8, US-ASCII and ISO-8859-1)", v)
			}
			cs = v
		}
		o.Ports = append(o.Ports, SyslogPort{Addr: syslogAddr(c, port), Parser: parser, Multiport: lines(cs)})
	}
	if len(o.Ports) == 0 {
		c.Errorf(syslogPorts.Name(), "lists no port")
	}
	return NewSyslogTCP(name, o, log), nil
}

func newSyslogUDPSource(name string, c *config.Context, log *slog.Logger) (Source, error) {
	o := SyslogUDPOptions{
		Addr:                 syslogAddr(c, syslogUDPPort.Get(c)),
		Parser:               syslogParser(c, syslogUDPSize.Get(c), false),
		BatchSize:            syslogBatchUDP.Get(c),
		ReceiveBuffer:        int(syslogRcvBuf.Get(c)),
		ClientIPHeader:       syslogClientIP.Get(c),
		ClientHostnameHeader: syslogUDPHN.Get(c),
	}
	if o.BatchSize < 1 {
		c.Errorf(syslogBatchUDP.Name(), "must be at least 1, not %d", o.BatchSize)
	}
	return NewSyslogUDP(name, o, log), nil
}
