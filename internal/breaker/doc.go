// Package breaker is a consecutive-failure circuit breaker with a single
// half-open probe, for calls to a shared store: after a number of failures
// in a row the calls stop for a cooldown, then one probe decides whether
// they resume. In the closed state it costs one or two atomic loads per
// call and never allocates.
//
// It knows nothing of HTTP or of stores; the middleware reports each store
// call's outcome to it.
package breaker
