package middleware

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/ratekit/ratekit/internal/forwarded"

	"github.com/ratekit/ratekit/store/memory"
	"github.com/ratekit/ratekit/store/storetest"
)

// newReq builds a request from peer with header lines given as name, value
// pairs; a name may repeat to add several lines.
func newReq(t testing.TB, peer string, kv ...string) *http.Request {
	t.Helper()
	if len(kv)%2 != 0 {
		t.Fatalf("newReq(%q): odd number of header arguments", peer)
	}
	r := &http.Request{RemoteAddr: peer, Header: http.Header{}}
	for i := 0; i < len(kv); i += 2 {
		r.Header.Add(kv[i], kv[i+1])
	}
	return r
}

func prefixes(t testing.TB, s ...string) []netip.Prefix {
	t.Helper()
	ps := make([]netip.Prefix, len(s))
	for i, v := range s {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			t.Fatalf("ParsePrefix(%q): %v", v, err)
		}
		ps[i] = p
	}
	return ps
}

func mustPrefix(t testing.TB, s string) netip.Prefix {
	t.Helper()
	p, err := netip.ParsePrefix(s)
	if err != nil {
		t.Fatalf("ParsePrefix(%q): %v", s, err)
	}
	return p
}

// spoofHeaders is every forwarding header a client might forge.
var spoofHeaders = []string{"X-Forwarded-For", "X-Real-IP", "Forwarded", "True-Client-IP", "CF-Connecting-IP"}

// TestSpoofedHeadersFromAnUntrustedPeer: no forwarding header moves a
// request from an untrusted peer out of the peer's bucket (catalogue R15).
func TestSpoofedHeadersFromAnUntrustedPeer(t *testing.T) {
	configs := []struct {
		name string
		c    ClientIP
	}{
		{"zero value", ClientIP{}},
		{"trusted elsewhere", ClientIP{TrustedProxies: prefixes(t, "10.0.0.0/8")}},
		{"header elsewhere", ClientIP{TrustedProxies: prefixes(t, "10.0.0.0/8"), Header: "X-Real-IP"}},
		{"cf header elsewhere", ClientIP{TrustedProxies: prefixes(t, "10.0.0.0/8"), Header: "CF-Connecting-IP"}},
	}
	peers := []struct{ remote, want string }{
		{"192.0.2.1:5555", "192.0.2.1/32"},
		{"[2001:db8:1:2::3]:5555", "2001:db8:1:2::/64"},
	}
	for _, cfg := range configs {
		for _, p := range peers {
			t.Run(cfg.name+"/"+p.remote, func(t *testing.T) {
				want := mustPrefix(t, p.want)
				for i := range 3 {
					var kv []string
					for _, h := range spoofHeaders {
						v := fmt.Sprintf("203.0.113.%d", i+1)
						if h == "Forwarded" {
							v = "for=" + v
						}
						kv = append(kv, h, v)
					}
					r := newReq(t, p.remote, kv...)
					if got := cfg.c.resolve(r); got != want {
						t.Errorf("resolve(request %d with spoofed headers) = %v, want %v", i, got, want)
					}
				}
			})
		}
	}
}

