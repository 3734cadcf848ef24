package memory

import (
	"time"

	"github.com/ratekit/ratekit/store"
	"github.com/ratekit/ratekit/window"
)

// A key refused by the sliding log keeps getting the same answer until
// something changes its windows: an admission, its oldest entry in some
// window growing old enough to leave, the clock stepping back (which shifts
// the entries), or the key being dropped (Reset, eviction, the sweep). Short
// of those, between the refusal at instant at and the first departure
// (until), every refusal of the same request is the same Decision with Reset
// and RetryAfter shorter by the time elapsed since at: the same counts, the
// same binding window, the same waits counted to the same instants.
//
// So a shard publishes the refusal of a hot key (one refused twice with no
// other key refused in the shard between) and Take answers requests for that
// key with the same policy and cost from it, without the shard's lock, until
// it lapses. A key refused from every core then writes no shared cache line at
// all; before, each refusal moved the lock's line between cores.
//
// The published refusal is always what the lock path would answer: every
// lock-path decision on the key withdraws it before reading the clock and
// puts it back only if the decision was a refusal, which changes nothing,
// at an instant the refusal covers (not a step back); Reset, eviction and
// the sweep withdraw it before dropping the key. The one thing the lock-free
// answers skip is a refusal's bookkeeping for eviction (entry.note sets
// limitedUntil to the end of that refusal's wait). Putting a refusal back
// keeps the later of its wait and the last decision's, so a key is never
// thought unlimited early; it may stay unevictable until the published
// refusal's wait ends where, had every refusal taken the lock, a cheaper
// request's shorter wait would have freed it sooner.
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

// answer sets *d to what r's key would be told at t (in ms), if r still
// holds then, and reports whether it does. A clock behind r's instant is
// left to the lock path, which knows how to treat a step back. (Decisions
// are filled in place: they are 224 bytes, and a refusal answered here is
// otherwise mostly copying.)
func (r *refusal) answer(t int64, d *window.Decision) bool {
	if t < r.at || t >= r.until {
		return false
	}
	*d = r.d
	elapsed := time.Duration(t-r.at) * time.Millisecond
	d.RetryAfter -= elapsed
	for i := range d.States() {
		if d.Windows[i].Reset > 0 {
			d.Windows[i].Reset -= elapsed
		}
	}
	return true
}

// matches reports whether r was published for req's key, policy and cost.
func (r *refusal) matches(req *store.Request) bool {
	return r.policy == req.Policy && r.cost == req.Cost && r.key == wordsOf(req.Key)
}

// answerRefused answers req into *d from the refusal published on sh,
// without the lock, if it matches and still holds, and reports whether it
// did.
//
// The clock is read between two loads of the refusal, and the lock path
// withdraws it before reading its own clock and never puts back a refusal it
// did not just withdraw: if the second load still finds it, every decision
// on the key that read the clock in between was a refusal, which changed
// nothing, so the answer is the lock path's at this instant. Without that, a
// reader could load the refusal, lose the CPU while an admission of the key
// at another cost lands, then read a later clock and answer as if that
// admission had not happened.
func (s *Store) answerRefused(sh *shard, req *store.Request, d *window.Decision) bool {
	r := sh.refused.Load()
	if r == nil || !r.matches(req) {
		return false
	}
	t := s.now().UnixMilli()
	return sh.refused.Load() == r && r.answer(t, d)
}

// withdraw takes down the refusal published for k, if any, and returns it.
// It runs under sh's lock before a decision on k reads the clock, and
// before k's state is dropped.
func (sh *shard) withdraw(k keyWords) *refusal {
	r := sh.refused.Load()
	if r == nil || r.key != k {
		return nil
	}
	sh.refused.Store(nil)
	return r
}

// remember runs under sh's lock after a sliding-log decision d on k at t,
// with prev the refusal withdrawn for it. A refusal changes nothing, so prev,
// if it still holds at t, goes back up whatever request was refused; else d
// is published when it is k's second refusal with no other key refused in
// the shard between. Requiring a repeat keeps keys refused once in passing
// (most of them, when many clients are limited) from allocating a refusal
// each, and putting prev back keeps a key asked two ways in turn from
// allocating one per request.
func (sh *shard) remember(e *entry[window.Log], k keyWords, prev *refusal, p *window.Policy, cost int, d *window.Decision, t int64) {
	if d.Allowed {
		return
	}
	repeat := sh.hasRefused && sh.lastRefused == k
	sh.lastRefused, sh.hasRefused = k, true
	if prev != nil && t >= prev.at && t < prev.until {
		// d's bookkeeping may have lowered limitedUntil below prev's,
		// and prev's requests skip theirs: keep the later of the two.
		if x := sec(prev.at + prev.d.RetryAfter.Milliseconds()); x > e.limitedUntil {
			e.limitedUntil = x
		}
		sh.refused.Store(prev)
		return
	}
	if until, ok := lasts(p, cost, d, t); repeat && ok {
		sh.refused.Store(&refusal{key: k, policy: p, cost: cost, at: t, until: until, d: *d})
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
