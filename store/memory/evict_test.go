package memory_test

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ratekit/ratekit/store"
	"github.com/ratekit/ratekit/store/memory"
	"github.com/ratekit/ratekit/store/storetest"
	"github.com/ratekit/ratekit/window"
)

// TestSprayAgainstAFullStore: a client at 59 of its 60 a minute, then
// 20,000 new keys of one request each through a store bounded to 4,096,
// then 40 more requests from the client within the same minute. Eviction
// must take the sprayed keys, which each counted one request, and not the
// client's, which counted 59: the client gets exactly 60 in the minute, and
// no sprayed key is refused room.
func TestSprayAgainstAFullStore(t *testing.T) {
	clk := storetest.NewClock(storetest.Start)
	s := newStore(t, memory.Config{Now: clk.Now, MaxKeys: 4096, SweepInterval: time.Hour})
	p := window.Default() // 60/min + 2/s
	ctx := context.Background()
	at := func(d time.Duration) { clk.Set(storetest.Start.Add(d)) }
	client := keyN(1 << 62)
	admitted := 0
	take := func(when time.Duration) {
		t.Helper()
		at(when)
		d, err := s.Take(ctx, store.Request{Key: client, Policy: &p, Cost: 1})
		if err != nil {
			t.Fatalf("client at %v: %v", when, err)
		}
		if d.Allowed {
			admitted++
		}
	}
	// 59 requests, one every 501 ms (an entry stays a millisecond past
	// the window's length, see window.Window): 0 s to 29.058 s.
	for i := range 59 {
		take(time.Duration(i) * 501 * time.Millisecond)
	}
	if admitted != 59 {
		t.Fatalf("client admitted %d of its first 59, want 59", admitted)
	}
	// 20,000 new keys over one second from 29.5 s, 20 per millisecond: the
	// client's second window, full until 29.5 s, protects it only at first.
	full := 0
	for i := range 20_000 {
		if i%20 == 0 {
			at(29500*time.Millisecond + time.Duration(i/20)*time.Millisecond)
		}
		if _, err := s.Take(ctx, store.Request{Key: keyN(uint64(i)), Policy: &p, Cost: 1}); err != nil {
			full++
		}
	}
	// 40 more from the client, one every 501 ms from 31 s to 50.539 s: all
	// within a minute of its first request.
	for i := range 40 {
		take(31*time.Second + time.Duration(i)*501*time.Millisecond)
	}
	t.Logf("spray: %d keys, %d evictions, %d refused room; client admitted %d in the minute", s.Len(), s.Evictions(), full, admitted)
	if full > 0 {
		t.Errorf("%d of 20,000 sprayed keys refused room (ErrFull), want 0: each had quota left", full)
	}
	if admitted != 60 {
		t.Errorf("client admitted %d in one minute, want exactly its limit of 60", admitted)
	}
}

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

// TestEvictionTakesTheFewestCounted fills a shard of 8 keys (so a sample
// sees them all) under 100/hour + 10/s: seven keys with 3 requests, one
// with 1. None is limited; a new key evicts the one whose loss can admit
// the fewest extra requests, the key with 1, in each table. Among keys that
// count the same, the one expiring soonest goes.
func TestEvictionTakesTheFewestCounted(t *testing.T) {
	windows := []window.Window{{Length: time.Hour, Limit: 100}, {Length: time.Second, Limit: 10}}
	for _, tc := range []struct {
		name string
		p    window.Policy
	}{
		{"log", window.Policy{Windows: windows}},
		{"small-counter", window.Policy{Algorithm: window.SlidingCounter, Windows: windows}},
		{"counter", window.Policy{Algorithm: window.SlidingCounter, Windows: append([]window.Window{{Length: 24 * time.Hour, Limit: 1000}}, windows...)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := storetest.NewClock(storetest.Start)
			s := newStore(t, memory.Config{Now: clk.Now, MaxKeys: 8, Shards: 1, SweepInterval: time.Hour})
			ctx := context.Background()
			take := func(k store.Key) window.Decision {
				t.Helper()
				d, err := s.Take(ctx, store.Request{Key: k, Policy: &tc.p, Cost: 1})
				if err != nil {
					t.Fatalf("Take(key %d): %v", k[8], err)
				}
				return d
			}
			light := keyN(5)
			for i := range 8 {
				n := 3
				if keyN(uint64(i)) == light {
					n = 1
				}
				for range n {
					take(keyN(uint64(i)))
				}
				clk.Advance(time.Second)
			}
			take(keyN(100))
			if s.Evictions() != 1 {
				t.Fatalf("Evictions = %d, want 1", s.Evictions())
			}
			for i := range 8 {
				d, _ := s.Peek(ctx, keyN(uint64(i)), &tc.p)
				evicted := d.Windows[0].Remaining == d.Windows[0].Limit
				if evicted != (keyN(uint64(i)) == light) {
					t.Errorf("key %d: evicted = %v (Peek %+v); want only key 5, the one that counted 1 request", i, evicted, d.States())
				}
			}
			// Now every key counts 3 (key 100 has 1: give it 2 more): the
			// oldest, key 0, expires soonest and goes.
			take(keyN(100))
			take(keyN(100))
			clk.Advance(time.Second)
			take(keyN(101))
			if d, _ := s.Peek(ctx, keyN(0), &tc.p); d.Windows[0].Remaining != d.Windows[0].Limit {
				t.Errorf("all keys counting 3: key 0, expiring soonest, was not the one evicted (Peek %+v)", d.States())
			}
		})
	}
}

// TestNoEvictionBelowMaxKeys: MaxKeys live keys fit, whatever their spread
// over the 64 shards (with a bound per shard, the fullest shard filled and
// evicted live keys at about 83 % of 10,000); the next new key evicts one.
// Keys are spread at random, as keyed hashes are (keyN spreads them evenly).
func TestNoEvictionBelowMaxKeys(t *testing.T) {
	clk := storetest.NewClock(storetest.Start)
	s := newStore(t, memory.Config{Now: clk.Now, MaxKeys: 10_000, SweepInterval: time.Hour})
	p := window.Default()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	randomKey := func() store.Key {
		var k store.Key
		binary.LittleEndian.PutUint64(k[:8], rng.Uint64())
		binary.LittleEndian.PutUint64(k[8:], rng.Uint64())
		return k
	}
	for i := range 10_000 {
		if _, err := s.Take(ctx, store.Request{Key: randomKey(), Policy: &p, Cost: 1}); err != nil {
			t.Fatalf("key %d: %v", i, err)
		}
		if s.Evictions() != 0 {
			t.Fatalf("a live key was evicted when key %d arrived (%d keys held), want none below MaxKeys 10,000", i, s.Len())
		}
	}
	if _, err := s.Take(ctx, store.Request{Key: randomKey(), Policy: &p, Cost: 1}); err != nil || s.Evictions() != 1 || s.Len() != 10_000 {
		t.Fatalf("key 10,001: error %v, Evictions %d, Len %d; want nil, 1, 10,000", err, s.Evictions(), s.Len())
	}
}