// TestTrustedProxyChain: a trusted proxy's chain is walked from the right
// to the first untrusted hop; an untrusted peer's is ignored (catalogue R16).
func TestTrustedProxyChain(t *testing.T) {
	c := ClientIP{TrustedProxies: prefixes(t, "10.0.0.0/8")}
	tests := []struct {
		name   string
		remote string
		kv     []string
		want   string
	}{
		{"untrusted peer keeps its own address", "127.0.0.1:40000", []string{"X-Forwarded-For", "203.0.113.9"}, "127.0.0.1/32"},
		{"trusted peer, rightmost untrusted hop", "10.1.1.1:40000", []string{"X-Forwarded-For", "198.51.100.1, 203.0.113.9"}, "203.0.113.9/32"},
		{"trusted hops skipped", "10.1.1.1:40000", []string{"X-Forwarded-For", "198.51.100.1, 203.0.113.9, 10.2.2.2, 10.3.3.3"}, "203.0.113.9/32"},
		{"header lines joined in order", "10.1.1.1:40000", []string{"X-Forwarded-For", "198.51.100.1", "X-Forwarded-For", "203.0.113.9, 10.2.2.2"}, "203.0.113.9/32"},
		{"all hops trusted, leftmost", "10.1.1.1:40000", []string{"X-Forwarded-For", "10.9.9.9, 10.2.2.2"}, "10.9.9.9/32"},
		{"no header, peer", "10.1.1.1:40000", nil, "10.1.1.1/32"},
		{"forwarded", "10.1.1.1:40000", []string{"Forwarded", `for=198.51.100.1, for="203.0.113.9:4711";proto=https, for=10.2.2.2;by=10.1.1.1`}, "203.0.113.9/32"},
		{"forwarded ipv6", "10.1.1.1:40000", []string{"Forwarded", `For="[2001:db8:cafe::17]:4711"`}, "2001:db8:cafe::/64"},
		{"forwarded ipv6 no port", "10.1.1.1:40000", []string{"Forwarded", `for="[2001:db8:cafe::17]"`}, "2001:db8:cafe::/64"},
		{"forwarded lines joined", "10.1.1.1:40000", []string{"Forwarded", "for=198.51.100.1", "Forwarded", "for=203.0.113.9"}, "203.0.113.9/32"},
		{"both headers agree", "10.1.1.1:40000", []string{"X-Forwarded-For", "203.0.113.9", "Forwarded", "for=203.0.113.9"}, "203.0.113.9/32"},
		{"both headers disagree", "10.1.1.1:40000", []string{"X-Forwarded-For", "203.0.113.9", "Forwarded", "for=198.51.100.1"}, "10.1.1.1/32"},
		{"x-real-ip ignored without Header", "10.1.1.1:40000", []string{"X-Real-IP", "203.0.113.9"}, "10.1.1.1/32"},
		{"trusted ipv6 peer", "[fd00::1]:40000", []string{"X-Forwarded-For", "203.0.113.9"}, "fd00::/64"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newReq(t, tc.remote, tc.kv...)
			if got, want := c.resolve(r), mustPrefix(t, tc.want); got != want {
				t.Errorf("resolve(%s %q) = %v, want %v", tc.remote, tc.kv, got, want)
			}
		})
	}
	t.Run("never the left hop", func(t *testing.T) {
		r := newReq(t, "10.1.1.1:1", "X-Forwarded-For", "198.51.100.1, 203.0.113.9")
		if got := c.resolve(r); got.Contains(netip.MustParseAddr("198.51.100.1")) {
			t.Errorf("resolve(XFF 198.51.100.1, 203.0.113.9) = %v, want never 198.51.100.1", got)
		}
	})
	trustedV6 := ClientIP{TrustedProxies: prefixes(t, "10.0.0.0/8", "fd00::/8")}
	t.Run("trusted ipv6 hop skipped", func(t *testing.T) {
		r := newReq(t, "10.1.1.1:1", "X-Forwarded-For", "203.0.113.9, fd00::5")
		if got, want := trustedV6.resolve(r), mustPrefix(t, "203.0.113.9/32"); got != want {
			t.Errorf("resolve(XFF 203.0.113.9, fd00::5) = %v, want %v", got, want)
		}
	})
}

// TestTrustedSingleHeader: ClientIP.Header is honoured only from a
// trusted peer, once, with one address (catalogue R16).
func TestTrustedSingleHeader(t *testing.T) {
	c := ClientIP{TrustedProxies: prefixes(t, "10.0.0.0/8"), Header: "CF-Connecting-IP"}
	tests := []struct {
		name   string
		remote string
		kv     []string
		want   string
	}{
		{"honoured from trusted peer", "10.1.1.1:1", []string{"CF-Connecting-IP", "203.0.113.9"}, "203.0.113.9/32"},
		{"ipv6 value", "10.1.1.1:1", []string{"CF-Connecting-IP", "2001:db8::7"}, "2001:db8::/64"},
		{"surrounding spaces", "10.1.1.1:1", []string{"CF-Connecting-IP", " 203.0.113.9\t"}, "203.0.113.9/32"},
		{"ignored from untrusted peer", "192.0.2.1:1", []string{"CF-Connecting-IP", "203.0.113.9"}, "192.0.2.1/32"},
		{"xff ignored when Header set", "10.1.1.1:1", []string{"X-Forwarded-For", "203.0.113.9"}, "10.1.1.1/32"},
		{"two lines", "10.1.1.1:1", []string{"CF-Connecting-IP", "203.0.113.9", "CF-Connecting-IP", "198.51.100.1"}, "10.1.1.1/32"},
		{"a list", "10.1.1.1:1", []string{"CF-Connecting-IP", "203.0.113.9, 198.51.100.1"}, "10.1.1.1/32"},
		{"garbage", "10.1.1.1:1", []string{"CF-Connecting-IP", "unknown"}, "10.1.1.1/32"},
		{"empty", "10.1.1.1:1", []string{"CF-Connecting-IP", ""}, "10.1.1.1/32"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newReq(t, tc.remote, tc.kv...)
			if got, want := c.resolve(r), mustPrefix(t, tc.want); got != want {
				t.Errorf("resolve(%s %q) = %v, want %v", tc.remote, tc.kv, got, want)
			}
		})
	}
}

