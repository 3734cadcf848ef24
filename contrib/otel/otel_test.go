package ratekitotel_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	ratekitotel "github.com/ratekit/ratekit/contrib/otel"
	"github.com/ratekit/ratekit/metrics"
	"github.com/ratekit/ratekit/middleware"
	"github.com/ratekit/ratekit/store"
	"github.com/ratekit/ratekit/store/memory"
	"github.com/ratekit/ratekit/store/storetest"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/trace"
)

// newObserver returns an Observer recording on a MeterProvider read by
// the returned manual reader.
func newObserver(t *testing.T, cfg ratekitotel.Config) (*ratekitotel.Observer, *sdkmetric.ManualReader) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { mp.Shutdown(context.Background()) })
	cfg.MeterProvider = mp
	obs, err := ratekitotel.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { obs.Close() })
	return obs, reader
}

// collect reads every metric the reader holds, by name.
func collect(t *testing.T, r *sdkmetric.ManualReader) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatalf("Collect: %v", err)
	}
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

// attrs renders a set as "k=v,k=v", sorted by key.
func attrs(s attribute.Set) string {
	var parts []string
	for _, kv := range s.ToSlice() {
		parts = append(parts, string(kv.Key)+"="+kv.Value.Emit())
	}
	return strings.Join(parts, ",")
}

// points returns the int64 data points (sum or gauge) of metric name, by
// attributes.
func points(t *testing.T, ms map[string]metricdata.Metrics, name string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	m, ok := ms[name]
	if !ok {
		return out
	}
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		for _, p := range d.DataPoints {
			out[attrs(p.Attributes)] = p.Value
		}
	case metricdata.Gauge[int64]:
		for _, p := range d.DataPoints {
			out[attrs(p.Attributes)] = p.Value
		}
	default:
		t.Fatalf("%s is a %T", name, m.Data)
	}
	return out
}

func equal(t *testing.T, what string, got, want map[string]int64) {
	t.Helper()
	keys := map[string]bool{}
	for k := range got {
		keys[k] = true
	}
	for k := range want {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		if got[k] != want[k] {
			t.Errorf("%s{%s} = %d, want %d", what, k, got[k], want[k])
		}
	}
}

func TestRequests(t *testing.T) {
	obs, r := newObserver(t, ratekitotel.Config{})
	ctx := context.Background()
	obs.ObserveRequest(ctx, "/v1/people", "GET", "allowed", "")
	obs.ObserveRequest(ctx, "/v1/people", "GET", "allowed", "")
	obs.ObserveRequest(ctx, "/v1/people", "GET", "limited", "second")
	obs.ObserveRequest(ctx, "/v1/people", "POST", "limited", "minute")
	obs.ObserveRequest(ctx, "/v1/people", "POST", "limited", "")
	obs.ObserveRequest(ctx, "unmatched", "BREW", "exempt", "")
	obs.ObserveRequest(ctx, "/v1/people", "GET", "shadow", "second") // not a rejection
	obs.ObserveRequest(ctx, "", "GET", "surprise", "")
	obs.ObserveRequest(ctx, "/v1/\xff", "OTHER", "error", "")
	ms := collect(t, r)
	equal(t, "ratekit.requests", points(t, ms, "ratekit.requests"), map[string]int64{
		"http.request.method=GET,http.route=/v1/people,ratekit.outcome=allowed":  2,
		"http.request.method=GET,http.route=/v1/people,ratekit.outcome=limited":  1,
		"http.request.method=POST,http.route=/v1/people,ratekit.outcome=limited": 2,
		"http.request.method=_OTHER,http.route=unmatched,ratekit.outcome=exempt": 1,
		"http.request.method=GET,http.route=/v1/people,ratekit.outcome=shadow":   1,
		"http.request.method=GET,http.route=other,ratekit.outcome=other":         1,
		"http.request.method=_OTHER,http.route=other,ratekit.outcome=error":      1,
	})
	equal(t, "ratekit.limited", points(t, ms, "ratekit.limited"), map[string]int64{
		"http.route=/v1/people,ratekit.window=second":  1,
		"http.route=/v1/people,ratekit.window=minute":  1,
		"http.route=/v1/people,ratekit.window=unknown": 1,
	})
	if u := ms["ratekit.requests"].Unit; u != "{request}" {
		t.Errorf("ratekit.requests unit %q, want {request}", u)
	}
}

