// Command example serves a small API behind ratekit and records what the
// limiter does as OpenTelemetry metrics, printed to stdout by the SDK's
// stdout exporter every -interval. A real service hands the same Observer
// a MeterProvider with its OTLP or Prometheus exporter.
//
//	go run ./example -addr :8080 -interval 10s
//	for i in 1 2 3; do curl -s -o /dev/null -w '%{http_code}\n' localhost:8080/v1/people/7; done
package main

import (
	"context"
	"errors"
	"flag"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	ratekitotel "github.com/ratekit/ratekit/contrib/otel"
	"github.com/ratekit/ratekit/middleware"
	"github.com/ratekit/ratekit/store/memory"
	"go.opentelemetry.io/otel/exporters/stdout/stdoutmetric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

func main() {
	addr := flag.String("addr", ":8080", "listen address")
	interval := flag.Duration("interval", 10*time.Second, "how often the metrics are printed")
	flag.Parse()

	exp, err := stdoutmetric.New(stdoutmetric.WithPrettyPrint())
	if err != nil {
		log.Fatal(err)
	}
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(*interval))))
	defer provider.Shutdown(context.Background()) // prints the last collection

	mem, err := memory.New(memory.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer mem.Close()
	obs, err := ratekitotel.New(ratekitotel.Config{MeterProvider: provider, Store: "memory", Keys: mem})
	if err != nil {
		log.Fatal(err)
	}
	defer obs.Close()
	lim, err := middleware.New(middleware.Config{Store: mem, Observer: obs})
	if err != nil {
		log.Fatal(err)
	}
	defer lim.Close()

	mux := http.NewServeMux()
	mux.Handle("GET /v1/people/{id}", lim.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"id":"` + r.PathValue("id") + `"}`))
	})))
	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	log.Printf("listening on %s: GET /v1/people/{id}; metrics on stdout every %v", *addr, *interval)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}
