package middleware_test

// Limits changed while serving: SetLimits, SetClientPolicy and
// RemoveClientPolicy.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ratekit/ratekit/middleware"
	"github.com/ratekit/ratekit/window"
)

func perMinute(n int) window.Policy {
	return window.Policy{Windows: []window.Window{{Length: time.Minute, Limit: n}}}
}

// TestSetLimitsKeepsCounts: a new limit applies to the next request, and
// every bucket whose windows keep their lengths keeps its count: lowered,
// it refuses at once; raised, it admits the difference.
func TestSetLimitsKeepsCounts(t *testing.T) {
	f := newFixture(t, middleware.Config{Policy: perMinute(10), Rules: []middleware.Rule{{Name: "write", Methods: []string{"POST"}, Policy: perMinute(5)}}})
	for range 4 {
		f.do("192.0.2.1:1")
	}
	send(f.h, "POST", "/v1/people", "192.0.2.1:1")
	if err := f.lim.SetLimits(middleware.Limits{Policy: perMinute(4), Rules: []middleware.Rule{{Name: "write", Methods: []string{"POST"}, Policy: perMinute(8)}}}); err != nil {
		t.Fatal(err)
	}
	if w := f.do("192.0.2.1:1"); w.Code != 429 || w.Header().Get("X-RateLimit-Limit") != "4" {
		t.Errorf("GET after lowering 10 to 4 with 4 used: %d, limit %s; want 429, 4", w.Code, w.Header().Get("X-RateLimit-Limit"))
	}
	w := send(f.h, "POST", "/v1/people", "192.0.2.1:1")
	if w.Code != 200 || w.Header().Get("X-RateLimit-Remaining") != "6" {
		t.Errorf("POST after raising 5 to 8 with 1 used: %d, Remaining %s; want 200, 6", w.Code, w.Header().Get("X-RateLimit-Remaining"))
	}
	if got := f.lim.Limits(); got.Policy.Windows[0].Limit != 4 || got.Rules[0].Policy.Windows[0].Limit != 8 {
		t.Errorf("Limits() = %+v, want what was set", got)
	}
}

// TestSetLimitsInvalid: an invalid change names every problem and changes
// nothing.
func TestSetLimitsInvalid(t *testing.T) {
	f := newFixture(t, middleware.Config{Policy: perMinute(3)})
	err := f.lim.SetLimits(middleware.Limits{Policy: perMinute(0), Rules: []middleware.Rule{{Routes: []string{"x"}}},
		Plans: map[string]window.Policy{"p": perMinute(-1)}, ClientPolicies: map[string]window.Policy{"c": {}}})
	for _, want := range []string{"policy: window 0: limit 0", `route "x"`, `plan "p"`, "client policy with ID sha256:2e7d2c03"} {
		if !errors.Is(err, middleware.ErrInvalidConfig) || !strings.Contains(fmt.Sprint(err), want) {
			t.Errorf("SetLimits error %v, want ErrInvalidConfig naming %q", err, want)
		}
	}
	if strings.Contains(fmt.Sprint(err), `"c"`) {
		t.Errorf("SetLimits error %v shows a client ID (which may be an API key)", err)
	}
	if w := f.do("192.0.2.1:1"); w.Header().Get("X-RateLimit-Limit") != "3" {
		t.Errorf("after a refused change: limit %s, want the old 3", w.Header().Get("X-RateLimit-Limit"))
	}
}

// TestClientPolicies: one client gets limits of its own, over its plan's,
// set and removed while serving; its counts stay; other clients and rules
// with policies of their own are untouched.
func TestClientPolicies(t *testing.T) {
	f := newFixture(t, middleware.Config{Policy: perMinute(2), KeyValidator: func(_ context.Context, k string) (middleware.Client, bool) {
		return middleware.Client{ID: "acct-" + k, Plan: "basic"}, true
	}, Plans: map[string]window.Policy{"basic": perMinute(3)}, ClientPolicies: map[string]window.Policy{"acct-a": perMinute(5)}})
	count := func(key string, n int) (passed int) {
		for range n {
			if f.do("192.0.2.2:1", "X-API-Key", key).Code == 200 {
				passed++
			}
		}
		return passed
	}
	if a, b := count("a", 8), count("b", 8); a != 5 || b != 3 {
		t.Fatalf("client a (own 5/min), b (plan 3/min): %d and %d of 8 passed", a, b)
	}
	if err := f.lim.SetClientPolicy("acct-b", perMinute(10)); err != nil {
		t.Fatal(err)
	}
	if b := count("b", 10); b != 7 {
		t.Errorf("after raising b to 10/min with 3 used: %d of 10 passed, want 7", b)
	}
	f.lim.RemoveClientPolicy("acct-a")
	if w := f.do("192.0.2.2:1", "X-API-Key", "a"); w.Code != 429 || w.Header().Get("X-RateLimit-Limit") != "3" {
		t.Errorf("a back on its plan with 5 used: %d, limit %s; want 429, 3", w.Code, w.Header().Get("X-RateLimit-Limit"))
	}
	if err := f.lim.SetClientPolicy("acct-c", window.Policy{}); !errors.Is(err, middleware.ErrInvalidConfig) {
		t.Errorf("SetClientPolicy with no windows: %v, want ErrInvalidConfig", err)
	}
	if err := f.lim.SetClientPolicy("", perMinute(1)); !errors.Is(err, middleware.ErrInvalidConfig) {
		t.Errorf("SetClientPolicy without an ID: %v, want ErrInvalidConfig", err)
	}
	if got := f.lim.Limits().ClientPolicies; len(got) != 1 || got["acct-b"].Windows[0].Limit != 10 {
		t.Errorf("Limits().ClientPolicies = %v, want only acct-b", got)
	}
}