// TestBounds: however many routes and windows the caller passes, at most
// MaxRoutes and MaxWindows values are recorded, and no count is lost.
func TestBounds(t *testing.T) {
	if ratekitotel.MaxRoutes != metrics.MaxRoutes || ratekitotel.MaxWindows != metrics.MaxWindows {
		t.Fatalf("bounds %d routes, %d windows; package metrics has %d and %d",
			ratekitotel.MaxRoutes, ratekitotel.MaxWindows, metrics.MaxRoutes, metrics.MaxWindows)
	}
	if !slices.Equal(ratekitotel.DefaultBuckets(), metrics.DefaultBuckets()) {
		t.Errorf("DefaultBuckets %v, package metrics has %v", ratekitotel.DefaultBuckets(), metrics.DefaultBuckets())
	}
	obs, r := newObserver(t, ratekitotel.Config{})
	ctx := context.Background()
	const routes, windows = 2500, 100 // beyond the cache of 2*MaxRoutes too
	for i := range routes {
		obs.ObserveRequest(ctx, fmt.Sprintf("/r/%d", i), "GET", "allowed", "")
	}
	for i := range windows {
		obs.ObserveRequest(ctx, "/r/0", "GET", "limited", fmt.Sprintf("w%d", i))
	}
	ms := collect(t, r)
	req := points(t, ms, "ratekit.requests")
	var total int64
	distinct := map[string]bool{}
	for k, v := range req {
		total += v
		distinct[k] = true
	}
	if total != routes+windows {
		t.Errorf("ratekit.requests total %d, want %d", total, routes+windows)
	}
	// MaxRoutes routes with allowed, "/r/0" limited, and "other" allowed.
	if len(distinct) != ratekitotel.MaxRoutes+2 {
		t.Errorf("ratekit.requests has %d series, want %d", len(distinct), ratekitotel.MaxRoutes+2)
	}
	if got := req["http.request.method=GET,http.route=other,ratekit.outcome=allowed"]; got != routes-ratekitotel.MaxRoutes {
		t.Errorf("route other counted %d, want %d", got, routes-ratekitotel.MaxRoutes)
	}
	lim := points(t, ms, "ratekit.limited")
	if len(lim) != ratekitotel.MaxWindows+1 {
		t.Errorf("ratekit.limited has %d series, want %d", len(lim), ratekitotel.MaxWindows+1)
	}
	if got := lim["http.route=/r/0,ratekit.window=other"]; got != windows-ratekitotel.MaxWindows {
		t.Errorf("window other counted %d, want %d", got, windows-ratekitotel.MaxWindows)
	}
}

// TestSameAsPrometheus feeds one sequence of observer calls, odd inputs
// included, to this Observer and to package metrics' Collector, and
// compares every count: the two record the same measurements.
func TestSameAsPrometheus(t *testing.T) {
	obs, r := newObserver(t, ratekitotel.Config{Store: "redis"})
	col := metrics.New(metrics.Config{Store: "redis"})
	ctx := context.Background()
	routes := []string{"/a", "/b/{id}", "unmatched", "", "other", "/\xfe"}
	methodsIn := []string{"GET", "POST", "OTHER", "brew", "DELETE"}
	outcomes := []string{"allowed", "limited", "error", "exempt", "shadow", "odd"}
	windows := []string{"", "second", "minute", "1.5s", "\xff"}
	kinds := append(store.Kinds(), "boom", "")
	for i := range 600 {
		rt, m, oc, w := routes[i%len(routes)], methodsIn[i%len(methodsIn)], outcomes[i%len(outcomes)], windows[i%len(windows)]
		obs.ObserveRequest(ctx, rt, m, oc, w)
		col.ObserveRequest(ctx, rt, m, oc, w)
		if i%7 == 0 {
			k := kinds[i%len(kinds)]
			obs.ObserveStoreError(ctx, k)
			col.ObserveStoreError(ctx, k)
		}
		if i%11 == 0 {
			obs.ObserveDenyCacheHit(ctx)
			col.ObserveDenyCacheHit(ctx)
		}
		if i%13 == 0 {
			obs.ObserveDecision(ctx, time.Duration(i)*time.Microsecond)
			col.ObserveDecision(ctx, time.Duration(i)*time.Microsecond)
		}
	}
	fams, err := gather(col)
	if err != nil {
		t.Fatal(err)
	}
	ms := collect(t, r)
	translate := map[string]string{"route": "http.route", "method": "http.request.method", "outcome": "ratekit.outcome",
		"window": "ratekit.window", "kind": "error.type", "store": "ratekit.store"}
	for prom, otelName := range map[string]string{
		"ratekit_requests_total":        "ratekit.requests",
		"ratekit_limited_total":         "ratekit.limited",
		"ratekit_store_errors_total":    "ratekit.store.errors",
		"ratekit_deny_cache_hits_total": "ratekit.deny_cache.hits",
	} {
		want := map[string]int64{}
		for _, m := range fams[prom] {
			var parts []string
			for _, l := range m.labels {
				v := l[1]
				if l[0] == "method" && v == "OTHER" {
					v = ratekitotel.MethodOther // the HTTP convention's spelling
				}
				parts = append(parts, translate[l[0]]+"="+v)
			}
			sort.Strings(parts)
			want[strings.Join(parts, ",")] = int64(m.value)
		}
		equal(t, otelName, points(t, ms, otelName), want)
	}
	h := ms["ratekit.decision.duration"].Data.(metricdata.Histogram[float64]).DataPoints
	if len(h) != 1 || h[0].Count != uint64(fams["ratekit_decision_duration_seconds"][0].value) {
		t.Errorf("ratekit.decision.duration points %+v, want one with the count of %v", h, fams["ratekit_decision_duration_seconds"])
	}
}

