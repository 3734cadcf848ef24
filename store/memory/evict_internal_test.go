package memory

import (
	"context"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ratekit/ratekit/store"
	"github.com/ratekit/ratekit/window"
)

// keyInShard returns the i-th key of shard sh (of a store with mask+1
// shards): the shard is picked from the low bits of the first 8 bytes.
func keyInShard(sh, i, mask uint64) store.Key {
	var k store.Key
	binary.LittleEndian.PutUint64(k[:8], (i*0x9e3779b97f4a7c15)&^mask|sh)
	binary.LittleEndian.PutUint64(k[8:], i)
	return k
}

// TestFullStoreReclaimsIdleKeysFirst: a store of two shards is full, one
// shard of keys inside their minute, the other of keys idle for a second.
// A new key of the busy shard takes the place of idle keys of the other
// shard, swept for it, rather than evicting a live key of its own.
func TestFullStoreReclaimsIdleKeysFirst(t *testing.T) {
	start := time.UnixMilli(1_700_000_000_000)
	at := start
	s, err := New(Config{Now: func() time.Time { return at }, MaxKeys: 32, Shards: 2, SweepInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	minute := window.Policy{Windows: []window.Window{{Length: time.Minute, Limit: 10}}}
	second := window.Policy{Windows: []window.Window{{Length: time.Second, Limit: 10}}}
	ctx := context.Background()
	take := func(k store.Key, p *window.Policy) {
		t.Helper()
		if d, err := s.Take(ctx, store.Request{Key: k, Policy: p, Cost: 1}); err != nil || !d.Allowed {
			t.Fatalf("Take: %+v, %v", d, err)
		}
	}
	for i := range uint64(16) {
		take(keyInShard(0, i, s.mask), &minute)
		take(keyInShard(1, i, s.mask), &second)
	}
	at = start.Add(3 * time.Second)
	take(keyInShard(0, 100, s.mask), &minute)
	if s.Evictions() != 0 || s.Len() != 17 || s.keys.Load() != 17 {
		t.Fatalf("Evictions %d, Len %d, keys %d; want 0, 17, 17 (the idle shard swept, no live key evicted)",
			s.Evictions(), s.Len(), s.keys.Load())
	}
	for i := range uint64(16) {
		if d, _ := s.Peek(ctx, keyInShard(0, i, s.mask), &minute); d.Windows[0].Remaining != 9 {
			t.Fatalf("live key %d: Peek %+v, want its request still counted", i, d.States())
		}
	}
	// Full again of live keys only: the next new key evicts one, after
	// finding nothing idle.
	for i := range uint64(15) {
		take(keyInShard(1, 200+i, s.mask), &minute)
	}
	take(keyInShard(0, 101, s.mask), &minute)
	if s.Evictions() != 1 || s.Len() != 32 {
		t.Fatalf("Evictions %d, Len %d; want 1, 32", s.Evictions(), s.Len())
	}
}

// TestKeyCountMatchesTables: over random admissions of three kinds of key,
// some refused at once, Reset, sweeps and clock steps, in a store small
// enough to evict, the store-wide count always equals the keys the tables
// hold and never exceeds MaxKeys, and no shard's idleFrom is later than
// the expiry of a key it holds.
func TestKeyCountMatchesTables(t *testing.T) {
	start := time.UnixMilli(1_700_000_000_000)
	at := start
	s, err := New(Config{Now: func() time.Time { return at }, MaxKeys: 64, Shards: 4, SweepInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	policies := []window.Policy{
		window.Default(),
		{Algorithm: window.SlidingCounter, Windows: window.Default().Windows},
		{Algorithm: window.SlidingCounter, Windows: []window.Window{{Length: time.Hour, Limit: 100}, {Length: time.Minute, Limit: 10}, {Length: time.Second, Limit: 2}}},
	}
	rng := rand.New(rand.NewPCG(22, 22))
	ctx := context.Background()
	for op := range 20_000 {
		at = at.Add(time.Duration(rng.IntN(30)) * time.Millisecond)
		k := store.Key{byte(rng.IntN(200)), byte(rng.IntN(2))}
		switch r := rng.IntN(100); {
		case r < 2:
			s.Reset(ctx, k)
		case r < 3:
			s.sweep(&s.shards[rng.IntN(len(s.shards))])
		case r < 4:
			at = at.Add(time.Duration(rng.IntN(120)-60) * time.Second)
		default:
			// Cost 3 is above the per-second limit: a new key asked
			// that is stored idle.
			s.Take(ctx, store.Request{Key: k, Policy: &policies[rng.IntN(len(policies))], Cost: 1 + 2*rng.IntN(2)})
		}
		if n, l := s.keys.Load(), s.Len(); n != int64(l) || l > 64 {
			t.Fatalf("op %d: keys %d, Len %d; want equal, at most 64", op, n, l)
		}
		for i := range s.shards {
			if from, least := s.shards[i].idleFrom.Load(), leastExpires(&s.shards[i]); from > least {
				t.Fatalf("op %d: shard %d idleFrom %d, but a key expires at %d: a sweep would skip it", op, i, from, least)
			}
		}
	}
	t.Logf("%d evictions", s.Evictions())
}

// leastExpires returns the smallest expires of sh's keys, MaxUint32 if none.
func leastExpires(sh *shard) uint32 {
	least := uint32(math.MaxUint32)
	sh.logs.each(0, func(_ keyWords, e *entry[window.Log]) (bool, bool) {
		least = min(least, e.expires)
		return false, true
	})
	sh.ctrs.each(0, func(_ keyWords, e *entry[window.Counter]) (bool, bool) {
		least = min(least, e.expires)
		return false, true
	})
	sh.smalls.each(0, func(_ fingerprint, e *smallEntry) (bool, bool) {
		least = min(least, e.expires)
		return false, true
	})
	return least
}
