package denycache

import (
	"encoding/binary"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ratekit/ratekit/store"
	"github.com/ratekit/ratekit/window"
)

var denyT0 = time.UnixMilli(1_700_000_000_000)

// denyPolicy numbers the policy the tests' entries are put and got under.
const denyPolicy = 1

// denyReq returns a cost-1 query for key under denyPolicy.
func denyReq(key store.Key) *Query {
	return &Query{Key: key, Policy: denyPolicy, Cost: 1}
}

// denyKey returns a key whose shard is shard in a cache of 16 or more
// shards, distinct for each n.
func denyKey(shard, n uint64) store.Key {
	var k store.Key
	binary.LittleEndian.PutUint64(k[:8], n*denyShards+shard)
	binary.LittleEndian.PutUint64(k[8:], n)
	return k
}

// denyRandomKeys returns n distinct random keys.
func denyRandomKeys(n int, seed uint64) []store.Key {
	r := rand.New(rand.NewPCG(seed, 0))
	keys := make([]store.Key, n)
	for i := range keys {
		binary.LittleEndian.PutUint64(keys[i][:8], r.Uint64())
		binary.LittleEndian.PutUint64(keys[i][8:], uint64(i))
	}
	return keys
}

// denyRejection is a Lindris rejection by the second window: 60/min with 58
// remaining and the oldest entry leaving in 40s; 2/s exhausted, freeing in
// 700ms. A third window has nothing counted.
func denyRejection() window.Decision {
	d := window.Decision{Allowed: false, Limiting: 1, RetryAfter: 700 * time.Millisecond, N: 3}
	d.Windows[0] = window.State{Limit: 60, Remaining: 58, Reset: 40 * time.Second}
	d.Windows[1] = window.State{Limit: 2, Remaining: 0, Reset: 700 * time.Millisecond}
	d.Windows[2] = window.State{Limit: 1000, Remaining: 1000, Reset: 0}
	return d
}

func TestDenyCacheGet(t *testing.T) {
	tests := []struct {
		name    string
		elapsed time.Duration // from put to get
		ok      bool
		retry   time.Duration
		resets  [3]time.Duration
	}{
		{name: "at put", elapsed: 0, ok: true, retry: 700 * time.Millisecond, resets: [3]time.Duration{40 * time.Second, 700 * time.Millisecond, 0}},
		{name: "1ns later", elapsed: time.Nanosecond, ok: true, retry: 700*time.Millisecond - time.Nanosecond, resets: [3]time.Duration{40*time.Second - time.Nanosecond, 700*time.Millisecond - time.Nanosecond, 0}},
		{name: "250ms later", elapsed: 250 * time.Millisecond, ok: true, retry: 450 * time.Millisecond, resets: [3]time.Duration{39750 * time.Millisecond, 450 * time.Millisecond, 0}},
		{name: "699ms later", elapsed: 699 * time.Millisecond, ok: true, retry: time.Millisecond, resets: [3]time.Duration{39301 * time.Millisecond, time.Millisecond, 0}},
		{name: "less than 1ms left is 1ms", elapsed: 699*time.Millisecond + 500*time.Microsecond, ok: true, retry: time.Millisecond, resets: [3]time.Duration{39300*time.Millisecond + 500*time.Microsecond, time.Millisecond, 0}},
		{name: "1ns before expiry", elapsed: 700*time.Millisecond - time.Nanosecond, ok: true, retry: time.Millisecond, resets: [3]time.Duration{39300*time.Millisecond + time.Nanosecond, time.Millisecond, 0}},
		{name: "at expiry", elapsed: 700 * time.Millisecond, ok: false},
		{name: "after expiry", elapsed: time.Minute, ok: false},
		{name: "clock went back", elapsed: -time.Nanosecond, ok: false},
	}
	key := denyKey(3, 1)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := New(100, time.Hour)
			put := denyRejection()
			c.Put(denyReq(key), &put, denyT0)
			d, ok := c.Get(denyReq(key), denyT0.Add(tc.elapsed))
			if ok != tc.ok {
				t.Fatalf("get(key, put+%v) ok = %v, want %v", tc.elapsed, ok, tc.ok)
			}
			if !ok {
				if d != (window.Decision{}) {
					t.Errorf("get(key, put+%v) on a miss = %+v, want the zero Decision", tc.elapsed, d)
				}
				if n := c.Len(); n != 0 {
					t.Errorf("after an expired get, len() = %d, want 0 (entry dropped)", n)
				}
				return
			}
			want := denyRejection()
			want.RetryAfter = tc.retry
			for i, r := range tc.resets {
				want.Windows[i].Reset = r
			}
			if d != want {
				t.Errorf("get(key, put+%v) = %+v, want %+v", tc.elapsed, d, want)
			}
			// get does not consume: the same answer again.
			if d2, ok := c.Get(denyReq(key), denyT0.Add(tc.elapsed)); !ok || d2 != d {
				t.Errorf("second get(key, put+%v) = %+v, %v; want %+v, true", tc.elapsed, d2, ok, d)
			}
		})
	}
}

