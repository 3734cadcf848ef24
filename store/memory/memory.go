package memory

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ratekit/ratekit/store"
	"github.com/ratekit/ratekit/window"
)

// Config configures a [Store]. The zero value is ready to use.
type Config struct {
	// Now reads the clock once per decision. Nil means the process's
	// monotonic clock (wall time at construction plus monotonic elapsed
	// time), so wall-clock steps do not affect decisions. Tests pass a fake.
	// It is called from many goroutines at once, so it must be safe for
	// concurrent use.
	Now func() time.Time
	// MaxKeys bounds the number of keys tracked, in all shards together.
	// Zero means 1<<20 (about a million). A full store makes room for a new
	// key by dropping idle keys (whose admissions have all left their
	// windows), and only when it finds none, by evicting one of 8 keys
	// sampled in the new key's shard: of those not limited, the one whose
	// windows count the fewest requests. A limited key (its latest decision
	// refused, or left a window with no room, and that wait has not passed)
	// is never evicted; if every sampled key is limited, Take returns
	// [store.ErrFull] and the caller's failure policy decides.
	//
	// Evicting a key forgets what its windows counted: its client may then
	// be admitted, within each window's span, up to that count beyond the
	// window's limit. That is less than the limit, since an evicted key had
	// room left, and usually far less, since it is the lightest key sampled.
	// While fewer than MaxKeys keys are live (a key is live until its last
	// admission has left its longest window, to the next whole second), no
	// live key is evicted, unless the idle keys that could make room are
	// all in shards other requests hold locked at that instant.
	MaxKeys int
	// Shards is the number of independently locked partitions, a power of
	// two. Zero means 64.
	Shards int
	// SweepInterval is how long one pass of the background reclaimer over
	// every shard takes; each shard is visited once per pass and loses its
	// idle keys. Zero means one minute. Keys are also reclaimed when a full
	// shard needs room, so the interval bounds memory held by idle keys, not
	// correctness.
	SweepInterval time.Duration
}

// Store is the in-memory [store.Store]: sharded, bounded, and exact. It is
// safe for concurrent use. Close stops its one background goroutine.
type Store struct {
	now       func() time.Time
	shards    []shard
	mask      uint64
	maxKeys   int64
	closed    atomic.Bool
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	leases    atomic.Uint64 // last lease ID handed out

	// keys counts the keys of every shard, plus places reserved by room
	// for keys about to be inserted; it never exceeds maxKeys. It and
	// evictions are written by every new key while the store is full, so
	// they live on a cache line of their own, away from closed, which
	// every Take reads.
	_         [64]byte
	keys      atomic.Int64
	evictions atomic.Uint64
	// swept is the second in which reclaimIdle last found no shard that
	// could hold an idle key (see shard.idleFrom), skipping none: none can
	// until the next second, unless a key is stored idle (see lowerIdle).
	swept atomic.Uint32
	_     [44]byte
}

var (
	_ store.Store = (*Store)(nil)
	_ store.Admin = (*Store)(nil)
)

// ErrInvalidConfig is wrapped by the errors [New] returns.
var ErrInvalidConfig = errors.New("store/memory: invalid config")

