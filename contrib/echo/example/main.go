// Command example serves a small API on Echo v4 behind ratekit: 60/min +
// 2/s per client by default, a stricter 10/min on POST /v1/people, an
// exempt health check outside the limited group, API keys for known
// clients and a user header standing in for the application's
// authentication.
//
//	go run ./example -addr :8080
//	curl -i localhost:8080/v1/people
//	curl -i -H 'X-API-Key: demo-key-1' localhost:8080/v1/people
//	curl -i -H 'X-User: alice' localhost:8080/v1/people/7
package main

import (
	"context"
	"errors"
	"flag"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/labstack/echo/v4"
	ratekitecho "github.com/ratekit/ratekit/contrib/echo"
	"github.com/ratekit/ratekit/middleware"
	"github.com/ratekit/ratekit/window"
)

func main() {
	addr := flag.String("addr", ":8080", "listen address")
	flag.Parse()

	lim, err := middleware.New(middleware.Config{
		Identify: middleware.ClientFromContext, // the client ratekitecho.SetClient stored
		KeyValidator: func(_ context.Context, key string) (middleware.Client, bool) {
			return middleware.Client{}, key == "demo-key-1" || key == "demo-key-2"
		},
		Rules: []middleware.Rule{{
			Name: "people-write", Routes: []string{"/v1/people"}, Methods: []string{"POST"},
			Policy: window.Policy{Windows: []window.Window{{Length: time.Minute, Limit: 10}}},
		}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer lim.Close()

	e := echo.New()
	e.HideBanner = true
	e.GET("/healthz", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) })
	v1 := e.Group("/v1", authenticate, ratekitecho.Middleware(lim))
	v1.GET("/people", func(c echo.Context) error {
		return c.JSON(http.StatusOK, []map[string]any{{"id": 1, "name": "Ada Lovelace"}})
	})
	v1.POST("/people", func(c echo.Context) error { return c.JSON(http.StatusCreated, map[string]any{"id": 2}) })
	v1.GET("/people/:id", func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]any{"id": c.Param("id")}) })

	srv := &http.Server{Addr: *addr, Handler: e, ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	log.Printf("listening on %s: GET/POST /v1/people, GET /v1/people/:id, GET /healthz", *addr)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

// authenticate stands in for the application's authentication: a request
// naming a user in X-User counts against that user, wherever it comes from.
// A real one verifies a session or a token first.
func authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if user := c.Request().Header.Get("X-User"); user != "" {
			ratekitecho.SetClient(c, middleware.Client{ID: user})
		}
		return next(c)
	}
}
