package redis

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ratekit/ratekit/store"
	"github.com/ratekit/ratekit/window"
)

// scriptCalls returns how many EVALSHA and EVAL calls the server has run,
// from INFO commandstats.
func scriptCalls(tb testing.TB, c *goredis.Client) int64 {
	n, _ := scriptStats(tb, c)
	return n
}

// scriptStats returns how many EVALSHA and EVAL calls the server has run and
// the microseconds it spent in them (the script's own GET and SET included),
// from INFO commandstats.
func scriptStats(tb testing.TB, c *goredis.Client) (calls, usec int64) {
	tb.Helper()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if !strings.HasPrefix(line, "cmdstat_evalsha:") && !strings.HasPrefix(line, "cmdstat_eval:") {
			continue
		}
		calls += statField(line, "calls=")
		usec += statField(line, "usec=")
	}
	return calls, usec
}

// statField returns the integer after name in a commandstats line.
func statField(line, name string) int64 {
	_, rest, _ := strings.Cut(line, ","+name)
	if rest == "" {
		_, rest, _ = strings.Cut(line, ":"+name)
	}
	v, _, _ := strings.Cut(rest, ",")
	n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	return n
}

// reportServer reports round trips per decision (script calls over b.N) and
// the server's time per script call, from the difference between two
// scriptStats readings.
func reportServer(b *testing.B, c *goredis.Client, calls0, usec0 int64) {
	calls, usec := scriptStats(b, c)
	b.ReportMetric(float64(calls-calls0)/float64(b.N), "roundtrips/op")
	if calls > calls0 {
		b.ReportMetric(float64(usec-usec0)/float64(calls-calls0), "server-µs/call")
	}
}

