// Command basic serves a tiny API behind ratekit with the Lindris contract:
// 60 requests per minute and 2 per second, sliding, per API key for known
// keys and per client IP otherwise, state in memory.
//
//	go run ./examples/basic -addr :8080 -keys demo-key-1,demo-key-2
//	curl -i -H 'X-API-Key: demo-key-1' localhost:8080/v1/people
package main

import (
	"context"
	"errors"
	"flag"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/ratekit/ratekit/middleware"
)

func main() {
	addr := flag.String("addr", ":8080", "listen address")
	keys := flag.String("keys", "demo-key-1,demo-key-2", "comma-separated valid API keys")
	flag.Parse()

	srv := &http.Server{Addr: *addr, Handler: newHandler(splitKeys(*keys)), ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	log.Printf("listening on %s: GET /v1/people, 60/min + 2/s per key or IP", *addr)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

func splitKeys(s string) []string {
	var keys []string
	for _, k := range strings.Split(s, ",") {
		if k = strings.TrimSpace(k); k != "" {
			keys = append(keys, k)
		}
	}
	return keys
}

// newHandler returns the API behind a default limiter that knows keys.
func newHandler(keys []string) http.Handler {
	known := make(map[string]bool, len(keys))
	for _, k := range keys {
		known[k] = true
	}
	lim, err := middleware.New(middleware.Config{
		KeyValidator: func(_ context.Context, key string) (middleware.Client, bool) {
			return middleware.Client{}, known[key]
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /v1/people", lim.Handler(http.HandlerFunc(people)))
	return mux
}

func people(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`[{"id":1,"name":"Ada Lovelace"},{"id":2,"name":"Grace Hopper"},{"id":3,"name":"Katherine Johnson"}]` + "\n"))
}
