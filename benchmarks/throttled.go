package benchmarks

import (
	"github.com/throttled/throttled/v2"
	"github.com/throttled/throttled/v2/store/memstore"
)

// newThrottled is throttled/throttled v2: GCRA, one quota per limiter. n per
// window is MaxRate n/window with MaxBurst n-1 (a burst of n at once). Each
// window has its own memstore, bounded like ratekit's memory store to 1<<20
// keys (LRU); both key on the RemoteAddr host. The memstore's clock can be
// replaced (SetTimeNow), which the accuracy run uses.
func newThrottled(l Limits) (Middleware, func(), error) {
	var mws []Middleware
	for _, w := range windows(l) {
		ms, err := memstore.New(1 << 20)
		if err != nil {
			return nil, nil, err
		}
		if l.Now != nil {
			ms.SetTimeNow(l.Now)
		}
		q := throttled.RateQuota{MaxRate: throttled.PerDuration(w.limit, w.length), MaxBurst: w.limit - 1}
		rl, err := throttled.NewGCRARateLimiterCtx(throttled.WrapStoreWithContext(ms), q)
		if err != nil {
			return nil, nil, err
		}
		h := &throttled.HTTPRateLimiterCtx{RateLimiter: rl, VaryBy: &throttled.VaryBy{RemoteAddr: true}}
		mws = append(mws, h.RateLimit)
	}
	return chain(mws), func() {}, nil
}
