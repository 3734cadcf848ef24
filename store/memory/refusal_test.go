package memory_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ratekit/ratekit/store"
	"github.com/ratekit/ratekit/store/memory"
	"github.com/ratekit/ratekit/store/storetest"
	"github.com/ratekit/ratekit/window"
)

// takeAt decides one request of cost 1 for k under p at the clock's instant.
func takeAt(t *testing.T, s *memory.Store, k store.Key, p *window.Policy) window.Decision {
	t.Helper()
	d, err := s.Take(context.Background(), store.Request{Key: k, Policy: p, Cost: 1})
	if err != nil {
		t.Fatalf("Take: %v", err)
	}
	return d
}

// TestHotRefusalCountsDown checks the published refusal of a hot key (one
// refused twice in a row) against the numbers worked out by hand: Reset and
// RetryAfter count down with the clock, and the refusal lapses at the exact
// millisecond the oldest entry leaves the second.
func TestHotRefusalCountsDown(t *testing.T) {
	clk := storetest.NewClock(storetest.Start)
	s := newStore(t, memory.Config{Now: clk.Now, Shards: 1})
	p := window.Default() // 60/min + 2/s
	k := keyN(1)
	takeAt(t, s, k, &p) // t=0
	clk.Advance(10 * time.Millisecond)
	takeAt(t, s, k, &p) // t=10
	for _, at := range []time.Duration{20, 21, 500, 999} {
		clk.Set(storetest.Start.Add(at * time.Millisecond))
		d := takeAt(t, s, k, &p)
		wait := (1000 - at) * time.Millisecond
		if d.Allowed || d.RetryAfter != wait || d.Limiting != 1 ||
			d.Windows[1] != (window.State{Limit: 2, Remaining: 0, Reset: wait}) ||
			d.Windows[0] != (window.State{Limit: 60, Remaining: 58, Reset: time.Minute - at*time.Millisecond}) {
			t.Fatalf("t=%dms: %+v; want refused by the second, retry and reset %v, 58 left in the minute", at, d, wait)
		}
	}
	clk.Set(storetest.Start.Add(time.Second))
	if d := takeAt(t, s, k, &p); !d.Allowed || d.Windows[0].Remaining != 57 {
		t.Fatalf("t=1000ms, when the first entry leaves: %+v; want admitted, 57 left", d)
	}
	if d := takeAt(t, s, k, &p); d.Allowed || d.RetryAfter != 10*time.Millisecond {
		t.Fatalf("t=1000ms again: %+v; want refused until the entry of t=10ms leaves", d)
	}
}

// TestHotRefusalWithdrawn checks that whatever changes a hot key under the
// lock withdraws its published refusal: an admission under another policy
// (the same key should keep one policy, but nothing stops a caller) and
// Reset.
func TestHotRefusalWithdrawn(t *testing.T) {
	clk := storetest.NewClock(storetest.Start)
	s := newStore(t, memory.Config{Now: clk.Now, Shards: 1})
	p := window.Policy{Windows: []window.Window{{Length: time.Second, Limit: 2}}}
	wide := window.Policy{Windows: []window.Window{{Length: time.Second, Limit: 100}}}
	k := keyN(1)
	takeAt(t, s, k, &p) // t=0
	clk.Advance(10 * time.Millisecond)
	takeAt(t, s, k, &p) // t=10
	clk.Advance(10 * time.Millisecond)
	takeAt(t, s, k, &p) // t=20, refused
	clk.Advance(time.Millisecond)
	takeAt(t, s, k, &p) // t=21, refused again: published
	clk.Advance(time.Millisecond)
	if d := takeAt(t, s, k, &wide); !d.Allowed {
		t.Fatalf("t=22 under 100/s: %+v; want admitted", d)
	}
	clk.Advance(time.Millisecond)
	// Three entries (0, 10, 22) against a limit of 2: the request fits once
	// the first two have left, at 1010 ms. The refusal published at 21 ms
	// would say 1000 ms.
	if d := takeAt(t, s, k, &p); d.Allowed || d.RetryAfter != 987*time.Millisecond {
		t.Fatalf("t=23 after an admission under another policy: %+v; want refused, retry 987ms", d)
	}
	takeAt(t, s, k, &p) // refused again: published anew
	if err := s.Reset(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	if d := takeAt(t, s, k, &p); !d.Allowed || d.Windows[0].Remaining != 1 {
		t.Fatalf("after Reset: %+v; want a fresh key", d)
	}
}

// TestHotRefusalsUnderContention has several goroutines ask for one key at
// each instant of a clock stepping 5 ms at a time, so that published
// refusals are read while the lock path publishes, withdraws and admits,
// and compares every answer with a window.Log fed the same instants: each
// instant must admit as many as the log does and refuse the rest with
// exactly the log's refusal. Run under -race it also checks that the lock-free
// reads are properly synchronised.
func TestHotRefusalsUnderContention(t *testing.T) {
	const workers, steps = 4, 9000 // 45 s: the minute's 60 are used up at 30 s
	clk := storetest.NewClock(storetest.Start)
	s := newStore(t, memory.Config{Now: clk.Now})
	p := window.Default()
	k := keyN(7)
	var ref window.Log
	got := make([]window.Decision, workers)
	admitted := 0
	for step := range steps {
		now := clk.Now()
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				d, err := s.Take(context.Background(), store.Request{Key: k, Policy: &p, Cost: 1})
				if err != nil {
					t.Error(err)
				}
				got[w] = d
			})
		}
		wg.Wait()
		var want []window.Decision
		for range workers {
			want = append(want, ref.TakeAt(now, &p, 1))
		}
		n := 0
		for _, d := range got {
			if d.Allowed {
				n++
			}
		}
		wantN := 0
		for _, d := range want {
			if d.Allowed {
				wantN++
			}
		}
		if n != wantN {
			t.Fatalf("step %d: %d admitted, the log admits %d", step, n, wantN)
		}
		for _, d := range got {
			if !d.Allowed && d != want[workers-1] {
				t.Fatalf("step %d: refusal %+v, the log refuses with %+v", step, d, want[workers-1])
			}
		}
		admitted += n
		clk.Advance(5 * time.Millisecond)
	}
	if admitted != 60 {
		t.Fatalf("%d admitted in 45 s of constant demand; want 60 (2 a second for 30 s)", admitted)
	}
}

// TestHotRefusalAskedTwoWays checks that a key refused under two costs in
// turn keeps the refusal published for the first instead of allocating a new
// one per request, and that both are still answered exactly.
func TestHotRefusalAskedTwoWays(t *testing.T) {
	clk := storetest.NewClock(storetest.Start)
	s := newStore(t, memory.Config{Now: clk.Now, Shards: 1})
	p := window.Policy{Windows: []window.Window{{Length: time.Second, Limit: 2}}}
	k := keyN(1)
	ctx := context.Background()
	takeAt(t, s, k, &p)
	takeAt(t, s, k, &p)
	ask := func(cost int) window.Decision {
		d, err := s.Take(ctx, store.Request{Key: k, Policy: &p, Cost: cost})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	ask(1)
	ask(1) // published for cost 1
	clk.Advance(100 * time.Millisecond)
	allocs := testing.AllocsPerRun(100, func() {
		if d := ask(2); d.Allowed || d.RetryAfter != 900*time.Millisecond {
			t.Fatalf("cost 2: %+v; want refused for 900ms", d)
		}
		if d := ask(1); d.Allowed || d.RetryAfter != 900*time.Millisecond {
			t.Fatalf("cost 1: %+v; want refused for 900ms", d)
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per pair of refusals; want 0", allocs)
	}
}