// TestMalformedChainsFallBackToThePeer: garbage, oversized or
// contradictory chains resolve to the peer, never to a hop left of the
// garbage (catalogue R17).
func TestMalformedChainsFallBackToThePeer(t *testing.T) {
	c := ClientIP{TrustedProxies: prefixes(t, "10.0.0.0/8")}
	const peer = "10.1.1.1:443"
	long := func(n int, entry string) string {
		return strings.TrimSuffix(strings.Repeat(entry+", ", n), ", ")
	}
	tests := []struct {
		name string
		kv   []string
		want string // "peer" for 10.1.1.1/32
	}{
		{"garbage mid-chain", []string{"X-Forwarded-For", "203.0.113.9, garbage, 10.2.2.2"}, "peer"},
		{"garbage left of the client is never reached", []string{"X-Forwarded-For", "garbage, 203.0.113.9, 10.2.2.2"}, "203.0.113.9/32"},
		{"garbage right of the client wins", []string{"X-Forwarded-For", "203.0.113.9, garbage"}, "peer"},
		{"unknown", []string{"X-Forwarded-For", "203.0.113.9, unknown"}, "peer"},
		{"obfuscated", []string{"X-Forwarded-For", "203.0.113.9, _hidden"}, "peer"},
		// Ports and brackets are RFC 7239 node syntax, written by some
		// proxies into X-Forwarded-For too; we accept them.
		{"ipv4 with port accepted", []string{"X-Forwarded-For", "198.51.100.1, 1.2.3.4:80"}, "1.2.3.4/32"},
		{"bracketed ipv6 accepted", []string{"X-Forwarded-For", "198.51.100.1, [::1]"}, "::/64"},
		{"bracketed ipv6 with port accepted", []string{"X-Forwarded-For", "[2001:db8::1]:80"}, "2001:db8::/64"},
		{"bracketed ipv4", []string{"X-Forwarded-For", "[1.2.3.4]"}, "peer"},
		{"ipv6 port without brackets", []string{"X-Forwarded-For", "203.0.113.9, 2001:db8::1::80"}, "peer"},
		{"empty port", []string{"X-Forwarded-For", "1.2.3.4:"}, "peer"},
		{"empty element", []string{"X-Forwarded-For", "203.0.113.9, , 10.2.2.2"}, "peer"},
		{"trailing comma", []string{"X-Forwarded-For", "203.0.113.9,"}, "peer"},
		{"empty line", []string{"X-Forwarded-For", ""}, "peer"},
		{"only commas", []string{"X-Forwarded-For", ",,,"}, "peer"},
		{"empty second line", []string{"X-Forwarded-For", "203.0.113.9", "X-Forwarded-For", ""}, "peer"},
		{"garbage in a later line", []string{"X-Forwarded-For", "203.0.113.9", "X-Forwarded-For", "nope, 10.2.2.2"}, "peer"},
		{"several good lines", []string{"X-Forwarded-For", "198.51.100.1", "X-Forwarded-For", "203.0.113.9", "X-Forwarded-For", "10.2.2.2"}, "203.0.113.9/32"},
		{"inner space", []string{"X-Forwarded-For", "203.0.113 .9"}, "peer"},
		{"newline", []string{"X-Forwarded-For", "203.0.113.9\n"}, "peer"},
		{"cidr", []string{"X-Forwarded-For", "203.0.113.0/24"}, "peer"},
		{"hostname", []string{"X-Forwarded-For", "example.com"}, "peer"},
		{"leading zeros", []string{"X-Forwarded-For", "203.0.113.09"}, "peer"},
		{"10,000 entries", []string{"X-Forwarded-For", long(10000, "203.0.113.9")}, "peer"},
		{"65 entries", []string{"X-Forwarded-For", long(65, "203.0.113.9")}, "peer"},
		{"64 entries", []string{"X-Forwarded-For", long(64, "203.0.113.9")}, "203.0.113.9/32"},
		{"65 lines", strings.Split(strings.Repeat("X-Forwarded-For|203.0.113.9|", 65), "|")[:130], "peer"},
		{"over 8 KiB", []string{"X-Forwarded-For", strings.Repeat(" ", 9000) + "203.0.113.9"}, "peer"},
		{"forwarded unknown", []string{"Forwarded", "for=203.0.113.9, for=unknown"}, "peer"},
		{"forwarded hidden", []string{"Forwarded", `for=203.0.113.9, for="_hidden"`}, "peer"},
		{"forwarded without for", []string{"Forwarded", "for=203.0.113.9, by=10.2.2.2"}, "peer"},
		{"forwarded two fors", []string{"Forwarded", "for=198.51.100.1;for=203.0.113.9"}, "peer"},
		{"forwarded unquoted port", []string{"Forwarded", "for=203.0.113.9:80"}, "peer"},
		{"forwarded unterminated quote", []string{"Forwarded", `for="203.0.113.9`}, "peer"},
		{"forwarded quoted pair", []string{"Forwarded", `for="203.0.113.9\"", for=198.51.100.1`}, "peer"},
		{"forwarded empty element", []string{"Forwarded", "for=203.0.113.9, , for=10.2.2.2"}, "peer"},
		{"forwarded syntax error swallows the line", []string{"Forwarded", "for=1.1.1.1 x, for=203.0.113.9"}, "peer"},
		{"forwarded quoted comma", []string{"Forwarded", `for=198.51.100.1;ext=",for=203.0.113.9"`}, "198.51.100.1/32"},
		{"forwarded 10,000 elements", []string{"Forwarded", long(10000, "for=203.0.113.9")}, "peer"},
		{"xff fine, forwarded garbage", []string{"X-Forwarded-For", "203.0.113.9", "Forwarded", "for=unknown"}, "peer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := mustPrefix(t, "10.1.1.1/32")
			if tc.want != "peer" {
				want = mustPrefix(t, tc.want)
			}
			for i := range 2 { // deterministic: the same answer every time
				r := newReq(t, peer, tc.kv...)
				if got := c.resolve(r); got != want {
					t.Errorf("call %d: resolve(%.80q) = %v, want %v", i, tc.kv, got, want)
				}
			}
		})
	}
}

