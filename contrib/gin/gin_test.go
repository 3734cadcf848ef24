package ratekitgin_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	ratekitgin "github.com/ratekit/ratekit/contrib/gin"
	"github.com/ratekit/ratekit/middleware"
	"github.com/ratekit/ratekit/store/memory"
	"github.com/ratekit/ratekit/store/storetest"
	"github.com/ratekit/ratekit/window"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode) // no debug route listing on stdout
	os.Exit(m.Run())
}

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

// newLimiter returns a limiter on a memory store with a fake clock,
// reporting to the returned observer. st, when not nil, is the store.
func newLimiter(t *testing.T, cfg middleware.Config) (*middleware.Limiter, *seen) {
	t.Helper()
	clk := storetest.NewClock(storetest.Start)
	if cfg.Store == nil {
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

// engine returns a gin engine serving GET /v1/people and /v1/people/:id
// under the middleware, counting the handler's calls in *hits.
func engine(mw gin.HandlerFunc, hits *int) *gin.Engine {
	r := gin.New()
	r.Use(mw)
	h := func(c *gin.Context) {
		*hits++
		c.String(http.StatusOK, "ok")
	}
	r.GET("/v1/people", h)
	r.GET("/v1/people/:id", h)
	return r
}

func TestRouteRules(t *testing.T) {
	lim, obs := newLimiter(t, middleware.Config{
		Rules: []middleware.Rule{{Name: "person", Routes: []string{"/v1/people/:id"}, Policy: one}},
	})
	var hits int
	r := engine(ratekitgin.Middleware(lim), &hits)
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
			w := serve(r, "GET", tc.path, "192.0.2.1")
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

func TestGroupRoutesAreFull(t *testing.T) {
	lim, obs := newLimiter(t, middleware.Config{
		Rules: []middleware.Rule{{Routes: []string{"/v2/users/:id"}, Policy: one}},
	})
	r := gin.New()
	r.GET("/healthz", func(c *gin.Context) { c.Status(http.StatusNoContent) })
	v2 := r.Group("/v2", ratekitgin.Middleware(lim))
	v2.GET("/users/:id", func(c *gin.Context) { c.String(http.StatusOK, "ok") })
	if w := serve(r, "GET", "/v2/users/1", "192.0.2.1"); w.Code != 200 {
		t.Fatalf("first GET /v2/users/1 = %d, want 200", w.Code)
	}
	if w := serve(r, "GET", "/v2/users/1", "192.0.2.1"); w.Code != 429 {
		t.Errorf("second GET /v2/users/1 = %d, want 429 (rule on the full template)", w.Code)
	}
	for range 5 {
		if w := serve(r, "GET", "/healthz", "192.0.2.1"); w.Code != 204 {
			t.Fatalf("GET /healthz outside the group = %d, want 204", w.Code)
		}
	}
	if got, want := obs.last(), "/v2/users/:id GET limited"; got != want {
		t.Errorf("last report %q, want %q", got, want)
	}
}

func TestNotFoundAndMethodNotAllowedAreNotLimited(t *testing.T) {
	for _, tc := range []struct {
		name       string
		notAllowed bool // gin's HandleMethodNotAllowed
		method     string
		path       string
		want       int
	}{
		{"404", false, "GET", "/nope/1", 404},
		{"wrong method without HandleMethodNotAllowed is 404", false, "POST", "/v1/people", 404},
		{"405", true, "POST", "/v1/people", 405},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lim, obs := newLimiter(t, middleware.Config{Policy: one})
			var hits int
			r := engine(ratekitgin.Middleware(lim), &hits)
			r.HandleMethodNotAllowed = tc.notAllowed
			for i := range 5 {
				w := serve(r, tc.method, tc.path, "192.0.2.1")
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
			// The allowance of the real route is untouched.
			if w := serve(r, "GET", "/v1/people", "192.0.2.1"); w.Code != 200 {
				t.Errorf("GET /v1/people after the misses = %d, want 200", w.Code)
			}
		})
	}
}

func TestUnmatchedOption(t *testing.T) {
	lim, obs := newLimiter(t, middleware.Config{Policy: one})
	r := gin.New()
	r.Use(ratekitgin.New(lim, ratekitgin.Config{Unmatched: "/*"}))
	r.NoRoute(func(c *gin.Context) { c.String(http.StatusOK, "spa") })
	if w := serve(r, "GET", "/a", "192.0.2.1"); w.Code != 200 {
		t.Fatalf("GET /a = %d, want 200", w.Code)
	}
	if w := serve(r, "GET", "/b", "192.0.2.1"); w.Code != 429 {
		t.Errorf("GET /b = %d, want 429: unmatched requests share the /* allowance", w.Code)
	}
	if got, want := obs.last(), "/* GET limited"; got != want {
		t.Errorf("reported %q, want %q", got, want)
	}
}

func TestIdentity(t *testing.T) {
	const addrA, addrB = "192.0.2.1", "192.0.2.2"
	auth := func(c *gin.Context) {
		if u := c.GetHeader("X-User"); u != "" {
			ratekitgin.SetClient(c, middleware.Client{ID: u, Plan: c.GetHeader("X-Plan")})
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
		client   func(*gin.Context) (middleware.Client, bool)
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
		{"Config.Client reads the app's own key", true, func(c *gin.Context) (middleware.Client, bool) {
			u, ok := c.Get("user")
			if !ok {
				return middleware.Client{}, false
			}
			return middleware.Client{ID: u.(string)}, true
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
			r := gin.New()
			r.Use(auth, func(c *gin.Context) {
				if u := c.GetHeader("X-App-User"); u != "" {
					c.Set("user", u)
				}
			})
			r.Use(ratekitgin.New(lim, ratekitgin.Config{Client: tc.client}))
			r.GET("/v1/people", func(c *gin.Context) { c.String(http.StatusOK, "ok") })
			for i, q := range tc.reqs {
				if w := serve(r, "GET", "/v1/people", q.addr, q.hdr...); w.Code != q.want {
					t.Errorf("request %d from %s %v = %d, want %d", i, q.addr, q.hdr, w.Code, q.want)
				}
			}
		})
	}
}

func TestRefusal(t *testing.T) {
	lim, _ := newLimiter(t, middleware.Config{})
	var after int
	r := gin.New()
	var outerStatus int
	r.Use(func(c *gin.Context) {
		c.Next()
		outerStatus = c.Writer.Status()
	})
	r.Use(ratekitgin.Middleware(lim), func(c *gin.Context) { after++ })
	r.GET("/v1/people", func(c *gin.Context) { c.String(http.StatusOK, "ok") })
	serve(r, "GET", "/v1/people", "192.0.2.1")
	serve(r, "GET", "/v1/people", "192.0.2.1")
	w := serve(r, "GET", "/v1/people", "192.0.2.1")
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
	if after != 2 {
		t.Errorf("later middleware ran %d times, want 2: a refusal aborts the chain", after)
	}
	if outerStatus != 429 {
		t.Errorf("an outer middleware saw status %d, want 429", outerStatus)
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
			r := engine(ratekitgin.Middleware(lim), &hits)
			var last *httptest.ResponseRecorder
			for i, want := range tc.want {
				last = serve(r, "GET", "/v1/people", "192.0.2.1")
				if last.Code != want {
					t.Errorf("GET #%d with the store down = %d, want %d", i, last.Code, want)
				}
			}
			first := serve(r, "GET", "/v1/people/1", "192.0.2.9")
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

// TestOverRealHTTP runs gin behind a real listener and client: the headers
// and the refusal arrive as sent.
func TestOverRealHTTP(t *testing.T) {
	lim, _ := newLimiter(t, middleware.Config{Policy: one, Identify: middleware.ClientFromContext})
	r := gin.New()
	r.Use(func(c *gin.Context) {
		if u := c.GetHeader("X-User"); u != "" {
			ratekitgin.SetClient(c, middleware.Client{ID: u})
		}
	}, ratekitgin.Middleware(lim))
	r.POST("/v1/people", func(c *gin.Context) {
		b, _ := io.ReadAll(c.Request.Body)
		c.Data(http.StatusCreated, "text/plain", bytes.ToUpper(b))
	})
	srv := httptest.NewServer(r)
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
