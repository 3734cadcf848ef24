package metrics_test

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ratekit/ratekit/metrics"
)

func ExampleNew() {
	// The registry is yours: New registers nothing anywhere.
	reg := prometheus.NewRegistry()
	col := metrics.New(metrics.Config{Store: "memory"})
	reg.MustRegister(col)

	// The middleware makes these calls, with each request's context, when
	// col is its Config.Observer.
	ctx := context.Background()
	col.ObserveRequest(ctx, "GET /v1/people/{id}", "GET", "allowed", "")
	col.ObserveRequest(ctx, "GET /v1/people/{id}", "GET", "limited", "second")
	col.ObserveRequest(ctx, "GET /v1/people/{id}", "GET", "limited", "second")
	col.ObserveDecision(ctx, 40*time.Microsecond)
	col.ObserveStoreError(ctx, "timeout")

	mfs, err := reg.Gather()
	if err != nil {
		panic(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case "ratekit_requests_total", "ratekit_limited_total", "ratekit_store_errors_total":
				if m.GetCounter().GetValue() == 0 {
					continue // every kind of store error is a series from the start, at 0
				}
				fmt.Print(mf.GetName(), "{")
				for i, lp := range m.GetLabel() {
					if i > 0 {
						fmt.Print(",")
					}
					fmt.Printf("%s=%q", lp.GetName(), lp.GetValue())
				}
				fmt.Println("}", m.GetCounter().GetValue())
			}
		}
	}
	// Output:
	// ratekit_limited_total{route="GET /v1/people/{id}",window="second"} 2
	// ratekit_requests_total{method="GET",outcome="allowed",route="GET /v1/people/{id}"} 1
	// ratekit_requests_total{method="GET",outcome="limited",route="GET /v1/people/{id}"} 2
	// ratekit_store_errors_total{kind="timeout",store="memory"} 1
}
