package memory

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ratekit/ratekit/store"
	"github.com/ratekit/ratekit/store/storetest"
	"github.com/ratekit/ratekit/window"
)

// TestGrantMatchesTheLog checks that admissions handed out from grants are
// the decisions a plain window.Log gives on the same stream, with grants
// retired by every other operation on the key: random streams of bursts on
// hot keys under policies that merge (so grants are published), mixed with
// other keys of the same shard (whose grants replace theirs), a policy that
// does not merge, other costs, Peek, Reset, steps forward and back. It also
// checks that many admissions of the hot keys (about half, with this mix)
// were handed out without the lock, so the stream exercises what it is
// meant to.
func TestGrantMatchesTheLog(t *testing.T) {
	big := window.Policy{Windows: []window.Window{{Length: time.Second, Limit: 3000}, {Length: 100 * time.Millisecond, Limit: 700}}}
	huge := window.Policy{Windows: []window.Window{{Length: time.Minute, Limit: 2_000_000_000}, {Length: time.Second, Limit: 1_000_000_000}}}
	lindris := window.Default()
	policies := []*window.Policy{&big, &big, &huge, &lindris}
	start := time.UnixMilli(1_700_000_000_000)
	var free, hotAdmitted, published int
	for seed := uint64(1); seed <= 40; seed++ {
		rng := rand.New(rand.NewPCG(seed, 17))
		var s *Store
		at := start
		// unlocked says whether the last clock read was made without the
		// shard's lock: a decision taken under the lock reads it last
		// there.
		unlocked := false
		now := func() time.Time {
			if unlocked = s.shards[0].mu.TryLock(); unlocked {
				s.shards[0].mu.Unlock()
			}
			return at
		}
		s, err := New(Config{Now: now, Shards: 1, SweepInterval: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		ref := map[store.Key]*window.Log{}
		for i := range 6000 {
			switch r := rng.IntN(200); {
			case r < 10:
				at = at.Add(time.Millisecond)
			case r < 13:
				at = at.Add(time.Duration(rng.IntN(1500)) * time.Millisecond)
			case r < 14:
				at = at.Add(-time.Duration(rng.IntN(20)) * time.Millisecond)
			}
			// Key 0 is the hottest; keys 1 and 2 take its grant's place
			// now and then, keys 3 to 7 come in passing.
			var k store.Key
			switch r := rng.IntN(10); {
			case r < 6:
				k = store.Key{0}
			case r < 8:
				k = store.Key{2}
			case r < 9:
				k = store.Key{1}
			default:
				k = store.Key{byte(3 + rng.IntN(5))}
			}
			if ref[k] == nil {
				ref[k] = &window.Log{}
			}
			p := policies[int(k[0])%len(policies)]
			cost := 1
			if rng.IntN(20) == 0 {
				cost = 2
			}
			ctx := context.Background()
			switch op := rng.IntN(200); {
			case op == 0:
				if err := s.Reset(ctx, k); err != nil {
					t.Fatal(err)
				}
				ref[k].Reset()
			case op < 4:
				got, err := s.Peek(ctx, k, p)
				if err != nil {
					t.Fatal(err)
				}
				if d := storetest.Diff(got, ref[k].PeekAt(at, p)); d != "" {
					t.Fatalf("seed %d op %d: Peek of key %d: %s", seed, i, k[0], d)
				}
			default:
				got, err := s.Take(ctx, store.Request{Key: k, Policy: p, Cost: cost})
				if err != nil {
					t.Fatal(err)
				}
				if d := storetest.Diff(got, ref[k].TakeAt(at, p, cost)); d != "" {
					t.Fatalf("seed %d op %d: Take of key %d at +%v cost %d: %s", seed, i, k[0], at.Sub(start), cost, d)
				}
				// A window left with nothing must keep the key from
				// eviction until it frees, however the admission was
				// handed out.
				for _, w := range got.States() {
					if e := s.shards[0].logs.find(wordsOf(k)); got.Allowed && w.Remaining == 0 && e.limitedUntil < sec(at.UnixMilli()+w.Reset.Milliseconds()) {
						t.Fatalf("seed %d op %d: key %d admitted with a window exhausted for %v, but evictable from second %d", seed, i, k[0], w.Reset, e.limitedUntil)
					}
				}
				// Admissions handed out without the lock skip the
				// eviction bookkeeping, so a grant must never hand out
				// one that leaves a window with nothing.
				for _, w := range got.States() {
					if unlocked && got.Allowed && w.Remaining == 0 {
						t.Fatalf("seed %d op %d: key %d admitted without the lock with a window exhausted", seed, i, k[0])
					}
				}
				if got.Allowed && k[0] < 3 && p != &lindris {
					hotAdmitted++
					if unlocked {
						free++
					}
				}
				if s.shards[0].granted.Load() != nil {
					published++
				}
			}
		}
		s.Close()
	}
	t.Logf("%d of %d admissions of hot keys handed out without the lock", free, hotAdmitted)
	if published == 0 || free < hotAdmitted/3 {
		t.Errorf("%d of %d admissions of hot keys were handed out without the lock (grants seen published %d times); want at least a third",
			free, hotAdmitted, published)
	}
}

// TestGrantConcurrentExact admits one key from many goroutines within one
// millisecond and checks, with the clock frozen, that exactly the limit is
// admitted and that the Remaining every admission reported fits exactly one
// order: each admission of cost c reporting R took the units (R, R+c] of the
// window, and the admissions together took each unit of the window once.
// Peek runs beside them: what it reports may only shrink while the clock
// stands still. Then the clock moves past the short window and the same
// holds for what the long window has left.
func TestGrantConcurrentExact(t *testing.T) {
	p := window.Policy{Windows: []window.Window{{Length: time.Second, Limit: 9000}, {Length: 100 * time.Millisecond, Limit: 6000}}}
	var ms atomic.Int64
	start := time.UnixMilli(1_700_000_000_000)
	s, err := New(Config{Now: func() time.Time { return start.Add(time.Duration(ms.Load()) * time.Millisecond) }, Shards: 1, SweepInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	key := store.Key{7}
	ctx := context.Background()

	phase := func(name string, wantAdmitted int) {
		before, _ := s.Peek(ctx, key, &p)
		type taken struct {
			rem  [2]int
			cost int
		}
		var mu sync.Mutex
		var all []taken
		var wg sync.WaitGroup
		stop := make(chan struct{})
		peeked := make(chan error, 1)
		go func() {
			last := before.Windows[0].Remaining
			for {
				select {
				case <-stop:
					peeked <- nil
					return
				default:
				}
				d, err := s.Peek(ctx, key, &p)
				if err != nil || d.Windows[0].Remaining > last {
					peeked <- fmt.Errorf("Peek: %v, remaining %d after %d", err, d.Windows[0].Remaining, last)
					return
				}
				last = d.Windows[0].Remaining
			}
		}()
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var mine []taken
				for i := range 5000 {
					cost := 1
					if g == 3 && i%3 == 0 {
						cost = 2
					}
					d, err := s.Take(ctx, store.Request{Key: key, Policy: &p, Cost: cost})
					if err != nil {
						t.Error(err)
						return
					}
					if d.Allowed {
						mine = append(mine, taken{[2]int{d.Windows[0].Remaining, d.Windows[1].Remaining}, cost})
					}
				}
				mu.Lock()
				all = append(all, mine...)
				mu.Unlock()
			}()
		}
		wg.Wait()
		close(stop)
		if err := <-peeked; err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		after, _ := s.Peek(ctx, key, &p)
		units := 0
		for _, a := range all {
			units += a.cost
		}
		if units != wantAdmitted {
			t.Errorf("%s: admitted %d units in one millisecond, want exactly %d", name, units, wantAdmitted)
		}
		for w := range 2 {
			slices.SortFunc(all, func(a, b taken) int { return a.rem[w] - b.rem[w] })
			next := after.Windows[w].Remaining
			for _, a := range all {
				if a.rem[w] != next {
					t.Fatalf("%s: window %d: an admission reported %d remaining where %d was next: two admissions took the same units, or some were lost", name, w, a.rem[w], next)
				}
				next += a.cost
			}
			if next != before.Windows[w].Remaining {
				t.Errorf("%s: window %d: admissions account for the units down from %d, want from %d", name, w, next, before.Windows[w].Remaining)
			}
		}
	}
	// The short window binds: 6000 of 20,000.
	phase("first millisecond", 6000)
	// 101ms on, the short window is empty (its entries of 0ms leave at
	// 101ms, see window.Window) and the long one has 3000 left.
	ms.Store(101)
	phase("101ms later", 3000)
	if g := s.shards[0].granted.Load(); g != nil && g.left.Load() > 0 {
		t.Errorf("a grant of %d is still published with the windows full", g.left.Load())
	}
}

// TestGrantNeverExhaustsAWindow runs one key into its limit within one
// millisecond. Admissions handed out from a grant skip the eviction
// bookkeeping (entry.note), so a grant must never hand out an admission
// that leaves a window empty: the last few before the limit are decided
// under the lock, and the key is then not evictable until the window frees.
func TestGrantNeverExhaustsAWindow(t *testing.T) {
	p := window.Policy{Windows: []window.Window{{Length: 100 * time.Millisecond, Limit: 1000}, {Length: 10 * time.Millisecond, Limit: 300}}}
	var s *Store
	at := time.UnixMilli(1_700_000_000_000)
	unlocked := false
	s, err := New(Config{Now: func() time.Time {
		if unlocked = s.shards[0].mu.TryLock(); unlocked {
			s.shards[0].mu.Unlock()
		}
		return at
	}, Shards: 1, SweepInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	req := store.Request{Key: store.Key{9}, Policy: &p, Cost: 1}
	admitted, free := 0, 0
	for i := range 400 {
		d, err := s.Take(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if !d.Allowed {
			continue
		}
		admitted++
		if unlocked {
			free++
			if d.Windows[1].Remaining == 0 {
				t.Fatalf("request %d: the admission that emptied the window was handed out without the lock", i)
			}
		}
	}
	if admitted != 300 {
		t.Errorf("admitted %d in one millisecond, want 300", admitted)
	}
	if free < 250 {
		t.Errorf("only %d of 300 admissions handed out without the lock", free)
	}
	e := s.shards[0].logs.find(wordsOf(req.Key))
	if want := sec(at.UnixMilli() + 10); e.limitedUntil < want {
		t.Errorf("limitedUntil = %d with the second window full for 10ms, want at least %d", e.limitedUntil, want)
	}
}

// TestGrantsGrowWithTheLoad counts the grants a hot key needs: each is an
// allocation, so a key admitted 100,000 times in a millisecond should need
// about a dozen as the size doubles up to maxGrant, and a handful in the
// next millisecond, not one per few admissions.
func TestGrantsGrowWithTheLoad(t *testing.T) {
	p := window.Policy{Windows: []window.Window{{Length: time.Minute, Limit: 2e9}, {Length: time.Second, Limit: 1e9}}}
	at := time.UnixMilli(1_700_000_000_000)
	s, err := New(Config{Now: func() time.Time { return at }, Shards: 1, SweepInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	req := store.Request{Key: store.Key{3}, Policy: &p, Cost: 1}
	for ms, most := range []int{16, 6} {
		at = at.Add(time.Duration(ms) * time.Millisecond)
		grants := 0
		var last *grant
		for range 100_000 {
			if d, err := s.Take(context.Background(), req); err != nil || !d.Allowed {
				t.Fatalf("refused: %+v, %v", d, err)
			}
			if g := s.shards[0].granted.Load(); g != last && g != nil {
				grants++
				last = g
			}
		}
		if grants > most {
			t.Errorf("millisecond %d: %d grants for 100,000 admissions, want at most %d", ms, grants, most)
		}
		t.Logf("millisecond %d: %d grants", ms, grants)
	}
}
