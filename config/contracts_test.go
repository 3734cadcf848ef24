package config

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/ratekit/ratekit/middleware"
	"github.com/ratekit/ratekit/store/memory"
	"github.com/ratekit/ratekit/store/storetest"
)

// load loads a testdata file.
func load(t *testing.T, path string) *File {
	t.Helper()
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// seedServer builds the limiter of a configuration file around a ServeMux
// serving routes (each with handler, or an empty 200 when nil), with the program's part of the configuration (a
// KeyValidator) set by prepare. A memory store built from the file is
// swapped for one on a fake clock, so that no answer depends on timing.
func seedServer(t *testing.T, f *File, routes []string, handler http.HandlerFunc, prepare func(*middleware.Config)) http.Handler {
	t.Helper()
	cfg, closer, err := f.Build()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closer.Close() })
	if _, ok := cfg.Store.(*memory.Store); ok {
		clk := storetest.NewClock(time.Unix(1_700_000_000, 0))
		ms, err := memory.New(memory.Config{Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ms.Close() })
		cfg.Store = ms
	}
	mux := http.NewServeMux()
	if handler == nil {
		handler = func(w http.ResponseWriter, r *http.Request) {}
	}
	for _, rt := range routes {
		mux.HandleFunc(rt, handler)
	}
	cfg.Router = mux
	cfg.Logger = slog.New(slog.DiscardHandler)
	if prepare != nil {
		prepare(&cfg)
	}
	lim, err := middleware.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lim.Close() })
	return lim.Handler(mux)
}

type response struct {
	code int
	h    http.Header
	body string
}

func send(h http.Handler, r *http.Request) response {
	if r.RemoteAddr == "192.0.2.1:1234" { // httptest's default
		r.RemoteAddr = "198.51.100.9:1"
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	b, _ := io.ReadAll(w.Result().Body)
	return response{w.Code, w.Header(), string(b)}
}

// TestContractLindris: 60/min + 2/s per API key, per address otherwise,
// Lindris headers and the Lindris body with Lindris's wording.
func TestContractLindris(t *testing.T) {
	h := seedServer(t, load(t, "testdata/lindris.yaml"), []string{"/v1/people", "/healthz"}, nil, func(cfg *middleware.Config) {
		cfg.KeyValidator = func(_ context.Context, key string) (middleware.Client, bool) {
			return middleware.Client{ID: "user-1"}, key == "k1"
		}
	})
	var last response
	for range 3 {
		last = send(h, httptest.NewRequest("GET", "/v1/people", nil))
	}
	want := `{"message":"You have exceeded your user rate limit.","status_code":429,"retry_after":1}`
	if last.code != 429 || last.body != want || last.h.Get("X-Ratelimit-Limited-By") != "second" ||
		last.h.Get("X-Ratelimit-Limit") != "60" || last.h.Get("X-Ratelimit-Limit-Second") != "2" {
		t.Errorf("third request from one address: %d %v %s; want 429, Lindris headers, %s", last.code, last.h, last.body, want)
	}
	r := httptest.NewRequest("GET", "/v1/people", nil)
	r.Header.Set("Authorization", "Bearer k1")
	if got := send(h, r); got.code != 200 || got.h.Get("X-Ratelimit-Remaining") != "59" {
		t.Errorf("the same address with a valid key: %d, remaining %q; want 200 and the key's own 59", got.code, got.h.Get("X-Ratelimit-Remaining"))
	}
	for range 3 {
		if got := send(h, httptest.NewRequest("GET", "/healthz", nil)); got.code != 200 || got.h.Get("X-Ratelimit-Limit") != "" {
			t.Fatalf("/healthz: %d %v, want 200 without rate-limit headers", got.code, got.h)
		}
	}
}

// TestContractScalekit: per client_id from the application's own
// authentication, in tiers (auth, delete, write; reads get the default,
// raised by plan), Scalekit headers with a Unix reset, counts in Redis.
func TestContractScalekit(t *testing.T) {
	mr := miniredis.RunT(t)
	t.Setenv("SCALEKIT_HASH_KEY", testHashKey)
	t.Setenv("SCALEKIT_REDIS_URL", "redis://"+mr.Addr()+"/0")
	f := load(t, "testdata/scalekit.yaml")
	// The file's 50ms per decision is production's; a busy test machine
	// can miss it, and the request is then decided by the local fallback
	// (at a quarter of the limits). The contract is not about timing.
	f.Store.Redis.Timeout = 5 * time.Second
	h := seedServer(t, f, []string{"/api/v1/users", "/oauth/token"}, nil, nil)
	as := func(method, path string, c middleware.Client) response {
		r := httptest.NewRequest(method, path, nil)
		return send(h, r.WithContext(middleware.WithClient(r.Context(), c)))
	}
	free, ent := middleware.Client{ID: "client-a"}, middleware.Client{ID: "client-b", Plan: "enterprise"}
	for _, tc := range []struct {
		method, path string
		client       middleware.Client
		limit        string
	}{
		{"GET", "/api/v1/users", free, "20"}, // the binding window of 600/min + 20/s is the second
		{"GET", "/api/v1/users", ent, "100"},
		{"DELETE", "/api/v1/users", ent, "30"},
		{"PATCH", "/api/v1/users", free, "10"},
		{"POST", "/oauth/token", ent, "5"},
	} {
		got := as(tc.method, tc.path, tc.client)
		reset, _ := strconv.ParseInt(got.h.Get("X-Ratelimit-Reset"), 10, 64)
		if got.code != 200 || got.h.Get("X-Ratelimit-Limit") != tc.limit || reset < 1_700_000_000 || got.h.Get("X-Ratelimit-Degraded") != "" {
			t.Errorf("%s %s as %+v: %d, limit %q, reset %q; want 200, limit %s, a Unix time", tc.method, tc.path, tc.client,
				got.code, got.h.Get("X-Ratelimit-Limit"), got.h.Get("X-Ratelimit-Reset"), tc.limit)
		}
	}
	if keys := mr.Keys(); len(keys) == 0 || !strings.HasPrefix(keys[0], "scalekit-production:") {
		t.Errorf("Redis keys %v, want them under scalekit-production:", keys)
	}
}

// TestContractKinde: Kinde headers, a bulk endpoint costing what it
// updates, and at most 10 requests of a client in flight.
func TestContractKinde(t *testing.T) {
	release := make(chan struct{})
	var started sync.WaitGroup
	slow := func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/slow" {
			started.Done()
			<-release
		}
	}
	h := seedServer(t, load(t, "testdata/kinde.yaml"), []string{"/api/v1/organizations/{org_code}/users", "/api/v1/slow", "/api/v1/fast"}, slow, nil)
	bulk := func(n int) response {
		r := httptest.NewRequest("PATCH", "/api/v1/organizations/acme/users", nil)
		if n > 0 {
			r = r.WithContext(middleware.WithCost(r.Context(), n))
		}
		return send(h, r)
	}
	if got := bulk(100); got.code != 200 || got.h.Get("Ratelimit-Limit") != "1000" || got.h.Get("Ratelimit-Remaining") != "900" {
		t.Errorf("bulk PATCH of 100 objects: %d %v; want 200, RateLimit-Limit 1000, Remaining 900", got.code, got.h)
	}
	if got := bulk(0); got.h.Get("Ratelimit-Remaining") != "890" {
		t.Errorf("bulk PATCH without a count: remaining %q, want 890 (cost 10)", got.h.Get("Ratelimit-Remaining"))
	}
	// Ten slow requests of one client hold every slot; the eleventh is
	// refused by the concurrency limiter (its limit, 10, in the headers),
	// whatever its rate allowance.
	var done sync.WaitGroup
	started.Add(10)
	for range 10 {
		done.Add(1)
		go func() { defer done.Done(); send(h, httptest.NewRequest("GET", "/api/v1/slow", nil)) }()
	}
	started.Wait()
	got := send(h, httptest.NewRequest("GET", "/api/v1/slow", nil))
	close(release)
	done.Wait()
	if got.code != 429 || got.h.Get("Ratelimit-Limit") != "10" || got.h.Get("Ratelimit-Remaining") != "0" {
		t.Errorf("an eleventh request in flight: %d %v, want 429 with RateLimit-Limit 10, Remaining 0", got.code, got.h)
	}
	if got := send(h, httptest.NewRequest("GET", "/api/v1/fast", nil)); got.code != 200 || got.h.Get("Ratelimit-Limit") != "600" {
		t.Errorf("once the ten are done: %d %v, want 200 under the 600/min policy", got.code, got.h)
	}
}

