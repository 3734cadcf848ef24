// Command example serves a small API on gin behind ratekit: 60/min + 2/s
// per client by default, a stricter 10/min on POST /v1/people, an exempt
// health check outside the limited group, API keys for known clients and
// a user header standing in for the application's authentication.
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

	"github.com/gin-gonic/gin"
	ratekitgin "github.com/ratekit/ratekit/contrib/gin"
	"github.com/ratekit/ratekit/middleware"
	"github.com/ratekit/ratekit/window"
)

func main() {
	addr := flag.String("addr", ":8080", "listen address")
	flag.Parse()
	gin.SetMode(gin.ReleaseMode)

	lim, err := middleware.New(middleware.Config{
		Identify: middleware.ClientFromContext, // the client ratekitgin.SetClient stored
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

	r := gin.New()
	r.Use(gin.Recovery())
	r.GET("/healthz", func(c *gin.Context) { c.Status(http.StatusNoContent) })
	v1 := r.Group("/v1", authenticate, ratekitgin.Middleware(lim))
	v1.GET("/people", func(c *gin.Context) { c.JSON(http.StatusOK, []gin.H{{"id": 1, "name": "Ada Lovelace"}}) })
	v1.POST("/people", func(c *gin.Context) { c.JSON(http.StatusCreated, gin.H{"id": 2}) })
	v1.GET("/people/:id", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"id": c.Param("id")}) })

	srv := &http.Server{Addr: *addr, Handler: r, ReadHeaderTimeout: 5 * time.Second}
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
func authenticate(c *gin.Context) {
	if user := c.GetHeader("X-User"); user != "" {
		ratekitgin.SetClient(c, middleware.Client{ID: user})
	}
}
