package middleware_test

// What the limiter does when its store fails: the failure policies, the
// local fallback, the circuit breaker and the deny cache. Tests that wait
// for a cooldown or a TTL run in a synctest bubble, where time.Sleep
// advances a fake clock.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ratekit/ratekit/middleware"
	redisstore "github.com/ratekit/ratekit/store/redis"
	"github.com/ratekit/ratekit/store/storetest"
	"github.com/ratekit/ratekit/window"
)

// TestFailurePolicies: a failing store is never answered with 429; fail
// open admits with X-RateLimit-Degraded and logs once a second, fail closed
// answers 503 with Retry-After and the envelope, never the error's text
// (catalogue R31).
func TestFailurePolicies(t *testing.T) {
	down := newFaulty(t, nil)
	down.Fail(errRefused)
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

// TestLocalFallback: with the store down, each instance enforces its share
// of the limits locally and marks answers degraded; once the store answers
// again the shared limits apply to the very next request after the
// breaker's cooldown (catalogue R31).
func TestLocalFallback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sw := newFaulty(t, nil)
		sw.Fail(errRefused)
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
		sw.Fail(nil)
		time.Sleep(20 * time.Millisecond) // the breaker opened during the outage
		w := instances[0].do("192.0.2.7:1")
		if w.Code != 200 || w.Header().Get("X-RateLimit-Degraded") != "" || w.Header().Get("X-RateLimit-Remaining") != "29" {
			t.Errorf("first request after recovery: %d degraded=%q remaining=%q, want 200, none, 29",
				w.Code, w.Header().Get("X-RateLimit-Degraded"), w.Header().Get("X-RateLimit-Remaining"))
		}
	})
}

// TestCircuitBreaker: after 5 consecutive failures the store is not called
// for the cooldown; one probe closes the breaker after recovery, and the
// observer sees open, half-open, closed (catalogue R38).
func TestCircuitBreaker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cs := newFaulty(t, nil)
		cs.Fail(errTimeout)
		rec := &recorder{}
		f := newFixture(t, middleware.Config{Store: cs, HashKey: []byte("k"), Observer: rec,
			Breaker: middleware.Breaker{Failures: 5, Cooldown: 50 * time.Millisecond}})
		for i := range 100 {
			if w := f.do(fmt.Sprintf("192.0.2.%d:1", i%200)); w.Code != 200 || w.Header().Get("X-RateLimit-Degraded") != "true" {
				t.Fatalf("request %d with the store down: %d, want fail-open 200", i, w.Code)
			}
		}
		if got := cs.Takes(); got != 5 {
			t.Fatalf("store calls with the breaker open = %d, want 5", got)
		}
		cs.Fail(nil)
		time.Sleep(49 * time.Millisecond)
		f.do("192.0.2.250:1")
		if got := cs.Takes(); got != 5 {
			t.Fatalf("a request 1ms before the cooldown ends reached the store: %d calls, want 5", got)
		}
		time.Sleep(time.Millisecond)
		for i := range 10 {
			if w := f.do(fmt.Sprintf("192.0.3.%d:1", i)); w.Code != 200 || w.Header().Get("X-RateLimit-Degraded") != "" {
				t.Fatalf("request %d after recovery: %d degraded=%q", i, w.Code, w.Header().Get("X-RateLimit-Degraded"))
			}
		}
		if got := cs.Takes(); got != 15 {
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
	})
}