// BenchmarkTake measures one decision (default policy, SlidingLog, time
// from the server) against a private redis-server on loopback: latency,
// allocations, and round trips per decision counted by the server
// (EVALSHA + EVAL calls / b.N). Serial is one caller; parallel is
// GOMAXPROCS callers through one client. keys=1 keeps every call on one
// key (mostly rejections once the quota is spent); keys=10000 spreads them
// (mostly admissions, so the write path).
func BenchmarkTake(b *testing.B) {
	srv := startServer(b)
	c := goredis.NewClient(clientOptions(srv.Addr))
	b.Cleanup(func() { c.Close() })
	s, err := New(c, Config{Timeout: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	p := window.Default()
	for _, keys := range []int{1, 10000} {
		ks := make([]store.Key, keys)
		for i := range ks {
			ks[i] = testKey(i)
		}
		b.Run(fmt.Sprintf("keys=%d/serial", keys), func(b *testing.B) {
			b.ReportAllocs()
			calls, usec := scriptStats(b, c)
			i := 0
			for b.Loop() {
				if _, err := s.Take(context.Background(), store.Request{Key: ks[i%keys], Policy: &p, Cost: 1}); err != nil {
					b.Fatal(err)
				}
				i++
			}
			reportServer(b, c, calls, usec)
		})
		b.Run(fmt.Sprintf("keys=%d/parallel", keys), func(b *testing.B) {
			b.ReportAllocs()
			calls, usec := scriptStats(b, c)
			var next atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := next.Add(1)
					if _, err := s.Take(context.Background(), store.Request{Key: ks[int(i)%keys], Policy: &p, Cost: 1}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			reportServer(b, c, calls, usec)
		})
	}
}

// TestMemoryPerKey reports MEMORY USAGE (key, value and Redis overhead, in
// bytes) of one identity's state after n admitted requests, for the default
// policy in both algorithms, with and without costs above 1, and for a
// policy whose longest window needs 32-bit instants. The figures go into
// docs/redis.md; the test fails only if a state grows past a loose bound.
func TestMemoryPerKey(t *testing.T) {
	srv := startServer(t)
	c := newClient(t, srv.Addr)
	day := window.Policy{Windows: []window.Window{{Length: 24 * time.Hour, Limit: 1000}, {Length: time.Minute, Limit: 100}}}
	counter := window.Default()
	counter.Algorithm = window.SlidingCounter
	for _, tc := range []struct {
		name    string
		p       window.Policy
		n, cost int
		every   time.Duration // between admissions, so that no window binds
		bound   int64
	}{
		{"log default 1 entry", window.Default(), 1, 1, 990 * time.Millisecond, 120},
		{"log default 2 entries", window.Default(), 2, 1, 990 * time.Millisecond, 120},
		{"log default 60 entries", window.Default(), 60, 1, 990 * time.Millisecond, 300},
		{"log default 20 entries cost 2", window.Default(), 20, 2, 1001 * time.Millisecond, 300},
		{"log 24h 100 entries (32-bit)", day, 100, 1, 990 * time.Millisecond, 600},
		{"counter default", counter, 30, 1, 1500 * time.Millisecond, 120},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var now time.Time = t0
			s := newStore(t, c, Config{Now: func() time.Time { return now }, Timeout: time.Second})
			k := testKey(len(tc.name))
			for range tc.n {
				now = now.Add(tc.every)
				if d, err := s.Take(context.Background(), store.Request{Key: k, Policy: &tc.p, Cost: tc.cost}); err != nil || !d.Allowed {
					t.Fatalf("Take: %+v, %v", d, err)
				}
			}
			key := Key("", k)
			mem, err := c.MemoryUsage(context.Background(), key).Result()
			if err != nil {
				t.Fatal(err)
			}
			strlen := c.StrLen(context.Background(), key).Val()
			t.Logf("%-32s value %4d bytes, MEMORY USAGE %4d bytes", tc.name, strlen, mem)
			if mem > tc.bound {
				t.Errorf("MEMORY USAGE = %d, want at most %d", mem, tc.bound)
			}
		})
	}
}

// TestHugeLimitsStateBounded: at 1e9/s and 2e9/min, 100,000 admissions
// over 4 ms (25,000 concurrent ones in each millisecond) leave one entry
// per millisecond: a state of a few dozen bytes (STRLEN) instead of one
// entry per request (200 kB). The clock moves only between the
// milliseconds' bursts: pipelined calls may reach the server in another
// order than they read the clock, which the script takes for a clock step
// back (exact, but a new entry when it steps forward again).
func TestHugeLimitsStateBounded(t *testing.T) {
	c, _ := realClient(t)
	prefix := testPrefix(t, c)
	p := window.Policy{Windows: []window.Window{{Length: time.Minute, Limit: 2e9}, {Length: time.Second, Limit: 1e9}}}
	const n, ms, callers = 100_000, 4, 50
	var now atomic.Int64
	now.Store(t0.UnixMilli())
	s := newStore(t, c, Config{Prefix: prefix, Timeout: 10 * time.Second, Now: func() time.Time {
		return time.UnixMilli(now.Load())
	}})
	k := testKey(1)
	var failed atomic.Int64
	for range ms {
		var wg sync.WaitGroup
		for range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range n / ms / callers {
					d, err := s.Take(context.Background(), store.Request{Key: k, Policy: &p, Cost: 1})
					if err != nil || !d.Allowed {
						failed.Add(1)
						return
					}
				}
			}()
		}
		wg.Wait()
		now.Add(1)
	}
	if failed.Load() != 0 {
		t.Fatalf("%d Takes failed or were rejected", failed.Load())
	}
	d, err := s.Peek(context.Background(), k, &p)
	if err != nil {
		t.Fatal(err)
	}
	used := 2e9 - d.Windows[0].Remaining
	key := Key(prefix, k)
	strlen := c.StrLen(context.Background(), key).Val()
	mem := c.MemoryUsage(context.Background(), key).Val()
	t.Logf("%d admissions over %d ms: value %d bytes, MEMORY USAGE %d bytes", used, ms, strlen, mem)
	if used != n {
		t.Errorf("the minute window counts %d, want %d", used, n)
	}
	// Header 11 bytes, then 6 bytes (instant + running total) per
	// millisecond that saw an admission.
	if want := int64(11 + 6*ms); strlen != want {
		t.Errorf("STRLEN = %d after %d admissions in %d ms, want %d", strlen, used, ms, want)
	}
}

