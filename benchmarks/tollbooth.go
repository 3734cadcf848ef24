package benchmarks

import (
	"net/http"
	"time"

	"github.com/didip/tollbooth/v7"
	tblimiter "github.com/didip/tollbooth/v7/limiter"
)

// newTollbooth is didip/tollbooth v7 (the newest major the module proxy
// serves here): a golang.org/x/time/rate token bucket per key behind one
// mutex. A limit of n per window becomes rate n/window with burst n, the
// closest a token bucket gets to a window. Only RemoteAddr is consulted (the
// default also trusts X-Forwarded-For and X-Real-IP) and the URL is left out of
// the key, so the key is the client IP alone. Buckets expire after two minutes
// unused (the default is ten years). It reads time.Now.
func newTollbooth(l Limits) (Middleware, func(), error) {
	var mws []Middleware
	for _, w := range windows(l) {
		lmt := tollbooth.NewLimiter(float64(w.limit)/w.length.Seconds(),
			&tblimiter.ExpirableOptions{DefaultExpirationTTL: 2 * time.Minute})
		lmt.SetBurst(w.limit).SetIPLookups([]string{"RemoteAddr"}).SetIgnoreURL(true)
		mws = append(mws, func(next http.Handler) http.Handler { return tollbooth.LimitHandler(lmt, next) })
	}
	return chain(mws), func() {}, nil
}
