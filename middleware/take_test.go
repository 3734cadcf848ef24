package middleware_test

// The programmatic core: Take, Answer, Peek and Reset, and their agreement
// with the HTTP middleware.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ratekit/ratekit/internal/model"
	"github.com/ratekit/ratekit/middleware"
	"github.com/ratekit/ratekit/store/storetest"
	"github.com/ratekit/ratekit/window"
)

// TestTakeChargesTheHTTPBucket: Take and HTTP requests of one client count
// in one bucket, whether the client is named by an API key, a client ID or
// an address, and under a rule named or matched by route.
func TestTakeChargesTheHTTPBucket(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		kv   []string // the HTTP request's headers
		who  middleware.Identity
	}{
		{"api key", []string{"X-API-Key", "K1"}, middleware.Identity{Key: "K1", Addr: netip.MustParseAddr("198.51.100.1")}},
		{"the key as its own client id", []string{"Authorization", "Bearer K1"}, middleware.Identity{Client: middleware.Client{ID: "K1"}}},
		{"address", nil, middleware.Identity{Addr: netip.MustParseAddr("192.0.2.40")}},
		{"ipv4-mapped address", nil, middleware.Identity{Addr: netip.MustParseAddr("::ffff:192.0.2.40")}},
		{"unknown key counts by address", []string{"X-API-Key", "nope"}, middleware.Identity{Key: "nope", Addr: netip.MustParseAddr("192.0.2.40")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, middleware.Config{KeyValidator: validKeys("K1")})
			if w := f.do("192.0.2.40:1", tc.kv...); w.Code != 200 {
				t.Fatalf("HTTP request: %d", w.Code)
			}
			res, err := f.lim.Take(ctx, middleware.Request{Identity: tc.who})
			if err != nil || !res.Allowed || res.Decision.Windows[0].Remaining != 58 || res.Decision.Windows[1].Remaining != 0 {
				t.Fatalf("Take after one HTTP request = %+v, %v; want allowed with 58 and 0 left", res, err)
			}
			if w := f.do("192.0.2.40:1", tc.kv...); w.Code != 429 {
				t.Errorf("HTTP request after Take: %d, want 429 (2/s spent)", w.Code)
			}
			res, err = f.lim.Take(ctx, middleware.Request{Identity: tc.who, Rule: "default"})
			if err != nil || res.Allowed || res.Outcome != middleware.OutcomeLimited || res.LimitedBy != "second" ||
				res.Decision.RetryAfter <= 0 {
				t.Errorf("third Take = %+v, %v; want limited by the second", res, err)
			}
		})
	}
}

// TestTakeMatchesTheModel: on seeded random streams, HTTP requests and Take
// calls interleaved at random for the same clients give exactly the
// decisions of the brute-force model of one bucket per client. A failing
// seed replays with -run and the seed printed.
func TestTakeMatchesTheModel(t *testing.T) {
	streams := 200
	if testing.Short() {
		streams = 50
	}
	p := window.Policy{Windows: []window.Window{{Length: 10 * time.Second, Limit: 7}, {Length: time.Second, Limit: 3}}}
	for seed := uint64(1); seed <= uint64(streams); seed++ {
		f := newFixture(t, middleware.Config{Policy: p, KeyValidator: validKeys("k0", "k1", "k2")})
		m := model.New(p)
		rng := rand.New(rand.NewPCG(seed, 17))
		ops := model.Stream(seed, model.StreamConfig{Ops: 60, Keys: 6, MaxGap: 700 * time.Millisecond, JumpEvery: 25, MaxJump: 20 * time.Second})
		for i, op := range ops {
			f.clk.Set(storetest.Start.Add(op.At))
			// Clients 0-2 are API keys, 3-5 addresses.
			addr := fmt.Sprintf("192.0.2.%d", 10+op.Key)
			who := middleware.Identity{Addr: netip.MustParseAddr(addr)}
			var kv []string
			if op.Key < 3 {
				key := fmt.Sprintf("k%d", op.Key)
				who = middleware.Identity{Key: key}
				kv = []string{"X-API-Key", key}
			}
			want := m.Take(strconv.Itoa(op.Key), f.clk.Now(), 1)
			if rng.IntN(2) == 0 {
				res, err := f.lim.Take(context.Background(), middleware.Request{Identity: who})
				if err != nil {
					t.Fatalf("seed %d op %d: Take: %v", seed, i, err)
				}
				if d := storetest.Diff(res.Decision, want); d != "" {
					t.Fatalf("seed %d op %d (Take, client %d at %v): %s", seed, i, op.Key, op.At, d)
				}
				continue
			}
			w := f.do(addr+":1", kv...)
			h := w.Header()
			got := fmt.Sprintf("%d %s/%s", w.Code, h.Get("X-RateLimit-Remaining"), h.Get("X-RateLimit-Remaining-Second"))
			code := 200
			if !want.Allowed {
				code = 429
			}
			if exp := fmt.Sprintf("%d %d/%d", code, want.Windows[0].Remaining, want.Windows[1].Remaining); got != exp {
				t.Fatalf("seed %d op %d (HTTP, client %d at %v): status and remaining %s, want %s", seed, i, op.Key, op.At, got, exp)
			}
		}
	}
}