// scriptLoop runs take.lua as a function inside one EVAL, so that a batch of
// decisions costs one round trip and the server's clock times the script
// alone. KEYS and ARGV are the function's parameters, shadowing the globals.
// ARGV[1..3] are keys (clients), decisions and the first decision's number;
// ARGV[4] is "1" for SlidingCounter, ARGV[5] the key prefix. Client i%keys
// is asked at ms base+floor(i·1001/keys), so each client is seen every
// 1.001 s: at exactly 1 s, the oldest of a full minute's 60 entries would
// still count (see window.Window) and one decision in 61 would be refused.
// The reply is the microseconds the batch took and the decisions admitted.
const scriptLoop = `local function take(KEYS, ARGV)
%s
end
local keys, n, from = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local argv = { '', '1', ARGV[4], '1', '1000', '60000', '60', '1000', '2' }
local key = { '' }
local admitted = 0
local t0 = redis.call('TIME')
for i = from, from + n - 1 do
  argv[1] = tostring(1763800000000 + math.floor(i * 1001 / keys))
  key[1] = ARGV[5] .. ':{' .. (i %% keys) .. '}:m'
  admitted = admitted + take(key, argv)[1]
end
local t1 = redis.call('TIME')
return { (t1[1] - t0[1]) * 1000000 + (t1[2] - t0[2]), admitted }
`

// BenchmarkScript measures take.lua's own cost per decision on the Redis
// server, without the network, the client or EVALSHA's dispatch: the script
// runs as a function in a loop inside one EVAL (scriptLoop) on a private
// redis-server, for 1,000 clients each asked every 1.001 s under the
// default policy (60/min + 2/s), after 61 rounds of that traffic, so every
// exact log holds a full minute. The clock keeps going across the calls testing
// makes to each sub-benchmark (one per b.N tried, and per -count), so none
// of them sees it step back. The exact log admits every decision, as in the
// mission; the sliding counter, whose estimate rounds up, refuses some
// (admitted/op). server-µs/decision is the server's clock over the timed
// batches: GET and SET are included, TIME (the script takes the time as an
// argument here) is not.
func BenchmarkScript(b *testing.B) {
	srv := startServer(b)
	c := goredis.NewClient(clientOptions(srv.Addr))
	b.Cleanup(func() { c.Close() })
	ctx := context.Background()
	loop := goredis.NewScript(fmt.Sprintf(scriptLoop, takeSrc))
	const keys, batch = 1000, 10000
	for _, alg := range []string{"log", "counter"} {
		counter := "0"
		if alg == "counter" {
			counter = "1"
		}
		next := 0 // the next decision's number, and so its instant
		b.Run(alg, func(b *testing.B) {
			run := func(n int) (usec, admitted int64) {
				r, err := loop.Run(ctx, c, nil, keys, n, next, counter, "scriptloop-"+alg).Int64Slice()
				if err != nil {
					b.Fatal(err)
				}
				next += n
				return r[0], r[1]
			}
			for next < 61*keys {
				run(min(batch, 61*keys-next))
			}
			b.ResetTimer()
			var usec, admitted int64
			for done := 0; done < b.N; {
				n := min(batch, b.N-done)
				u, a := run(n)
				usec, admitted, done = usec+u, admitted+a, done+n
			}
			b.ReportMetric(float64(usec)/float64(b.N), "server-µs/decision")
			b.ReportMetric(float64(admitted)/float64(b.N), "admitted/op")
			if alg == "log" && admitted != int64(b.N) {
				b.Fatalf("%d of %d decisions admitted; the exact log admits every one", admitted, b.N)
			}
		})
	}
}