// TestContractAuthmatech: 1,000 a minute per client by X-API-KEY or
// X-CLIENT-ID, raised budgets for named clients, the Authmatech envelope.
func TestContractAuthmatech(t *testing.T) {
	accounts := map[string]string{"key-acme": "acme", "key-initech": "initech"}
	h := seedServer(t, load(t, "testdata/authmatech.yaml"), []string{"/v1/api/verify"}, nil, func(cfg *middleware.Config) {
		cfg.KeyValidator = func(_ context.Context, key string) (middleware.Client, bool) {
			id, ok := accounts[key]
			return middleware.Client{ID: id}, ok
		}
	})
	call := func(header, key string) response {
		r := httptest.NewRequest("POST", "/v1/api/verify", nil)
		r.Header.Set(header, key)
		return send(h, r)
	}
	if got := call("X-API-KEY", "key-acme").h.Get("Ratelimit-Policy"); got != `"minute";q=5000;w=60` {
		t.Errorf("acme's RateLimit-Policy = %q, want its raised 5000", got)
	}
	for i := range 1000 {
		if got := call("X-CLIENT-ID", "key-initech"); got.code != 200 {
			t.Fatalf("initech's request %d: %d, want 200", i+1, got.code)
		}
	}
	got := call("X-API-KEY", "key-initech")
	want := `{"success":false,"messages":[{"type":"FAILURE","message":"Rate limit exceeded.","httpStatus":"TOO_MANY_REQUESTS"}],"data":null}`
	if got.code != 429 || got.body != want || got.h.Get("Ratelimit-Policy") != `"minute";q=1000;w=60` {
		t.Errorf("initech's 1001st request: %d %q %v; want 429 with %s", got.code, got.body, got.h, want)
	}
}
