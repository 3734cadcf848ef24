package benchmarks

import (
	"net/http"

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

// newRatekitRedis is ratekit with its Redis store: one EVALSHA decides both
// windows; the middleware's deny cache answers repeat rejections locally.
func newRatekitRedis(client *goredis.Client, prefix string, l Limits) (Middleware, func(), error) {
	st, err := redisstore.New(client, redisstore.Config{Prefix: prefix, Now: l.Now})
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
