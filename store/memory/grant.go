package memory

import (
	"math"
	"sync/atomic"
	"time"

	"github.com/ratekit/ratekit/store"
	"github.com/ratekit/ratekit/window"
)

// A key whose policy allows more requests than its longest window has
// milliseconds (see window.Merges) can be admitted many times in one
// millisecond, and then every admission is the same small change: the
// newest entry of its log gains the request's cost. When such a key is hot,
// many cores admitting it one at a time under the shard's lock spend most of
// their time handing the lock and the log between them.
//
// So the lock path, having admitted a hot key (admitted twice in the same
// millisecond in a row, or holding a grant a moment ago), also records a
// batch of size more admissions of the same cost in the same entry, when
// every window keeps at least twice that much room, and publishes them as a
// grant. Until the millisecond ends, Take hands them out without the lock,
// one atomic decrement each. Before anything reads the key's log again — the
// next lock-path decision on the key, Peek, Reset, eviction, the sweep, or
// the grant of another key replacing it — the grant is retired: its counter
// is swapped to a large negative number, so no later decrement succeeds, and
// what it still held is taken back out of the entry (window.Log.Unmerge).
// Every unit is therefore either handed out by a decrement that happened
// before the retirement or returned by it, never both, and the log is read
// only with exactly the admissions that happened.
//
// The decision handed out is the one the lock path would have given in
// that order: within one millisecond every window's reset is the same, so
// admission i of the batch differs from the last only by the cost of the
// admissions after it, which it finds in the counter it decremented. The
// binding window is the one with the least room, the same for every
// admission of the batch since all counts shift together.
//
// Each grant published is one 400-byte allocation. Its size adapts, so a
// hot key needs few: it doubles (up to maxGrant) each time a grant runs
// out and halves when less than a quarter of one was used, and a request
// that finds a fresh grant once it holds the lock uses it rather than
// retiring it. The size is kept per shard: two hot keys of one shard take
// turns replacing each other's grant, and both get small ones.
//
// "Hot" means two admissions of the key in a row under the shard's lock, in
// the same millisecond, with no admission of another merging key of the
// shard between them; or a grant of the key retired by this admission.

const (
	minGrant = 8
	maxGrant = 1 << 15
	retired  = math.MinInt64 / 2
)

// grant is a published batch of admissions of one key. Everything but left
// is immutable once published.
type grant struct {
	key    keyWords
	policy *window.Policy
	cost   int
	at     int64 // ms: the millisecond the batch was recorded at
	size   int64
	// d is the decision for the batch's last admission: every window's
	// Remaining counts the whole batch as admitted.
	d window.Decision
	// left is decremented by every admission handed out; it is retired
	// (swapped to a large negative value) before the log is read again. It
	// is on a cache line of its own: it is written from every core, the
	// fields above only read.
	_    [64]byte
	left atomic.Int64
	_    [56]byte
}

// matches reports whether g was published for req's key, policy and cost.
func (g *grant) matches(req *store.Request) bool {
	return g.policy == req.Policy && g.cost == req.Cost && g.key == wordsOf(req.Key)
}

// answerGranted admits req into *d from the grant published on sh, without
// the lock, if it matches, the clock is still in the grant's millisecond and
// an admission is left, and reports whether it did.
//
// The clock is read before the decrement, and every lock-path decision on
// the key retires the grant before reading its own clock: so a decrement
// that succeeds came before the retirement, and its clock before that of
// any later decision on the key. A clock behind the grant's millisecond
// (a step back) is left to the lock path.
func (s *Store) answerGranted(sh *shard, req *store.Request, d *window.Decision) bool {
	g := sh.granted.Load()
	if g == nil || !g.matches(req) || s.now().UnixMilli() != g.at {
		return false
	}
	n := g.left.Add(-1)
	if n < 0 {
		return false
	}
	*d = g.d
	for i := range d.States() {
		d.Windows[i].Remaining += int(n) * g.cost
	}
	return true
}

// retireGrant takes down the grant published for k, if any, gives what it
// still held back to e, k's state (nil when k's state is about to be
// dropped), and reports whether there was one. It runs under sh's lock
// before anything reads k's log.
func (sh *shard) retireGrant(k keyWords, e *entry[window.Log]) bool {
	g := sh.granted.Load()
	if g == nil || g.key != k {
		return false
	}
	sh.retire(g, e)
	return true
}

// retire takes down g, the grant published on sh, and gives what it still
// held back to e, its key's state, if e is not nil. It adapts the size of
// the shard's next grant to how much of g was used.
func (sh *shard) retire(g *grant, e *entry[window.Log]) {
	sh.granted.Store(nil)
	left := max(g.left.Swap(retired), 0)
	switch {
	case left == 0:
		sh.grantSize = min(2*g.size, maxGrant)
	case g.size-left < g.size/4:
		sh.grantSize = max(g.size/2, minGrant)
	}
	if left > 0 && e != nil && !e.s.Unmerge(int(left)*g.cost) {
		// Unreachable: the entry holds at least the admission that
		// recorded the grant, which Unmerge leaves.
		panic("store/memory: a grant's admissions were not in its entry")
	}
}

// grantAfter runs under sh's lock after the sliding log admitted req's key k
// into e at now (d is the decision, t now in ms), with hadGrant
// whether a grant for k was retired before the decision. If k is hot and
// its policy merges, it records a batch of further admissions and publishes
// it.
func (sh *shard) grantAfter(e *entry[window.Log], k keyWords, req *store.Request, d *window.Decision, now time.Time, t int64, hadGrant bool) {
	hot := hadGrant || (sh.hasAdmitted && sh.lastAdmitted == k && sh.lastAdmittedAt == t)
	sh.lastAdmitted, sh.lastAdmittedAt, sh.hasAdmitted = k, t, true
	if !hot {
		return
	}
	c := int64(req.Cost)
	size := max(sh.grantSize, minGrant)
	for _, w := range d.States() {
		size = min(size, int64(w.Remaining)/(2*c))
	}
	if size < 1 {
		return
	}
	if g := sh.granted.Load(); g != nil {
		// Another key's grant: retired into its own entry first.
		sh.retire(g, sh.logs.find(g.key))
	}
	last := e.s.TakeAt(now, req.Policy, int(size*c))
	if !last.Allowed {
		// Unreachable: every window had room for twice the batch.
		return
	}
	g := &grant{key: k, policy: req.Policy, cost: req.Cost, at: t, size: size, d: last}
	g.left.Store(size)
	sh.granted.Store(g)
}