// TestTakeRules: a rule is found by name or by route and method, with its
// own bucket, policy and cost; a cost given to Take overrides the rule's.
func TestTakeRules(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, middleware.Config{Rules: []middleware.Rule{
		postPeople,
		{Name: "bulk", Routes: []string{"/v1/bulk"}, Cost: 5, Policy: window.Policy{Windows: []window.Window{{Length: time.Minute, Limit: 10}}}},
		{Name: "health", Routes: []string{"/healthz"}, Exempt: true},
	}})
	who := middleware.Identity{Addr: netip.MustParseAddr("203.0.113.5")}
	for _, tc := range []struct {
		name      string
		req       middleware.Request
		remaining int
		outcome   string
	}{
		{"by route and method", middleware.Request{Route: "/v1/people", Method: "POST"}, 9, middleware.OutcomeAllowed},
		{"by name", middleware.Request{Rule: "people-write"}, 8, middleware.OutcomeAllowed},
		{"route without the rule's method", middleware.Request{Route: "/v1/people", Method: "GET"}, 59, middleware.OutcomeAllowed},
		{"the rule's cost", middleware.Request{Rule: "bulk"}, 5, middleware.OutcomeAllowed},
		{"a cost of its own", middleware.Request{Route: "/v1/bulk", Method: "PUT", Cost: 2}, 3, middleware.OutcomeAllowed},
		{"refused at its cost", middleware.Request{Rule: "bulk"}, 3, middleware.OutcomeLimited},
		{"exempt", middleware.Request{Route: "/healthz"}, 0, middleware.OutcomeExempt},
	} {
		tc.req.Identity = who
		f.clk.Advance(time.Second + time.Millisecond) // past every rule's per-second window
		res, err := f.lim.Take(ctx, tc.req)
		if err != nil || res.Outcome != tc.outcome || (tc.outcome != middleware.OutcomeExempt && res.Decision.Windows[0].Remaining != tc.remaining) {
			t.Errorf("%s: Take = %+v, %v; want %s with %d left", tc.name, res, err, tc.outcome, tc.remaining)
		}
	}
}

// TestTakeInvalidRequests: requests that can never be decided are errors
// wrapping ErrInvalidRequest, and reach no store.
func TestTakeInvalidRequests(t *testing.T) {
	st := newFaulty(t, nil)
	f := newFixture(t, middleware.Config{Store: st, HashKey: []byte("k"), Rules: []middleware.Rule{postPeople}})
	addr := middleware.Identity{Addr: netip.MustParseAddr("192.0.2.1")}
	for _, tc := range []struct {
		name string
		req  middleware.Request
		want string
	}{
		{"unknown rule", middleware.Request{Identity: addr, Rule: "nope"}, `no rule named "nope"`},
		{"nobody", middleware.Request{}, "names no client"},
		{"negative cost", middleware.Request{Identity: addr, Cost: -1}, "cost -1"},
		{"cost above every limit", middleware.Request{Identity: addr, Rule: "people-write", Cost: 2}, "cost 2 above the smallest limit 1"},
	} {
		if _, err := f.lim.Take(context.Background(), tc.req); !errors.Is(err, middleware.ErrInvalidRequest) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Take error = %v, want ErrInvalidRequest saying %q", tc.name, err, tc.want)
		}
	}
	if n := st.Takes(); n != 0 {
		t.Errorf("invalid requests made %d store calls, want 0", n)
	}
}

