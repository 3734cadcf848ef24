package middleware_test

// Failure paths and trust edges found by review: each test fails on the code
// before its fix.

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ratekit/ratekit/middleware"
	"github.com/ratekit/ratekit/store"
	"github.com/ratekit/ratekit/store/memory"
	redisstore "github.com/ratekit/ratekit/store/redis"
	"github.com/ratekit/ratekit/window"
)

// planned returns a limiter on a shared-looking store (deny cache and
// breaker on) whose validator puts the one key "sk_live_abcdefghijklmnop"
// on the plan *plan names at each request.
func planned(t *testing.T, plan *atomic.Value, plans map[string]window.Policy) *fixture {
	t.Helper()
	sw := &switchableStore{Store: newFixture(t, middleware.Config{}).store}
	return newFixture(t, middleware.Config{Store: sw, HashKey: []byte("k"), Plans: plans,
		KeyValidator: func(context.Context, string) (middleware.Client, bool) {
			return middleware.Client{ID: "acct-1", Plan: plan.Load().(string)}, true
		}})
}

const plannedKey = "sk_live_abcdefghijklmnop"

// TestDenyCacheFollowsPlanUpgrade: a client refused under a small plan that
// upgrades is asked about under its new plan, not refused from the old
// plan's cached answer.
func TestDenyCacheFollowsPlanUpgrade(t *testing.T) {
	var plan atomic.Value
	plan.Store("free")
	f := planned(t, &plan, map[string]window.Policy{
		"free": {Windows: []window.Window{{Length: time.Hour, Limit: 1}}},
		"pro":  {Windows: []window.Window{{Length: time.Hour, Limit: 1000}}},
	})
	f.do("192.0.2.1:1", "X-API-Key", plannedKey)
	if c := f.do("192.0.2.1:1", "X-API-Key", plannedKey).Code; c != 429 {
		t.Fatalf("second request on free (1/h): %d, want 429", c)
	}
	plan.Store("pro")
	if w := f.do("192.0.2.1:1", "X-API-Key", plannedKey); w.Code != 200 {
		t.Errorf("after the upgrade to pro (1000/h, 1 used): %d, Retry-After %s; want 200", w.Code, w.Header().Get("Retry-After"))
	}
}

// TestDenyCacheFollowsPlanDowngrade: a refusal by the second window of a
// two-window plan, cached, must not be replayed against a one-window plan
// (it used to index past the plan's windows and panic the handler).
func TestDenyCacheFollowsPlanDowngrade(t *testing.T) {
	var plan atomic.Value
	plan.Store("pro")
	f := planned(t, &plan, map[string]window.Policy{
		"pro":  {Windows: []window.Window{{Length: time.Minute, Limit: 100}, {Length: time.Second, Limit: 1}}},
		"free": {Windows: []window.Window{{Length: time.Minute, Limit: 60}}},
	})
	f.do("192.0.2.1:1", "X-API-Key", plannedKey)
	if c := f.do("192.0.2.1:1", "X-API-Key", plannedKey).Code; c != 429 {
		t.Fatalf("second request on pro within a second: %d, want 429", c)
	}
	plan.Store("free")
	defer func() {
		if v := recover(); v != nil {
			t.Fatalf("request after the downgrade panicked: %v", v)
		}
	}()
	// free's 60/min shares the store key: 1 of 60 used, so admitted.
	if w := f.do("192.0.2.1:1", "X-API-Key", plannedKey); w.Code != 200 || w.Header().Get("X-Ratelimit-Remaining") != "58" {
		t.Errorf("after the downgrade: %d, Remaining %q; want 200, 58", w.Code, w.Header().Get("X-Ratelimit-Remaining"))
	}
}

