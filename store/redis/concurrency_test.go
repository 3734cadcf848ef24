package redis

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ratekit/ratekit/store"
	"github.com/ratekit/ratekit/store/storetest"
)

// concurrencyStores returns a store on miniredis and one on a real
// redis-server, each with a fake clock.
func concurrencyStores(t *testing.T) map[string]struct {
	s   *Store
	clk *storetest.Clock
	c   *goredis.Client
} {
	out := map[string]struct {
		s   *Store
		clk *storetest.Clock
		c   *goredis.Client
	}{}
	_, mini := newMini(t)
	real, _ := realClient(t)
	for name, c := range map[string]*goredis.Client{"miniredis": mini, "redis-server": real} {
		clk := storetest.NewClock(storetest.Start)
		s, err := New(c, Config{Prefix: testPrefix(t, c), Now: clk.Now, Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		out[name] = struct {
			s   *Store
			clk *storetest.Clock
			c   *goredis.Client
		}{s, clk, c}
	}
	return out
}

// TestConcurrencyLeases: 100 goroutines holding slots never exceed the
// limit, releases give slots back, and leases of a holder that never
// releases (a killed instance) expire after their TTL.
func TestConcurrencyLeases(t *testing.T) {
	ctx := context.Background()
	for name, env := range concurrencyStores(t) {
		t.Run(name, func(t *testing.T) {
			key := store.Key{7, 7, 7}
			var held, peak atomic.Int64
			var granted []store.Lease
			var mu sync.Mutex
			var wg sync.WaitGroup
			for range 100 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					l, ok, err := env.s.Acquire(ctx, key, 5, 30*time.Second)
					if err != nil {
						t.Error(err)
						return
					}
					if ok {
						n := held.Add(1)
						for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
						}
						mu.Lock()
						granted = append(granted, l)
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			if len(granted) != 5 || peak.Load() != 5 {
				t.Fatalf("100 concurrent Acquire(limit 5): %d granted, peak %d; want 5, 5", len(granted), peak.Load())
			}
			if err := env.s.Release(ctx, granted[0]); err != nil {
				t.Fatal(err)
			}
			if _, ok, _ := env.s.Acquire(ctx, key, 5, 30*time.Second); !ok {
				t.Fatal("Acquire after a Release was refused")
			}
			if _, ok, _ := env.s.Acquire(ctx, key, 5, 30*time.Second); ok {
				t.Fatal("sixth lease granted")
			}
			// The holders die without releasing: after the TTL their
			// leases are reclaimed.
			env.clk.Advance(30*time.Second + time.Millisecond)
			for i := range 5 {
				if _, ok, _ := env.s.Acquire(ctx, key, 5, 30*time.Second); !ok {
					t.Fatalf("Acquire %d after the leases expired was refused", i)
				}
			}
			if ttl := env.c.PTTL(ctx, LeaseKey(env.s.Prefix(), key)).Val(); ttl <= 0 {
				t.Errorf("lease key TTL %v, want positive (no immortal keys)", ttl)
			}
		})
	}
}
