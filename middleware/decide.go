package middleware

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/ratekit/ratekit/internal/breaker"
	"github.com/ratekit/ratekit/internal/denycache"
	"github.com/ratekit/ratekit/internal/keyhash"
	"github.com/ratekit/ratekit/store"
	"github.com/ratekit/ratekit/store/memory"
	"github.com/ratekit/ratekit/window"
)

// decider takes decisions from the store, and applies the failure policy
// when it cannot. It is the one place that knows a shared store from a
// local one: only a shared store gets a circuit breaker and a deny cache,
// since only a shared store is a round trip away and can be down.
type decider struct {
	store     store.Store
	ownStore  bool             // New created the store; Close closes it
	breaker   *breaker.Breaker // nil for a local store, or disabled
	deny      *denycache.Cache // nil for a local store, or disabled
	fallback  *memory.Store    // LocalFallback only
	onFailure FailurePolicy
	instances int         // Config.FallbackInstances, which divides fallback limits
	slots     *slots      // nil without Config.Concurrency
	timed     bool        // an Observer wants decision durations
	needNow   bool        // something reads call.now
	fbActive  atomic.Bool // the last decision came from the fallback
}

// slots is the concurrency limiter: Config.Concurrency requests in flight
// per client, in a scope of its own.
type slots struct {
	store store.Concurrency
	limit int
	ttl   time.Duration
	scope keyhash.Scope
	// policy is the one-window pseudo-policy a refusal is rendered with,
	// so every header style says it was the concurrency limit.
	policy policy
}

func (dc *decider) close() error {
	if dc.fallback != nil {
		dc.fallback.Close()
	}
	if dc.ownStore {
		return dc.store.Close()
	}
	return nil
}

// errBreakerOpen is the failure of a request the circuit breaker kept from
// the store.
var errBreakerOpen = errors.New("middleware: circuit breaker open; store not called")

// decide takes the decision for c (identified, not exempt) under rs, and
// sets c.outcome: allowed, limited or shadow from a decision, or error when
// none could be taken and the failure policy answers.
func (l *Limiter) decide(ctx context.Context, rs *ruleSet, c *call, sc *scratch) {
	if c.outcome != "" {
		return // exempt
	}
	if c.err != nil {
		// A hook panicked while identifying: the request is a store
		// failure, which LocalFallback decides by its address.
		l.observe.ObserveStoreError(ctx, store.KindPanic)
		l.decideLocally(ctx, c, sc)
		return
	}
	p, fb := rs.policies(c.rule, &c.id)
	c.policy = p
	if c.cost > p.minLimit {
		// No wait could admit it: refused without a round trip, and
		// without a Retry-After that would not come true.
		c.tooCostly, c.outcome, c.limitedBy = true, OutcomeLimited, tooCostlyWindow(&p.Policy, c.cost)
		if c.shadow {
			c.outcome = OutcomeShadow
		}
		return
	}
	c.key = l.who.keyOf(&c.rule.scope, &c.id, &sc.buf)
	if l.dec.needNow {
		c.now = time.Now()
	}
	if c.slots && l.dec.slots != nil && l.slotsUsable(c) && l.acquire(ctx, c, sc) {
		c.slotRefused, c.policy, c.limitedBy = true, &l.dec.slots.policy, "concurrency"
		c.d = window.Decision{RetryAfter: time.Second, N: 1}
		c.d.Windows[0] = window.State{Limit: l.dec.slots.limit, Reset: time.Second}
		c.outcome = OutcomeLimited
		if c.shadow {
			c.outcome = OutcomeShadow
		}
		return
	}
	if err := l.take(ctx, c, fb); err != nil {
		c.err, c.outcome, c.policy = err, OutcomeError, nil
		return
	}
	switch {
	case c.d.Allowed:
		c.outcome = OutcomeAllowed
	case c.shadow:
		c.outcome, c.limitedBy = OutcomeShadow, limitedBy(&c.policy.Policy, &c.d)
	default:
		c.outcome, c.limitedBy = OutcomeLimited, limitedBy(&c.policy.Policy, &c.d)
	}
}

