package memory_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ratekit/ratekit/store"
	"github.com/ratekit/ratekit/store/memory"
	"github.com/ratekit/ratekit/window"
)

// tickingClock returns a Now func that advances by step on every read, so a
// benchmark sees time pass at a chosen rate of requests per second without
// reading the wall clock.
func tickingClock(step time.Duration) func() time.Time {
	var n atomic.Int64
	start := time.UnixMilli(1_700_000_000_000)
	return func() time.Time { return start.Add(time.Duration(n.Add(1)) * step) }
}

func keys(n int) []store.Key {
	ks := make([]store.Key, n)
	for i := range ks {
		ks[i] = keyN(uint64(i))
	}
	return ks
}

// BenchmarkTake measures one decision of the default policy (60/min + 2/s,
// exact) in the memory store: admitted and rejected paths, one key and
// many, serial and parallel.
func BenchmarkTake(b *testing.B) {
	p := window.Default()
	ctx := context.Background()
	run := func(b *testing.B, now func() time.Time, nkeys int, parallel, shuffled bool) {
		s := newStore(b, memory.Config{Now: now})
		ks := keys(nkeys)
		// Warm: every key exists. One key gets a full ring (60 entries);
		// with many keys one pass creates them, and rings grow as the
		// benchmark sweeps (a full ring needs a minute of fake time).
		passes := 1
		if nkeys == 1 {
			passes = 60
		}
		for range passes {
			for _, k := range ks {
				s.Take(ctx, store.Request{Key: k, Policy: &p, Cost: 1})
			}
		}
		if shuffled {
			rand.New(rand.NewPCG(1, 2)).Shuffle(len(ks), func(i, j int) { ks[i], ks[j] = ks[j], ks[i] })
		}
		b.ReportAllocs()
		b.ResetTimer()
		if !parallel {
			i := 0
			for b.Loop() {
				s.Take(ctx, store.Request{Key: ks[i], Policy: &p, Cost: 1})
				if i++; i == len(ks) {
					i = 0
				}
			}
			return
		}
		var next atomic.Uint64
		b.RunParallel(func(pb *testing.PB) {
			i := int(next.Add(7919)) % len(ks)
			for pb.Next() {
				s.Take(ctx, store.Request{Key: ks[i], Policy: &p, Cost: 1})
				if i++; i == len(ks) {
					i = 0
				}
			}
		})
	}
	// Admitted: the clock moves 1.001s per decision on one key, so every
	// request passes and the ring stays full at 60 entries. (At exactly 1s
	// the oldest of 60 entries would still count, see window.Window, and
	// one request in 61 would be refused.)
	step := time.Second + time.Millisecond
	b.Run("admitted/keys=1/serial", func(b *testing.B) { run(b, tickingClock(step), 1, false, false) })
	b.Run("admitted/keys=1/parallel", func(b *testing.B) { run(b, tickingClock(step), 1, true, false) })
	// Many keys visited round robin at 1µs per decision: each of 100,000
	// keys is seen every 0.1s, so about one request in five passes.
	b.Run("keys=100000/parallel", func(b *testing.B) { run(b, tickingClock(time.Microsecond), 100_000, true, false) })
	// Mission configuration: 1,000,000 keys round robin, each seen about
	// once a second, so every request passes with a full ring.
	b.Run("mission/keys=1000000/serial", func(b *testing.B) { run(b, tickingClock(time.Microsecond), 1_000_000, false, false) })
	// The same, visited in another order than the keys were created in.
	// Round robin in creation order visits the logs in the order they were
	// allocated, so the hardware prefetcher streams them and only the table
	// slot is a random memory access; real clients arrive in no such
	// order, and then the log is a second one.
	b.Run("mission/keys=1000000/shuffled/serial", func(b *testing.B) {
		run(b, tickingClock(time.Microsecond), 1_000_000, false, true)
	})
	// Rejected: the clock stands still on one key whose second is full.
	b.Run("rejected/keys=1/serial", func(b *testing.B) { run(b, func() time.Time { return time.UnixMilli(1) }, 1, false, false) })
	b.Run("rejected/keys=1/parallel", func(b *testing.B) { run(b, func() time.Time { return time.UnixMilli(1) }, 1, true, false) })
}

