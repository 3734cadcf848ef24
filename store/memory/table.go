package memory

import (
	"encoding/binary"
	"math/bits"
	"unsafe"

	"github.com/ratekit/ratekit/store"
)

// table is an open-addressing hash table from K (a store.Key, or the
// fingerprint that stands for one in the small-counter table) to V, with linear
// probing and backward-shift deletion (no tombstones). Slots hold the key and
// the value side by side, so a lookup usually touches one cache line, and
// pointers returned by find and insert point into the slot array: they stay
// valid until the next insert or delete.
//
// Its capacity grows by a quarter when the table is 85 % full, so between
// growths the load stays between 68 % and 85 %; Go's map doubles, which
// leaves it anywhere from 44 % to 88 % full, and per key that slack costs
// more than the key itself. Slot indexes come from the key's hash scaled to
// the capacity (no power-of-two mask), so any capacity works.
//
// The all-zero key marks an empty slot; a real all-zero key is stored as a
// stand-in (see slotKey), which is as likely to collide with another real
// key as any two keyed hashes are.
type table[K tableKey, V any] struct {
	slots []slot[K, V]
	n     int
	seed  uint64
}

// tableKey is what a table is keyed by: a whole store.Key as two words
// (keyWords), or the one word that stands for it in the small-counter table
// (fingerprint). Both are structs of uint64s rather than byte arrays so that
// the compiler keeps them in registers: comparing generic byte arrays went
// through stack copies and cost the exact path 10 % (BenchmarkTake).
type tableKey interface{ keyWords | fingerprint }

// keyWords is a store.Key as two little-endian words.
type keyWords struct{ lo, hi uint64 }

func wordsOf(k store.Key) keyWords {
	return keyWords{binary.LittleEndian.Uint64(k[:8]), binary.LittleEndian.Uint64(k[8:])}
}

type slot[K tableKey, V any] struct {
	key K
	v   V
}

// first returns a pointer to k's first word, which every key type has: for
// a store.Key, keyed-hash output whose low bits also picked the shard.
func first[K tableKey](k *K) *uint64 { return (*uint64)(unsafe.Pointer(k)) }

// slotKey returns k, or for the all-zero key (which marks empty slots) a
// stand-in whose first word is 1<<63 | 1 and the rest zero.
func slotKey[K tableKey](k K) K {
	var zero K
	if k == zero {
		*first(&k) = 1<<63 | 1
	}
	return k
}

// home returns the slot where k's probe sequence starts: its first word
// through splitmix64's finaliser, so that every one of its bits reaches
// every index bit. It alone is hashed because it is the whole of a
// fingerprint and, in a store.Key, as random as the rest.
func (t *table[K, V]) home(k K) int {
	h := *first(&k) ^ t.seed
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	hi, _ := bits.Mul64(h, uint64(len(t.slots)))
	return int(hi)
}

// locate returns the slot holding k, or -1.
func (t *table[K, V]) locate(k K) int {
	if t.n == 0 {
		return -1
	}
	k = slotKey(k)
	var empty K
	for i := t.home(k); ; {
		switch t.slots[i].key {
		case k:
			return i
		case empty:
			return -1
		}
		if i++; i == len(t.slots) {
			i = 0
		}
	}
}

// find returns k's value, or nil.
func (t *table[K, V]) find(k K) *V {
	if i := t.locate(k); i >= 0 {
		return &t.slots[i].v
	}
	return nil
}

// insert adds k, which must not be present, with a zero value and returns
// it.
func (t *table[K, V]) insert(k K) *V {
	if 100*(t.n+1) > 85*len(t.slots) {
		t.grow()
	}
	return t.insertSlot(slotKey(k))
}

// grow rehashes into a table a quarter larger.
func (t *table[K, V]) grow() {
	old := t.slots
	t.slots = make([]slot[K, V], max(len(old)+len(old)/4, len(old)+8))
	t.n = 0
	var empty K
	for i := range old {
		if s := &old[i]; s.key != empty {
			*t.insertSlot(s.key) = s.v
		}
	}
}

// insertSlot is insert for a key already in slot form, without the growth
// check.
func (t *table[K, V]) insertSlot(k K) *V {
	i := t.home(k)
	var empty K
	for t.slots[i].key != empty {
		if i++; i == len(t.slots) {
			i = 0
		}
	}
	t.slots[i].key = k
	t.n++
	return &t.slots[i].v
}

// delete removes k if present, and reports whether it was.
func (t *table[K, V]) delete(k K) bool {
	i := t.locate(k)
	if i >= 0 {
		t.deleteAt(i)
	}
	return i >= 0
}

// deleteAt empties slot i and moves later members of its probe run back, so
// that no lookup meets a gap before its key. It reports whether a slot's
// content moved into i (a scan over the slots must look at i again).
func (t *table[K, V]) deleteAt(i int) bool {
	moved := false
	c := len(t.slots)
	hole := i
	var empty K
	for j := i + 1; ; j++ {
		if j == c {
			j = 0
		}
		s := &t.slots[j]
		if s.key == empty {
			break
		}
		// s may fill the hole unless its home lies cyclically in (hole, j].
		h := t.home(s.key)
		if (j > hole && (h <= hole || h > j)) || (j < hole && h <= hole && h > j) {
			t.slots[hole] = *s
			if hole == i {
				moved = true
			}
			hole = j
		}
	}
	t.slots[hole] = slot[K, V]{}
	t.n--
	return moved
}

// len returns the number of keys held.
func (t *table[K, V]) len() int { return t.n }

// each calls f for every key from slot start on, wrapping, until f returns
// false. If f asks to delete the key it was given (del), the slot is emptied
// and re-examined, since deletion may move a later key into it; a key may
// then be visited twice, never skipped.
func (t *table[K, V]) each(start int, f func(k K, v *V) (del, more bool)) {
	c := len(t.slots)
	if c == 0 || t.n == 0 {
		return
	}
	start %= c
	var empty K
	for visited := 0; visited < c; {
		i := (start + visited) % c
		s := &t.slots[i]
		if s.key == empty {
			visited++
			continue
		}
		del, more := f(s.key, &s.v)
		if del && t.deleteAt(i) {
			if !more {
				return
			}
			continue
		}
		visited++
		if !more {
			return
		}
	}
}
