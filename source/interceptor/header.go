package interceptor

import (
	"context"
	"log/slog"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/source/sourceapi"
)

// This file holds the interceptors that only set or remove headers:
// timestamp, host, static, uuid and remove_header (FLUME.md §2.15).

// timestampInterceptor sets a header to the current time in epoch milliseconds.
type timestampInterceptor struct {
	header   string
	preserve bool
	now      func() time.Time
}

var (
	timestampHeader   = config.String("headerName", "timestamp", "the header set to the time of interception, in epoch milliseconds")
	timestampPreserve = config.Bool("preserveExisting", false, "leave the header alone when an event has it")
)

var timestampType = &config.Spec{Type: "timestamp", Classes: []string{"org.apache.flume.interceptor.TimestampInterceptor$Builder"},
	Doc: "as in Flume", Keys: []config.Decl{timestampHeader, timestampPreserve}}

func newTimestampInterceptor(c *config.Context, _ *slog.Logger) (Interceptor, error) {
	return &timestampInterceptor{
		header:   timestampHeader.Get(c),
		preserve: timestampPreserve.Get(c),
		now:      time.Now,
	}, nil
}

func (t *timestampInterceptor) Intercept(events []channel.Event) []channel.Event {
	for i := range events {
		setHeader(&events[i], t.header, strconv.FormatInt(t.now().UnixMilli(), 10), t.preserve)
	}
	return events
}

// hostInterceptor sets a header to this machine's address or name, resolved
// once when the interceptor is built.
type hostInterceptor struct {
	header   string
	host     string // empty when resolution failed: no header is set, as in Flume
	preserve bool
}

var (
	hostHeader   = config.String("hostHeader", "host", "the header set to this machine's address or name")
	hostPreserve = config.Bool("preserveExisting", false, "leave the header alone when an event has it")
	hostUseIP    = config.Bool("useIP", true, "the address (true) or the name it resolves back to (false)")
)

var hostType = &config.Spec{Type: "host", Classes: []string{"org.apache.flume.interceptor.HostInterceptor$Builder"},
	Doc: "as in Flume", Keys: []config.Decl{hostHeader, hostPreserve, hostUseIP}}

func newHostInterceptor(c *config.Context, log *slog.Logger) (Interceptor, error) {
	h := &hostInterceptor{
		header:   hostHeader.Get(c),
		preserve: hostPreserve.Get(c),
	}
	useIP := hostUseIP.Get(c)
	host, err := localHost(useIP)
	if err != nil {
		log.Warn("cannot resolve the local host; the host interceptor will set no header", slog.Any("err", err))
	}
	h.host = host
	return h, nil
}

func (h *hostInterceptor) Intercept(events []channel.Event) []channel.Event {
	if h.host == "" {
		return events
	}
	for i := range events {
		setHeader(&events[i], h.header, h.host, h.preserve)
	}
	return events
}

// localHost returns what Java's InetAddress.getLocalHost() gives: the address
// the host name resolves to (useIP) or the name that address resolves back to.
// When the host name does not resolve, the first non-loopback interface
// address stands in for it.
func localHost(useIP bool) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	name, err := os.Hostname()
	if err != nil {
		return "", err
	}
	var ip string
	if addrs, err := net.DefaultResolver.LookupHost(ctx, name); err == nil && len(addrs) > 0 {
		ip = preferIPv4(addrs)
	} else if ip = interfaceAddr(); ip == "" {
		return "", err
	}
	if useIP {
		return ip, nil
	}
	if names, err := net.DefaultResolver.LookupAddr(ctx, ip); err == nil && len(names) > 0 {
		return strings.TrimSuffix(names[0], "."), nil
	}
	return name, nil
}

func preferIPv4(addrs []string) string {
	for _, a := range addrs {
		if ip := net.ParseIP(a); ip != nil && ip.To4() != nil {
			return a
		}
	}
	return addrs[0]
}

func interfaceAddr() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	return ""
}

// staticInterceptor sets one fixed header.
type staticInterceptor struct {
	key, value string
	preserve   bool
}

var (
	staticKey      = config.String("key", "key", "the header's name")
	staticValue    = config.String("value", "value", "the header's value")
	staticPreserve = config.Bool("preserveExisting", true, "leave the header alone when an event has it")
)

var staticType = &config.Spec{Type: "static", Classes: []string{"org.apache.flume.interceptor.StaticInterceptor$Builder"},
	Doc: "as in Flume", Keys: []config.Decl{staticKey, staticValue, staticPreserve}}

