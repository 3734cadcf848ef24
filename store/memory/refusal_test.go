package memory_test

import (
	"context"
	"errors"
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
	// The entry of t=0 counts in the second until t=1001ms (see
	// window.Window), in the minute until t=60001ms.
	for _, at := range []time.Duration{20, 21, 500, 999, 1000} {
		clk.Set(storetest.Start.Add(at * time.Millisecond))
		d := takeAt(t, s, k, &p)
		wait := (1001 - at) * time.Millisecond
		if d.Allowed || d.RetryAfter != wait || d.Limiting != 1 ||
			d.Windows[1] != (window.State{Limit: 2, Remaining: 0, Reset: wait}) ||
			d.Windows[0] != (window.State{Limit: 60, Remaining: 58, Reset: time.Minute + time.Millisecond - at*time.Millisecond}) {
			t.Fatalf("t=%dms: %+v; want refused by the second, retry and reset %v, 58 left in the minute", at, d, wait)
		}
	}
	clk.Set(storetest.Start.Add(1001 * time.Millisecond))
	if d := takeAt(t, s, k, &p); !d.Allowed || d.Windows[0].Remaining != 57 {
		t.Fatalf("t=1001ms, when the first entry leaves: %+v; want admitted, 57 left", d)
	}
	if d := takeAt(t, s, k, &p); d.Allowed || d.RetryAfter != 10*time.Millisecond {
		t.Fatalf("t=1001ms again: %+v; want refused until the entry of t=10ms leaves", d)
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
	// the first two have left, at 1011 ms. The refusal published at 21 ms
	// would say 1001 ms.
	if d := takeAt(t, s, k, &p); d.Allowed || d.RetryAfter != 988*time.Millisecond {
		t.Fatalf("t=23 after an admission under another policy: %+v; want refused, retry 988ms", d)
	}
	takeAt(t, s, k, &p) // refused again
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
		if d := ask(2); d.Allowed || d.RetryAfter != 901*time.Millisecond {
			t.Fatalf("cost 2: %+v; want refused for 901ms", d)
		}
		if d := ask(1); d.Allowed || d.RetryAfter != 901*time.Millisecond {
			t.Fatalf("cost 1: %+v; want refused for 901ms", d)
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per pair of refusals; want 0", allocs)
	}
}

// TestHotRefusalOfAnIdleKeyEvicted covers a key whose refusal outlives its
// expiry: admitted under a one-second policy (idle after a second), then
// refused under a one-minute one. Once idle it may be evicted, and its
// refusal must go with it: the key then starts afresh.
func TestHotRefusalOfAnIdleKeyEvicted(t *testing.T) {
	clk := storetest.NewClock(storetest.Start)
	s := newStore(t, memory.Config{Now: clk.Now, Shards: 1, MaxKeys: 1, SweepInterval: time.Hour})
	short := window.Policy{Windows: []window.Window{{Length: time.Second, Limit: 100}}}
	long := window.Policy{Windows: []window.Window{{Length: time.Minute, Limit: 1}}}
	k := keyN(1)
	takeAt(t, s, k, &short)
	takeAt(t, s, k, &long)
	if d := takeAt(t, s, k, &long); d.Allowed { // published until a minute
		t.Fatalf("second refusal: %+v", d)
	}
	clk.Advance(2 * time.Second)
	if d := takeAt(t, s, keyN(2), &short); !d.Allowed || s.Evictions() != 1 {
		t.Fatalf("new key into a full store of idle keys: %+v, %d evictions; want admitted, 1", d, s.Evictions())
	}
	clk.Advance(time.Millisecond)
	// k comes back in place of the newcomer (admitted far below its limit,
	// so evictable), as a fresh key.
	if d := takeAt(t, s, k, &long); !d.Allowed || s.Evictions() != 2 {
		t.Fatalf("evicted key under the policy it was refused by: %+v, %d evictions; want a fresh key, 2", d, s.Evictions())
	}
}

// TestHotRefusalKeepsItsKeyLimited checks that a refusal put back after a
// refusal under another policy keeps the key limited as long as it holds:
// otherwise the other policy's shorter wait would make the key evictable
// while its refusals are still being answered, and evicting it would forget
// two admissions.
func TestHotRefusalKeepsItsKeyLimited(t *testing.T) {
	clk := storetest.NewClock(storetest.Start)
	s := newStore(t, memory.Config{Now: clk.Now, Shards: 1, MaxKeys: 1, SweepInterval: time.Hour})
	tenSec := window.Policy{Windows: []window.Window{{Length: 10 * time.Second, Limit: 2}}}
	oneSec := window.Policy{Windows: []window.Window{{Length: time.Second, Limit: 2}}}
	k := keyN(1)
	at := func(ms int) { clk.Set(storetest.Start.Add(time.Duration(ms) * time.Millisecond)) }
	for _, ms := range []int{0, 500, 600, 601} { // admitted, admitted, refused, refused
		at(ms)
		takeAt(t, s, k, &tenSec)
	}
	at(602)
	takeAt(t, s, k, &oneSec) // refused, with a wait of 398 ms
	at(1500)
	if d := takeAt(t, s, k, &tenSec); d.Allowed {
		t.Fatalf("10 s policy at 1.5 s: %+v; want refused", d)
	}
	if _, err := s.Take(context.Background(), store.Request{Key: keyN(2), Policy: &tenSec, Cost: 1}); !errors.Is(err, store.ErrFull) {
		t.Fatalf("new key at 1.5 s: error %v; want ErrFull, the only key being limited", err)
	}
}

// raceFixture is a key under 3/s with admissions at 0 and 100 ms and a
// cost-2 refusal published at 201 ms, on a store whose clock is hook, and a
// window.Log fed the same requests to say what clock order requires.
type raceFixture struct {
	t   *testing.T
	clk *storetest.Clock
	s   *memory.Store
	p   window.Policy
	ref window.Log
}

func newRaceFixture(t *testing.T, clk *storetest.Clock, hook func() time.Time) *raceFixture {
	f := &raceFixture{t: t, clk: clk, p: window.Policy{Windows: []window.Window{{Length: time.Second, Limit: 3}}}}
	f.s = newStore(t, memory.Config{Now: hook, Shards: 1, SweepInterval: time.Hour})
	for _, step := range []struct{ ms, cost int }{{0, 1}, {100, 1}, {200, 2}, {201, 2}} {
		f.at(step.ms)
		f.ask(step.cost)
		f.ref.TakeAt(clk.Now(), &f.p, step.cost)
	}
	return f
}

// at sets the clock to ms after the start.
func (f *raceFixture) at(ms int) {
	f.clk.Set(storetest.Start.Add(time.Duration(ms) * time.Millisecond))
}

// ask decides a request of the given cost.
func (f *raceFixture) ask(cost int) window.Decision {
	d, err := f.s.Take(context.Background(), store.Request{Key: keyN(1), Policy: &f.p, Cost: cost})
	if err != nil {
		f.t.Error(err)
	}
	return d
}

// want is what clock order requires of a request of the given cost now,
// recorded in the reference.
func (f *raceFixture) want(cost int) window.Decision { return f.ref.TakeAt(f.clk.Now(), &f.p, cost) }

// TestHotRefusalInClockOrder forces the interleaving a lock-free reader
// must survive: it finds the published refusal, then, before it reads the
// clock, an admission of the key at another cost lands. Its answer must
// count that admission, as the lock path's would.
func TestHotRefusalInClockOrder(t *testing.T) {
	clk := storetest.NewClock(storetest.Start)
	armed := make(chan struct{}, 1)
	blocked, release := make(chan struct{}), make(chan struct{})
	now := func() time.Time {
		select {
		case <-armed:
			close(blocked)
			<-release
		default:
		}
		return clk.Now()
	}
	f := newRaceFixture(t, clk, now)
	f.at(500)
	armed <- struct{}{}
	got := make(chan window.Decision)
	go func() { got <- f.ask(2) }()
	<-blocked // the reader holds the published refusal and is reading the clock
	admitted := make(chan window.Decision)
	go func() { admitted <- f.ask(1) }()
	select {
	case d := <-admitted:
		if !d.Allowed {
			t.Fatalf("cost 1 at 500ms: %+v; want admitted", d)
		}
	case <-time.After(10 * time.Second):
		close(release) // let both finish before the store closes
		<-got
		<-admitted
		t.Fatal("the reader read the clock under the shard's lock: the refusal was not answered lock-free")
	}
	f.want(1)
	f.at(600)
	close(release)
	if d, want := <-got, f.want(2); d != want {
		t.Fatalf("cost 2 read at 600ms after an admission at 500ms: %+v; in clock order: %+v", d, want)
	}
}

// TestRefusalsInPassingAllocateNothing: many limited keys refused in turn,
// none twice running, publish nothing, so refusing them allocates nothing.
func TestRefusalsInPassingAllocateNothing(t *testing.T) {
	clk := storetest.NewClock(storetest.Start)
	s := newStore(t, memory.Config{Now: clk.Now, Shards: 1})
	p := window.Policy{Windows: []window.Window{{Length: time.Minute, Limit: 1}}}
	const n = 64
	for i := range n {
		takeAt(t, s, keyN(uint64(i)), &p)
	}
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		if d := takeAt(t, s, keyN(uint64(i%n)), &p); d.Allowed {
			t.Fatalf("key %d admitted twice in a minute", i%n)
		}
		i++
	})
	if allocs != 0 {
		t.Fatalf("%.2f allocations per refusal; want 0", allocs)
	}
}