// TestUnparseablePeerSharesOneBucket: a RemoteAddr that is no address
// counts in the one unknown-peer bucket (catalogue R17).
func TestUnparseablePeerSharesOneBucket(t *testing.T) {
	c := ClientIP{TrustedProxies: prefixes(t, "0.0.0.0/0", "::/0")}
	for _, remote := range []string{"", "@", "/tmp/sock", "localhost:80", "1.2.3.4:99999", "[::1", "1.2.3.4%eth0", strings.Repeat("1", 1000)} {
		t.Run(remote, func(t *testing.T) {
			r := newReq(t, remote, "X-Forwarded-For", "203.0.113.9")
			if got, want := c.resolve(r), unknownPeer(); got != want {
				t.Errorf("resolve(RemoteAddr %q) = %v, want %v", remote, got, want)
			}
		})
	}
}

// TestIPv6RotationStaysInItsPrefix: addresses of one IPv6Prefix share one
// bucket (catalogue R18).
func TestIPv6RotationStaysInItsPrefix(t *testing.T) {
	rotate := func(t *testing.T, c ClientIP, want netip.Prefix, addr func(i int) netip.Addr) {
		t.Helper()
		for i := range 100 {
			a := addr(i)
			r := newReq(t, netip.AddrPortFrom(a, 443).String())
			if got := c.resolve(r); got != want {
				t.Fatalf("resolve(%v) = %v, want %v", a, got, want)
			}
		}
	}
	t.Run("default /64", func(t *testing.T) {
		base := netip.MustParseAddr("2001:db8:1:2::").As16()
		rotate(t, ClientIP{}, mustPrefix(t, "2001:db8:1:2::/64"), func(i int) netip.Addr {
			b := base
			b[8], b[11], b[15] = byte(i*7), byte(i*13), byte(i)
			return netip.AddrFrom16(b)
		})
	})
	t.Run("/56 across the /56", func(t *testing.T) {
		base := netip.MustParseAddr("2001:db8:1:200::").As16()
		rotate(t, ClientIP{IPv6Prefix: 56}, mustPrefix(t, "2001:db8:1:200::/56"), func(i int) netip.Addr {
			b := base
			b[7], b[9], b[15] = byte(i*37), byte(i), byte(i*3)
			return netip.AddrFrom16(b)
		})
	})
	t.Run("through a trusted proxy", func(t *testing.T) {
		c := ClientIP{TrustedProxies: prefixes(t, "10.0.0.0/8")}
		want := mustPrefix(t, "2001:db8:1:2::/64")
		for i := range 100 {
			a := fmt.Sprintf("2001:db8:1:2:%x::%x", i*11, i)
			r := newReq(t, "10.0.0.1:1", "X-Forwarded-For", a)
			if got := c.resolve(r); got != want {
				t.Fatalf("resolve(XFF %s) = %v, want %v", a, got, want)
			}
		}
	})
	tests := []struct {
		name   string
		prefix int
		a, b   string
		same   bool
	}{
		{"neighbouring /64s differ", 0, "2001:db8:1:2::1", "2001:db8:1:3::1", false},
		{"neighbouring /64s share a /56", 56, "2001:db8:1:2::1", "2001:db8:1:3::1", true},
		{"neighbouring /56s differ", 56, "2001:db8:1:2ff::1", "2001:db8:1:300::1", false},
		{"/128 splits addresses", 128, "2001:db8::1", "2001:db8::2", false},
		{"ipv4 not grouped", 8, "192.0.2.1", "192.0.2.2", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := ClientIP{IPv6Prefix: tc.prefix}
			ga := c.resolve(newReq(t, tc.a))
			gb := c.resolve(newReq(t, tc.b))
			if (ga == gb) != tc.same {
				t.Errorf("IPv6Prefix %d: resolve(%s) = %v, resolve(%s) = %v, want same %t", tc.prefix, tc.a, ga, tc.b, gb, tc.same)
			}
		})
	}
}