// TestTakeFailurePolicy: a store failure is no error of Take: the result
// says what the failure policy decided.
func TestTakeFailurePolicy(t *testing.T) {
	who := middleware.Identity{Addr: netip.MustParseAddr("192.0.2.1")}
	for _, tc := range []struct {
		policy             middleware.FailurePolicy
		allowed, degraded  bool
		outcome, limitedBy string
		status             int
	}{
		{middleware.FailOpen, true, true, middleware.OutcomeError, "", 200},
		{middleware.FailClosed, false, false, middleware.OutcomeError, "", 503},
		{middleware.LocalFallback, true, true, middleware.OutcomeAllowed, "", 200},
	} {
		t.Run(tc.policy.String(), func(t *testing.T) {
			st := newFaulty(t, nil)
			st.Fail(errRefused)
			f := newFixture(t, middleware.Config{Store: st, HashKey: []byte("k"), OnStoreError: tc.policy})
			res, err := f.lim.Take(context.Background(), middleware.Request{Identity: who})
			if err != nil || res.Allowed != tc.allowed || res.Degraded != tc.degraded || res.Outcome != tc.outcome {
				t.Fatalf("Take with the store down = %+v, %v; want allowed %v, degraded %v, outcome %s", res, err, tc.allowed, tc.degraded, tc.outcome)
			}
			if tc.outcome == middleware.OutcomeError && !errors.Is(res.Err, errRefused) {
				t.Errorf("Result.Err = %v, want the store's error", res.Err)
			}
			w := httptest.NewRecorder()
			proceed := f.lim.Answer(w, nil, &res)
			if proceed != tc.allowed || w.Code != tc.status {
				t.Errorf("Answer: proceed %v, status %d; want %v, %d", proceed, w.Code, tc.allowed, tc.status)
			}
			if got := w.Header().Get("X-RateLimit-Degraded") == "true"; got != tc.degraded {
				t.Errorf("Answer: X-RateLimit-Degraded %v, want %v", got, tc.degraded)
			}
		})
	}
}

// TestAnswerWritesWhatHTTPWould: Answer on a Take's result writes the same
// status, headers and body as the middleware for the same decision.
func TestAnswerWritesWhatHTTPWould(t *testing.T) {
	for _, n := range []int{1, 3} { // admitted, refused
		httpSide := newFixture(t, middleware.Config{})
		takeSide := newFixture(t, middleware.Config{})
		var viaHTTP, viaTake *httptest.ResponseRecorder
		var proceed bool
		for range n {
			viaHTTP = httpSide.do("192.0.2.1:1")
			res, err := takeSide.lim.Take(context.Background(), middleware.Request{Identity: middleware.Identity{Addr: netip.MustParseAddr("192.0.2.1")}})
			if err != nil {
				t.Fatal(err)
			}
			viaTake = httptest.NewRecorder()
			proceed = takeSide.lim.Answer(viaTake, nil, &res)
		}
		if proceed != (viaHTTP.Code == 200) {
			t.Errorf("request %d: Answer proceed = %v, HTTP status %d", n, proceed, viaHTTP.Code)
		}
		if viaHTTP.Code == 200 {
			viaTake.WriteHeader(200)             // the handler would
			viaHTTP.Body.Reset()                 // the handler's body
			viaHTTP.Header().Del("Content-Type") // and its type
		}
		if a, b := fmt.Sprint(viaHTTP.Code, viaHTTP.Header(), viaHTTP.Body), fmt.Sprint(viaTake.Code, viaTake.Header(), viaTake.Body); a != b {
			t.Errorf("request %d: via HTTP %s, via Take and Answer %s", n, a, b)
		}
	}
}

