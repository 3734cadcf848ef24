// Package ratekitotel records what ratekit's rate limiter does as
// OpenTelemetry metrics: an [Observer] for [middleware.Config.Observer]
// that records the measurements package metrics exports to Prometheus, as
// OpenTelemetry instruments on a MeterProvider you choose.
//
//	obs, err := ratekitotel.New(ratekitotel.Config{MeterProvider: provider, Store: "redis"})
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer obs.Close()
//	lim, err := middleware.New(middleware.Config{Observer: obs /* , ... */})
//
// It is its own Go module (github.com/ratekit/ratekit/contrib/otel), so
// OpenTelemetry never enters the go.sum of a program that imports only
// ratekit, and it does not import package metrics, so Prometheus is not
// linked into a program that uses it.
//
// # What it records
//
// Names and attributes follow OpenTelemetry's semantic-convention style:
// dotted names without unit suffixes, UCUM units, the http.route,
// http.request.method and error.type attributes of the HTTP and error
// conventions, and a ratekit namespace for the rest.
//
//	ratekit.requests               counter    {request}  http.route, http.request.method, ratekit.outcome
//	ratekit.limited                counter    {request}  http.route, ratekit.window
//	ratekit.decision.duration      histogram  s          ratekit.store
//	ratekit.store.errors           counter    {error}    ratekit.store, error.type
//	ratekit.store.fallback.active  gauge      1          ratekit.store (1 while the local fallback decides)
//	ratekit.circuit.state          gauge      1          ratekit.store (0 closed, 1 half-open, 2 open)
//	ratekit.deny_cache.hits        counter    {hit}
//	ratekit.memory.keys            gauge      {key}      only with Config.Keys, read at collection
//	ratekit.memory.evictions       counter    {key}      only with Config.Keys, read at collection
//
// docs/metrics.md maps each to its Prometheus twin.
//
// # Bounded attributes
//
// Attribute values are bounded exactly as the Prometheus collector bounds
// its labels: at most [MaxRoutes] routes and [MaxWindows] windows, then
// "other"; outcomes and error types outside their fixed sets, empty routes
// and values that are not valid UTF-8 become "other"; a limited request
// without a window is "unknown". The one difference is the spelling the
// HTTP convention prescribes for a method outside the standard set:
// "_OTHER" where Prometheus has "OTHER".
//
// # Context
//
// The methods about a request record with the context the limiter passes
// (the request's, or the caller's of Take), so an SDK with exemplars
// attaches the request's trace to the measurement. The two about state
// changes have no request and record with context.Background.
//
// # What it does not do
//
// It never puts a client identity, key, address or raw path in an
// attribute. It creates no MeterProvider and registers no exporter: the
// application owns both.
package ratekitotel
