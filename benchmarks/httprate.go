package benchmarks

import "github.com/go-chi/httprate"

// newHTTPRate is go-chi/httprate: one window per middleware (a sliding-window
// counter over fixed windows aligned to the wall clock), keyed by IP.
// httprate reads time.Now and offers no clock hook.
func newHTTPRate(l Limits) (Middleware, func(), error) {
	var mws []Middleware
	for _, w := range windows(l) {
		mws = append(mws, httprate.Limit(w.limit, w.length, httprate.WithKeyByIP()))
	}
	return chain(mws), func() {}, nil
}
