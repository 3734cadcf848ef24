package benchmarks

import (
	"net"
	"net/http"
	"time"
)

// Limits is the policy an adapter enforces per client IP: at most PerMinute
// requests in any minute and at most PerSecond in any second. Zero means that
// window is absent.
type Limits struct {
	PerMinute int
	PerSecond int
	// Now replaces the wall clock for adapters whose Peer.Clock is true; nil
	// means the clock the library uses by default. Other adapters ignore it.
	Now func() time.Time
}

// Middleware is the shape every adapter returns.
type Middleware = func(http.Handler) http.Handler

// Peer is one library under comparison.
type Peer struct {
	// Name labels the peer in benchmark names and tables.
	Name string
	// Clock reports whether the adapter honours Limits.Now.
	Clock bool
	// New builds the middleware for l. close releases whatever the library
	// started (sweepers, stores); it is never nil.
	New func(l Limits) (mw Middleware, close func(), err error)
}

// Memory returns the in-process peers, ratekit first.
func Memory() []Peer {
	return []Peer{
		{Name: "ratekit", Clock: true, New: newRatekit},
		{Name: "httprate", New: newHTTPRate},
		{Name: "ulule", New: newUlule},
		{Name: "tollbooth", New: newTollbooth},
		{Name: "golimiter", New: newGoLimiter},
		{Name: "throttled", Clock: true, New: newThrottled},
		{Name: "xrate", Clock: true, New: newXRate},
	}
}

// windows lists the windows of l, per-second first: the order in which
// adapters chain one middleware per window (outermost first).
func windows(l Limits) []win {
	var ws []win
	if l.PerSecond > 0 {
		ws = append(ws, win{length: time.Second, limit: l.PerSecond})
	}
	if l.PerMinute > 0 {
		ws = append(ws, win{length: time.Minute, limit: l.PerMinute})
	}
	return ws
}

type win struct {
	length time.Duration
	limit  int
}

// chain composes middlewares; the first is outermost.
func chain(mws []Middleware) Middleware {
	return func(next http.Handler) http.Handler {
		for i := len(mws) - 1; i >= 0; i-- {
			next = mws[i](next)
		}
		return next
	}
}

// clientIP is the host of RemoteAddr, for the adapters that have to key by
// hand (x/time/rate, redis_rate have no HTTP layer).
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func tooMany(w http.ResponseWriter) {
	http.Error(w, "Too Many Requests", http.StatusTooManyRequests)
}

func closeAll(fs []func()) func() {
	return func() {
		for _, f := range fs {
			f()
		}
	}
}
