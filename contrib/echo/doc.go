// Package ratekitecho mounts ratekit's rate limiter on Echo v4
// (github.com/labstack/echo/v4) in one line, globally or per group:
//
//	lim, err := middleware.New(middleware.Config{
//		Rules: []middleware.Rule{{Routes: []string{"/v1/people/:id"}, Policy: strict}},
//	})
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer lim.Close()
//	e := echo.New()
//	e.Use(ratekitecho.Middleware(lim))              // every route
//	v2 := e.Group("/v2", ratekitecho.Middleware(lim)) // or one group
//
// Mount it with Use, never with Pre: Pre middleware runs before Echo has
// routed the request, when no route is known, so nothing would be limited.
//
// It is its own Go module (github.com/ratekit/ratekit/contrib/echo), so
// Echo never enters the go.sum of a program that imports only ratekit. The
// package is named ratekitecho so that it reads apart from echo itself. It
// is for Echo v4, which most services run; Echo v5 changed the Context
// type and would need a module of its own.
//
// # Routes
//
// Each request is served by [middleware.Limiter.ServeRoute] with the route
// Echo matched, [echo.Context.Path]: rules name Echo's route paths
// ("/v1/people/:id", "/files/*"), group prefixes included, and the metrics
// report them as the route.
//
// Echo's Path is not empty for every request it has no route for: a 405
// (the path has a route for another method) reports that route's path, and
// a 404 inside a group with middleware reports the group's catch-all
// ("/v2/*"). So a request counts as matched only when the router holds a
// route of its method and Path (read from Echo's routers, refreshed at most
// once a second when a request misses, so register routes before serving).
// Every other request (Echo's 404 and 405, and the automatic OPTIONS
// answer) is not limited and counts nowhere, as under chi and net/http's
// ServeMux, so a scan of random paths mints no buckets. [Config.Unmatched]
// limits such requests under a route of their choosing instead.
//
// # Who is asking
//
// The limiter identifies the client as its [middleware.Config] says: API
// keys from the headers it names, else the client address (Echo's
// IPExtractor is not consulted: set the limiter's ClientIP.TrustedProxies
// behind a proxy). A client the application has already authenticated is
// put in Echo's context with [SetClient] (or found by [Config.Client]); the
// adapter moves it onto the request's context with
// [middleware.WithClient], where the limiter reads it if, and only if, it
// was built with Identify: [middleware.ClientFromContext].
//
// # The answer
//
// The rate-limit headers, the 429 (or FailClosed's 503) and its body are
// written through Echo's Response exactly as over net/http; a refused
// request does not reach the rest of the chain, and the middleware returns
// nil for it, since the answer is already written. An error of the chain
// is returned as it came, for Echo's error handler.
//
// # What it does not do
//
// It keeps no state of its own beyond the set of Echo's routes: decisions,
// failure policy, deny cache and metrics are the Limiter's. It does not
// authenticate.
package ratekitecho
