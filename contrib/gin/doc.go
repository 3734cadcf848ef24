// Package ratekitgin mounts ratekit's rate limiter on gin
// (github.com/gin-gonic/gin) in one line, globally or per group:
//
//	lim, err := middleware.New(middleware.Config{
//		Rules: []middleware.Rule{{Routes: []string{"/v1/people/:id"}, Policy: strict}},
//	})
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer lim.Close()
//	r := gin.New()
//	r.Use(ratekitgin.Middleware(lim))           // every route
//	v2 := r.Group("/v2", ratekitgin.Middleware(lim)) // or one group
//
// It is its own Go module (github.com/ratekit/ratekit/contrib/gin), so gin
// never enters the go.sum of a program that imports only ratekit. The
// package is named ratekitgin so that it reads apart from gin itself.
//
// # Routes
//
// Each request is served by [middleware.Limiter.ServeRoute] with the route
// template gin matched, [gin.Context.FullPath]: rules name gin's templates
// ("/v1/people/:id", "/files/*path"), group prefixes included, and the
// metrics report them as the route. A request gin matches no route for
// (its 404, and its 405 with HandleMethodNotAllowed) has no FullPath: it is
// not limited and counts nowhere, as under chi and net/http's ServeMux, so a
// scan of random paths mints no buckets. [Config.Unmatched] limits such
// requests under a route of their choosing instead, for an application
// whose NoRoute handler serves real content.
//
// # Who is asking
//
// The limiter identifies the client as its [middleware.Config] says: API
// keys from the headers it names, else the client address. A client the
// application has already authenticated is put in gin's context with
// [SetClient] (or found by [Config.Client]); the adapter moves it onto the
// request's context with [middleware.WithClient], where the limiter reads
// it if, and only if, it was built with Identify:
// [middleware.ClientFromContext]. Without that field the client is ignored
// and the request counts by its key or address.
//
// # The answer
//
// The rate-limit headers, the 429 (or FailClosed's 503) and its body are
// written through gin's ResponseWriter exactly as over net/http; a refused
// request aborts gin's chain, so no later handler runs. Handlers that
// come before the middleware in the chain still see the refusal as the
// response status.
//
// # What it does not do
//
// It keeps no state: decisions, failure policy, deny cache and metrics are
// the Limiter's. It does not authenticate.
package ratekitgin
