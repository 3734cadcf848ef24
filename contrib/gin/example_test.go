package ratekitgin_test

import (
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/gin-gonic/gin"
	ratekitgin "github.com/ratekit/ratekit/contrib/gin"
	"github.com/ratekit/ratekit/middleware"
	"github.com/ratekit/ratekit/store/memory"
	"github.com/ratekit/ratekit/store/storetest"
	"github.com/ratekit/ratekit/window"
)

// One line mounts the limiter on a gin engine. Rules name gin's route
// templates; the third request to /v1/people/:id within the minute is
// refused, while /v1/people keeps its own allowance and an unknown path is
// gin's 404, not limited.
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

	r := gin.New()
	r.Use(ratekitgin.Middleware(lim))
	r.GET("/v1/people", func(c *gin.Context) { c.String(http.StatusOK, "everyone") })
	r.GET("/v1/people/:id", func(c *gin.Context) { c.String(http.StatusOK, "person %s", c.Param("id")) })

	for _, path := range []string{"/v1/people/1", "/v1/people/2", "/v1/people/3", "/v1/people", "/v1/nope", "/v1/nope"} {
		req := httptest.NewRequest("GET", path, nil)
		req.RemoteAddr = "198.51.100.7:4711"
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		fmt.Printf("%-13s %d remaining %q retry-after %q\n", path, w.Code, w.Header().Get("X-RateLimit-Remaining"), w.Header().Get("Retry-After"))
	}
	// Output:
	// /v1/people/1  200 remaining "1" retry-after ""
	// /v1/people/2  200 remaining "0" retry-after ""
	// /v1/people/3  429 remaining "0" retry-after "60"
	// /v1/people    200 remaining "59" retry-after ""
	// /v1/nope      404 remaining "" retry-after ""
	// /v1/nope      404 remaining "" retry-after ""
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

	r := gin.New()
	auth := func(c *gin.Context) {
		user := c.GetHeader("X-User") // a session lookup, a verified JWT...
		ratekitgin.SetClient(c, middleware.Client{ID: user})
	}
	r.Use(auth, ratekitgin.Middleware(lim))
	r.GET("/v1/people", func(c *gin.Context) { c.String(http.StatusOK, "ok") })

	for _, user := range []string{"alice", "bob", "alice"} {
		req := httptest.NewRequest("GET", "/v1/people", nil)
		req.RemoteAddr = "203.0.113.1:1" // one office, one address
		req.Header.Set("X-User", user)
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		fmt.Println(user, w.Code)
	}
	// Output:
	// alice 200
	// bob 200
	// alice 429
}