// take decides c.key under c.policy into c.d: from the deny cache, else the
// store (unless the breaker is open), else, under LocalFallback, the local
// limiter with the fallback share fb, which sets c.degraded and c.policy.
// An error means no decision.
func (l *Limiter) take(ctx context.Context, c *call, fb *policy) error {
	dc := &l.dec
	q := denycache.Query{Key: c.key, Policy: c.policy.id, Cost: c.cost}
	if d, ok := dc.deny.Get(&q, c.now); ok {
		c.d = d
		l.observe.ObserveDenyCacheHit(ctx)
		return nil
	}
	req := store.Request{Key: c.key, Policy: &c.policy.Policy, Cost: c.cost}
	var err error
	probe, called := false, true
	if dc.breaker != nil {
		probe, called = dc.breaker.Allow()
	}
	if called {
		c.d, err = dc.store.Take(ctx, req)
		if dc.timed {
			l.observe.ObserveDecision(ctx, time.Since(c.now))
		}
	} else {
		err = errBreakerOpen
	}
	switch {
	case err == nil:
		if dc.breaker != nil {
			dc.breaker.Success(probe)
		}
		if !c.d.Allowed {
			dc.deny.Put(&q, &c.d, c.now)
		}
		l.noteFallback(false)
		return nil
	case called && dc.breaker != nil && !errors.Is(err, context.Canceled):
		// A client that went away says nothing about the store; a probe
		// cancelled that way is replaced after the cooldown.
		dc.breaker.Failure(probe)
	}
	l.observe.ObserveStoreError(ctx, l.kindOf(err))
	// A refusal the store gave this bucket, whose Retry-After has not
	// passed though the deny cache's TTL has, is a truer answer than any
	// failure policy: the fallback counted none of the bucket's shared
	// admissions, and failing open would admit a client the store had
	// just refused.
	if d, ok := dc.deny.Refusal(&q, c.now); ok {
		l.logFailure(err)
		c.d, c.degraded = d, true
		return nil
	}
	if dc.fallback == nil || c.cost > fb.minLimit {
		// A cost above the local share could never pass there: the
		// failure policy answers rather than a Retry-After that would
		// not come true.
		return err
	}
	l.logFailure(err)
	req.Policy = &fb.Policy
	if c.d, err = dc.fallback.Take(ctx, req); err != nil {
		return err
	}
	c.policy, c.degraded = fb, true
	l.noteFallback(true)
	return nil
}

// decideLocally decides c with the local fallback limiter under the rule's
// fallback share: what LocalFallback does with a request whose hook
// panicked. An identity hook's panic leaves c counted by its address (the
// key it choked on is never used). Without LocalFallback, or for a cost
// above the share, it leaves the failure policy to answer.
func (l *Limiter) decideLocally(ctx context.Context, c *call, sc *scratch) {
	c.outcome = OutcomeError
	if l.dec.fallback == nil || c.cost > c.rule.fallback.minLimit {
		return
	}
	// A failed identity hook left c.id the client's address; a failed
	// CostFunc left it whoever it was.
	c.policy = &c.rule.fallback
	c.key = l.who.keyOf(&c.rule.scope, &c.id, &sc.buf)
	d, err := l.dec.fallback.Take(ctx, store.Request{Key: c.key, Policy: &c.policy.Policy, Cost: c.cost})
	if err != nil {
		c.err, c.policy = err, nil
		return
	}
	c.d, c.err, c.degraded = d, nil, true
	switch {
	case d.Allowed:
		c.outcome = OutcomeAllowed
	case c.shadow:
		c.outcome, c.limitedBy = OutcomeShadow, limitedBy(&c.policy.Policy, &d)
	default:
		c.outcome, c.limitedBy = OutcomeLimited, limitedBy(&c.policy.Policy, &d)
	}
}

