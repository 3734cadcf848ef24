package middleware_test

import (
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ratekit/ratekit/middleware"
	"github.com/ratekit/ratekit/window"
)

// TestConcurrencyLimit: 100 goroutines of one client holding slow requests
// never have more than the limit in flight; the rest get 429 limited by
// concurrency, and slots come back when handlers return.
func TestConcurrencyLimit(t *testing.T) {
	var inFlight, peak atomic.Int64
	release := make(chan struct{})
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-release
		inFlight.Add(-1)
	})
	f := newFixture(t, middleware.Config{
		Concurrency: 5,
		Policy:      window.Policy{Windows: []window.Window{{Length: time.Second, Limit: 1000}}},
	})
	h := f.lim.Handler(slow)
	f.h = h
	var wg sync.WaitGroup
	codes := make(chan int, 100)
	limitedBy := make(chan string, 100)
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := f.do("192.0.2.80:1")
			codes <- w.Code
			if w.Code == 429 {
				limitedBy <- w.Header().Get("X-RateLimit-Limited-By")
			}
		}()
	}
	// Wait until the five admitted requests are parked and the 95 others
	// have been answered.
	deadline := time.Now().Add(5 * time.Second)
	for len(codes) < 95 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	close(codes)
	close(limitedBy)
	count := map[int]int{}
	for c := range codes {
		count[c]++
	}
	if count[200] != 5 || count[429] != 95 || peak.Load() != 5 {
		t.Errorf("statuses %v, peak in flight %d; want 5×200, 95×429, peak 5", count, peak.Load())
	}
	for by := range limitedBy {
		if by != "concurrency" {
			t.Fatalf("X-RateLimit-Limited-By = %q, want concurrency", by)
		}
	}
	// All slots are back.
	if c := f.do("192.0.2.80:1").Code; c != 200 {
		t.Errorf("after the slow requests returned: %d, want 200", c)
	}
}

// TestConcurrencySlotReleasedOnPanicAndRejection: a panicking handler and
// a rate-limit rejection both give the slot back.
func TestConcurrencySlotReleasedOnPanicAndRejection(t *testing.T) {
	f := newFixture(t, middleware.Config{Concurrency: 1})
	panicking := f.lim.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("handler bug") }))
	func() {
		defer func() { recover() }()
		f.h = panicking
		f.do("192.0.2.81:1")
	}()
	f.h = f.lim.Handler(ok)
	if c := f.do("192.0.2.81:1").Code; c != 200 {
		t.Fatalf("after a panicking handler: %d, want 200 (slot released)", c)
	}
	if c := f.do("192.0.2.81:1").Code; c != 429 {
		t.Fatalf("third request in a second: %d, want 429 (rate)", c)
	}
	// The rate rejection released its slot: a new second admits again
	// (an entry counts until the clock reads more than a second after it).
	f.clk.Advance(time.Second + time.Millisecond)
	if c := f.do("192.0.2.81:1").Code; c != 200 {
		t.Fatalf("next second: %d, want 200", c)
	}
}