// shard is one locked partition. Exact and counter states live in separate
// tables so each slot is only as large as its algorithm needs. Entries are
// held in the slots: a window.Log is one pointer to a pointer-free buffer, so
// an exact key costs a 32-byte slot plus its state, and a lookup touches the
// slot and the state, nothing else. A counter whose policy fits a
// window.SmallCounter lives whole in a 24-byte slot of smalls, keyed by a
// fingerprint of its key; other counters live in ctrs.
type shard struct {
	mu sync.Mutex
	// idleFrom is a second before which no key of the shard is idle: at
	// most the smallest expires of its keys. Sweeps set it to that, and a
	// decision that stores an expires below it lowers it. Written under mu,
	// next to it, so a decision that only compares finds it on a cache line
	// it holds already; read without mu by reclaimIdle.
	idleFrom atomic.Uint32
	logs     table[keyWords, entry[window.Log]]
	ctrs     table[keyWords, entry[window.Counter]]
	smalls   table[fingerprint, smallEntry]
	inflight map[store.Key][]uint64 // IDs of the concurrency leases held, see Acquire
	sample   uint64                 // where the next eviction sample starts

	// The last sliding-log key refused here, to tell a hot key (see remember).
	lastRefused keyWords
	hasRefused  bool
	// The last key whose policy merges admitted here, and when, to tell a
	// hot key (see grantAfter); the size of the next grant.
	lastAdmitted   keyWords
	lastAdmittedAt int64
	hasAdmitted    bool
	grantSize      int64

	// refused is read without the lock by every Take on the shard, and
	// written only when a hot key's refusal is published or withdrawn, so
	// it lives on a cache line of its own, away from the lock's. granted
	// is read as often and replaced every time a hot key's grant runs
	// out, so it has a line of its own too.
	_       [64]byte
	refused atomic.Pointer[refusal] // see refusal.go
	_       [56]byte
	granted atomic.Pointer[grant] // see grant.go
	_       [56]byte
}

// entry is one key's state plus what eviction and reclamation need, in
// whole seconds since the Unix epoch (see sec): rounded up, so a key is never
// thought idle or unlimited early.
type entry[S any] struct {
	s       S
	expires uint32 // second from which nothing counted can matter: idle
	// limitedUntil is the second before which a cost-1 request may be
	// rejected because of what the latest decision saw: it refused, or
	// left a window with no room. 0 when it admitted and left room in
	// every window: such a key is not limited at all.
	limitedUntil uint32
}

// fingerprint stands for a store.Key in the small-counter table: its last 8
// bytes, as a little-endian word. Keys are keyed 128-bit hashes (see package
// middleware) and the shard is picked by the first 8, so two keys share a
// counter only if their shard and 64 more bits of keyed hash agree: at a
// million keys, odds of about one in two billion that any pair does (one in
// 37 million with a single shard), and no way for a client to aim for it
// without the hash key.
type fingerprint struct{ w uint64 }

func fingerprintOf(k store.Key) fingerprint {
	return fingerprint{binary.LittleEndian.Uint64(k[8:])}
}

// smallEntry is a small counter's whole state: 16 bytes, 24 with its
// fingerprint. Whether the key is limited is the counter's own business
// (window.SmallCounter.LimitedAt), bounded by expires.
type smallEntry struct {
	s       window.SmallCounter
	expires uint32 // as entry.expires; also drops a state before its clock could wrap
}

// sec returns t (ms since the Unix epoch) in whole seconds, rounded up and
// saturated to the uint32 range (until the year 2106).
func sec(t int64) uint32 {
	return uint32(min(max((t+999)/1000, 0), math.MaxUint32))
}

// nowSec returns t in whole seconds, rounded down, saturated like sec.
func nowSec(t int64) uint32 {
	return uint32(min(max(t/1000, 0), math.MaxUint32))
}

