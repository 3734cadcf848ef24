package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/ratekit/ratekit/headers"
	"github.com/ratekit/ratekit/middleware"
	"github.com/ratekit/ratekit/window"

	chimw "github.com/go-chi/chi/v5/middleware"
)

// Which rule applies: routes under ServeMux and chi, methods, costs,
// plans, exemptions and shadow mode.

var postPeople = middleware.Rule{
	Name:    "people-write",
	Routes:  []string{"/v1/people"},
	Methods: []string{"POST"},
	Policy:  window.Policy{Windows: []window.Window{{Length: time.Minute, Limit: 10}, {Length: time.Second, Limit: 1}}},
}

// routers builds the same API three ways: chi with the limiter in r.Use,
// chi with the limiter on routes through With, and a ServeMux wrapped from
// outside with Config.Router.
func routers(t *testing.T, cfg middleware.Config) map[string]http.Handler {
	t.Helper()
	out := map[string]http.Handler{}

	f := newFixture(t, cfg)
	top := chi.NewRouter()
	top.Use(f.lim.Handler)
	top.Get("/v1/people", ok)
	top.Post("/v1/people", ok)
	top.Get("/v1/people/{id}", ok)
	top.Get("/healthz", ok)
	top.Route("/v2", func(r chi.Router) { r.Get("/people/{id}", ok) })
	out["chi r.Use"] = top

	f2 := newFixture(t, cfg)
	with := chi.NewRouter()
	lw := with.With(f2.lim.Handler)
	lw.Get("/v1/people", ok)
	lw.Post("/v1/people", ok)
	lw.Get("/v1/people/{id}", ok)
	lw.Get("/healthz", ok)
	with.Route("/v2", func(r chi.Router) { r.With(f2.lim.Handler).Get("/people/{id}", ok) })
	out["chi With"] = with

	mux := http.NewServeMux()
	cfg3 := cfg
	cfg3.Router = mux
	f3 := newFixture(t, cfg3)
	mux.Handle("GET /v1/people", ok)
	mux.Handle("POST /v1/people", ok)
	mux.Handle("GET /v1/people/{id}", ok)
	mux.Handle("GET /healthz", ok)
	mux.Handle("GET /v2/people/{id}", ok)
	out["ServeMux + Router"] = f3.lim.Handler(mux)
	return out
}

// TestPerRouteOverride: POST /v1/people has 10/min + 1/s; a second POST in
// the same second is 429 while GETs from the same client still pass.
func TestPerRouteOverride(t *testing.T) {
	cfg := middleware.Config{Rules: []middleware.Rule{postPeople, {Routes: []string{"/healthz"}, Exempt: true}}}
	for name, h := range routers(t, cfg) {
		t.Run(name, func(t *testing.T) {
			peer := "192.0.2.60:1"
			w := send(h, "POST", "/v1/people", peer)
			if w.Code != 200 || w.Header().Get("X-RateLimit-Limit") != "10" || w.Header().Get("X-RateLimit-Limit-Second") != "1" {
				t.Fatalf("first POST: %d limits %s/%s, want 200 10/1", w.Code, w.Header().Get("X-RateLimit-Limit"), w.Header().Get("X-RateLimit-Limit-Second"))
			}
			if c := send(h, "POST", "/v1/people", peer).Code; c != 429 {
				t.Errorf("second POST in the same second: %d, want 429", c)
			}
			w = send(h, "GET", "/v1/people", peer)
			if w.Code != 200 || w.Header().Get("X-RateLimit-Limit") != "60" || w.Header().Get("X-RateLimit-Remaining") != "59" {
				t.Errorf("GET after the POSTs: %d limit %s remaining %s, want 200 60 59", w.Code, w.Header().Get("X-RateLimit-Limit"), w.Header().Get("X-RateLimit-Remaining"))
			}
			for range 5 {
				if w := send(h, "GET", "/healthz", peer); w.Code != 200 || w.Header().Get("X-RateLimit-Limit") != "" {
					t.Fatalf("exempt /healthz: %d with headers %v", w.Code, w.Header())
				}
			}
		})
	}
}