// TestHotRefusalWithdrawnBeforeTheClock forces the other interleaving: a
// decision on the key under the lock has read the clock (500 ms) and is about
// to admit when a lock-free reader comes, with a later clock (600 ms). The
// refusal must be gone by then, so that the reader waits for the lock and
// counts the admission, which comes first in clock order.
func TestHotRefusalWithdrawnBeforeTheClock(t *testing.T) {
	clk := storetest.NewClock(storetest.Start)
	armed := make(chan struct{}, 1)
	clocked, release := make(chan struct{}), make(chan struct{})
	now := func() time.Time {
		at := clk.Now()
		select {
		case <-armed:
			close(clocked)
			<-release
		default:
		}
		return at
	}
	f := newRaceFixture(t, clk, now)
	f.at(500)
	armed <- struct{}{}
	admitted := make(chan window.Decision)
	go func() { admitted <- f.ask(1) }()
	<-clocked // the admission holds the lock and has read 500 ms
	f.want(1)
	f.at(600)
	got := make(chan window.Decision)
	go func() { got <- f.ask(2) }()
	// Give a reader that wrongly finds the refusal time to answer from it;
	// a correct one is waiting for the lock.
	time.Sleep(50 * time.Millisecond)
	close(release)
	if d := <-admitted; !d.Allowed {
		t.Fatalf("cost 1 at 500ms: %+v; want admitted", d)
	}
	if d, want := <-got, f.want(2); d != want {
		t.Fatalf("cost 2 at 600ms, after an admission that read 500ms: %+v; in clock order: %+v", d, want)
	}
}