// TestAddressNotationsShareABucket: every notation of an address lands in
// its bucket, and distinct IPv4-mapped clients stay distinct (catalogue R19).
func TestAddressNotationsShareABucket(t *testing.T) {
	groups := []struct {
		name  string
		want  string
		forms []string
	}{
		{"ipv4 mapped", "198.51.100.7/32", []string{"198.51.100.7", "::ffff:198.51.100.7", "::ffff:c633:6407", "0:0:0:0:0:ffff:c633:6407", "::FFFF:C633:6407"}},
		{"zone dropped", "fe80::/64", []string{"fe80::1", "fe80::1%eth0", "fe80::1%25", "FE80:0:0:0:0:0:0:1"}},
	}
	trusted := ClientIP{TrustedProxies: prefixes(t, "10.0.0.0/8")}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			want := mustPrefix(t, g.want)
			for _, f := range g.forms {
				a := netip.MustParseAddr(f)
				cases := []struct {
					how string
					r   *http.Request
				}{
					{"peer", newReq(t, netip.AddrPortFrom(a, 80).String())},
					{"bare peer", newReq(t, f)},
					{"xff", newReq(t, "10.0.0.1:1", "X-Forwarded-For", f)},
					{"forwarded", newReq(t, "10.0.0.1:1", "Forwarded", `for="`+netip.AddrPortFrom(a, 80).String()+`"`)},
					{"mapped trusted proxy", newReq(t, "[::ffff:10.0.0.1]:1", "X-Forwarded-For", f)},
				}
				for _, tc := range cases {
					if got := trusted.resolve(tc.r); got != want {
						t.Errorf("resolve(%s %s) = %v, want %v", tc.how, f, got, want)
					}
				}
			}
		})
	}
	t.Run("1000 mapped clients, 1000 buckets", func(t *testing.T) {
		var c ClientIP
		seen := make(map[netip.Prefix]bool)
		for i := range 1000 {
			remote := fmt.Sprintf("[::ffff:198.%d.%d.%d]:443", 18+i/65536, i/256%256, i%256)
			got := c.resolve(newReq(t, remote))
			if !got.Addr().Is4() || got.Bits() != 32 {
				t.Fatalf("resolve(%s) = %v, want an IPv4 /32", remote, got)
			}
			seen[got] = true
		}
		if len(seen) != 1000 {
			t.Errorf("resolve(1000 mapped clients) made %d buckets, want 1000", len(seen))
		}
		if seen[mustPrefix(t, "::/64")] {
			t.Errorf("resolve(mapped clients) made bucket ::/64, want none")
		}
	})
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name  string
		c     ClientIP
		wants []string // substrings, one per expected problem
	}{
		{"zero value", ClientIP{}, nil},
		{"full", ClientIP{TrustedProxies: prefixes(t, "10.0.0.0/8", "fd00::/8"), Header: "x-real-ip", IPv6Prefix: 56}, nil},
		{"ipv6 prefix 128", ClientIP{IPv6Prefix: 128}, nil},
		{"invalid prefix", ClientIP{TrustedProxies: []netip.Prefix{{}}}, []string{"ClientIP.TrustedProxies[0]: invalid prefix"}},
		{"mapped prefix", ClientIP{TrustedProxies: prefixes(t, "10.0.0.0/8", "::ffff:10.0.0.0/104")}, []string{"ClientIP.TrustedProxies[1]: ::ffff:10.0.0.0/104 is IPv4-mapped"}},
		{"bad header name", ClientIP{TrustedProxies: prefixes(t, "10.0.0.0/8"), Header: "X Real IP"}, []string{`ClientIP.Header "X Real IP": not a valid header name`}},
		{"list header", ClientIP{TrustedProxies: prefixes(t, "10.0.0.0/8"), Header: "x-forwarded-for"}, []string{"a list"}},
		{"header without proxies", ClientIP{Header: "X-Real-IP"}, []string{"without TrustedProxies"}},
		{"negative prefix", ClientIP{IPv6Prefix: -1}, []string{"ClientIP.IPv6Prefix -1: out of range"}},
		{"all at once", ClientIP{TrustedProxies: []netip.Prefix{{}}, Header: "Forwarded", IPv6Prefix: 129}, []string{"invalid prefix", "a list", "ClientIP.IPv6Prefix 129"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.validate()
			if len(tc.wants) == 0 {
				if err != nil {
					t.Errorf("validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("validate() = nil, want %d problems", len(tc.wants))
			}
			var joined interface{ Unwrap() []error }
			if !errors.As(err, &joined) || len(joined.Unwrap()) != len(tc.wants) {
				t.Errorf("validate() = %v, want %d problems", err, len(tc.wants))
			}
			for _, w := range tc.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("validate() = %v, want it to mention %q", err, w)
				}
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, "ClientIP.") {
					t.Errorf("validate() line %q, want prefix %q (New adds the package prefix)", line, "ClientIP.")
				}
			}
		})
	}
}

