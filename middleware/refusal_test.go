package middleware_test

// Refusals the application takes over (Config.Refuse), hears of
// (Config.OnRefusal), and prices (Rule.CostFunc).

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ratekit/ratekit/headers"
	"github.com/ratekit/ratekit/middleware"
	"github.com/ratekit/ratekit/window"
)

// refusals keeps what the hooks were told.
type refusals struct {
	mu   sync.Mutex
	seen []middleware.Refusal
}

func (rs *refusals) add(ref *middleware.Refusal) {
	rs.mu.Lock()
	rs.seen = append(rs.seen, *ref)
	rs.mu.Unlock()
}

// TestRefuseHook: the application writes the refusal (status, headers,
// body) and sees the request and who was refused: the client's ID, or its
// address bucket, never its key. Admitted requests never reach the hook.
func TestRefuseHook(t *testing.T) {
	var heard refusals
	f := newFixture(t, middleware.Config{
		KeyValidator: func(_ context.Context, k string) (middleware.Client, bool) {
			switch k {
			case "sk_live_named":
				return middleware.Client{ID: "acct-7", Plan: "pro"}, true
			case "sk_live_bare":
				return middleware.Client{}, true // the key is the bucket
			}
			return middleware.Client{}, false
		},
		Refuse: func(w http.ResponseWriter, r *http.Request, ref *middleware.Refusal) {
			heard.add(ref)
			w.Header().Set("X-Refused-Path", r.URL.Path)
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "slow down (%s)", ref.LimitedBy)
		},
	})
	for _, kv := range [][]string{{"X-API-Key", "sk_live_named"}, {"X-API-Key", "sk_live_bare"}, nil} {
		for range 2 {
			if c := f.do("192.0.2.90:1", kv...).Code; c != 200 {
				t.Fatalf("request within the limit: %d", c)
			}
		}
		w := f.do("192.0.2.90:1", kv...)
		if w.Code != 503 || w.Body.String() != "slow down (second)" || w.Header().Get("X-Refused-Path") != "/v1/people" {
			t.Errorf("refusal with the hook: %d %q %v, want the hook's 503", w.Code, w.Body, w.Header())
		}
		if w.Header().Get("X-RateLimit-Limit") != "60" || w.Header().Get("Retry-After") != "1" {
			t.Errorf("the style's headers are not under the hook's: %v", w.Header())
		}
	}
	if len(heard.seen) != 3 {
		t.Fatalf("the hook heard %d refusals, want 3", len(heard.seen))
	}
	named, bare, addr := heard.seen[0], heard.seen[1], heard.seen[2]
	if named.ClientID != "acct-7" || named.Plan != "pro" || named.Addr.IsValid() || named.Rule != "default" ||
		named.Route != "unmatched" || named.Status != 429 || named.Decision.Allowed || named.Policy.String() == "" {
		t.Errorf("named client's refusal = %+v", named)
	}
	if bare.ClientID != "" || bare.Addr.IsValid() {
		t.Errorf("a client counted by its key: %+v, want neither ID nor address (the key is never shown)", bare)
	}
	if addr.ClientID != "" || addr.Addr != netip.MustParsePrefix("192.0.2.90/32") {
		t.Errorf("a client counted by address: %+v, want its /32", addr)
	}
	if s := fmt.Sprintf("%+v", heard.seen); strings.Contains(s, "sk_live") {
		t.Errorf("a key reached the hook: %s", s)
	}
}

