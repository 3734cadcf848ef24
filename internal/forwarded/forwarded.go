// Package forwarded reads the client address out of forwarding headers:
// X-Forwarded-For and Forwarded (RFC 7239) chains, and single addresses as
// RemoteAddr and X-Real-IP carry them. It decides nothing about trust: the
// caller walks the chain with its own list of trusted proxies.
//
// Every function is bounded (see [MaxHops], [MaxBytes]), never panics on
// any input, and does not allocate on the common forms.
package forwarded

import (
	"net/netip"
	"strings"
)

const (
	// MaxHops and MaxBytes bound the work one request can cause.
	// No real proxy chain comes near them, so a longer one is hostile or
	// broken, and we believe none of it.
	MaxHops  = 64
	MaxBytes = 8 << 10

	// maxNodeLen bounds one hop: the longest address with port,
	// "[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535", is 54 bytes,
	// which leaves room for an interface name as zone.
	maxNodeLen = 100
)

// Chain is a forwarding chain, left to right, held in a fixed array so
// that parsing it never allocates. An invalid Addr marks a hop that could
// not be read. The zero value is an empty chain.
type Chain struct {
	n    int
	addr [MaxHops]netip.Addr
}

// Len returns the number of hops.
func (hs *Chain) Len() int { return hs.n }

// At returns hop i, 0 the leftmost: the invalid Addr for a hop that could
// not be read.
func (hs *Chain) At(i int) netip.Addr { return hs.addr[i] }

// add appends one hop and reports false when the chain is full.
func (hs *Chain) add(a netip.Addr) bool {
	if hs.n == MaxHops {
		return false
	}
	hs.addr[hs.n] = a
	hs.n++
	return true
}

// withinBounds reports whether header lines are small enough to read.
func withinBounds(lines []string) bool {
	if len(lines) > MaxHops {
		return false
	}
	total := 0
	for _, l := range lines {
		total += len(l)
	}
	return total <= MaxBytes
}

// AddXFF appends the hops of X-Forwarded-For lines. Elements are separated
// by commas with optional spaces or tabs; an empty element is garbage, not
// skipped as RFC 9110 list syntax would allow, because no proxy writes one.
// It reports false when the chain exceeds the bounds.
func (hs *Chain) AddXFF(lines []string) bool {
	if !withinBounds(lines) {
		return false
	}
	for _, line := range lines {
		for {
			elem, rest, more := strings.Cut(line, ",")
			a, _ := ParseNode(TrimOWS(elem))
			if !hs.add(a) {
				return false
			}
			if !more {
				break
			}
			line = rest
		}
	}
	return true
}

// AddForwarded appends the for= nodes of Forwarded lines (RFC 7239). An
// element without exactly one for= parameter is garbage. After a syntax
// error the rest of that line is one garbage hop: with quoted strings in
// play, no later comma can be trusted to start an element. It reports false
// when the chain exceeds the bounds.
func (hs *Chain) AddForwarded(lines []string) bool {
	if !withinBounds(lines) {
		return false
	}
	for _, line := range lines {
		if !hs.addForwardedLine(line) {
			return false
		}
	}
	return true
}

func (hs *Chain) addForwardedLine(s string) bool {
	for {
		var (
			node    string
			nodes   int
			bad     bool
			pairEnd bool
		)
		s = trimLeftOWS(s)
		for !pairEnd && !bad {
			n := tokenLen(s)
			if n == 0 || n == len(s) || s[n] != '=' {
				bad = true
				break
			}
			name := s[:n]
			s = s[n+1:]
			var val string
			if len(s) > 0 && s[0] == '"' {
				end := strings.IndexByte(s[1:], '"')
				if end < 0 {
					bad = true
					break
				}
				val = s[1 : 1+end]
				s = s[2+end:]
				if strings.IndexByte(val, '\\') >= 0 {
					// A quoted-pair: never needed by an address, and
					// it may have hidden the real closing quote.
					bad = true
					break
				}
			} else {
				n := tokenLen(s)
				if n == 0 {
					bad = true
					break
				}
				val = s[:n]
				s = s[n:]
			}
			if EqualFold(name, "for") {
				node = val
				nodes++
			}
			s = trimLeftOWS(s)
			switch {
			case len(s) == 0 || s[0] == ',':
				pairEnd = true
			case s[0] == ';':
				s = trimLeftOWS(s[1:])
			default:
				bad = true
			}
		}
		var a netip.Addr
		if !bad && nodes == 1 {
			a, _ = ParseNode(node)
		}
		if !hs.add(a) {
			return false
		}
		if bad || len(s) == 0 {
			return true
		}
		s = s[1:] // the comma
	}
}

