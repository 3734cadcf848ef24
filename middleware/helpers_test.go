package middleware_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/ratekit/ratekit/headers"
	"github.com/ratekit/ratekit/middleware"
	"github.com/ratekit/ratekit/store/memory"
	"github.com/ratekit/ratekit/store/storetest"
	"github.com/ratekit/ratekit/window"
)

// Helpers shared by the middleware tests: a limiter on a memory store with
// a fake clock, requests, and an observer that records what it is told.

var ok = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Write([]byte(`[{"name":"Ada"}]`))
})

var noop = http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})

// fixture is a limiter on a memory store with a fake clock.
type fixture struct {
	lim   *middleware.Limiter
	h     http.Handler
	clk   *storetest.Clock
	store *memory.Store
	logs  *bytes.Buffer
}

func newFixture(t *testing.T, cfg middleware.Config) *fixture {
	t.Helper()
	f := &fixture{clk: storetest.NewClock(storetest.Start), logs: new(bytes.Buffer)}
	s, err := memory.New(memory.Config{Now: f.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	f.store = s
	if cfg.Store == nil {
		cfg.Store = s
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(f.logs, nil))
	}
	f.lim, err = middleware.New(cfg)
	if err != nil {
		t.Fatalf("middleware.New: %v", err)
	}
	t.Cleanup(func() { f.lim.Close() })
	f.h = f.lim.Handler(ok)
	return f
}

// newFaulty returns a memory store on now (nil: the real clock) wrapped in
// storetest.Faulty: a store the limiter takes for a shared one (circuit
// breaker and deny cache on, HashKey required), failing on demand.
func newFaulty(t *testing.T, now func() time.Time) *storetest.Faulty {
	t.Helper()
	s, err := memory.New(memory.Config{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	f := storetest.NewFaulty(s)
	t.Cleanup(func() { f.Close() })
	return f
}

// errRefused and errTimeout stand for a store that is down.
var (
	errRefused = errors.New("dial tcp 127.0.0.1:6379: connect: connection refused")
	errTimeout = errors.New("i/o timeout")
)

// do sends a GET from peer with header pairs and returns the recorder.
func (f *fixture) do(peer string, kv ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", "/v1/people", nil)
	r.RemoteAddr = peer
	for i := 0; i+1 < len(kv); i += 2 {
		r.Header.Add(kv[i], kv[i+1])
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	return w
}

func validKeys(keys ...string) func(context.Context, string) (middleware.Client, bool) {
	return func(_ context.Context, k string) (middleware.Client, bool) {
		for _, v := range keys {
			if k == v {
				return middleware.Client{}, true
			}
		}
		return middleware.Client{}, false
	}
}

func send(h http.Handler, method, target, peer string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, "http://api.test"+target, nil)
	r.RemoteAddr = peer
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

var twoPerMinute = window.Policy{Windows: []window.Window{{Length: time.Minute, Limit: 2}}}

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

func (r *recorder) ObserveRequest(_ context.Context, route, method, outcome, by string) {
	r.add("request %s %s %s %s", route, method, outcome, by)
}

func (r *recorder) ObserveDecision(context.Context, time.Duration) { r.add("decision") }

func (r *recorder) ObserveStoreError(_ context.Context, kind string) { r.add("error %s", kind) }

func (r *recorder) ObserveFallback(active bool) { r.add("fallback %v", active) }

func (r *recorder) ObserveBreaker(state int) { r.add("breaker %d", state) }

func (r *recorder) ObserveDenyCacheHit(context.Context) { r.add("deny-cache-hit") }

// discardWriter is a ResponseWriter that keeps its header map between
// requests (cleared, capacity kept), as net/http's server does not; it lets a
// benchmark count only the limiter's own allocations. With fresh set it
// handles header maps as net/http's server does instead: a new one for each
// response, cloned when the status is written.
type discardWriter struct {
	h     http.Header
	code  int
	fresh bool
	sent  http.Header
}

func (w *discardWriter) Header() http.Header { return w.h }

func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }

func (w *discardWriter) WriteHeader(code int) {
	w.code = code
	if w.fresh {
		w.sent = w.h.Clone()
	}
}

// finish writes the status if the handler did not, as net/http's server does
// when a handler returns.
func (w *discardWriter) finish() {
	if w.code == 0 {
		w.WriteHeader(http.StatusOK)
	}
}

// reset readies w for the next request.
func (w *discardWriter) reset() {
	w.code = 0
	if w.fresh {
		w.h = make(http.Header)
		return
	}
	clear(w.h)
}

type panicStyle struct{}

func (panicStyle) WriteHeaders(http.Header, *headers.Input) { panic("style bug") }

type panicEnvelope struct{}

func (panicEnvelope) ContentType() string { return "text/plain" }

func (panicEnvelope) AppendBody([]byte, *headers.Input) []byte { panic("envelope bug") }
