package benchmarks_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ratekit/ratekit/benchmarks"
)

// lindris is the policy of the mission: 60 per minute and 2 per second.
var lindris = benchmarks.Limits{PerMinute: 60, PerSecond: 2}

// BenchmarkPeers runs every scenario against every peer, named
// <scenario>/<peer> so that benchstat lines peers up per scenario. Each
// sub-benchmark reports ns/op, allocations, and rejected/op: the share of
// requests answered 429, which says which path (admit or reject) was timed.
func BenchmarkPeers(b *testing.B) {
	peers := benchmarks.Memory()
	for _, p := range peers {
		b.Run("mission/"+p.Name, func(b *testing.B) { benchMission(b, p) })
	}
	for _, p := range peers {
		b.Run("onekey/parallel/"+p.Name, func(b *testing.B) { benchOneKey(b, p) })
	}
	for _, p := range peers {
		b.Run("keys=100000/parallel/"+p.Name, func(b *testing.B) { benchKeys(b, p, 100_000) })
	}
	for _, p := range peers {
		b.Run("rejected/parallel/"+p.Name, func(b *testing.B) { benchRejected(b, p) })
	}
	client, err := redisClient()
	if err != nil {
		b.Logf("redis scenarios skipped: no server at %s: %v", redisAddr(), err)
		return
	}
	defer client.Close()
	sent := &sentCounter{}
	client.AddHook(sent)
	for _, name := range []string{"ratekit-redis", "redis_rate"} {
		b.Run("redis/keys=10000/parallel/"+name, func(b *testing.B) {
			p := redisPeer(b, benchmarks.Redis(client, uniquePrefix()), name)
			benchRedis(b, p, client, sent, 10_000)
		})
	}
}

// benchMission measures the mission: 1,000,000 client IPs in round robin,
// served serially, under 60/min + 2/s. One untimed pass gives every client its
// state first. ratekit runs on a fake clock that advances 1µs per decision, so
// each client is seen exactly once per (fake) second; every other peer reads
// the wall clock, so each client is seen once per pass, and req/s/key reports
// that rate. Run it with -benchtime=1000000x: one timed pass.
func benchMission(b *testing.B, p benchmarks.Peer) {
	const nkeys = 1_000_000
	l := lindris
	if p.Name == "ratekit" {
		l.Now = clockEvery(time.Microsecond)
	}
	h := build(b, p, l)
	peers := addrs(nkeys)
	r := httptest.NewRequest("GET", "/v1/people", nil)
	w := &discardWriter{h: http.Header{}}
	for _, a := range peers {
		r.RemoteAddr = a
		h.ServeHTTP(w, r)
		w.rejected()
	}
	b.ReportAllocs()
	var rejected, i int
	start := time.Now()
	for b.Loop() {
		r.RemoteAddr = peers[i]
		h.ServeHTTP(w, r)
		if w.rejected() {
			rejected++
		}
		if i++; i == nkeys {
			i = 0
		}
	}
	elapsed := time.Since(start)
	b.ReportMetric(float64(rejected)/float64(b.N), "rejected/op")
	perKey := float64(b.N) / nkeys / elapsed.Seconds()
	if l.Now != nil {
		perKey = 1 // by construction of the fake clock
	}
	b.ReportMetric(perKey, "req/s/key")
}

// benchOneKey measures the admit path under contention: every goroutine
// sends as one client, with limits of 1e9 per second and 2e9 per minute so
// that nothing is ever rejected. (Equal limits would make ratekit warn, rightly,
// that the second window can never bind.)
func benchOneKey(b *testing.B, p benchmarks.Peer) {
	h := build(b, p, benchmarks.Limits{PerMinute: 2e9, PerSecond: 1e9})
	benchParallel(b, h, addrs(1))
}

// benchKeys measures nkeys clients (after one untimed pass) in round robin
// from every goroutine, under 60/min + 2/s on the wall clock: a mix of admits
// and rejections (rejected/op says which), with state spread over many keys.
func benchKeys(b *testing.B, p benchmarks.Peer, nkeys int) {
	h := build(b, p, lindris)
	peers := addrs(nkeys)
	warm(h, peers, 1)
	benchParallel(b, h, peers)
}

