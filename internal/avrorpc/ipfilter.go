package avrorpc

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"strings"
	"time"
)

// IPFilter is Flume's avro source ipFilterRules: a comma-separated list of
// allow|deny:ip|name:<pattern> rules, where * matches any run of characters
// (and ? one). The first rule that matches decides; a peer no rule matches is
// allowed. ip patterns match the peer's address text; name patterns match its
// host name, looked up (reverse DNS) only when a name rule is reached, and
// falling back to the address text as Java's getHostName does.
type IPFilter struct {
	rules  []ipRule
	lookup func(ctx context.Context, addr string) ([]string, error)
}

type ipRule struct {
	allow bool
	name  bool // match the host name rather than the address
	re    *regexp.Regexp
	text  string
}

// ParseIPFilter parses ipFilterRules. Any malformed rule is an error, as in
// Flume, where it fails configure.
func ParseIPFilter(rules string) (*IPFilter, error) {
	f := &IPFilter{lookup: net.DefaultResolver.LookupAddr}
	for _, r := range strings.Split(rules, ",") {
		r = strings.TrimSpace(r)
		if r == "" {
			continue
		}
		parts := strings.SplitN(r, ":", 3)
		if len(parts) != 3 || parts[2] == "" {
			return nil, fmt.Errorf("rule %q: want allow|deny:ip|name:<pattern>", r)
		}
		var rule ipRule
		switch strings.ToLower(parts[0]) {
		case "allow":
			rule.allow = true
		case "deny":
		default:
			return nil, fmt.Errorf("rule %q: %q is neither allow nor deny", r, parts[0])
		}
		switch strings.ToLower(parts[1]) {
		case "ip":
		case "name":
			rule.name = true
		default:
			return nil, fmt.Errorf("rule %q: %q is neither ip nor name", r, parts[1])
		}
		rule.text = r
		rule.re = globRegexp(parts[2])
		f.rules = append(f.rules, rule)
	}
	if len(f.rules) == 0 {
		return nil, fmt.Errorf("no rules")
	}
	return f, nil
}

// globRegexp turns a pattern with * and ? into an anchored, case-insensitive
// regular expression; every other character is literal.
func globRegexp(p string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("(?i)^")
	for _, r := range p {
		switch r {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

// Allow reports whether the peer at addr may connect.
func (f *IPFilter) Allow(addr net.Addr) bool {
	ip := addr.String()
	if host, _, err := net.SplitHostPort(ip); err == nil {
		ip = host
	}
	var name string
	resolved := false
	for _, r := range f.rules {
		subject := ip
		if r.name {
			if !resolved {
				name, resolved = f.hostName(ip), true
			}
			subject = name
			// Netty's PatternRule lets name:localhost match the loopback
			// addresses whatever they resolve to.
			if strings.EqualFold(r.re.String(), "(?i)^localhost$") && isLoopback(ip) {
				return r.allow
			}
		}
		if r.re.MatchString(subject) {
			return r.allow
		}
	}
	return true
}

func (f *IPFilter) hostName(ip string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	names, err := f.lookup(ctx, ip)
	if err != nil || len(names) == 0 {
		return ip
	}
	return strings.TrimSuffix(names[0], ".")
}

func isLoopback(ip string) bool {
	p := net.ParseIP(ip)
	return p != nil && p.IsLoopback()
}
