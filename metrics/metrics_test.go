package metrics_test

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/ratekit/ratekit/metrics"
	"github.com/ratekit/ratekit/store"
)

// fakeKeys stands in for *memory.Store as Config.Keys.
type fakeKeys struct {
	mu        sync.Mutex
	n         int
	evictions uint64
}

func (f *fakeKeys) Len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

func (f *fakeKeys) Evictions() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.evictions
}

func (f *fakeKeys) set(n int, ev uint64) {
	f.mu.Lock()
	f.n, f.evictions = n, ev
	f.mu.Unlock()
}

// newRegistered returns a Collector registered on a fresh pedantic registry,
// which also checks that Collect sends only what Describe described.
func newRegistered(t *testing.T, cfg metrics.Config) (*metrics.Collector, *prometheus.Registry) {
	t.Helper()
	col := metrics.New(cfg)
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(col); err != nil {
		t.Fatalf("Register(New(%+v)) = %v, want nil", cfg, err)
	}
	return col, reg
}

// gather returns the gathered families by name.
func gather(t *testing.T, reg prometheus.Gatherer) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather() = %v", err)
	}
	out := make(map[string]*dto.MetricFamily, len(mfs))
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

// seriesCount is the number of metrics (label sets) across all families; a
// histogram counts once.
func seriesCount(t *testing.T, reg prometheus.Gatherer) int {
	t.Helper()
	n := 0
	for _, mf := range gather(t, reg) {
		n += len(mf.GetMetric())
	}
	return n
}

// labelValues returns the distinct values of label name in family fam.
func labelValues(t *testing.T, reg prometheus.Gatherer, fam, name string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	mf := gather(t, reg)[fam]
	for _, m := range mf.GetMetric() {
		for _, lp := range m.GetLabel() {
			if lp.GetName() == name {
				out[lp.GetValue()] = true
			}
		}
	}
	return out
}