func TestClone(t *testing.T) {
	orig := ClientIP{TrustedProxies: prefixes(t, "10.0.0.0/8"), Header: "cf-connecting-ip"}
	c := orig.clone()
	orig.TrustedProxies[0] = mustPrefix(t, "0.0.0.0/0")
	if got, want := c.TrustedProxies[0], mustPrefix(t, "10.0.0.0/8"); got != want {
		t.Errorf("clone() then edit original: TrustedProxies[0] = %v, want %v", got, want)
	}
	if got, want := c.Header, "Cf-Connecting-Ip"; got != want {
		t.Errorf("clone().Header = %q, want %q", got, want)
	}
	if got, want := c.IPv6Prefix, 64; got != want {
		t.Errorf("clone().IPv6Prefix = %d, want %d", got, want)
	}
}

func TestResolveHotPathAllocs(t *testing.T) {
	c := ClientIP{TrustedProxies: prefixes(t, "10.0.0.0/8")}
	tests := []struct {
		name string
		r    *http.Request
	}{
		{"untrusted ipv4", newReq(t, "192.0.2.1:1234")},
		{"untrusted ipv6", newReq(t, "[2001:db8::1]:1234")},
		{"untrusted with spoofed xff", newReq(t, "192.0.2.1:1234", "X-Forwarded-For", "203.0.113.9")},
		{"trusted xff", newReq(t, "10.0.0.1:1234", "X-Forwarded-For", "198.51.100.1, 203.0.113.9, 10.0.0.2")},
		{"trusted forwarded", newReq(t, "10.0.0.1:1234", "Forwarded", `for="[2001:db8::1]:80", for=10.0.0.2`)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(100, func() { c.resolve(tc.r) }); n != 0 {
				t.Errorf("resolve(%s) allocs = %v, want 0", tc.name, n)
			}
		})
	}
}

// BenchmarkResolve measures finding a request's client bucket: the hot
// path (untrusted peer), and chains of growing length behind a proxy.
func BenchmarkResolve(b *testing.B) {
	c := ClientIP{TrustedProxies: prefixes(b, "10.0.0.0/8", "172.16.0.0/12")}
	chain := func(n int) string {
		hops := make([]string, n)
		for i := range hops {
			hops[i] = "10.0.0." + strconv.Itoa(i%250+1)
		}
		hops[0] = "203.0.113.9"
		return strings.Join(hops, ", ")
	}
	cases := []struct {
		name string
		r    *http.Request
	}{
		{"untrusted/ipv4", newReq(b, "192.0.2.1:1234")},
		{"untrusted/ipv6", newReq(b, "[2001:db8::1]:1234")},
		{"untrusted/spoofed", newReq(b, "192.0.2.1:1234", "X-Forwarded-For", "203.0.113.9", "Forwarded", "for=203.0.113.9")},
		{"trusted/xff=1", newReq(b, "10.0.0.1:1234", "X-Forwarded-For", chain(1))},
		{"trusted/xff=4", newReq(b, "10.0.0.1:1234", "X-Forwarded-For", chain(4))},
		{"trusted/xff=64", newReq(b, "10.0.0.1:1234", "X-Forwarded-For", chain(64))},
		{"trusted/forwarded=4", newReq(b, "10.0.0.1:1234", "Forwarded", `for="[2001:db8::1]:80";proto=https, for=10.0.0.2, for=10.0.0.3, for=10.0.0.4`)},
		{"trusted/xff=10000", newReq(b, "10.0.0.1:1234", "X-Forwarded-For", chain(10000))},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.resolve(tc.r)
			}
		})
	}
}