// New returns a store configured by cfg, and starts its reclaimer.
func New(cfg Config) (*Store, error) {
	var errs []error
	if cfg.MaxKeys < 0 {
		errs = append(errs, fmt.Errorf("MaxKeys %d negative: %w", cfg.MaxKeys, ErrInvalidConfig))
	}
	if cfg.Shards < 0 || cfg.Shards&(cfg.Shards-1) != 0 {
		errs = append(errs, fmt.Errorf("Shards %d not a power of two: %w", cfg.Shards, ErrInvalidConfig))
	}
	if cfg.SweepInterval < 0 {
		errs = append(errs, fmt.Errorf("SweepInterval %v negative: %w", cfg.SweepInterval, ErrInvalidConfig))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		epoch := time.Now()
		cfg.Now = func() time.Time { return epoch.Add(time.Since(epoch)) }
	}
	if cfg.MaxKeys == 0 {
		cfg.MaxKeys = 1 << 20
	}
	if cfg.Shards == 0 {
		cfg.Shards = 64
	}
	for cfg.Shards > 1 && cfg.MaxKeys/cfg.Shards < 16 {
		cfg.Shards /= 2 // small tables: enough keys per shard for eviction's sample
	}
	if cfg.SweepInterval == 0 {
		cfg.SweepInterval = time.Minute
	}
	s := &Store{
		now:     cfg.Now,
		shards:  make([]shard, cfg.Shards),
		mask:    uint64(cfg.Shards - 1),
		maxKeys: int64(cfg.MaxKeys),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	for i := range s.shards {
		seed := rand.Uint64()
		s.shards[i].logs.seed = seed
		s.shards[i].ctrs.seed = seed
		s.shards[i].smalls.seed = seed
		s.shards[i].sample = seed
		s.shards[i].inflight = make(map[store.Key][]uint64)
		s.shards[i].idleFrom.Store(math.MaxUint32)
	}
	go s.reclaim(cfg.SweepInterval / time.Duration(cfg.Shards))
	return s, nil
}

func (s *Store) shard(k store.Key) *shard {
	return &s.shards[binary.LittleEndian.Uint64(k[:8])&s.mask]
}

// Take decides req; see [store.Store]. It never blocks on I/O; ctx is only
// checked for cancellation before deciding.
func (s *Store) Take(ctx context.Context, req store.Request) (d window.Decision, err error) {
	if err := store.CheckRequest(&req); err != nil {
		return window.Decision{}, err
	}
	if s.closed.Load() {
		return window.Decision{}, store.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return window.Decision{}, err
	}
	sh := s.shard(req.Key)
	if s.answerRefused(sh, &req, &d) || s.answerGranted(sh, &req, &d) {
		return d, nil
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	// A grant published while this request waited for the lock is used
	// rather than retired unused.
	if s.answerGranted(sh, &req, &d) {
		return d, nil
	}
	// Two copies of the same few lines rather than one generic function: a
	// method called through a generic type's dictionary makes the state
	// escape, which would cost an allocation per decision. Counters are
	// decided apart so that the exact path stays small.
	if req.Policy.Algorithm == window.SlidingCounter {
		now := s.now()
		return s.takeCounter(sh, &req, now, now.UnixMilli())
	}
	k := wordsOf(req.Key)
	// Withdrawn before the clock is read: see answerRefused and
	// answerGranted.
	prev := sh.withdraw(k)
	e := sh.logs.find(k)
	hadGrant := e != nil && sh.retireGrant(k, e)
	// The clock is read under the lock so that decisions on a key happen in
	// clock order; otherwise two racing requests could look like a clock
	// step backwards.
	now := s.now()
	t := now.UnixMilli()
	if e == nil {
		if !s.room(sh, t) {
			return window.Decision{}, store.ErrFull
		}
		e = sh.logs.insert(k)
	}
	d = e.s.TakeAt(now, req.Policy, req.Cost)
	if d.Allowed && window.Merges(req.Policy) {
		sh.grantAfter(e, k, &req, &d, now, t, hadGrant)
	}
	e.note(&d, req.Policy, t)
	s.lowerIdle(sh, e.expires, t)
	sh.remember(e, k, prev, req.Policy, req.Cost, &d, t)
	return d, nil
}

// takeCounter is Take for the sliding-window counter, under sh's lock.
func (s *Store) takeCounter(sh *shard, req *store.Request, now time.Time, t int64) (window.Decision, error) {
	if window.SmallCounterFits(req.Policy) {
		f := fingerprintOf(req.Key)
		e := sh.smalls.find(f)
		if e == nil {
			if !s.room(sh, t) {
				return window.Decision{}, store.ErrFull
			}
			e = sh.smalls.insert(f)
		}
		live := nowSec(t) < e.expires
		if !live {
			e.s.Reset() // idle: nothing counted matters, and its clock may wrap
		}
		d := e.s.TakeAt(now, req.Policy, req.Cost)
		// A decision on a live state writes the counter at t, after which
		// nothing it counts matters beyond two longest windows (a refusal
		// after a clock step back re-anchors the counts at t, so this may
		// move expires earlier, which also keeps t within reach of its
		// 32-bit clock). A refusal of an idle state counts nothing, and the
		// key stays idle, so evictable, as the other tables' keys do.
		if x := sec(t + 2*longestMs(req.Policy)); (d.Allowed || live) && x != e.expires {
			e.expires = x
		}
		s.lowerIdle(sh, e.expires, t)
		return d, nil
	}
	e := sh.ctrs.find(wordsOf(req.Key))
	if e == nil {
		if !s.room(sh, t) {
			return window.Decision{}, store.ErrFull
		}
		e = sh.ctrs.insert(wordsOf(req.Key))
	}
	d := e.s.TakeAt(now, req.Policy, req.Cost)
	e.note(&d, req.Policy, t)
	s.lowerIdle(sh, e.expires, t)
	return d, nil
}

// lowerIdle runs under sh's lock after a decision at t left one of its keys
// with expires x, and keeps sh.idleFrom at most x. x is below it only for a
// new key or one whose windows got shorter, so a decision on a known key
// only compares. A key stored idle already (a new key whose only request
// was refused counts nothing) makes the current second's sweeps due again.
func (s *Store) lowerIdle(sh *shard, x uint32, t int64) {
	if x >= sh.idleFrom.Load() {
		return
	}
	sh.idleFrom.Store(x)
	if x <= nowSec(t) {
		s.swept.Store(0)
	}
}

// room reports whether sh may take one more key at t, and if so holds a
// place for it in s.keys. The bound is on the whole store, not per shard:
// keys are spread over shards at random, so a per-shard bound would make
// the fullest shard evict live keys while the store still had room. A full
// store makes room by evicting from sh (see evict).
func (s *Store) room(sh *shard, t int64) bool {
	for n := s.keys.Load(); n < s.maxKeys; n = s.keys.Load() {
		if s.keys.CompareAndSwap(n, n+1) {
			return true
		}
	}
	return s.evict(sh, t)
}

// len returns the number of keys sh holds.
func (sh *shard) len() int { return sh.logs.len() + sh.ctrs.len() + sh.smalls.len() }

// longestMs returns p's longest window in milliseconds.
func longestMs(p *window.Policy) int64 {
	var longest time.Duration
	for _, w := range p.Windows {
		longest = max(longest, w.Length)
	}
	return longest.Milliseconds()
}

// note records what reclamation and eviction need from decision d at t.
func (e *entry[S]) note(d *window.Decision, p *window.Policy, t int64) {
	if d.Allowed {
		// An exact log's entry counts until t+longest+1 (see
		// window.Window); a counter remembers its previous slot for one
		// more length.
		span := longestMs(p) + 1
		if p.Algorithm == window.SlidingCounter {
			span = 2 * longestMs(p)
		}
		if x := sec(t + span); x != e.expires {
			e.expires = x
		}
	}
	until := t + d.RetryAfter.Milliseconds()
	if d.Allowed {
		for _, w := range d.States() {
			if w.Remaining == 0 {
				until = max(until, t+w.Reset.Milliseconds())
			}
		}
	}
	// A key admitted with room left in every window is not limited at all:
	// rounding t itself up to the next second would protect every key
	// touched in the current second from eviction, and a flood of new keys
	// would then fill the store with keys no eviction may take.
	var x uint32
	if until > t {
		x = sec(until)
	}
	// Written only when it changes (whole seconds, so rarely): an unchanged
	// slot stays shared between CPU caches when one key is hot.
	if x != e.limitedUntil {
		e.limitedUntil = x
	}
}

// evictSample is how many keys a full shard inspects to make room.
const evictSample = 8

// evict makes room for a new key of sh in a full store, and reports whether
// it did; the place freed is the new key's (s.keys is unchanged). It drops
// an idle key of sh if one is sampled; else every idle key it can find (see
// reclaimIdle); else, among the sampled keys of sh not currently limited,
// the one whose windows count the least (ties: the one expiring soonest).
// Dropping a key can admit at most what its windows count (see
// window.Log.Counted), so that is the sampled key whose loss can cost the
// fewest requests admitted beyond the limits. Samples start where the last
// one ended, so successive evictions walk the whole table.
func (s *Store) evict(sh *shard, t int64) bool {
	// The victim is remembered by where it lives: which table (0 logs, 1
	// counters, 2 small counters) and its key there.
	var victim keyWords
	var victimFP fingerprint
	var victimExp uint32
	victimCounted := 0
	in := -1
	idle := false
	seen := 0
	now := nowSec(t)
	at := time.UnixMilli(t)
	// consider looks at one sampled key; counted is only asked for a key
	// that is neither idle nor limited (a log's is in its buffer, one more
	// memory access).
	consider := func(table int, k keyWords, f fingerprint, expires uint32, limited bool, counted func() int) bool {
		seen++
		if now >= expires {
			victim, victimFP, in, victimExp, idle = k, f, table, expires, true
			return false
		}
		if limited {
			return seen < evictSample
		}
		if n := counted(); in < 0 || n < victimCounted || (n == victimCounted && expires < victimExp) {
			victim, victimFP, in, victimExp, victimCounted = k, f, table, expires, n
		}
		return seen < evictSample
	}
	// The tables are sampled in an order that rotates with the sample, so a
	// table full of limited keys cannot hide another's evictable ones.
	start := int(sh.sample % uint64(max(sh.len(), 1)))
	tables := [3]func(){
		func() {
			sh.logs.each(start, func(k keyWords, e *entry[window.Log]) (bool, bool) {
				return false, consider(0, k, fingerprint{}, e.expires, now < e.limitedUntil, e.s.Counted)
			})
		},
		func() {
			sh.ctrs.each(start, func(k keyWords, e *entry[window.Counter]) (bool, bool) {
				return false, consider(1, k, fingerprint{}, e.expires, now < e.limitedUntil, e.s.Counted)
			})
		},
		func() {
			sh.smalls.each(start, func(f fingerprint, e *smallEntry) (bool, bool) {
				return false, consider(2, keyWords{}, f, e.expires, e.s.LimitedAt(at), e.s.Counted)
			})
		},
	}
	for j := range tables {
		if seen >= evictSample || idle {
			break
		}
		tables[(int(sh.sample>>33%3)+j)%3]()
	}
	sh.sample = sh.sample*6364136223846793005 + 1442695040888963407
	if !idle {
		// A live key goes only if no idle one is left anywhere.
		if n := s.reclaimIdle(sh, now); n > 0 {
			s.keys.Add(-int64(n - 1))
			return true
		}
	}
	switch in {
	case 0:
		sh.withdraw(victim)
		sh.retireGrant(victim, nil)
		sh.logs.delete(victim)
	case 1:
		sh.ctrs.delete(victim)
	case 2:
		sh.smalls.delete(victimFP)
	default:
		return false
	}
	s.evictions.Add(1)
	return true
}

// Peek returns what a cost-1 request for key would be told now, without
// recording it. See [store.Admin].
func (s *Store) Peek(ctx context.Context, key store.Key, p *window.Policy) (window.Decision, error) {
	if err := store.CheckRequest(&store.Request{Key: key, Policy: p, Cost: 1}); err != nil {
		return window.Decision{}, err
	}
	if s.closed.Load() {
		return window.Decision{}, store.ErrClosed
	}
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	now := s.now()
	// A missing key reads as the zero state: an empty log or counter.
	if p.Algorithm == window.SlidingCounter && window.SmallCounterFits(p) {
		var c window.SmallCounter
		if e := sh.smalls.find(fingerprintOf(key)); e != nil && nowSec(now.UnixMilli()) < e.expires {
			c = e.s
		}
		return c.PeekAt(now, p), nil
	}
	if p.Algorithm == window.SlidingCounter {
		var zero window.Counter
		if e := sh.ctrs.find(wordsOf(key)); e != nil {
			return e.s.PeekAt(now, p), nil
		}
		return zero.PeekAt(now, p), nil
	}
	var zero window.Log
	if e := sh.logs.find(wordsOf(key)); e != nil {
		// What a grant holds has not happened: it goes back first.
		sh.retireGrant(wordsOf(key), e)
		return e.s.PeekAt(now, p), nil
	}
	return zero.PeekAt(now, p), nil
}

// Reset forgets key. See [store.Admin].
func (s *Store) Reset(ctx context.Context, key store.Key) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	sh := s.shard(key)
	sh.mu.Lock()
	sh.withdraw(wordsOf(key))
	sh.retireGrant(wordsOf(key), nil)
	var n int64
	for _, deleted := range [3]bool{sh.logs.delete(wordsOf(key)), sh.ctrs.delete(wordsOf(key)), sh.smalls.delete(fingerprintOf(key))} {
		if deleted {
			n++
		}
	}
	s.keys.Add(-n)
	sh.mu.Unlock()
	return nil
}

var _ store.Local = (*Store)(nil)

// Local reports true: the store's state lives in this process, and its
// calls never wait on the network (see [store.Local]).
func (s *Store) Local() bool { return true }

// Len returns the number of keys currently tracked.
func (s *Store) Len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += sh.len()
		sh.mu.Unlock()
	}
	return n
}