func TestStoreInstruments(t *testing.T) {
	keys := &fakeKeys{n: 3, evicted: 1 << 40}
	obs, r := newObserver(t, ratekitotel.Config{Store: "memory", Keys: keys,
		Buckets: []float64{0.01, 0.001, 0.001, -1 / zero(), 1 / zero()}})
	ctx := context.Background()
	obs.ObserveDecision(ctx, 500*time.Microsecond)
	obs.ObserveDecision(ctx, -time.Second)
	obs.ObserveDecision(ctx, time.Second)
	obs.ObserveStoreError(ctx, "timeout")
	obs.ObserveStoreError(ctx, "connection reset by 10.0.0.7")
	obs.ObserveFallback(true)
	obs.ObserveBreaker(2)
	obs.ObserveBreaker(7) // ignored
	obs.ObserveDenyCacheHit(ctx)
	ms := collect(t, r)

	h := ms["ratekit.decision.duration"].Data.(metricdata.Histogram[float64]).DataPoints
	if len(h) != 1 {
		t.Fatalf("ratekit.decision.duration has %d points, want 1", len(h))
	}
	p := h[0]
	if attrs(p.Attributes) != "ratekit.store=memory" || p.Count != 3 || p.Sum != 1.0005 ||
		!slices.Equal(p.Bounds, []float64{0.001, 0.01}) || !slices.Equal(p.BucketCounts, []uint64{2, 0, 1}) {
		t.Errorf("ratekit.decision.duration = %s count %d sum %v bounds %v counts %v; want store memory, 3, 1.0005, [0.001 0.01], [2 0 1]",
			attrs(p.Attributes), p.Count, p.Sum, p.Bounds, p.BucketCounts)
	}
	if u := ms["ratekit.decision.duration"].Unit; u != "s" {
		t.Errorf("ratekit.decision.duration unit %q, want s", u)
	}
	equal(t, "ratekit.store.errors", points(t, ms, "ratekit.store.errors"), map[string]int64{
		"error.type=timeout,ratekit.store=memory": 1,
		"error.type=other,ratekit.store=memory":   1,
	})
	equal(t, "ratekit.store.fallback.active", points(t, ms, "ratekit.store.fallback.active"), map[string]int64{"ratekit.store=memory": 1})
	equal(t, "ratekit.circuit.state", points(t, ms, "ratekit.circuit.state"), map[string]int64{"ratekit.store=memory": 2})
	equal(t, "ratekit.deny_cache.hits", points(t, ms, "ratekit.deny_cache.hits"), map[string]int64{"": 1})
	equal(t, "ratekit.memory.keys", points(t, ms, "ratekit.memory.keys"), map[string]int64{"": 3})
	equal(t, "ratekit.memory.evictions", points(t, ms, "ratekit.memory.evictions"), map[string]int64{"": 1 << 40})
	keys.n = 5 // read at collection
	equal(t, "ratekit.memory.keys", points(t, collect(t, r), "ratekit.memory.keys"), map[string]int64{"": 5})

	obs.ObserveFallback(false)
	if err := obs.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ms = collect(t, r)
	equal(t, "ratekit.store.fallback.active", points(t, ms, "ratekit.store.fallback.active"), map[string]int64{"ratekit.store=memory": 0})
	if p := points(t, ms, "ratekit.memory.keys"); len(p) != 0 {
		t.Errorf("ratekit.memory.keys after Close = %v, want no points", p)
	}
}

