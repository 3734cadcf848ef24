package benchmarks_test

import (
	"context"
	"fmt"
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

// commandCalls reads INFO commandstats and returns the calls of script
// invocations (EVAL, EVALSHA and their _RO forms, FCALL), one per round trip
// for both Redis peers, the microseconds the server spent in them, and the
// calls of every command but INFO. Redis 7 counts the commands a script runs
// (GET, SET, TIME...) under their own names too, so the last figure is
// server-side work, not round trips; a script's time includes theirs.
func commandCalls(ctx context.Context, c *goredis.Client) (scripts, scriptUsec, all int64, err error) {
	s, err := c.Info(ctx, "commandstats").Result()
	if err != nil {
		return 0, 0, 0, err
	}
	for _, line := range strings.Split(s, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") || name == "cmdstat_info" {
			continue
		}
		calls, err := statField(rest, "calls")
		if err != nil {
			return 0, 0, 0, err
		}
		all += calls
		switch strings.TrimPrefix(name, "cmdstat_") {
		case "eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro":
			usec, err := statField(rest, "usec")
			if err != nil {
				return 0, 0, 0, err
			}
			scripts += calls
			scriptUsec += usec
		}
	}
	return scripts, scriptUsec, all, nil
}

// statField returns the integer field name of a commandstats entry
// ("calls=3,usec=41,usec_per_call=13.67,...").
func statField(fields, name string) (int64, error) {
	for _, f := range strings.Split(fields, ",") {
		if k, v, _ := strings.Cut(f, "="); k == name {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("commandstats: no %s in %q", name, fields)
}

// sentCounter is a go-redis hook counting round trips from the client side:
// one per command sent alone, one per pipeline. Unlike INFO it is blind to
// other clients of the same server.
type sentCounter struct{ n atomic.Int64 }

func (c *sentCounter) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (c *sentCounter) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmd)
	}
}

func (c *sentCounter) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmds)
	}
}