// tooCostlyWindow returns the label of the first window of p whose limit
// is below cost.
func tooCostlyWindow(p *window.Policy, cost int) string {
	for _, w := range p.Windows {
		if w.Limit < cost {
			return w.Label()
		}
	}
	return ""
}

// limitedBy returns the label of the window that refused d under p, or ""
// if d names no window of p (a custom store's mistake must not panic the
// request).
func limitedBy(p *window.Policy, d *window.Decision) string {
	if uint(d.Limiting) >= uint(len(p.Windows)) {
		return ""
	}
	return p.Windows[d.Limiting].Label()
}

// slotsUsable reports whether a concurrency slot should be asked for at
// all for c's rate decision: only while the circuit breaker is closed
// (open, the failure policy will answer; half-open, only the probe may wait
// for the store, and the probe is the rate decision), and not for a bucket
// the deny cache is about to refuse (that costs no round trip, so neither
// should the slot).
func (l *Limiter) slotsUsable(c *call) bool {
	dc := &l.dec
	if dc.breaker != nil && dc.breaker.State() != breaker.Closed {
		return false
	}
	_, denied := dc.deny.Get(&denycache.Query{Key: c.key, Policy: c.policy.id, Cost: c.cost}, c.now)
	return !denied
}

// acquire takes a concurrency slot for c's client and reports whether the
// client has Concurrency requests in flight already. A store failure
// neither refuses nor holds a slot: the request goes on to the rate
// decision, whose own failure policy then applies (an outage of the slot
// store must not refuse everyone).
func (l *Limiter) acquire(ctx context.Context, c *call, sc *scratch) (refused bool) {
	sl := l.dec.slots
	lease, held, err := sl.store.Acquire(ctx, l.who.keyOf(&sl.scope, &c.id, &sc.buf), sl.limit, sl.ttl)
	if err != nil {
		// Not reported to the breaker: the rate decision that follows
		// reports the store's state, once per request.
		l.observe.ObserveStoreError(ctx, l.kindOf(err))
		l.logFailure(err)
		return false
	}
	c.lease, c.held = lease, held
	return !held
}

// release returns a slot. It runs after the handler, when the request's
// context may be cancelled (client gone), so it gets a context of its own.
func (l *Limiter) release(ctx context.Context, lease store.Lease) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	if err := l.dec.slots.store.Release(ctx, lease); err != nil {
		// The lease expires after ConcurrencyTTL anyway.
		l.observe.ObserveStoreError(ctx, l.kindOf(err))
		l.logFailure(err)
	}
}

// kindOf names a failure for the observer, in store's vocabulary.
func (l *Limiter) kindOf(err error) string {
	switch {
	case errors.Is(err, errBreakerOpen):
		return store.KindBreakerOpen
	case errors.Is(err, errHookPanic):
		return store.KindPanic
	}
	return store.Classify(l.dec.store, err)
}

// noteFallback reports fallback transitions to the observer and the log.
func (l *Limiter) noteFallback(active bool) {
	dc := &l.dec
	if dc.fallback == nil || dc.fbActive.Load() == active || dc.fbActive.Swap(active) == active {
		return
	}
	l.observe.ObserveFallback(active)
	if active {
		l.log.Warn("ratekit: shared store failing; deciding with the local fallback limiter")
	} else {
		l.log.Info("ratekit: shared store answering again; local fallback off")
	}
}

// breakerChanged reports breaker transitions to the log and the observer.
func (l *Limiter) breakerChanged(from, to breaker.State) {
	l.observe.ObserveBreaker(int(to))
	if to == breaker.Open {
		l.log.Warn("ratekit: circuit breaker open; the store is not called until a probe succeeds", "from", from.String())
	} else {
		l.log.Info("ratekit: circuit breaker "+to.String(), "from", from.String())
	}
}

// logFailure logs a store failure, at most once a second.
func (l *Limiter) logFailure(err error) {
	if ok, _ := l.log.failures.due(); ok {
		l.log.Warn("ratekit: rate-limit store failed; applying the failure policy",
			"error", err.Error(), "policy", l.dec.onFailure.String())
	}
}
