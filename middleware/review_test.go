package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	chimw "github.com/go-chi/chi/v5/middleware"

	"github.com/ratekit/ratekit/middleware"
	"github.com/ratekit/ratekit/store"
	"github.com/ratekit/ratekit/store/memory"
	"github.com/ratekit/ratekit/window"
)

var twoPerMinute = window.Policy{Windows: []window.Window{{Length: time.Minute, Limit: 2}}}

// TestChiRewritesCannotBypass: chi middlewares that rewrite the routed path
// or method (StripSlashes, CleanPath, GetHead), before or after the
// limiter, cannot take a request past its route's limit.
func TestChiRewritesCannotBypass(t *testing.T) {
	for _, tc := range []struct {
		name, method, target string
		rewrite              func(http.Handler) http.Handler
	}{
		{"StripSlashes", "GET", "/v1/people/", chimw.StripSlashes},
		{"CleanPath", "GET", "/v1//people", chimw.CleanPath},
		{"GetHead", "HEAD", "/v1/people", chimw.GetHead},
	} {
		for _, before := range []bool{true, false} {
			name := tc.name + "/after-limiter"
			if before {
				name = tc.name + "/before-limiter"
			}
			t.Run(name, func(t *testing.T) {
				f := newFixture(t, middleware.Config{Policy: twoPerMinute})
				r := chi.NewRouter()
				if before {
					r.Use(tc.rewrite, f.lim.Handler)
				} else {
					r.Use(f.lim.Handler, tc.rewrite)
				}
				r.Get("/v1/people", ok)
				passed := 0
				for range 10 {
					if w := send(r, tc.method, tc.target, "192.0.2.100:1"); w.Code == 200 {
						passed++
					}
				}
				if passed != 2 {
					t.Errorf("%s %s: %d of 10 passed, want 2", tc.method, tc.target, passed)
				}
			})
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

// TestHEADCountsUnderGETRule: HEAD is served by the GET handler, so a rule
// for GET limits it too, in the same bucket.
func TestHEADCountsUnderGETRule(t *testing.T) {
	mux := http.NewServeMux()
	f := newFixture(t, middleware.Config{Router: mux, Rules: []middleware.Rule{
		{Routes: []string{"/search"}, Methods: []string{"GET"}, Policy: window.Policy{Windows: []window.Window{{Length: time.Minute, Limit: 1}}}}}})
	mux.Handle("GET /search", ok)
	h := f.lim.Handler(mux)
	if c := send(h, "GET", "/search", "192.0.2.101:1").Code; c != 200 {
		t.Fatalf("GET: %d", c)
	}
	if c := send(h, "HEAD", "/search", "192.0.2.101:1").Code; c != 429 {
		t.Errorf("HEAD after the GET used the rule's 1/min: %d, want 429", c)
	}
}

// TestRouterWinsOverOuterPattern: a limiter given Config.Router and mounted
// under an outer ServeMux prefix uses its own router's patterns.
func TestRouterWinsOverOuterPattern(t *testing.T) {
	inner := http.NewServeMux()
	f := newFixture(t, middleware.Config{Router: inner, Rules: []middleware.Rule{
		{Routes: []string{"/people"}, Methods: []string{"POST"}, Policy: window.Policy{Windows: []window.Window{{Length: time.Minute, Limit: 1}}}}}})
	inner.Handle("POST /people", ok)
	outer := http.NewServeMux()
	outer.Handle("/api/", http.StripPrefix("/api", f.lim.Handler(inner)))
	send(outer, "POST", "/api/people", "192.0.2.102:1")
	if c := send(outer, "POST", "/api/people", "192.0.2.102:1").Code; c != 429 {
		t.Errorf("second POST under the inner rule's 1/min: %d, want 429", c)
	}
}

// slotStore is a memory store that counts slot and decision calls and can
// fail them all.
type slotStore struct {
	*memory.Store
	acquires, takes atomic.Int64
	down            atomic.Bool
}

func (s *slotStore) Take(ctx context.Context, req store.Request) (window.Decision, error) {
	s.takes.Add(1)
	if s.down.Load() {
		return window.Decision{}, errors.New("i/o timeout")
	}
	return s.Store.Take(ctx, req)
}

func (s *slotStore) Acquire(ctx context.Context, k store.Key, limit int, ttl time.Duration) (store.Lease, bool, error) {
	s.acquires.Add(1)
	if s.down.Load() {
		return store.Lease{}, false, errors.New("i/o timeout")
	}
	return s.Store.Acquire(ctx, k, limit, ttl)
}

// TestConcurrencyRespectsBreakerAndDenyCache: with the breaker open no slot
// is asked for, and a client the deny cache refuses costs no slot calls.
func TestConcurrencyRespectsBreakerAndDenyCache(t *testing.T) {
	ss := &slotStore{Store: newFixture(t, middleware.Config{}).store}
	f := newFixture(t, middleware.Config{Store: ss, HashKey: []byte("k"), Concurrency: 3,
		Breaker: middleware.Breaker{Failures: 4, Cooldown: time.Hour}})
	for range 3 {
		f.do("192.0.2.110:1")
	}
	acquires := ss.acquires.Load()
	for range 20 {
		if c := f.do("192.0.2.110:1").Code; c != 429 {
			t.Fatalf("hammering client: %d, want 429", c)
		}
	}
	if got := ss.acquires.Load() - acquires; got != 0 {
		t.Errorf("%d slot calls for 20 requests the deny cache refused, want 0", got)
	}
	ss.down.Store(true)
	for i := range 50 {
		if c := f.do(fmt.Sprintf("192.0.2.%d:2", i)).Code; c != 200 {
			t.Fatalf("fail-open request %d: %d", i, c)
		}
	}
	if got := ss.acquires.Load() - acquires; got > 4 {
		t.Errorf("%d slot calls for 50 requests with the store down and the breaker opening after 4 failures, want at most 4", got)
	}
}

func TestCostAgainstPlansAndFallback(t *testing.T) {
	bulk := middleware.Rule{Name: "bulk", Routes: []string{"/bulk"}, Cost: 10}
	small := map[string]window.Policy{"trial": {Windows: []window.Window{{Length: time.Minute, Limit: 5}}}}
	if _, err := middleware.New(middleware.Config{Rules: []middleware.Rule{bulk}, Plans: small}); !errors.Is(err, middleware.ErrInvalidConfig) {
		t.Errorf("cost 10 under a plan with limit 5: error %v, want ErrInvalidConfig", err)
	}
	shared := []middleware.Rule{{Name: "write", Routes: []string{"/a"}, Cost: 1}, {Name: "write", Routes: []string{"/b"}, Cost: 10,
		Policy: window.Policy{Windows: []window.Window{{Length: time.Minute, Limit: 60}}}}}
	if _, err := middleware.New(middleware.Config{Rules: shared}); !errors.Is(err, middleware.ErrInvalidConfig) {
		t.Errorf("same-named rules with different costs: error %v, want ErrInvalidConfig", err)
	}
	// While the store is down, the divided fallback limit never drops below
	// the rule's cost: 20/4 would be 5, below cost 10.
	sw := &switchableStore{Store: newFixture(t, middleware.Config{}).store}
	sw.down.Store(true)
	f := newFixture(t, middleware.Config{Store: sw, HashKey: []byte("k"), OnStoreError: middleware.LocalFallback, FallbackInstances: 4,
		Rules: []middleware.Rule{{Cost: 10, Policy: window.Policy{Windows: []window.Window{{Length: time.Minute, Limit: 20}}}}}})
	if w := f.do("192.0.2.120:1"); w.Code != 200 || w.Header().Get("X-RateLimit-Degraded") != "true" {
		t.Errorf("cost-10 request on the fallback: %d, want 200 degraded", w.Code)
	}
}
