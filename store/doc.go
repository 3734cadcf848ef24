// Package store defines the contract between ratekit's middleware and the
// place where rate-limit state lives.
//
// A [Store] takes one decision per call: for a [Key], a [window.Policy] and a
// cost it answers, atomically across every window, whether the request is
// admitted, and records it only if it is. The middleware makes exactly one
// Store call per request. Stores read their own clock, so several
// application instances sharing one store (Redis) agree on time even when
// their own clocks do not.
//
// Two implementations ship with ratekit: [github.com/ratekit/ratekit/store/memory],
// the embedded default, and [github.com/ratekit/ratekit/store/redis], shared
// between instances. Package [github.com/ratekit/ratekit/store/storetest] is
// the conformance suite both pass; run it against your own Store too.
//
// # What a store does not do
//
// A store knows nothing of HTTP, clients or headers. Keys arrive already
// hashed: a store never sees an API key or an IP address.
package store
