package ratekitecho_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	ratekitecho "github.com/ratekit/ratekit/contrib/echo"
	"github.com/ratekit/ratekit/middleware"
	"github.com/ratekit/ratekit/store/memory"
	"github.com/ratekit/ratekit/store/storetest"
	"github.com/ratekit/ratekit/window"
)

// one is a policy of one request a minute: the second request is refused.
var one = window.Policy{Windows: []window.Window{{Length: time.Minute, Limit: 1}}}

// seen records what the limiter reports, per request.
type seen struct {
	mu    sync.Mutex
	calls []string // "route method outcome"
}

func (s *seen) ObserveRequest(_ context.Context, route, method, outcome, _ string) {
	s.mu.Lock()
	s.calls = append(s.calls, route+" "+method+" "+outcome)
	s.mu.Unlock()
}
func (s *seen) ObserveDecision(context.Context, time.Duration) {}
func (s *seen) ObserveStoreError(context.Context, string)      {}
func (s *seen) ObserveFallback(bool)                           {}
func (s *seen) ObserveBreaker(int)                             {}
func (s *seen) ObserveDenyCacheHit(context.Context)            {}

func (s *seen) last() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.calls) == 0 {
		return ""
	}
	return s.calls[len(s.calls)-1]
}

// newLimiter returns a limiter on a memory store with a fake clock (unless
// cfg names a store), reporting to the returned observer.
func newLimiter(t *testing.T, cfg middleware.Config) (*middleware.Limiter, *seen) {
	t.Helper()
	if cfg.Store == nil {
		clk := storetest.NewClock(storetest.Start)
		mem, err := memory.New(memory.Config{Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { mem.Close() })
		cfg.Store = mem
	}
	obs := &seen{}
	cfg.Observer = obs
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	lim, err := middleware.New(cfg)
	if err != nil {
		t.Fatalf("middleware.New: %v", err)
	}
	t.Cleanup(func() { lim.Close() })
	return lim, obs
}

// serve sends one request to h from addr with the given header pairs.
func serve(h http.Handler, method, path, addr string, hdr ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, nil)
	r.RemoteAddr = addr + ":1234"
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// server returns an Echo serving GET /v1/people and /v1/people/:id under
// mw, counting the handler's calls in *hits.
func server(mw echo.MiddlewareFunc, hits *int) *echo.Echo {
	e := echo.New()
	e.Use(mw)
	h := func(c echo.Context) error {
		*hits++
		return c.String(http.StatusOK, "ok")
	}
	e.GET("/v1/people", h)
	e.GET("/v1/people/:id", h)
	return e
}

func TestRouteRules(t *testing.T) {
	lim, obs := newLimiter(t, middleware.Config{
		Rules: []middleware.Rule{{Name: "person", Routes: []string{"/v1/people/:id"}, Policy: one}},
	})
	var hits int
	e := server(ratekitecho.Middleware(lim), &hits)
	cases := []struct {
		name, path string
		want       int
		report     string
	}{
		{"first person", "/v1/people/1", 200, "/v1/people/:id GET allowed"},
		{"second person, same rule and bucket", "/v1/people/2", 429, "/v1/people/:id GET limited"},
		{"list: default policy", "/v1/people", 200, "/v1/people GET allowed"},
		{"list again: 2/s default", "/v1/people", 200, "/v1/people GET allowed"},
		{"list a third time in the second", "/v1/people", 429, "/v1/people GET limited"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := serve(e, "GET", tc.path, "192.0.2.1")
			if w.Code != tc.want {
				t.Errorf("GET %s = %d, want %d", tc.path, w.Code, tc.want)
			}
			if got := obs.last(); got != tc.report {
				t.Errorf("GET %s reported %q, want %q", tc.path, got, tc.report)
			}
		})
	}
	if hits != 3 {
		t.Errorf("handler ran %d times, want 3", hits)
	}
}

