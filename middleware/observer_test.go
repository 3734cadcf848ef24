package middleware_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/ratekit/ratekit/middleware"
)

// What the Observer is told.

func TestObserverSeesEveryOutcome(t *testing.T) {
	rec := &recorder{}
	sw := newFaulty(t, nil)
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
	sw.Fail(errTimeout)
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
