package ratekitotel_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"sort"
	"time"

	ratekitotel "github.com/ratekit/ratekit/contrib/otel"
	"github.com/ratekit/ratekit/middleware"
	"github.com/ratekit/ratekit/store/memory"
	"github.com/ratekit/ratekit/store/storetest"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// The Observer records the limiter's decisions on the MeterProvider it is
// given; here the SDK's manual reader collects them after three requests,
// the third refused by the per-second window.
func ExampleNew() {
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer provider.Shutdown(context.Background())
	obs, err := ratekitotel.New(ratekitotel.Config{MeterProvider: provider, Store: "memory"})
	if err != nil {
		log.Fatal(err)
	}
	defer obs.Close()

	clk := storetest.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) // time stands still
	st, err := memory.New(memory.Config{Now: clk.Now})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	lim, err := middleware.New(middleware.Config{Store: st, Observer: obs})
	if err != nil {
		log.Fatal(err)
	}
	defer lim.Close()
	mux := http.NewServeMux()
	mux.Handle("GET /v1/people/{id}", lim.Handler(http.NotFoundHandler()))
	for range 3 {
		req := httptest.NewRequest("GET", "/v1/people/7", nil)
		mux.ServeHTTP(httptest.NewRecorder(), req)
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		log.Fatal(err)
	}
	var lines []string
	for _, m := range rm.ScopeMetrics[0].Metrics {
		if sum, ok := m.Data.(metricdata.Sum[int64]); ok {
			for _, p := range sum.DataPoints {
				lines = append(lines, fmt.Sprintf("%s %s = %d", m.Name, attrs(p.Attributes), p.Value))
			}
		}
	}
	sort.Strings(lines)
	for _, l := range lines {
		fmt.Println(l)
	}
	// Output:
	// ratekit.limited http.route=/v1/people/{id},ratekit.window=second = 1
	// ratekit.requests http.request.method=GET,http.route=/v1/people/{id},ratekit.outcome=allowed = 2
	// ratekit.requests http.request.method=GET,http.route=/v1/people/{id},ratekit.outcome=limited = 1
}