// TestPathAliasesShareABucket: aliases of /v1/people/{id} either share the route's
// bucket or are refused by the router without consuming quota.
// (catalogue R27)
func TestPathAliasesShareABucket(t *testing.T) {
	for name, h := range routers(t, middleware.Config{}) {
		t.Run(name, func(t *testing.T) {
			peer := "192.0.2.61:1"
			send(h, "GET", "/v1/people/1", peer)
			send(h, "GET", "/v1/people/2", peer)
			for _, alias := range []string{"/v1/people/1/", "//v1/people/1", "/v1/%70eople/1", "/v1/people/./1", "/v1/people/3"} {
				w := send(h, "GET", alias, peer)
				switch {
				case w.Code == 429: // the route's own bucket: no fresh allowance
				case w.Code == 404 || w.Code == 405 || (w.Code >= 300 && w.Code < 400):
					if w.Header().Get("X-RateLimit-Remaining") != "" {
						t.Errorf("%s: %d but rate-limit headers were written (quota consumed?)", alias, w.Code)
					}
				default:
					t.Errorf("%s: status %d: an alias got a fresh allowance", alias, w.Code)
				}
			}
		})
	}
}

// TestRoutePatternResolved: with the limiter at the top, every matched
// route is reported with its pattern, and unmatched paths make no buckets.
// (catalogue R28)
func TestRoutePatternResolved(t *testing.T) {
	rec := &recorder{}
	f := newFixture(t, middleware.Config{Observer: rec})
	r := chi.NewRouter()
	r.Use(f.lim.Handler)
	r.Get("/v1/people/{id}", ok)
	r.Route("/v2", func(r chi.Router) { r.Get("/people/{id}", ok) })
	before := f.store.Len()
	for i := range 50 {
		send(r, "GET", fmt.Sprintf("/nope/%d", i), fmt.Sprintf("192.0.2.%d:1", i))
	}
	if grown := f.store.Len() - before; grown != 0 {
		t.Errorf("50 requests to unmatched paths created %d buckets, want 0", grown)
	}
	rec.calls = nil
	send(r, "GET", "/v1/people/7", "192.0.2.62:1")
	send(r, "GET", "/v2/people/7", "192.0.2.62:1")
	want := "[decision request /v1/people/{id} GET allowed  decision request /v2/people/{id} GET allowed ]"
	if got := fmt.Sprint(rec.calls); got != want {
		t.Errorf("observer calls %s, want %s", got, want)
	}
}

// TestChiRewritesCannotBypass: chi middlewares that rewrite the routed path
// or method (StripSlashes, CleanPath, GetHead), before or after the
// limiter, cannot take a request past its route's limit.
func TestChiRewritesCannotBypass(t *testing.T) {
	for _, tc := range []struct {
		name, method, target string
		rewrite              func(http.Handler) http.Handler
	}{
		{"StripSlashes", "GET", "/v1/people/", chimw.StripSlashes},
		{"CleanPath", "GET", "/v1//people", chimw.CleanPath},
		{"GetHead", "HEAD", "/v1/people", chimw.GetHead},
	} {
		for _, before := range []bool{true, false} {
			name := tc.name + "/after-limiter"
			if before {
				name = tc.name + "/before-limiter"
			}
			t.Run(name, func(t *testing.T) {
				f := newFixture(t, middleware.Config{Policy: twoPerMinute})
				r := chi.NewRouter()
				if before {
					r.Use(tc.rewrite, f.lim.Handler)
				} else {
					r.Use(f.lim.Handler, tc.rewrite)
				}
				r.Get("/v1/people", ok)
				passed := 0
				for range 10 {
					if w := send(r, tc.method, tc.target, "192.0.2.100:1"); w.Code == 200 {
						passed++
					}
				}
				if passed != 2 {
					t.Errorf("%s %s: %d of 10 passed, want 2", tc.method, tc.target, passed)
				}
			})
		}
	}
}

// TestHEADCountsUnderGETRule: HEAD is served by the GET handler, so a rule
// for GET limits it too, in the same bucket.
func TestHEADCountsUnderGETRule(t *testing.T) {
	mux := http.NewServeMux()
	f := newFixture(t, middleware.Config{Router: mux, Rules: []middleware.Rule{
		{Routes: []string{"/search"}, Methods: []string{"GET"}, Policy: window.Policy{Windows: []window.Window{{Length: time.Minute, Limit: 1}}}}}})
	mux.Handle("GET /search", ok)
	h := f.lim.Handler(mux)
	if c := send(h, "GET", "/search", "192.0.2.101:1").Code; c != 200 {
		t.Fatalf("GET: %d", c)
	}
	if c := send(h, "HEAD", "/search", "192.0.2.101:1").Code; c != 429 {
		t.Errorf("HEAD after the GET used the rule's 1/min: %d, want 429", c)
	}
}

