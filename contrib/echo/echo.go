package ratekitecho

import (
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/ratekit/ratekit/middleware"
)

// Config configures the middleware [New] returns. The zero value is what
// [Middleware] uses: the client from [SetClient], unmatched requests not
// limited.
type Config struct {
	// Client names the client of a request from Echo's context, for an
	// application whose authentication keeps its own user there: return
	// the [middleware.Client] its requests count against, or ok false to
	// leave the request to the limiter's key headers and address. Nil
	// means the Client [SetClient] stored. The limiter reads the client
	// only if it was built with Identify: [middleware.ClientFromContext].
	// It runs on every request, so it should answer from memory; it must
	// not panic.
	Client func(c echo.Context) (client middleware.Client, ok bool)
	// Unmatched is the route under which requests that Echo has no route
	// for (404, 405, the automatic OPTIONS answer) are limited, as rules
	// name it and metrics report it (for example "/*"). Empty, the
	// default, means they are not limited and count nowhere, as under chi
	// and net/http's ServeMux. Set it only when a RouteNotFound handler
	// serves real content: every such path then draws on one allowance per
	// client.
	Unmatched string
}

// ClientKey is the key in Echo's context under which [SetClient] stores
// the client, a [middleware.Client] value.
const ClientKey = "ratekit.client"

// Middleware returns Echo middleware that limits every request it sees
// with lim, by the route Echo matched: New(lim, Config{}).
func Middleware(lim *middleware.Limiter) echo.MiddlewareFunc {
	return New(lim, Config{})
}

// New returns Echo middleware that limits every request it sees with lim,
// as cfg says. cfg is copied. The middleware is safe for concurrent use,
// and may be mounted with Use on the Echo or on any number of groups;
// mounted twice on one request's chain, it decides (and counts) the
// request twice. Use one middleware per Echo: it keeps the set of one
// Echo's routes, and two Echos taking turns would rebuild it each time.
func New(lim *middleware.Limiter, cfg Config) echo.MiddlewareFunc {
	a := &adapter{lim: lim, client: cfg.Client, unmatched: cfg.Unmatched}
	if a.client == nil {
		a.client = ClientFrom
	}
	a.pool.New = func() any { return new(chain) }
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error { return a.serve(c, next) }
	}
}

// adapter is one mounted middleware.
type adapter struct {
	lim       *middleware.Limiter
	client    func(echo.Context) (middleware.Client, bool)
	unmatched string
	pool      sync.Pool // of *chain
	routes    routeSet
}

// chain is the rest of Echo's chain as the http.Handler ServeRoute calls
// when it lets the request through. It is pooled: one per request would
// be an allocation on every request.
type chain struct {
	c      echo.Context
	next   echo.HandlerFunc
	err    error
	called bool
}

// ServeHTTP continues Echo's chain, keeping its error for serve to return.
func (ch *chain) ServeHTTP(http.ResponseWriter, *http.Request) {
	ch.called = true
	ch.err = ch.next(ch.c)
}

// serve is the middleware.
func (a *adapter) serve(c echo.Context, next echo.HandlerFunc) error {
	if cl, ok := a.client(c); ok && cl.ID != "" {
		r := c.Request()
		c.SetRequest(r.WithContext(middleware.WithClient(r.Context(), cl)))
	}
	route := a.unmatched
	if a.routes.has(c) {
		route = c.Path()
	}
	ch := a.pool.Get().(*chain)
	*ch = chain{c: c, next: next}
	a.lim.ServeRoute(c.Response(), c.Request(), route, ch)
	err := ch.err
	*ch = chain{}
	a.pool.Put(ch)
	// Refused, the answer is written and err is nil: Echo's error handler
	// must not write another.
	return err
}

// SetClient stores client in c as the client of its request, under
// [ClientKey], for the middleware to count the request against client.ID
// with its plan and exemption. An authentication middleware that runs
// before the limiter calls it:
//
//	ratekitecho.SetClient(c, middleware.Client{ID: user.AccountID, Plan: user.Plan})
//
// The limiter must be built with Identify: [middleware.ClientFromContext].
// A Client with an empty ID names no client.
func SetClient(c echo.Context, client middleware.Client) {
	c.Set(ClientKey, client)
}

// ClientFrom returns the Client stored in c under [ClientKey]. It is the
// default of [Config.Client].
func ClientFrom(c echo.Context) (middleware.Client, bool) {
	cl, ok := c.Get(ClientKey).(middleware.Client)
	return cl, ok
}

// routeSet knows which (method, path) pairs Echo has a route for, to tell
// a request Echo routed from one it answers 404 or 405: Echo's Path alone
// cannot (see the package doc).
type routeSet struct {
	cur atomic.Pointer[routes]
	mu  sync.Mutex // serialises rebuilds
}

// routes is the route set of one Echo at one instant; never modified.
type routes struct {
	e *echo.Echo
	// methods maps a route path to the methods it has routes for: one
	// string hashed per request, then a few short comparisons.
	methods map[string][]string
	built   time.Time
}

// has reports whether rt holds a route of method at path.
func (rt *routes) has(method, path string) bool {
	return slices.Contains(rt.methods[path], method)
}

// rebuildEvery bounds how often a request Echo has no route for rebuilds
// the set: a scan of random paths must not cost a walk of every route per
// request, and a route added while serving is limited within this long.
const rebuildEvery = time.Second

// has reports whether Echo routed c's request to a route of its own: a
// route of the request's method at c.Path().
func (rs *routeSet) has(c echo.Context) bool {
	path := c.Path()
	if path == "" {
		return false // nothing matched at all
	}
	method := c.Request().Method
	e := c.Echo()
	cur := rs.cur.Load()
	if cur != nil && cur.e == e {
		if cur.has(method, path) {
			return true
		}
		if time.Since(cur.built) < rebuildEvery {
			return false
		}
	}
	return rs.rebuild(e, cur).has(method, path)
}

// rebuild reads e's routes, unless another goroutine has replaced seen
// meanwhile.
func (rs *routeSet) rebuild(e *echo.Echo, seen *routes) *routes {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if cur := rs.cur.Load(); cur != seen && cur.e == e {
		return cur
	}
	next := &routes{e: e, methods: map[string][]string{}, built: time.Now()}
	add := func(r *echo.Router) {
		for _, rt := range r.Routes() {
			// RouteNotFound entries carry a method no request has.
			if !slices.Contains(next.methods[rt.Path], rt.Method) {
				next.methods[rt.Path] = append(next.methods[rt.Path], rt.Method)
			}
		}
	}
	add(e.Router())
	for _, r := range e.Routers() {
		add(r)
	}
	rs.cur.Store(next)
	return next
}
