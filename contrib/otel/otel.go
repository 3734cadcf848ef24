package ratekitotel

import (
	"context"
	"errors"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/ratekit/ratekit/store"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Bounds on attribute values, the same as package metrics' bounds on
// Prometheus labels: every value recorded is from a fixed set or counted
// against one of these caps.
const (
	// MaxRoutes is the number of distinct http.route values kept; later
	// new routes are recorded as "other".
	MaxRoutes = 1000
	// MaxWindows is the number of distinct ratekit.window values kept;
	// later new window names are recorded as "other".
	MaxWindows = 64
	// maxCachedRoutes bounds the hot-path cache of resolved attribute
	// sets, keyed by the route as passed: the admitted routes plus as many
	// again of those recorded as "other". Beyond it, requests are still
	// recorded exactly, through a slower path under a mutex.
	maxCachedRoutes = 2 * MaxRoutes
	// maxCachedWindows is the same bound per route for window names.
	maxCachedWindows = 2 * MaxWindows
)

// Attribute values the Observer substitutes for input it will not record.
const (
	// ValueOther replaces a route or window beyond its cap, an outcome or
	// error type outside its fixed set, and any value that is not valid
	// UTF-8.
	ValueOther = "other"
	// ValueUnknownWindow is the window of a "limited" request reported
	// without the name of the window that limited it.
	ValueUnknownWindow = "unknown"
	// MethodOther is the http.request.method of a method outside the
	// standard set, as OpenTelemetry's HTTP convention spells it.
	MethodOther = "_OTHER"
	// defaultStore is the ratekit.store value when Config.Store is empty.
	defaultStore = "default"
)

// Attribute keys.
const (
	attrRoute     = attribute.Key("http.route")
	attrMethod    = attribute.Key("http.request.method")
	attrOutcome   = attribute.Key("ratekit.outcome")
	attrWindow    = attribute.Key("ratekit.window")
	attrStore     = attribute.Key("ratekit.store")
	attrErrorType = attribute.Key("error.type")
)

// DefaultBuckets returns the ratekit.decision.duration bucket boundaries
// used when [Config.Buckets] is nil, in seconds: 1µs to 100ms, 1-2.5-5 per
// decade, as package metrics. Each call returns a new slice.
func DefaultBuckets() []float64 {
	return []float64{
		1e-6, 2.5e-6, 5e-6,
		1e-5, 2.5e-5, 5e-5,
		1e-4, 2.5e-4, 5e-4,
		1e-3, 2.5e-3, 5e-3,
		1e-2, 2.5e-2, 5e-2,
		0.1,
	}
}

// Config configures an [Observer]. The zero value records on the global
// MeterProvider with store "default", no memory-store instruments, and
// [DefaultBuckets].
type Config struct {
	// MeterProvider creates the Observer's meter, named
	// "github.com/ratekit/ratekit/contrib/otel". Nil means the global one,
	// otel.GetMeterProvider(), as OpenTelemetry instrumentation does by
	// default.
	MeterProvider metric.MeterProvider
	// Store is the ratekit.store attribute of the store instruments, such
	// as "memory" or "redis". Empty means "default". It is constant for
	// the life of the Observer, so it adds no series.
	Store string
	// Keys, when set, is read at each collection for ratekit.memory.keys
	// and ratekit.memory.evictions; *memory.Store satisfies it. Nil means
	// those two instruments are not created. Both methods must be safe for
	// concurrent use.
	Keys interface {
		Len() int
		Evictions() uint64
	}
	// Buckets are the boundaries, in seconds, of the
	// ratekit.decision.duration histogram. Nil means [DefaultBuckets].
	// New copies them, sorts them and drops duplicates, NaN and infinities;
	// an empty result means [DefaultBuckets].
	Buckets []float64
}

// Observer records what a rate limiter does as OpenTelemetry metrics. It
// has the methods of ratekit's middleware.Observer: pass it as
// [middleware.Config.Observer]. The instruments and their attributes are
// listed in the package documentation.
//
// All methods are safe for concurrent use.
type Observer struct {
	requests    metric.Int64Counter
	limited     metric.Int64Counter
	decision    metric.Float64Histogram
	storeErrors metric.Int64Counter
	fallback    metric.Int64Gauge
	circuit     metric.Int64Gauge
	denyHits    metric.Int64Counter
	reg         metric.Registration // of the memory-store callback; nil without Config.Keys

	// Options with the ratekit.store attribute, and those per error type,
	// built once: recording allocates no attribute set.
	storeOpt  []metric.RecordOption
	storeAdd  []metric.AddOption
	kindOpts  map[string][]metric.AddOption
	otherKind []metric.AddOption

	// routeCache is the hot path of ObserveRequest: a copy-on-write map
	// from the route as passed to its resolved options, read without a
	// lock. Writers hold mu.
	routeCache atomic.Pointer[map[string]*routeEntry]

	mu      sync.Mutex          // serialises writers of routeCache and the sets below
	routes  map[string]struct{} // http.route values admitted so far
	windows map[string]struct{} // ratekit.window values admitted so far
	other   *routeEntry         // shared by every route beyond MaxRoutes
}

// meterName is the instrumentation scope of the Observer's meter.
const meterName = "github.com/ratekit/ratekit/contrib/otel"

// New returns an Observer recording on cfg.MeterProvider. The error is the
// meter's, when it fails to create an instrument or register the
// memory-store callback.
func New(cfg Config) (*Observer, error) {
	mp := cfg.MeterProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	m := mp.Meter(meterName)
	storeName := cfg.Store
	if storeName == "" {
		storeName = defaultStore
	}
	if !utf8.ValidString(storeName) {
		storeName = ValueOther
	}
	storeAttr := attrStore.String(storeName)
	storeSet := attribute.NewSet(storeAttr)
	o := &Observer{
		storeOpt: []metric.RecordOption{metric.WithAttributeSet(storeSet)},
		storeAdd: []metric.AddOption{metric.WithAttributeSet(storeSet)},
		kindOpts: map[string][]metric.AddOption{},
		routes:   map[string]struct{}{},
		windows:  map[string]struct{}{},
	}
	for _, k := range store.Kinds() {
		o.kindOpts[k] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(storeAttr, attrErrorType.String(k)))}
	}
	o.otherKind = o.kindOpts[ValueOther]
	if o.otherKind == nil {
		o.otherKind = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(storeAttr, attrErrorType.String(ValueOther)))}
	}
	o.other = &routeEntry{route: ValueOther}
	o.routeCache.Store(&map[string]*routeEntry{})

	var errs []error
	note := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	var err error
	o.requests, err = m.Int64Counter("ratekit.requests", metric.WithUnit("{request}"),
		metric.WithDescription("Requests that reached the rate limiter, by route, method and outcome (allowed, limited, error, exempt, shadow)."))
	note(err)
	o.limited, err = m.Int64Counter("ratekit.limited", metric.WithUnit("{request}"),
		metric.WithDescription("Requests rejected by the rate limiter, by route and the window that limited them."))
	note(err)
	o.decision, err = m.Float64Histogram("ratekit.decision.duration", metric.WithUnit("s"),
		metric.WithDescription("Time one store decision took, successful or not."),
		metric.WithExplicitBucketBoundaries(buckets(cfg.Buckets)...))
	note(err)
	o.storeErrors, err = m.Int64Counter("ratekit.store.errors", metric.WithUnit("{error}"),
		metric.WithDescription("Failed store decisions, by kind of failure."))
	note(err)
	o.fallback, err = m.Int64Gauge("ratekit.store.fallback.active", metric.WithUnit("1"),
		metric.WithDescription("1 while decisions come from the local fallback limiter instead of the shared store, else 0."))
	note(err)
	o.circuit, err = m.Int64Gauge("ratekit.circuit.state", metric.WithUnit("1"),
		metric.WithDescription("State of the circuit breaker around the store: 0 closed, 1 half-open, 2 open."))
	note(err)
	o.denyHits, err = m.Int64Counter("ratekit.deny_cache.hits", metric.WithUnit("{hit}"),
		metric.WithDescription("Rejections answered from the deny cache without a store call."))
	note(err)
	if keys := cfg.Keys; keys != nil {
		memKeys, err := m.Int64ObservableGauge("ratekit.memory.keys", metric.WithUnit("{key}"),
			metric.WithDescription("Keys currently tracked by the in-memory store."))
		note(err)
		memEvicted, err2 := m.Int64ObservableCounter("ratekit.memory.evictions", metric.WithUnit("{key}"),
			metric.WithDescription("Keys the in-memory store evicted to make room for new ones."))
		note(err2)
		if err == nil && err2 == nil {
			o.reg, err = m.RegisterCallback(func(_ context.Context, ob metric.Observer) error {
				ob.ObserveInt64(memKeys, int64(keys.Len()))
				ob.ObserveInt64(memEvicted, int64(min(keys.Evictions(), math.MaxInt64)))
				return nil
			}, memKeys, memEvicted)
			note(err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return o, nil
}

// Close unregisters the callback that reads Config.Keys; the other
// instruments need nothing. It is idempotent.
func (o *Observer) Close() error {
	o.mu.Lock()
	reg := o.reg
	o.reg = nil
	o.mu.Unlock()
	if reg == nil {
		return nil
	}
	return reg.Unregister()
}

// buckets returns a sorted, duplicate-free copy of b without NaN and
// infinities, or DefaultBuckets when nothing is left.
func buckets(b []float64) []float64 {
	out := make([]float64, 0, len(b))
	for _, v := range b {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
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

// ObserveDecision records took, in seconds, in ratekit.decision.duration,
// with ctx. A negative duration counts as 0.
func (o *Observer) ObserveDecision(ctx context.Context, took time.Duration) {
	o.decision.Record(ctx, max(took, 0).Seconds(), o.storeOpt...)
}

// ObserveStoreError counts one failed decision in ratekit.store.errors,
// with ctx. A kind outside store.Kinds counts as "other": an error message
// must never become an attribute.
func (o *Observer) ObserveStoreError(ctx context.Context, kind string) {
	opts, ok := o.kindOpts[kind]
	if !ok {
		opts = o.otherKind
	}
	o.storeErrors.Add(ctx, 1, opts...)
}

// ObserveFallback sets ratekit.store.fallback.active to 1 when active,
// else 0.
func (o *Observer) ObserveFallback(active bool) {
	v := int64(0)
	if active {
		v = 1
	}
	o.fallback.Record(context.Background(), v, o.storeOpt...)
}

// ObserveBreaker sets ratekit.circuit.state to state: 0 closed, 1
// half-open, 2 open. Any other value is ignored, leaving the last valid
// state.
func (o *Observer) ObserveBreaker(state int) {
	if state < 0 || state > 2 {
		return
	}
	o.circuit.Record(context.Background(), int64(state), o.storeOpt...)
}

// ObserveDenyCacheHit counts one rejection answered from the deny cache in
// ratekit.deny_cache.hits, with ctx.
func (o *Observer) ObserveDenyCacheHit(ctx context.Context) {
	o.denyHits.Add(ctx, 1)
}