// TestSwapLimitsUnderTraffic: limits swapped between two configurations
// while requests run (under -race): every request is answered, and no
// client is admitted more in the minute than the larger configuration
// allows.
func TestSwapLimitsUnderTraffic(t *testing.T) {
	a := middleware.Limits{Policy: perMinute(20), Rules: []middleware.Rule{{Name: "w", Methods: []string{"POST"}, Policy: perMinute(5)}}}
	b := middleware.Limits{Policy: perMinute(30), Rules: []middleware.Rule{{Name: "w", Methods: []string{"POST"}, Policy: perMinute(8)}},
		ClientPolicies: map[string]window.Policy{"vip": perMinute(40)}}
	f := newFixture(t, middleware.Config{Policy: a.Policy, Rules: a.Rules})
	var stop atomic.Bool
	var swapper, wg sync.WaitGroup
	swapper.Go(func() {
		for i := 0; !stop.Load(); i++ {
			next := a
			if i%2 == 0 {
				next = b
			}
			if err := f.lim.SetLimits(next); err != nil {
				t.Error(err)
				return
			}
		}
	})
	var gets, posts [4]atomic.Int64
	var answered atomic.Int64
	for g := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 9))
			for range 300 {
				peer := fmt.Sprintf("192.0.2.%d:1", 10+g)
				method, n := "GET", &gets[g]
				if rng.IntN(3) == 0 {
					method, n = "POST", &posts[g]
				}
				if c := send(f.h, method, "/v1/people", peer).Code; c == 200 {
					n.Add(1)
				} else if c != 429 {
					t.Errorf("status %d", c)
				}
				answered.Add(1)
			}
		})
	}
	wg.Wait()
	stop.Store(true)
	swapper.Wait()
	if n := answered.Load(); n != 1200 {
		t.Errorf("%d of 1200 requests answered", n)
	}
	for g := range 4 {
		if gets[g].Load() > 30 || posts[g].Load() > 8 {
			t.Errorf("client %d admitted %d GETs and %d POSTs in a minute, above both configurations' 30 and 8", g, gets[g].Load(), posts[g].Load())
		}
	}
}

// TestClientPolicyForTake: Take and Peek see a client's own policy too.
func TestClientPolicyForTake(t *testing.T) {
	f := newFixture(t, middleware.Config{Policy: perMinute(2), ClientPolicies: map[string]window.Policy{"acct-9": perMinute(7)}})
	who := middleware.Identity{Client: middleware.Client{ID: "acct-9"}}
	res, err := f.lim.Take(context.Background(), middleware.Request{Identity: who})
	if err != nil || res.Decision.Windows[0].Limit != 7 || res.Decision.Windows[0].Remaining != 6 {
		t.Errorf("Take for a client with its own 7/min = %+v, %v", res, err)
	}
	if _, p, _ := f.lim.Peek(context.Background(), who, ""); p.Windows[0].Limit != 7 {
		t.Errorf("Peek policy = %v, want 7/min", p)
	}
	if _, p, _ := f.lim.Peek(context.Background(), middleware.Identity{Addr: netip.MustParseAddr("192.0.2.1")}, ""); p.Windows[0].Limit != 2 {
		t.Errorf("Peek policy of an address = %v, want the default 2/min", p)
	}
}

// TestFailurePolicyText: the failure policies read and write their names.
func TestFailurePolicyText(t *testing.T) {
	for _, f := range []middleware.FailurePolicy{middleware.FailOpen, middleware.FailClosed, middleware.LocalFallback} {
		text, err := f.MarshalText()
		var back middleware.FailurePolicy
		if err != nil || back.UnmarshalText(text) != nil || back != f {
			t.Errorf("%v: MarshalText %q, %v; read back as %v", f, text, err, back)
		}
	}
	var f middleware.FailurePolicy
	if err := f.UnmarshalText([]byte("Open")); !errors.Is(err, middleware.ErrInvalidConfig) {
		t.Errorf(`UnmarshalText("Open") = %v, want ErrInvalidConfig`, err)
	}
	if _, err := middleware.FailurePolicy(9).MarshalText(); err == nil {
		t.Error("MarshalText of an unknown policy succeeded")
	}
}

// TestRuleJSONIsStrict: a typo in a rule's JSON is an error, not a rule
// for every route.
func TestRuleJSONIsStrict(t *testing.T) {
	var r middleware.Rule
	if err := json.Unmarshal([]byte(`{"name":"w","route":["/a"]}`), &r); err == nil || !strings.Contains(err.Error(), `"route"`) {
		t.Errorf(`rule with "route": %v, want an error naming the field`, err)
	}
	err := json.Unmarshal([]byte(`{"Name":"w","Routes":["/a"],"Cost":2,"Policy":{"windows":[{"length":"1m","limit":5}]}}`), &r)
	if err != nil || r.Name != "w" || r.Routes[0] != "/a" || r.Cost != 2 || r.Policy.Windows[0].Limit != 5 {
		t.Errorf("a valid rule: %+v, %v", r, err)
	}
}
