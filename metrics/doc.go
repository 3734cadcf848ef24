// Package metrics exports what ratekit's rate limiter does as Prometheus
// metrics.
//
// A [Collector] is two things at once: a [prometheus.Collector], which you
// register on a registry you own, and an observer with the methods of
// ratekit's middleware.Observer, which you pass to the middleware. Nothing
// is registered globally and nothing is started: there are no goroutines,
// and values are read at scrape time.
//
//	col := metrics.New(metrics.Config{Store: "memory", Keys: memStore})
//	reg.MustRegister(col)
//	lim, err := middleware.New(middleware.Config{Observer: col /* , ... */})
//
// # What it exports
//
// Request counts by route pattern, method and outcome; rejections by route
// and limiting window; store decision latency; store errors by kind; whether
// the local fallback is active; the circuit-breaker state; deny-cache hits;
// and, for the in-memory store, its key count and evictions. The names and
// labels are listed on [Collector] and explained, with PromQL, in
// docs/metrics.md.
//
// # What it does not do
//
// It never puts a client identity, key, address or raw path in a label. Its
// methods take only route patterns, methods and values from small fixed
// sets, and it defends even against a caller that passes something else:
// unknown methods, outcomes and error kinds become "OTHER" or "other", and
// the number of distinct routes and windows is capped ([MaxRoutes],
// [MaxWindows]), so the number of series stays bounded.
//
// It does not import package middleware: the observer interface is
// satisfied structurally, and imports point from middleware's users to
// metrics, never the other way.
//
// # Cost
//
// ObserveRequest runs on every request. It caches the resolved counters per
// label combination, so in the steady state it is one lock-free map lookup
// and an atomic add, with no allocation; see the benchmarks in
// bench_test.go.
package metrics
