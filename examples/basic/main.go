// Command basic serves a tiny API behind ratekit with the Lindris contract:
// 60 requests per minute and 2 per second, sliding, per API key for known
// keys and per client IP otherwise, state in memory.
//
//	go run ./examples/basic -addr :8080 -keys demo-key-1,demo-key-2
//	curl -i -H 'X-API-Key: demo-key-1' localhost:8080/v1/people
//
// Three more flags exist for load tests (benchmarks/load) and change nothing
// unless given: -trust-proxy believes X-Forwarded-For from the listed
// prefixes (so a load generator can speak for many clients), -limiter=false
// serves the same API without ratekit (the baseline), and -debug-addr serves
// the process's heap and goroutine counts as JSON on a second listener.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"runtime/metrics"
	"strings"
	"syscall"
	"time"

	"github.com/ratekit/ratekit/middleware"
)

func main() {
	addr := flag.String("addr", ":8080", "listen address")
	keys := flag.String("keys", "demo-key-1,demo-key-2", "comma-separated valid API keys")
	trust := flag.String("trust-proxy", "", "comma-separated prefixes (e.g. 127.0.0.0/8) whose X-Forwarded-For is believed; empty trusts no one")
	limit := flag.Bool("limiter", true, "put ratekit in front of the API; -limiter=false serves it unlimited (a load-test baseline)")
	debugAddr := flag.String("debug-addr", "", "if set, serve GET /debug/runtime (heap, goroutines as JSON) on this address; keep it on loopback")
	flag.Parse()

	opts := options{keys: splitList(*keys), noLimiter: !*limit}
	for _, s := range splitList(*trust) {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			log.Fatalf("-trust-proxy: %v", err)
		}
		opts.trust = append(opts.trust, p)
	}

	srv := &http.Server{Addr: *addr, Handler: newHandlerWith(opts), ReadHeaderTimeout: 5 * time.Second}
	servers := []*http.Server{srv}
	if *debugAddr != "" {
		dbg := &http.ServeMux{}
		dbg.HandleFunc("GET /debug/runtime", runtimeStats)
		servers = append(servers, &http.Server{Addr: *debugAddr, Handler: dbg, ReadHeaderTimeout: 5 * time.Second})
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, s := range servers {
			s.Shutdown(shutdown)
		}
	}()
	for _, s := range servers[1:] {
		go func() {
			log.Printf("debug: GET http://%s/debug/runtime", s.Addr)
			if err := s.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
				log.Fatal(err)
			}
		}()
	}
	switch {
	case opts.noLimiter:
		log.Printf("listening on %s: GET /v1/people, no limiter (-limiter=false)", *addr)
	case len(opts.trust) > 0:
		log.Printf("listening on %s: GET /v1/people, 60/min + 2/s per key or IP, X-Forwarded-For believed from %s", *addr, *trust)
	default:
		log.Printf("listening on %s: GET /v1/people, 60/min + 2/s per key or IP", *addr)
	}
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

func splitList(s string) []string {
	var keys []string
	for _, k := range strings.Split(s, ",") {
		if k = strings.TrimSpace(k); k != "" {
			keys = append(keys, k)
		}
	}
	return keys
}

// options are the example's settings beyond the defaults.
type options struct {
	keys      []string
	trust     []netip.Prefix // ClientIP.TrustedProxies
	noLimiter bool           // serve the API bare, for a load-test baseline
}

// newHandler returns the API behind a default limiter that knows keys.
func newHandler(keys []string) http.Handler {
	return newHandlerWith(options{keys: keys})
}

// newHandlerWith returns the API behind a default limiter that knows
// opts.keys and believes forwarding headers from opts.trust, or the bare API
// when opts.noLimiter is set.
func newHandlerWith(opts options) http.Handler {
	mux := http.NewServeMux()
	if opts.noLimiter {
		mux.Handle("GET /v1/people", http.HandlerFunc(people))
		return mux
	}
	known := make(map[string]bool, len(opts.keys))
	for _, k := range opts.keys {
		known[k] = true
	}
	lim, err := middleware.New(middleware.Config{
		KeyValidator: func(_ context.Context, key string) (middleware.Client, bool) {
			return middleware.Client{}, known[key]
		},
		ClientIP: middleware.ClientIP{TrustedProxies: opts.trust},
	})
	if err != nil {
		log.Fatal(err)
	}
	mux.Handle("GET /v1/people", lim.Handler(http.HandlerFunc(people)))
	return mux
}

func people(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`[{"id":1,"name":"Ada Lovelace"},{"id":2,"name":"Grace Hopper"},{"id":3,"name":"Katherine Johnson"}]` + "\n"))
}

// runtimeStats writes the figures a soak test watches: live heap, heap and
// total memory mapped by the Go runtime, the process's resident set (Linux),
// goroutines and GC cycles. With ?gc=1 it collects garbage first, so
// heap_live_bytes is what is retained right now.
func runtimeStats(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("gc") == "1" {
		runtime.GC()
	}
	names := map[string]string{
		"/gc/heap/live:bytes":                "heap_live_bytes",
		"/memory/classes/heap/objects:bytes": "heap_objects_bytes",
		"/memory/classes/total:bytes":        "go_total_bytes",
		"/sched/goroutines:goroutines":       "goroutines",
		"/gc/cycles/total:gc-cycles":         "gc_cycles",
	}
	samples := make([]metrics.Sample, 0, len(names))
	for n := range names {
		samples = append(samples, metrics.Sample{Name: n})
	}
	metrics.Read(samples)
	out := make(map[string]uint64, len(names)+1)
	for _, s := range samples {
		if s.Value.Kind() == metrics.KindUint64 {
			out[names[s.Name]] = s.Value.Uint64()
		}
	}
	if rss, err := vmRSS(); err == nil {
		out["rss_bytes"] = rss
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

// vmRSS reads the resident set size from /proc/self/status (Linux only).
func vmRSS() (uint64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb uint64
			if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kb); err != nil {
				return 0, err
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("no VmRSS in /proc/self/status")
}
