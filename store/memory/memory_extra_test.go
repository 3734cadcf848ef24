package memory_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ratekit/ratekit/store"
	"github.com/ratekit/ratekit/store/memory"
	"github.com/ratekit/ratekit/store/storetest"
	"github.com/ratekit/ratekit/window"
)

func keyN(i uint64) store.Key {
	var k store.Key
	// Spread like a hash would: the shard is picked from the first 8 bytes.
	binary.LittleEndian.PutUint64(k[:8], i*0x9e3779b97f4a7c15)
	binary.LittleEndian.PutUint64(k[8:], i)
	return k
}

func newStore(t testing.TB, cfg memory.Config) *memory.Store {
	t.Helper()
	s, err := memory.New(cfg)
	if err != nil {
		t.Fatalf("memory.New(%+v): %v", cfg, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestR25KeySpraying: 1,000,000 requests from distinct clients against
// MaxKeys 10,000 keep the table bounded and the heap small, while a busy
// legitimate key keeps exact limits throughout.
func TestR25KeySpraying(t *testing.T) {
	n := 1_000_000
	if testing.Short() {
		n = 100_000
	}
	clk := storetest.NewClock(storetest.Start)
	s := newStore(t, memory.Config{Now: clk.Now, MaxKeys: 10_000, SweepInterval: time.Hour})
	p := window.Default()
	ctx := context.Background()
	legit := keyN(1 << 62)
	admittedThisSecond := 0
	for i := range n {
		if i%1000 == 0 {
			clk.Advance(50 * time.Millisecond) // 20,000 requests per fake second
			if i%20000 == 0 {
				admittedThisSecond = 0
			}
			d, err := s.Take(ctx, store.Request{Key: legit, Policy: &p, Cost: 1})
			if err != nil {
				t.Fatalf("legitimate key: %v", err)
			}
			if d.Allowed {
				admittedThisSecond++
			}
			if admittedThisSecond > 2 {
				t.Fatalf("legitimate key admitted %d times in one second", admittedThisSecond)
			}
		}
		if _, err := s.Take(ctx, store.Request{Key: keyN(uint64(i)), Policy: &p, Cost: 1}); err != nil && !errors.Is(err, store.ErrFull) {
			t.Fatalf("spray request %d: %v", i, err)
		}
		if i%100_000 == 0 && s.Len() > 10_000 {
			t.Fatalf("after %d requests Len = %d, want at most 10,000", i, s.Len())
		}
	}
	if got := s.Len(); got > 10_000 {
		t.Errorf("Len = %d, want at most 10,000", got)
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if ms.HeapAlloc > 64<<20 {
		t.Errorf("heap after GC = %d MiB, want under 64 MiB", ms.HeapAlloc>>20)
	}
	t.Logf("%d spray requests: %d keys tracked, %d evictions, heap %d MiB", n, s.Len(), s.Evictions(), ms.HeapAlloc>>20)
}

// TestEvictionSparesLimitedKeys fills a tiny store with limited keys: a new
// key gets ErrFull rather than evicting one of them. It runs for the exact
// log, the small counter (held inline) and a counter too big to be.
func TestEvictionSparesLimitedKeys(t *testing.T) {
	minute := window.Window{Length: time.Minute, Limit: 1}
	for _, tc := range []struct {
		name string
		p    window.Policy
		idle time.Duration // how long until a key's counts no longer matter
	}{
		// A log's entry counts for 60.001 s (see window.Window), which the
		// store's whole-second bookkeeping rounds up.
		{"log", window.Policy{Windows: []window.Window{minute}}, time.Minute + time.Second},
		{"small-counter", window.Policy{Algorithm: window.SlidingCounter, Windows: []window.Window{minute}}, 2 * time.Minute},
		{"counter", window.Policy{Algorithm: window.SlidingCounter, Windows: []window.Window{minute,
			{Length: time.Hour, Limit: 100}, {Length: time.Second, Limit: 10}}}, 2 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := storetest.NewClock(storetest.Start)
			s := newStore(t, memory.Config{Now: clk.Now, MaxKeys: 16, Shards: 1, SweepInterval: time.Hour})
			p := tc.p
			ctx := context.Background()
			for i := range 16 {
				if d, err := s.Take(ctx, store.Request{Key: keyN(uint64(i)), Policy: &p, Cost: 1}); err != nil || !d.Allowed {
					t.Fatalf("fill %d: %+v, %v", i, d, err)
				}
			}
			if _, err := s.Take(ctx, store.Request{Key: keyN(100), Policy: &p, Cost: 1}); !errors.Is(err, store.ErrFull) {
				t.Fatalf("Take(new key) into a table of limited keys: error %v, want ErrFull", err)
			}
			for i := range 16 {
				if d, _ := s.Peek(ctx, keyN(uint64(i)), &p); d.Allowed {
					t.Fatalf("limited key %d was evicted", i)
				}
			}
			// Once the keys are idle, a newcomer takes one's place.
			clk.Advance(tc.idle)
			if d, err := s.Take(ctx, store.Request{Key: keyN(100), Policy: &p, Cost: 1}); err != nil || !d.Allowed {
				t.Fatalf("Take(new key) after %v: %+v, %v", tc.idle, d, err)
			}
			if s.Len() != 16 || s.Evictions() != 1 {
				t.Fatalf("Len = %d, Evictions = %d; want 16, 1", s.Len(), s.Evictions())
			}
		})
	}
}

// TestSmallCounterOutlivesItsClock checks the guard that keeps a small
// counter's 32-bit clock honest: a key used up, then left alone for exactly
// 2³² ms (49.7 days, when its clock reads the same again) and never swept,
// starts afresh instead of being read as still used up.
func TestSmallCounterOutlivesItsClock(t *testing.T) {
	clk := storetest.NewClock(storetest.Start)
	s := newStore(t, memory.Config{Now: clk.Now, SweepInterval: time.Hour})
	p := window.Default()
	p.Algorithm = window.SlidingCounter
	ctx := context.Background()
	k := keyN(7)
	for i := range 3 {
		d, err := s.Take(ctx, store.Request{Key: k, Policy: &p, Cost: 1})
		if err != nil || d.Allowed != (i < 2) {
			t.Fatalf("request %d: %+v, %v", i, d, err)
		}
	}
	clk.Advance(1 << 32 * time.Millisecond)
	for _, peek := range []bool{true, false} {
		var d window.Decision
		var err error
		if peek {
			d, err = s.Peek(ctx, k, &p)
		} else {
			d, err = s.Take(ctx, store.Request{Key: k, Policy: &p, Cost: 1})
		}
		if err != nil || !d.Allowed || d.Windows[0].Remaining < 59 {
			t.Fatalf("after 2^32 ms (peek %v): %+v, %v; want a fresh key", peek, d, err)
		}
	}
}

// TestSmallCountersLimitedBriefly: keys sprayed with two requests each use
// up the per-second window of the default counter policy; they are limited
// for about a second, not for the two minutes a counter is remembered, so a
// full store takes new keys again soon after.
func TestSmallCountersLimitedBriefly(t *testing.T) {
	clk := storetest.NewClock(storetest.Start)
	s := newStore(t, memory.Config{Now: clk.Now, MaxKeys: 16, Shards: 1, SweepInterval: time.Hour})
	p := window.Default()
	p.Algorithm = window.SlidingCounter
	ctx := context.Background()
	for i := range 16 {
		for range 2 {
			if d, err := s.Take(ctx, store.Request{Key: keyN(uint64(i)), Policy: &p, Cost: 1}); err != nil || !d.Allowed {
				t.Fatalf("fill %d: %+v, %v", i, d, err)
			}
		}
	}
	if _, err := s.Take(ctx, store.Request{Key: keyN(100), Policy: &p, Cost: 1}); !errors.Is(err, store.ErrFull) {
		t.Fatalf("Take(new key) among limited keys: error %v, want ErrFull", err)
	}
	clk.Advance(2 * time.Second)
	if d, err := s.Take(ctx, store.Request{Key: keyN(100), Policy: &p, Cost: 1}); err != nil || !d.Allowed {
		t.Fatalf("Take(new key) 2 s later: %+v, %v; want admitted in place of an evicted key", d, err)
	}
}

// TestEvictionLooksInEveryTable: a full shard whose exact keys are all
// limited still makes room by evicting an idle counter; the tables are
// sampled in rotating order, so within a few tries a new key gets in.
func TestEvictionLooksInEveryTable(t *testing.T) {
	clk := storetest.NewClock(storetest.Start)
	s := newStore(t, memory.Config{Now: clk.Now, MaxKeys: 16, Shards: 1, SweepInterval: time.Hour})
	hour := window.Policy{Windows: []window.Window{{Length: time.Hour, Limit: 1}}}
	small := window.Policy{Algorithm: window.SlidingCounter, Windows: []window.Window{{Length: time.Second, Limit: 5}}}
	ctx := context.Background()
	for i := range 16 {
		p := &hour
		if i >= 10 {
			p = &small
		}
		if d, err := s.Take(ctx, store.Request{Key: keyN(uint64(i)), Policy: p, Cost: 1}); err != nil || !d.Allowed {
			t.Fatalf("fill %d: %+v, %v", i, d, err)
		}
	}
	clk.Advance(5 * time.Second) // the counters are idle, the exact keys limited for an hour
	for try := range 30 {
		_, err := s.Take(ctx, store.Request{Key: keyN(uint64(100 + try)), Policy: &hour, Cost: 1})
		if err == nil {
			return
		}
		if !errors.Is(err, store.ErrFull) {
			t.Fatal(err)
		}
	}
	t.Fatal("30 new keys got ErrFull though idle counters could go")
}

// TestRefusedNewKeysStayEvictable: new keys whose only request was refused
// (its cost above the limit) count nothing and hold no one back, so a full
// store evicts them for a newcomer, in every table.
func TestRefusedNewKeysStayEvictable(t *testing.T) {
	minute := window.Window{Length: time.Minute, Limit: 10}
	for _, alg := range []window.Algorithm{window.SlidingLog, window.SlidingCounter} {
		t.Run(alg.String(), func(t *testing.T) {
			clk := storetest.NewClock(storetest.Start)
			s := newStore(t, memory.Config{Now: clk.Now, MaxKeys: 16, Shards: 1, SweepInterval: time.Hour})
			p := window.Policy{Algorithm: alg, Windows: []window.Window{minute}}
			ctx := context.Background()
			for i := range 16 {
				if d, err := s.Take(ctx, store.Request{Key: keyN(uint64(i)), Policy: &p, Cost: 11}); err != nil || d.Allowed {
					t.Fatalf("key %d at cost 11: %+v, %v; want refused", i, d, err)
				}
			}
			clk.Advance(5 * time.Second)
			if d, err := s.Take(ctx, store.Request{Key: keyN(100), Policy: &p, Cost: 1}); err != nil || !d.Allowed {
				t.Fatalf("new key: %+v, %v; want admitted in place of a refused one", d, err)
			}
		})
	}
}

// TestSmallCounterRefusalAfterStepBack: a refusal after the clock stepped
// back 11 days re-anchors a week-long counter there, so 24.9 days later
// (beyond what its 32-bit clock can tell apart from a step back) it must
// read as idle, as a window.Counter does, not as a state from the future.
func TestSmallCounterRefusalAfterStepBack(t *testing.T) {
	clk := storetest.NewClock(storetest.Start)
	s := newStore(t, memory.Config{Now: clk.Now, SweepInterval: time.Hour})
	p := window.Policy{Algorithm: window.SlidingCounter, Windows: []window.Window{{Length: 7 * 24 * time.Hour, Limit: 1}}}
	ctx := context.Background()
	var ref window.Counter
	day := 24 * time.Hour
	for i, step := range []time.Duration{0, -11 * day, 24*day + 22*time.Hour} {
		clk.Advance(step)
		got, err := s.Take(ctx, store.Request{Key: keyN(9), Policy: &p, Cost: 1})
		want := ref.TakeAt(clk.Now(), &p, 1)
		if err != nil || storetest.Diff(got, want) != "" {
			t.Fatalf("request %d: %s (err %v)", i, storetest.Diff(got, want), err)
		}
	}
}

// TestReclaimerDropsIdleKeys runs the background reclaimer on a fake clock.
func TestReclaimerDropsIdleKeys(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := memory.New(memory.Config{Shards: 4, SweepInterval: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		p := window.Default()
		counter := p
		counter.Algorithm = window.SlidingCounter
		for i := range 100 {
			s.Take(context.Background(), store.Request{Key: keyN(uint64(i)), Policy: &p, Cost: 1})
			s.Take(context.Background(), store.Request{Key: keyN(uint64(1000 + i)), Policy: &counter, Cost: 1})
		}
		time.Sleep(30 * time.Second)
		if got := s.Len(); got != 200 {
			t.Fatalf("Len after 30s = %d, want 200 (keys still inside the minute)", got)
		}
		// Each shard is swept once a minute; logs are idle after a minute,
		// counters (which remember their previous slot) after two.
		time.Sleep(2 * time.Minute)
		if got := s.Len(); got > 100 {
			t.Fatalf("Len after 2m30s = %d, want at most the 100 counters", got)
		}
		time.Sleep(time.Minute)
		if got := s.Len(); got != 0 {
			t.Fatalf("Len after 3m30s = %d, want 0", got)
		}
	})
}

// TestR43NewCloseCycles: 100 New/Close cycles leave no goroutine behind and
// Close is idempotent.
func TestR43NewCloseCycles(t *testing.T) {
	before := runtime.NumGoroutine()
	for range 100 {
		s, err := memory.New(memory.Config{})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		s.Close()
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if after := runtime.NumGoroutine(); after > before {
		t.Fatalf("goroutines: %d before, %d after 100 New/Close cycles", before, after)
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	for _, cfg := range []memory.Config{{MaxKeys: -1}, {Shards: 3}, {Shards: -2}, {SweepInterval: -time.Second}} {
		if _, err := memory.New(cfg); !errors.Is(err, memory.ErrInvalidConfig) {
			t.Errorf("New(%+v) error = %v, want ErrInvalidConfig", cfg, err)
		}
	}
}

func TestTakeHonoursCancelledContext(t *testing.T) {
	s := newStore(t, memory.Config{})
	p := window.Default()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Take(ctx, store.Request{Key: keyN(1), Policy: &p, Cost: 1}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Take(cancelled) error = %v, want context.Canceled", err)
	}
	if d, _ := s.Peek(context.Background(), keyN(1), &p); d.Windows[0].Remaining != 60 {
		t.Fatalf("cancelled Take counted: %+v", d)
	}
}

func ExampleNew() {
	clock := storetest.NewClock(time.UnixMilli(1_700_000_000_000))
	s, err := memory.New(memory.Config{Now: clock.Now})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	p := window.Default() // 60/min + 2/s
	key := store.Key{1}   // the middleware derives keys with a keyed hash
	for i := range 3 {
		d, _ := s.Take(context.Background(), store.Request{Key: key, Policy: &p, Cost: 1})
		fmt.Printf("request %d: allowed=%v remaining=%d/min %d/s retry-after=%v\n",
			i+1, d.Allowed, d.Windows[0].Remaining, d.Windows[1].Remaining, d.RetryAfter)
		clock.Advance(100 * time.Millisecond)
	}
	// Output:
	// request 1: allowed=true remaining=59/min 1/s retry-after=0s
	// request 2: allowed=true remaining=58/min 0/s retry-after=0s
	// request 3: allowed=false remaining=58/min 0/s retry-after=801ms
}

// TestReleaseIgnoresUnknownLeases: releasing a lease twice, or one never
// granted, never frees another request's slot.
func TestReleaseIgnoresUnknownLeases(t *testing.T) {
	s := newStore(t, memory.Config{})
	ctx := context.Background()
	k := keyN(5)
	a, ok1, _ := s.Acquire(ctx, k, 2, time.Minute)
	_, ok2, _ := s.Acquire(ctx, k, 2, time.Minute)
	if !ok1 || !ok2 {
		t.Fatal("two slots of 2 not granted")
	}
	s.Release(ctx, a)
	s.Release(ctx, a)                                // twice
	s.Release(ctx, store.Lease{Key: k, ID: 1 << 60}) // never granted
	if _, ok, _ := s.Acquire(ctx, k, 2, time.Minute); !ok {
		t.Fatal("the released slot is not available")
	}
	if _, ok, _ := s.Acquire(ctx, k, 2, time.Minute); ok {
		t.Fatal("a third slot was granted: a stale release freed a held slot")
	}
}