// Evictions returns how many keys were evicted to make room since New.
// Idle keys dropped by a sweep (the background reclaimer's, or one a full
// store makes before it would evict a live key) are not counted.
func (s *Store) Evictions() uint64 { return s.evictions.Load() }

// Close stops the reclaimer and makes further calls return
// [store.ErrClosed]. It is idempotent and always returns nil.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.stop)
		<-s.done
	})
	return nil
}

// reclaim visits one shard per tick and drops its idle keys.
func (s *Store) reclaim(every time.Duration) {
	defer close(s.done)
	tick := time.NewTicker(max(every, time.Millisecond))
	defer tick.Stop()
	next := 0
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
			s.sweep(&s.shards[next])
			next = (next + 1) % len(s.shards)
		}
	}
}

// sweep drops the idle keys of one shard.
func (s *Store) sweep(sh *shard) {
	sh.mu.Lock()
	n := sh.sweep(nowSec(s.now().UnixMilli()))
	sh.mu.Unlock()
	s.keys.Add(-int64(n))
}

// sweep drops the keys of sh idle at second t, under sh's lock, and
// returns how many it dropped; the caller accounts for them in s.keys.
func (sh *shard) sweep(t uint32) int {
	n := 0
	next := uint32(math.MaxUint32) // the smallest expires kept
	sh.logs.each(0, func(k keyWords, e *entry[window.Log]) (bool, bool) {
		if t < e.expires {
			next = min(next, e.expires)
			return false, true
		}
		sh.withdraw(k)
		sh.retireGrant(k, nil)
		n++
		return true, true
	})
	sh.ctrs.each(0, func(_ keyWords, e *entry[window.Counter]) (bool, bool) {
		if t < e.expires {
			next = min(next, e.expires)
			return false, true
		}
		n++
		return true, true
	})
	sh.smalls.each(0, func(_ fingerprint, e *smallEntry) (bool, bool) {
		if t < e.expires {
			next = min(next, e.expires)
			return false, true
		}
		n++
		return true, true
	})
	sh.idleFrom.Store(next)
	return n
}