// benchRejected measures the reject path: one client that has used up its
// 2/s (100 untimed requests first) keeps asking from every goroutine. The
// per-second window lets about two requests a second through, a negligible
// share of the millions timed.
func benchRejected(b *testing.B, p benchmarks.Peer) {
	h := build(b, p, lindris)
	peers := addrs(1)
	warm(h, peers, 100)
	benchParallel(b, h, peers)
}

// benchRedis measures a Redis-backed peer with nkeys clients in round robin
// from every goroutine under 60/min + 2/s, on the Redis server's clock. It
// reports round trips per request twice: roundtrips/op from INFO commandstats
// (script invocations, EVALSHA and friends, divided by b.N; anything else
// running scripts on the same server inflates it) and sent/op from a client
// hook (commands and pipelines this process sent, which INFO cannot split from
// other clients'). rediscalls/op is every command the server ran per request,
// including those inside the scripts, and server-µs/op the server's time in
// the scripts per request (their commands included): the server-side work,
// which is what a Redis shared by many instances runs out of.
func benchRedis(b *testing.B, p benchmarks.Peer, c *goredis.Client, sent *sentCounter, nkeys int) {
	h := build(b, p, lindris)
	peers := addrs(nkeys)
	warm(h, peers, 1)
	ctx := context.Background()
	scripts0, usec0, all0, err := commandCalls(ctx, c)
	if err != nil {
		b.Fatal(err)
	}
	sent0 := sent.n.Load()
	benchParallel(b, h, peers)
	b.StopTimer()
	sent1 := sent.n.Load()
	scripts1, usec1, all1, err := commandCalls(ctx, c)
	if err != nil {
		b.Fatal(err)
	}
	n := float64(b.N)
	b.ReportMetric(float64(scripts1-scripts0)/n, "roundtrips/op")
	b.ReportMetric(float64(sent1-sent0)/n, "sent/op")
	b.ReportMetric(float64(all1-all0)/n, "rediscalls/op")
	b.ReportMetric(float64(usec1-usec0)/n, "server-µs/op")
}

// benchParallel serves requests from the given addresses in round robin from
// GOMAXPROCS goroutines, each starting at a different offset.
func benchParallel(b *testing.B, h http.Handler, peers []string) {
	var next, rejected atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := httptest.NewRequest("GET", "/v1/people", nil)
		w := &discardWriter{h: http.Header{}}
		i := int(next.Add(7919)) % len(peers)
		var rej int64
		for pb.Next() {
			r.RemoteAddr = peers[i]
			h.ServeHTTP(w, r)
			if w.rejected() {
				rej++
			}
			if i++; i == len(peers) {
				i = 0
			}
		}
		rejected.Add(rej)
	})
	b.ReportMetric(float64(rejected.Load())/float64(b.N), "rejected/op")
}

// redisPeer picks the peer called name.
func redisPeer(b *testing.B, peers []benchmarks.Peer, name string) benchmarks.Peer {
	b.Helper()
	for _, p := range peers {
		if p.Name == name {
			return p
		}
	}
	b.Fatalf("no Redis peer %q", name)
	return benchmarks.Peer{}
}

// build returns p's middleware for l around a handler that does nothing,
// closed when the benchmark ends.
func build(b *testing.B, p benchmarks.Peer, l benchmarks.Limits) http.Handler {
	b.Helper()
	mw, closeFn, err := p.New(l)
	if err != nil {
		b.Fatalf("%s: New(%+v): %v", p.Name, l, err)
	}
	b.Cleanup(closeFn)
	return mw(noop)
}

// warm sends n requests from each address, untimed.
func warm(h http.Handler, peers []string, n int) {
	r := httptest.NewRequest("GET", "/v1/people", nil)
	w := &discardWriter{h: http.Header{}}
	for range n {
		for _, a := range peers {
			r.RemoteAddr = a
			h.ServeHTTP(w, r)
			w.rejected()
		}
	}
}