// TestDenyCacheAnswersRejectionsLocally: once a shared store rejects a key,
// its next requests within Retry-After get the same 429 without a call.
func TestDenyCacheAnswersRejectionsLocally(t *testing.T) {
	cs := newFaulty(t, nil)
	rec := &recorder{}
	f := newFixture(t, middleware.Config{Store: cs, HashKey: []byte("k"), Observer: rec})
	var codes []int
	for range 12 {
		codes = append(codes, f.do("192.0.2.8:1").Code)
	}
	if fmt.Sprint(codes[:3]) != "[200 200 429]" || slices.ContainsFunc(codes[3:], func(c int) bool { return c != 429 }) {
		t.Errorf("statuses %v, want 200 200 then 429s", codes)
	}
	if got := cs.Takes(); got != 3 {
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
	if c := f.do("192.0.2.9:1").Code; c != 200 || cs.Takes() != 4 {
		t.Errorf("another client: %d after %d calls, want 200 and 4", c, cs.Takes())
	}
}

// planned returns a limiter on a shared-looking store (deny cache and
// breaker on) whose validator puts the one key "sk_live_abcdefghijklmnop"
// on the plan *plan names at each request.
func planned(t *testing.T, plan *atomic.Value, plans map[string]window.Policy) *fixture {
	t.Helper()
	return newFixture(t, middleware.Config{Store: newFaulty(t, nil), HashKey: []byte("k"), Plans: plans,
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
	synctest.Test(t, func(t *testing.T) {
		shared := newFaulty(t, nil)
		const ttl = 50 * time.Millisecond
		cfg := middleware.Config{Store: shared, HashKey: []byte("k"), DenyCacheTTL: ttl,
			Policy: window.Policy{Windows: []window.Window{{Length: time.Hour, Limit: 1}}}}
		a, b := newFixture(t, cfg), newFixture(t, cfg)
		a.do("192.0.2.9:1")
		// Refused in the millisecond of the admission, which counts until
		// an hour and a millisecond later (see window.Window); the
		// clock's millisecond is no second to wait.
		if w := a.do("192.0.2.9:1"); w.Code != 429 || w.Header().Get("Retry-After") != "3600" {
			t.Fatalf("second request on A: %d, Retry-After %s; want 429, 3600", w.Code, w.Header().Get("Retry-After"))
		}
		if err := b.lim.Reset(context.Background(), middleware.Identity{Addr: netip.MustParseAddr("192.0.2.9")}, ""); err != nil {
			t.Fatal(err)
		}
		time.Sleep(ttl - time.Millisecond)
		if w := a.do("192.0.2.9:1"); w.Code != 429 {
			t.Errorf("A, within the TTL after B reset the client: %d; want 429 from its deny cache", w.Code)
		}
		time.Sleep(time.Millisecond)
		if w := a.do("192.0.2.9:1"); w.Code != 200 {
			t.Errorf("A, %v after B reset the client: %d, Retry-After %s; want 200", ttl, w.Code, w.Header().Get("Retry-After"))
		}
	})
}

// TestBreakerHalfOpenAsksNoSlots: while the half-open probe is in flight,
// other requests go to the failure policy at once; they used to ask the
// dead store for a concurrency slot and wait out its timeout.
func TestBreakerHalfOpenAsksNoSlots(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dead := newFaulty(t, nil)
		// The cooldown outlasts the probe, so no request can replace it.
		f := newFixture(t, middleware.Config{Store: dead, HashKey: []byte("k"), Concurrency: 3,
			Breaker: middleware.Breaker{Failures: 1, Cooldown: 400 * time.Millisecond}})
		dead.Set(storetest.Fault{Err: errTimeout, Delay: 150 * time.Millisecond})
		f.do("192.0.2.1:1") // opens the breaker
		time.Sleep(400 * time.Millisecond)
		takes := dead.Takes()
		var wg sync.WaitGroup
		wg.Go(func() { f.do("192.0.2.2:1") }) // the probe, held 150ms
		synctest.Wait()                       // the probe is inside the store
		if dead.Takes() != takes+1 {
			t.Fatalf("the probe made %d store calls, want 1", dead.Takes()-takes)
		}
		before := dead.Acquires()
		start := time.Now()
		for range 4 {
			f.do("192.0.2.3:1")
		}
		took := time.Since(start)
		wg.Wait()
		if n := dead.Acquires() - before; n != 0 || took != 0 {
			t.Errorf("breaker half-open: 4 requests made %d slot calls to the dead store and took %v; want none, no waiting", n, took)
		}
	})
}

// TestStoreFailureCountsOncePerRequest: a request whose slot call and rate
// decision both fail is one failure for the breaker, so Failures: 4 opens
// it after the fourth request, not the second.
func TestStoreFailureCountsOncePerRequest(t *testing.T) {
	ss := newFaulty(t, nil)
	f := newFixture(t, middleware.Config{Store: ss, HashKey: []byte("k"), Concurrency: 3,
		Breaker: middleware.Breaker{Failures: 4, Cooldown: time.Hour}})
	ss.Fail(errTimeout)
	for i := range 4 {
		takes := ss.Takes()
		f.do("192.0.2.1:1")
		if ss.Takes() == takes {
			t.Fatalf("request %d did not reach the store: the breaker opened after %d failed requests, want 4", i+1, i)
		}
	}
	takes := ss.Takes()
	f.do("192.0.2.1:1")
	if ss.Takes() != takes {
		t.Error("fifth request reached the store: the breaker did not open after 4 failed requests")
	}
}

// TestShadowRuleFailsOpen: a shadow rule never refuses, not even when the
// store is down and the failure policy is FailClosed.
func TestShadowRuleFailsOpen(t *testing.T) {
	sw := newFaulty(t, nil)
	f := newFixture(t, middleware.Config{Store: sw, HashKey: []byte("k"), OnStoreError: middleware.FailClosed,
		Rules: []middleware.Rule{{Name: "trial", Shadow: true}}})
	sw.Fail(errRefused)
	if w := f.do("192.0.2.5:1"); w.Code != 200 || w.Header().Get("X-Ratelimit-Degraded") != "true" {
		t.Errorf("shadow rule, store down, FailClosed: %d, Degraded %q; want 200, true", w.Code, w.Header().Get("X-Ratelimit-Degraded"))
	}
	// A rule that is not shadow still fails closed.
	g := newFixture(t, middleware.Config{Store: sw, HashKey: []byte("k"), OnStoreError: middleware.FailClosed})
	if c := g.do("192.0.2.5:1").Code; c != 503 {
		t.Errorf("enforcing rule, store down, FailClosed: %d, want 503", c)
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

// TestBreakerHalfOpenBlackHoledRedis: the same as
// TestBreakerHalfOpenAsksNoSlots with the real Redis store in front of an
// address that accepts connections and never answers. It runs on the real
// clock, about a second.
func TestBreakerHalfOpenBlackHoledRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time test (about 1s): skipped with -short")
	}
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
	wg.Go(func() { get("192.0.2.2:1") }) // the probe
	<-halfOpen.halfOpen
	var slow atomic.Int64
	for range 5 {
		wg.Go(func() {
			if get("192.0.2.3:1") > timeout/3 {
				slow.Add(1)
			}
		})
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