// FuzzClientIP checks resolve against an obviously correct model built on
// strings.Split, that the answer is a peer or a hop the walk may reach, and
// that rewriting every address in another notation changes nothing.
// xffLines holds X-Forwarded-For lines separated by "\n"; trusted is a list
// of prefixes separated by commas or spaces (unparseable ones are dropped).
func FuzzClientIP(f *testing.F) {
	f.Fuzz(func(t *testing.T, remoteAddr, xffLines, trusted string) {
		c := ClientIP{}
		for _, s := range strings.FieldsFunc(trusted, func(r rune) bool { return r == ',' || r == ' ' }) {
			if p, err := netip.ParsePrefix(s); err == nil && !p.Addr().Is4In6() {
				c.TrustedProxies = append(c.TrustedProxies, p)
			}
		}
		if err := c.validate(); err != nil {
			t.Fatalf("validate() = %v for a config built from valid prefixes", err)
		}
		var lines []string
		if xffLines != "" {
			lines = strings.Split(xffLines, "\n")
		}

		got := c.resolve(xffRequest(remoteAddr, lines))
		if !got.IsValid() || got != got.Masked() {
			t.Fatalf("resolve(%q, %q) = %v, want a valid masked prefix", remoteAddr, lines, got)
		}
		if a := got.Addr(); (a.Is4() && got.Bits() != 32) || (a.Is6() && got.Bits() != 64) || a.Is4In6() || a.Zone() != "" {
			t.Fatalf("resolve(%q, %q) = %v, want an unmapped IPv4 /32 or IPv6 /64", remoteAddr, lines, got)
		}
		if want := modelResolve(&c, remoteAddr, lines); got != want {
			t.Fatalf("resolve(%q, %q) = %v, want %v (model)", remoteAddr, lines, got, want)
		}

		// The same chain written as RFC 7239 for= nodes must name the same
		// client, alone or beside X-Forwarded-For.
		if fwd, ok := asForwarded(lines); ok && chainBytes(fwd) <= forwarded.MaxBytes {
			r := xffRequest(remoteAddr, nil)
			r.Header["Forwarded"] = fwd
			if alt := c.resolve(r); alt != got {
				t.Fatalf("resolve(%q, Forwarded %q) = %v, want %v as for X-Forwarded-For %q", remoteAddr, fwd, alt, got, lines)
			}
			r = xffRequest(remoteAddr, lines)
			r.Header["Forwarded"] = fwd
			if alt := c.resolve(r); alt != got {
				t.Fatalf("resolve(%q, both %q) = %v, want %v", remoteAddr, fwd, alt, got)
			}
		}

		altRemote := altNode(remoteAddr)
		altLines := make([]string, len(lines))
		for i, l := range lines {
			elems := strings.Split(l, ",")
			for j, e := range elems {
				elems[j] = altNode(forwarded.TrimOWS(e))
			}
			altLines[i] = strings.Join(elems, ",")
		}
		if (chainBytes(lines) > forwarded.MaxBytes) != (chainBytes(altLines) > forwarded.MaxBytes) {
			return // the rewrite crossed the size bound; nothing to compare
		}
		if alt := c.resolve(xffRequest(altRemote, altLines)); alt != got {
			t.Fatalf("resolve(%q, %q) = %v, but resolve(%q, %q) = %v, want equal", remoteAddr, lines, got, altRemote, altLines, alt)
		}
	})
}

