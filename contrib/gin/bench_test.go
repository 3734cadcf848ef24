package ratekitgin_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	ratekitgin "github.com/ratekit/ratekit/contrib/gin"
	"github.com/ratekit/ratekit/middleware"
	"github.com/ratekit/ratekit/store/memory"
)

// BenchmarkServe measures one admitted request, GET /v1/people/{id} from
// one client, served five ways, each by a limiter of its own with the
// default policy (see benchLimiter), so that the pairs isolate what each layer costs:
//
//   - mux and mux+ratekit: net/http's ServeMux without and with
//     lim.Handler, the core path the adapter is held to;
//   - gin and gin+ratekitgin: gin without and with this package's
//     middleware;
//   - gin+handwritten: the least an adapter can do, lim.ServeRoute with
//     c.FullPath() and a closure continuing the chain, to show what the
//     package's own code (client lookup, pooled chain, abort) costs.
//
// Besides ns/op each reports cpu-ns/op, the CPU time of the benchmark's
// thread per request (see loopCPU): on a shared machine the wall clock
// also counts waiting for a core.
//
// The limiter's share is (gin+ratekitgin - gin) beside (mux+ratekit - mux);
// the adapter's own share is gin+ratekitgin beside gin+handwritten.
func BenchmarkServe(b *testing.B) {
	people := func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }
	ginPeople := func(c *gin.Context) { c.Writer.Write([]byte("ok")) }
	for _, bc := range []struct {
		name  string
		build func(lim *middleware.Limiter) http.Handler
	}{
		{"mux", func(*middleware.Limiter) http.Handler {
			mux := http.NewServeMux()
			mux.HandleFunc("GET /v1/people/{id}", people)
			return mux
		}},
		{"mux+ratekit", func(lim *middleware.Limiter) http.Handler {
			mux := http.NewServeMux()
			mux.Handle("GET /v1/people/{id}", lim.Handler(http.HandlerFunc(people)))
			return mux
		}},
		{"gin", func(*middleware.Limiter) http.Handler {
			r := gin.New()
			r.GET("/v1/people/:id", ginPeople)
			return r
		}},
		{"gin+ratekitgin", func(lim *middleware.Limiter) http.Handler {
			r := gin.New()
			r.Use(ratekitgin.Middleware(lim))
			r.GET("/v1/people/:id", ginPeople)
			return r
		}},
		{"gin+handwritten", func(lim *middleware.Limiter) http.Handler {
			r := gin.New()
			r.Use(func(c *gin.Context) {
				called := false
				lim.ServeRoute(c.Writer, c.Request, c.FullPath(), http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
					called = true
					c.Next()
				}))
				if !called {
					c.Abort()
				}
			})
			r.GET("/v1/people/:id", ginPeople)
			return r
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := bc.build(benchLimiter(b))
			r := httptest.NewRequest("GET", "/v1/people/42", nil)
			r.RemoteAddr = "192.0.2.1:1234"
			w := &discard{h: http.Header{}}
			b.ReportAllocs()
			loopCPU(b, func() {
				clear(w.h)
				w.code = 0
				h.ServeHTTP(w, r)
			})
			if w.code != 0 && w.code != http.StatusOK {
				b.Fatalf("status %d, want 200", w.code)
			}
		})
	}
}

// BenchmarkShare is BenchmarkServe's comparison made robust to a busy
// machine: it serves the same request through mux, mux+ratekit, gin and
// gin+ratekitgin (each with a limiter of its own) in turn, in blocks of
// 64, timing each block with the thread's CPU clock, so that all four are
// sampled in the same instants whatever else the machine does. It reports
// each one's CPU time per request and two ratios:
//
//   - share: (gin+ratekitgin - gin) / (mux+ratekit - mux), what the
//     limiter adds to a request on gin through this package beside what
//     it adds on net/http through lim.Handler; the adapter's budget is
//     1.10;
//   - total: gin+ratekitgin / mux+ratekit, the whole request.
func BenchmarkShare(b *testing.B) {
	people := func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }
	ginPeople := func(c *gin.Context) { c.Writer.Write([]byte("ok")) }
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/people/{id}", people)
	limitedMux := http.NewServeMux()
	limitedMux.Handle("GET /v1/people/{id}", benchLimiter(b).Handler(http.HandlerFunc(people)))
	bare := gin.New()
	bare.GET("/v1/people/:id", ginPeople)
	adapted := gin.New()
	adapted.Use(ratekitgin.Middleware(benchLimiter(b)))
	adapted.GET("/v1/people/:id", ginPeople)
	shareOf(b, mux, limitedMux, bare, adapted, "gin", "gin+ratekitgin")
}

// shareOf runs BenchmarkShare's interleaved blocks over the four handlers
// and reports their CPU time per request and the two ratios.
func shareOf(b *testing.B, mux, limitedMux, bare, adapted http.Handler, bareName, adaptedName string) {
	const block = 64
	handlers := [4]http.Handler{mux, limitedMux, bare, adapted}
	var spent [4]time.Duration
	r := httptest.NewRequest("GET", "/v1/people/42", nil)
	r.RemoteAddr = "192.0.2.1:1234"
	w := &discard{h: http.Header{}}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if _, ok := threadClock(); !ok {
		b.Skip("no thread CPU clock on this platform")
	}
	b.ReportAllocs()
	for b.Loop() {
		for i, h := range handlers {
			t0, _ := threadClock()
			for range block {
				clear(w.h)
				w.code = 0
				h.ServeHTTP(w, r)
			}
			t1, _ := threadClock()
			spent[i] += t1 - t0
		}
		if w.code != 0 && w.code != http.StatusOK {
			b.Fatalf("status %d, want 200", w.code)
		}
	}
	per := func(i int) float64 { return float64(spent[i]) / float64(b.N*block) }
	b.ReportMetric(per(0), "mux-cpu-ns/req")
	b.ReportMetric(per(1), "mux+ratekit-cpu-ns/req")
	b.ReportMetric(per(2), bareName+"-cpu-ns/req")
	b.ReportMetric(per(3), adaptedName+"-cpu-ns/req")
	b.ReportMetric((per(3)-per(2))/(per(1)-per(0)), "share")
	b.ReportMetric(per(3)/per(1), "total")
}

// benchLimiter returns a limiter with the default policy (60/min + 2/s)
// on a memory store whose clock advances a second per decision, so every
// request is admitted and the store's log stays the same size however
// long the benchmark runs.
func benchLimiter(b *testing.B) *middleware.Limiter {
	b.Helper()
	var n atomic.Int64
	start := time.UnixMilli(1_700_000_000_000)
	st, err := memory.New(memory.Config{Now: func() time.Time { return start.Add(time.Duration(n.Add(1)) * time.Second) }})
	if err != nil {
		b.Fatal(err)
	}
	lim, err := middleware.New(middleware.Config{Store: st, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { lim.Close(); st.Close() })
	return lim
}

// discard is a ResponseWriter that keeps the headers and the status only,
// so that no benchmark pays for recording a body.
type discard struct {
	h    http.Header
	code int
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(code int)        { d.code = code }