// TestOnRefusalHook: the notification hook hears of every refusal, after
// the default answer is written, and of shadow refusals; it cannot change
// the answer.
func TestOnRefusalHook(t *testing.T) {
	var heard refusals
	f := newFixture(t, middleware.Config{
		Rules: []middleware.Rule{{Name: "trial", Methods: []string{"POST"}, Shadow: true, Policy: twoPerMinute}},
		OnRefusal: func(r *http.Request, ref *middleware.Refusal) {
			if r == nil {
				t.Error("OnRefusal without its request")
			}
			heard.add(ref)
		},
	})
	var codes []int
	for range 3 {
		codes = append(codes, f.do("192.0.2.91:1").Code)
	}
	for range 3 {
		codes = append(codes, send(f.h, "POST", "/v1/people", "192.0.2.91:1").Code)
	}
	if fmt.Sprint(codes) != "[200 200 429 200 200 200]" {
		t.Errorf("statuses %v, want the default refusal and a shadow rule passing all", codes)
	}
	if len(heard.seen) != 2 || heard.seen[0].Shadow || !heard.seen[1].Shadow || heard.seen[1].Rule != "trial" {
		t.Errorf("heard %+v, want one refusal then one shadow refusal of rule trial", heard.seen)
	}
}

// TestHookPanics: a panicking Refuse gets the default refusal written; a
// panicking OnRefusal changes nothing; both are logged without their text.
func TestHookPanics(t *testing.T) {
	f := newFixture(t, middleware.Config{
		Refuse:    func(http.ResponseWriter, *http.Request, *middleware.Refusal) { panic("refuse bug sk_live_x") },
		OnRefusal: func(*http.Request, *middleware.Refusal) { panic("audit bug") },
	})
	for range 2 {
		f.do("192.0.2.92:1")
	}
	w := f.do("192.0.2.92:1")
	var body map[string]any
	if w.Code != 429 || json.Unmarshal(w.Body.Bytes(), &body) != nil || body["status_code"] != float64(429) {
		t.Errorf("panicking Refuse: %d %s, want the default 429 body", w.Code, w.Body)
	}
	logs := f.logs.String()
	if !strings.Contains(logs, "Refuse hook panicked") || strings.Contains(logs, "sk_live_x") {
		t.Errorf("log %s: want the panic named without its text", logs)
	}
}

// TestCostFunc: a rule prices each request from the request; a cost no
// window could admit is answered 413 without Retry-After or a wait in the
// body, and asks no store.
func TestCostFunc(t *testing.T) {
	items := func(r *http.Request) int { n, _ := strconv.Atoi(r.URL.Query().Get("items")); return n }
	st := newFaulty(t, nil)
	f := newFixture(t, middleware.Config{Store: st, HashKey: []byte("k"), Rules: []middleware.Rule{{Name: "bulk", CostFunc: items,
		Policy: window.Policy{Windows: []window.Window{{Length: time.Minute, Limit: 100}, {Length: time.Second, Limit: 50}}}}}})
	for _, tc := range []struct {
		items     int
		code      int
		remaining string
	}{
		{30, 200, "70"},
		{0, 200, "69"}, // no items: the rule's Cost, 1
		{19, 200, "50"},
		{1, 429, "50"}, // 50 in the second
		{51, 413, ""},  // above the second's 50: never
	} {
		w := send(f.h, "POST", fmt.Sprintf("/v1/bulk?items=%d", tc.items), "192.0.2.93:1")
		if w.Code != tc.code || w.Header().Get("X-RateLimit-Remaining") != tc.remaining {
			t.Errorf("%d items: %d, Remaining %q; want %d, %q", tc.items, w.Code, w.Header().Get("X-RateLimit-Remaining"), tc.code, tc.remaining)
		}
		if tc.code == 413 {
			if w.Header().Get("Retry-After") != "" || strings.Contains(w.Body.String(), "retry_after") {
				t.Errorf("413 promises a wait: %v %s", w.Header(), w.Body)
			}
		}
	}
	if n := st.Takes(); n != 4 {
		t.Errorf("%d store calls, want 4: the 413 asks none", n)
	}
}