// TestRouterWinsOverOuterPattern: a limiter given Config.Router and mounted
// under an outer ServeMux prefix uses its own router's patterns.
func TestRouterWinsOverOuterPattern(t *testing.T) {
	inner := http.NewServeMux()
	f := newFixture(t, middleware.Config{Router: inner, Rules: []middleware.Rule{
		{Routes: []string{"/people"}, Methods: []string{"POST"}, Policy: window.Policy{Windows: []window.Window{{Length: time.Minute, Limit: 1}}}}}})
	inner.Handle("POST /people", ok)
	outer := http.NewServeMux()
	outer.Handle("/api/", http.StripPrefix("/api", f.lim.Handler(inner)))
	send(outer, "POST", "/api/people", "192.0.2.102:1")
	if c := send(outer, "POST", "/api/people", "192.0.2.102:1").Code; c != 429 {
		t.Errorf("second POST under the inner rule's 1/min: %d, want 429", c)
	}
}

func TestShadowModeNeverRejects(t *testing.T) {
	rec := &recorder{}
	f := newFixture(t, middleware.Config{Observer: rec, Rules: []middleware.Rule{{Shadow: true}}})
	var codes []int
	for range 4 {
		codes = append(codes, f.do("192.0.2.63:1").Code)
	}
	if fmt.Sprint(codes) != "[200 200 200 200]" {
		t.Errorf("shadow statuses %v, want all 200", codes)
	}
	if !strings.Contains(fmt.Sprint(rec.calls), "shadow second") {
		t.Errorf("shadow outcome not reported: %v", rec.calls)
	}
	// Shadowed rejections counted nowhere: the minute window holds 2.
	if w := f.do("192.0.2.63:1"); w.Header().Get("X-RateLimit-Remaining") != "58" {
		t.Errorf("remaining after 2 admitted and 3 shadowed = %s, want 58", w.Header().Get("X-RateLimit-Remaining"))
	}
}

func TestCostPerRule(t *testing.T) {
	f := newFixture(t, middleware.Config{Rules: []middleware.Rule{{Cost: 10,
		Policy: window.Policy{Windows: []window.Window{{Length: time.Minute, Limit: 25}}}}}})
	var codes []int
	for range 3 {
		codes = append(codes, f.do("192.0.2.64:1").Code)
	}
	if fmt.Sprint(codes) != "[200 200 429]" {
		t.Errorf("cost-10 requests under 25/min: %v, want [200 200 429]", codes)
	}
}

func TestCostAgainstPlansAndFallback(t *testing.T) {
	bulk := middleware.Rule{Name: "bulk", Routes: []string{"/bulk"}, Cost: 10}
	small := map[string]window.Policy{"trial": {Windows: []window.Window{{Length: time.Minute, Limit: 5}}}}
	if _, err := middleware.New(middleware.Config{Rules: []middleware.Rule{bulk}, Plans: small}); !errors.Is(err, middleware.ErrInvalidConfig) {
		t.Errorf("cost 10 under a plan with limit 5: error %v, want ErrInvalidConfig", err)
	}
	shared := []middleware.Rule{{Name: "write", Routes: []string{"/a"}, Cost: 1}, {Name: "write", Routes: []string{"/b"}, Cost: 10,
		Policy: window.Policy{Windows: []window.Window{{Length: time.Minute, Limit: 60}}}}}
	if _, err := middleware.New(middleware.Config{Rules: shared}); !errors.Is(err, middleware.ErrInvalidConfig) {
		t.Errorf("same-named rules with different costs: error %v, want ErrInvalidConfig", err)
	}
	// While the store is down, the divided fallback limit never drops below
	// the rule's cost: 20/4 would be 5, below cost 10.
	sw := newFaulty(t, nil)
	sw.Fail(errTimeout)
	f := newFixture(t, middleware.Config{Store: sw, HashKey: []byte("k"), OnStoreError: middleware.LocalFallback, FallbackInstances: 4,
		Rules: []middleware.Rule{{Cost: 10, Policy: window.Policy{Windows: []window.Window{{Length: time.Minute, Limit: 20}}}}}})
	if w := f.do("192.0.2.120:1"); w.Code != 200 || w.Header().Get("X-RateLimit-Degraded") != "true" {
		t.Errorf("cost-10 request on the fallback: %d, want 200 degraded", w.Code)
	}
}

