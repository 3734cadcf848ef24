package memory

import (
	"time"

	"github.com/ratekit/ratekit/store"
	"github.com/ratekit/ratekit/window"
)

// A key refused by the sliding log keeps getting the same answer until
// something changes its windows, and only two things can: an admission, or
// its oldest entry in some window growing old enough to leave. Between the
// refusal at instant at and the first such departure (until), every refusal
// is the same Decision with Reset and RetryAfter shorter by the time elapsed
// since at: the same counts, the same binding window, the same waits counted
// to the same instants.
//
// So a shard publishes the refusal of a hot key (one refused twice in a row
// in the shard) and Take answers that key from it without the shard's lock
// until it lapses. A key refused from every core then writes no shared cache
// line at all; before, each refusal moved the lock's line between cores.
// Anything that changes the key under the lock (a decision that reached the
// lock, Reset, eviction) replaces or withdraws the published refusal first,
// so a lock-free answer is always one the lock path would have given.
//
// Only exact (log) refusals are published: a sliding-window counter's
// estimate moves every millisecond, so its refusals are not the same answer
// for any span.

// refusal is one published refusal. It is immutable once published.
type refusal struct {
	key    keyWords
	policy *window.Policy
	cost   int
	at     int64 // ms: the instant of the decision
	until  int64 // ms: the first instant at which an entry leaves a window
	d      window.Decision
}

// answer returns what r's key would be told at t (in ms), and whether r
// still holds then. A clock behind r's instant is left to the lock path,
// which knows how to treat a step back.
func (r *refusal) answer(t int64) (window.Decision, bool) {
	if t < r.at || t >= r.until {
		return window.Decision{}, false
	}
	d := r.d
	elapsed := time.Duration(t-r.at) * time.Millisecond
	d.RetryAfter -= elapsed
	for i := range d.States() {
		if d.Windows[i].Reset > 0 {
			d.Windows[i].Reset -= elapsed
		}
	}
	return d, true
}

// matches reports whether r was published for req's key, policy and cost.
func (r *refusal) matches(req *store.Request) bool {
	return r.policy == req.Policy && r.cost == req.Cost && r.key == wordsOf(req.Key)
}

// remember runs under sh's lock after every sliding-log decision on k at t:
// it withdraws a published refusal of k, which the decision supersedes, and
// publishes d when it is k's second refusal in a row in this shard. Requiring
// a repeat keeps keys that are refused once in passing (most of them, when
// many clients are limited) from allocating a refusal each.
func (sh *shard) remember(k keyWords, p *window.Policy, cost int, d *window.Decision, t int64) {
	if d.Allowed {
		sh.forget(k)
		return
	}
	repeat := sh.hasRefused && sh.lastRefused == k
	sh.lastRefused, sh.hasRefused = k, true
	if until, ok := lasts(p, cost, d, t); repeat && ok {
		if r := sh.refused.Load(); r != nil && r.key == k && t >= r.at && t < r.until {
			// A refusal changes nothing, so the one published for another
			// policy or cost still holds: keep it rather than allocate a
			// new one for every request of a key asked two ways in turn.
			return
		}
		sh.refused.Store(&refusal{key: k, policy: p, cost: cost, at: t, until: until, d: *d})
		return
	}
	sh.forget(k)
}

// forget withdraws a published refusal of k. The caller holds sh's lock and
// is about to change or drop k's state.
func (sh *shard) forget(k keyWords) {
	if r := sh.refused.Load(); r != nil && r.key == k {
		sh.refused.Store(nil)
	}
}

// lasts returns the first instant after t at which the refusal d could
// change: when the oldest entry of some non-empty window leaves it. A
// request costing more than a window's limit is refused with a wait that
// does not count down (see window.Decision.RetryAfter), so its refusal is
// not published.
func lasts(p *window.Policy, cost int, d *window.Decision, t int64) (int64, bool) {
	var soonest time.Duration
	for i, w := range p.Windows {
		if cost > w.Limit {
			return 0, false
		}
		if r := d.Windows[i].Reset; r > 0 && (soonest == 0 || r < soonest) {
			soonest = r
		}
	}
	if soonest <= 0 {
		return 0, false
	}
	return t + soonest.Milliseconds(), true
}
