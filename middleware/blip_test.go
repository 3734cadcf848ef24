package middleware_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ratekit/ratekit/middleware"
	"github.com/ratekit/ratekit/store/memory"
	"github.com/ratekit/ratekit/store/storetest"
)

// This file uses only the middleware's exported API (New, Config, Handler),
// so that it holds whatever the package's internals become.

// blipFixture is three limiters sharing one store, under the default
// 60/min + 2/s with LocalFallback and FallbackInstances 3, so that each
// fallback enforces 20/min + 1/s (2/3 rounded down, raised to 1). The
// shared store fails on demand (storetest.Faulty), as one past the Redis
// store's timeout does: the decision counts nothing. Its clock stands still, so every request falls in one second
// of it; the fallbacks read the wall clock, and the tests take
// milliseconds of it (they check).
type blipFixture struct {
	t         *testing.T
	store     *storetest.Faulty
	instances []http.Handler
	start     time.Time
	admitted  int // answers 200
	degraded  int // answers marked X-RateLimit-Degraded: true
}

func newBlipFixture(t *testing.T, cfg middleware.Config) *blipFixture {
	t.Helper()
	clk := storetest.NewClock(storetest.Start)
	shared, err := memory.New(memory.Config{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shared.Close() })
	f := &blipFixture{t: t, store: storetest.NewFaulty(shared), start: time.Now()}
	cfg.Store, cfg.HashKey, cfg.OnStoreError, cfg.FallbackInstances = f.store, []byte("shared"), middleware.LocalFallback, 3
	cfg.Logger = slog.New(slog.DiscardHandler)
	for range 3 {
		lim, err := middleware.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { lim.Close() })
		f.instances = append(f.instances, lim.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
	}
	return f
}

// send sends one request of the client to an instance.
func (f *blipFixture) send(instance int) {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "192.0.2.52:1234"
	w := httptest.NewRecorder()
	f.instances[instance].ServeHTTP(w, r)
	if w.Code == http.StatusOK {
		f.admitted++
	}
	if w.Header().Get("X-RateLimit-Degraded") == "true" {
		f.degraded++
	}
}

// seconds returns how many seconds of the wall clock the fallbacks may
// have seen start in the test: 1 unless the machine stalled.
func (f *blipFixture) seconds() int { return int(time.Since(f.start)/time.Second) + 1 }

// TestBlipUnderLocalFallback: a client is admitted twice through the
// shared store, filling its second. A single timed-out decision then goes
// to that instance's fallback, which has counted nothing, and admits it:
// one request beyond the shared count, never more (a fallback admits at
// most its share, 1 a second here). With every instance blipping in that
// second, the client gets at most 2 + 3×1 = 5 (catalogue R52).
func TestBlipUnderLocalFallback(t *testing.T) {
	f := newBlipFixture(t, middleware.Config{})
	f.send(0)
	f.send(0)
	if f.admitted != 2 || f.degraded != 0 {
		t.Fatalf("shared store: %d of 2 admitted, %d degraded; want 2, 0", f.admitted, f.degraded)
	}
	f.store.Fail(context.DeadlineExceeded) // one decision times out
	f.send(0)
	f.store.Fail(nil)
	single := f.admitted - 2
	if f.degraded != 1 || single > f.seconds() {
		t.Errorf("one timed-out decision: %d admitted beyond the shared count, %d degraded; want at most 1, 1", single, f.degraded)
	}
	f.store.Fail(context.DeadlineExceeded) // the store stays away: every instance falls back
	for range 10 {
		f.send(0)
	}
	if beyond := f.admitted - 2; beyond > f.seconds() {
		t.Errorf("instance 0's fallback, 1 a second: %d admitted beyond the shared count, want at most %d", beyond, f.seconds())
	}
	for range 10 {
		f.send(1)
		f.send(2)
	}
	t.Logf("limit 2/s, 3 instances: one blip admitted %d beyond the shared 2; with all three instances blipping, %d admitted in the second (%v of wall clock)",
		single, f.admitted, time.Since(f.start).Round(time.Millisecond))
	if want := 2 + 3*f.seconds(); f.admitted > want {
		t.Errorf("2 through the shared store, then 3 instances blipping: %d admitted, want at most %d", f.admitted, want)
	}
}

// TestBlipAfterARefusal: once the shared store has refused a client, an
// instance repeats the refusal from its deny cache (for the Retry-After, at
// most DenyCacheTTL, 1 s by default) without asking the store, so a blip
// in that time admits nothing beyond the shared count (catalogue R52).
func TestBlipAfterARefusal(t *testing.T) {
	f := newBlipFixture(t, middleware.Config{})
	for range 3 {
		f.send(0) // admitted, admitted, refused
	}
	f.store.Fail(context.DeadlineExceeded)
	for range 10 {
		f.send(0)
	}
	if f.admitted != 2 || f.degraded != 0 {
		t.Errorf("a refused client during a blip: %d admitted, %d degraded; want 2, 0 (the deny cache answers)", f.admitted, f.degraded)
	}
}

// TestRefusalOutlivesDenyCacheTTL: past the deny cache's TTL a refused
// client's next request asks the store again; when that decision fails,
// the refusal the store gave, whose Retry-After has not passed, still
// answers (marked degraded), instead of a fallback that counted nothing.
func TestRefusalOutlivesDenyCacheTTL(t *testing.T) {
	f := newBlipFixture(t, middleware.Config{DenyCacheTTL: time.Millisecond})
	for range 3 {
		f.send(0) // admitted, admitted, refused with Retry-After 1 s
	}
	time.Sleep(5 * time.Millisecond) // past the TTL, well within the Retry-After
	f.store.Fail(context.DeadlineExceeded)
	for range 10 {
		f.send(0)
	}
	if f.admitted != 2 || f.seconds() > 1 {
		t.Errorf("a client refused 5 ms ago, during a blip: %d admitted (%d degraded), want 2", f.admitted, f.degraded)
	}
	if f.degraded != 10 {
		t.Errorf("%d of 10 answers during the blip marked degraded, want 10", f.degraded)
	}
}
