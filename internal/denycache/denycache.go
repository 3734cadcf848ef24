package denycache

import (
	"encoding/binary"
	"sync"
	"time"

	"github.com/ratekit/ratekit/store"
	"github.com/ratekit/ratekit/window"
)

// denyShards is the most shards a deny cache is split into; enough that two
// to a few dozen cores rarely meet on one mutex.
const denyShards = 16

// denyScan is how many slots an eviction inspects for an expired entry
// before it settles for the oldest.
const denyScan = 8

// Cache remembers recent rejections from a shared store, so that a key
// told "rejected, retry after r" is answered locally for up to r (and at
// most the cache's TTL) without a round trip. It only ever answers
// rejections, so it can never admit more than the store would; at worst (an
// entry evicted or dropped early) the store is asked again. An entry answers
// only requests under the policy and cost it was decided for: the same key
// under another plan, or at another cost, asks the store.
//
// The TTL bounds how long a refusal is repeated after something this
// instance cannot see has freed the key: a Reset or a plan change made on
// another instance.
//
// It holds at most size entries, about 300 bytes each (BenchmarkDenyCacheFill
// reports the figure), split evenly over up to 16 shards by key, so a shard
// may evict while another has room. A put into a full shard evicts an entry
// that has expired if one of the next few in the shard's eviction order has,
// else the oldest put (roughly: an entry refreshed in place keeps its
// place). Expiry is otherwise lazy: a get that finds an expired entry drops
// it. There is no goroutine.
//
// A nil *Cache is a disabled cache: Get misses, Put does nothing. The
// cache is safe for concurrent use.
type Cache struct {
	shards []denyShard
}

type denyShard struct {
	ttl   int64 // nanoseconds an entry may answer, whatever its RetryAfter
	mu    sync.Mutex
	index map[store.Key]int32 // key -> slot
	slots []denyEntry         // grows to max, then recycled
	free  []int32             // slots emptied by get or an admitting put
	hand  int                 // next slot to consider for eviction
	max   int
	base  time.Time // instant the shard's offsets count from: the first put
	based bool
	_     [64]byte // keep neighbouring shards' mutexes off one cache line
}

type denyEntry struct {
	key store.Key
	// The policy the decision was taken against, as the caller numbers
	// it (see Query.Policy). An integer keeps the slots free of pointers
	// for the garbage collector to scan.
	policy uint64
	cost   int
	at     int64 // put instant, nanoseconds since the shard's base
	d      window.Decision
}

// Query names what a rejection was decided for: a bucket, the policy it
// was decided against and the cost asked for. An entry answers only the
// query it was put for.
type Query struct {
	// Key is the bucket.
	Key store.Key
	// Policy numbers the policy: the caller gives every policy it decides
	// with a number of its own, never reused for another policy (a policy
	// replaced while serving gets a new number, so the old one's entries
	// stop answering).
	Policy uint64
	// Cost is the cost asked for.
	Cost int
}

// New returns a cache of at most size entries, each answering for at most
// ttl, or nil (disabled) when size or ttl is 0 or negative.
func New(size int, ttl time.Duration) *Cache {
	if size <= 0 || ttl <= 0 {
		return nil
	}
	n := min(size, denyShards)
	c := &Cache{shards: make([]denyShard, n)}
	for i := range c.shards {
		s := &c.shards[i]
		s.ttl = int64(ttl)
		s.max = size / n
		if i < size%n {
			s.max++
		}
		s.index = make(map[store.Key]int32)
	}
	return c
}

// shard returns key's shard. Keys are keyed hashes, so any eight bytes are
// uniform.
func (c *Cache) shard(key store.Key) *denyShard {
	return &c.shards[binary.LittleEndian.Uint64(key[:8])%uint64(len(c.shards))]
}

// Put remembers a rejection of q decided at now (local clock). A decision
// that admitted (or has no RetryAfter) instead forgets q.Key, whatever
// policy its entry was for: the cache never contradicts the store's latest
// answer.
func (c *Cache) Put(q *Query, d *window.Decision, now time.Time) {
	if c == nil {
		return
	}
	key := q.Key
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if d.Allowed || d.RetryAfter <= 0 {
		if i, ok := s.index[key]; ok {
			s.remove(key, i)
		}
		return
	}
	if !s.based {
		s.base, s.based = now, true
	}
	e := denyEntry{key: key, policy: q.Policy, cost: q.Cost, at: int64(now.Sub(s.base)), d: *d}
	if i, ok := s.index[key]; ok {
		s.slots[i] = e
		return
	}
	var i int32
	switch {
	case len(s.free) > 0:
		i = s.free[len(s.free)-1]
		s.free = s.free[:len(s.free)-1]
	case len(s.slots) < s.max:
		if len(s.slots) == cap(s.slots) {
			// Grow by doubling as append would, but never past max: the
			// bound is on memory, not only on entries.
			grown := make([]denyEntry, len(s.slots), min(max(2*cap(s.slots), 8), s.max))
			copy(grown, s.slots)
			s.slots = grown
		}
		i = int32(len(s.slots))
		s.slots = append(s.slots, denyEntry{})
	default:
		i = s.victim(e.at)
		delete(s.index, s.slots[i].key)
	}
	s.slots[i] = e
	s.index[key] = i
}