func TestGroup(t *testing.T) {
	lim, obs := newLimiter(t, middleware.Config{
		Rules: []middleware.Rule{{Routes: []string{"/v2/users/:id"}, Policy: one}},
	})
	e := echo.New()
	e.GET("/healthz", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) })
	v2 := e.Group("/v2", ratekitecho.Middleware(lim))
	v2.GET("/users/:id", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })
	if w := serve(e, "GET", "/v2/users/1", "192.0.2.1"); w.Code != 200 {
		t.Fatalf("first GET /v2/users/1 = %d, want 200", w.Code)
	}
	if w := serve(e, "GET", "/v2/users/1", "192.0.2.1"); w.Code != 429 {
		t.Errorf("second GET /v2/users/1 = %d, want 429 (rule on the full path)", w.Code)
	}
	for range 3 {
		if w := serve(e, "GET", "/healthz", "192.0.2.1"); w.Code != 204 {
			t.Fatalf("GET /healthz outside the group = %d, want 204", w.Code)
		}
	}
	// Inside the group Echo routes a 404 to the group's catch-all, "/v2/*".
	for range 3 {
		if w := serve(e, "GET", "/v2/nope", "192.0.2.1"); w.Code != 404 || w.Header().Get("X-Ratelimit-Limit") != "" {
			t.Fatalf("GET /v2/nope = %d with X-Ratelimit-Limit %q, want 404 and none", w.Code, w.Header().Get("X-Ratelimit-Limit"))
		}
	}
	if got, want := obs.last(), "unmatched GET exempt"; got != want {
		t.Errorf("last report %q, want %q", got, want)
	}
}

func TestNotFoundAndMethodNotAllowedAreNotLimited(t *testing.T) {
	for _, tc := range []struct {
		name, method, path string
		want               int
	}{
		{"404, nothing matched", "GET", "/nope/1", 404},
		{"404 below a route's prefix", "GET", "/v1", 404},
		{"405, Path is the GET route's", "POST", "/v1/people", 405},
		{"HEAD of a GET route is 405 in Echo", "HEAD", "/v1/people/1", 405},
		{"automatic OPTIONS", "OPTIONS", "/v1/people", 204},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lim, obs := newLimiter(t, middleware.Config{Policy: one})
			var hits int
			e := server(ratekitecho.Middleware(lim), &hits)
			for i := range 4 {
				w := serve(e, tc.method, tc.path, "192.0.2.1")
				if w.Code != tc.want {
					t.Fatalf("%s %s #%d = %d, want %d", tc.method, tc.path, i, w.Code, tc.want)
				}
				if v := w.Header().Get("X-Ratelimit-Limit"); v != "" {
					t.Errorf("%s %s has X-Ratelimit-Limit %q, want none", tc.method, tc.path, v)
				}
			}
			if got, want := obs.last(), "unmatched "+tc.method+" exempt"; got != want {
				t.Errorf("reported %q, want %q", got, want)
			}
			if w := serve(e, "GET", "/v1/people", "192.0.2.1"); w.Code != 200 {
				t.Errorf("GET /v1/people after the misses = %d, want 200", w.Code)
			}
		})
	}
}

func TestUnmatchedOption(t *testing.T) {
	lim, obs := newLimiter(t, middleware.Config{Policy: one})
	e := echo.New()
	e.Use(ratekitecho.New(lim, ratekitecho.Config{Unmatched: "/*"}))
	e.RouteNotFound("/*", func(c echo.Context) error { return c.String(http.StatusOK, "spa") })
	if w := serve(e, "GET", "/a", "192.0.2.1"); w.Code != 200 {
		t.Fatalf("GET /a = %d, want 200", w.Code)
	}
	if w := serve(e, "GET", "/b", "192.0.2.1"); w.Code != 429 {
		t.Errorf("GET /b = %d, want 429: unmatched requests share the /* allowance", w.Code)
	}
	if got, want := obs.last(), "/* GET limited"; got != want {
		t.Errorf("reported %q, want %q", got, want)
	}
}

// TestRouteAddedWhileServing: a route registered after the first request
// is limited once the set is rebuilt, at most a second later. Real time:
// about a second, skipped under -short.
func TestRouteAddedWhileServing(t *testing.T) {
	if testing.Short() {
		t.Skip("real time: waits for the route set's one-second rebuild")
	}
	lim, obs := newLimiter(t, middleware.Config{Policy: one})
	var hits int
	e := server(ratekitecho.Middleware(lim), &hits)
	serve(e, "GET", "/v1/people", "192.0.2.1")
	e.GET("/v1/late", func(c echo.Context) error { return c.String(http.StatusOK, "late") })
	deadline := time.Now().Add(3 * time.Second)
	for obs.last() != "/v1/late GET allowed" && time.Now().Before(deadline) {
		serve(e, "GET", "/v1/late", "192.0.2.2")
		time.Sleep(50 * time.Millisecond)
	}
	if got, want := obs.last(), "/v1/late GET allowed"; got != want {
		t.Errorf("reported %q after 3s, want %q", got, want)
	}
}