func TestDenyCachePut(t *testing.T) {
	key, other := denyKey(5, 1), denyKey(5, 2)
	t.Run("an admitting decision forgets the key", func(t *testing.T) {
		c := New(10, time.Hour)
		rej := denyRejection()
		c.Put(denyReq(key), &rej, denyT0)
		c.Put(denyReq(other), &rej, denyT0)
		c.Put(denyReq(key), &window.Decision{Allowed: true, N: 1}, denyT0)
		if _, ok := c.Get(denyReq(key), denyT0); ok {
			t.Errorf("get(key) after put(Allowed) hit, want a miss")
		}
		if _, ok := c.Get(denyReq(other), denyT0); !ok {
			t.Errorf("get(other) missed, want a hit")
		}
		if n := c.Len(); n != 1 {
			t.Errorf("len() = %d, want 1", n)
		}
	})
	t.Run("a rejection without RetryAfter is not kept", func(t *testing.T) {
		c := New(10, time.Hour)
		rej := denyRejection()
		rej.RetryAfter = 0
		c.Put(denyReq(key), &rej, denyT0)
		if _, ok := c.Get(denyReq(key), denyT0); ok || c.Len() != 0 {
			t.Errorf("get after put(RetryAfter 0): ok %v, len %d; want false, 0", ok, c.Len())
		}
	})
	t.Run("a later put replaces", func(t *testing.T) {
		c := New(10, time.Hour)
		first := denyRejection()
		c.Put(denyReq(key), &first, denyT0)
		second := denyRejection()
		second.RetryAfter = 5 * time.Second
		second.Limiting = 0
		c.Put(denyReq(key), &second, denyT0.Add(time.Second))
		d, ok := c.Get(denyReq(key), denyT0.Add(3*time.Second))
		if !ok || d.RetryAfter != 3*time.Second || d.Limiting != 0 {
			t.Errorf("get = RetryAfter %v Limiting %d ok %v; want 3s, 0, true", d.RetryAfter, d.Limiting, ok)
		}
		if n := c.Len(); n != 1 {
			t.Errorf("len() = %d, want 1", n)
		}
	})
	t.Run("the caller's decision is copied", func(t *testing.T) {
		c := New(10, time.Hour)
		rej := denyRejection()
		c.Put(denyReq(key), &rej, denyT0)
		rej.Windows[0].Remaining = 7
		if d, _ := c.Get(denyReq(key), denyT0); d.Windows[0].Remaining != 58 {
			t.Errorf("get after editing the put decision: Remaining %d, want 58", d.Windows[0].Remaining)
		}
	})
}

func TestDenyCacheDisabled(t *testing.T) {
	for _, size := range []int{0, -1} {
		c := New(size, time.Hour)
		if c != nil {
			t.Errorf("New(%d, time.Hour) = %p, want nil", size, c)
		}
		rej := denyRejection()
		c.Put(denyReq(denyKey(0, 1)), &rej, denyT0)
		if _, ok := c.Get(denyReq(denyKey(0, 1)), denyT0); ok {
			t.Errorf("New(%d, time.Hour).get hit, want a miss", size)
		}
		if n := c.Len(); n != 0 {
			t.Errorf("New(%d, time.Hour).len() = %d, want 0", size, n)
		}
	}
}

