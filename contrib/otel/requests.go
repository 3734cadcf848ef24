package ratekitotel

import (
	"context"
	"maps"
	"sync/atomic"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// The method and outcome attribute values, indexed by methodIndex and
// outcomeIndex. Anything else the caller passes maps to the last entry.
var (
	methodValues  = [...]string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE", MethodOther}
	outcomeValues = [...]string{"allowed", "limited", "error", "exempt", "shadow", ValueOther}
)

const (
	numMethods     = len(methodValues)
	numOutcomes    = len(outcomeValues)
	outcomeLimited = 1 // index of "limited" in outcomeValues
)

// routeEntry holds the resolved options of one http.route value, so that
// the steady state of ObserveRequest is one map lookup by route and array
// indexing by method and outcome, with no attribute set built and no
// allocation.
type routeEntry struct {
	route string // the http.route value: the route, or ValueOther
	// requests[methodIndex*numOutcomes+outcomeIndex] is resolved on first use.
	requests [numMethods * numOutcomes]atomic.Pointer[[]metric.AddOption]
	// limited maps the window name as passed to its options; copy-on-write
	// under Observer.mu, like Observer.routeCache.
	limited atomic.Pointer[map[string][]metric.AddOption]
}

// ObserveRequest counts one request in ratekit.requests and, when outcome
// is "limited", in ratekit.limited under the window limitedBy ("unknown"
// if empty), both with ctx. A method outside the standard methods becomes
// "_OTHER"; an outcome outside allowed, limited, error, exempt and shadow
// becomes "other"; routes and windows beyond [MaxRoutes] and [MaxWindows]
// distinct values, empty routes and values that are not valid UTF-8 become
// "other". Once a combination has been seen it builds no attribute set and
// takes no lock.
func (o *Observer) ObserveRequest(ctx context.Context, route, method, outcome, limitedBy string) {
	e := (*o.routeCache.Load())[route]
	if e == nil {
		e = o.routeEntryFor(route)
	}
	m, oc := methodIndex(method), outcomeIndex(outcome)
	opts := e.requests[m*numOutcomes+oc].Load()
	if opts == nil {
		opts = resolveRequests(e, m, oc)
	}
	o.requests.Add(ctx, 1, *opts...)
	if oc == outcomeLimited {
		o.limited.Add(ctx, 1, o.limitedOptions(e, limitedBy)...)
	}
}

// routeEntryFor returns the entry for a route not in the lock-free cache,
// admitting it as an attribute value if there is room, and caching it if
// the cache has room.
func (o *Observer) routeEntryFor(route string) *routeEntry {
	o.mu.Lock()
	defer o.mu.Unlock()
	cache := *o.routeCache.Load()
	if e := cache[route]; e != nil { // added while we waited for the lock
		return e
	}
	e := o.other
	if v := admit(o.routes, route, MaxRoutes); v != ValueOther {
		e = &routeEntry{route: v}
	}
	// The cache is keyed by the route as passed, so it is bounded on its
	// own: beyond the bound, routes recorded as "other" take this path
	// every time. Copying the map on insert costs O(n), at most
	// maxCachedRoutes times in the life of the Observer.
	if len(cache) < maxCachedRoutes {
		next := make(map[string]*routeEntry, len(cache)+1)
		maps.Copy(next, cache)
		next[route] = e
		o.routeCache.Store(&next)
	}
	return e
}

// resolveRequests builds and stores the ratekit.requests options of e for
// method index m and outcome index oc. Two goroutines may race here; both
// build equal options, so either store is right.
func resolveRequests(e *routeEntry, m, oc int) *[]metric.AddOption {
	opts := []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(
		attrRoute.String(e.route), attrMethod.String(methodValues[m]), attrOutcome.String(outcomeValues[oc])))}
	e.requests[m*numOutcomes+oc].Store(&opts)
	return &opts
}

// limitedOptions returns the ratekit.limited options of route entry e and
// window name w as passed.
func (o *Observer) limitedOptions(e *routeEntry, w string) []metric.AddOption {
	if m := e.limited.Load(); m != nil {
		if opts, ok := (*m)[w]; ok {
			return opts
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	var cur map[string][]metric.AddOption
	if m := e.limited.Load(); m != nil {
		cur = *m
		if opts, ok := cur[w]; ok {
			return opts
		}
	}
	window := ValueUnknownWindow
	if w != "" {
		window = admit(o.windows, w, MaxWindows)
	}
	opts := []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attrRoute.String(e.route), attrWindow.String(window)))}
	if len(cur) < maxCachedWindows {
		next := make(map[string][]metric.AddOption, len(cur)+1)
		maps.Copy(next, cur)
		next[w] = opts
		e.limited.Store(&next)
	}
	return opts
}

// admit returns v if it is, or can become, one of at most max admitted
// values in set, else ValueOther. Empty values and values that are not
// valid UTF-8 are never admitted. The caller holds the lock guarding set.
func admit(set map[string]struct{}, v string, max int) string {
	if _, ok := set[v]; ok {
		return v
	}
	if len(set) >= max || v == "" || v == ValueOther || !utf8.ValidString(v) {
		return ValueOther
	}
	set[v] = struct{}{}
	return v
}

// methodIndex returns the index of m in methodValues, or that of "_OTHER".
func methodIndex(m string) int {
	switch m {
	case "GET":
		return 0
	case "HEAD":
		return 1
	case "POST":
		return 2
	case "PUT":
		return 3
	case "PATCH":
		return 4
	case "DELETE":
		return 5
	case "OPTIONS":
		return 6
	case "CONNECT":
		return 7
	case "TRACE":
		return 8
	}
	return numMethods - 1
}

// outcomeIndex returns the index of oc in outcomeValues, or that of
// "other".
func outcomeIndex(oc string) int {
	switch oc {
	case "allowed":
		return 0
	case "limited":
		return outcomeLimited
	case "error":
		return 2
	case "exempt":
		return 3
	case "shadow":
		return 4
	}
	return numOutcomes - 1
}