func newStaticInterceptor(c *config.Context, _ *slog.Logger) (Interceptor, error) {
	return &staticInterceptor{
		key:      staticKey.Get(c),
		value:    staticValue.Get(c),
		preserve: staticPreserve.Get(c),
	}, nil
}

func (s *staticInterceptor) Intercept(events []channel.Event) []channel.Event {
	for i := range events {
		setHeader(&events[i], s.key, s.value, s.preserve)
	}
	return events
}

// uuidInterceptor sets a header to a random (version 4) UUID, optionally
// prefixed.
type uuidInterceptor struct {
	header, prefix string
	preserve       bool
}

var (
	uuidHeader   = config.String("headerName", "id", "the header set to a random UUID")
	uuidPreserve = config.Bool("preserveExisting", true, "leave the header alone when an event has it")
	uuidPrefix   = config.String("prefix", "", "written before the UUID")
)

// uuidType has no alias in Flume, only its class name; flumed also accepts
// "uuid".
var uuidType = &config.Spec{Type: "uuid", Classes: []string{"org.apache.flume.sink.solr.morphline.UUIDInterceptor$Builder"},
	Doc: "Flume knows it by its class name only; flumed also by `uuid`", Keys: []config.Decl{uuidHeader, uuidPreserve, uuidPrefix}}

func newUUIDInterceptor(c *config.Context, _ *slog.Logger) (Interceptor, error) {
	return &uuidInterceptor{
		header:   uuidHeader.Get(c),
		preserve: uuidPreserve.Get(c),
		prefix:   uuidPrefix.Get(c),
	}, nil
}

func (u *uuidInterceptor) Intercept(events []channel.Event) []channel.Event {
	for i := range events {
		if u.preserve {
			if _, ok := events[i].Headers[u.header]; ok {
				continue
			}
		}
		setHeader(&events[i], u.header, u.prefix+uuid.NewString(), false)
	}
	return events
}

// removeHeaderInterceptor deletes headers by exact name, by a list of names,
// or by a regular expression that must match the whole name (Java's
// Matcher.matches).
type removeHeaderInterceptor struct {
	withName string
	fromList map[string]bool
	matching *regexp.Regexp
}

var (
	removeWithName = config.String("withName", "", "a header removed by its exact name")
	removeFromList = config.String("fromList", "", "headers removed by name, split on fromListSeparator")
	removeSep      = config.String("fromListSeparator", `\s*,\s*`, "the regular expression fromList is split on")
	removeMatching = config.String("matching", "", "a regular expression: headers whose whole name matches are removed")
)

var removeHeaderType = &config.Spec{Type: "remove_header", Classes: []string{"org.apache.flume.interceptor.RemoveHeaderInterceptor$Builder"},
	Doc: "regular expressions are Go's RE2: lookaround or backreferences are a configuration error", Keys: []config.Decl{removeWithName, removeFromList, removeSep, removeMatching}}

func newRemoveHeaderInterceptor(c *config.Context, _ *slog.Logger) (Interceptor, error) {
	r := &removeHeaderInterceptor{withName: removeWithName.Get(c)}
	sep := compileRegex(c, removeSep.Name(), removeSep.Get(c), false)
	if list := removeFromList.Get(c); list != "" && sep != nil {
		r.fromList = make(map[string]bool)
		for _, name := range sep.Split(list, -1) {
			if name != "" {
				r.fromList[name] = true
			}
		}
	}
	if m, set := removeMatching.Lookup(c); set {
		r.matching = compileRegex(c, removeMatching.Name(), m, true)
		if r.matching == nil {
			return nil, sourceapi.ErrConfig
		}
	}
	if sep == nil {
		return nil, sourceapi.ErrConfig
	}
	return r, nil
}

func (r *removeHeaderInterceptor) Intercept(events []channel.Event) []channel.Event {
	for i := range events {
		h := events[i].Headers
		if r.withName != "" {
			delete(h, r.withName)
		}
		if r.fromList == nil && r.matching == nil {
			continue
		}
		for k := range h {
			if r.fromList[k] || (r.matching != nil && r.matching.MatchString(k)) {
				delete(h, k)
			}
		}
	}
	return events
}

// compileRegex compiles src, the value of key, as a regular expression.
// whole anchors it so it must match a whole string, as Java's matches()
// does. A pattern RE2 cannot compile is recorded in c and gives nil.
func compileRegex(c *config.Context, key, src string, whole bool) *regexp.Regexp {
	expr := src
	if whole {
		expr = `^(?:` + src + `)$`
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		c.Errorf(key, "not a valid regular expression (Go RE2 syntax: no lookaround, no backreferences): %v", err)
		return nil
	}
	return re
}
