package memory

import (
	"encoding/binary"
	"math/bits"

	"github.com/ratekit/ratekit/store"
)

// table is an open-addressing hash table from store.Key to V, with linear
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
// The all-zero key marks an empty slot; a real all-zero key is stored as
// zeroKey's stand-in (see slotKey), which is as likely to collide with
// another real key as any two 128-bit keyed hashes are.
type table[V any] struct {
	slots []slot[V]
	n     int
	seed  uint64
}

type slot[V any] struct {
	key store.Key
	v   V
}

// standIn replaces the all-zero key, which marks empty slots.
var standIn = store.Key{0: 0x80, 15: 0x01}

func slotKey(k store.Key) store.Key {
	if k == (store.Key{}) {
		return standIn
	}
	return k
}

// home returns the slot where k's probe sequence starts.
func (t *table[V]) home(k store.Key) int {
	h := binary.LittleEndian.Uint64(k[8:]) ^ bits.RotateLeft64(binary.LittleEndian.Uint64(k[:8]), 31) ^ t.seed
	// splitmix64's finaliser: every key bit reaches every index bit.
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	hi, _ := bits.Mul64(h, uint64(len(t.slots)))
	return int(hi)
}

// locate returns the slot holding k, or -1.
func (t *table[V]) locate(k store.Key) int {
	if t.n == 0 {
		return -1
	}
	k = slotKey(k)
	for i := t.home(k); ; {
		switch t.slots[i].key {
		case k:
			return i
		case store.Key{}:
			return -1
		}
		if i++; i == len(t.slots) {
			i = 0
		}
	}
}

// find returns k's value, or nil.
func (t *table[V]) find(k store.Key) *V {
	if i := t.locate(k); i >= 0 {
		return &t.slots[i].v
	}
	return nil
}

// insert adds k, which must not be present, with a zero value and returns
// it.
func (t *table[V]) insert(k store.Key) *V {
	if 100*(t.n+1) > 85*len(t.slots) {
		t.grow()
	}
	return t.insertSlot(slotKey(k))
}

// grow rehashes into a table a quarter larger.
func (t *table[V]) grow() {
	old := t.slots
	t.slots = make([]slot[V], max(len(old)+len(old)/4, len(old)+8))
	t.n = 0
	for i := range old {
		if s := &old[i]; s.key != (store.Key{}) {
			*t.insertSlot(s.key) = s.v
		}
	}
}

// insertSlot is insert for a key already in slot form, without the growth
// check.
func (t *table[V]) insertSlot(k store.Key) *V {
	i := t.home(k)
	for t.slots[i].key != (store.Key{}) {
		if i++; i == len(t.slots) {
			i = 0
		}
	}
	t.slots[i].key = k
	t.n++
	return &t.slots[i].v
}

// delete removes k if present.
func (t *table[V]) delete(k store.Key) {
	if i := t.locate(k); i >= 0 {
		t.deleteAt(i)
	}
}

// deleteAt empties slot i and moves later members of its probe run back, so
// that no lookup meets a gap before its key. It reports whether a slot's
// content moved into i (a scan over the slots must look at i again).
func (t *table[V]) deleteAt(i int) bool {
	moved := false
	c := len(t.slots)
	hole := i
	for j := i + 1; ; j++ {
		if j == c {
			j = 0
		}
		s := &t.slots[j]
		if s.key == (store.Key{}) {
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
	t.slots[hole] = slot[V]{}
	t.n--
	return moved
}

// len returns the number of keys held.
func (t *table[V]) len() int { return t.n }

// each calls f for every key from slot start on, wrapping, until f returns
// false. If f asks to delete the key it was given (del), the slot is emptied
// and re-examined, since deletion may move a later key into it; a key may
// then be visited twice, never skipped.
func (t *table[V]) each(start int, f func(k store.Key, v *V) (del, more bool)) {
	c := len(t.slots)
	if c == 0 || t.n == 0 {
		return
	}
	start %= c
	for visited := 0; visited < c; {
		i := (start + visited) % c
		s := &t.slots[i]
		if s.key == (store.Key{}) {
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
