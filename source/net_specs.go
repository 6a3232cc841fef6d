package source

import (
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/internal/netconn"
	"github.com/flumed/flumed/internal/tlskeys"
)

// The netcatudp source's keys (Flume's NetcatUdpSource).
var (
	netcatUDPBind   = config.String("bind", "0.0.0.0", "the address listened on")
	netcatUDPPort   = config.ListenPort("port", "the UDP port listened on").Required()
	netcatUDPRemote = config.String("remoteAddressHeader", "", "a header given the sender as /ip:port")
)

var netcatUDPType = &config.Spec{
	Type: "netcatudp", Classes: []string{"org.apache.flume.source.NetcatUdpSource"},
	Doc: "puts in batches from a bounded queue; when the channel cannot keep up datagrams are dropped and counted; " +
		"no header when remoteAddressHeader is unset (Flume adds one named null)",
	Keys: []config.Decl{netcatUDPBind, netcatUDPPort, netcatUDPRemote, ProcessorKeys},
}

func newNetcatUDPSource(name string, c *config.Context, log *slog.Logger) (Source, error) {
	addr := net.JoinHostPort(netcatUDPBind.Get(c), strconv.Itoa(netcatUDPPort.Get(c)))
	return NewNetcatUDP(name, addr, netcatUDPRemote.Get(c), log), nil
}

// The http source's keys (Flume's HTTPSourceConfigurationConstants) and
// flumed's bounds.
var (
	httpBind      = config.String("bind", "0.0.0.0", "the address listened on")
	httpPort      = config.ListenPort("port", "the port listened on").Required()
	httpHandler   = config.String("handler", "org.apache.flume.source.http.JSONHandler", "JSONHandler (a JSON array of events) or BLOBHandler (the body is one event)")
	httpMandatory = config.String("handler.mandatoryParameters", "", "BLOBHandler: request parameters every request must carry, comma-separated")
	httpMaxBody   = config.Bytes("max-body-bytes", 64<<20, "a larger request body (after gzip decoding) is answered 413").Flumed()
	httpMaxConns  = config.Int("max-connections", netconn.DefaultMaxConnections, "open connections at most; at the cap the longest-idle one is closed to make room").Flumed()
	httpIdle      = config.Millis("idle-timeout", time.Minute, "close a connection idle this long between requests; 0 never").Flumed()
	httpRead      = config.Millis("read-timeout", 30*time.Second, "how long a request, body included, may take to arrive").Flumed()
	httpOldSSL    = config.Ignore("enableSSL", "deprecated in Flume; use ssl")
	httpOldProtos = config.Ignore("excludeProtocols", "deprecated in Flume; use exclude-protocols")
)

var httpType = &config.Spec{
	Type: "http", Classes: []string{"org.apache.flume.source.http.HTTPSource"},
	Doc: "answers 200/400/503 as Flume, plus 413 past max-body-bytes and 415 for a charset other than UTF-8; reads " +
		"gzip bodies; strict JSON (Gson is lenient); custom handler classes are refused; a client slower than " +
		"read-timeout is cut off, counted (EventReadFail) and logged; TLS keystores are PKCS12 or PEM (JKS is refused " +
		"with the keytool command that converts it); at max-connections the longest-idle connection makes room",
	Keys: []config.Decl{httpBind, httpPort, httpHandler, httpMandatory, httpMaxBody, httpMaxConns, httpIdle, httpRead,
		httpOldSSL, httpOldProtos, tlskeys.Server, ProcessorKeys},
}

func newHTTPSource(name string, c *config.Context, log *slog.Logger) (Source, error) {
	o := HTTPOptions{
		Addr:           net.JoinHostPort(httpBind.Get(c), strconv.Itoa(httpPort.Get(c))),
		MaxBodyBytes:   httpMaxBody.Get(c),
		MaxConnections: httpMaxConns.Get(c),
		IdleTimeout:    httpIdle.Get(c),
		ReadTimeout:    httpRead.Get(c),
	}
	switch h := httpHandler.Get(c); strings.ToLower(h[strings.LastIndex(h, ".")+1:]) {
	case "jsonhandler":
		o.Handler = JSONHandler{}
	case "blobhandler":
		var m []string
		for _, p := range strings.Split(httpMandatory.Get(c), ",") {
			if p = strings.TrimSpace(p); p != "" {
				m = append(m, p)
			}
		}
		o.Handler = BlobHandler{Mandatory: m}
	default:
		c.Errorf(httpHandler.Name(), "unknown handler %q (flumed has org.apache.flume.source.http.JSONHandler and org.apache.flume.source.http.BLOBHandler)", h)
	}
	if o.MaxBodyBytes < 1 || o.MaxConnections < 1 || o.ReadTimeout <= 0 || o.IdleTimeout < 0 {
		c.Errorf(httpMaxBody.Name(), "max-body-bytes, max-connections and read-timeout must be positive, idle-timeout not negative")
	}
	cfg, ok := tlskeys.ServerConfig(c)
	if !ok {
		return nil, errConfig
	}
	o.TLS = cfg
	return NewHTTP(name, o, log), nil
}
