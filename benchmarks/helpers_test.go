package benchmarks_test

import (
	"context"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// discardWriter is a ResponseWriter that keeps its header map between
// requests (cleared, capacity kept) and remembers the status, so a benchmark
// counts only the limiter's own allocations and can tell rejections apart.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }

// rejected reports whether the last request was answered 429, and resets the
// writer for the next one.
func (w *discardWriter) rejected() bool {
	rej := w.code == http.StatusTooManyRequests
	w.code = 0
	clear(w.h)
	return rej
}

var noop = http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})

// addrs returns n distinct client addresses, as middleware/bench_test.go does.
func addrs(n int) []string {
	a := make([]string, n)
	for i := range a {
		a[i] = "10." + strconv.Itoa(i>>16&255) + "." + strconv.Itoa(i>>8&255) + "." + strconv.Itoa(i&255) + ":40000"
	}
	return a
}

// clockEvery is a fake clock that advances step on every read.
func clockEvery(step time.Duration) func() time.Time {
	var n atomic.Int64
	start := time.UnixMilli(1_700_000_000_000)
	return func() time.Time { return start.Add(time.Duration(n.Add(1)) * step) }
}

// redisAddr is the server the Redis peers use: REDIS_ADDR, else 127.0.0.1:6379.
func redisAddr() string {
	if a := os.Getenv("REDIS_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

// redisClient connects with the settings ratekit requires, or returns nil
// with the reason when no server answers.
func redisClient() (*goredis.Client, error) {
	c := goredis.NewClient(&goredis.Options{
		Addr:                  redisAddr(),
		ContextTimeoutEnabled: true,
		MaxRetries:            -1,
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

var prefixSeq atomic.Int64

// uniquePrefix is a key prefix no other run or sub-benchmark shares.
func uniquePrefix() string {
	return "rkbench-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-" + strconv.FormatInt(prefixSeq.Add(1), 10)
}

// commandCalls is the total of calls over INFO commandstats, leaving out INFO
// itself so that reading the figure does not change it.
func commandCalls(ctx context.Context, c *goredis.Client) (int64, error) {
	s, err := c.Info(ctx, "commandstats").Result()
	if err != nil {
		return 0, err
	}
	var total int64
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "cmdstat_") || strings.HasPrefix(line, "cmdstat_info:") {
			continue
		}
		_, rest, _ := strings.Cut(line, "calls=")
		n, _, _ := strings.Cut(rest, ",")
		v, err := strconv.ParseInt(n, 10, 64)
		if err != nil {
			return 0, err
		}
		total += v
	}
	return total, nil
}
