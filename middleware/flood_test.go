package middleware_test

import (
	"encoding/binary"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/ratekit/ratekit/middleware"
	"github.com/ratekit/ratekit/store/memory"
)

// This file uses only the middleware's exported API (New, Config, Handler),
// so that it holds whatever the package's internals become.

// TestIdentityFlood: 30,000 new client addresses, as fast as the
// middleware takes them, against a memory store bounded to 10,000 keys.
// None of them is served degraded (the store makes room by evicting keys
// that still have quota), and a new client arriving afterwards still gets at
// most 2 of 100 requests sent within a second.
//
// Real clock (the flood must land within about a second of wall time, as
// an attacker's would): skipped with -short.
func TestIdentityFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("real clock")
	}
	s, err := memory.New(memory.Config{MaxKeys: 10_000})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	lim, err := middleware.New(middleware.Config{Store: s, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lim.Close() })
	h := lim.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	serve := func(addr netip.Addr) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = netip.AddrPortFrom(addr, 1234).String()
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	// Distinct addresses in 10.0.0.0/8, one request each.
	addrN := func(i uint32) netip.Addr {
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], 10<<24|i)
		return netip.AddrFrom4(a)
	}

	const flood = 30_000
	start := time.Now()
	degraded, refused := 0, 0
	for i := range uint32(flood) {
		w := serve(addrN(i + 1))
		if w.Header().Get("X-RateLimit-Degraded") != "" {
			degraded++
		}
		if w.Code != http.StatusOK {
			refused++
		}
	}
	took := time.Since(start)
	t.Logf("%d new addresses in %v: %d served degraded, %d refused; store holds %d keys after %d evictions",
		flood, took.Round(time.Millisecond), degraded, refused, s.Len(), s.Evictions())
	if degraded > 0 {
		t.Errorf("%d of %d flood requests served degraded (X-RateLimit-Degraded), want 0: the store was full of keys that still had quota", degraded, flood)
	}
	if refused > 0 {
		t.Errorf("%d of %d flood requests refused, want 0: each address sent one", refused, flood)
	}

	client := netip.MustParseAddr("192.0.2.50")
	start = time.Now()
	admitted, clientDegraded := 0, 0
	for range 100 {
		w := serve(client)
		if w.Code == http.StatusOK {
			admitted++
		}
		if w.Header().Get("X-RateLimit-Degraded") != "" {
			clientDegraded++
		}
	}
	took = time.Since(start)
	// 2 a second, sliding: any span shorter than a second holds at most 2.
	// On a machine so loaded that 100 requests take longer, each further
	// second may admit 2 more.
	want := 2 * int(took/time.Second+1)
	t.Logf("new client after the flood: %d of 100 admitted in %v, %d degraded", admitted, took.Round(time.Microsecond), clientDegraded)
	if admitted > want || clientDegraded > 0 {
		t.Errorf("new client after the flood: %d of 100 admitted in %v, %d degraded; want at most %d, none degraded",
			admitted, took, clientDegraded, want)
	}
}
