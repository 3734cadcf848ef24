package redis

import (
	"context"
	"flag"
	"math/rand/v2"
	"os/exec"
	"regexp"
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
// ratio is store/redis-benchmark. For reference it also runs redis-benchmark
// with the same 50 requests outstanding but pipelined as the store pipelines
// them (2 connections, 25 deep: redis-benchmark-P25x2/s, ratio-pipelined),
// and reports round trips per decision as the server counts them (EVALSHA +
// EVAL calls during the store's turns) and ns/op as the store's time per
// decision.
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
	var physical, pipelined, ours time.Duration
	var decisions, calls int64
	// bench runs redis-benchmark with extra flags and returns the time its
	// per requests took (its own rate excludes its start-up).
	bench := func(flags ...string) time.Duration {
		args := append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(srv.port), "-n", strconv.Itoa(per), "-r", "10000", "-q"}, flags...)
		// The arguments Take sends for the default policy with the
		// server's clock: now "", cost 1, exact, record, slack, then
		// (length, limit) per window. The key has the store's length: 32
		// characters between the braces, the last 12 redis-benchmark's
		// random number below 10,000.
		args = append(args, "EVALSHA", sha, "1", "ratekit:{00000000000000000000__rand_int__}:m", "", "1", "0", "1", "1000", "60000", "60", "1000", "2")
		out, err := exec.Command("redis-benchmark", args...).CombinedOutput()
		if err != nil {
			b.Fatalf("redis-benchmark: %v\n%s", err, out)
		}
		m := rpsRE.FindSubmatch(out)
		if m == nil {
			b.Fatalf("no rate in redis-benchmark output:\n%s", out)
		}
		rps, _ := strconv.ParseFloat(string(m[1]), 64)
		return time.Duration(float64(per) / rps * float64(time.Second))
	}
	b.ResetTimer()
	for range compareRounds {
		// The target: 50 connections, one request outstanding on each.
		physical += bench("-c", strconv.Itoa(compareConcurrency))
		// For reference, the same 50 outstanding requests pipelined the
		// way the store pipelines them: 2 connections, 25 deep.
		pipelined += bench("-c", "2", "-P", strconv.Itoa(compareConcurrency/2))

		before := scriptCalls(b, c)
		var left atomic.Int64
		left.Store(int64(per))
		start := time.Now()
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
	prate := float64(decisions) / pipelined.Seconds()
	b.ReportMetric(float64(ours.Nanoseconds())/float64(decisions), "ns/op") // the store's share only
	b.ReportMetric(rate, "decisions/s")
	b.ReportMetric(brate, "redis-benchmark/s")
	b.ReportMetric(rate/brate, "ratio")
	b.ReportMetric(prate, "redis-benchmark-P25x2/s")
	b.ReportMetric(rate/prate, "ratio-pipelined")
	b.ReportMetric(float64(calls)/float64(decisions), "roundtrips/op")
}