// BenchmarkTakeHot measures one key admitted from every goroutine on the
// wall clock under limits it never reaches (2e9/min + 1e9/s, as in the
// benchmarks module's onekey scenario): at such limits admissions in one
// millisecond merge, and a hot key's are handed out from grants (see
// grant.go) instead of one at a time under the shard's lock.
func BenchmarkTakeHot(b *testing.B) {
	p := window.Policy{Windows: []window.Window{{Length: time.Minute, Limit: 2e9}, {Length: time.Second, Limit: 1e9}}}
	ctx := context.Background()
	run := func(b *testing.B, parallel bool) {
		s := newStore(b, memory.Config{})
		req := store.Request{Key: keyN(1), Policy: &p, Cost: 1}
		b.ReportAllocs()
		if !parallel {
			for b.Loop() {
				s.Take(ctx, req)
			}
			return
		}
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				s.Take(ctx, req)
			}
		})
	}
	b.Run("keys=1/serial", func(b *testing.B) { run(b, false) })
	b.Run("keys=1/parallel", func(b *testing.B) { run(b, true) })
}

// BenchmarkBytesPerKey measures the heap held per tracked key under the
// default policy with a full ring (60 entries), reported as bytes/key.
func BenchmarkBytesPerKey(b *testing.B) {
	for _, alg := range []window.Algorithm{window.SlidingLog, window.SlidingCounter} {
		b.Run(alg.String(), func(b *testing.B) {
			p := window.Default()
			p.Algorithm = alg
			const n = 50_000
			var perKey float64
			for b.Loop() {
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				s, _ := memory.New(memory.Config{Now: tickingClock(time.Second / n), MaxKeys: 2 * n})
				ks := keys(n)
				for range 60 {
					for _, k := range ks {
						s.Take(context.Background(), store.Request{Key: k, Policy: &p, Cost: 1})
					}
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				perKey = float64(after.HeapAlloc-before.HeapAlloc-uint64(n*len(store.Key{}))) / n
				runtime.KeepAlive(ks)
				s.Close()
			}
			b.ReportMetric(perKey, "bytes/key")
		})
	}
}

// BenchmarkTakeNewKeyFull measures a flood of new keys, one request each,
// into a store already full of keys that are live (inside their minute) but
// not limited: every decision must evict one, as under an identity flood.
// The clock moves 1µs per decision, so no key goes idle. An error (the
// store refusing room) fails the benchmark.
func BenchmarkTakeNewKeyFull(b *testing.B) {
	p := window.Default()
	ctx := context.Background()
	for _, maxKeys := range []int{10_000, 1 << 20} {
		run := func(b *testing.B, parallel bool) {
			s := newStore(b, memory.Config{Now: tickingClock(time.Microsecond), MaxKeys: maxKeys})
			for i := range maxKeys {
				s.Take(ctx, store.Request{Key: keyN(uint64(i)), Policy: &p, Cost: 1})
			}
			var next atomic.Uint64
			next.Store(uint64(maxKeys))
			var failed atomic.Bool
			b.ReportAllocs()
			b.ResetTimer()
			if !parallel {
				for b.Loop() {
					if _, err := s.Take(ctx, store.Request{Key: keyN(next.Add(1)), Policy: &p, Cost: 1}); err != nil {
						failed.Store(true)
					}
				}
			} else {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := s.Take(ctx, store.Request{Key: keyN(next.Add(1)), Policy: &p, Cost: 1}); err != nil {
							failed.Store(true)
						}
					}
				})
			}
			if failed.Load() {
				b.Fatal("a new key was refused room")
			}
		}
		name := fmt.Sprintf("maxkeys=%d", maxKeys)
		b.Run(name+"/serial", func(b *testing.B) { run(b, false) })
		b.Run(name+"/parallel", func(b *testing.B) { run(b, true) })
	}
}