func TestPlansAndExemptions(t *testing.T) {
	validator := func(_ context.Context, key string) (middleware.Client, bool) {
		switch key {
		case "ent-key":
			return middleware.Client{ID: "acme", Plan: "enterprise"}, true
		case "ent-key-2":
			return middleware.Client{ID: "acme", Plan: "enterprise"}, true
		case "partner":
			return middleware.Client{ID: "partner", Exempt: true}, true
		}
		return middleware.Client{}, false
	}
	f := newFixture(t, middleware.Config{
		KeyValidator: validator,
		Plans: map[string]window.Policy{"enterprise": {Windows: []window.Window{
			{Length: time.Minute, Limit: 600}, {Length: time.Second, Limit: 20}}}},
		ExemptIPs: []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16")},
	})
	w := f.do("192.0.2.65:1", "X-API-Key", "ent-key")
	if w.Header().Get("X-RateLimit-Limit") != "600" || w.Header().Get("X-RateLimit-Limit-Second") != "20" {
		t.Errorf("enterprise limits %s/%s, want 600/20", w.Header().Get("X-RateLimit-Limit"), w.Header().Get("X-RateLimit-Limit-Second"))
	}
	// Two keys of one client share its bucket.
	if w := f.do("192.0.2.66:1", "X-API-Key", "ent-key-2"); w.Header().Get("X-RateLimit-Remaining") != "598" {
		t.Errorf("second key of the same client: remaining %s, want 598", w.Header().Get("X-RateLimit-Remaining"))
	}
	for range 5 {
		if w := f.do("192.0.2.67:1", "X-API-Key", "partner"); w.Code != 200 || w.Header().Get("X-RateLimit-Limit") != "" {
			t.Fatalf("exempt client: %d %v", w.Code, w.Header())
		}
		if w := f.do("10.9.3.4:1"); w.Code != 200 || w.Header().Get("X-RateLimit-Limit") != "" {
			t.Fatalf("exempt network: %d %v", w.Code, w.Header())
		}
	}
}

func TestRuleValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		rule middleware.Rule
	}{
		{"cost above limit", middleware.Rule{Cost: 3}},
		{"negative cost", middleware.Rule{Cost: -1}},
		{"bad method", middleware.Rule{Methods: []string{"FETCH"}}},
		{"relative route", middleware.Rule{Routes: []string{"v1/people"}}},
		{"invalid policy", middleware.Rule{Policy: window.Policy{Windows: []window.Window{{Length: time.Second}}}}},
		{"reserved name", middleware.Rule{Name: "default"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := middleware.New(middleware.Config{Rules: []middleware.Rule{tc.rule}})
			if !errors.Is(err, middleware.ErrInvalidConfig) {
				t.Errorf("New error = %v, want ErrInvalidConfig", err)
			}
		})
	}
}

func TestRedundantWindowWarning(t *testing.T) {
	f := newFixture(t, middleware.Config{Policy: window.Policy{Windows: []window.Window{
		{Length: time.Minute, Limit: 600}, {Length: time.Second, Limit: 2}}}})
	if !strings.Contains(f.logs.String(), "window minute (600) can never bind") {
		t.Errorf("no warning for a minute window that 2/s always fills first:\n%s", f.logs)
	}
}

func TestIETFPartitionKey(t *testing.T) {
	f := newFixture(t, middleware.Config{Headers: headers.IETF{}, PartitionKey: true})
	a := f.do("192.0.2.70:1").Header().Get("RateLimit")
	b := f.do("192.0.2.71:1").Header().Get("RateLimit")
	a2 := f.do("192.0.2.70:1").Header().Get("RateLimit")
	pk := func(s string) string {
		i := strings.Index(s, ";pk=:")
		if i < 0 {
			return ""
		}
		return s[i+5 : i+5+strings.IndexByte(s[i+5:], ':')]
	}
	if pk(a) == "" || pk(a) == pk(b) || pk(a) != pk(a2) {
		t.Errorf("pk values %q %q %q: want present, per client, stable", pk(a), pk(b), pk(a2))
	}
	if strings.Contains(a, "192.0.2.70") {
		t.Errorf("RateLimit field carries the address: %s", a)
	}
}

