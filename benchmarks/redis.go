package benchmarks

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/go-redis/redis_rate/v10"
	goredis "github.com/redis/go-redis/v9"

	"github.com/ratekit/ratekit/middleware"
	redisstore "github.com/ratekit/ratekit/store/redis"
)

// Redis returns the Redis-backed peers. Every key they write starts with
// prefix (choose one per run) and carries a TTL; nothing is flushed. client
// must have ContextTimeoutEnabled and MaxRetries -1, as ratekit requires.
func Redis(client *goredis.Client, prefix string) []Peer {
	return []Peer{
		{Name: "ratekit-redis", Clock: true, New: func(l Limits) (Middleware, func(), error) {
			return newRatekitRedis(client, prefix+"-rk", l)
		}},
		{Name: "redis_rate", New: func(l Limits) (Middleware, func(), error) {
			return newRedisRate(client, prefix+"-rr", l)
		}},
	}
}

// RedisInstances returns ratekit with its Redis store run as len(clients)
// application instances sharing one Redis: each instance has its own
// go-redis client, store and middleware (with the same prefix and hash key,
// as a deployment configures them), and requests go to the instances in
// round robin, as a load balancer would send them.
func RedisInstances(clients []*goredis.Client, prefix string) Peer {
	return Peer{
		Name:  fmt.Sprintf("ratekit-redis-x%d", len(clients)),
		Clock: true,
		New: func(l Limits) (Middleware, func(), error) {
			var mws []Middleware
			var closes []func()
			for _, c := range clients {
				mw, closeFn, err := newRatekitRedis(c, prefix+"-rk", l)
				if err != nil {
					closeAll(closes)()
					return nil, nil, err
				}
				mws, closes = append(mws, mw), append(closes, closeFn)
			}
			return roundRobin(mws), closeAll(closes), nil
		},
	}
}

// roundRobin sends successive requests through each middleware in turn.
func roundRobin(mws []Middleware) Middleware {
	return func(next http.Handler) http.Handler {
		hs := make([]http.Handler, len(mws))
		for i, mw := range mws {
			hs[i] = mw(next)
		}
		var n atomic.Uint64
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hs[(n.Add(1)-1)%uint64(len(hs))].ServeHTTP(w, r)
		})
	}
}

// newRatekitRedis is ratekit with its Redis store: one EVALSHA decides both
// windows; the middleware's deny cache answers repeat rejections locally.
func newRatekitRedis(client *goredis.Client, prefix string, l Limits) (Middleware, func(), error) {
	cfg := redisstore.Config{Prefix: prefix, Now: l.Now}
	if l.Now != nil {
		// A fake clock means the accuracy run, which is about decisions:
		// on a loaded machine a decision past the default 50 ms would fail
		// open and count as admitted. Throughput runs keep the default.
		cfg.Timeout = 2 * time.Second
	}
	st, err := redisstore.New(client, cfg)
	if err != nil {
		return nil, nil, err
	}
	lim, err := middleware.New(middleware.Config{
		Policy:  policy(l),
		Store:   st,
		HashKey: []byte("benchmarks-fixed-hash-key-32byte"),
		// The deny cache times its entries on the process clock; under a
		// fake store clock it would go on refusing after the fake window
		// has moved on. It only ever repeats rejections, so turning it off
		// cannot make the accuracy run look better.
		DisableDenyCache: l.Now != nil,
	})
	if err != nil {
		return nil, nil, err
	}
	return lim.Handler, func() { lim.Close(); st.Close() }, nil
}

// newRedisRate is go-redis/redis_rate (GCRA in Lua, time from Redis), which
// has no HTTP layer: the adapter is the few lines a user writes, one Allow
// (one round trip) per window, per-second first. A Redis error lets the
// request through, as ratekit's default failure policy does.
func newRedisRate(client *goredis.Client, prefix string, l Limits) (Middleware, func(), error) {
	rl := redis_rate.NewLimiter(client)
	var mws []Middleware
	for _, w := range windows(l) {
		lim := redis_rate.Limit{Rate: w.limit, Burst: w.limit, Period: w.length}
		keyPrefix := prefix + ":" + w.length.String() + ":"
		mws = append(mws, func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
				res, err := rl.Allow(r.Context(), keyPrefix+clientIP(r), lim)
				if err == nil && res.Allowed == 0 {
					tooMany(rw)
					return
				}
				next.ServeHTTP(rw, r)
			})
		})
	}
	return chain(mws), func() {}, nil
}
