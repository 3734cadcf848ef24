package metrics

import (
	"context"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/ratekit/ratekit/store"
)

// Bounds on label values. Every label value the Collector exports is either
// from a fixed set or counted against one of these caps, so the number of
// series is bounded whatever the caller passes.
const (
	// MaxRoutes is the number of distinct route label values kept; later new
	// routes are reported as route "other".
	MaxRoutes = 1000
	// MaxWindows is the number of distinct window label values kept on
	// ratekit_limited_total; later new window names are reported as
	// window "other".
	MaxWindows = 64
	// maxCachedRoutes bounds the hot-path cache of resolved counters, which
	// is keyed by the route as passed: the admitted routes plus as many
	// again of those reported as "other". Beyond it, requests are still
	// counted exactly, through a slower path under a mutex.
	maxCachedRoutes = 2 * MaxRoutes
	// maxCachedWindows is the same bound per route for window names.
	maxCachedWindows = 2 * MaxWindows
)

// Label values the Collector substitutes for input it will not export.
const (
	// LabelOther replaces a route or window beyond its cap, a method or
	// outcome or store-error kind outside its fixed set, and any value that
	// is not valid UTF-8.
	LabelOther = "other"
	// LabelUnknownWindow is the window of a "limited" request reported
	// without the name of the window that limited it.
	LabelUnknownWindow = "unknown"
	// defaultStore is the store label when Config.Store is empty.
	defaultStore = "default"
)

// DefaultBuckets returns the decision-duration buckets used when
// [Config.Buckets] is nil, in seconds: 1µs to 100ms, 1-2.5-5 per decade. An
// in-memory decision takes a few microseconds; a Redis round trip on a LAN a
// few hundred microseconds to a few milliseconds. Each call returns a new
// slice.
func DefaultBuckets() []float64 { return slices.Clone(defaultBuckets) }

var defaultBuckets = []float64{
	1e-6, 2.5e-6, 5e-6,
	1e-5, 2.5e-5, 5e-5,
	1e-4, 2.5e-4, 5e-4,
	1e-3, 2.5e-3, 5e-3,
	1e-2, 2.5e-2, 5e-2,
	0.1,
}

// Config configures a [Collector]. The zero value is valid: store label
// "default", no memory-store metrics, [DefaultBuckets].
type Config struct {
	// Store is the value of the "store" label on the store metrics, such as
	// "memory" or "redis". Empty means "default". It is constant for the
	// life of the Collector, so it adds no series.
	Store string
	// Keys, when set, is read at scrape time for ratekit_memory_keys and
	// ratekit_memory_evictions_total; *memory.Store satisfies it. Nil means
	// those two metrics are neither described nor collected. Both methods
	// must be safe for concurrent use; they run on the scraping goroutine.
	Keys interface {
		Len() int
		Evictions() uint64
	}
	// Buckets are the upper bounds, in seconds, of the
	// ratekit_decision_duration_seconds buckets. Nil means [DefaultBuckets].
	// New copies them, sorts them and drops duplicates, NaN and +Inf (the
	// +Inf bucket is always implied), so no bucket list makes New panic; an
	// empty result means [DefaultBuckets].
	Buckets []float64
}

// Collector exports what a rate limiter does as Prometheus metrics. It is a
// [prometheus.Collector], to register on a registry the caller owns, and it
// has the methods of ratekit's middleware.Observer, to pass as the
// middleware's observer. Nothing is registered anywhere by New.
//
// The metrics, with their labels, are:
//
//	ratekit_requests_total{route, method, outcome}     counter
//	ratekit_limited_total{route, window}               counter
//	ratekit_decision_duration_seconds{store}           histogram
//	ratekit_store_errors_total{store, kind}            counter
//	ratekit_store_fallback_active{store}               gauge, 0 or 1
//	ratekit_circuit_state{store}                       gauge, 0 closed, 1 half-open, 2 open
//	ratekit_deny_cache_hits_total                      counter
//	ratekit_memory_keys                                gauge, only with Config.Keys
//	ratekit_memory_evictions_total                     counter, only with Config.Keys
//
// Label values are bounded: see [MaxRoutes], [MaxWindows] and [LabelOther].
//
// Two Collectors on one registry collide (the request metrics have no store
// label); give each limiter its own label with
// [prometheus.WrapRegistererWith].
//
// All methods are safe for concurrent use.
type Collector struct {
	keys interface {
		Len() int
		Evictions() uint64
	}

	requests    *prometheus.CounterVec
	limited     *prometheus.CounterVec
	decision    prometheus.Histogram
	storeErrors *prometheus.CounterVec
	fallback    prometheus.Gauge
	circuit     prometheus.Gauge
	denyHits    prometheus.Counter
	memKeys     *prometheus.Desc
	memEvicted  *prometheus.Desc

	// routeCache is the hot path of ObserveRequest: a copy-on-write map
	// from the route as passed to its resolved counters, read without a
	// lock. Writers hold mu.
	routeCache atomic.Pointer[map[string]*routeEntry]

	mu      sync.Mutex          // serialises writers of routeCache and the sets below
	routes  map[string]struct{} // route label values admitted so far
	windows map[string]struct{} // window label values admitted so far
	other   *routeEntry         // shared by every route beyond MaxRoutes
}