// TestPeekAndReset: Peek reports a bucket without counting, Reset empties
// it; both take the identity Take does.
func TestPeekAndReset(t *testing.T) {
	f := newFixture(t, middleware.Config{KeyValidator: validKeys("K1"), Rules: []middleware.Rule{postPeople}})
	ctx := context.Background()
	f.do("192.0.2.90:1")
	f.do("192.0.2.90:1")
	f.do("192.0.2.91:1", "X-API-Key", "K1")

	d, p, err := f.lim.Peek(ctx, middleware.Identity{Addr: netip.MustParseAddr("::ffff:192.0.2.90")}, "")
	if err != nil || d.Allowed || d.Windows[0].Remaining != 58 || p.Windows[0].Limit != 60 {
		t.Fatalf("Peek(address) = %+v, %v, %v; want limited with 58 left of 60", d, p, err)
	}
	for _, who := range []middleware.Identity{{Client: middleware.Client{ID: "K1"}}, {Key: "K1"}} {
		d, _, _ = f.lim.Peek(ctx, who, "")
		if !d.Allowed || d.Windows[0].Remaining != 59 {
			t.Fatalf("Peek(%+v) = %+v; want 59 left", who, d)
		}
	}
	d, p, _ = f.lim.Peek(ctx, middleware.Identity{Key: "K1"}, "people-write")
	if d.Windows[0].Remaining != 10 || p.Windows[0].Limit != 10 {
		t.Fatalf("Peek(key, people-write) = %+v %v; want an untouched 10/min bucket", d, p)
	}
	if err := f.lim.Reset(ctx, middleware.Identity{Addr: netip.MustParseAddr("192.0.2.90")}, ""); err != nil {
		t.Fatal(err)
	}
	if c := f.do("192.0.2.90:1").Code; c != 200 {
		t.Errorf("after Reset: %d, want 200", c)
	}
	for _, tc := range []struct {
		who  middleware.Identity
		rule string
	}{
		{middleware.Identity{}, ""},
		{middleware.Identity{Key: "K1"}, "no-such-rule"},
	} {
		if _, _, err := f.lim.Peek(ctx, tc.who, tc.rule); !errors.Is(err, middleware.ErrInvalidRequest) {
			t.Errorf("Peek(%+v, %q) = %v, want ErrInvalidRequest", tc.who, tc.rule, err)
		}
	}
	noAdmin := newFixture(t, middleware.Config{Store: storeOnly{}, HashKey: []byte("k")})
	if _, _, err := noAdmin.lim.Peek(ctx, middleware.Identity{Key: "a"}, ""); !errors.Is(err, middleware.ErrNoAdmin) {
		t.Errorf("Peek on a store without Admin: %v, want ErrNoAdmin", err)
	}
}

// TestTakeAllocs: Take on the memory store costs the caller no allocation
// of the limiter's own beyond what the store does.
func TestTakeAllocs(t *testing.T) {
	f := newFixture(t, middleware.Config{Policy: window.Policy{Windows: []window.Window{{Length: time.Second, Limit: 1 << 30}}}})
	req := middleware.Request{Identity: middleware.Identity{Addr: netip.MustParseAddr("192.0.2.1")}}
	ctx := context.Background()
	n := testing.AllocsPerRun(200, func() {
		if _, err := f.lim.Take(ctx, req); err != nil {
			t.Fatal(err)
		}
	})
	if n > 1 {
		t.Errorf("Take: %v allocations, want at most 1 (the store's grant)", n)
	}
}

// TestResultHoldsNoKey: a Result of a client counted by its key (a
// validator that names no ID) never carries the key, however it is
// printed.
func TestResultHoldsNoKey(t *testing.T) {
	const key = "sk_live_resultsecret"
	f := newFixture(t, middleware.Config{KeyValidator: validKeys(key)})
	res, err := f.lim.Take(context.Background(), middleware.Request{Identity: middleware.Identity{Key: key}})
	if err != nil || !res.Allowed {
		t.Fatalf("Take = %+v, %v", res, err)
	}
	if s := fmt.Sprintf("%+v %#v", res, res); strings.Contains(s, key) {
		t.Errorf("a printed Result shows the key: %s", s)
	}
}
