package middleware

import (
	"context"
	"time"
)

// Observer receives what a [Limiter] does, for metrics. Its methods are
// called on the request path, from many goroutines at once: they must be
// fast, must not block, and must be safe for concurrent use. No argument
// ever carries a client identity, key, address or raw path, so every
// argument is safe as a metric label: route is a route pattern, method one
// of the standard methods or "OTHER", and the rest come from small fixed
// sets.
//
// The methods about one request get its context (for a Take, the caller's),
// so that an implementation can correlate with the request's trace; the two
// about state transitions do not.
//
// The package metrics (github.com/ratekit/ratekit/metrics) implements it
// with Prometheus; it needs no import of this package, because the method
// signatures use only standard types.
type Observer interface {
	// ObserveRequest is called once per request that reached the limiter.
	// outcome is one of "allowed", "limited", "exempt", "shadow" and "error" (the store failed
	// and the failure policy answered; a LocalFallback decision reports its
	// own allowed or limited and also calls ObserveFallback). limitedBy is
	// the binding window's label ("minute", "second", ...) when outcome is
	// "limited" or "shadow", else "".
	ObserveRequest(ctx context.Context, route, method, outcome, limitedBy string)
	// ObserveDecision reports how long one store decision took, success or
	// not. Answers from the deny cache and an open breaker are not store
	// decisions and are not reported.
	ObserveDecision(ctx context.Context, took time.Duration)
	// ObserveStoreError is called for each failed decision with its kind,
	// one of [store.Kinds]: "timeout", "connection", "script", "oom",
	// "readonly", "loading", "cluster", "canceled", "full", "panic" (an
	// identity hook panicked), "breaker-open" or "other".
	ObserveStoreError(ctx context.Context, kind string)
	// ObserveFallback reports whether the last decision came from the local
	// fallback limiter (true) or the shared store (false). Called only on
	// changes.
	ObserveFallback(active bool)
	// ObserveBreaker reports a circuit-breaker transition: 0 closed, 1
	// half-open, 2 open.
	ObserveBreaker(state int)
	// ObserveDenyCacheHit is called when a rejection is answered from the
	// deny cache without a store call.
	ObserveDenyCacheHit(ctx context.Context)
}

// Outcomes reported to [Observer.ObserveRequest].
const (
	OutcomeAllowed = "allowed"
	OutcomeLimited = "limited"
	OutcomeError   = "error"
	OutcomeExempt  = "exempt" // exempt route, client or network, or a path that is no route
	OutcomeShadow  = "shadow" // would have been limited; shadow mode let it through
)

// RouteUnmatched is the route reported for a request that matched no route
// pattern.
const RouteUnmatched = "unmatched"

// nopObserver is used when Config.Observer is nil.
type nopObserver struct{}

func (nopObserver) ObserveRequest(context.Context, string, string, string, string) {}
func (nopObserver) ObserveDecision(context.Context, time.Duration)                 {}
func (nopObserver) ObserveStoreError(context.Context, string)                      {}
func (nopObserver) ObserveFallback(bool)                                           {}
func (nopObserver) ObserveBreaker(int)                                             {}
func (nopObserver) ObserveDenyCacheHit(context.Context)                            {}