// New returns a Collector configured by cfg. Register it with
// reg.MustRegister(c) on a registry you own, and pass it as the
// middleware's observer.
func New(cfg Config) *Collector {
	store := cfg.Store
	if store == "" {
		store = defaultStore
	}
	if !utf8.ValidString(store) {
		store = LabelOther
	}
	storeLabel := prometheus.Labels{"store": store}
	c := &Collector{
		keys: cfg.Keys,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ratekit_requests_total",
			Help: "Requests that reached the rate limiter, by route pattern, method and outcome (allowed, limited, error, exempt, shadow).",
		}, []string{"route", "method", "outcome"}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ratekit_limited_total",
			Help: "Requests rejected by the rate limiter, by route pattern and the window that limited them.",
		}, []string{"route", "window"}),
		decision: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:        "ratekit_decision_duration_seconds",
			Help:        "Time one store decision took, successful or not.",
			ConstLabels: storeLabel,
			Buckets:     buckets(cfg.Buckets),
		}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        "ratekit_store_errors_total",
			Help:        "Failed store decisions, by kind of failure.",
			ConstLabels: storeLabel,
		}, []string{"kind"}),
		fallback: prometheus.NewGauge(prometheus.GaugeOpts{
			Name:        "ratekit_store_fallback_active",
			Help:        "1 while decisions come from the local fallback limiter instead of the shared store, else 0.",
			ConstLabels: storeLabel,
		}),
		circuit: prometheus.NewGauge(prometheus.GaugeOpts{
			Name:        "ratekit_circuit_state",
			Help:        "State of the circuit breaker around the store: 0 closed, 1 half-open, 2 open.",
			ConstLabels: storeLabel,
		}),
		denyHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ratekit_deny_cache_hits_total",
			Help: "Rejections answered from the deny cache without a store call.",
		}),
		routes:  make(map[string]struct{}),
		windows: make(map[string]struct{}),
	}
	c.other = &routeEntry{label: LabelOther}
	c.routeCache.Store(&map[string]*routeEntry{})
	// Every kind of failure is a series from the start, at 0: rate() needs
	// two samples, so a series that appeared with the first failure would
	// hide it from the store-errors alert.
	for _, k := range storeKinds {
		c.storeErrors.WithLabelValues(k)
	}
	if c.keys != nil {
		c.memKeys = prometheus.NewDesc("ratekit_memory_keys",
			"Keys currently tracked by the in-memory store.", nil, nil)
		c.memEvicted = prometheus.NewDesc("ratekit_memory_evictions_total",
			"Keys the in-memory store evicted to make room for new ones.", nil, nil)
	}
	return c
}

// buckets returns a sorted, duplicate-free copy of b without NaN and +Inf,
// or DefaultBuckets when nothing is left.
func buckets(b []float64) []float64 {
	out := make([]float64, 0, len(b))
	for _, v := range b {
		if !math.IsNaN(v) && !math.IsInf(v, 1) {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) == 0 {
		return DefaultBuckets()
	}
	return out
}

// Describe sends the descriptors of every metric the Collector exports. It
// implements [prometheus.Collector].
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	c.requests.Describe(ch)
	c.limited.Describe(ch)
	c.decision.Describe(ch)
	c.storeErrors.Describe(ch)
	c.fallback.Describe(ch)
	c.circuit.Describe(ch)
	c.denyHits.Describe(ch)
	if c.keys != nil {
		ch <- c.memKeys
		ch <- c.memEvicted
	}
}

// Collect sends the current value of every metric. The memory-store metrics
// are read from Config.Keys now, at scrape time. It implements
// [prometheus.Collector].
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.requests.Collect(ch)
	c.limited.Collect(ch)
	c.decision.Collect(ch)
	c.storeErrors.Collect(ch)
	c.fallback.Collect(ch)
	c.circuit.Collect(ch)
	c.denyHits.Collect(ch)
	if c.keys != nil {
		ch <- prometheus.MustNewConstMetric(c.memKeys, prometheus.GaugeValue, float64(c.keys.Len()))
		ch <- prometheus.MustNewConstMetric(c.memEvicted, prometheus.CounterValue, float64(c.keys.Evictions()))
	}
}

// storeKinds is store.Kinds(), read once; never modified.
var storeKinds = store.Kinds()

// kindLabel returns k if it is one of the kinds of store failure
// ([store.Kinds]), else LabelOther.
func kindLabel(k string) string {
	if slices.Contains(storeKinds, k) {
		return k
	}
	return LabelOther
}

// ObserveDecision adds took, in seconds, to
// ratekit_decision_duration_seconds. A negative duration counts as 0.
func (c *Collector) ObserveDecision(_ context.Context, took time.Duration) {
	if took < 0 {
		took = 0
	}
	c.decision.Observe(took.Seconds())
}

// ObserveStoreError counts one failed decision in
// ratekit_store_errors_total. A kind outside [store.Kinds] counts as
// "other": an error message must never become a label.
func (c *Collector) ObserveStoreError(_ context.Context, kind string) {
	c.storeErrors.WithLabelValues(kindLabel(kind)).Inc()
}

// ObserveFallback sets ratekit_store_fallback_active to 1 when active, else 0.
func (c *Collector) ObserveFallback(active bool) {
	if active {
		c.fallback.Set(1)
		return
	}
	c.fallback.Set(0)
}

// ObserveBreaker sets ratekit_circuit_state to state: 0 closed, 1 half-open,
// 2 open. Any other value is ignored, leaving the last valid state.
func (c *Collector) ObserveBreaker(state int) {
	if state < 0 || state > 2 {
		return
	}
	c.circuit.Set(float64(state))
}

// ObserveDenyCacheHit counts one rejection answered from the deny cache in
// ratekit_deny_cache_hits_total.
func (c *Collector) ObserveDenyCacheHit(context.Context) {
	c.denyHits.Inc()
}