// TestChiMounts: a rule names the full pattern, and it applies, with the
// full pattern as the metric route label, wherever in a chi router the
// limiter is mounted: at the top with r.Use, inside r.Route, inside a
// Mounted router (nested twice), in With and in Group.
func TestChiMounts(t *testing.T) {
	rule := middleware.Rule{Name: "user", Routes: []string{"/v2/users/{id}"},
		Policy: window.Policy{Windows: []window.Window{{Length: time.Minute, Limit: 2}}}}
	users := func(r chi.Router) { r.Get("/users/{id}", ok) }
	for _, tc := range []struct {
		name  string
		mount func(r chi.Router, lim func(http.Handler) http.Handler)
	}{
		{"r.Use at the top", func(r chi.Router, lim func(http.Handler) http.Handler) {
			r.Use(lim)
			r.Route("/v2", users)
		}},
		{"inside r.Route", func(r chi.Router, lim func(http.Handler) http.Handler) {
			r.Route("/v2", func(r chi.Router) { r.Use(lim); users(r) })
		}},
		{"inside a Mounted router", func(r chi.Router, lim func(http.Handler) http.Handler) {
			sub := chi.NewRouter()
			sub.Use(lim)
			users(sub)
			r.Mount("/v2", sub)
		}},
		{"two Mounts deep", func(r chi.Router, lim func(http.Handler) http.Handler) {
			inner := chi.NewRouter()
			inner.Use(lim)
			inner.Get("/{id}", ok)
			mid := chi.NewRouter()
			mid.Mount("/users", inner)
			r.Mount("/v2", mid)
		}},
		{"With inside r.Route", func(r chi.Router, lim func(http.Handler) http.Handler) {
			r.Route("/v2", func(r chi.Router) { r.With(lim).Get("/users/{id}", ok) })
		}},
		{"chi under a ServeMux", func(r chi.Router, lim func(http.Handler) http.Handler) {
			// The outer mux sets r.Pattern "/" before chi routes.
			r.Use(lim)
			r.Route("/v2", users)
		}},
		{"Group inside r.Route", func(r chi.Router, lim func(http.Handler) http.Handler) {
			r.Route("/v2", func(r chi.Router) { r.Group(func(r chi.Router) { r.Use(lim); users(r) }) })
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			f := newFixture(t, middleware.Config{Rules: []middleware.Rule{rule}, Observer: rec})
			r := chi.NewRouter()
			tc.mount(r, f.lim.Handler)
			var h http.Handler = r
			if strings.Contains(tc.name, "ServeMux") {
				mux := http.NewServeMux()
				mux.Handle("/", r)
				h = mux
			}
			var codes []int
			for i := range 3 {
				f.clk.Advance(time.Second) // the default's 2/s never refuses: only the rule's 2/min can
				w := send(h, "GET", fmt.Sprintf("/v2/users/%d", i), "192.0.2.70:1")
				codes = append(codes, w.Code)
				if i == 0 && w.Header().Get("X-RateLimit-Limit") != "2" {
					t.Errorf("first request: X-RateLimit-Limit %q, want the rule's 2", w.Header().Get("X-RateLimit-Limit"))
				}
			}
			if fmt.Sprint(codes) != "[200 200 429]" {
				t.Errorf("three requests under the rule's 2/min: %v, want [200 200 429]", codes)
			}
			want := "request /v2/users/{id} GET allowed "
			if got := fmt.Sprint(rec.calls); !strings.Contains(got, want) {
				t.Errorf("observer calls %s, want the route label /v2/users/{id}", got)
			}
			if strings.Contains(f.logs.String(), "never apply") {
				t.Errorf("a warning about dead rules: %s", f.logs)
			}
		})
	}
}

// TestServeMuxStripPrefix: under http.StripPrefix the inner ServeMux sees,
// and sets, only the inner pattern, so a rule names the pattern as the
// inner mux registered it (docs/policies.md says so).
func TestServeMuxStripPrefix(t *testing.T) {
	f := newFixture(t, middleware.Config{Rules: []middleware.Rule{{Routes: []string{"/users/{id}"}, Policy: twoPerMinute}}})
	inner := http.NewServeMux()
	inner.Handle("GET /users/{id}", f.lim.Handler(ok))
	outer := http.NewServeMux()
	outer.Handle("/v2/", http.StripPrefix("/v2", inner))
	var codes []int
	for range 3 {
		codes = append(codes, send(outer, "GET", "/v2/users/1", "192.0.2.71:1").Code)
	}
	if fmt.Sprint(codes) != "[200 200 429]" {
		t.Errorf("three requests under 2/min: %v, want [200 200 429]", codes)
	}
}