// TestWithoutKeys: without Config.Keys there are no memory instruments.
func TestWithoutKeys(t *testing.T) {
	obs, r := newObserver(t, ratekitotel.Config{})
	obs.ObserveBreaker(0)
	ms := collect(t, r)
	if _, ok := ms["ratekit.memory.keys"]; ok {
		t.Error("ratekit.memory.keys recorded without Config.Keys")
	}
	equal(t, "ratekit.circuit.state", points(t, ms, "ratekit.circuit.state"), map[string]int64{"ratekit.store=default": 0})
}

// TestContextReachesTheSDK: a request recorded with the context of a
// sampled span gets that span's trace as an exemplar, so a dashboard can
// jump from a spike of refusals to a trace.
func TestContextReachesTheSDK(t *testing.T) {
	obs, r := newObserver(t, ratekitotel.Config{})
	tid := trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled})
	ctx := trace.ContextWithSpanContext(context.Background(), sc)
	obs.ObserveRequest(ctx, "/v1/people", "GET", "limited", "second")
	obs.ObserveDecision(ctx, time.Millisecond)
	ms := collect(t, r)
	for _, name := range []string{"ratekit.requests", "ratekit.limited"} {
		ps := ms[name].Data.(metricdata.Sum[int64]).DataPoints
		if len(ps) != 1 || len(ps[0].Exemplars) != 1 || trace.TraceID(ps[0].Exemplars[0].TraceID) != tid {
			t.Errorf("%s points %+v, want one with an exemplar of trace %s", name, ps, tid)
		}
	}
	hs := ms["ratekit.decision.duration"].Data.(metricdata.Histogram[float64]).DataPoints
	if len(hs) != 1 || len(hs[0].Exemplars) != 1 || trace.TraceID(hs[0].Exemplars[0].TraceID) != tid {
		t.Errorf("ratekit.decision.duration has no exemplar of trace %s", tid)
	}
}

// TestWithLimiter serves HTTP requests over a real listener through a
// limiter whose observer is the Observer, with a store that fails for a
// while: what was served is what was recorded.
func TestWithLimiter(t *testing.T) {
	clk := storetest.NewClock(storetest.Start)
	mem, err := memory.New(memory.Config{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	faulty := storetest.NewFaulty(mem)
	t.Cleanup(func() { faulty.Close() })
	obs, r := newObserver(t, ratekitotel.Config{Store: "memory"})
	lim, err := middleware.New(middleware.Config{Store: faulty, HashKey: []byte("k"), Observer: obs,
		OnStoreError: middleware.FailClosed, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lim.Close() })
	mux := http.NewServeMux()
	mux.Handle("GET /v1/people/{id}", lim.Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {})))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	get := func() int {
		resp, err := srv.Client().Get(srv.URL + "/v1/people/7")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	faulty.Fail(store.ErrFull)
	codes := []int{get()}
	faulty.Fail(nil)
	for range 3 {
		codes = append(codes, get())
	}
	if want := []int{503, 200, 200, 429}; !slices.Equal(codes, want) {
		t.Fatalf("statuses %v, want %v", codes, want)
	}
	ms := collect(t, r)
	equal(t, "ratekit.requests", points(t, ms, "ratekit.requests"), map[string]int64{
		"http.request.method=GET,http.route=/v1/people/{id},ratekit.outcome=allowed": 2,
		"http.request.method=GET,http.route=/v1/people/{id},ratekit.outcome=limited": 1,
		"http.request.method=GET,http.route=/v1/people/{id},ratekit.outcome=error":   1,
	})
	equal(t, "ratekit.limited", points(t, ms, "ratekit.limited"), map[string]int64{"http.route=/v1/people/{id},ratekit.window=second": 1})
	equal(t, "ratekit.store.errors", points(t, ms, "ratekit.store.errors"), map[string]int64{"error.type=full,ratekit.store=memory": 1})
	if h := ms["ratekit.decision.duration"].Data.(metricdata.Histogram[float64]).DataPoints; len(h) != 1 || h[0].Count != 4 {
		t.Errorf("ratekit.decision.duration points %+v, want 4 decisions", h)
	}
}
