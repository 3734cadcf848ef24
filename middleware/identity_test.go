package middleware_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ratekit/ratekit/middleware"
)

// Who is asking: key headers, Identify, the client address, exemptions.

// TestR15SpoofedForwardingHeaders: with no trusted proxy, forwarding headers
// cannot move a client to a fresh bucket.
func TestR15SpoofedForwardingHeaders(t *testing.T) {
	f := newFixture(t, middleware.Config{})
	var last int
	for i := range 3 {
		ip := fmt.Sprintf("203.0.113.%d", i+1)
		last = f.do("192.0.2.9:4000",
			"X-Forwarded-For", ip, "X-Real-IP", ip, "Forwarded", "for="+ip,
			"True-Client-IP", ip, "CF-Connecting-IP", ip).Code
	}
	if last != 429 {
		t.Errorf("third spoofed request: status %d, want 429", last)
	}
}

// TestR20UnknownKeysFallBackToIP: random invalid keys share the IP bucket
// and add at most one key to the store.
func TestR20UnknownKeysFallBackToIP(t *testing.T) {
	f := newFixture(t, middleware.Config{KeyValidator: validKeys("good-key")})
	before := f.store.Len()
	var codes []int
	for i := range 3 {
		codes = append(codes, f.do("192.0.2.10:1", "X-API-Key", fmt.Sprintf("random-%d", i)).Code)
	}
	if codes[2] != 429 {
		t.Errorf("statuses %v, want the third 429", codes)
	}
	if grown := f.store.Len() - before; grown > 1 {
		t.Errorf("store grew by %d keys, want at most 1", grown)
	}
	// A valid key from the same address has its own bucket.
	if c := f.do("192.0.2.10:1", "X-API-Key", "good-key").Code; c != 200 {
		t.Errorf("valid key after the IP bucket filled: status %d, want 200", c)
	}
}

// TestR21HeaderVariants: one key in X-API-Key and Authorization shares a
// bucket; malformed variants go to the IP bucket.
func TestR21HeaderVariants(t *testing.T) {
	f := newFixture(t, middleware.Config{KeyValidator: validKeys("K123")})
	if c := f.do("192.0.2.20:1", "X-API-Key", "K123").Code; c != 200 {
		t.Fatalf("first: %d", c)
	}
	if c := f.do("192.0.2.21:1", "Authorization", "Bearer K123").Code; c != 200 {
		t.Fatalf("second: %d", c)
	}
	if c := f.do("192.0.2.22:1", "Authorization", "bearer K123").Code; c != 429 {
		t.Errorf("third request with the key (lower-case scheme) from a new address: %d, want 429", c)
	}
	// Malformed forms are not the key: they count against the address.
	for i, v := range []string{"xBearer K123", "Bearer K123,junk", "Bearer"} {
		peer := fmt.Sprintf("192.0.2.%d:1", 30+i)
		if c := f.do(peer, "Authorization", v).Code; c != 200 {
			t.Errorf("Authorization %q from a fresh address: %d, want 200 (IP bucket)", v, c)
		}
	}
}

// TestR22HostileKeys: hostile key values never cause a 5xx or a panic.
func TestR22HostileKeys(t *testing.T) {
	f := newFixture(t, middleware.Config{KeyValidator: validKeys("K")})
	hostile := []string{strings.Repeat("a", 8<<10), strings.Repeat("b", 512<<10), "{tag}", "a}{b",
		strings.Repeat("{", 300), "\xff\xfe", "a\x00b", "%00", "*", "' OR 1=1 --", "ключ"}
	for i, k := range hostile {
		for _, hdr := range []string{"X-API-Key", "Authorization"} {
			v := k
			if hdr == "Authorization" {
				v = "Bearer " + k
			}
			if c := f.do(fmt.Sprintf("192.0.2.%d:1", i+1), hdr, v).Code; c >= 500 {
				t.Errorf("%s: %.20q: status %d", hdr, k, c)
			}
		}
	}
}

