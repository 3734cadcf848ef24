package client

import (
	"sync"
	"time"
)

// bucket is what the transport knows about the quota of one host (and
// key), and the requests it has in flight there. Every field is guarded by
// mu.
//
// The picture comes from the latest response. Between responses it is kept
// current locally: each request sent takes one from every window's
// remaining count, so that requests sent together do not all spend the same
// last slot. When a window is used up the bucket waits for its reset; once
// the reset has passed it sends one request (a probe) and lets the others
// wait for its answer, because a sliding window frees at least one slot at
// its reset but not necessarily more.
type bucket struct {
	mu sync.Mutex

	// seen is set by the first response: before it, nothing is known about
	// the host, and only one request at a time is sent.
	seen bool
	// windows are the latest response's windows, remaining counts lowered
	// by the requests sent since.
	windows []windowState
	// blockedUntil holds every request back after a refusal: until its
	// Retry-After (or reset), or, when it said nothing, its backoff.
	blockedUntil time.Time

	inflight int
	// sent numbers requests as they are sent; applied is the number of the
	// latest request whose response shaped windows. A response to an older
	// request can only lower the picture, never raise it.
	sent, applied uint64

	// tat is the client-side rate's theoretical arrival time (GCRA): the
	// instant the bucket would be empty again. Zero when Rate is off or
	// unused.
	tat time.Time

	// changed is closed, and replaced, whenever a request finishes or the
	// picture changes, to wake waiting requests.
	changed chan struct{}

	// refs counts the requests using the bucket (guarded by the
	// transport's mu, not this one); idleSince is when it last dropped to 0.
	refs      int
	idleSince time.Time
}

// windowState is one window of the picture.
type windowState struct {
	name      string
	remaining int
	// resetAt is when the window frees capacity, at most MaxDelay after the
	// response that said so; zero when unknown.
	resetAt time.Time
}

// verdict is the answer of bucket.check: send now (ok), or wait.
type verdict struct {
	ok bool
	// wait is how long until the earliest instant the request could be
	// sent, 0 when it waits for another request to finish instead.
	wait   time.Duration
	reason string
}

// check decides whether a request may be sent at now. skipProbe is set for
// a request that has already waited ProbeWait for a probe's answer.
func (b *bucket) check(now time.Time, c *Config, skipProbe bool) verdict {
	var v verdict
	hold := func(d time.Duration, reason string) {
		if d > v.wait {
			v.wait, v.reason = d, reason
		}
	}
	if b.blockedUntil.After(now) {
		hold(b.blockedUntil.Sub(now), WaitRetryAfter)
	}
	probe := !b.seen && b.inflight > 0
	for i := range b.windows {
		w := &b.windows[i]
		if w.remaining > 0 {
			continue
		}
		if w.resetAt.After(now) {
			hold(w.resetAt.Sub(now), WaitQuota)
		} else if b.inflight > 0 {
			probe = true
		}
	}
	if c.Rate.Limit > 0 {
		if earliest := b.tat.Add(-time.Duration(c.Rate.Burst-1) * interval(&c.Rate)); earliest.After(now) {
			hold(earliest.Sub(now), WaitRate)
		}
	}
	switch {
	case v.wait > 0:
	case c.MaxInFlight > 0 && b.inflight >= c.MaxInFlight:
		v.reason = WaitInFlight
	case probe && !skipProbe:
		v.reason = WaitProbe
	default:
		v.ok = true
	}
	return v
}

// take records a request sent at now and returns its number.
func (b *bucket) take(now time.Time, c *Config) uint64 {
	for i := range b.windows {
		b.windows[i].remaining--
	}
	if c.Rate.Limit > 0 {
		b.tat = later(b.tat, now).Add(interval(&c.Rate))
	}
	b.inflight++
	b.sent++
	return b.sent
}

// interval is the spacing of the client-side rate, rounded up so that the
// rate is never exceeded.
func interval(r *Rate) time.Duration {
	return (r.Per + time.Duration(r.Limit) - 1) / time.Duration(r.Limit)
}

// done records the end of request seq at now, and what its response said
// (q nil for a transport error). blockFor, when positive, holds every
// request to the bucket back for that long (already capped).
func (b *bucket) done(seq uint64, q *Quota, now time.Time, blockFor time.Duration, c *Config) {
	b.inflight--
	if q != nil {
		b.seen = true
		if len(q.Windows) > 0 {
			b.apply(seq, q.Windows, now, c.MaxDelay)
		}
	}
	if blockFor > 0 {
		b.blockedUntil = later(b.blockedUntil, now.Add(blockFor))
	}
	b.notify()
}

// apply takes the windows of the response to request seq into the picture.
// Remaining counts are lowered by the requests still in flight, which the
// server may not have counted yet: the picture errs towards waiting. A
// response to a request older than the one that last shaped the picture
// may have been overtaken by newer requests at the server, so it can only
// lower counts and push resets later.
func (b *bucket) apply(seq uint64, ws []Window, now time.Time, maxDelay time.Duration) {
	fresh := make([]windowState, len(ws))
	for i, w := range ws {
		fresh[i] = windowState{name: w.Name, remaining: w.Remaining - b.inflight}
		if w.Reset > 0 {
			fresh[i].resetAt = now.Add(padded(w.Reset, maxDelay))
		}
	}
	if seq > b.applied {
		b.windows, b.applied = fresh, seq
		return
	}
	if !sameWindows(b.windows, fresh) {
		return
	}
	for i := range fresh {
		b.windows[i].remaining = min(b.windows[i].remaining, fresh[i].remaining)
		b.windows[i].resetAt = later(b.windows[i].resetAt, fresh[i].resetAt)
	}
}

// sameWindows reports whether a and b name the same windows in the same
// order.
func sameWindows(a, b []windowState) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].name != b[i].name {
			return false
		}
	}
	return true
}

// block holds every request back until now+d, unless already held longer.
func (b *bucket) block(now time.Time, d time.Duration) {
	b.blockedUntil = later(b.blockedUntil, now.Add(d))
	b.notify()
}

// notify wakes every waiting request.
func (b *bucket) notify() {
	if b.changed != nil {
		close(b.changed)
	}
	b.changed = make(chan struct{})
}

// idleAt reports whether the bucket holds nothing that matters any more at
// now: no request uses it and every instant it knows of has passed.
func (b *bucket) idleAt(now time.Time) bool {
	if b.refs > 0 || b.blockedUntil.After(now) || b.tat.After(now) {
		return false
	}
	for i := range b.windows {
		if b.windows[i].resetAt.After(now) {
			return false
		}
	}
	return true
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
