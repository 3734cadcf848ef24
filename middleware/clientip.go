package middleware

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"

	"github.com/ratekit/ratekit/internal/forwarded"
)

// ClientIP configures how the limiter finds the client address of a request
// that carries no API key. Every field is a trust decision: a forwarding
// header is only as honest as the machine that wrote it, and a client that
// can choose its own address can choose a fresh allowance with every request.
//
// The zero value is the safe default: the client is the TCP peer
// (http.Request.RemoteAddr) and every forwarding header is ignored. That is
// right when clients connect to this process directly, and wrong (all clients
// share the proxy's bucket) behind a load balancer until TrustedProxies names
// it.
//
// Addresses are compared and bucketed in one canonical form: IPv4-mapped IPv6
// addresses (::ffff:198.51.100.7) are unmapped to IPv4 and IPv6 zones
// (fe80::1%eth0) are dropped, so every notation of an address shares its
// bucket. An IPv4 client is bucketed alone (/32); an IPv6 client is bucketed
// by its IPv6Prefix, because one subscriber usually holds a whole /64 or more
// and could otherwise rotate through billions of addresses.
//
// When RemoteAddr cannot be parsed as an address (a Unix socket, a test that
// left it empty), every such request shares one "unknown peer" bucket,
// 0.0.0.0/32, and forwarding headers are not believed.
//
// [New] copies the ClientIP in its Config, so later edits to the caller's
// struct change nothing. TrustedProxies is searched in order for every
// request, so list the busiest proxies first if there are many.
type ClientIP struct {
	// TrustedProxies lists the peers allowed to tell us who the client is.
	// Forwarding headers on a request are read only when its TCP peer falls
	// in one of these prefixes; from anyone else they are ignored, because
	// anyone can send them.
	//
	// List exactly the proxies and load balancers in front of this process
	// (for example 10.0.0.0/8 for a private network, or your CDN's published
	// ranges), never a range that untrusted clients can connect from.
	// 0.0.0.0/0 believes every client about its own address and is only
	// correct when the process cannot be reached except through proxies.
	// Write IPv4 ranges in dotted form; IPv4-mapped IPv6 prefixes
	// (::ffff:10.0.0.0/104) are rejected, since addresses are unmapped
	// before they are compared. Nil or empty trusts no one.
	//
	// For a trusted peer, the chain in X-Forwarded-For (all header lines,
	// in order) and the for= parameters of Forwarded (RFC 7239) is walked
	// from the right, skipping hops that are themselves trusted; the first
	// untrusted hop is the client, and if every hop is trusted the leftmost
	// is. A hop that is not an address (garbage, an empty element,
	// "unknown", an obfuscated identifier such as "_hidden") ends the walk:
	// nothing to the left of an entry we cannot read is believed. A chain of
	// more than 64 hops or 8 KiB is not read at all. When a request carries
	// both headers and they name different clients, neither is believed.
	// Each of these requests counts as the peer, like the peer's own
	// requests (those with no forwarding header at all), except that
	// ExemptIPs never matches it: a client writes the left part of the chain
	// and can spoil it on purpose, and must not become exempt by it.
	//
	// A hop may be a bare address (203.0.113.9, 2001:db8::1), an address with
	// a port (203.0.113.9:443, [2001:db8::1]:443) or a bracketed IPv6 address
	// ([2001:db8::1]), as RFC 7239 nodes are written; the port is ignored.
	TrustedProxies []netip.Prefix

	// Header, when set, names one single-value header that a trusted proxy
	// sets to the client address, such as "X-Real-IP" (nginx) or
	// "CF-Connecting-IP" (Cloudflare). Then X-Forwarded-For and Forwarded
	// are ignored, and the header is honoured only when the peer is in
	// TrustedProxies and it appears exactly once with one address;
	// otherwise the client is the peer (and, if the header was there but
	// unreadable, not exempt). Choose it only if your proxy always
	// overwrites the header: a proxy that passes a client's own copy
	// through lets every client pick its bucket.
	//
	// The empty string, the default, means the X-Forwarded-For and
	// Forwarded chains. X-Forwarded-For and Forwarded themselves are not
	// valid values, since they are lists, and setting Header without
	// TrustedProxies is an error, since it would never be honoured.
	// True-Client-IP, X-Real-IP and CF-Connecting-IP are never read unless
	// named here.
	Header string

	// IPv6Prefix is the prefix length, in bits, by which IPv6 clients are
	// bucketed: all addresses in one /IPv6Prefix share one allowance.
	// Zero means 64, the size of one subscriber's LAN; 56 or 48 bucket whole
	// customer allocations, 128 one address (easy to evade). Valid values
	// are 0 and 1 to 128. IPv4 clients are always bucketed per address.
	IPv6Prefix int
}

const defaultIPv6Prefix = 64

// unknownPeer is the bucket shared by every request whose RemoteAddr is not
// an address. 0.0.0.0 is never the source of a real TCP connection.
func unknownPeer() netip.Prefix {
	return netip.PrefixFrom(netip.IPv4Unspecified(), 32)
}