// TestDenyCacheBound puts 100,000 distinct keys, each still in force, and
// checks the size is never exceeded, the cache fills, and the newest entry
// is always kept.
func TestDenyCacheBound(t *testing.T) {
	keys := denyRandomKeys(100_000, 1)
	rej := denyRejection()
	rej.RetryAfter = time.Hour
	for _, size := range []int{1, 7, 16, 17, 1000, 4096} {
		t.Run("size="+strconv.Itoa(size), func(t *testing.T) {
			c := New(size, time.Hour)
			for i, k := range keys {
				now := denyT0.Add(time.Duration(i) * time.Microsecond)
				c.Put(denyReq(k), &rej, now)
				if n := c.Len(); n > size {
					t.Fatalf("after %d puts len() = %d, want at most %d", i+1, n, size)
				}
				if _, ok := c.Get(denyReq(k), now); !ok {
					t.Fatalf("put %d: get of the key just put missed", i)
				}
			}
			if n := c.Len(); n != size {
				t.Errorf("after %d puts len() = %d, want %d (full)", len(keys), n, size)
			}
		})
	}
}

// TestDenyCacheEviction checks the order within one shard of two slots: an
// expired entry goes before a live one, then the oldest put.
func TestDenyCacheEviction(t *testing.T) {
	c := New(2*denyShards, time.Hour) // two slots per shard
	a, b, k3, k4 := denyKey(0, 1), denyKey(0, 2), denyKey(0, 3), denyKey(0, 4)
	long, short := denyRejection(), denyRejection()
	long.RetryAfter, short.RetryAfter = 10*time.Second, time.Second
	c.Put(denyReq(a), &long, denyT0)
	c.Put(denyReq(b), &short, denyT0)
	at2s := denyT0.Add(2 * time.Second)
	c.Put(denyReq(k3), &long, at2s) // b has expired: it goes, although a is older
	for _, tc := range []struct {
		name string
		key  store.Key
		want bool
	}{{"a", a, true}, {"b", b, false}, {"k3", k3, true}} {
		if _, ok := c.Get(denyReq(tc.key), at2s); ok != tc.want {
			t.Errorf("after put(k3): get(%s) ok = %v, want %v", tc.name, ok, tc.want)
		}
	}
	c.Put(denyReq(k4), &long, at2s) // nothing expired: the oldest, a, goes
	for _, tc := range []struct {
		name string
		key  store.Key
		want bool
	}{{"a", a, false}, {"k3", k3, true}, {"k4", k4, true}} {
		if _, ok := c.Get(denyReq(tc.key), at2s); ok != tc.want {
			t.Errorf("after put(k4): get(%s) ok = %v, want %v", tc.name, ok, tc.want)
		}
	}
	if n := c.Len(); n != 2 {
		t.Errorf("len() = %d, want 2", n)
	}
}

