package benchmarks

import (
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// newXRate is what many services write by hand: a sync.Map from client IP to
// one golang.org/x/time/rate limiter per window (rate n/window, burst n). The
// entry's mutex makes the two-window check atomic: a request is admitted only
// if both buckets hold a token, and then takes one from each. Entries are
// never removed (a real service adds a sweeper). Time comes from Limits.Now
// when set.
func newXRate(l Limits) (Middleware, func(), error) {
	ws := windows(l)
	now := l.Now
	if now == nil {
		now = time.Now
	}
	var clients sync.Map // string -> *xrateEntry
	mw := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ip := clientIP(r)
			v, ok := clients.Load(ip)
			if !ok {
				e := &xrateEntry{lims: make([]*rate.Limiter, len(ws))}
				for i, w := range ws {
					e.lims[i] = rate.NewLimiter(rate.Limit(float64(w.limit)/w.length.Seconds()), w.limit)
				}
				v, _ = clients.LoadOrStore(ip, e)
			}
			if !v.(*xrateEntry).allow(now()) {
				tooMany(w)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	return mw, func() {}, nil
}

type xrateEntry struct {
	mu   sync.Mutex
	lims []*rate.Limiter
}

// allow takes a token from every bucket at t if each has one.
func (e *xrateEntry) allow(t time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, l := range e.lims {
		if l.TokensAt(t) < 1 {
			return false
		}
	}
	for _, l := range e.lims {
		l.AllowN(t, 1)
	}
	return true
}
