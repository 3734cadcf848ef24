package benchmarks

import (
	limiter "github.com/ulule/limiter/v3"
	"github.com/ulule/limiter/v3/drivers/middleware/stdlib"
	ulmemory "github.com/ulule/limiter/v3/drivers/store/memory"
)

// newUlule is ulule/limiter with its memory store and stdlib middleware: a
// fixed window starting at a key's first request, one rate per limiter. The
// store keys by prefix and IP only (not by rate), so each window needs its own
// store. The default key getter uses RemoteAddr (forwarding headers are not
// trusted by default). It reads time.Now.
func newUlule(l Limits) (Middleware, func(), error) {
	var mws []Middleware
	for _, w := range windows(l) {
		st := ulmemory.NewStore()
		lim := limiter.New(st, limiter.Rate{Period: w.length, Limit: int64(w.limit)})
		mws = append(mws, stdlib.NewMiddleware(lim).Handler)
	}
	return chain(mws), func() {}, nil
}
