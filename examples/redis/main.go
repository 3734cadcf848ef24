// Command redis serves the same API as examples/basic, with its limits kept
// in Redis so that any number of instances share them exactly. When Redis is
// unreachable it keeps answering with a local limiter (each instance
// enforcing its share) and marks answers X-RateLimit-Degraded: true.
//
//	go run ./examples/redis -addr :8080 -redis redis://127.0.0.1:6379/0
//	go run ./examples/redis -addr :8081 -redis redis://127.0.0.1:6379/0
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

	goredis "github.com/redis/go-redis/v9"

	"github.com/ratekit/ratekit/middleware"
	redisstore "github.com/ratekit/ratekit/store/redis"
)

func main() {
	addr := flag.String("addr", ":8080", "listen address")
	keys := flag.String("keys", "demo-key-1,demo-key-2", "comma-separated valid API keys")
	redisURL := flag.String("redis", "redis://127.0.0.1:6379/0", "Redis URL (redis:// or rediss://)")
	timeout := flag.Duration("timeout", redisstore.DefaultTimeout, "deadline of one Redis decision; past it the local fallback answers")
	instances := flag.Int("instances", 1, "how many instances share Redis; while it is down each enforces 1/instances of the limits")
	hashKey := flag.String("hash-key", envOr("RATEKIT_HASH_KEY", "demo-hash-key-change-me"),
		"secret from which store keys are derived; every instance sharing Redis needs the same one (env RATEKIT_HASH_KEY)")
	flag.Parse()

	client, err := newClient(*redisURL)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	h, closeLimiter, err := newHandler(client, splitKeys(*keys), []byte(*hashKey), *instances, *timeout)
	if err != nil {
		log.Fatal(err)
	}
	defer closeLimiter()

	srv := &http.Server{Addr: *addr, Handler: h, ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	log.Printf("listening on %s: GET /v1/people, 60/min + 2/s shared through %s", *addr, *redisURL)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

// newClient opens a go-redis client set up for the limiter: context
// deadlines honoured (so a black-holed server costs at most the store's
// timeout) and no automatic retries (a decision applied on the server whose
// reply was lost must not be sent, and counted, twice).
func newClient(url string) (*goredis.Client, error) {
	opt, err := goredis.ParseURL(url)
	if err != nil {
		return nil, err
	}
	opt.ContextTimeoutEnabled = true
	opt.MaxRetries = -1
	opt.DialerRetries = 1 // Redis down: each decision fails at once instead of redialling past the timeout
	opt.DialTimeout = 200 * time.Millisecond
	return goredis.NewClient(opt), nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
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

// newHandler returns the API behind a limiter whose state lives in Redis,
// and a function that releases the limiter.
func newHandler(client goredis.Scripter, keys []string, hashKey []byte, instances int, timeout time.Duration) (http.Handler, func(), error) {
	st, err := redisstore.New(client, redisstore.Config{Timeout: timeout})
	if err != nil {
		return nil, nil, err
	}
	known := make(map[string]bool, len(keys))
	for _, k := range keys {
		known[k] = true
	}
	lim, err := middleware.New(middleware.Config{
		Store:   st,
		HashKey: hashKey,
		KeyValidator: func(_ context.Context, key string) (middleware.Client, bool) {
			return middleware.Client{}, known[key]
		},
		OnStoreError:      middleware.LocalFallback,
		FallbackInstances: instances,
	})
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /v1/people", lim.Handler(http.HandlerFunc(people)))
	return mux, func() { lim.Close(); st.Close() }, nil
}

func people(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`[{"id":1,"name":"Ada Lovelace"},{"id":2,"name":"Grace Hopper"},{"id":3,"name":"Katherine Johnson"}]` + "\n"))
}