// TestDeadRuleWarnings: rules that name routes get one warning when the
// limiter can learn no route at all, and one when a chi router serves no
// such route; a router that serves them all gets none.
func TestDeadRuleWarnings(t *testing.T) {
	rules := []middleware.Rule{{Routes: []string{"/v1/people"}, Policy: twoPerMinute}, {Routes: []string{"/people/{id}"}, Policy: twoPerMinute}}
	t.Run("no router", func(t *testing.T) {
		f := newFixture(t, middleware.Config{Rules: rules})
		mux := http.NewServeMux()
		mux.Handle("/v1/people", ok)
		h := f.lim.Handler(mux) // from outside, without Config.Router
		for range 3 {
			send(h, "GET", "/v1/people", "192.0.2.72:1")
		}
		if n := strings.Count(f.logs.String(), "cannot learn the route"); n != 1 {
			t.Errorf("%d warnings about a limiter without routes, want 1:\n%s", n, f.logs)
		}
	})
	t.Run("chi serves no such route", func(t *testing.T) {
		f := newFixture(t, middleware.Config{Rules: rules})
		r := chi.NewRouter()
		r.Use(f.lim.Handler)
		r.Route("/v1", func(r chi.Router) { r.Get("/people", ok); r.Get("/people/{id}", ok) })
		for range 3 {
			send(r, "GET", "/v1/people", "192.0.2.73:1")
		}
		logs := f.logs.String()
		if n := strings.Count(logs, "does not serve"); n != 1 || !strings.Contains(logs, "/people/{id}") || strings.Contains(logs, "/v1/people ") {
			t.Errorf("want one warning naming /people/{id} alone:\n%s", logs)
		}
	})
	t.Run("chi serves them all", func(t *testing.T) {
		f := newFixture(t, middleware.Config{Rules: rules})
		r := chi.NewRouter()
		r.Use(f.lim.Handler)
		r.Get("/v1/people", ok)
		r.Get("/people/{id}", ok)
		send(r, "GET", "/v1/people", "192.0.2.74:1")
		if strings.Contains(f.logs.String(), "never apply") {
			t.Errorf("a warning for rules the router serves: %s", f.logs)
		}
	})
}

// TestServeRoute: a router that knows its route template passes it to
// ServeRoute; rules match it, it is the route label, and "" (no route, a
// 404 to come) is neither limited nor counted.
func TestServeRoute(t *testing.T) {
	rec := &recorder{}
	f := newFixture(t, middleware.Config{Observer: rec, Rules: []middleware.Rule{{Routes: []string{"/users/:id"}, Policy: twoPerMinute}}})
	serve := func(route string) int {
		r := httptest.NewRequest("GET", "/users/7", nil)
		r.RemoteAddr = "192.0.2.75:1"
		w := httptest.NewRecorder()
		f.lim.ServeRoute(w, r, route, ok)
		return w.Code
	}
	var codes []int
	for range 3 {
		codes = append(codes, serve("/users/:id"))
	}
	if fmt.Sprint(codes) != "[200 200 429]" {
		t.Errorf("three requests on /users/:id under 2/min: %v, want [200 200 429]", codes)
	}
	for range 5 {
		if c := serve(""); c != 200 {
			t.Fatalf("no route: %d, want the handler's 200", c)
		}
	}
	got := fmt.Sprint(rec.calls)
	if !strings.Contains(got, "request /users/:id GET limited minute") || strings.Count(got, "request unmatched GET exempt") != 5 {
		t.Errorf("observer calls %s, want the route label and 5 exempt unmatched requests", got)
	}
	if f.store.Len() != 1 {
		t.Errorf("store holds %d buckets, want 1: requests without a route count nowhere", f.store.Len())
	}
}

// TestConnectLabelsNoPath: with Config.Router, ServeMux answers CONNECT
// with a redirect whose pattern is the request's own path; it must never
// become a route label (catalogue R29's bounded labels).
func TestConnectLabelsNoPath(t *testing.T) {
	rec := &recorder{}
	mux := http.NewServeMux()
	mux.Handle("/users/{id}/", ok)
	f := newFixture(t, middleware.Config{Router: mux, Observer: rec})
	h := f.lim.Handler(mux)
	for i := range 3 {
		r := httptest.NewRequest("CONNECT", fmt.Sprintf("/users/random-%d", i), nil)
		r.RemoteAddr = "192.0.2.76:1"
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	if got := fmt.Sprint(rec.calls); strings.Contains(got, "random") {
		t.Errorf("observer calls %s carry a raw path", got)
	}
}
