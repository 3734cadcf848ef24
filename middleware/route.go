package middleware

import (
	"net/http"
	"strings"
	"sync"

	"github.com/go-chi/chi/v5"
)

// Router is what the limiter needs of a router it wraps from the outside
// (lim.Handler(mux)) to learn which route a request will match before the
// router runs. *http.ServeMux satisfies it. chi needs nothing: its route
// context carries the router.
type Router interface {
	Handler(r *http.Request) (h http.Handler, pattern string)
}

// chiContexts pools the scratch route contexts chi's Find needs.
var chiContexts = sync.Pool{New: func() any { return chi.NewRouteContext() }}

// route returns the route pattern r matches, without method or host, and
// whether any router could say. known && pattern == "" means the router
// will answer 404 or 405: nothing to limit.
//
// In order: the pattern the router already set (the limiter is mounted on a
// route: ServeMux's Handle, chi's With or Route); chi's router found through
// its route context (the limiter is mounted with chi's r.Use, before
// routing); Config.Router (a ServeMux wrapped from outside).
func (l *Limiter) route(r *http.Request) (pattern string, known bool) {
	if r.Pattern != "" {
		return pathOfPattern(r.Pattern), true
	}
	if rctx := chi.RouteContext(r.Context()); rctx != nil && rctx.Routes != nil {
		path := r.URL.RawPath // chi routes on the escaped path when there is one
		if path == "" {
			path = r.URL.Path
		}
		c := chiContexts.Get().(*chi.Context)
		c.Reset()
		pattern = rctx.Routes.Find(c, r.Method, path)
		chiContexts.Put(c)
		return pattern, true
	}
	if l.router != nil {
		_, pattern = l.router.Handler(r)
		return pathOfPattern(pattern), true
	}
	return "", false
}

// pathOfPattern drops the method and host of a ServeMux pattern
// ("GET example.com/v1/{id}" → "/v1/{id}"); chi patterns pass unchanged.
func pathOfPattern(p string) string {
	if i := strings.IndexAny(p, " \t"); i >= 0 {
		p = strings.TrimLeft(p[i:], " \t")
	}
	if i := strings.IndexByte(p, '/'); i > 0 {
		p = p[i:]
	}
	return p
}
