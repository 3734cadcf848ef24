package middleware

import (
	"net/http"
	"path"
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
// In order: Config.Router (a ServeMux wrapped from outside); the pattern the
// router already set (the limiter is mounted on a route: ServeMux's Handle,
// chi's With or Group); chi's router found through its route context (the
// limiter is mounted with chi's r.Use, before routing).
func (l *Limiter) route(r *http.Request) (pattern string, known bool) {
	if l.router != nil {
		// The router we were given wins over a pattern an outer router set
		// (an outer ServeMux mounting us under a prefix).
		_, pattern = l.router.Handler(r)
		return pathOfPattern(pattern), true
	}
	if r.Pattern != "" {
		return pathOfPattern(r.Pattern), true
	}
	if rctx := chi.RouteContext(r.Context()); rctx != nil && rctx.Routes != nil {
		return chiRoute(rctx, r), true
	}
	return "", false
}

// chiRoute asks chi's router which pattern r will reach. Middlewares that
// run before chi routes may rewrite what it routes on (StripSlashes and
// CleanPath the path, GetHead the method), whether they run before or
// after the limiter; so a request that finds no route as sent is tried as
// those middlewares would rewrite it, and counts against the route it
// would then reach. Only a request that no rewrite brings to a route is
// unmatched.
func chiRoute(rctx *chi.Context, r *http.Request) string {
	method := r.Method
	if rctx.RouteMethod != "" {
		method = rctx.RouteMethod
	}
	p := rctx.RoutePath
	if p == "" {
		p = r.URL.RawPath // chi routes on the escaped path when there is one
		if p == "" {
			p = r.URL.Path
		}
	}
	c := chiContexts.Get().(*chi.Context)
	defer chiContexts.Put(c)
	find := func(method, p string) string {
		c.Reset()
		return rctx.Routes.Find(c, method, p)
	}
	if pattern := find(method, p); pattern != "" {
		return pattern
	}
	alt := path.Clean(p)
	if alt == "." {
		alt = "/"
	}
	methods := []string{method}
	if method == http.MethodHead {
		methods = append(methods, http.MethodGet)
	}
	for _, m := range methods {
		for _, candidate := range []string{p, alt} {
			if pattern := find(m, candidate); pattern != "" {
				return pattern
			}
		}
	}
	return ""
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
