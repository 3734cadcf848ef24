package client

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ratekit/ratekit/headers"
	"github.com/ratekit/ratekit/middleware"
	"github.com/ratekit/ratekit/window"
)

// handlerTransport serves requests with a handler in the calling
// goroutine: no network, so it works inside a synctest bubble and the
// handler sees the bubble's clock.
type handlerTransport struct {
	h http.Handler
}

func (ht handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.RemoteAddr = "192.0.2.1:4711"
	if r.Body == nil {
		r.Body = http.NoBody
	}
	rec := httptest.NewRecorder()
	ht.h.ServeHTTP(rec, r)
	resp := rec.Result()
	resp.Request = r
	return resp, nil
}

// roundTripFunc turns a function into an http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// pipeNet is an in-memory network for a real http.Server and
// http.Transport inside a synctest bubble: each dial is a net.Pipe, whose
// blocking is durable, so the fake clock advances.
type pipeNet struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
	mu     sync.Mutex
	dials  int
}

func (n *pipeNet) Accept() (net.Conn, error) {
	select {
	case c := <-n.conns:
		return c, nil
	case <-n.closed:
		return nil, net.ErrClosed
	}
}

func (n *pipeNet) Close() error {
	n.once.Do(func() { close(n.closed) })
	return nil
}

func (n *pipeNet) Addr() net.Addr { return pipeAddr{} }

func (n *pipeNet) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	srv, cli := net.Pipe()
	select {
	case n.conns <- srv:
		n.mu.Lock()
		n.dials++
		n.mu.Unlock()
		return cli, nil
	case <-n.closed:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Dials returns how many connections were opened.
func (n *pipeNet) Dials() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.dials
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// servePipe serves h with a real http.Server over a pipeNet and returns an
// http.Transport dialling it. Both are shut down at cleanup, inside the
// bubble.
func servePipe(t *testing.T, h http.Handler) (*http.Transport, *pipeNet) {
	t.Helper()
	n := &pipeNet{conns: make(chan net.Conn), closed: make(chan struct{})}
	srv := &http.Server{Handler: h}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(n); !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			t.Errorf("Serve: %v", err)
		}
	}()
	base := &http.Transport{DialContext: n.dial, MaxIdleConnsPerHost: 16}
	t.Cleanup(func() {
		base.CloseIdleConnections()
		srv.Close()
		<-done
	})
	return base, n
}

// limiter returns ratekit's middleware with the default policy (60/min +
// 2/s) and the given header style around a handler answering 200 "ok". It
// is closed at cleanup.
func limiter(t *testing.T, style headers.Style) http.Handler {
	t.Helper()
	return limiterWith(t, style, window.Policy{})
}

// limiterWith is limiter with a policy; the zero Policy is the default.
func limiterWith(t *testing.T, style headers.Style, p window.Policy) http.Handler {
	t.Helper()
	lim, err := middleware.New(middleware.Config{
		Policy:  p,
		Headers: style,
		KeyValidator: func(_ context.Context, key string) (middleware.Client, bool) {
			return middleware.Client{}, strings.HasPrefix(key, "demo-key")
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lim.Close() })
	return lim.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	}))
}

// styles are ratekit's header styles, by name.
var styles = []struct {
	name  string
	style headers.Style
}{
	{"lindris", headers.Lindris{}},
	{"scalekit", headers.Scalekit{}},
	{"kinde", headers.Kinde{}},
	{"ietf", headers.IETF{}},
}

// recorder is an Observer that keeps every event.
type recorder struct {
	mu       sync.Mutex
	waits    map[string]int
	refusals []int
	asked    []time.Duration
	retries  []int
	giveUps  []string
}

func newRecorder() *recorder { return &recorder{waits: map[string]int{}} }

func (r *recorder) ObserveWait(host, reason string, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.waits[reason]++
}

func (r *recorder) ObserveRefusal(host string, status int, wait time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refusals = append(r.refusals, status)
	r.asked = append(r.asked, wait)
}

func (r *recorder) ObserveRetry(host string, attempt int, waited time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.retries = append(r.retries, attempt)
}

func (r *recorder) ObserveGiveUp(host string, status int, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.giveUps = append(r.giveUps, reason)
}

func (r *recorder) counts() (refusals, retries int, giveUps []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.refusals), len(r.retries), append([]string(nil), r.giveUps...)
}

// newTransport returns New(cfg) or fails the test.
func newTransport(t *testing.T, cfg Config) *Transport {
	t.Helper()
	tr, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	return tr
}

// get sends a GET for url through rt and returns the status, or fails the
// test on an error. The body is read and closed.
func get(t *testing.T, rt http.RoundTripper, url string, hdr ...string) int {
	t.Helper()
	status, err := tryGet(context.Background(), rt, url, hdr...)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return status
}

// tryGet is get returning the error.
func tryGet(ctx context.Context, rt http.RoundTripper, url string, hdr ...string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// burst sends n GETs to url through rt, c at a time, and returns the
// statuses in the order they finished.
func burst(t *testing.T, rt http.RoundTripper, url string, n, c int, hdr ...string) []int {
	t.Helper()
	var mu sync.Mutex
	var statuses []int
	jobs := make(chan struct{}, n)
	for range n {
		jobs <- struct{}{}
	}
	close(jobs)
	var wg sync.WaitGroup
	for range c {
		wg.Go(func() {
			for range jobs {
				status, err := tryGet(context.Background(), rt, url, hdr...)
				if err != nil {
					t.Errorf("GET %s: %v", url, err)
				}
				mu.Lock()
				statuses = append(statuses, status)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return statuses
}

// countStatus returns how many of statuses equal want.
func countStatus(statuses []int, want int) int {
	n := 0
	for _, s := range statuses {
		if s == want {
			n++
		}
	}
	return n
}

// about reports whether d, a paced run's length in fake time, is want plus
// at most the margins of the waits in it (a millisecond each).
func about(d, want time.Duration) bool {
	return d >= want && d <= want+50*time.Millisecond
}
