package middleware_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ratekit/ratekit/headers"
	"github.com/ratekit/ratekit/middleware"
	"github.com/ratekit/ratekit/store/storetest"
	"github.com/ratekit/ratekit/window"

	"github.com/ratekit/ratekit/store"
)

// The whole middleware: the Lindris contract, configuration, concurrency of
// requests, allocations, and hooks that panic.

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
		// more than a second after it (see window.Window): 1.001s, the
		// clock's millisecond not counted in whole seconds.
		{0, want{200, "59", "1", "1", "second", ""}},
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

// TestConcurrentRequestsOneClient: 1,000 simultaneous requests from one
// client through the middleware give exactly 2 × 200 and 998 × 429
// (catalogue R03).
func TestConcurrentRequestsOneClient(t *testing.T) {
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

// TestClientDisconnectCountsNothing: a request whose context is already
// cancelled is not counted at all (catalogue R44).
func TestClientDisconnectCountsNothing(t *testing.T) {
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

// TestInvalidConfigs: invalid configurations are errors, never panics, and
// each problem is named (catalogue R14).
func TestInvalidConfigs(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  middleware.Config
		want string // in the error
	}{
		{"empty policy", middleware.Config{Policy: window.Policy{Windows: []window.Window{}}}, "no windows"},
		{"zero limit", middleware.Config{Policy: window.Policy{Windows: []window.Window{{Length: time.Second}}}}, "limit 0"},
		{"negative limit", middleware.Config{Policy: window.Policy{Windows: []window.Window{{Length: time.Second, Limit: -1}}}}, "limit -1"},
		{"zero length", middleware.Config{Policy: window.Policy{Windows: []window.Window{{Limit: 5}}}}, "length 0s"},
		{"sub-millisecond", middleware.Config{Policy: window.Policy{Windows: []window.Window{{Length: time.Microsecond, Limit: 5}}}}, "below 1ms"},
		{"too long", middleware.Config{Policy: window.Policy{Windows: []window.Window{{Length: 365 * 24 * time.Hour, Limit: 5}}}}, "length 8760h0m0s"},
		{"limit overflow", middleware.Config{Policy: window.Policy{Windows: []window.Window{{Length: time.Second, Limit: 1 << 40}}}}, "limit 1099511627776"},
		{"unknown failure policy", middleware.Config{OnStoreError: 9}, "OnStoreError 9"},
		{"shared store without hash key", middleware.Config{Store: storeOnly{}}, "HashKey is required"},
		{"bad ipv6 prefix", middleware.Config{ClientIP: middleware.ClientIP{IPv6Prefix: 129}}, "IPv6Prefix 129"},
		{"negative breaker failures", middleware.Config{Breaker: middleware.Breaker{Failures: -1}}, "Breaker.Failures -1"},
		{"negative breaker cooldown", middleware.Config{Breaker: middleware.Breaker{Cooldown: -time.Second}}, "Breaker.Cooldown -1s"},
		{"key header not a token", middleware.Config{KeyHeaders: []string{"X-API-Key", "X Client"}}, `KeyHeaders 1: "X Client"`},
		{"negative key length", middleware.Config{MaxKeyLen: -1}, "MaxKeyLen -1"},
		{"huge key length", middleware.Config{MaxKeyLen: 1 << 20}, "MaxKeyLen 1048576"},
		{"concurrency without a concurrency store", middleware.Config{Concurrency: 2, Store: storeOnly{}, HashKey: []byte("k")}, "store.Concurrency"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lim, err := middleware.New(tc.cfg)
			if !errors.Is(err, middleware.ErrInvalidConfig) || !strings.Contains(fmt.Sprint(err), tc.want) {
				t.Errorf("New error = %v, want ErrInvalidConfig naming %q", err, tc.want)
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

// TestPanickingValidator: a panicking validator is recovered into the
// failure policy; the process survives (catalogue R45).
func TestPanickingValidator(t *testing.T) {
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

// TestPanickingRenderers: a panicking custom style goes to the failure
// policy; a panicking envelope falls back to the Lindris body. Both logged
// (catalogue R45).
func TestPanickingRenderers(t *testing.T) {
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

// storeOnly is a store with nothing but Take and Close.
type storeOnly struct{}

func (storeOnly) Take(context.Context, store.Request) (window.Decision, error) {
	return window.Decision{}, nil
}

func (storeOnly) Close() error { return nil }

// TestEveryConfigProblemReported: New lists every invalid field, not only
// the first.
func TestEveryConfigProblemReported(t *testing.T) {
	_, err := middleware.New(middleware.Config{
		OnStoreError: 7, FallbackInstances: -1, MaxKeyLen: -2,
		Breaker: middleware.Breaker{Failures: -1},
		Rules:   []middleware.Rule{{Routes: []string{"no-slash"}}},
	})
	for _, want := range []string{"OnStoreError 7", "FallbackInstances -1", "MaxKeyLen -2", "Breaker.Failures -1", `route "no-slash"`} {
		if !strings.Contains(fmt.Sprint(err), want) {
			t.Errorf("New error = %v, want it to name %q", err, want)
		}
	}
}

// TestScalekitTimestamps: the middleware need not read the clock for a
// style, and Scalekit's X-RateLimit-Reset is still a Unix time counted from
// the moment of the decision.
func TestScalekitTimestamps(t *testing.T) {
	f := newFixture(t, middleware.Config{Headers: headers.Scalekit{}})
	before := time.Now()
	w := f.do("192.0.2.1:1234")
	after := time.Now()
	reset, err := strconv.ParseInt(w.Header().Get("X-RateLimit-Reset"), 10, 64)
	if err != nil || reset < before.Unix() || reset > after.Add(time.Second).Unix()+1 {
		t.Errorf("Scalekit X-RateLimit-Reset = %q, want a Unix time within a second of now", w.Header().Get("X-RateLimit-Reset"))
	}
}