// TestDenyCacheConcurrent runs puts and gets from several goroutines on
// overlapping keys (run it with -race): the bound holds and every hit is a
// rejection no longer than the one put.
func TestDenyCacheConcurrent(t *testing.T) {
	const size, goroutines, ops = 64, 8, 20_000
	c := New(size, time.Hour)
	keys := denyRandomKeys(256, 2)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 3))
			for i := range ops {
				k := keys[r.IntN(len(keys))]
				now := denyT0.Add(time.Duration(i) * time.Millisecond)
				switch r.IntN(4) {
				case 0:
					d := denyRejection()
					d.RetryAfter = time.Duration(1+r.IntN(50)) * time.Millisecond
					c.Put(denyReq(k), &d, now)
				case 1:
					c.Put(denyReq(k), &window.Decision{Allowed: true, N: 1}, now)
				default:
					if d, ok := c.Get(denyReq(k), now); ok && (d.Allowed || d.RetryAfter < time.Millisecond || d.RetryAfter > 50*time.Millisecond) {
						t.Errorf("get hit with Allowed %v RetryAfter %v, want a rejection of 1ms to 50ms", d.Allowed, d.RetryAfter)
						return
					}
				}
				if i%1000 == 0 {
					if n := c.Len(); n > size {
						t.Errorf("len() = %d, want at most %d", n, size)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

func TestDenyCacheGetAllocs(t *testing.T) {
	c := New(1024, time.Hour)
	hit, miss := denyKey(1, 1), denyKey(1, 2)
	rej := denyRejection()
	rej.RetryAfter = time.Hour
	c.Put(denyReq(hit), &rej, denyT0)
	now := denyT0.Add(time.Second)
	for name, key := range map[string]store.Key{"hit": hit, "miss": miss} {
		if n := testing.AllocsPerRun(1000, func() { c.Get(denyReq(key), now) }); n != 0 {
			t.Errorf("get (%s): %v allocations, want 0", name, n)
		}
	}
	if n := testing.AllocsPerRun(1000, func() { c.Put(denyReq(hit), &rej, now) }); n != 0 {
		t.Errorf("put of a key already held: %v allocations, want 0", n)
	}
}

// BenchmarkDenyCache measures get, the lookup the middleware makes before
// each store call when a deny cache is configured: a hit (the key has a
// rejection in force, which get rebases to now) and a miss, each on one
// goroutine and on all of them, over 4096 keys in a cache of 65,536.
func BenchmarkDenyCache(b *testing.B) {
	const nkeys = 4096
	held := denyRandomKeys(nkeys, 4)
	absent := denyRandomKeys(nkeys, 5)
	c := New(1<<16, time.Hour)
	rej := denyRejection()
	rej.RetryAfter = time.Hour
	for _, k := range held {
		c.Put(denyReq(k), &rej, denyT0)
	}
	now := denyT0.Add(time.Second)
	for _, bc := range []struct {
		name string
		keys []store.Key
		hit  bool
	}{{"hit", held, true}, {"miss", absent, false}} {
		b.Run(bc.name+"/serial", func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, ok := c.Get(denyReq(bc.keys[i%nkeys]), now); ok != bc.hit {
					b.Fatalf("get ok = %v, want %v", ok, bc.hit)
				}
				i++
			}
		})
		b.Run(bc.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			var seed sync.Mutex
			next := 0
			b.RunParallel(func(pb *testing.PB) {
				seed.Lock()
				i := next * 997
				next++
				seed.Unlock()
				for pb.Next() {
					if _, ok := c.Get(denyReq(bc.keys[i%nkeys]), now); ok != bc.hit {
						b.Errorf("get ok = %v, want %v", ok, bc.hit)
						return
					}
					i++
				}
			})
		})
	}
}

// BenchmarkDenyCacheFill measures put of distinct keys into a full cache of
// 65,536 (each put evicts), and reports the heap held per entry.
func BenchmarkDenyCacheFill(b *testing.B) {
	const size = 1 << 16
	keys := denyRandomKeys(4*size, 6)
	rej := denyRejection()
	rej.RetryAfter = time.Hour
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c := New(size, time.Hour)
	for _, k := range keys[:size] {
		c.Put(denyReq(k), &rej, denyT0)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perEntry := float64(after.HeapAlloc-before.HeapAlloc) / float64(c.Len())
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c.Put(denyReq(keys[i%len(keys)]), &rej, denyT0)
		i++
	}
	b.ReportMetric(perEntry, "bytes/entry") // after the loop, which resets reported metrics
}