// TestDenyCacheTTLBoundsResetOnAnotherInstance: Limiter.Reset on one
// instance clears the shared store and its own deny cache; another
// instance's cached refusal is repeated for at most DenyCacheTTL.
func TestDenyCacheTTLBoundsResetOnAnotherInstance(t *testing.T) {
	shared := adminStore{newFixture(t, middleware.Config{}).store}
	const ttl = 50 * time.Millisecond
	cfg := middleware.Config{Store: shared, HashKey: []byte("k"), DenyCacheTTL: ttl,
		Policy: window.Policy{Windows: []window.Window{{Length: time.Hour, Limit: 1}}}}
	a, b := newFixture(t, cfg), newFixture(t, cfg)
	a.do("192.0.2.9:1")
	// Refused in the millisecond of the admission, which counts until an
	// hour and a millisecond later (see window.Window): 3601 whole seconds.
	if w := a.do("192.0.2.9:1"); w.Code != 429 || w.Header().Get("Retry-After") != "3601" {
		t.Fatalf("second request on A: %d, Retry-After %s; want 429, 3601", w.Code, w.Header().Get("Retry-After"))
	}
	if err := b.lim.Reset(context.Background(), middleware.Who{IP: netip.MustParseAddr("192.0.2.9")}, ""); err != nil {
		t.Fatal(err)
	}
	time.Sleep(ttl + 10*time.Millisecond)
	if w := a.do("192.0.2.9:1"); w.Code != 200 {
		t.Errorf("A, %v after B reset the client: %d, Retry-After %s; want 200", ttl+10*time.Millisecond, w.Code, w.Header().Get("Retry-After"))
	}
}

// adminStore is a memory store with Admin that the limiter takes for a
// shared one: deny cache and breaker on.
type adminStore struct{ *memory.Store }

// slowDeadStore is a slotStore whose calls, while down, wait like a
// black-holed store's before failing.
type slowDeadStore struct {
	*slotStore
	wait time.Duration
}

func (s *slowDeadStore) Take(ctx context.Context, req store.Request) (window.Decision, error) {
	if s.down.Load() {
		s.takes.Add(1)
		time.Sleep(s.wait)
		return window.Decision{}, errors.New("i/o timeout")
	}
	return s.slotStore.Take(ctx, req)
}

func (s *slowDeadStore) Acquire(ctx context.Context, k store.Key, limit int, ttl time.Duration) (store.Lease, bool, error) {
	if s.down.Load() {
		s.acquires.Add(1)
		time.Sleep(s.wait)
		return store.Lease{}, false, errors.New("i/o timeout")
	}
	return s.slotStore.Acquire(ctx, k, limit, ttl)
}

// TestBreakerHalfOpenAsksNoSlots: while the half-open probe is in flight,
// other requests go to the failure policy at once; they used to ask the
// dead store for a concurrency slot and wait out its timeout.
func TestBreakerHalfOpenAsksNoSlots(t *testing.T) {
	dead := &slowDeadStore{slotStore: &slotStore{Store: newFixture(t, middleware.Config{}).store}, wait: 150 * time.Millisecond}
	// The cooldown outlasts the probe, so no request can replace it.
	f := newFixture(t, middleware.Config{Store: dead, HashKey: []byte("k"), Concurrency: 3,
		Breaker: middleware.Breaker{Failures: 1, Cooldown: 400 * time.Millisecond}})
	dead.down.Store(true)
	f.do("192.0.2.1:1") // opens the breaker
	time.Sleep(410 * time.Millisecond)
	takes := dead.takes.Load()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); f.do("192.0.2.2:1") }() // the probe, held 150ms
	for dead.takes.Load() == takes {
		time.Sleep(time.Millisecond) // until the probe is inside the store
	}
	before := dead.acquires.Load()
	start := time.Now()
	for range 4 {
		f.do("192.0.2.3:1")
	}
	took := time.Since(start)
	wg.Wait()
	if n := dead.acquires.Load() - before; n != 0 || took > 100*time.Millisecond {
		t.Errorf("breaker half-open: 4 requests made %d slot calls to the dead store and took %v; want none, no waiting", n, took)
	}
}

