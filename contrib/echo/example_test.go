package ratekitecho_test

import (
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/labstack/echo/v4"
	ratekitecho "github.com/ratekit/ratekit/contrib/echo"
	"github.com/ratekit/ratekit/middleware"
	"github.com/ratekit/ratekit/store/memory"
	"github.com/ratekit/ratekit/store/storetest"
	"github.com/ratekit/ratekit/window"
)

// One line mounts the limiter on an Echo. Rules name Echo's route paths;
// the third request to /v1/people/:id within the minute is refused, while
// /v1/people keeps its own allowance, and neither an unknown path (404) nor
// a method the route does not serve (405) is limited.
func ExampleMiddleware() {
	clk := storetest.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) // time stands still
	st, err := memory.New(memory.Config{Now: clk.Now})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	lim, err := middleware.New(middleware.Config{
		Store: st,
		Rules: []middleware.Rule{{Name: "person", Routes: []string{"/v1/people/:id"},
			Policy: window.Policy{Windows: []window.Window{{Length: time.Minute, Limit: 2}}}}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer lim.Close()

	e := echo.New()
	e.Use(ratekitecho.Middleware(lim))
	e.GET("/v1/people", func(c echo.Context) error { return c.String(http.StatusOK, "everyone") })
	e.GET("/v1/people/:id", func(c echo.Context) error { return c.String(http.StatusOK, "person "+c.Param("id")) })

	for _, q := range []struct{ method, path string }{
		{"GET", "/v1/people/1"}, {"GET", "/v1/people/2"}, {"GET", "/v1/people/3"},
		{"GET", "/v1/people"}, {"GET", "/v1/nope"}, {"DELETE", "/v1/people"},
	} {
		req := httptest.NewRequest(q.method, q.path, nil)
		req.RemoteAddr = "198.51.100.7:4711"
		w := httptest.NewRecorder()
		e.ServeHTTP(w, req)
		fmt.Printf("%-6s %-13s %d remaining %q retry-after %q\n", q.method, q.path, w.Code,
			w.Header().Get("X-RateLimit-Remaining"), w.Header().Get("Retry-After"))
	}
	// Output:
	// GET    /v1/people/1  200 remaining "1" retry-after ""
	// GET    /v1/people/2  200 remaining "0" retry-after ""
	// GET    /v1/people/3  429 remaining "0" retry-after "60"
	// GET    /v1/people    200 remaining "59" retry-after ""
	// GET    /v1/nope      404 remaining "" retry-after ""
	// DELETE /v1/people    405 remaining "" retry-after ""
}

// An authentication middleware that has found the caller stores it with
// SetClient; a limiter built with Identify: middleware.ClientFromContext
// counts each user in a bucket of its own, whatever address it comes from.
func ExampleSetClient() {
	clk := storetest.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	st, err := memory.New(memory.Config{Now: clk.Now})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	lim, err := middleware.New(middleware.Config{
		Store:    st,
		Identify: middleware.ClientFromContext, // without it the client is ignored
		Policy:   window.Policy{Windows: []window.Window{{Length: time.Minute, Limit: 1}}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer lim.Close()

	auth := func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			user := c.Request().Header.Get("X-User") // a session lookup, a verified JWT...
			ratekitecho.SetClient(c, middleware.Client{ID: user})
			return next(c)
		}
	}
	e := echo.New()
	e.Use(auth, ratekitecho.Middleware(lim))
	e.GET("/v1/people", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })

	for _, user := range []string{"alice", "bob", "alice"} {
		req := httptest.NewRequest("GET", "/v1/people", nil)
		req.RemoteAddr = "203.0.113.1:1" // one office, one address
		req.Header.Set("X-User", user)
		w := httptest.NewRecorder()
		e.ServeHTTP(w, req)
		fmt.Println(user, w.Code)
	}
	// Output:
	// alice 200
	// bob 200
	// alice 429
}
