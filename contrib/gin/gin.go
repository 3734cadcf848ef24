package ratekitgin

import (
	"net/http"
	"sync"

	"github.com/gin-gonic/gin"
	"github.com/ratekit/ratekit/middleware"
)

// Config configures the middleware [New] returns. The zero value is what
// [Middleware] uses: the client from [SetClient], unmatched requests not
// limited.
type Config struct {
	// Client names the client of a request from gin's context, for an
	// application whose authentication keeps its own user there: return
	// the [middleware.Client] its requests count against, or ok false to
	// leave the request to the limiter's key headers and address. Nil
	// means the Client [SetClient] stored. The limiter reads the client
	// only if it was built with Identify: [middleware.ClientFromContext].
	// It runs on every request, so it should answer from memory; it must
	// not panic.
	Client func(c *gin.Context) (client middleware.Client, ok bool)
	// Unmatched is the route under which requests that gin matched no
	// route for (404, or 405 with HandleMethodNotAllowed) are limited, as
	// rules name it and metrics report it (for example "/*"). Empty, the
	// default, means they are not limited and count nowhere, as under chi
	// and net/http's ServeMux. Set it only when the NoRoute handler serves
	// real content: every path then draws on one allowance per client.
	Unmatched string
}

// Middleware returns gin middleware that limits every request it sees
// with lim, by the route gin matched: New(lim, Config{}).
func Middleware(lim *middleware.Limiter) gin.HandlerFunc {
	return New(lim, Config{})
}

// New returns gin middleware that limits every request it sees with lim,
// as cfg says. cfg is copied. The middleware is safe for concurrent use,
// and may be mounted with Use on the engine or on any number of groups;
// mounted twice on one request's chain, it decides (and counts) the
// request twice.
func New(lim *middleware.Limiter, cfg Config) gin.HandlerFunc {
	a := &adapter{lim: lim, client: cfg.Client, unmatched: cfg.Unmatched}
	if a.client == nil {
		a.client = ClientFrom
	}
	a.pool.New = func() any { return new(chain) }
	return a.serve
}

// adapter is one mounted middleware.
type adapter struct {
	lim       *middleware.Limiter
	client    func(*gin.Context) (middleware.Client, bool)
	unmatched string
	pool      sync.Pool // of *chain
}

// chain is the rest of gin's chain as the http.Handler ServeRoute calls
// when it lets the request through. It is pooled: one per request would
// be an allocation on every request.
type chain struct {
	c      *gin.Context
	called bool
}

// ServeHTTP continues gin's chain.
func (ch *chain) ServeHTTP(http.ResponseWriter, *http.Request) {
	ch.called = true
	ch.c.Next()
}

// serve is the middleware.
func (a *adapter) serve(c *gin.Context) {
	if cl, ok := a.client(c); ok && cl.ID != "" {
		c.Request = c.Request.WithContext(middleware.WithClient(c.Request.Context(), cl))
	}
	route := c.FullPath()
	if route == "" {
		route = a.unmatched
	}
	ch := a.pool.Get().(*chain)
	ch.c, ch.called = c, false
	// The limiter passes c.Request to ch unchanged, and gin's handlers
	// read c.Request, so nothing needs copying back.
	a.lim.ServeRoute(c.Writer, c.Request, route, ch)
	called := ch.called
	ch.c = nil
	a.pool.Put(ch)
	if !called {
		// Refused: the answer is written; no later handler may run.
		c.Abort()
	}
}

// clientKey is the gin context key of SetClient.
type clientKey struct{}

// SetClient stores client in c as the client of its request, for the
// middleware to count the request against client.ID with its plan and
// exemption. An authentication middleware mounted before the limiter
// calls it:
//
//	ratekitgin.SetClient(c, middleware.Client{ID: user.AccountID, Plan: user.Plan})
//
// The limiter must be built with Identify: [middleware.ClientFromContext].
// A Client with an empty ID names no client.
func SetClient(c *gin.Context, client middleware.Client) {
	c.Set(clientKey{}, client)
}

// ClientFrom returns the Client [SetClient] stored in c. It is the default
// of [Config.Client].
func ClientFrom(c *gin.Context) (middleware.Client, bool) {
	v, ok := c.Get(clientKey{})
	if !ok {
		return middleware.Client{}, false
	}
	cl, ok := v.(middleware.Client)
	return cl, ok
}