// reclaimIdle runs under own's lock when the store is full and eviction's
// sample of own found no idle key. Before a live key is evicted, it sweeps
// the shards that may hold an idle key at second now (idleFrom at most now:
// own first; another only if its lock is free, since waiting for it while
// holding own's could deadlock) until one drops some, and returns how many
// that was; the caller accounts for them in s.keys. A sweep leaves idleFrom
// at the shard's smallest expires, after now, so a shard is swept this way
// at most once a second, and only when one of its keys has reached its
// expiry second; if it was admitted again meanwhile, the sweep finds
// nothing. A store full of keys that stay live therefore costs no sweeps;
// at worst, one pass over all keys a second.
func (s *Store) reclaimIdle(own *shard, now uint32) int {
	if s.swept.Load() == now {
		return 0
	}
	if own.idleFrom.Load() <= now {
		if n := own.sweep(now); n > 0 {
			return n
		}
	}
	busy := false
	for i := range s.shards {
		sh := &s.shards[i]
		if sh == own || sh.idleFrom.Load() > now {
			continue
		}
		if !sh.mu.TryLock() {
			busy = true
			continue
		}
		n := sh.sweep(now)
		sh.mu.Unlock()
		if n > 0 {
			return n
		}
	}
	if !busy {
		s.swept.Store(now)
	}
	return 0
}