// TestStoreFailureCountsOncePerRequest: a request whose slot call and rate
// decision both fail is one failure for the breaker, so Failures: 4 opens
// it after the fourth request, not the second.
func TestStoreFailureCountsOncePerRequest(t *testing.T) {
	ss := &slotStore{Store: newFixture(t, middleware.Config{}).store}
	f := newFixture(t, middleware.Config{Store: ss, HashKey: []byte("k"), Concurrency: 3,
		Breaker: middleware.Breaker{Failures: 4, Cooldown: time.Hour}})
	ss.down.Store(true)
	for i := range 4 {
		takes := ss.takes.Load()
		f.do("192.0.2.1:1")
		if ss.takes.Load() == takes {
			t.Fatalf("request %d did not reach the store: the breaker opened after %d failed requests, want 4", i+1, i)
		}
	}
	takes := ss.takes.Load()
	f.do("192.0.2.1:1")
	if ss.takes.Load() != takes {
		t.Error("fifth request reached the store: the breaker did not open after 4 failed requests")
	}
}

// TestShadowRuleFailsOpen: a shadow rule never refuses, not even when the
// store is down and the failure policy is FailClosed.
func TestShadowRuleFailsOpen(t *testing.T) {
	sw := &switchableStore{Store: newFixture(t, middleware.Config{}).store}
	f := newFixture(t, middleware.Config{Store: sw, HashKey: []byte("k"), OnStoreError: middleware.FailClosed,
		Rules: []middleware.Rule{{Name: "trial", Shadow: true}}})
	sw.down.Store(true)
	if w := f.do("192.0.2.5:1"); w.Code != 200 || w.Header().Get("X-Ratelimit-Degraded") != "true" {
		t.Errorf("shadow rule, store down, FailClosed: %d, Degraded %q; want 200, true", w.Code, w.Header().Get("X-Ratelimit-Degraded"))
	}
	// A rule that is not shadow still fails closed.
	g := newFixture(t, middleware.Config{Store: sw, HashKey: []byte("k"), OnStoreError: middleware.FailClosed})
	if c := g.do("192.0.2.5:1").Code; c != 503 {
		t.Errorf("enforcing rule, store down, FailClosed: %d, want 503", c)
	}
}

// TestShadowRuleConcurrency: a request over a shadow rule's concurrency
// limit is reported, not refused, and like a refusal it takes nothing from
// the rate windows.
func TestShadowRuleConcurrency(t *testing.T) {
	threePerMinute := window.Policy{Windows: []window.Window{{Length: time.Minute, Limit: 3}}}
	f := newFixture(t, middleware.Config{Concurrency: 1,
		Rules: []middleware.Rule{{Policy: threePerMinute, Shadow: true}}})
	release, started := make(chan struct{}), make(chan struct{})
	h := f.lim.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Slow") != "" {
			close(started)
			<-release
		}
	}))
	send := func(slow bool) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = "192.0.2.1:1"
		if slow {
			r.Header.Set("X-Slow", "1")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); send(true) }() // holds the one slot; 1 of 3 used
	<-started
	w := send(false)
	close(release)
	wg.Wait()
	if w.Code != 200 || w.Header().Get("Retry-After") != "" || w.Header().Get("X-Ratelimit-Limited-By") != "concurrency" {
		t.Errorf("shadow rule, second request in flight with Concurrency 1: %d, Retry-After %q, Limited-By %q; want 200, none, concurrency",
			w.Code, w.Header().Get("Retry-After"), w.Header().Get("X-Ratelimit-Limited-By"))
	}
	if rem := send(false).Header().Get("X-Ratelimit-Remaining"); rem != "1" {
		t.Errorf("third request: Remaining %q, want 1 (the shadow refusal took nothing from 3/min)", rem)
	}
}

