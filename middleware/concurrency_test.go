package middleware_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ratekit/ratekit/middleware"
	"github.com/ratekit/ratekit/window"
)

// Config.Concurrency: requests in flight per client.

// TestConcurrencyLimit: 100 goroutines of one client holding slow requests
// never have more than the limit in flight; the rest get 429 limited by
// concurrency, and slots come back when handlers return.
func TestConcurrencyLimit(t *testing.T) {
	synctest.Test(t, testConcurrencyLimit)
}

func testConcurrencyLimit(t *testing.T) {
	var inFlight, peak atomic.Int64
	release := make(chan struct{})
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-release
		inFlight.Add(-1)
	})
	f := newFixture(t, middleware.Config{
		Concurrency: 5,
		Policy:      window.Policy{Windows: []window.Window{{Length: time.Second, Limit: 1000}}},
	})
	h := f.lim.Handler(slow)
	f.h = h
	var wg sync.WaitGroup
	codes := make(chan int, 100)
	limitedBy := make(chan string, 100)
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := f.do("192.0.2.80:1")
			codes <- w.Code
			if w.Code == 429 {
				limitedBy <- w.Header().Get("X-RateLimit-Limited-By")
			}
		}()
	}
	// Once every goroutine is blocked, the five admitted requests are
	// parked in the handler and the 95 others have been answered.
	synctest.Wait()
	close(release)
	wg.Wait()
	close(codes)
	close(limitedBy)
	count := map[int]int{}
	for c := range codes {
		count[c]++
	}
	if count[200] != 5 || count[429] != 95 || peak.Load() != 5 {
		t.Errorf("statuses %v, peak in flight %d; want 5×200, 95×429, peak 5", count, peak.Load())
	}
	for by := range limitedBy {
		if by != "concurrency" {
			t.Fatalf("X-RateLimit-Limited-By = %q, want concurrency", by)
		}
	}
	// All slots are back.
	if c := f.do("192.0.2.80:1").Code; c != 200 {
		t.Errorf("after the slow requests returned: %d, want 200", c)
	}
}

// TestConcurrencySlotReleasedOnPanicAndRejection: a panicking handler and
// a rate-limit rejection both give the slot back.
func TestConcurrencySlotReleasedOnPanicAndRejection(t *testing.T) {
	f := newFixture(t, middleware.Config{Concurrency: 1})
	panicking := f.lim.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("handler bug") }))
	func() {
		defer func() { recover() }()
		f.h = panicking
		f.do("192.0.2.81:1")
	}()
	f.h = f.lim.Handler(ok)
	if c := f.do("192.0.2.81:1").Code; c != 200 {
		t.Fatalf("after a panicking handler: %d, want 200 (slot released)", c)
	}
	if c := f.do("192.0.2.81:1").Code; c != 429 {
		t.Fatalf("third request in a second: %d, want 429 (rate)", c)
	}
	// The rate rejection released its slot: a new second admits again
	// (an entry counts until the clock reads more than a second after it).
	f.clk.Advance(time.Second + time.Millisecond)
	if c := f.do("192.0.2.81:1").Code; c != 200 {
		t.Fatalf("next second: %d, want 200", c)
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

// TestConcurrencyRespectsBreakerAndDenyCache: with the breaker open no slot
// is asked for, and a client the deny cache refuses costs no slot calls.
func TestConcurrencyRespectsBreakerAndDenyCache(t *testing.T) {
	ss := newFaulty(t, nil)
	f := newFixture(t, middleware.Config{Store: ss, HashKey: []byte("k"), Concurrency: 3,
		Breaker: middleware.Breaker{Failures: 4, Cooldown: time.Hour}})
	for range 3 {
		f.do("192.0.2.110:1")
	}
	acquires := ss.Acquires()
	for range 20 {
		if c := f.do("192.0.2.110:1").Code; c != 429 {
			t.Fatalf("hammering client: %d, want 429", c)
		}
	}
	if got := ss.Acquires() - acquires; got != 0 {
		t.Errorf("%d slot calls for 20 requests the deny cache refused, want 0", got)
	}
	ss.Fail(errTimeout)
	for i := range 50 {
		if c := f.do(fmt.Sprintf("192.0.2.%d:2", i)).Code; c != 200 {
			t.Fatalf("fail-open request %d: %d", i, c)
		}
	}
	if got := ss.Acquires() - acquires; got > 4 {
		t.Errorf("%d slot calls for 50 requests with the store down and the breaker opening after 4 failures, want at most 4", got)
	}
}

// panicObserver panics on every request it is told of.
type panicObserver struct{ recorder }

func (*panicObserver) ObserveRequest(context.Context, string, string, string, string) {
	panic("observer bug")
}

// TestSlotReleasedWhenTheObserverPanics: a concurrency slot comes back
// even when a hook after the decision panics.
func TestSlotReleasedWhenTheObserverPanics(t *testing.T) {
	f := newFixture(t, middleware.Config{Concurrency: 1, Observer: &panicObserver{}, Policy: perMinute(100)})
	for i := range 3 {
		w := httptest.NewRecorder()
		func() {
			defer func() { recover() }()
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = "192.0.2.130:1"
			f.h.ServeHTTP(w, r)
		}()
		if w.Code != 200 || w.Header().Get("X-RateLimit-Limited-By") == "concurrency" {
			t.Fatalf("request %d after panicking observers: %d, limited by %q; want 200 (the slot came back)",
				i, w.Code, w.Header().Get("X-RateLimit-Limited-By"))
		}
	}
}
