package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/ratekit/ratekit/client"
	"github.com/ratekit/ratekit/middleware"
	"github.com/ratekit/ratekit/window"
)

// api starts ratekit's limiter (Lindris headers) with policy p, the
// default 60/min + 2/s when zero, in front of a handler, on a real
// listener.
func api(p window.Policy) (*httptest.Server, func()) {
	lim, err := middleware.New(middleware.Config{Policy: p})
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(lim.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	})))
	return srv, func() { srv.Close(); lim.Close() }
}

// A Transport in an http.Client: responses pass through unchanged, and the
// transport learns the quota from their headers.
func ExampleNew() {
	srv, stop := api(window.Policy{})
	defer stop()

	t, err := client.New(client.Config{
		// Zero values: http.DefaultTransport underneath, quota per host,
		// 5 attempts, backoff 1s doubling to 60s, ±100ms jitter.
		MaxAttempts: 3,
	})
	if err != nil {
		log.Fatal(err)
	}
	hc := &http.Client{Transport: t, Timeout: 30 * time.Second}
	for range 2 {
		resp, err := hc.Get(srv.URL)
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
		fmt.Println(resp.StatusCode, "remaining this minute:", resp.Header.Get("X-RateLimit-Remaining"))
	}
	// Output:
	// 200 remaining this minute: 59
	// 200 remaining this minute: 58
}

// A request whose deadline comes before the quota frees up fails at once,
// instead of sleeping into its deadline or being sent to be refused.
func ExampleWaitError() {
	srv, stop := api(window.Policy{Windows: []window.Window{{Length: time.Minute, Limit: 2}}})
	defer stop()
	t, err := client.New(client.Config{})
	if err != nil {
		log.Fatal(err)
	}
	hc := &http.Client{Transport: t}
	for range 2 { // spend the window: 2 per minute
		resp, err := hc.Get(srv.URL)
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	_, err = hc.Do(req)
	var we *client.WaitError
	if errors.As(err, &we) {
		fmt.Println("deadline:", errors.Is(err, client.ErrDeadline))
		fmt.Println("reason:", we.Reason)
		fmt.Println("wait:", we.Wait.Round(time.Minute))
	}
	// Output:
	// deadline: true
	// reason: quota
	// wait: 1m0s
}

// ParseQuota reads any response's quota, in any style; here the IETF
// draft's fields with two policies.
func ExampleParseQuota() {
	h := http.Header{}
	h.Set("RateLimit-Policy", `"minute";q=60;w=60, "second";q=2;w=1`)
	h.Set("RateLimit", `"minute";r=58;t=60, "second";r=0;t=1`)
	q := client.ParseQuota(h, time.Now())
	for _, w := range q.Windows {
		fmt.Printf("%s: %d of %d left, reset in %v\n", w.Name, w.Remaining, w.Limit, w.Reset)
	}
	// Output:
	// minute: 58 of 60 left, reset in 1m0s
	// second: 0 of 2 left, reset in 1s
}

// A Unix-time reset (Scalekit's style) and a lone window.
func ExampleParseQuota_unixReset() {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	h := http.Header{}
	h.Set("X-RateLimit-Limit", "2")
	h.Set("X-RateLimit-Remaining", "0")
	h.Set("X-RateLimit-Reset", fmt.Sprint(now.Add(2*time.Second).Unix()))
	h.Set("Retry-After", "2")
	q := client.ParseQuota(h, now)
	fmt.Printf("%+v\n", q.Windows)
	fmt.Println("retry after", q.RetryAfter)
	// Output:
	// [{Name: Limit:2 Remaining:0 Reset:2s}]
	// retry after 2s
}
