package middleware_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/ratekit/ratekit/metrics"
	"github.com/ratekit/ratekit/middleware"
	"github.com/ratekit/ratekit/store"
	"github.com/ratekit/ratekit/store/memory"
	"github.com/ratekit/ratekit/window"
)

// admitEvery is the gap that keeps one key admitted under 60/min + 2/s for
// ever: an entry leaves a window a millisecond after its length (see
// window.Window), so requests exactly a second apart would be refused now
// and then.
const admitEvery = time.Second + time.Millisecond

func clockEvery(step time.Duration) func() time.Time {
	var n atomic.Int64
	start := time.UnixMilli(1_700_000_000_000)
	return func() time.Time { return start.Add(time.Duration(n.Add(1)) * step) }
}

func addrs(n int) []string {
	a := make([]string, n)
	for i := range a {
		a[i] = "10." + strconv.Itoa(i>>16&255) + "." + strconv.Itoa(i>>8&255) + "." + strconv.Itoa(i&255) + ":40000"
	}
	return a
}

// BenchmarkHandler measures the whole middleware per request: client IP
// resolution, the keyed hash, one memory-store decision of 60/min + 2/s
// (exact), and the Lindris headers (and the 429 body when rejected).
func BenchmarkHandler(b *testing.B) {
	run := func(b *testing.B, now func() time.Time, nkeys int, parallel bool) {
		benchHandler(b, now, nkeys, parallel, nil, false)
	}
	// net/http's way with header maps costs every response a map or two
	// (see discardWriter); these two show what the limiter's headers add to
	// that, the ninth entry of a map above all.
	fresh := func(b *testing.B, now func() time.Time) { benchHandler(b, now, 1, false, nil, true) }
	b.Run("admitted/keys=1/serial/fresh-header", func(b *testing.B) { fresh(b, clockEvery(admitEvery)) })
	b.Run("rejected/keys=1/serial/fresh-header", func(b *testing.B) { fresh(b, func() time.Time { return time.UnixMilli(1) }) })
	b.Run("admitted/keys=1/serial", func(b *testing.B) { run(b, clockEvery(admitEvery), 1, false) })
	b.Run("admitted/keys=1/parallel", func(b *testing.B) { run(b, clockEvery(admitEvery), 1, true) })
	b.Run("keys=100000/parallel", func(b *testing.B) { run(b, clockEvery(time.Microsecond), 100_000, true) })
	b.Run("mission/keys=1000000/serial", func(b *testing.B) { run(b, clockEvery(time.Microsecond), 1_000_000, false) })
	b.Run("rejected/keys=1/serial", func(b *testing.B) { run(b, func() time.Time { return time.UnixMilli(1) }, 1, false) })
	b.Run("rejected/keys=1/parallel", func(b *testing.B) { run(b, func() time.Time { return time.UnixMilli(1) }, 1, true) })
}

// BenchmarkHandlerMetrics measures what the Prometheus collector adds to a
// request: the same admitted and rejected requests with and without it.
func BenchmarkHandlerMetrics(b *testing.B) {
	for _, withMetrics := range []bool{false, true} {
		name := "collector=off"
		var obs middleware.Observer
		if withMetrics {
			name = "collector=on"
			col := metrics.New(metrics.Config{Store: "memory"})
			prometheus.NewRegistry().MustRegister(col)
			obs = col
		}
		b.Run(name+"/admitted/parallel", func(b *testing.B) { benchHandler(b, clockEvery(admitEvery), 1, true, obs, false) })
		b.Run(name+"/rejected/parallel", func(b *testing.B) {
			benchHandler(b, func() time.Time { return time.UnixMilli(1) }, 1, true, obs, false)
		})
	}
}

