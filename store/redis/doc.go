// Package redis is a [store.Store] whose state lives in Redis, so that every
// instance of an application enforces one shared limit.
//
// Each decision is one round trip: an embedded Lua script (take.lua), run
// with EVALSHA (and EVAL once after the server lost its script cache), reads
// the server's TIME, evaluates every window of the policy, records the
// request only if all of them admit it, sets a TTL on what it wrote and
// returns the whole [window.Decision]. Decisions are the ones [window.Log]
// (SlidingLog) and [window.Counter] (SlidingCounter) give for the same
// history, to the millisecond.
//
// # Keys
//
// One key per identity: <prefix>:{<32 hex digits of the store.Key>}:m. The
// key has a fixed length, carries no client bytes, and its hash tag keeps
// every key of one identity in one Redis Cluster slot. Every write sets a
// TTL (the longest window plus a slack), so no key outlives its use.
//
// # Auto-pipelining
//
// With a *goredis.Client (standalone or Sentinel), Takes that arrive while
// another is in flight are written together as one pipeline, which saves
// most of the system calls on both sides. Each is still its own EVALSHA
// with its own reply and its caller's own deadline; see
// [Config.NoAutoPipeline] to turn it off.
//
// # Client
//
// [New] takes the narrowest go-redis interface that runs scripts
// ([Scripter]): standalone, Sentinel (failover), Cluster and Universal
// clients all fit. The client must honour context deadlines
// (ContextTimeoutEnabled) and must not retry (MaxRetries -1): a retried
// script whose first reply was lost would count a request twice. One dial
// attempt per command (DialerRetries 1) is recommended, so that a refused
// connection fails at once as a connection error instead of waiting out
// the store's timeout while go-redis redials. The store never closes the
// client.
//
//	client := goredis.NewClient(&goredis.Options{
//		Addr:                  "localhost:6379",
//		ContextTimeoutEnabled: true,
//		MaxRetries:            -1,
//		DialerRetries:         1,
//	})
//	st, err := redisstore.New(client, redisstore.Config{})
//
// # What it does not do
//
// It does not fall back when Redis is unreachable: it returns an error
// (classified by [Kind]) within its timeout and the middleware applies the
// failure policy the user chose. It does not create, configure or close
// connections. See docs/redis.md for deployment, memory per key and
// failure behaviour.
package redis
