package memory_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ratekit/ratekit/store"
	"github.com/ratekit/ratekit/store/memory"
	"github.com/ratekit/ratekit/store/storetest"
	"github.com/ratekit/ratekit/window"
)

// TestLogKeyKeptWhileItsEntriesCount: a key's entry counts until the clock
// reads more than a window after it (see window.Window), so at exactly one
// window after it the key is neither idle nor evictable. The instant is a
// whole second, where the store's whole-second bookkeeping could round
// exactly onto it.
func TestLogKeyKeptWhileItsEntriesCount(t *testing.T) {
	if storetest.Start.UnixMilli()%1000 != 0 {
		t.Fatal("storetest.Start is not a whole second")
	}
	clk := storetest.NewClock(storetest.Start)
	s := newStore(t, memory.Config{Now: clk.Now, MaxKeys: 16, Shards: 1, SweepInterval: time.Hour})
	p := window.Policy{Windows: []window.Window{{Length: time.Second, Limit: 1}}}
	ctx := context.Background()
	for i := range 16 {
		if d, err := s.Take(ctx, store.Request{Key: keyN(uint64(i)), Policy: &p, Cost: 1}); err != nil || !d.Allowed {
			t.Fatalf("fill %d: %+v, %v", i, d, err)
		}
	}
	t0plus1s := storetest.Start.Add(time.Second)
	clk.Set(t0plus1s)
	if _, err := s.Take(ctx, store.Request{Key: keyN(100), Policy: &p, Cost: 1}); !errors.Is(err, store.ErrFull) {
		t.Fatalf("Take(new key) at t0+1s, while every key's entry counts: error %v, want ErrFull", err)
	}
	for i := range 16 {
		if d, _ := s.Peek(ctx, keyN(uint64(i)), &p); d.Allowed || d.RetryAfter != time.Millisecond {
			t.Fatalf("Peek(key %d) at t0+1s = %+v; want refused for 1ms", i, d)
		}
	}
	// Idle from t0+1001ms, which the store's bookkeeping in whole seconds
	// rounds up to t0+2s.
	clk.Set(storetest.Start.Add(2 * time.Second))
	if d, err := s.Take(ctx, store.Request{Key: keyN(100), Policy: &p, Cost: 1}); err != nil || !d.Allowed {
		t.Fatalf("Take(new key) at t0+2s: %+v, %v; want admitted in an idle key's place", d, err)
	}
}
