// Command chi serves a small API on chi with everything ratekit offers in a
// few lines of configuration: the default 60/min + 2/s, a stricter limit on
// POST /v1/people (10/min + 1/s), an exempt health check, a choice of header
// style and 429 body, API keys read from the headers you name, Redis or
// memory, and Prometheus metrics on /metrics.
//
// The limiter is mounted inside the /v1 sub-router, the usual chi layout;
// its rules still name the full patterns ("/v1/people").
//
//	go run ./examples/chi -addr :8080 -headers ietf -envelope problem
//	go run ./examples/chi -key-headers X-API-Key,X-Client-ID
//	go run ./examples/chi -redis redis://127.0.0.1:6379/0
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	goredis "github.com/redis/go-redis/v9"

	"github.com/ratekit/ratekit/headers"
	"github.com/ratekit/ratekit/metrics"
	"github.com/ratekit/ratekit/middleware"
	"github.com/ratekit/ratekit/store"
	"github.com/ratekit/ratekit/store/memory"
	redisstore "github.com/ratekit/ratekit/store/redis"
	"github.com/ratekit/ratekit/window"
)

// options are the command's flags.
type options struct {
	keys       []string
	keyHeaders []string // nil: X-API-Key, Authorization
	redisURL   string   // empty: memory store
	hashKey    string
	headers    string
	envelope   string
}

func main() {
	addr := flag.String("addr", ":8080", "listen address")
	keys := flag.String("keys", "demo-key-1,demo-key-2", "comma-separated valid API keys")
	keyHeaders := flag.String("key-headers", "X-API-Key,Authorization", "comma-separated headers an API key is read from, in order; Authorization means its Bearer scheme")
	var o options
	flag.StringVar(&o.redisURL, "redis", "", "Redis URL; empty keeps limits in memory")
	flag.StringVar(&o.hashKey, "hash-key", "demo-hash-key-change-me", "secret store keys are derived from (instances sharing Redis need the same)")
	flag.StringVar(&o.headers, "headers", "lindris", "header style: lindris, scalekit, kinde or ietf")
	flag.StringVar(&o.envelope, "envelope", "lindris", "429 body: lindris, authmatech or problem")
	flag.Parse()
	o.keys = strings.Split(*keys, ",")
	for _, h := range strings.Split(*keyHeaders, ",") {
		if h = strings.TrimSpace(h); h != "" {
			o.keyHeaders = append(o.keyHeaders, h)
		}
	}

	h, closeAll, err := newServer(o)
	if err != nil {
		log.Fatal(err)
	}
	defer closeAll()
	srv := &http.Server{Addr: *addr, Handler: h, ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	log.Printf("listening on %s: GET/POST /v1/people, GET /healthz, GET /metrics", *addr)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

var styles = map[string]headers.Style{
	"lindris": headers.Lindris{}, "scalekit": headers.Scalekit{}, "kinde": headers.Kinde{}, "ietf": headers.IETF{},
}

var envelopes = map[string]headers.Envelope{
	"lindris": headers.LindrisBody{}, "authmatech": headers.AuthmatechBody{}, "problem": headers.ProblemBody{},
}

// newServer builds the router and returns it with a function releasing
// the limiter and the store.
func newServer(o options) (http.Handler, func(), error) {
	style, ok := styles[o.headers]
	if !ok {
		return nil, nil, fmt.Errorf("-headers %q: want lindris, scalekit, kinde or ietf", o.headers)
	}
	envelope, ok := envelopes[o.envelope]
	if !ok {
		return nil, nil, fmt.Errorf("-envelope %q: want lindris, authmatech or problem", o.envelope)
	}

	var st store.Store
	var closers []func()
	col := metrics.Config{Store: "memory"}
	if o.redisURL == "" {
		mem, err := memory.New(memory.Config{})
		if err != nil {
			return nil, nil, err
		}
		st, col.Keys = mem, mem
		closers = append(closers, func() { mem.Close() })
	} else {
		opt, err := goredis.ParseURL(o.redisURL)
		if err != nil {
			return nil, nil, err
		}
		opt.ContextTimeoutEnabled, opt.MaxRetries = true, -1 // deadlines honoured; a lost reply never counted twice
		opt.DialerRetries = 1                                // Redis down: fail at once, not after the timeout
		client := goredis.NewClient(opt)
		rs, err := redisstore.New(client, redisstore.Config{})
		if err != nil {
			client.Close()
			return nil, nil, err
		}
		st, col.Store = rs, "redis"
		closers = append(closers, func() { rs.Close(); client.Close() })
	}
	collector := metrics.New(col)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector)

	known := map[string]bool{}
	for _, k := range o.keys {
		if k = strings.TrimSpace(k); k != "" {
			known[k] = true
		}
	}
	lim, err := middleware.New(middleware.Config{
		Store:      st,
		HashKey:    []byte(o.hashKey),
		KeyHeaders: o.keyHeaders,
		KeyValidator: func(_ context.Context, key string) (middleware.Client, bool) {
			return middleware.Client{}, known[key]
		},
		Rules: []middleware.Rule{
			{Name: "people-write", Routes: []string{"/v1/people"}, Methods: []string{"POST"},
				Policy: window.Policy{Windows: []window.Window{{Length: time.Minute, Limit: 10}, {Length: time.Second, Limit: 1}}}},
			{Name: "health", Routes: []string{"/healthz"}, Exempt: true},
		},
		Headers:      style,
		Envelope:     envelope,
		OnStoreError: middleware.LocalFallback,
		Observer:     collector,
	})
	if err != nil {
		for _, c := range closers {
			c()
		}
		return nil, nil, err
	}
	closers = append([]func(){func() { lim.Close() }}, closers...)

	r := chi.NewRouter()
	r.Get("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP) // outside the limiter
	// Exempt by its rule, and counted as such in the metrics.
	r.With(lim.Handler).Get("/healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	r.Route("/v1", func(r chi.Router) {
		r.Use(lim.Handler)
		r.Get("/people", listPeople)
		r.Post("/people", createPerson)
	})
	return r, func() {
		for _, c := range closers {
			c()
		}
	}, nil
}

func listPeople(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`[{"id":1,"name":"Ada Lovelace"},{"id":2,"name":"Grace Hopper"}]` + "\n"))
}

func createPerson(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	w.Write([]byte(`{"id":3}` + "\n"))
}