// TestCostFromContext: a middleware that learned the cost hands it on with
// WithCost; the problem envelope explains a 413.
func TestCostFromContext(t *testing.T) {
	f := newFixture(t, middleware.Config{Envelope: headers.ProblemBody{}, Rules: []middleware.Rule{{CostFunc: middleware.CostFromContext,
		Policy: window.Policy{Windows: []window.Window{{Length: time.Minute, Limit: 10}}}}}})
	do := func(cost int) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", "/v1/batch", nil)
		r.RemoteAddr = "192.0.2.94:1"
		if cost > 0 {
			r = r.WithContext(middleware.WithCost(r.Context(), cost))
		}
		w := httptest.NewRecorder()
		f.h.ServeHTTP(w, r)
		return w
	}
	if w := do(4); w.Code != 200 || w.Header().Get("X-RateLimit-Remaining") != "6" {
		t.Errorf("cost 4: %d, Remaining %s; want 200, 6", w.Code, w.Header().Get("X-RateLimit-Remaining"))
	}
	if w := do(0); w.Header().Get("X-RateLimit-Remaining") != "5" {
		t.Errorf("no cost in the context: Remaining %s, want 5 (cost 1)", w.Header().Get("X-RateLimit-Remaining"))
	}
	w := do(11)
	if w.Code != 413 || !strings.Contains(w.Body.String(), `"detail":"This request costs 11; the smallest limit is 10."`) {
		t.Errorf("cost 11 of 10: %d %s, want 413 saying why", w.Code, w.Body)
	}
}

// TestCostFuncPanics: a panicking CostFunc is a hook failure: the failure
// policy answers.
func TestCostFuncPanics(t *testing.T) {
	f := newFixture(t, middleware.Config{OnStoreError: middleware.FailClosed,
		Rules: []middleware.Rule{{CostFunc: func(*http.Request) int { panic("bad batch") }}}})
	if c := f.do("192.0.2.95:1").Code; c != 503 {
		t.Errorf("panicking CostFunc under FailClosed: %d, want 503", c)
	}
}

// TestCostFuncPanicUnderLocalFallback: a CostFunc that panics leaves the
// client who it is: under LocalFallback each client keeps a bucket of its
// own (they used to share one), priced at the rule's cost.
func TestCostFuncPanicUnderLocalFallback(t *testing.T) {
	f := newFixture(t, middleware.Config{OnStoreError: middleware.LocalFallback, Identify: middleware.ClientFromContext,
		Rules: []middleware.Rule{{Policy: perMinute(1), CostFunc: func(*http.Request) int { panic("bad batch") }}}})
	h := authn(f.h)
	var codes []int
	for i, user := range []string{"alice", "bob", "carol", "alice"} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = fmt.Sprintf("192.0.2.%d:1", 100+i)
		r.Header.Set("X-Session", "user:"+user)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		codes = append(codes, w.Code)
	}
	if fmt.Sprint(codes) != "[200 200 200 429]" {
		t.Errorf("alice, bob, carol, alice under 1/min, CostFunc panicking: %v, want [200 200 200 429]", codes)
	}
}

// TestCostAboveTheFallbackShare: with the store down, a cost that the
// local share of the limit could never admit is answered by the failure
// policy, not with a Retry-After that would not come true.
func TestCostAboveTheFallbackShare(t *testing.T) {
	st := newFaulty(t, nil)
	st.Fail(errRefused)
	f := newFixture(t, middleware.Config{Store: st, HashKey: []byte("k"), OnStoreError: middleware.LocalFallback, FallbackInstances: 3,
		Rules: []middleware.Rule{{Policy: perMinute(60), CostFunc: middleware.CostFromContext}}})
	r := httptest.NewRequest("POST", "/", nil).WithContext(middleware.WithCost(context.Background(), 40))
	r.RemoteAddr = "192.0.2.120:1"
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	if w.Code != 200 || w.Header().Get("Retry-After") != "" || w.Header().Get("X-Ratelimit-Degraded") != "true" {
		t.Errorf("cost 40 over a local share of 20: %d, Retry-After %q; want the failure policy's 200, degraded", w.Code, w.Header().Get("Retry-After"))
	}
}