// TestDenyCacheAnswersItsPolicyAndCostOnly: a refusal answers only requests
// under the policy and at the cost it was decided for. The same key under
// another plan (whose windows may be fewer, so the decision's Limiting may
// not even index them) or at another cost asks the store, and the entry
// stays for its own.
func TestDenyCacheAnswersItsPolicyAndCostOnly(t *testing.T) {
	c := New(10, time.Hour)
	key := denyKey(0, 1)
	rej := denyRejection()
	c.Put(denyReq(key), &rej, denyT0)
	const other = denyPolicy + 1
	for _, tc := range []struct {
		name string
		req  *Query
		want bool
	}{
		{"another policy", &Query{Key: key, Policy: other, Cost: 1}, false},
		{"another cost", &Query{Key: key, Policy: denyPolicy, Cost: 2}, false},
		{"its own policy and cost", denyReq(key), true},
	} {
		if _, ok := c.Get(tc.req, denyT0); ok != tc.want {
			t.Errorf("%s: hit %v, want %v", tc.name, ok, tc.want)
		}
	}
	// A refusal under another policy replaces the entry.
	c.Put(&Query{Key: key, Policy: other, Cost: 1}, &rej, denyT0)
	if _, ok := c.Get(denyReq(key), denyT0); ok {
		t.Error("entry of the first policy still answers after a put under another")
	}
	if _, ok := c.Get(&Query{Key: key, Policy: other, Cost: 1}, denyT0); !ok {
		t.Error("entry of the second policy does not answer")
	}
}

// TestDenyCacheTTL: an entry answers for the shorter of its RetryAfter and
// the cache's TTL, then the store is asked again; what it answers still
// counts down from the RetryAfter.
func TestDenyCacheTTL(t *testing.T) {
	c := New(10, time.Second)
	key := denyKey(0, 1)
	long := denyRejection()
	long.RetryAfter = 40 * time.Second
	c.Put(denyReq(key), &long, denyT0)
	d, ok := c.Get(denyReq(key), denyT0.Add(999*time.Millisecond))
	if !ok || d.RetryAfter != 40*time.Second-999*time.Millisecond {
		t.Errorf("before the TTL: hit %v, RetryAfter %v; want a hit, 39.001s", ok, d.RetryAfter)
	}
	if _, ok := c.Get(denyReq(key), denyT0.Add(time.Second)); ok {
		t.Error("at the TTL: still answers")
	}
	// Past the TTL the refusal still holds for Refusal, counted down, until
	// its own RetryAfter.
	if n := c.Len(); n != 1 {
		t.Errorf("after the TTL: %d entries, want the refusal kept for Refusal", n)
	}
	if d, ok := c.Refusal(denyReq(key), denyT0.Add(10*time.Second)); !ok || d.RetryAfter != 30*time.Second {
		t.Errorf("Refusal 10s after the put: hit %v, RetryAfter %v; want a hit, 30s", ok, d.RetryAfter)
	}
	if _, ok := c.Refusal(&Query{Key: key, Policy: denyPolicy, Cost: 2}, denyT0.Add(10*time.Second)); ok {
		t.Error("Refusal answers another cost")
	}
	if _, ok := c.Refusal(denyReq(key), denyT0.Add(40*time.Second)); ok || c.Len() != 0 {
		t.Errorf("Refusal at the RetryAfter: hit %v, %d entries; want a miss and the entry dropped", ok, c.Len())
	}
	short := denyRejection() // RetryAfter 700ms, under the TTL
	c.Put(denyReq(key), &short, denyT0)
	if _, ok := c.Get(denyReq(key), denyT0.Add(700*time.Millisecond)); ok {
		t.Error("a RetryAfter shorter than the TTL: answers past it")
	}
}

// TestDenyCacheForget: Forget drops a key's entry whatever it was put for,
// and leaves other keys alone.
func TestDenyCacheForget(t *testing.T) {
	c := New(10, time.Hour)
	key, other := denyKey(0, 1), denyKey(0, 2)
	rej := denyRejection()
	c.Put(&Query{Key: key, Policy: denyPolicy + 1, Cost: 3}, &rej, denyT0)
	c.Put(denyReq(other), &rej, denyT0)
	c.Forget(key)
	if _, ok := c.Get(&Query{Key: key, Policy: denyPolicy + 1, Cost: 3}, denyT0); ok {
		t.Error("Get after Forget(key) hit, want a miss")
	}
	if _, ok := c.Get(denyReq(other), denyT0); !ok {
		t.Error("Get(other) after Forget(key) missed, want a hit")
	}
	var nilCache *Cache
	nilCache.Forget(key) // a disabled cache: nothing to do, no panic
}
