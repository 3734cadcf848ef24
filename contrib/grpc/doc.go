// Package ratekitgrpc limits gRPC calls with ratekit: unary and stream
// server interceptors that take the same decision as the HTTP middleware,
// through [middleware.Limiter.Take], so a service that speaks gRPC beside
// HTTP shares buckets, rules, plans, failure policy, deny cache and
// metrics with its HTTP API.
//
//	lim, err := middleware.New(middleware.Config{
//		KeyValidator: lookupKey,
//		Rules: []middleware.Rule{
//			{Name: "search", Routes: []string{"/shop.Catalog/Search"}, Policy: strict},
//			{Name: "orders", Routes: []string{"/shop.Orders/*"}, Policy: orders},
//		},
//	})
//	if err != nil {
//		log.Fatal(err)
//	}
//	ic, err := ratekitgrpc.New(lim, ratekitgrpc.Config{Routes: []string{"/shop.Orders/*"}})
//	if err != nil {
//		log.Fatal(err)
//	}
//	srv := grpc.NewServer(
//		grpc.ChainUnaryInterceptor(auth, ic.Unary),
//		grpc.ChainStreamInterceptor(authStream, ic.Stream),
//	)
//
// It is its own Go module (github.com/ratekit/ratekit/contrib/grpc), so
// gRPC never enters the go.sum of a program that imports only ratekit.
//
// # Rules
//
// A call's route is its full method name, "/pkg.Service/Method": rules
// name full methods in [middleware.Rule.Routes], and metrics report them.
// A rule for every method of a service names "/pkg.Service/*", and that
// pattern must also be listed in [Config.Routes], which reports the
// service's methods under it (a method listed there by its full name keeps
// its own route). Calls are decided with an empty method, so rules that
// name HTTP Methods never apply to them; metrics report their method as
// "OTHER".
//
// # Who is asking
//
// In order, as over HTTP: the client [Config.Identify] names (for example
// one the application's authentication interceptor stored with
// [middleware.WithClient], read by [ClientFromContext]); else an API key
// from the metadata keys [Config.KeyMetadata] names (x-api-key, then
// authorization: Bearer), checked by the limiter's KeyValidator; else the
// peer's IP address ([peer.FromContext]). Calls from a peer without one (a
// Unix socket) share one bucket.
//
// # The answer
//
// A refused call ends with [codes.ResourceExhausted] and a
// google.rpc.RetryInfo detail carrying the exact delay after which the
// same call would be admitted ([RetryDelay] reads it). When the store
// fails, the limiter's failure policy applies as over HTTP: FailOpen and
// LocalFallback let calls through (LocalFallback decides them locally),
// FailClosed ends them with [codes.Unavailable] and a RetryInfo of one
// second; a store failure is never ResourceExhausted.
//
// The rate-limit values are sent as response header metadata by default
// ([Config.Metadata] can choose trailers, or nothing): the fields the
// limiter's header style writes, with their names lower-cased
// (x-ratelimit-limit, x-ratelimit-remaining, retry-after, ... for the
// default Lindris style; x-ratelimit-degraded: true when the store failed).
//
// # Streams
//
// A stream is charged once, when it opens, as one call of its method; a
// refused stream never reaches its handler. [Config.StreamMessageCost]
// also charges every message the client sends on it, under the same
// identity and route; a refused message ends the stream with
// ResourceExhausted from RecvMsg, with the rate-limit values in the
// trailer.
//
// # What it does not do
//
// It holds no concurrency slot ([middleware.Config.Concurrency] counts
// HTTP requests only), reads no forwarding metadata (behind an L7 proxy,
// every call shares the proxy's address unless it carries a key or a
// client), and does not authenticate. [UnaryClientInterceptor] is the
// client side: it retries refused calls after the delay they carry.
package ratekitgrpc
