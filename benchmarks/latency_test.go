package benchmarks_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkMemoryLatency measures the machine rather than a limiter: the
// time of one load whose address depends on the previous load, over a
// buffer that fits in the last-level cache (8 MiB), one the size of the
// mission's table of a million clients (64 MiB; the table is about 42 MB)
// and one the size of that table and the clients' logs together (256 MiB;
// about 190 MB). The loads follow one random cycle through every cache line
// of the buffer, so neither the prefetcher nor the out-of-order core can
// run ahead; ns/op is the latency of one load.
//
// The mission keeps a million clients' state, far more than any cache, and
// visits it in an order the prefetcher cannot follow, so every request pays
// at least one load of the 64 MiB kind, and in production (clients in no
// particular order) a second one for the log: those figures are the floor
// under the mission's ns/op for any limiter that keeps per-client state,
// whatever its code does.
func BenchmarkMemoryLatency(b *testing.B) {
	for _, mib := range []int{8, 64, 256} {
		b.Run(fmt.Sprintf("MiB=%d", mib), func(b *testing.B) {
			const words = 8 // one 64-byte cache line of uint64s
			lines := mib << 20 / 64
			buf := make([]uint64, lines*words)
			perm := rand.New(rand.NewPCG(1, 2)).Perm(lines)
			for i, l := range perm {
				buf[l*words] = uint64(perm[(i+1)%lines] * words)
			}
			p := uint64(perm[0] * words)
			for range lines { // one untimed lap, so every page is mapped before timing
				p = buf[p]
			}
			for b.Loop() {
				p = buf[p]
			}
			if p%words != 0 {
				b.Fatal("the cycle left the cache-line starts") // also keeps p live
			}
		})
	}
}