func TestIdentity(t *testing.T) {
	const addrA, addrB = "192.0.2.1", "192.0.2.2"
	auth := func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if u := c.Request().Header.Get("X-User"); u != "" {
				ratekitecho.SetClient(c, middleware.Client{ID: u, Plan: c.Request().Header.Get("X-Plan")})
			}
			if u := c.Request().Header.Get("X-App-User"); u != "" {
				c.Set("user", u)
			}
			return next(c)
		}
	}
	validator := func(_ context.Context, key string) (middleware.Client, bool) {
		return middleware.Client{ID: "acct-" + key}, key == "k1" || key == "k2"
	}
	plans := map[string]window.Policy{"big": {Windows: []window.Window{{Length: time.Minute, Limit: 100}}}}
	type req struct {
		addr string
		hdr  []string
		want int
	}
	for _, tc := range []struct {
		name     string
		identify bool // Identify: middleware.ClientFromContext
		client   func(echo.Context) (middleware.Client, bool)
		reqs     []req
	}{
		{"address: two addresses, two buckets", true, nil, []req{
			{addrA, nil, 200}, {addrB, nil, 200}, {addrA, nil, 429},
		}},
		{"SetClient: one client from two addresses", true, nil, []req{
			{addrA, []string{"X-User", "u1"}, 200}, {addrB, []string{"X-User", "u1"}, 429}, {addrB, []string{"X-User", "u2"}, 200},
		}},
		{"SetClient with a plan", true, nil, []req{
			{addrA, []string{"X-User", "u1", "X-Plan", "big"}, 200}, {addrB, []string{"X-User", "u1", "X-Plan", "big"}, 200},
		}},
		{"SetClient ignored without Identify", false, nil, []req{
			{addrA, []string{"X-User", "u1"}, 200}, {addrB, []string{"X-User", "u1"}, 200}, {addrA, []string{"X-User", "u2"}, 429},
		}},
		{"API key through the validator", true, nil, []req{
			{addrA, []string{"X-API-Key", "k1"}, 200}, {addrB, []string{"Authorization", "Bearer k1"}, 429},
			{addrA, []string{"X-API-Key", "k2"}, 200}, {addrA, []string{"X-API-Key", "unknown"}, 200}, {addrA, nil, 429},
		}},
		{"Config.Client reads the app's own key", true, func(c echo.Context) (middleware.Client, bool) {
			u, ok := c.Get("user").(string)
			return middleware.Client{ID: u}, ok
		}, []req{
			{addrA, []string{"X-App-User", "u9"}, 200}, {addrB, []string{"X-App-User", "u9"}, 429}, {addrB, nil, 200},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := middleware.Config{Policy: one, Plans: plans, KeyValidator: validator}
			if tc.identify {
				cfg.Identify = middleware.ClientFromContext
			}
			lim, _ := newLimiter(t, cfg)
			e := echo.New()
			e.Use(auth, ratekitecho.New(lim, ratekitecho.Config{Client: tc.client}))
			e.GET("/v1/people", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })
			for i, q := range tc.reqs {
				if w := serve(e, "GET", "/v1/people", q.addr, q.hdr...); w.Code != q.want {
					t.Errorf("request %d from %s %v = %d, want %d", i, q.addr, q.hdr, w.Code, q.want)
				}
			}
		})
	}
}

func TestRefusal(t *testing.T) {
	lim, _ := newLimiter(t, middleware.Config{})
	var after, handlerErrs int
	e := echo.New()
	e.HTTPErrorHandler = func(err error, c echo.Context) {
		handlerErrs++
		e.DefaultHTTPErrorHandler(err, c)
	}
	e.Use(ratekitecho.Middleware(lim), func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error { after++; return next(c) }
	})
	e.GET("/v1/people", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })
	e.GET("/v1/teapot", func(c echo.Context) error { return echo.NewHTTPError(http.StatusTeapot, "short and stout") })
	serve(e, "GET", "/v1/people", "192.0.2.1")
	serve(e, "GET", "/v1/people", "192.0.2.1")
	w := serve(e, "GET", "/v1/people", "192.0.2.1")
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("third GET = %d, want 429", w.Code)
	}
	want := map[string]string{
		"Retry-After": "1", "X-Ratelimit-Limit": "60", "X-Ratelimit-Remaining": "58",
		"X-Ratelimit-Limit-Second": "2", "X-Ratelimit-Remaining-Second": "0",
		"X-Ratelimit-Reset": "1", "X-Ratelimit-Limited-By": "second", "Content-Type": "application/json",
	}
	for k, v := range want {
		if got := w.Header().Get(k); got != v {
			t.Errorf("refusal %s = %q, want %q", k, got, v)
		}
	}
	if got, want := w.Body.String(), `{"message":"You have exceeded your rate limit.","status_code":429,"retry_after":1}`; got != want {
		t.Errorf("refusal body = %s, want %s", got, want)
	}
	if after != 2 || handlerErrs != 0 {
		t.Errorf("later middleware ran %d times and the error handler %d, want 2 and 0", after, handlerErrs)
	}
	// An error of the chain reaches Echo's error handler as it was returned.
	if w := serve(e, "GET", "/v1/teapot", "192.0.2.9"); w.Code != http.StatusTeapot || handlerErrs != 1 {
		t.Errorf("GET /v1/teapot = %d with %d error handler calls, want 418 and 1", w.Code, handlerErrs)
	}
}