// victim picks the slot to evict from a full shard whose free list is empty
// (so every slot is live): the first expired entry among the next denyScan
// from the hand, else the one at the hand. Slots are first filled in order
// and the hand moves past each slot it reuses, so the hand points at the
// oldest put; a slot skipped for an expired one further on gets one more
// round.
func (s *denyShard) victim(now int64) int32 {
	n := len(s.slots)
	pick := s.hand
	for j := range min(denyScan, n) {
		k := (s.hand + j) % n
		if s.expired(&s.slots[k], now) {
			pick = k
			break
		}
	}
	s.hand = (pick + 1) % n
	return int32(pick)
}

// expired reports whether e no longer answers at now (nanoseconds since the
// shard's base): its RetryAfter or the cache's TTL has passed, or the clock
// is before the put (it jumped back), in which case asking the store again
// is the safe answer.
func (s *denyShard) expired(e *denyEntry, now int64) bool {
	elapsed := now - e.at
	return elapsed < 0 || elapsed >= min(int64(e.d.RetryAfter), s.ttl)
}

// lapsed reports whether e's refusal no longer holds at now: its
// RetryAfter has passed, or the clock is before the put.
func lapsed(e *denyEntry, now int64) bool {
	elapsed := now - e.at
	return elapsed < 0 || elapsed >= int64(e.d.RetryAfter)
}

func (s *denyShard) remove(key store.Key, i int32) {
	delete(s.index, key)
	s.slots[i] = denyEntry{}
	s.free = append(s.free, i)
}

// Forget drops key's entry, whatever it was put for: the bucket was reset.
func (c *Cache) Forget(key store.Key) {
	if c == nil {
		return
	}
	s := c.shard(key)
	s.mu.Lock()
	if i, ok := s.index[key]; ok {
		s.remove(key, i)
	}
	s.mu.Unlock()
}

// Get returns the rejection for q.Key still in force at now: the stored
// decision with RetryAfter and each window's Reset reduced by the time
// elapsed since put, but never below 1ms (a Reset of zero, nothing counted,
// stays zero). Remaining counts are returned unchanged, since a rejection
// changes no state; a window that was not binding may meanwhile have freed
// some, so they can only understate. ok is false when key is absent or its
// entry expired (elapsed >= RetryAfter or the TTL, or now before the put);
// an entry whose RetryAfter has passed is dropped, one past only the TTL
// stays for [Cache.Refusal]. ok is also false when the entry was put for
// another policy or cost than q's (it stays). Get does not allocate.
func (c *Cache) Get(q *Query, now time.Time) (d window.Decision, ok bool) {
	return c.get(q, now, true)
}

// Refusal is Get without the TTL, for when the store cannot be asked: the
// rejection of q still in force at now, however long ago the store gave
// it, as long as its RetryAfter has not passed. Repeating it admits nothing
// the store would not have; the TTL bounds only how long a refusal stands
// in for asking a store that answers.
func (c *Cache) Refusal(q *Query, now time.Time) (d window.Decision, ok bool) {
	return c.get(q, now, false)
}

// get is Get, and Refusal when ttl is false.
func (c *Cache) get(q *Query, now time.Time, ttl bool) (d window.Decision, ok bool) {
	if c == nil {
		return d, false
	}
	key := q.Key
	s := c.shard(key)
	s.mu.Lock()
	i, found := s.index[key]
	if !found {
		s.mu.Unlock()
		return d, false
	}
	e := &s.slots[i]
	if e.policy != q.Policy || e.cost != q.Cost {
		s.mu.Unlock()
		return d, false
	}
	t := int64(now.Sub(s.base))
	if lapsed(e, t) {
		s.remove(key, i)
		s.mu.Unlock()
		return d, false
	}
	if ttl && s.expired(e, t) {
		s.mu.Unlock()
		return d, false
	}
	d, elapsed := e.d, time.Duration(t-e.at)
	s.mu.Unlock()

	d.RetryAfter = reduced(d.RetryAfter, elapsed)
	for w := range min(d.N, window.MaxWindows) {
		if d.Windows[w].Reset > 0 {
			d.Windows[w].Reset = reduced(d.Windows[w].Reset, elapsed)
		}
	}
	return d, true
}

// reduced returns v-elapsed, at least 1ms.
func reduced(v, elapsed time.Duration) time.Duration {
	return max(v-elapsed, time.Millisecond)
}

// Len returns the number of entries held, expired or not.
func (c *Cache) Len() int {
	if c == nil {
		return 0
	}
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.index)
		s.mu.Unlock()
	}
	return n
}
