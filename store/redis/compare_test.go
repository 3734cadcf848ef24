package redis

import (
	"context"
	"flag"
	"math/rand/v2"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ratekit/ratekit/store"
	"github.com/ratekit/ratekit/window"
)

// compareConcurrency is the number of concurrent callers on both sides.
const compareConcurrency = 50

var noAutoPipeline = flag.Bool("noautopipeline", false, "benchmarks: run the store with Config.NoAutoPipeline")

var rpsRE = regexp.MustCompile(`([0-9.]+) requests per second`)

// compareRounds is how many times each side runs, alternately, per
// benchmark run: the machine is shared, so a load spike during one side's
// only turn would skew the ratio; alternating spreads it over both.
const compareRounds = 4

// BenchmarkTakeVsRedisBenchmark measures the store's decision throughput
// against the physical limit: redis-benchmark sending the same EVALSHA (same
// script, same arguments, keys of the same length drawn uniformly from
// 10,000) at the same concurrency (50 callers, each waiting for its reply
// before sending again) to the same private redis-server. The two sides
// alternate compareRounds times with b.N/compareRounds requests each; the
// reported rates are requests over the summed time of each side, and the
// ratio is store/redis-benchmark. It also reports round trips per decision
// as the server counts them (EVALSHA + EVAL calls during the store's turns).
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
	s, err := New(c, Config{Timeout: time.Second, NoAutoPipeline: *noAutoPipeline})
	if err != nil {
		b.Fatal(err)
	}
	p := window.Default()
	keys := make([]store.Key, 10000)
	for i := range keys {
		keys[i] = testKey(i)
	}
	per := max(b.N/compareRounds, 1000)
	b.SetParallelism(max(compareConcurrency/runtime.GOMAXPROCS(0), 1))
	var physical, ours time.Duration
	var decisions, calls int64
	b.ResetTimer()
	for range compareRounds {
		// The arguments Take sends for the default policy with the
		// server's clock: now "", cost 1, exact, record, slack, then
		// (length, limit) per window. The key has the store's length: 32
		// characters between the braces, the last 12 redis-benchmark's
		// random number below 10,000.
		start := time.Now()
		out, err := exec.Command("redis-benchmark", "-h", "127.0.0.1", "-p", strconv.Itoa(srv.port),
			"-c", strconv.Itoa(compareConcurrency), "-n", strconv.Itoa(per), "-r", "10000", "-q",
			"EVALSHA", sha, "1", "ratekit:{00000000000000000000__rand_int__}:m", "", "1", "0", "1", "1000", "60000", "60", "1000", "2").CombinedOutput()
		if err != nil {
			b.Fatalf("redis-benchmark: %v\n%s", err, out)
		}
		m := rpsRE.FindSubmatch(out)
		if m == nil {
			b.Fatalf("no rate in redis-benchmark output:\n%s", out)
		}
		// redis-benchmark's own rate excludes its start-up; convert it
		// back to the time its requests took.
		rps, _ := strconv.ParseFloat(string(m[1]), 64)
		physical += time.Duration(float64(per) / rps * float64(time.Second))
		_ = start

		before := scriptCalls(b, c)
		var left atomic.Int64
		left.Store(int64(per))
		start = time.Now()
		var wg sync.WaitGroup
		for range compareConcurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for left.Add(-1) >= 0 {
					k := keys[rand.IntN(len(keys))]
					if _, err := s.Take(ctx, store.Request{Key: k, Policy: &p, Cost: 1}); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		ours += time.Since(start)
		decisions += int64(per)
		calls += scriptCalls(b, c) - before
	}
	b.StopTimer()
	rate := float64(decisions) / ours.Seconds()
	brate := float64(decisions) / physical.Seconds()
	b.ReportMetric(rate, "decisions/s")
	b.ReportMetric(brate, "redis-benchmark/s")
	b.ReportMetric(rate/brate, "ratio")
	b.ReportMetric(float64(calls)/float64(decisions), "roundtrips/op")
}
