package ratekitotel_test

import (
	"context"
	"testing"

	ratekitotel "github.com/ratekit/ratekit/contrib/otel"
	"github.com/ratekit/ratekit/metrics"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// BenchmarkObserveRequest measures the per-request call of the observer,
// a limited request (both instruments), serially and from every core at
// once, for this Observer on the OpenTelemetry SDK (manual reader, default
// exemplar filter, a context without a span) beside package metrics'
// Prometheus Collector.
func BenchmarkObserveRequest(b *testing.B) {
	type observer interface {
		ObserveRequest(ctx context.Context, route, method, outcome, limitedBy string)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	b.Cleanup(func() { mp.Shutdown(context.Background()) })
	obs, err := ratekitotel.New(ratekitotel.Config{MeterProvider: mp})
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		o    observer
	}{
		{"otel", obs},
		{"prometheus", metrics.New(metrics.Config{})},
	} {
		ctx := context.Background()
		b.Run(bc.name+"/serial", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bc.o.ObserveRequest(ctx, "/v1/people/{id}", "GET", "limited", "second")
			}
		})
		b.Run(bc.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					bc.o.ObserveRequest(ctx, "/v1/people/{id}", "GET", "limited", "second")
				}
			})
		})
	}
}
