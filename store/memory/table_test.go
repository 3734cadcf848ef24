package memory

import (
	"math/rand/v2"
	"testing"
	"unsafe"
)

// TestTableMatchesMap runs random inserts, lookups, deletes and sweeps on a
// table and on a Go map side by side, with keys drawn from a small space
// (so that deletes hit and probe runs collide and wrap) including the
// all-zero key and its stand-in (one key by design), and checks they always
// agree.
func TestTableMatchesMap(t *testing.T) {
	t.Run("key", func(t *testing.T) { testTableMatchesMap[keyWords](t) })
	t.Run("fingerprint", func(t *testing.T) { testTableMatchesMap[fingerprint](t) })
}

func testTableMatchesMap[K tableKey](t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 7))
		var tb table[K, int]
		tb.seed = rng.Uint64()
		ref := map[K]int{}
		key := func() K {
			var k K
			switch rng.IntN(20) {
			case 0:
				return k
			case 1:
				return slotKey(k) // the stand-in
			}
			// One small word anywhere: keys share first words (so probe
			// runs collide and wrap), and differ only in the second.
			w := unsafe.Slice(first(&k), unsafe.Sizeof(k)/8)
			w[rng.IntN(len(w))] = uint64(rng.IntN(40))
			return k
		}
		for op := range 3000 {
			k := key()
			rk := slotKey(k) // the zero key and its stand-in are one key by design
			switch r := rng.IntN(10); {
			case r < 4:
				if p := tb.find(k); p != nil {
					*p = op
				} else {
					*tb.insert(k) = op
				}
				ref[rk] = op
			case r < 7:
				tb.delete(k)
				delete(ref, rk)
			case r < 8:
				// Sweep: delete every key whose value is odd.
				seen := map[K]bool{}
				tb.each(rng.IntN(64), func(k K, v *int) (bool, bool) {
					seen[k] = true
					return *v%2 == 1, true
				})
				for k, v := range ref {
					if !seen[k] {
						t.Fatalf("seed %d op %d: each skipped key %x", seed, op, k)
					}
					if v%2 == 1 {
						delete(ref, k)
					}
				}
			default:
				p := tb.find(k)
				v, ok := ref[rk]
				if (p != nil) != ok || (ok && *p != v) {
					t.Fatalf("seed %d op %d: find(%x) = %v, map has %v %v", seed, op, k, p, v, ok)
				}
			}
			if tb.len() != len(ref) {
				t.Fatalf("seed %d op %d: len %d, map %d", seed, op, tb.len(), len(ref))
			}
		}
		for k, v := range ref {
			if p := tb.find(k); p == nil || *p != v {
				t.Fatalf("seed %d: key %x lost", seed, k)
			}
		}
	}
}

// TestTableLoadStaysHigh checks the growth policy the memory figures rely
// on: at every size, the table is at least 60 % full.
func TestTableLoadStaysHigh(t *testing.T) {
	var tb table[keyWords, uint64]
	var k keyWords
	for i := range 50_000 {
		k.lo = uint64(i)
		*tb.insert(k) = uint64(i)
		if i > 100 {
			if load := float64(tb.len()) / float64(len(tb.slots)); load < 0.6 || load > 0.85 {
				t.Fatalf("after %d keys load is %.2f, want 0.60-0.85", tb.len(), load)
			}
		}
	}
}