func TestCollectorExposition(t *testing.T) {
	keys := &fakeKeys{}
	keys.set(42, 7)
	col, reg := newRegistered(t, metrics.Config{
		Store:   "redis",
		Keys:    keys,
		Buckets: []float64{0.001, 0.01},
	})
	const people = "GET /v1/people/{id}"
	col.ObserveRequest(ctx, people, "GET", "allowed", "")
	col.ObserveRequest(ctx, people, "GET", "allowed", "")
	col.ObserveRequest(ctx, people, "GET", "limited", "minute")
	col.ObserveRequest(ctx, people, "GET", "limited", "second")
	col.ObserveRequest(ctx, people, "GET", "limited", "second")
	col.ObserveRequest(ctx, "/login", "POST", "error", "")
	col.ObserveDecision(ctx, 500*time.Microsecond)
	col.ObserveDecision(ctx, 5*time.Millisecond)
	col.ObserveDecision(ctx, time.Second)
	col.ObserveStoreError(ctx, "timeout")
	col.ObserveStoreError(ctx, "timeout")
	col.ObserveStoreError(ctx, "breaker-open")
	col.ObserveFallback(true)
	col.ObserveBreaker(2)
	col.ObserveDenyCacheHit(ctx)

	want := `
# HELP ratekit_circuit_state State of the circuit breaker around the store: 0 closed, 1 half-open, 2 open.
# TYPE ratekit_circuit_state gauge
ratekit_circuit_state{store="redis"} 2
# HELP ratekit_decision_duration_seconds Time one store decision took, successful or not.
# TYPE ratekit_decision_duration_seconds histogram
ratekit_decision_duration_seconds_bucket{store="redis",le="0.001"} 1
ratekit_decision_duration_seconds_bucket{store="redis",le="0.01"} 2
ratekit_decision_duration_seconds_bucket{store="redis",le="+Inf"} 3
ratekit_decision_duration_seconds_sum{store="redis"} 1.0055
ratekit_decision_duration_seconds_count{store="redis"} 3
# HELP ratekit_deny_cache_hits_total Rejections answered from the deny cache without a store call.
# TYPE ratekit_deny_cache_hits_total counter
ratekit_deny_cache_hits_total 1
# HELP ratekit_limited_total Requests rejected by the rate limiter, by route pattern and the window that limited them.
# TYPE ratekit_limited_total counter
ratekit_limited_total{route="GET /v1/people/{id}",window="minute"} 1
ratekit_limited_total{route="GET /v1/people/{id}",window="second"} 2
# HELP ratekit_memory_evictions_total Keys the in-memory store evicted to make room for new ones.
# TYPE ratekit_memory_evictions_total counter
ratekit_memory_evictions_total 7
# HELP ratekit_memory_keys Keys currently tracked by the in-memory store.
# TYPE ratekit_memory_keys gauge
ratekit_memory_keys 42
# HELP ratekit_requests_total Requests that reached the rate limiter, by route pattern, method and outcome (allowed, limited, error, exempt, shadow).
# TYPE ratekit_requests_total counter
ratekit_requests_total{method="GET",outcome="allowed",route="GET /v1/people/{id}"} 2
ratekit_requests_total{method="GET",outcome="limited",route="GET /v1/people/{id}"} 3
ratekit_requests_total{method="POST",outcome="error",route="/login"} 1
# HELP ratekit_store_errors_total Failed store decisions, by kind of failure.
# TYPE ratekit_store_errors_total counter
ratekit_store_errors_total{kind="breaker-open",store="redis"} 1
ratekit_store_errors_total{kind="canceled",store="redis"} 0
ratekit_store_errors_total{kind="cluster",store="redis"} 0
ratekit_store_errors_total{kind="connection",store="redis"} 0
ratekit_store_errors_total{kind="full",store="redis"} 0
ratekit_store_errors_total{kind="loading",store="redis"} 0
ratekit_store_errors_total{kind="oom",store="redis"} 0
ratekit_store_errors_total{kind="other",store="redis"} 0
ratekit_store_errors_total{kind="panic",store="redis"} 0
ratekit_store_errors_total{kind="readonly",store="redis"} 0
ratekit_store_errors_total{kind="script",store="redis"} 0
ratekit_store_errors_total{kind="timeout",store="redis"} 2
# HELP ratekit_store_fallback_active 1 while decisions come from the local fallback limiter instead of the shared store, else 0.
# TYPE ratekit_store_fallback_active gauge
ratekit_store_fallback_active{store="redis"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Errorf("GatherAndCompare: %v", err)
	}
}

func TestObserveRequestLabels(t *testing.T) {
	tests := []struct {
		name                              string
		route, method, outcome, limitedBy string
		wantReq                           []string // route, method, outcome
		wantLimited                       []string // route, window; nil: not counted
	}{
		{"allowed", "/a", "GET", "allowed", "", []string{"/a", "GET", "allowed"}, nil},
		{"allowed ignores limitedBy", "/a", "GET", "allowed", "minute", []string{"/a", "GET", "allowed"}, nil},
		{"limited", "/a", "PUT", "limited", "minute", []string{"/a", "PUT", "limited"}, []string{"/a", "minute"}},
		{"limited by configured name", "/a", "PUT", "limited", "burst", []string{"/a", "PUT", "limited"}, []string{"/a", "burst"}},
		{"limited without window", "/a", "PUT", "limited", "", []string{"/a", "PUT", "limited"}, []string{"/a", "unknown"}},
		{"exempt", "/a", "GET", "exempt", "", []string{"/a", "GET", "exempt"}, nil},
		{"shadow", "/a", "GET", "shadow", "minute", []string{"/a", "GET", "shadow"}, nil},
		{"OTHER method", "/a", "OTHER", "allowed", "", []string{"/a", "OTHER", "allowed"}, nil},
		{"junk method", "/a", "BREW", "allowed", "", []string{"/a", "OTHER", "allowed"}, nil},
		{"lower-case method", "/a", "get", "allowed", "", []string{"/a", "OTHER", "allowed"}, nil},
		{"junk outcome", "/a", "GET", "maybe", "", []string{"/a", "GET", "other"}, nil},
		{"empty route", "", "GET", "allowed", "", []string{"other", "GET", "allowed"}, nil},
		{"invalid UTF-8 route", "/\xff", "GET", "allowed", "", []string{"other", "GET", "allowed"}, nil},
		{"invalid UTF-8 window", "/a", "GET", "limited", "\xfe", []string{"/a", "GET", "limited"}, []string{"/a", "other"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			col, reg := newRegistered(t, metrics.Config{})
			// Twice: once through the slow path, once through the cache.
			col.ObserveRequest(ctx, tc.route, tc.method, tc.outcome, tc.limitedBy)
			col.ObserveRequest(ctx, tc.route, tc.method, tc.outcome, tc.limitedBy)
			fams := gather(t, reg)
			if got := len(fams["ratekit_requests_total"].GetMetric()); got != 1 {
				t.Fatalf("ObserveRequest(%q, %q, %q, %q): %d requests series, want 1", tc.route, tc.method, tc.outcome, tc.limitedBy, got)
			}
			got := labelsOf(fams["ratekit_requests_total"].GetMetric()[0], "route", "method", "outcome")
			if fmt.Sprint(got) != fmt.Sprint(tc.wantReq) {
				t.Errorf("ObserveRequest(%q, %q, %q, %q) requests labels = %q, want %q", tc.route, tc.method, tc.outcome, tc.limitedBy, got, tc.wantReq)
			}
			if v := fams["ratekit_requests_total"].GetMetric()[0].GetCounter().GetValue(); v != 2 {
				t.Errorf("ObserveRequest(%q, %q, %q, %q) ×2: requests = %v, want 2", tc.route, tc.method, tc.outcome, tc.limitedBy, v)
			}
			lim := fams["ratekit_limited_total"].GetMetric()
			switch {
			case tc.wantLimited == nil && len(lim) != 0:
				t.Errorf("ObserveRequest(%q, %q, %q, %q): %d limited series, want 0", tc.route, tc.method, tc.outcome, tc.limitedBy, len(lim))
			case tc.wantLimited != nil && len(lim) != 1:
				t.Errorf("ObserveRequest(%q, %q, %q, %q): %d limited series, want 1", tc.route, tc.method, tc.outcome, tc.limitedBy, len(lim))
			case tc.wantLimited != nil:
				got := labelsOf(lim[0], "route", "window")
				if fmt.Sprint(got) != fmt.Sprint(tc.wantLimited) {
					t.Errorf("ObserveRequest(%q, %q, %q, %q) limited labels = %q, want %q", tc.route, tc.method, tc.outcome, tc.limitedBy, got, tc.wantLimited)
				}
				if v := lim[0].GetCounter().GetValue(); v != 2 {
					t.Errorf("ObserveRequest(%q, %q, %q, %q) ×2: limited = %v, want 2", tc.route, tc.method, tc.outcome, tc.limitedBy, v)
				}
			}
		})
	}
}

func labelsOf(m *dto.Metric, names ...string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		for _, lp := range m.GetLabel() {
			if lp.GetName() == n {
				out[i] = lp.GetValue()
			}
		}
	}
	return out
}

func TestStoreMetrics(t *testing.T) {
	t.Run("default store label", func(t *testing.T) {
		col, reg := newRegistered(t, metrics.Config{})
		col.ObserveDecision(ctx, time.Millisecond)
		if got := labelValues(t, reg, "ratekit_decision_duration_seconds", "store"); !got["default"] || len(got) != 1 {
			t.Errorf("New(Config{}) store labels = %v, want only default", got)
		}
	})
	t.Run("store error kinds", func(t *testing.T) {
		col, _ := newRegistered(t, metrics.Config{Store: "memory"})
		kinds := []string{"timeout", "connection", "script", "oom", "readonly", "loading",
			"cluster", "canceled", "full", "panic", "breaker-open", "other"}
		for _, k := range kinds {
			col.ObserveStoreError(ctx, k)
		}
		col.ObserveStoreError(ctx, "dial tcp 10.0.0.1:6379: i/o timeout")
		col.ObserveStoreError(ctx, "")
		for _, k := range kinds[:len(kinds)-1] {
			if got := testutil.ToFloat64(storeErrors(col, k)); got != 1 {
				t.Errorf("ObserveStoreError(%q): count = %v, want 1", k, got)
			}
		}
		if got := testutil.ToFloat64(storeErrors(col, "other")); got != 3 {
			t.Errorf("ObserveStoreError(other, junk, empty): other = %v, want 3", got)
		}
		if got := testutil.CollectAndCount(col, "ratekit_store_errors_total"); got != len(kinds) {
			t.Errorf("store error series = %d, want %d", got, len(kinds))
		}
	})
	t.Run("fallback", func(t *testing.T) {
		col, reg := newRegistered(t, metrics.Config{})
		steps := []struct {
			active bool
			want   float64
		}{{false, 0}, {true, 1}, {true, 1}, {false, 0}}
		for _, s := range steps {
			col.ObserveFallback(s.active)
			if got := gaugeValue(t, reg, "ratekit_store_fallback_active"); got != s.want {
				t.Errorf("ObserveFallback(%v): gauge = %v, want %v", s.active, got, s.want)
			}
		}
	})
	t.Run("breaker", func(t *testing.T) {
		col, reg := newRegistered(t, metrics.Config{})
		if got := gaugeValue(t, reg, "ratekit_circuit_state"); got != 0 {
			t.Errorf("circuit state before any call = %v, want 0 (closed)", got)
		}
		steps := []struct {
			state int
			want  float64
		}{{2, 2}, {1, 1}, {7, 1}, {-1, 1}, {0, 0}}
		for _, s := range steps {
			col.ObserveBreaker(s.state)
			if got := gaugeValue(t, reg, "ratekit_circuit_state"); got != s.want {
				t.Errorf("ObserveBreaker(%d): gauge = %v, want %v", s.state, got, s.want)
			}
		}
	})
	t.Run("deny cache", func(t *testing.T) {
		col, reg := newRegistered(t, metrics.Config{})
		for range 3 {
			col.ObserveDenyCacheHit(ctx)
		}
		if got := gather(t, reg)["ratekit_deny_cache_hits_total"].GetMetric()[0].GetCounter().GetValue(); got != 3 {
			t.Errorf("ObserveDenyCacheHit ×3: counter = %v, want 3", got)
		}
	})
	t.Run("negative duration", func(t *testing.T) {
		col, reg := newRegistered(t, metrics.Config{})
		col.ObserveDecision(ctx, -time.Second)
		h := gather(t, reg)["ratekit_decision_duration_seconds"].GetMetric()[0].GetHistogram()
		if h.GetSampleCount() != 1 || h.GetSampleSum() != 0 {
			t.Errorf("ObserveDecision(-1s): count, sum = %d, %v, want 1, 0", h.GetSampleCount(), h.GetSampleSum())
		}
	})
}

// storeErrors returns a collector holding only the store-error series of
// kind, for testutil.ToFloat64.
func storeErrors(col *metrics.Collector, kind string) prometheus.Collector {
	return filter{col, func(m prometheus.Metric) bool {
		var d dto.Metric
		if err := m.Write(&d); err != nil || d.Counter == nil {
			return false
		}
		return strings.Contains(m.Desc().String(), `"ratekit_store_errors_total"`) &&
			labelsOf(&d, "kind")[0] == kind
	}}
}

// filter is a collector passing on only the metrics keep accepts.
type filter struct {
	prometheus.Collector
	keep func(prometheus.Metric) bool
}

func (f filter) Collect(ch chan<- prometheus.Metric) {
	all := make(chan prometheus.Metric)
	go func() { f.Collector.Collect(all); close(all) }()
	for m := range all {
		if f.keep(m) {
			ch <- m
		}
	}
}

func gaugeValue(t *testing.T, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	mf := gather(t, reg)[name]
	if len(mf.GetMetric()) != 1 {
		t.Fatalf("%s: %d series, want 1", name, len(mf.GetMetric()))
	}
	return mf.GetMetric()[0].GetGauge().GetValue()
}

func TestMemoryKeysReadAtScrape(t *testing.T) {
	keys := &fakeKeys{}
	_, reg := newRegistered(t, metrics.Config{Store: "memory", Keys: keys})
	for _, s := range []struct {
		n  int
		ev uint64
	}{{0, 0}, {10, 0}, {10000, 25}, {3, 25}} {
		keys.set(s.n, s.ev)
		fams := gather(t, reg)
		if got := fams["ratekit_memory_keys"].GetMetric()[0].GetGauge().GetValue(); got != float64(s.n) {
			t.Errorf("Len() = %d: ratekit_memory_keys = %v, want %d", s.n, got, s.n)
		}
		if got := fams["ratekit_memory_evictions_total"].GetMetric()[0].GetCounter().GetValue(); got != float64(s.ev) {
			t.Errorf("Evictions() = %d: ratekit_memory_evictions_total = %v, want %d", s.ev, got, s.ev)
		}
	}

	_, reg = newRegistered(t, metrics.Config{Store: "redis"})
	fams := gather(t, reg)
	for _, name := range []string{"ratekit_memory_keys", "ratekit_memory_evictions_total"} {
		if _, ok := fams[name]; ok {
			t.Errorf("New(Config{Keys: nil}) exports %s, want it absent", name)
		}
	}
}

func TestBuckets(t *testing.T) {
	tests := []struct {
		name string
		in   []float64
		want []float64
	}{
		{"nil means defaults", nil, metrics.DefaultBuckets()},
		{"empty means defaults", []float64{}, metrics.DefaultBuckets()},
		{"sorted and deduplicated", []float64{0.1, 0.01, 0.1, 0.001}, []float64{0.001, 0.01, 0.1}},
		{"NaN and +Inf dropped", []float64{math.NaN(), 0.5, math.Inf(1)}, []float64{0.5}},
		{"only +Inf means defaults", []float64{math.Inf(1)}, metrics.DefaultBuckets()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := append([]float64(nil), tc.in...)
			col, reg := newRegistered(t, metrics.Config{Buckets: tc.in})
			col.ObserveDecision(ctx, time.Microsecond)
			var got []float64
			for _, b := range gather(t, reg)["ratekit_decision_duration_seconds"].GetMetric()[0].GetHistogram().GetBucket() {
				got = append(got, b.GetUpperBound())
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("New(Config{Buckets: %v}) buckets = %v, want %v", in, got, tc.want)
			}
			if fmt.Sprint(in) != fmt.Sprint(tc.in) {
				t.Errorf("New(Config{Buckets: %v}) changed the caller's slice to %v", in, tc.in)
			}
		})
	}
}

// TestDefaultBucketsSpan checks the documented range: 1µs to 100ms.
func TestDefaultBucketsSpan(t *testing.T) {
	b := metrics.DefaultBuckets()
	if b[0] != 1e-6 || b[len(b)-1] != 0.1 {
		t.Errorf("DefaultBuckets span %v..%v, want 1e-06..0.1", b[0], b[len(b)-1])
	}
}

// TestCardinality is catalogue test 29 at this layer: garbage input yields a
// bounded number of series, and normal traffic adds none after warm-up.
func TestCardinality(t *testing.T) {
	t.Run("10000 distinct routes and junk methods", func(t *testing.T) {
		col, reg := newRegistered(t, metrics.Config{Store: "memory"})
		for i := range 10000 {
			route := fmt.Sprintf("/users/%d", i)
			method := fmt.Sprintf("M%d", i)
			col.ObserveRequest(ctx, route, method, "limited", fmt.Sprintf("w%d", i))
			col.ObserveRequest(ctx, route, "GET", fmt.Sprintf("outcome%d", i), "")
			col.ObserveStoreError(ctx, fmt.Sprintf("kind%d", i))
		}
		routes := labelValues(t, reg, "ratekit_requests_total", "route")
		if len(routes) != metrics.MaxRoutes+1 || !routes["other"] {
			t.Errorf("distinct routes = %d (other: %v), want MaxRoutes+1 = %d including other", len(routes), routes["other"], metrics.MaxRoutes+1)
		}
		if got := labelValues(t, reg, "ratekit_requests_total", "method"); len(got) != 2 || !got["OTHER"] || !got["GET"] {
			t.Errorf("methods = %v, want OTHER and GET", got)
		}
		if got := labelValues(t, reg, "ratekit_requests_total", "outcome"); len(got) != 2 || !got["limited"] || !got["other"] {
			t.Errorf("outcomes = %v, want limited and other", got)
		}
		if got := labelValues(t, reg, "ratekit_limited_total", "window"); len(got) != metrics.MaxWindows+1 || !got["other"] {
			t.Errorf("distinct windows = %d, want MaxWindows+1 = %d including other", len(got), metrics.MaxWindows+1)
		}
		if got := labelValues(t, reg, "ratekit_store_errors_total", "kind"); len(got) != len(store.Kinds()) || !got["other"] {
			t.Errorf("store error kinds = %v, want the %d of store.Kinds (junk counted as other)", got, len(store.Kinds()))
		}
		// The documented worst case: (MaxRoutes+1) routes × 10 methods × 6
		// outcomes, plus (MaxRoutes+1) × (MaxWindows+2) limited series, plus
		// at most 12 store-error kinds and 5 unlabelled or store-only series.
		bound := (metrics.MaxRoutes+1)*10*6 + (metrics.MaxRoutes+1)*(metrics.MaxWindows+2) + 12 + 5
		n := seriesCount(t, reg)
		if n > bound {
			t.Errorf("series after 10000 junk routes = %d, want ≤ %d", n, bound)
		}
		t.Logf("series after 10000 junk routes: %d (documented bound %d)", n, bound)

		// Totals are still exact: nothing is dropped, only relabelled.
		var total float64
		for _, m := range gather(t, reg)["ratekit_requests_total"].GetMetric() {
			total += m.GetCounter().GetValue()
		}
		if total != 20000 {
			t.Errorf("sum of ratekit_requests_total = %v, want 20000", total)
		}
	})

	t.Run("fixed routes add no series after baseline", func(t *testing.T) {
		col, reg := newRegistered(t, metrics.Config{Store: "memory", Keys: &fakeKeys{}})
		type req struct{ route, method, outcome, by string }
		set := []req{
			{"GET /v1/people/{id}", "GET", "allowed", ""},
			{"GET /v1/people/{id}", "GET", "limited", "minute"},
			{"POST /v1/people", "POST", "allowed", ""},
			{"POST /v1/people", "POST", "limited", "second"},
			{"unmatched", "OTHER", "allowed", ""},
		}
		observe := func(i int) {
			r := set[i%len(set)]
			col.ObserveRequest(ctx, r.route, r.method, r.outcome, r.by)
			col.ObserveDecision(ctx, time.Duration(i)*time.Microsecond)
			if i%7 == 0 {
				col.ObserveStoreError(ctx, "timeout")
			}
			if i%3 == 0 {
				col.ObserveDenyCacheHit(ctx)
			}
		}
		for i := range 10 {
			observe(i)
		}
		baseline := seriesCount(t, reg)
		for i := range 10000 {
			observe(i)
		}
		if got := seriesCount(t, reg); got != baseline {
			t.Errorf("series after 10000 requests = %d, want the 10-request baseline %d", got, baseline)
		}
	})
}

// TestSecretHygiene is catalogue test 23 at this layer: a value passed where
// only a bounded label belongs never reaches /metrics.
func TestSecretHygiene(t *testing.T) {
	const secret = "sk_live_Zq9/x+y=K3y"
	col, reg := newRegistered(t, metrics.Config{Store: "redis", Keys: &fakeKeys{}})
	// Fill the route cap so that a later route is not a new label value.
	for i := range metrics.MaxRoutes {
		col.ObserveRequest(ctx, fmt.Sprintf("/r%d", i), "GET", "allowed", "")
	}
	col.ObserveRequest(ctx, "/visible-route", "GET", "allowed", "") // beyond the cap
	col.ObserveRequest(ctx, secret, "GET", "allowed", "")           // beyond the cap
	col.ObserveRequest(ctx, "/r1", secret, "allowed", "")
	col.ObserveRequest(ctx, "/r1", "GET", secret, "")
	col.ObserveRequest(ctx, "/r1", "GET", "allowed", secret) // not limited: window unused
	col.ObserveRequest(ctx, "/r1", "GET", "shadow", secret)
	col.ObserveStoreError(ctx, secret)
	col.ObserveStoreError(ctx, "dial tcp 10.1.2.3:6379: "+secret)

	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	text := string(body)
	for _, form := range []string{secret, url.QueryEscape(secret), url.PathEscape(secret), "Zq9", "10.1.2.3", "visible-route"} {
		if strings.Contains(text, form) {
			t.Errorf("/metrics contains %q", form)
		}
	}
	// Control: the scrape is real and carries the admitted labels.
	if !strings.Contains(text, `route="/r1"`) || !strings.Contains(text, `route="other"`) {
		t.Errorf("/metrics lacks route=\"/r1\" or route=\"other\"; scrape:\n%.2000s", text)
	}
}

func TestLint(t *testing.T) {
	col := metrics.New(metrics.Config{Store: "memory", Keys: &fakeKeys{}})
	col.ObserveRequest(ctx, "/a", "GET", "limited", "minute")
	col.ObserveDecision(ctx, time.Millisecond)
	col.ObserveStoreError(ctx, "timeout")
	col.ObserveDenyCacheHit(ctx)
	problems, err := testutil.CollectAndLint(col)
	if err != nil {
		t.Fatalf("CollectAndLint: %v", err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

func TestConcurrentObserve(t *testing.T) {
	col, reg := newRegistered(t, metrics.Config{})
	const goroutines, each = 8, 2000
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				// Some shared combinations, some per goroutine: races on the
				// slow path and on the cache.
				col.ObserveRequest(ctx, fmt.Sprintf("/r%d", (g+i)%20), "GET", "limited", "minute")
				col.ObserveDecision(ctx, time.Microsecond)
				col.ObserveStoreError(ctx, "timeout")
				col.ObserveFallback(i%2 == 0)
				col.ObserveBreaker(i % 3)
				col.ObserveDenyCacheHit(ctx)
			}
		})
	}
	// Scrape concurrently with the writers.
	for range 5 {
		if _, err := reg.Gather(); err != nil {
			t.Fatalf("Gather() = %v", err)
		}
	}
	wg.Wait()
	var req, lim float64
	fams := gather(t, reg)
	for _, m := range fams["ratekit_requests_total"].GetMetric() {
		req += m.GetCounter().GetValue()
	}
	for _, m := range fams["ratekit_limited_total"].GetMetric() {
		lim += m.GetCounter().GetValue()
	}
	if want := float64(goroutines * each); req != want || lim != want {
		t.Errorf("after %d concurrent requests: requests = %v, limited = %v, want both %v", goroutines*each, req, lim, want)
	}
}

func TestTwoCollectorsNeedWrapping(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.New(metrics.Config{Store: "memory"}))
	if err := reg.Register(metrics.New(metrics.Config{Store: "redis"})); err == nil {
		t.Errorf("registering a second Collector unwrapped = nil error, want a collision (the docs say to wrap)")
	}

	// Wrapped, each with its own label, two Collectors coexist.
	reg = prometheus.NewRegistry()
	for _, name := range []string{"public", "internal"} {
		wrapped := prometheus.WrapRegistererWith(prometheus.Labels{"limiter": name}, reg)
		if err := wrapped.Register(metrics.New(metrics.Config{Store: "redis"})); err != nil {
			t.Errorf("registering Collector %q with WrapRegistererWith = %v, want nil", name, err)
		}
	}
}

// TestObserveRequestSteadyStateAllocs pins the hot-path promise: once a
// combination has been seen, ObserveRequest allocates nothing.
func TestObserveRequestSteadyStateAllocs(t *testing.T) {
	col := metrics.New(metrics.Config{})
	for _, r := range benchRequests {
		col.ObserveRequest(ctx, r.route, r.method, r.outcome, r.limitedBy)
	}
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		r := &benchRequests[i%len(benchRequests)]
		col.ObserveRequest(ctx, r.route, r.method, r.outcome, r.limitedBy)
		i++
	})
	if allocs != 0 {
		t.Errorf("ObserveRequest in steady state: %v allocs/op, want 0", allocs)
	}
}

// TestManyWindowsOneRoute overflows the per-route window cache: counts stay
// exact and window values stay capped.
func TestManyWindowsOneRoute(t *testing.T) {
	col, reg := newRegistered(t, metrics.Config{})
	const n = 1000
	for range 2 {
		for i := range n {
			col.ObserveRequest(ctx, "/a", "GET", "limited", fmt.Sprintf("w%d", i))
		}
	}
	var total float64
	windows := map[string]bool{}
	for _, m := range gather(t, reg)["ratekit_limited_total"].GetMetric() {
		total += m.GetCounter().GetValue()
		windows[labelsOf(m, "window")[0]] = true
	}
	if total != 2*n {
		t.Errorf("sum of ratekit_limited_total = %v, want %d", total, 2*n)
	}
	if len(windows) != metrics.MaxWindows+1 || !windows["other"] {
		t.Errorf("distinct windows = %d, want MaxWindows+1 = %d including other", len(windows), metrics.MaxWindows+1)
	}
}