// TestExemptIPsMatchTheAddress: exemptions are matched against the client
// address, not its (masked) IPv6 bucket.
func TestExemptIPsMatchTheAddress(t *testing.T) {
	f := newFixture(t, middleware.Config{Policy: twoPerMinute, ExemptIPs: []netip.Prefix{
		netip.MustParsePrefix("2001:db8::/120"), netip.MustParsePrefix("2001:db9::5/128")}})
	count := func(peer string) int {
		passed := 0
		for range 5 {
			if f.do(peer).Code == 200 {
				passed++
			}
		}
		return passed
	}
	if n := count("[2001:db8::dead:beef]:1"); n != 2 {
		t.Errorf("address outside the exempt /120 but in its /64: %d of 5 passed, want 2", n)
	}
	if n := count("[2001:db9::5]:1"); n != 5 {
		t.Errorf("exactly exempt address: %d of 5 passed, want 5", n)
	}
	if _, err := middleware.New(middleware.Config{ExemptIPs: []netip.Prefix{netip.MustParsePrefix("::ffff:10.0.0.0/104")}}); err == nil {
		t.Error("an IPv4-mapped exempt prefix was accepted")
	}
}

// TestSpoiledChainNeverExempt: behind trusted proxies whose network is also
// exempt (internal callers), an outside client that makes its forwarding
// chain unreadable counts as the proxy that forwarded it (catalogue test 17)
// but is never exempt for it: it used to pass unlimited. The proxies' own
// requests, with no chain, stay exempt.
func TestSpoiledChainNeverExempt(t *testing.T) {
	internal := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	const client = "203.0.113.9"
	spoiled := map[string][]string{
		"65 hops":                {"X-Forwarded-For", strings.Repeat("198.51.100.1, ", 64) + client},
		"over 8 KiB":             {"X-Forwarded-For", strings.Repeat("a", 8200) + ", " + client},
		"a Forwarded of its own": {"X-Forwarded-For", client, "Forwarded", "for=198.51.100.77"},
		"an unclosed quote":      {"Forwarded", `for="x, for=` + client},
		"garbage":                {"X-Forwarded-For", client + ", garbage"},
	}
	for name, kv := range spoiled {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, middleware.Config{Policy: twoPerMinute, ExemptIPs: internal,
				ClientIP: middleware.ClientIP{TrustedProxies: internal}})
			passed := 0
			for _, node := range []string{"10.1.1.1:5000", "10.1.1.2:5000", "10.1.1.3:5000"} {
				for range 5 {
					if f.do(node, kv...).Code == 200 {
						passed++
					}
				}
			}
			if passed != 6 {
				t.Errorf("15 spoiled requests through 3 exempt proxies, 2/min: %d passed, want 6 (each proxy's bucket, not exempt)", passed)
			}
			if c := f.do("10.1.1.1:5000").Code; c != 200 {
				t.Errorf("the proxy's own request: %d, want 200 (exempt)", c)
			}
		})
	}
}

func TestKeyCacheSparesTheValidator(t *testing.T) {
	var calls atomic.Int64
	f := newFixture(t, middleware.Config{
		KeyCacheTTL: time.Minute,
		KeyValidator: func(_ context.Context, key string) (middleware.Client, bool) {
			calls.Add(1)
			return middleware.Client{}, key == "good"
		},
	})
	for range 5 {
		f.do("192.0.2.68:1", "X-API-Key", "good")
		f.do("192.0.2.68:1", "X-API-Key", "bad")
	}
	if got := calls.Load(); got != 2 {
		t.Errorf("validator called %d times for 10 requests with 2 keys, want 2", got)
	}
}

func TestForwardingHeaderWarning(t *testing.T) {
	f := newFixture(t, middleware.Config{})
	f.do("192.0.2.69:1", "X-Forwarded-For", "203.0.113.1")
	f.do("192.0.2.69:1", "X-Forwarded-For", "203.0.113.2")
	if n := strings.Count(f.logs.String(), "no trusted proxy"); n != 1 {
		t.Errorf("forwarding-header warnings = %d, want 1:\n%s", n, f.logs)
	}
}
