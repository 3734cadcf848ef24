package memory

import (
	"math/rand/v2"
	"testing"

	"github.com/ratekit/ratekit/store"
)

// TestTableMatchesMap runs random inserts, lookups, deletes and sweeps on a
// table and on a Go map side by side, with keys drawn from a small space
// (so that deletes hit and probe runs collide and wrap) including the
// all-zero key and its stand-in (one key by design), and checks they always
// agree.
func TestTableMatchesMap(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 7))
		var tb table[int]
		tb.seed = rng.Uint64()
		ref := map[store.Key]int{}
		key := func() store.Key {
			switch rng.IntN(20) {
			case 0:
				return store.Key{}
			case 1:
				return standIn
			}
			var k store.Key
			k[rng.IntN(16)] = byte(rng.IntN(40))
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
				seen := map[store.Key]bool{}
				tb.each(rng.IntN(64), func(k store.Key, v *int) (bool, bool) {
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
	var tb table[uint64]
	var k store.Key
	for i := range 50_000 {
		k[0], k[1], k[2] = byte(i), byte(i>>8), byte(i>>16)
		*tb.insert(k) = uint64(i)
		if i > 100 {
			if load := float64(tb.len()) / float64(len(tb.slots)); load < 0.6 || load > 0.85 {
				t.Fatalf("after %d keys load is %.2f, want 0.60-0.85", tb.len(), load)
			}
		}
	}
}