// benchHandler serves requests from nkeys client addresses through a limiter
// on a memory store whose clock is now, reporting allocations; fresh gives
// every response its own header maps (see discardWriter).
func benchHandler(b *testing.B, now func() time.Time, nkeys int, parallel bool, obs middleware.Observer, fresh bool) {
	s, err := memory.New(memory.Config{Now: now})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	lim, err := middleware.New(middleware.Config{Store: s, Observer: obs})
	if err != nil {
		b.Fatal(err)
	}
	h := lim.Handler(noop)
	peers := addrs(nkeys)
	serve := func(r *http.Request, w *discardWriter, i int) {
		r.RemoteAddr = peers[i]
		w.reset()
		h.ServeHTTP(w, r)
		w.finish()
	}
	// Warm: every client has its bucket, so the timed loop measures the
	// steady state rather than first-request allocations.
	warm := httptest.NewRequest("GET", "/v1/people", nil)
	ww := &discardWriter{h: http.Header{}}
	for i := range peers {
		serve(warm, ww, i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	if !parallel {
		r := httptest.NewRequest("GET", "/v1/people", nil)
		w := &discardWriter{h: http.Header{}, fresh: fresh}
		i := 0
		for b.Loop() {
			serve(r, w, i)
			if i++; i == nkeys {
				i = 0
			}
		}
		return
	}
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		r := httptest.NewRequest("GET", "/v1/people", nil)
		w := &discardWriter{h: http.Header{}}
		i := int(next.Add(7919)) % nkeys
		for pb.Next() {
			serve(r, w, i)
			if i++; i == nkeys {
				i = 0
			}
		}
	})
}

// fixedStore answers every Take with one admitted decision of 60/min + 2/s
// at once: BenchmarkOverhead uses it to time the middleware alone.
type fixedStore struct{ d window.Decision }

func (s *fixedStore) Take(context.Context, store.Request) (window.Decision, error) { return s.d, nil }

func (s *fixedStore) Close() error { return nil }

// BenchmarkOverhead measures what the middleware costs besides the store's
// decision: route and rule lookup, client IP, keyed hash, the Lindris
// headers, on a store that answers at once (configured as the memory store
// is: no circuit breaker, no deny cache). keys=1000000 visits the
// mission's million addresses round robin (each RemoteAddr string is a cache
// miss, as in BenchmarkPeers/mission).
//
// headers=browser sends the dozen header fields a browser does, which makes
// every header lookup a full map lookup.
func BenchmarkOverhead(b *testing.B) {
	browser := http.Header{}
	for _, k := range []string{"Accept", "Accept-Encoding", "Accept-Language", "User-Agent", "Cookie", "Referer",
		"Connection", "Cache-Control", "Sec-Fetch-Mode", "Sec-Fetch-Site", "Sec-Fetch-Dest", "Upgrade-Insecure-Requests"} {
		browser[k] = []string{"x"}
	}
	for _, tc := range []struct {
		nkeys int
		hdr   http.Header
	}{{1, nil}, {1_000_000, nil}, {1, browser}} {
		nkeys := tc.nkeys
		name := "keys=" + strconv.Itoa(nkeys)
		if tc.hdr != nil {
			name += "/headers=browser"
		}
		b.Run(name, func(b *testing.B) {
			fs := &fixedStore{d: window.Decision{Allowed: true, Limiting: 1, N: 2}}
			fs.d.Windows[0] = window.State{Limit: 60, Remaining: 59, Reset: time.Minute}
			fs.d.Windows[1] = window.State{Limit: 2, Remaining: 1, Reset: time.Second}
			// Like the memory store: no breaker, no deny cache.
			lim, err := middleware.New(middleware.Config{Store: fs, HashKey: []byte("bench"),
				Breaker: middleware.Breaker{Disabled: true}, DisableDenyCache: true})
			if err != nil {
				b.Fatal(err)
			}
			h := lim.Handler(noop)
			peers := addrs(nkeys)
			r := httptest.NewRequest("GET", "/v1/people", nil)
			if tc.hdr != nil {
				r.Header = tc.hdr
			}
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				r.RemoteAddr = peers[i]
				clear(w.h)
				h.ServeHTTP(w, r)
				if i++; i == nkeys {
					i = 0
				}
			}
		})
	}
}
