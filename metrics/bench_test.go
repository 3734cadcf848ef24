package metrics_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ratekit/ratekit/metrics"
)

// benchRequests is a small, fixed mix of what the middleware reports: a few
// route patterns, two methods, mostly allowed, some limited.
var benchRequests = []struct{ route, method, outcome, limitedBy string }{
	{"GET /v1/people/{id}", "GET", "allowed", ""},
	{"GET /v1/people/{id}", "GET", "allowed", ""},
	{"GET /v1/people/{id}", "GET", "limited", "second"},
	{"POST /v1/people", "POST", "allowed", ""},
	{"GET /v1/orders/{id}", "GET", "allowed", ""},
	{"GET /v1/orders/{id}", "GET", "limited", "minute"},
	{"DELETE /v1/orders/{id}", "DELETE", "allowed", ""},
	{"unmatched", "OTHER", "allowed", ""},
}

// BenchmarkObserveRequest measures the per-request cost of counting one
// request, steady state (every label combination seen before), serially and
// with every core at once. impl=collector is Collector.ObserveRequest, which
// also counts ratekit_limited_total for limited requests and normalises its
// labels; impl=countervec is the plain baseline of
// CounterVec.WithLabelValues(route, method, outcome).Inc() alone.
func BenchmarkObserveRequest(b *testing.B) {
	newVec := func() *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "baseline_requests_total", Help: "Baseline.",
		}, []string{"route", "method", "outcome"})
	}
	b.Run("impl=collector/serial", func(b *testing.B) {
		col := metrics.New(metrics.Config{Store: "memory"})
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			r := &benchRequests[i%len(benchRequests)]
			col.ObserveRequest(ctx, r.route, r.method, r.outcome, r.limitedBy)
			i++
		}
	})
	b.Run("impl=countervec/serial", func(b *testing.B) {
		vec := newVec()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			r := &benchRequests[i%len(benchRequests)]
			vec.WithLabelValues(r.route, r.method, r.outcome).Inc()
			i++
		}
	})
	b.Run("impl=collector/parallel", func(b *testing.B) {
		col := metrics.New(metrics.Config{Store: "memory"})
		var start atomic.Int64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := int(start.Add(3))
			for pb.Next() {
				r := &benchRequests[i%len(benchRequests)]
				col.ObserveRequest(ctx, r.route, r.method, r.outcome, r.limitedBy)
				i++
			}
		})
	})
	b.Run("impl=countervec/parallel", func(b *testing.B) {
		vec := newVec()
		var start atomic.Int64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := int(start.Add(3))
			for pb.Next() {
				r := &benchRequests[i%len(benchRequests)]
				vec.WithLabelValues(r.route, r.method, r.outcome).Inc()
				i++
			}
		})
	})
}

// BenchmarkObserveDecision measures adding one decision duration to the
// histogram, serially and in parallel.
func BenchmarkObserveDecision(b *testing.B) {
	b.Run("serial", func(b *testing.B) {
		col := metrics.New(metrics.Config{})
		b.ReportAllocs()
		for b.Loop() {
			col.ObserveDecision(ctx, 37*time.Microsecond)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		col := metrics.New(metrics.Config{})
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				col.ObserveDecision(ctx, 37*time.Microsecond)
			}
		})
	})
}
