package middleware_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"time"

	"github.com/ratekit/ratekit/middleware"
	"github.com/ratekit/ratekit/store/memory"
	"github.com/ratekit/ratekit/store/storetest"
	"github.com/ratekit/ratekit/window"
)

// exampleStore is a memory store on a clock that stands still, so that the
// examples' output never depends on timing.
func exampleStore() *memory.Store {
	clk := storetest.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	s, err := memory.New(memory.Config{Now: clk.Now})
	if err != nil {
		log.Fatal(err)
	}
	return s
}

// The default configuration is the Lindris contract: 60 requests a minute
// and 2 a second per client address. The third request within a second is
// refused with 429 and Retry-After.
func ExampleNew() {
	st := exampleStore()
	defer st.Close()
	lim, err := middleware.New(middleware.Config{Store: st})
	if err != nil {
		log.Fatal(err) // every invalid field is listed
	}
	defer lim.Close()
	api := lim.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hello")
	}))

	for range 3 {
		r := httptest.NewRequest("GET", "/v1/people", nil)
		r.RemoteAddr = "198.51.100.7:4711"
		w := httptest.NewRecorder()
		api.ServeHTTP(w, r)
		h := w.Header()
		fmt.Printf("%d remaining %s/%s retry-after %q\n", w.Code, h.Get("X-RateLimit-Remaining"), h.Get("X-RateLimit-Remaining-Second"), h.Get("Retry-After"))
	}
	// Output:
	// 200 remaining 59/1 retry-after ""
	// 200 remaining 58/0 retry-after ""
	// 429 remaining 58/0 retry-after "1"
}

// An authentication middleware that has found the caller says so with
// WithClient; Identify: ClientFromContext counts each user in a bucket of
// its own, however many share an address.
func ExampleClientFromContext() {
	st := exampleStore()
	defer st.Close()
	lim, err := middleware.New(middleware.Config{Store: st, Identify: middleware.ClientFromContext,
		Policy: window.Policy{Windows: []window.Window{{Length: time.Minute, Limit: 1}}}})
	if err != nil {
		log.Fatal(err)
	}
	defer lim.Close()
	auth := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			user := r.Header.Get("X-User") // a session lookup, a verified JWT...
			next.ServeHTTP(w, r.WithContext(middleware.WithClient(r.Context(), middleware.Client{ID: user})))
		})
	}
	api := auth(lim.Handler(http.NotFoundHandler()))

	for _, user := range []string{"alice", "bob", "alice"} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = "203.0.113.1:1" // one office, one address
		r.Header.Set("X-User", user)
		w := httptest.NewRecorder()
		api.ServeHTTP(w, r)
		fmt.Println(user, w.Code)
	}
	// Output:
	// alice 404
	// bob 404
	// alice 429
}

// Take charges the bucket an HTTP request of the same client would, with
// the same rules: here a background job spends a client's allowance, and
// the client's next HTTP request sees what is left.
func ExampleLimiter_Take() {
	st := exampleStore()
	defer st.Close()
	lim, err := middleware.New(middleware.Config{Store: st,
		KeyValidator: func(_ context.Context, key string) (middleware.Client, bool) {
			return middleware.Client{ID: "acct-42"}, key == "sk_live_42"
		}})
	if err != nil {
		log.Fatal(err)
	}
	defer lim.Close()

	res, err := lim.Take(context.Background(), middleware.Request{
		Identity: middleware.Identity{Client: middleware.Client{ID: "acct-42"}},
		Route:    "/v1/export", Method: "POST",
	})
	if err != nil {
		log.Fatal(err) // an unknown rule, an empty identity, a bad cost
	}
	fmt.Println(res.Allowed, res.Outcome, res.Decision.Windows[0].Remaining)

	r := httptest.NewRequest("GET", "/v1/people", nil)
	r.Header.Set("Authorization", "Bearer sk_live_42")
	w := httptest.NewRecorder()
	lim.Handler(http.NotFoundHandler()).ServeHTTP(w, r)
	fmt.Println(w.Header().Get("X-RateLimit-Remaining"))
	// Output:
	// true allowed 59
	// 58
}

// Answer writes a Take's result onto a response as the middleware would:
// for a handler that decides itself, here at a cost that depends on the
// request.
func ExampleLimiter_Answer() {
	st := exampleStore()
	defer st.Close()
	lim, err := middleware.New(middleware.Config{Store: st,
		Policy: window.Policy{Windows: []window.Window{{Length: time.Minute, Limit: 100}}}})
	if err != nil {
		log.Fatal(err)
	}
	defer lim.Close()
	bulk := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		items := len(r.URL.Query()["id"])
		addr, _ := netip.ParseAddrPort(r.RemoteAddr)
		res, err := lim.Take(r.Context(), middleware.Request{
			Identity: middleware.Identity{Addr: addr.Addr()}, Route: "/v1/bulk", Method: r.Method, Cost: max(items, 1)})
		if err != nil {
			http.Error(w, "too many items", http.StatusBadRequest)
			return
		}
		if !lim.Answer(w, r, &res) {
			return // refused: 429, Retry-After and the body are written
		}
		fmt.Fprintf(w, "updated %d\n", items)
	})

	for _, n := range []int{60, 30, 20} {
		target := "/v1/bulk?"
		for i := range n {
			target += fmt.Sprintf("id=%d&", i)
		}
		r := httptest.NewRequest("POST", target, nil)
		r.RemoteAddr = "192.0.2.10:1"
		w := httptest.NewRecorder()
		bulk.ServeHTTP(w, r)
		fmt.Println(n, w.Code, w.Header().Get("X-RateLimit-Remaining"))
	}
	// Output:
	// 60 200 40
	// 30 200 10
	// 20 429 10
}
