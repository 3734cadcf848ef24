package middleware_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ratekit/ratekit/headers"
	"github.com/ratekit/ratekit/middleware"
	"github.com/ratekit/ratekit/store"
	"github.com/ratekit/ratekit/store/memory"
	"github.com/ratekit/ratekit/store/storetest"
	"github.com/ratekit/ratekit/window"
)

var ok = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Write([]byte(`[{"name":"Ada"}]`))
})

// fixture is a limiter on a memory store with a fake clock.
type fixture struct {
	lim   *middleware.Limiter
	h     http.Handler
	clk   *storetest.Clock
	store *memory.Store
	logs  *bytes.Buffer
}

func newFixture(t *testing.T, cfg middleware.Config) *fixture {
	t.Helper()
	f := &fixture{clk: storetest.NewClock(storetest.Start), logs: new(bytes.Buffer)}
	s, err := memory.New(memory.Config{Now: f.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	f.store = s
	if cfg.Store == nil {
		cfg.Store = s
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(f.logs, nil))
	}
	f.lim, err = middleware.New(cfg)
	if err != nil {
		t.Fatalf("middleware.New: %v", err)
	}
	t.Cleanup(func() { f.lim.Close() })
	f.h = f.lim.Handler(ok)
	return f
}

// do sends a GET from peer with header pairs and returns the recorder.
func (f *fixture) do(peer string, kv ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", "/v1/people", nil)
	r.RemoteAddr = peer
	for i := 0; i+1 < len(kv); i += 2 {
		r.Header.Add(kv[i], kv[i+1])
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	return w
}

func validKeys(keys ...string) func(context.Context, string) (middleware.Client, bool) {
	return func(_ context.Context, k string) (middleware.Client, bool) {
		for _, v := range keys {
			if k == v {
				return middleware.Client{}, true
			}
		}
		return middleware.Client{}, false
	}
}

func TestLindrisContract(t *testing.T) {
	f := newFixture(t, middleware.Config{})
	type want struct {
		status                            int
		remaining, remainingSecond, reset string
		limitedBy, retryAfter             string
	}
	for i, tc := range []struct {
		at time.Duration
		want
	}{
		// The first request counts in the second until the clock reads
		// more than a second after it (see window.Window): 1.001s, which
		// whole seconds round up to 2.
		{0, want{200, "59", "1", "2", "second", ""}},
		{300 * time.Millisecond, want{200, "58", "0", "1", "second", ""}},
		{600 * time.Millisecond, want{429, "58", "0", "1", "second", "1"}},
		{1000 * time.Millisecond, want{429, "58", "0", "1", "second", "1"}},
		{1001 * time.Millisecond, want{200, "57", "0", "1", "second", ""}},
	} {
		f.clk.Set(storetest.Start.Add(tc.at))
		w := f.do("192.0.2.1:1234")
		h := w.Header()
		got := want{w.Code, h.Get("X-RateLimit-Remaining"), h.Get("X-RateLimit-Remaining-Second"),
			h.Get("X-RateLimit-Reset"), h.Get("X-RateLimit-Limited-By"), h.Get("Retry-After")}
		if got != tc.want {
			t.Errorf("request %d at +%v: got %+v, want %+v", i, tc.at, got, tc.want)
		}
		if h.Get("X-RateLimit-Limit") != "60" || h.Get("X-RateLimit-Limit-Second") != "2" {
			t.Errorf("request %d: limits %q/%q, want 60/2", i, h.Get("X-RateLimit-Limit"), h.Get("X-RateLimit-Limit-Second"))
		}
		if w.Code == 429 {
			if ct := h.Get("Content-Type"); ct != "application/json" {
				t.Errorf("429 Content-Type = %q", ct)
			}
			// Eight fields at most: a Go map of up to eight entries
			// fits in one group, and net/http pays for a ninth twice
			// per response (see refuse).
			if len(h) > 8 {
				t.Errorf("429 has %d header fields, want at most 8: %v", len(h), slices.Sorted(maps.Keys(h)))
			}
			var body struct {
				Message    string `json:"message"`
				StatusCode int    `json:"status_code"`
				RetryAfter int    `json:"retry_after"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("429 body %q: %v", w.Body, err)
			}
			if body.StatusCode != 429 || body.RetryAfter != 1 || body.Message == "" {
				t.Errorf("429 body = %+v", body)
			}
		}
	}
}

// TestR03ConcurrentRequests: 1,000 simultaneous requests from one client
// through the middleware give exactly 2 × 200 and 998 × 429.
func TestR03ConcurrentRequests(t *testing.T) {
	f := newFixture(t, middleware.Config{})
	codes := make(chan int, 1000)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			codes <- f.do("198.51.100.7:5555").Code
		}()
	}
	close(start)
	wg.Wait()
	close(codes)
	count := map[int]int{}
	for c := range codes {
		count[c]++
	}
	if count[200] != 2 || count[429] != 998 || len(count) != 2 {
		t.Errorf("status counts = %v, want 2×200 and 998×429", count)
	}
}

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

// failingStore fails every call.
type failingStore struct{ err error }

func (s failingStore) Take(context.Context, store.Request) (window.Decision, error) {
	return window.Decision{}, s.err
}
func (failingStore) Close() error { return nil }

// TestR31FailurePolicies: a failing store is never answered with 429.
func TestR31FailurePolicies(t *testing.T) {
	down := failingStore{errors.New("dial tcp 127.0.0.1:6379: connect: connection refused")}
	t.Run("open", func(t *testing.T) {
		f := newFixture(t, middleware.Config{Store: down, HashKey: []byte("k")})
		for range 5 {
			w := f.do("192.0.2.1:1")
			if w.Code != 200 || w.Header().Get("X-RateLimit-Degraded") != "true" {
				t.Fatalf("fail-open: status %d degraded %q, want 200 true", w.Code, w.Header().Get("X-RateLimit-Degraded"))
			}
		}
		if n := strings.Count(f.logs.String(), "store failed"); n != 1 {
			t.Errorf("logged %d store failures for 5 requests in a second, want 1:\n%s", n, f.logs)
		}
	})
	t.Run("closed", func(t *testing.T) {
		f := newFixture(t, middleware.Config{Store: down, HashKey: []byte("k"), OnStoreError: middleware.FailClosed})
		w := f.do("192.0.2.1:1")
		if w.Code != 503 || w.Header().Get("Retry-After") != "1" {
			t.Fatalf("fail-closed: status %d Retry-After %q, want 503 1", w.Code, w.Header().Get("Retry-After"))
		}
		var body map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body["status_code"] != float64(503) {
			t.Fatalf("fail-closed body %q (%v)", w.Body, err)
		}
		if strings.Contains(w.Body.String(), "refused") {
			t.Errorf("error text leaked into the body: %s", w.Body)
		}
	})
}

// TestR44ClientDisconnect: a request whose context is already cancelled is
// not counted at all.
func TestR44ClientDisconnect(t *testing.T) {
	f := newFixture(t, middleware.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 5 {
		r := httptest.NewRequest("GET", "/", nil).WithContext(ctx)
		r.RemoteAddr = "192.0.2.50:1"
		f.h.ServeHTTP(httptest.NewRecorder(), r)
	}
	if w := f.do("192.0.2.50:1"); w.Code != 200 || w.Header().Get("X-RateLimit-Remaining") != "59" {
		t.Errorf("after 5 cancelled requests: %d remaining %s, want 200 and 59", w.Code, w.Header().Get("X-RateLimit-Remaining"))
	}
}

// TestR45PanickingHooks: a panicking validator is recovered into the
// failure policy; the process survives.
func TestR45PanickingHooks(t *testing.T) {
	f := newFixture(t, middleware.Config{
		KeyValidator: func(context.Context, string) (middleware.Client, bool) { panic("validator bug") },
		OnStoreError: middleware.FailClosed,
	})
	if w := f.do("192.0.2.1:1", "X-API-Key", "abc"); w.Code != 503 {
		t.Errorf("panicking validator: status %d, want 503 (fail-closed)", w.Code)
	}
	if !strings.Contains(f.logs.String(), "panicked") {
		t.Errorf("panic not logged: %s", f.logs)
	}
}

// TestR14InvalidConfigs: invalid configurations are errors, never panics.
func TestR14InvalidConfigs(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  middleware.Config
	}{
		{"empty policy", middleware.Config{Policy: window.Policy{Windows: []window.Window{}}}},
		{"zero limit", middleware.Config{Policy: window.Policy{Windows: []window.Window{{Length: time.Second}}}}},
		{"negative limit", middleware.Config{Policy: window.Policy{Windows: []window.Window{{Length: time.Second, Limit: -1}}}}},
		{"zero length", middleware.Config{Policy: window.Policy{Windows: []window.Window{{Limit: 5}}}}},
		{"sub-millisecond", middleware.Config{Policy: window.Policy{Windows: []window.Window{{Length: time.Microsecond, Limit: 5}}}}},
		{"too long", middleware.Config{Policy: window.Policy{Windows: []window.Window{{Length: 365 * 24 * time.Hour, Limit: 5}}}}},
		{"limit overflow", middleware.Config{Policy: window.Policy{Windows: []window.Window{{Length: time.Second, Limit: 1 << 40}}}}},
		{"unknown failure policy", middleware.Config{OnStoreError: 9}},
		{"shared store without hash key", middleware.Config{Store: failingStore{}}},
		{"bad ipv6 prefix", middleware.Config{ClientIP: middleware.ClientIP{IPv6Prefix: 129}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lim, err := middleware.New(tc.cfg)
			if !errors.Is(err, middleware.ErrInvalidConfig) {
				t.Errorf("New error = %v, want ErrInvalidConfig", err)
			}
			if lim != nil {
				lim.Close()
			}
		})
	}
}

func TestConfigIsCopied(t *testing.T) {
	cfg := middleware.Config{Policy: window.Policy{Windows: []window.Window{{Length: time.Second, Limit: 1}}}}
	f := newFixture(t, cfg)
	cfg.Policy.Windows[0].Limit = 100
	f.do("192.0.2.1:1")
	if c := f.do("192.0.2.1:1").Code; c != 429 {
		t.Errorf("editing the caller's policy after New changed the limiter: status %d", c)
	}
}

// TestPolicyIsACopy: Policy reports the default policy, and editing what
// it returns changes nothing in the limiter.
func TestPolicyIsACopy(t *testing.T) {
	f := newFixture(t, middleware.Config{Policy: window.Policy{Windows: []window.Window{{Length: time.Second, Limit: 1}}}})
	p := f.lim.Policy()
	if len(p.Windows) != 1 || p.Windows[0].Limit != 1 || p.Windows[0].Length != time.Second {
		t.Fatalf("Policy() = %+v; want 1 per second", p)
	}
	p.Windows[0].Limit = 100
	f.do("192.0.2.1:1")
	if c := f.do("192.0.2.1:1").Code; c != 429 {
		t.Errorf("editing the policy Policy returned changed the limiter: status %d", c)
	}
	if got := f.lim.Policy().Windows[0].Limit; got != 1 {
		t.Errorf("Policy() after editing a copy: limit %d, want 1", got)
	}
}

type panicStyle struct{}

func (panicStyle) WriteHeaders(http.Header, *headers.Input) { panic("style bug") }

type panicEnvelope struct{}

func (panicEnvelope) ContentType() string                      { return "text/plain" }
func (panicEnvelope) AppendBody([]byte, *headers.Input) []byte { panic("envelope bug") }

// TestR45PanickingRenderers: a panicking custom style goes to the failure
// policy; a panicking envelope falls back to the Lindris body. Both logged.
func TestR45PanickingRenderers(t *testing.T) {
	t.Run("style", func(t *testing.T) {
		f := newFixture(t, middleware.Config{Headers: panicStyle{}})
		if w := f.do("192.0.2.1:1"); w.Code != 200 || w.Header().Get("X-RateLimit-Degraded") != "true" {
			t.Errorf("panicking style, fail-open: %d degraded=%q", w.Code, w.Header().Get("X-RateLimit-Degraded"))
		}
		if !strings.Contains(f.logs.String(), "panicked") {
			t.Errorf("style panic not logged: %s", f.logs)
		}
	})
	t.Run("envelope", func(t *testing.T) {
		f := newFixture(t, middleware.Config{Envelope: panicEnvelope{}})
		f.do("192.0.2.1:1")
		f.do("192.0.2.1:1")
		w := f.do("192.0.2.1:1")
		var body map[string]any
		if w.Code != 429 || w.Header().Get("Content-Type") != "application/json" || json.Unmarshal(w.Body.Bytes(), &body) != nil || body["status_code"] != float64(429) {
			t.Errorf("panicking envelope: %d %q, want 429 with the Lindris body", w.Code, w.Body)
		}
	})
}

// switchableStore fails while down is set and otherwise delegates.
type switchableStore struct {
	store.Store
	down atomic.Bool
}

func (s *switchableStore) Take(ctx context.Context, req store.Request) (window.Decision, error) {
	if s.down.Load() {
		return window.Decision{}, errors.New("connection refused")
	}
	return s.Store.Take(ctx, req)
}

// TestR31LocalFallback: with the store down, each instance enforces its
// share of the limits locally and marks answers degraded; once the store
// answers again the shared limits apply to the very next request.
func TestR31LocalFallback(t *testing.T) {
	clk := storetest.NewClock(storetest.Start)
	shared, _ := memory.New(memory.Config{Now: clk.Now})
	defer shared.Close()
	sw := &switchableStore{Store: shared}
	sw.down.Store(true)
	p := window.Policy{Windows: []window.Window{{Length: time.Minute, Limit: 30}, {Length: time.Second, Limit: 30}}}
	var instances []*fixture
	for range 3 {
		instances = append(instances, newFixture(t, middleware.Config{Policy: p, Store: sw, HashKey: []byte("shared"),
			OnStoreError: middleware.LocalFallback, FallbackInstances: 3, Breaker: middleware.Breaker{Cooldown: 20 * time.Millisecond}}))
	}
	admitted := 0
	for i := range 90 {
		w := instances[i%3].do("192.0.2.7:1")
		if w.Header().Get("X-RateLimit-Degraded") != "true" {
			t.Fatalf("request %d during the outage: no degraded marker", i)
		}
		if w.Code == 200 {
			admitted++
		}
	}
	if admitted != 30 {
		t.Errorf("3 instances with limit 30/3 each admitted %d during the outage, want 30", admitted)
	}
	if got := instances[0].do("192.0.2.7:1").Header().Get("X-RateLimit-Limit"); got != "10" {
		t.Errorf("fallback X-RateLimit-Limit = %q, want 10", got)
	}
	sw.down.Store(false)
	time.Sleep(30 * time.Millisecond) // the breaker opened during the outage; let its cooldown pass
	w := instances[0].do("192.0.2.7:1")
	if w.Code != 200 || w.Header().Get("X-RateLimit-Degraded") != "" || w.Header().Get("X-RateLimit-Remaining") != "29" {
		t.Errorf("first request after recovery: %d degraded=%q remaining=%q, want 200, none, 29",
			w.Code, w.Header().Get("X-RateLimit-Degraded"), w.Header().Get("X-RateLimit-Remaining"))
	}
}

// countingStore counts the calls that reach the store behind it.
type countingStore struct {
	store.Store
	calls atomic.Int64
	down  atomic.Bool
}

func (s *countingStore) Take(ctx context.Context, req store.Request) (window.Decision, error) {
	s.calls.Add(1)
	if s.down.Load() {
		return window.Decision{}, errors.New("i/o timeout")
	}
	return s.Store.Take(ctx, req)
}

// TestDenyCacheAnswersRejectionsLocally: once a shared store rejects a key,
// its next requests within Retry-After get the same 429 without a call.
func TestDenyCacheAnswersRejectionsLocally(t *testing.T) {
	cs := &countingStore{Store: newFixture(t, middleware.Config{}).store}
	rec := &recorder{}
	f := newFixture(t, middleware.Config{Store: cs, HashKey: []byte("k"), Observer: rec})
	var codes []int
	for range 12 {
		codes = append(codes, f.do("192.0.2.8:1").Code)
	}
	if fmt.Sprint(codes[:3]) != "[200 200 429]" || slices.ContainsFunc(codes[3:], func(c int) bool { return c != 429 }) {
		t.Errorf("statuses %v, want 200 200 then 429s", codes)
	}
	if got := cs.calls.Load(); got != 3 {
		t.Errorf("store calls = %d for 12 requests, want 3 (the rest answered by the deny cache)", got)
	}
	hits := 0
	for _, c := range rec.calls {
		if c == "deny-cache-hit" {
			hits++
		}
	}
	if hits != 9 {
		t.Errorf("deny cache hits observed = %d, want 9", hits)
	}
	// Another client is not affected.
	if c := f.do("192.0.2.9:1").Code; c != 200 || cs.calls.Load() != 4 {
		t.Errorf("another client: %d after %d calls, want 200 and 4", c, cs.calls.Load())
	}
}

// TestR38CircuitBreaker: after 5 consecutive failures the store is not
// called for the cooldown; one probe closes the breaker after recovery.
func TestR38CircuitBreaker(t *testing.T) {
	cs := &countingStore{Store: newFixture(t, middleware.Config{}).store}
	cs.down.Store(true)
	rec := &recorder{}
	f := newFixture(t, middleware.Config{Store: cs, HashKey: []byte("k"), Observer: rec,
		Breaker: middleware.Breaker{Failures: 5, Cooldown: 50 * time.Millisecond}})
	for i := range 100 {
		if w := f.do(fmt.Sprintf("192.0.2.%d:1", i%200)); w.Code != 200 || w.Header().Get("X-RateLimit-Degraded") != "true" {
			t.Fatalf("request %d with the store down: %d, want fail-open 200", i, w.Code)
		}
	}
	if got := cs.calls.Load(); got != 5 {
		t.Fatalf("store calls with the breaker open = %d, want 5", got)
	}
	cs.down.Store(false)
	time.Sleep(60 * time.Millisecond)
	for i := range 10 {
		if w := f.do(fmt.Sprintf("192.0.3.%d:1", i)); w.Code != 200 || w.Header().Get("X-RateLimit-Degraded") != "" {
			t.Fatalf("request %d after recovery: %d degraded=%q", i, w.Code, w.Header().Get("X-RateLimit-Degraded"))
		}
	}
	if got := cs.calls.Load(); got != 15 {
		t.Errorf("store calls after recovery = %d, want 15 (probe closed the breaker)", got)
	}
	var states []string
	for _, c := range rec.calls {
		if strings.HasPrefix(c, "breaker") {
			states = append(states, c)
		}
	}
	if fmt.Sprint(states) != "[breaker 2 breaker 1 breaker 0]" {
		t.Errorf("breaker transitions %v, want open, half-open, closed", states)
	}
}

// nowStyle and nowEnvelope record the Input.Now they are given.
type nowStyle struct{ seen *atomic.Int64 }

func (s nowStyle) WriteHeaders(h http.Header, in *headers.Input) { s.seen.Store(in.Now.UnixNano()) }

type nowEnvelope struct{ seen *atomic.Int64 }

func (nowEnvelope) ContentType() string { return "text/plain" }
func (e nowEnvelope) AppendBody(dst []byte, in *headers.Input) []byte {
	e.seen.Store(in.Now.UnixNano())
	return append(dst, "slow down"...)
}

// TestClockReadWhenNeeded: the middleware skips its own clock read when
// nothing renders Input.Now, but a style or envelope that may read it (any
// but Lindris, Kinde, IETF) gets the wall-clock time, and Scalekit's
// timestamps are sent.
func TestClockReadWhenNeeded(t *testing.T) {
	var style, env atomic.Int64
	before := time.Now().UnixNano()
	f := newFixture(t, middleware.Config{Headers: headers.Multi(headers.Lindris{}, nowStyle{&style}), Envelope: nowEnvelope{&env}})
	for range 3 {
		f.do("192.0.2.1:1234")
	}
	if got := style.Load(); got < before {
		t.Errorf("custom style saw Now = %d, want a wall-clock time after %d", got, before)
	}
	if got := env.Load(); got < before {
		t.Errorf("custom envelope saw Now = %d on a 429, want a wall-clock time after %d", got, before)
	}

	env.Store(0)
	f = newFixture(t, middleware.Config{Envelope: nowEnvelope{&env}})
	for range 3 {
		f.do("192.0.2.1:1234")
	}
	if got := env.Load(); got < before {
		t.Errorf("custom envelope under Lindris saw Now = %d on a 429, want a wall-clock time after %d", got, before)
	}

	f = newFixture(t, middleware.Config{Headers: headers.Scalekit{}})
	w := f.do("192.0.2.1:1234")
	if reset, err := strconv.ParseInt(w.Header().Get("X-RateLimit-Reset"), 10, 64); err != nil || reset < before/1e9 {
		t.Errorf("Scalekit X-RateLimit-Reset = %q, want a Unix time", w.Header().Get("X-RateLimit-Reset"))
	}
}

// TestRequestAllocs holds the middleware's own work to no allocation per
// request, admitted or refused (Lindris headers and body, default
// envelope), and, with Scalekit, once its timestamp is cached. The store
// answers at once (fixedStore), so only the middleware is counted; the
// header map keeps its capacity as a server's would after the first
// request.
func TestRequestAllocs(t *testing.T) {
	admit := window.Decision{Allowed: true, Limiting: 1, N: 2}
	admit.Windows[0] = window.State{Limit: 60, Remaining: 59, Reset: time.Minute}
	admit.Windows[1] = window.State{Limit: 2, Remaining: 1, Reset: time.Second}
	refuse := admit
	refuse.Allowed, refuse.RetryAfter = false, 800*time.Millisecond
	refuse.Windows[1].Remaining = 0
	for _, tc := range []struct {
		name  string
		d     window.Decision
		style headers.Style
		code  int
	}{
		{"admitted", admit, nil, 200},
		{"refused", refuse, nil, 429},
		{"admitted/Multi(Kinde,Lindris)", admit, headers.Multi(headers.Kinde{}, headers.Lindris{}), 200},
		{"refused/Scalekit", refuse, headers.Scalekit{}, 429},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lim, err := middleware.New(middleware.Config{Store: &fixedStore{d: tc.d}, HashKey: []byte("k"), Headers: tc.style,
				Breaker: middleware.Breaker{Disabled: true}, DisableDenyCache: true})
			if err != nil {
				t.Fatal(err)
			}
			h := lim.Handler(noop)
			r := httptest.NewRequest("GET", "/v1/people", nil)
			r.RemoteAddr = "203.0.113.9:4711"
			w := &discardWriter{h: http.Header{}}
			serve := func() {
				clear(w.h)
				h.ServeHTTP(w, r)
			}
			serve()
			if want := tc.code; w.code != want && !(want == 200 && w.code == 0) { // noop writes no status
				t.Fatalf("status %d, want %d", w.code, want)
			}
			if n := testing.AllocsPerRun(200, serve); n != 0 {
				t.Errorf("%v allocations per request, want 0", n)
			}
		})
	}
}
