package middleware_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ratekit/ratekit/middleware"
)

// recorder is an Observer that keeps every call as a line.
type recorder struct {
	mu    sync.Mutex
	calls []string
}

func (r *recorder) add(format string, a ...any) {
	r.mu.Lock()
	r.calls = append(r.calls, fmt.Sprintf(format, a...))
	r.mu.Unlock()
}
func (r *recorder) ObserveRequest(route, method, outcome, by string) {
	r.add("request %s %s %s %s", route, method, outcome, by)
}
func (r *recorder) ObserveDecision(time.Duration) { r.add("decision") }
func (r *recorder) ObserveStoreError(kind string) { r.add("error %s", kind) }
func (r *recorder) ObserveFallback(active bool)   { r.add("fallback %v", active) }
func (r *recorder) ObserveBreaker(state int)      { r.add("breaker %d", state) }
func (r *recorder) ObserveDenyCacheHit()          { r.add("deny-cache-hit") }

func TestObserverSeesEveryOutcome(t *testing.T) {
	rec := &recorder{}
	sw := &switchableStore{Store: newFixture(t, middleware.Config{}).store}
	lim, err := middleware.New(middleware.Config{Observer: rec, Store: sw, HashKey: []byte("k"), OnStoreError: middleware.LocalFallback, Logger: slog.New(slog.DiscardHandler), DisableDenyCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer lim.Close()
	mux := http.NewServeMux()
	mux.Handle("GET /v1/people/{id}", lim.Handler(ok))
	get := func(path, method string) {
		r := httptest.NewRequest(method, path, nil)
		r.RemoteAddr = "198.51.100.4:1"
		mux.ServeHTTP(httptest.NewRecorder(), r)
	}
	get("/v1/people/1", "GET")
	get("/v1/people/2", "GET")
	get("/v1/people/3", "GET")
	sw.down.Store(true)
	get("/v1/people/4", "GET")
	want := []string{
		"decision", "request /v1/people/{id} GET allowed ",
		"decision", "request /v1/people/{id} GET allowed ",
		"decision", "request /v1/people/{id} GET limited second",
		"decision", "error other", "fallback true", "request /v1/people/{id} GET allowed ",
	}
	if !slices.Equal(rec.calls, want) {
		t.Errorf("observer calls:\n%s\nwant:\n%s", strings.Join(rec.calls, "\n"), strings.Join(want, "\n"))
	}
	for _, c := range rec.calls {
		if strings.Contains(c, "198.51.100.4") || strings.Contains(c, "/v1/people/1") {
			t.Errorf("observer saw an identity or raw path: %q", c)
		}
	}
}

func TestObserverBoundsMethods(t *testing.T) {
	rec := &recorder{}
	f := newFixture(t, middleware.Config{Observer: rec})
	r := httptest.NewRequest("GET", "/x", nil)
	r.Method = "X-SECRET-TOKEN-abc123"
	r.RemoteAddr = "198.51.100.5:1"
	f.h.ServeHTTP(httptest.NewRecorder(), r)
	if got := rec.calls[len(rec.calls)-1]; got != "request unmatched OTHER allowed " {
		t.Errorf("last call %q, want the method bounded to OTHER and the route unmatched", got)
	}
}
