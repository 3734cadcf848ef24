// Package middleware is ratekit's HTTP layer: it finds out who is asking,
// takes one decision from the store, and writes the answer.
//
// A [Limiter] wraps any http.Handler and so mounts on net/http's ServeMux,
// chi, and any router that takes func(http.Handler) http.Handler:
//
//	lim, err := middleware.New(middleware.Config{}) // 60/min + 2/s, per client IP, in memory
//	if err != nil {
//		log.Fatal(err) // every invalid field is listed
//	}
//	defer lim.Close()
//	mux.Handle("/v1/", lim.Handler(api))
//
// # Who is asking
//
// A request that presents an API key (X-API-Key, or Authorization: Bearer)
// which [Config.KeyValidator] accepts counts against that client's bucket,
// whatever address it comes from. Every other request, including one with a
// missing, malformed or unknown key, counts against its client address
// (see [ClientIP]; forwarding headers are believed only from configured
// proxies). Identities are turned into store keys with a keyed hash
// ([Config.HashKey]): no store, log line or metric ever holds a key or an
// address.
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
// X-RateLimit-Degraded: true (the default), or 503. A store failure is never
// answered with 429.
//
// # What it does not do
//
// The middleware keeps no per-client state of its own; the store does. It
// does not authenticate: KeyValidator only says which bucket a key counts
// against, and the application still checks the key.
package middleware
