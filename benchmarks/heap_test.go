package benchmarks_test

import (
	"net/http/httptest"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ratekit/ratekit/benchmarks"
)

// heapClients is how many clients BenchmarkHeapPerClient tracks.
const heapClients = 100_000

// BenchmarkHeapPerClient reports the heap each peer retains per tracked
// client (bytes/client) under 60/min + 2/s: the live heap after serving
// 100,000 clients, less the live heap before the middleware was built,
// divided by the clients (their addresses, built beforehand, are not
// counted). Each sub-benchmark measures once; run it with -benchtime 1x.
//
// requests=1 serves each client once. requests=60, for the peers that take a
// clock, serves each client once a second for a minute on a fake clock, so
// the exact log holds a full minute of 60 entries, the most this policy lets
// it hold; the peers on the wall clock keep counters or buckets whose size
// does not depend on how many requests a client sent.
func BenchmarkHeapPerClient(b *testing.B) {
	peers := append(benchmarks.Memory(), benchmarks.RatekitCounter())
	for _, p := range peers {
		b.Run(p.Name+"/requests=1", func(b *testing.B) { benchHeap(b, p, 1) })
		if p.Clock {
			b.Run(p.Name+"/requests=60", func(b *testing.B) { benchHeap(b, p, 60) })
		}
	}
}

func benchHeap(b *testing.B, p benchmarks.Peer, passes int) {
	peers := addrs(heapClients)
	var perClient float64
	for b.Loop() {
		var ms atomic.Int64
		start := time.UnixMilli(1_700_000_000_000)
		l := lindris
		if p.Clock {
			l.Now = func() time.Time { return start.Add(time.Duration(ms.Load()) * time.Millisecond) }
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		mw, closeFn, err := p.New(l)
		if err != nil {
			b.Fatalf("%s: %v", p.Name, err)
		}
		h := mw(noop)
		r := httptest.NewRequest("GET", "/v1/people", nil)
		w := &discardWriter{h: make(map[string][]string)}
		for range passes {
			for _, a := range peers {
				r.RemoteAddr = a
				h.ServeHTTP(w, r)
				if w.rejected() {
					b.Fatalf("%s refused %s: one request a second is within 60/min + 2/s", p.Name, a)
				}
			}
			ms.Add(1000)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perClient = (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / heapClients
		runtime.KeepAlive(h)
		runtime.KeepAlive(w)
		closeFn()
	}
	b.ReportMetric(perClient, "bytes/client")
}
