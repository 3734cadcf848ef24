// Package middleware is ratekit's HTTP layer: it finds out who is asking,
// takes one decision from the store, and writes the answer.
//
// A [Limiter] wraps any http.Handler and so mounts on net/http's ServeMux,
// chi (at the top or inside any sub-router), and any router that takes
// func(http.Handler) http.Handler:
//
//	lim, err := middleware.New(middleware.Config{}) // 60/min + 2/s, per client IP, in memory
//	if err != nil {
//		log.Fatal(err) // every invalid field is listed
//	}
//	defer lim.Close()
//	mux.Handle("/v1/", lim.Handler(api))
//
// # The three steps
//
// Every request is identified (route.go: which [Rule] applies;
// identity.go: who is asking), decided (decide.go: one store call, or the
// failure policy), and answered (answer.go: headers, and the refusal when
// there is one). [Limiter.Take] is the same decision without HTTP, for a
// gRPC handler or a job that must charge a client's allowance, and
// [Limiter.Answer] writes its result onto any response.
//
// # Who is asking
//
// In order: the client [Config.Identify] names (for example a principal an
// authentication middleware stored with [WithClient]); else the client
// behind an API key in [Config.KeyHeaders] (X-API-Key, then Authorization:
// Bearer, by default) that [Config.KeyValidator] accepts; else the client
// address (see [ClientIP]; forwarding headers are believed only from
// configured proxies). A missing, malformed or unknown key counts against
// the address, so random keys mint no allowance. Identities are turned
// into store keys with a keyed hash ([Config.HashKey]): no store, log line
// or metric ever holds a key or an address.
//
// # The answer
//
// Every response carries rate-limit headers (Lindris style by default:
// X-RateLimit-Limit, -Remaining, -Limit-Second, -Remaining-Second, -Reset,
// -Limited-By). A rejected request gets 429, Retry-After and a JSON body,
// and the handler is not called. Header styles and bodies are replaceable
// (package headers).
//
// When the store fails, [Config.OnStoreError] decides: admit with
// X-RateLimit-Degraded: true (the default), answer 503, or decide with a
// local fallback limiter. A store failure is never answered with 429.
//
// # What it does not do
//
// It does not authenticate: KeyValidator only says which bucket a key
// counts against, and the application still checks the key. It keeps no
// counts of its own: the store does. What it keeps per client is bounded:
// the validator's cache (when KeyCacheTTL is set), and, in front of a shared
// store, the deny cache of recent refusals, which can only ever repeat a
// refusal.
package middleware
