package memory_test

import (
	"context"
	"testing"
	"time"

	"github.com/ratekit/ratekit/store"
	"github.com/ratekit/ratekit/store/memory"
	"github.com/ratekit/ratekit/store/storetest"
	"github.com/ratekit/ratekit/window"
)

// TestFullStoreKeepsLimiting fills a store with keys that were each admitted
// once, halfway through one second, under the exact log, a small counter
// and a larger counter. None is limited (every window has room), so within
// the same millisecond a new key evicts one of them instead of getting
// ErrFull, and a new key then sent three requests gets the two its
// per-second window allows.
func TestFullStoreKeepsLimiting(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    window.Policy
	}{
		{"log", window.Default()},
		{"small-counter", window.Policy{Algorithm: window.SlidingCounter, Windows: window.Default().Windows}},
		{"counter", window.Policy{Algorithm: window.SlidingCounter, Windows: []window.Window{
			{Length: time.Hour, Limit: 1000}, {Length: time.Minute, Limit: 60}, {Length: time.Second, Limit: 2}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := storetest.NewClock(storetest.Start.Add(500 * time.Millisecond))
			s := newStore(t, memory.Config{Now: clk.Now, MaxKeys: 16, Shards: 1, SweepInterval: time.Hour})
			ctx := context.Background()
			for i := range 16 {
				if d, err := s.Take(ctx, store.Request{Key: keyN(uint64(i)), Policy: &tc.p, Cost: 1}); err != nil || !d.Allowed {
					t.Fatalf("fill %d: %+v, %v", i, d, err)
				}
			}
			admitted := 0
			for i := range 3 {
				d, err := s.Take(ctx, store.Request{Key: keyN(100), Policy: &tc.p, Cost: 1})
				if err != nil {
					t.Fatalf("new key, request %d, into a full store of keys with quota left: %v", i, err)
				}
				if d.Allowed {
					admitted++
				}
			}
			if admitted != 2 || s.Len() != 16 || s.Evictions() != 1 {
				t.Errorf("new key: %d of 3 admitted, Len %d, Evictions %d; want 2, 16, 1", admitted, s.Len(), s.Evictions())
			}
		})
	}
}
