package redis

import (
	"context"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ratekit/ratekit/store"
	"github.com/ratekit/ratekit/window"
)

// TestR32KillMidTraffic: redis-server gets SIGKILL under traffic. Every
// Take in the following second returns (with an error) within the store
// timeout + 20 ms at the 99th percentile; after a restart decisions succeed
// again within 2 s without a new client, and the goroutine count returns to
// its baseline ±5.
func TestR32KillMidTraffic(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs traffic for about 2 s of real time")
	}
	srv := startServer(t)
	base := runtime.NumGoroutine()
	c := newClient(t, srv.Addr)
	s := newStore(t, c, Config{})
	p := relaxed

	var mu sync.Mutex
	var killedAt time.Time
	var afterKill []time.Duration
	var lastErr, lastOK time.Time
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				_, err := s.Take(context.Background(), store.Request{Key: testKey(w*1_000_000 + i%1000), Policy: &p, Cost: 1})
				el := time.Since(start)
				mu.Lock()
				if !killedAt.IsZero() && start.After(killedAt) && start.Sub(killedAt) < time.Second {
					afterKill = append(afterKill, el)
				}
				if err != nil {
					lastErr = time.Now()
				} else {
					lastOK = time.Now()
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(time.Millisecond)
				}
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	mu.Lock()
	killedAt = time.Now()
	mu.Unlock()
	srv.Kill()
	time.Sleep(time.Second)
	restartedAt := time.Now()
	srv.start()
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	if len(afterKill) == 0 {
		t.Fatal("no Take in the second after the kill")
	}
	slices.Sort(afterKill)
	p99 := afterKill[len(afterKill)*99/100]
	t.Logf("%d Takes in the second after kill -9: p50 %v, p99 %v, max %v", len(afterKill), afterKill[len(afterKill)/2], p99, afterKill[len(afterKill)-1])
	if p99 > DefaultTimeout+20*time.Millisecond {
		t.Errorf("p99 after kill = %v, want at most %v", p99, DefaultTimeout+20*time.Millisecond)
	}
	if !lastOK.After(restartedAt) || lastErr.After(restartedAt.Add(2*time.Second)) {
		t.Errorf("after restart at %v: last success %v, last error %v; want successes and no errors 2s on",
			restartedAt.Format("15:04:05.000"), lastOK.Format("15:04:05.000"), lastErr.Format("15:04:05.000"))
	}
	s.Close()
	c.Close()
	if n := settleGoroutines(base, 5); n > base+5 {
		t.Errorf("goroutines: %d after, %d before", n, base)
	}
}

// TestR44CancelledMidDecision: callers cancel their contexts at random
// moments while Takes are in flight. A request counts in every window or
// in none (the script is atomic), so both windows of each key always hold
// the same count, and no goroutine outlives the test.
func TestR44CancelledMidDecision(t *testing.T) {
	srv := startServer(t)
	base := runtime.NumGoroutine()
	c := newClient(t, srv.Addr)
	// A frozen clock keeps every request in one instant, so in both
	// algorithms the two windows count exactly the same requests.
	s := newStore(t, c, Config{Timeout: time.Second, Now: func() time.Time { return t0 }})
	counter := relaxed
	counter.Algorithm = window.SlidingCounter
	for _, p := range []window.Policy{relaxed, counter} {
		keys := []store.Key{testKey(100 + int(p.Algorithm)*10), testKey(101 + int(p.Algorithm)*10)}
		var wg sync.WaitGroup
		for i := range 400 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(rand.IntN(3000))*time.Microsecond)
				defer cancel()
				s.Take(ctx, store.Request{Key: keys[i%2], Policy: &p, Cost: 1})
			}()
		}
		wg.Wait()
		for _, k := range keys {
			d, err := s.Peek(context.Background(), k, &p)
			if err != nil {
				t.Fatal(err)
			}
			minute, second := 60-d.Windows[0].Remaining, 1000-d.Windows[1].Remaining
			if minute != second {
				t.Errorf("%v key: minute window counts %d, second window %d; a request counted in one only", p.Algorithm, minute, second)
			}
		}
	}
	s.Close()
	c.Close()
	if n := settleGoroutines(base, 2); n > base+2 {
		t.Errorf("goroutines: %d after, %d before", n, base)
	}
}
