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

func newTimestampInterceptor(c *config.Context, _ *slog.Logger) (Interceptor, error) {
	return &timestampInterceptor{
		header:   c.String("headerName", "timestamp"),
		preserve: c.Bool("preserveExisting", false),
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

func newHostInterceptor(c *config.Context, log *slog.Logger) (Interceptor, error) {
	h := &hostInterceptor{
		header:   c.String("hostHeader", "host"),
		preserve: c.Bool("preserveExisting", false),
	}
	useIP := c.Bool("useIP", true)
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

func newStaticInterceptor(c *config.Context, _ *slog.Logger) (Interceptor, error) {
	return &staticInterceptor{
		key:      c.String("key", "key"),
		value:    c.String("value", "value"),
		preserve: c.Bool("preserveExisting", true),
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

func newUUIDInterceptor(c *config.Context, _ *slog.Logger) (Interceptor, error) {
	return &uuidInterceptor{
		header:   c.String("headerName", "id"),
		preserve: c.Bool("preserveExisting", true),
		prefix:   c.String("prefix", ""),
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

func newRemoveHeaderInterceptor(c *config.Context, _ *slog.Logger) (Interceptor, error) {
	r := &removeHeaderInterceptor{withName: c.String("withName", "")}
	sep := compileRegex(c, "fromListSeparator", `\s*,\s*`, false)
	if list := c.String("fromList", ""); list != "" && sep != nil {
		r.fromList = make(map[string]bool)
		for _, name := range sep.Split(list, -1) {
			if name != "" {
				r.fromList[name] = true
			}
		}
	}
	if c.Has("matching") {
		r.matching = compileRegex(c, "matching", "", true)
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

// compileRegex reads key as a regular expression (def when unset). whole
// anchors it so it must match a whole string, as Java's matches() does. A
// pattern RE2 cannot compile is recorded in c and gives nil.
func compileRegex(c *config.Context, key, def string, whole bool) *regexp.Regexp {
	src := c.String(key, def)
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