// ParseNode parses one hop or RemoteAddr: an IP address, optionally with a
// port, IPv6 optionally bracketed ("1.2.3.4", "1.2.3.4:80", "2001:db8::1",
// "[2001:db8::1]", "[2001:db8::1]:80"). The address is returned unmapped
// and without zone; ok is false and the Addr invalid for anything else.
func ParseNode(s string) (a netip.Addr, ok bool) {
	if len(s) == 0 || len(s) > maxNodeLen {
		return netip.Addr{}, false
	}
	if a, ok := parseIPv4Port(s); ok {
		return a, true
	}
	return parseNodeGeneral(s)
}

// parseIPv4Port parses the commonest RemoteAddr and hop, "a.b.c.d:port"
// or "a.b.c.d", in one pass. It accepts only strings that netip accepts as
// the same address (four decimal fields of 1 to 3 digits, at most 255,
// without leading zeros; a port of 1 to 5 digits, at most 65535), and says
// false for anything else, which parseNodeGeneral then decides: it never
// rejects what netip would accept, it just leaves it to netip.
func parseIPv4Port(s string) (netip.Addr, bool) {
	var a [4]byte
	i := 0
	for f := range a {
		if f > 0 {
			if i == len(s) || s[i] != '.' {
				return netip.Addr{}, false
			}
			i++
		}
		start, v := i, 0
		for i < len(s) && i-start < 3 && '0' <= s[i] && s[i] <= '9' {
			v = v*10 + int(s[i]-'0')
			i++
		}
		if n := i - start; n == 0 || v > 255 || (n > 1 && s[start] == '0') {
			return netip.Addr{}, false
		}
		a[f] = byte(v)
	}
	if i == len(s) {
		return netip.AddrFrom4(a), true
	}
	port := s[i+1:]
	if s[i] != ':' || len(port) == 0 || len(port) > 5 {
		return netip.Addr{}, false
	}
	p := 0
	for j := 0; j < len(port); j++ {
		c := port[j]
		if c < '0' || c > '9' {
			return netip.Addr{}, false
		}
		p = p*10 + int(c-'0')
	}
	if p > 65535 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4(a), true
}

// parseNodeGeneral is parseNode for every form, with netip's parsers. s is
// not empty and at most maxNodeLen bytes.
func parseNodeGeneral(s string) (a netip.Addr, ok bool) {
	// Pick the one parser that can succeed: a failed parse allocates its
	// error, and RemoteAddr always has a port.
	var err error
	switch colons := strings.Count(s, ":"); {
	case s[0] == '[' && s[len(s)-1] == ']':
		a, err = netip.ParseAddr(s[1 : len(s)-1])
		if err == nil && !a.Is6() {
			return netip.Addr{}, false
		}
	case s[0] == '[' || colons == 1:
		var ap netip.AddrPort
		ap, err = netip.ParseAddrPort(s)
		a = ap.Addr()
	default:
		a, err = netip.ParseAddr(s)
	}
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap().WithZone(""), true
}

func trimLeftOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	return s
}

func TrimOWS(s string) string {
	s = trimLeftOWS(s)
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// tokenLen returns the length of the RFC 9110 token at the start of s.
func tokenLen(s string) int {
	for i := 0; i < len(s); i++ {
		if !isTchar(s[i]) {
			return i
		}
	}
	return len(s)
}

func IsToken(s string) bool {
	return len(s) > 0 && tokenLen(s) == len(s)
}

func isTchar(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	switch b {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

// EqualFold reports whether s equals lower, which must be lower-case
// ASCII, ignoring ASCII case.
func EqualFold(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		if b != lower[i] {
			return false
		}
	}
	return true
}