func TestStoreDown(t *testing.T) {
	for _, tc := range []struct {
		name     string
		policy   middleware.FailurePolicy
		want     []int
		degraded string
		body     string
	}{
		{"FailOpen", middleware.FailOpen, []int{200, 200, 200}, "true", "ok"},
		{"FailClosed", middleware.FailClosed, []int{503, 503, 503}, "", `"status_code":503`},
		{"LocalFallback", middleware.LocalFallback, []int{200, 200, 429}, "true", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem, err := memory.New(memory.Config{})
			if err != nil {
				t.Fatal(err)
			}
			faulty := storetest.NewFaulty(mem)
			t.Cleanup(func() { faulty.Close() })
			faulty.Fail(errors.New("connection refused"))
			lim, obs := newLimiter(t, middleware.Config{Store: faulty, HashKey: []byte("k"), OnStoreError: tc.policy})
			var hits int
			e := server(ratekitecho.Middleware(lim), &hits)
			var last *httptest.ResponseRecorder
			for i, want := range tc.want {
				last = serve(e, "GET", "/v1/people", "192.0.2.1")
				if last.Code != want {
					t.Errorf("GET #%d with the store down = %d, want %d", i, last.Code, want)
				}
			}
			first := serve(e, "GET", "/v1/people/1", "192.0.2.9")
			if got := first.Header().Get("X-Ratelimit-Degraded"); got != tc.degraded {
				t.Errorf("X-Ratelimit-Degraded = %q, want %q", got, tc.degraded)
			}
			if !strings.Contains(last.Body.String(), tc.body) {
				t.Errorf("last body %q does not contain %q", last.Body.String(), tc.body)
			}
			if tc.policy == middleware.FailClosed && hits != 0 {
				t.Errorf("handler ran %d times under FailClosed, want 0", hits)
			}
			if faulty.Takes() == 0 {
				t.Error("the store was never asked")
			}
			if tc.policy != middleware.LocalFallback && !strings.HasSuffix(obs.last(), " error") {
				t.Errorf("reported %q, want outcome error", obs.last())
			}
		})
	}
}

// TestOverRealHTTP runs Echo behind a real listener and client: the headers
// and the refusal arrive as sent.
func TestOverRealHTTP(t *testing.T) {
	lim, _ := newLimiter(t, middleware.Config{Policy: one, Identify: middleware.ClientFromContext})
	e := echo.New()
	e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if u := c.Request().Header.Get("X-User"); u != "" {
				ratekitecho.SetClient(c, middleware.Client{ID: u})
			}
			return next(c)
		}
	}, ratekitecho.Middleware(lim))
	e.POST("/v1/people", func(c echo.Context) error {
		b, _ := io.ReadAll(c.Request().Body)
		return c.String(http.StatusCreated, strings.ToUpper(string(b)))
	})
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	post := func(user string) (*http.Response, string) {
		req, _ := http.NewRequest("POST", srv.URL+"/v1/people", strings.NewReader("ada"))
		req.Header.Set("X-User", user)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := post("u1")
	if resp.StatusCode != 201 || body != "ADA" || resp.Header.Get("X-Ratelimit-Remaining") != "0" {
		t.Errorf("first POST = %d %q remaining %q, want 201 \"ADA\" remaining 0",
			resp.StatusCode, body, resp.Header.Get("X-Ratelimit-Remaining"))
	}
	resp, body = post("u1")
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, `"status_code":429`) {
		t.Errorf("second POST = %d %q Retry-After %q, want 429 with Retry-After and the JSON body",
			resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
	if resp, _ = post("u2"); resp.StatusCode != 201 {
		t.Errorf("POST of another client = %d, want 201", resp.StatusCode)
	}
}