// asForwarded rewrites X-Forwarded-For lines as Forwarded lines, each hop a
// quoted for= node. It reports false for hops that cannot be quoted.
func asForwarded(lines []string) ([]string, bool) {
	fwd := make([]string, len(lines))
	for i, l := range lines {
		elems := strings.Split(l, ",")
		for j, e := range elems {
			e = forwarded.TrimOWS(e)
			if strings.ContainsAny(e, `"\`) {
				return nil, false
			}
			elems[j] = `for="` + e + `";proto=https`
		}
		fwd[i] = strings.Join(elems, ", ")
	}
	return fwd, true
}

func xffRequest(remote string, lines []string) *http.Request {
	r := &http.Request{RemoteAddr: remote, Header: http.Header{}}
	if len(lines) > 0 {
		r.Header["X-Forwarded-For"] = lines
	}
	return r
}

func chainBytes(lines []string) int {
	n := 0
	for _, l := range lines {
		n += len(l)
	}
	return n
}

// modelResolve is resolve for X-Forwarded-For, written for clarity.
func modelResolve(c *ClientIP, remote string, lines []string) netip.Prefix {
	peer, ok := forwarded.ParseNode(remote)
	if !ok {
		return unknownPeer()
	}
	if !c.trusted(peer) || len(lines) == 0 || len(lines) > forwarded.MaxHops || chainBytes(lines) > forwarded.MaxBytes {
		return c.bucket(peer)
	}
	var hops []string
	for _, l := range lines {
		hops = append(hops, strings.Split(l, ",")...)
	}
	if len(hops) > forwarded.MaxHops {
		return c.bucket(peer)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := forwarded.ParseNode(strings.Trim(hops[i], " \t"))
		if !ok {
			return c.bucket(peer)
		}
		if i == 0 || !c.trusted(a) {
			return c.bucket(a)
		}
	}
	panic("unreachable: the loop returns at i == 0")
}

// altNode writes an address node in another notation for the same address:
// IPv4 as IPv4-mapped IPv6, IPv4-mapped as IPv4, IPv6 fully expanded. Other
// strings, and zoned addresses, are returned unchanged.
func altNode(s string) string {
	alt := func(a netip.Addr) (string, bool) {
		switch {
		case a.Zone() != "":
			return "", false
		case a.Is4():
			return "::ffff:" + a.String(), true
		case a.Is4In6():
			return a.Unmap().String(), true
		}
		return a.StringExpanded(), true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		if v, ok := alt(a); ok {
			return v
		}
		return s
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		if v, ok := alt(ap.Addr()); ok {
			if strings.Contains(v, ":") {
				v = "[" + v + "]"
			}
			return v + ":" + strconv.Itoa(int(ap.Port()))
		}
	}
	return s
}

// serveWith returns a function that sends one request through a default
// Limiter (60/min, 2/s) on a memory store whose fake clock never moves, so
// "within a second" is exact, and returns the status.
func serveWith(t *testing.T, c ClientIP) func(peer string, kv ...string) int {
	t.Helper()
	s, err := memory.New(memory.Config{Now: storetest.NewClock(storetest.Start).Now})
	if err != nil {
		t.Fatalf("memory.New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	lim, err := New(Config{Store: s, ClientIP: c})
	if err != nil {
		t.Fatalf("New(ClientIP %+v): %v", c, err)
	}
	t.Cleanup(func() { lim.Close() })
	h := lim.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	return func(peer string, kv ...string) int {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = peer
		for i := 0; i+1 < len(kv); i += 2 {
			r.Header.Add(kv[i], kv[i+1])
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
}

// admitted counts the 200s among codes and fails on any 5xx.
func admitted(t *testing.T, codes []int) int {
	t.Helper()
	n := 0
	for _, c := range codes {
		switch {
		case c >= 500:
			t.Errorf("status %d, want no 5xx (all: %v)", c, codes)
		case c == http.StatusOK:
			n++
		}
	}
	return n
}

// TestClientAddressesEndToEnd runs catalogue cases 16 to 19 through the Limiter:
// requests that resolve to one bucket get 2 admissions between them.
func TestClientAddressesEndToEnd(t *testing.T) {
	trusted := ClientIP{TrustedProxies: prefixes(t, "10.0.0.0/8")}
	tests := []struct {
		name string
		c    ClientIP
		reqs func(i int) (peer string, kv []string)
		n    int
		want int // admitted
	}{
		{"16 untrusted peer, varying xff", trusted, func(i int) (string, []string) {
			return "127.0.0.1:1", []string{"X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i)}
		}, 3, 2},
		{"16 trusted peer, varying left hop", trusted, func(i int) (string, []string) {
			return "10.1.1.1:1", []string{"X-Forwarded-For", fmt.Sprintf("198.51.100.%d, 203.0.113.9", i)}
		}, 3, 2},
		{"16 trusted peer, distinct clients", trusted, func(i int) (string, []string) {
			return "10.1.1.1:1", []string{"X-Forwarded-For", fmt.Sprintf("198.51.100.1, 203.0.113.%d", i)}
		}, 10, 10},
		{"17 malformed chains fall back to the peer", trusted, func(i int) (string, []string) {
			chains := []string{"203.0.113.9, garbage, 10.2.2.2", "203.0.113.8, unknown", "203.0.113.7, , 10.2.2.2",
				"203.0.113.6,", strings.Repeat("203.0.113.5, ", 9999) + "203.0.113.5", "_hidden"}
			return "10.1.1.1:1", []string{"X-Forwarded-For", chains[i%len(chains)]}
		}, 6, 2},
		{"18 rotation inside a /64", ClientIP{}, func(i int) (string, []string) {
			return fmt.Sprintf("[2001:db8:1:2:%x:%x::%x]:1", i*97, i*13, i), nil
		}, 100, 2},
		{"18 rotation inside a /56", ClientIP{IPv6Prefix: 56}, func(i int) (string, []string) {
			return fmt.Sprintf("[2001:db8:1:2%02x:%x::%x]:1", i*2, i*13, i), nil
		}, 100, 2},
		{"19 notations of one address", ClientIP{}, func(i int) (string, []string) {
			return []string{"198.51.100.7:1", "[::ffff:198.51.100.7]:2", "[::ffff:c633:6407]:3"}[i], nil
		}, 3, 2},
		{"19 zones of one address", ClientIP{}, func(i int) (string, []string) {
			return []string{"[fe80::1]:1", "[fe80::1%eth0]:1", "[fe80::1%eth1]:1"}[i], nil
		}, 3, 2},
		{"19 1000 mapped clients", ClientIP{}, func(i int) (string, []string) {
			return fmt.Sprintf("[::ffff:198.18.%d.%d]:1", i/256, i%256), nil
		}, 1000, 1000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			do := serveWith(t, tc.c)
			codes := make([]int, tc.n)
			for i := range codes {
				peer, kv := tc.reqs(i)
				codes[i] = do(peer, kv...)
			}
			if got := admitted(t, codes); got != tc.want {
				t.Errorf("%d requests: admitted %d, want %d", tc.n, got, tc.want)
			}
		})
	}
}
