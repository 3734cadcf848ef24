package benchmarks

import (
	"context"

	"github.com/sethvargo/go-limiter/httplimit"
	"github.com/sethvargo/go-limiter/memorystore"
)

// newGoLimiter is sethvargo/go-limiter's memorystore behind its httplimit
// middleware: n tokens per interval, refilled at ticks counted from the key's
// first request. One rate per store, so one store and middleware per window.
// It reads its own coarse clock (fasttime) and offers no hook.
func newGoLimiter(l Limits) (Middleware, func(), error) {
	var mws []Middleware
	var closers []func()
	for _, w := range windows(l) {
		st, err := memorystore.New(&memorystore.Config{Tokens: uint64(w.limit), Interval: w.length})
		if err != nil {
			closeAll(closers)()
			return nil, nil, err
		}
		closers = append(closers, func() { st.Close(context.Background()) })
		m, err := httplimit.NewMiddleware(st, httplimit.IPKeyFunc())
		if err != nil {
			closeAll(closers)()
			return nil, nil, err
		}
		mws = append(mws, m.Handle)
	}
	return chain(mws), closeAll(closers), nil
}