// TestValidatorPanicUnderLocalFallback: with LocalFallback, a key the
// validator panics on is decided by the client's address with the local
// limiter (it used to pass unlimited), and the log names neither the key
// nor the panic's text, which may quote it.
func TestValidatorPanicUnderLocalFallback(t *testing.T) {
	const key = "sk_boom_secretsecret01"
	f := newFixture(t, middleware.Config{OnStoreError: middleware.LocalFallback,
		Policy: window.Policy{Windows: []window.Window{{Length: time.Hour, Limit: 2}}},
		KeyValidator: func(_ context.Context, k string) (middleware.Client, bool) {
			if k == key {
				panic("no account for key " + k)
			}
			return middleware.Client{}, false
		}})
	passed := 0
	for range 10 {
		w := f.do("192.0.2.77:1", "X-API-Key", key)
		if w.Code == 200 {
			passed++
		}
		if w.Header().Get("X-Ratelimit-Degraded") != "true" {
			t.Fatalf("answer without X-RateLimit-Degraded: %d %v", w.Code, w.Header())
		}
	}
	if passed != 2 {
		t.Errorf("LocalFallback, 2/h: %d of 10 requests with a key the validator panics on passed, want 2", passed)
	}
	if logs := f.logs.String(); !strings.Contains(logs, "validator panicked") || strings.Contains(logs, key) || strings.Contains(logs, "no account") {
		t.Errorf("log: want the panic reported without its text or the key; got %s", logs)
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

// TestBreakerHalfOpenBlackHoledRedis: the same as
// TestBreakerHalfOpenAsksNoSlots with the real Redis store in front of an
// address that accepts connections and never answers.
func TestBreakerHalfOpenBlackHoledRedis(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // accepted, never answered
			mu.Unlock()
		}
	}()
	client := goredis.NewClient(&goredis.Options{Addr: ln.Addr().String(), ContextTimeoutEnabled: true, MaxRetries: -1})
	t.Cleanup(func() { client.Close() })
	const timeout = 300 * time.Millisecond
	st, err := redisstore.New(client, redisstore.Config{Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	halfOpen := &breakerWatch{recorder: &recorder{}, halfOpen: make(chan struct{})}
	// The cooldown outlasts the probe, so no request can replace it.
	f := newFixture(t, middleware.Config{Store: st, HashKey: []byte("k"), Concurrency: 3, Observer: halfOpen,
		Breaker: middleware.Breaker{Failures: 2, Cooldown: 2 * timeout}})
	get := func(peer string) time.Duration {
		start := time.Now()
		f.do(peer)
		return time.Since(start)
	}
	for range 2 { // one failure per request: the second opens the breaker
		get("192.0.2.1:1")
	}
	if d := get("192.0.2.1:1"); d > timeout/3 {
		t.Fatalf("breaker not open after 2 failed requests: a request took %v", d)
	}
	time.Sleep(2*timeout + 10*time.Millisecond)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); get("192.0.2.2:1") }() // the probe
	<-halfOpen.halfOpen
	var slow atomic.Int64
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if get("192.0.2.3:1") > timeout/3 {
				slow.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := slow.Load(); n > 0 {
		t.Errorf("breaker half-open: %d of 5 requests waited for the black-holed store", n)
	}
}

// breakerWatch is a recorder that closes halfOpen when the breaker first
// turns half-open.
type breakerWatch struct {
	*recorder
	once     sync.Once
	halfOpen chan struct{}
}

func (b *breakerWatch) ObserveBreaker(state int) {
	b.recorder.ObserveBreaker(state)
	if state == 1 {
		b.once.Do(func() { close(b.halfOpen) })
	}
}

// TestValidatorPanicLogThrottled: a client sending a key the validator
// panics on gets one log line a second, not one per request; every panic
// is still counted.
func TestValidatorPanicLogThrottled(t *testing.T) {
	rec := &recorder{}
	f := newFixture(t, middleware.Config{Observer: rec,
		KeyValidator: func(context.Context, string) (middleware.Client, bool) { panic("validator bug") }})
	for range 100 {
		f.do("192.0.2.1:1", "X-API-Key", "sk_live_abcdefghijklmnop")
	}
	if n := strings.Count(f.logs.String(), "validator panicked"); n != 1 {
		t.Errorf("100 panics within a second: %d log lines, want 1", n)
	}
	panics := 0
	rec.mu.Lock()
	for _, c := range rec.calls {
		if c == "error panic" {
			panics++
		}
	}
	rec.mu.Unlock()
	if panics != 100 {
		t.Errorf("observer saw %d panics, want 100", panics)
	}
}