// validate reports every problem in c at once, joined, each naming the
// field as a user writes it. New wraps the result in [ErrInvalidConfig] and
// the package prefix, so the problems here carry neither. It does not
// modify c.
func (c *ClientIP) validate() error {
	var errs []error
	for i, p := range c.TrustedProxies {
		switch {
		case !p.IsValid():
			errs = append(errs, fmt.Errorf("ClientIP.TrustedProxies[%d]: invalid prefix", i))
		case p.Addr().Is4In6():
			errs = append(errs, fmt.Errorf("ClientIP.TrustedProxies[%d]: %s is IPv4-mapped, write it as an IPv4 prefix", i, p))
		}
	}
	if c.Header != "" {
		switch canon := http.CanonicalHeaderKey(c.Header); {
		case !forwarded.IsToken(c.Header):
			errs = append(errs, fmt.Errorf("ClientIP.Header %q: not a valid header name", c.Header))
		case canon == "X-Forwarded-For" || canon == "Forwarded":
			errs = append(errs, fmt.Errorf("ClientIP.Header %q: a list, leave Header empty to use it", c.Header))
		}
		if len(c.TrustedProxies) == 0 {
			errs = append(errs, fmt.Errorf("ClientIP.Header %q: set without TrustedProxies, so never honoured", c.Header))
		}
	}
	if c.IPv6Prefix < 0 || c.IPv6Prefix > 128 {
		errs = append(errs, fmt.Errorf("ClientIP.IPv6Prefix %d: out of range 0 to 128", c.IPv6Prefix))
	}
	return errors.Join(errs...)
}

// clone returns a deep copy of c with Header in canonical form (so lookups
// need no allocation) and IPv6Prefix defaulted, for a constructor that must
// not see later edits to the caller's struct.
func (c *ClientIP) clone() ClientIP {
	n := ClientIP{
		TrustedProxies: append([]netip.Prefix(nil), c.TrustedProxies...),
		IPv6Prefix:     c.IPv6Prefix,
	}
	if c.Header != "" {
		n.Header = http.CanonicalHeaderKey(c.Header)
	}
	if n.IPv6Prefix == 0 {
		n.IPv6Prefix = defaultIPv6Prefix
	}
	return n
}

// resolve returns the bucket of the client that sent r: an IPv4 /32 or an
// IPv6 /IPv6Prefix, masked. It never panics and, for an untrusted peer,
// never allocates.
func (c *ClientIP) resolve(r *http.Request) netip.Prefix {
	p, _, _ := c.locate(r)
	return p
}

// locate returns resolve's bucket with the address it was made from, and
// whether that address may match an exemption list: it may when it is the
// client's own, not a stand-in (an unparseable RemoteAddr, or a trusted
// proxy's address for a chain that could not be read).
func (c *ClientIP) locate(r *http.Request) (bucket netip.Prefix, a netip.Addr, exemptable bool) {
	a, ok, fallback := c.address(r)
	if !ok {
		return unknownPeer(), a, false
	}
	return c.bucket(a), a, !fallback
}

// address returns the client address of r before bucketing (unmapped, no
// zone), and false when RemoteAddr is not an address. fallback reports that
// a trusted peer's forwarding headers were present but could not be read
// (see TrustedProxies), so the address is the peer's only for want of a
// better one: exemption lists, which are matched against the address (never
// against the masked bucket), must not match it.
func (c *ClientIP) address(r *http.Request) (a netip.Addr, ok, fallback bool) {
	peer, ok := forwarded.ParseNode(r.RemoteAddr)
	if !ok {
		return netip.Addr{}, false, false
	}
	if !c.trusted(peer) {
		return peer, true, false
	}
	if a, ok := c.forwardedClient(r.Header, peer); ok {
		return a, true, false
	}
	return peer, true, true
}

// trusted reports whether a, already unmapped and without zone, is in
// TrustedProxies.
func (c *ClientIP) trusted(a netip.Addr) bool {
	for _, p := range c.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// bucket returns the prefix that a's requests are counted under.
func (c *ClientIP) bucket(a netip.Addr) netip.Prefix {
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	bits := c.IPv6Prefix
	if bits < 1 || bits > 128 {
		// Unvalidated configs still get a sane answer at request time.
		bits = defaultIPv6Prefix
	}
	p, err := a.Prefix(bits)
	if err != nil {
		// Unreachable: a is a valid IPv6 address and bits is in range.
		return unknownPeer()
	}
	return p
}

// forwardedClient returns the client address that the trusted peer reports
// in h, or peer when there are no forwarding headers (the peer itself is
// asking: a health check). ok is false when the headers are there but
// malformed, too long or contradictory: the client may have written them to
// spoil the chain.
func (c *ClientIP) forwardedClient(h http.Header, peer netip.Addr) (a netip.Addr, ok bool) {
	if c.Header != "" {
		lines := h.Values(c.Header)
		switch len(lines) {
		case 0:
			return peer, true
		case 1:
			return forwarded.ParseNode(forwarded.TrimOWS(lines[0]))
		}
		return netip.Addr{}, false
	}

	xff := h["X-Forwarded-For"]
	fwd := h["Forwarded"]
	if len(xff) == 0 && len(fwd) == 0 {
		return peer, true
	}
	var client netip.Addr
	if len(xff) > 0 {
		var hs forwarded.Chain
		if !hs.AddXFF(xff) {
			return netip.Addr{}, false
		}
		if client = c.walk(&hs); !client.IsValid() {
			return client, false
		}
	}
	if len(fwd) > 0 {
		var hs forwarded.Chain
		if !hs.AddForwarded(fwd) {
			return netip.Addr{}, false
		}
		other := c.walk(&hs)
		if !other.IsValid() || (len(xff) > 0 && other != client) {
			// Unreadable, or two chains naming different clients: at
			// least one was written by someone other than our proxy.
			// Believe neither.
			return netip.Addr{}, false
		}
		client = other
	}
	return client, true
}

// walk finds the client in a chain: the first untrusted hop from the right,
// or the leftmost hop when all are trusted. A hop that is not an address
// ends the walk with the invalid Addr.
func (c *ClientIP) walk(hs *forwarded.Chain) netip.Addr {
	for i := hs.Len() - 1; i >= 0; i-- {
		a := hs.At(i)
		if !a.IsValid() || i == 0 || !c.trusted(a) {
			return a
		}
	}
	return netip.Addr{}
}
