package middleware

import (
	"net/http"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

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

// route returns the full route pattern r matches, without method or host,
// and whether any router could say. known && pattern == "" means the
// router will answer 404 or 405: nothing to limit.
//
// In order: Config.Router (a ServeMux wrapped from outside); the pattern a
// router has set once it has routed the request all the way (the limiter is
// mounted on a route: ServeMux's Handle, chi's With or Group); chi's
// outermost router, asked through its route context for the whole path
// (the limiter is mounted with r.Use at the top, or inside r.Route or a
// Mounted router, where the pattern set so far is only the mount's
// "/v2/*").
func (l *Limiter) route(r *http.Request, rs *ruleSet) (pattern string, known bool) {
	if l.router != nil {
		if r.Method == http.MethodConnect {
			// ServeMux answers CONNECT with redirects whose "pattern" is
			// the request's own path: never a label. The rules that name
			// no route apply.
			return "", false
		}
		// The router we were given wins over a pattern an outer router set
		// (an outer ServeMux mounting us under a prefix).
		_, pattern = l.router.Handler(r)
		return pathOfPattern(pattern), true
	}
	rctx := chi.RouteContext(r.Context())
	// A pattern is final when no chi router is involved, or chi set it
	// after routing all the way (not a mount's "/v2/*"); a pattern set
	// before chi routed at all came from a router outside chi.
	if r.Pattern != "" && (rctx == nil || (len(rctx.RoutePatterns) > 0 && !strings.HasSuffix(r.Pattern, "*"))) {
		return pathOfPattern(r.Pattern), true
	}
	if rctx != nil && rctx.Routes != nil {
		l.routes.checkChi(l, rctx.Routes, rs)
		return chiRoute(rctx, r), true
	}
	if r.Pattern != "" {
		return pathOfPattern(r.Pattern), true
	}
	l.routes.noRouter(l, rs)
	return "", false
}

// chiRoute asks chi's outermost router which full pattern r will reach.
//
// At the top of the router (nothing routed yet) chi routes on RoutePath
// when a middleware set it, else on the URL's path; inside a sub-router,
// RoutePath has been cut to the sub-router's part, so the outermost router
// is asked for the whole URL path, and its answer joins every mount's
// prefix.
//
// Middlewares that run before chi routes may rewrite what it routes on
// (StripSlashes and CleanPath the path, GetHead the method), whether they
// run before or after the limiter; so a request that finds no route as
// sent is tried as those middlewares would rewrite it, and counts against
// the route it would then reach. Only a request that no rewrite brings to a
// route is unmatched.
func chiRoute(rctx *chi.Context, r *http.Request) string {
	method := r.Method
	if rctx.RouteMethod != "" {
		method = rctx.RouteMethod
	}
	p := ""
	if len(rctx.RoutePatterns) == 0 {
		p = rctx.RoutePath
	}
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
	if alt != p {
		if pattern := find(method, alt); pattern != "" {
			return pattern
		}
	}
	if method == http.MethodHead {
		for _, candidate := range []string{p, alt} {
			if pattern := find(http.MethodGet, candidate); pattern != "" {
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

// routeChecks warns, once, about rules that cannot work where the limiter
// is mounted: rules naming routes when no router can tell the limiter a
// route, and routes a chi router does not serve. Each check costs one
// atomic load per request once it has run.
type routeChecks struct {
	warnedNone atomic.Pointer[ruleSet] // the rule set noRouter last warned about
	checkedChi atomic.Pointer[ruleSet] // the rule set checkChi last checked
	mu         sync.Mutex
}

// noRouter warns when rs names routes but the request came with no route
// information: every such rule is dead.
func (rc *routeChecks) noRouter(l *Limiter, rs *ruleSet) {
	if len(rs.routes) == 0 || rc.warnedNone.Load() == rs || rc.warnedNone.Swap(rs) == rs {
		return
	}
	l.log.Warn("ratekit: rules name routes, but the limiter cannot learn the route of a request; "+
		"those rules never apply (mount the limiter inside the router, or set Config.Router)",
		"routes", strings.Join(rs.routes, " "))
}

// checkChi warns about each route of rs that the chi router routes does
// not serve, by walking its tree (sub-routers included) once per rule set.
func (rc *routeChecks) checkChi(l *Limiter, routes chi.Routes, rs *ruleSet) {
	if len(rs.routes) == 0 || rc.checkedChi.Load() == rs {
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.checkedChi.Load() == rs {
		return
	}
	rc.checkedChi.Store(rs)
	served := map[string]bool{}
	chi.Walk(routes, func(_ string, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		served[route] = true
		if trimmed := strings.TrimSuffix(route, "/"); trimmed != "" {
			served[trimmed] = true
		}
		return nil
	})
	var dead []string
	for _, rt := range rs.routes {
		if !served[rt] {
			dead = append(dead, rt)
		}
	}
	if len(dead) > 0 {
		slices.Sort(dead)
		l.log.Warn("ratekit: rules name routes the chi router does not serve; they never apply (name full patterns, mount prefixes included)",
			"routes", strings.Join(dead, " "))
	}
}
