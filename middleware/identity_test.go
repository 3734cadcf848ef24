package middleware_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ratekit/ratekit/middleware"
	"github.com/ratekit/ratekit/window"
)

// Who is asking: key headers, Identify, the client address, exemptions.

// TestSpoofedForwardingHeaders: with no trusted proxy, forwarding headers
// cannot move a client to a fresh bucket (catalogue R15).
func TestSpoofedForwardingHeaders(t *testing.T) {
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

// TestUnknownKeysFallBackToIP: random invalid keys share the IP bucket
// and add at most one key to the store (catalogue R20).
func TestUnknownKeysFallBackToIP(t *testing.T) {
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

// TestKeyHeaderVariantsShareABucket: one key in X-API-Key and
// Authorization shares a bucket; malformed variants go to the IP bucket
// (catalogue R21).
func TestKeyHeaderVariantsShareABucket(t *testing.T) {
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

// TestHostileKeysNeverFail: hostile key values never cause a 5xx or a
// panic (catalogue R22).
func TestHostileKeysNeverFail(t *testing.T) {
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

// authn is an authentication middleware that found the caller in the
// X-Session header and said so with WithClient.
func authn(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if user, ok := strings.CutPrefix(r.Header.Get("X-Session"), "user:"); ok {
			c := middleware.Client{ID: user, Plan: r.Header.Get("X-Plan"), Exempt: user == "ops"}
			r = r.WithContext(middleware.WithClient(r.Context(), c))
		}
		next.ServeHTTP(w, r)
	})
}

// TestClientFromContext: two users an auth middleware identified, behind
// one address, count in buckets of their own, with their plans and
// exemptions; a request it did not identify counts against the address.
func TestClientFromContext(t *testing.T) {
	f := newFixture(t, middleware.Config{Identify: middleware.ClientFromContext,
		Plans: map[string]window.Policy{"pro": {Windows: []window.Window{{Length: time.Second, Limit: 5}}}}})
	h := authn(f.h)
	get := func(kv ...string) int {
		r := httptest.NewRequest("GET", "/v1/people", nil)
		r.RemoteAddr = "192.0.2.80:1" // one NAT for everybody
		for i := 0; i+1 < len(kv); i += 2 {
			r.Header.Set(kv[i], kv[i+1])
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	count := func(n int, kv ...string) (passed int) {
		for range n {
			if get(kv...) == 200 {
				passed++
			}
		}
		return passed
	}
	for _, tc := range []struct {
		name string
		kv   []string
		want int // of 8
	}{
		{"alice", []string{"X-Session", "user:alice"}, 2},
		{"bob, same address", []string{"X-Session", "user:bob"}, 2},
		{"carol on pro", []string{"X-Session", "user:carol", "X-Plan", "pro"}, 5},
		{"ops, exempt", []string{"X-Session", "user:ops"}, 8},
		{"anonymous: the address", nil, 2},
		{"another anonymous, same address", []string{"X-Session", "garbage"}, 0},
	} {
		if got := count(8, tc.kv...); got != tc.want {
			t.Errorf("%s: %d of 8 passed, want %d", tc.name, got, tc.want)
		}
	}
}

// TestIdentityPrecedence: Identify names the client before any key header
// is read, a valid key before the address; an empty ID from Identify, or
// none, goes on down the list.
func TestIdentityPrecedence(t *testing.T) {
	var seen atomic.Int64 // validator calls
	f := newFixture(t, middleware.Config{
		Identify: func(r *http.Request) (middleware.Client, bool) {
			switch v := r.Header.Get("X-User"); v {
			case "":
			case "nobody":
				return middleware.Client{}, true // ok, but no ID
			default:
				return middleware.Client{ID: v}, true
			}
			return middleware.Client{}, false
		},
		KeyValidator: func(_ context.Context, k string) (middleware.Client, bool) {
			seen.Add(1)
			return middleware.Client{ID: "key:" + k}, k == "K1"
		},
		Policy: window.Policy{Windows: []window.Window{{Length: time.Minute, Limit: 1}}},
	})
	// Each step's first request passes only if it lands in a fresh bucket.
	for _, tc := range []struct {
		name       string
		kv         []string
		code       int
		validators int64 // calls so far
	}{
		{"identified: no key read", []string{"X-User", "u1", "X-API-Key", "K1"}, 200, 0},
		{"same user, other key", []string{"X-User", "u1", "X-API-Key", "K2"}, 429, 0},
		{"the key alone: its own bucket", []string{"X-API-Key", "K1"}, 200, 1},
		{"empty ID: on to the key", []string{"X-User", "nobody", "X-API-Key", "K1"}, 429, 2},
		{"unknown key: the address", []string{"X-API-Key", "K2"}, 200, 3},
		{"nothing: the address", nil, 429, 3},
	} {
		if w := f.do("192.0.2.81:1", tc.kv...); w.Code != tc.code || seen.Load() != tc.validators {
			t.Errorf("%s: %d after %d validator calls, want %d after %d", tc.name, w.Code, seen.Load(), tc.code, tc.validators)
		}
	}
}

// TestCustomKeyHeader: with KeyHeaders X-API-Key, X-Client-ID, a known
// value in X-Client-ID counts against its own bucket and an unknown one
// against the address; Authorization is then not read at all.
func TestCustomKeyHeader(t *testing.T) {
	f := newFixture(t, middleware.Config{KeyHeaders: []string{"X-API-Key", "X-Client-ID"}, KeyValidator: validKeys("client-7"),
		Policy: window.Policy{Windows: []window.Window{{Length: time.Minute, Limit: 1}}}})
	for _, tc := range []struct {
		name string
		kv   []string
		code int
	}{
		{"known client id", []string{"X-Client-ID", "client-7"}, 200},
		{"known client id again", []string{"X-Client-ID", "client-7"}, 429},
		{"unknown client id: the address", []string{"X-Client-ID", "client-8"}, 200},
		{"bearer is not listed: the address", []string{"Authorization", "Bearer client-7"}, 429},
	} {
		if c := f.do("192.0.2.82:1", tc.kv...).Code; c != tc.code {
			t.Errorf("%s: %d, want %d", tc.name, c, tc.code)
		}
	}
}

// TestLongKeys: a JWT of a few KiB is a key; an 8 KiB value, over the
// default MaxKeyLen of 4 KiB, is none: it counts against the address and
// is never answered 5xx. The limit is configurable.
func TestLongKeys(t *testing.T) {
	jwt := "eyJhbGciOiJSUzI1NiJ9." + strings.Repeat("eyJzdWIiOiIxMjM0NTY3ODkwIn0", 120) + ".sig"
	long := strings.Repeat("a", 8<<10)
	f := newFixture(t, middleware.Config{KeyValidator: validKeys(jwt, long),
		Policy: window.Policy{Windows: []window.Window{{Length: time.Minute, Limit: 1}}}})
	if c := f.do("192.0.2.83:1", "Authorization", "Bearer "+jwt).Code; c != 200 {
		t.Fatalf("a %d-byte JWT: %d, want 200 in its own bucket", len(jwt), c)
	}
	if c := f.do("192.0.2.83:1", "X-API-Key", long).Code; c != 200 {
		t.Errorf("an 8 KiB value from the same address: %d, want 200 (the address's bucket, not the JWT's)", c)
	}
	if c := f.do("192.0.2.83:1", "X-API-Key", long).Code; c != 429 {
		t.Errorf("the 8 KiB value again: %d, want 429 (it counted against the address)", c)
	}
	g := newFixture(t, middleware.Config{KeyValidator: validKeys(long), MaxKeyLen: 16 << 10})
	if w := g.do("192.0.2.84:1", "X-API-Key", long); w.Code != 200 || w.Header().Get("X-RateLimit-Remaining") != "59" {
		t.Errorf("MaxKeyLen 16 KiB, an 8 KiB key: %d, want 200", w.Code)
	}
	if w := g.do("192.0.2.84:1"); w.Header().Get("X-RateLimit-Remaining") != "59" {
		t.Errorf("the address after the key's request: Remaining %s, want 59 (the key counted elsewhere)", w.Header().Get("X-RateLimit-Remaining"))
	}
}

// TestIdentifyPanics: a panicking Identify is a store failure: the failure
// policy answers, and the log names the hook.
func TestIdentifyPanics(t *testing.T) {
	rec := &recorder{}
	f := newFixture(t, middleware.Config{OnStoreError: middleware.FailClosed, Observer: rec,
		Identify: func(*http.Request) (middleware.Client, bool) { panic("session store bug") }})
	if w := f.do("192.0.2.85:1"); w.Code != 503 {
		t.Errorf("panicking Identify under FailClosed: %d, want 503", w.Code)
	}
	if logs := f.logs.String(); !strings.Contains(logs, "Identify panicked") || strings.Contains(logs, "session store bug") {
		t.Errorf("log: want the panic reported without its text; got %s", logs)
	}
	if !strings.Contains(fmt.Sprint(rec.calls), "error panic") {
		t.Errorf("observer calls %v, want a store error of kind panic", rec.calls)
	}
}

// TestClientFrom: the context form reads what WithClient stored, and
// nothing from a context without it.
func TestClientFrom(t *testing.T) {
	ctx := middleware.WithClient(context.Background(), middleware.Client{ID: "acct-1", Plan: "pro"})
	if c, ok := middleware.ClientFrom(ctx); !ok || c.ID != "acct-1" || c.Plan != "pro" {
		t.Errorf("ClientFrom = %+v, %v", c, ok)
	}
	if _, ok := middleware.ClientFrom(context.Background()); ok {
		t.Error("ClientFrom of a bare context found a client")
	}
}
