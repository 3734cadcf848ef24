package redis

import (
	"context"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ratekit/ratekit/store"
	"github.com/ratekit/ratekit/window"
)

// compareConcurrency is the number of concurrent callers on both sides.
const compareConcurrency = 50

var rpsRE = regexp.MustCompile(`([0-9.]+) requests per second`)

// BenchmarkTakeVsRedisBenchmark measures the store's decision throughput
// against the physical limit: redis-benchmark sending the same EVALSHA (same
// script, same arguments, 10,000 keys) at the same concurrency to the same
// private redis-server. It reports both rates and their ratio
// (store/redis-benchmark); the difference is go-redis, the deadline context
// and reading the reply.
func BenchmarkTakeVsRedisBenchmark(b *testing.B) {
	if _, err := exec.LookPath("redis-benchmark"); err != nil {
		b.Skip("redis-benchmark not on PATH")
	}
	srv := startServer(b)
	opts := clientOptions(srv.Addr)
	opts.PoolSize = compareConcurrency
	c := goredis.NewClient(opts)
	b.Cleanup(func() { c.Close() })
	ctx := context.Background()
	sha, err := c.ScriptLoad(ctx, takeSrc).Result()
	if err != nil {
		b.Fatal(err)
	}
	// The arguments Take sends for the default policy with the server's
	// clock: now "", cost 1, exact, record, slack, then (length, limit) per
	// window. The key carries redis-benchmark's random-number placeholder.
	out, err := exec.Command("redis-benchmark", "-h", "127.0.0.1", "-p", strconv.Itoa(srv.port),
		"-c", strconv.Itoa(compareConcurrency), "-n", "200000", "-r", "10000", "-q",
		"EVALSHA", sha, "1", "ratekit:{__rand_int__}:m", "", "1", "0", "1", "1000", "60000", "60", "1000", "2").CombinedOutput()
	if err != nil {
		b.Fatalf("redis-benchmark: %v\n%s", err, out)
	}
	m := rpsRE.FindSubmatch(out)
	if m == nil {
		b.Fatalf("no rate in redis-benchmark output:\n%s", out)
	}
	physical, _ := strconv.ParseFloat(string(m[1]), 64)

	s, err := New(c, Config{Timeout: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	p := window.Default()
	keys := make([]store.Key, 10000)
	for i := range keys {
		keys[i] = testKey(i)
	}
	b.SetParallelism(max(compareConcurrency/runtime.GOMAXPROCS(0), 1))
	var next atomic.Int64
	start := time.Now()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1)
			if _, err := s.Take(ctx, store.Request{Key: keys[int(i)%len(keys)], Policy: &p, Cost: 1}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	rate := float64(b.N) / time.Since(start).Seconds()
	b.ReportMetric(rate, "decisions/s")
	b.ReportMetric(physical, "redis-benchmark/s")
	b.ReportMetric(rate/physical, "ratio")
}
