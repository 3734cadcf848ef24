package metrics

import (
	"context"
	"maps"
	"sync/atomic"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
)

// The method and outcome label values, indexed by methodIndex and
// outcomeIndex. Anything else the caller passes maps to the last entry.
var (
	methodLabels  = [...]string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE", "OTHER"}
	outcomeLabels = [...]string{"allowed", "limited", "error", "exempt", "shadow", LabelOther}
)

const (
	numMethods     = len(methodLabels)
	numOutcomes    = len(outcomeLabels)
	outcomeLimited = 1 // index of "limited" in outcomeLabels
)

// routeEntry holds the resolved counters of one route label value, so that
// the steady state of ObserveRequest is one map lookup by route and array
// indexing by method and outcome, with no label hashing and no allocation.
type routeEntry struct {
	label string // the route label value: the route, or LabelOther
	// requests[methodIndex*numOutcomes+outcomeIndex] is resolved on first use.
	requests [numMethods * numOutcomes]atomic.Pointer[counterRef]
	// limited maps the window name as passed to its counter; copy-on-write
	// under Collector.mu, like Collector.routeCache.
	limited atomic.Pointer[map[string]prometheus.Counter]
}

// counterRef boxes a Counter for atomic.Pointer.
type counterRef struct{ prometheus.Counter }

// ObserveRequest counts one request in ratekit_requests_total and, when
// outcome is "limited", in ratekit_limited_total under the window limitedBy
// ("unknown" if empty). A method outside the standard methods becomes
// "OTHER"; an outcome outside allowed, limited, error, exempt and shadow
// becomes "other"; routes and windows beyond [MaxRoutes] and [MaxWindows]
// distinct values, empty routes and values that are not valid UTF-8 become
// "other". Once a combination has been seen it does not allocate or lock.
func (c *Collector) ObserveRequest(_ context.Context, route, method, outcome, limitedBy string) {
	e := (*c.routeCache.Load())[route]
	if e == nil {
		e = c.routeEntryFor(route)
	}
	m, o := methodIndex(method), outcomeIndex(outcome)
	ref := e.requests[m*numOutcomes+o].Load()
	if ref == nil {
		ref = c.resolveRequests(e, m, o)
	}
	ref.Inc()
	if o == outcomeLimited {
		c.limitedCounter(e, limitedBy).Inc()
	}
}

// routeEntryFor returns the entry for a route not in the lock-free cache,
// admitting it as a label value if there is room, and caching it if the
// cache has room.
func (c *Collector) routeEntryFor(route string) *routeEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	cache := *c.routeCache.Load()
	if e := cache[route]; e != nil { // added while we waited for the lock
		return e
	}
	e := c.other
	if label := admit(c.routes, route, MaxRoutes); label != LabelOther {
		e = &routeEntry{label: label}
	}
	// The cache is keyed by the route as passed, so it is bounded on its
	// own: beyond the bound, routes reported as "other" take this path
	// every time. Copying the map on insert costs O(n), at most
	// maxCachedRoutes times in the life of the Collector.
	if len(cache) < maxCachedRoutes {
		next := make(map[string]*routeEntry, len(cache)+1)
		maps.Copy(next, cache)
		next[route] = e
		c.routeCache.Store(&next)
	}
	return e
}

// resolveRequests resolves and stores the requests counter of e for method
// index m and outcome index o. Two goroutines may race here; CounterVec
// hands both the same counter, so either store is right.
func (c *Collector) resolveRequests(e *routeEntry, m, o int) *counterRef {
	ref := &counterRef{c.requests.WithLabelValues(e.label, methodLabels[m], outcomeLabels[o])}
	e.requests[m*numOutcomes+o].Store(ref)
	return ref
}

// limitedCounter returns the ratekit_limited_total counter of route entry e
// and window name w as passed.
func (c *Collector) limitedCounter(e *routeEntry, w string) prometheus.Counter {
	if m := e.limited.Load(); m != nil {
		if ctr, ok := (*m)[w]; ok {
			return ctr
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var cur map[string]prometheus.Counter
	if m := e.limited.Load(); m != nil {
		cur = *m
		if ctr, ok := cur[w]; ok {
			return ctr
		}
	}
	window := LabelUnknownWindow
	if w != "" {
		window = admit(c.windows, w, MaxWindows)
	}
	ctr := c.limited.WithLabelValues(e.label, window)
	if len(cur) < maxCachedWindows {
		next := make(map[string]prometheus.Counter, len(cur)+1)
		maps.Copy(next, cur)
		next[w] = ctr
		e.limited.Store(&next)
	}
	return ctr
}

// admit returns v if it is, or can become, one of at most max admitted
// values in set, else LabelOther. Empty values and values that are not valid
// UTF-8 (which Prometheus rejects) are never admitted. The caller holds the
// lock guarding set.
func admit(set map[string]struct{}, v string, max int) string {
	if _, ok := set[v]; ok {
		return v
	}
	if len(set) >= max || v == "" || v == LabelOther || !utf8.ValidString(v) {
		return LabelOther
	}
	set[v] = struct{}{}
	return v
}

// methodIndex returns the index of m in methodLabels, or that of "OTHER".
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

// outcomeIndex returns the index of o in outcomeLabels, or that of "other".
func outcomeIndex(o string) int {
	switch o {
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
