package middleware

import (
	"context"
	"net/http"
	"time"

	"github.com/ratekit/ratekit/headers"
	"github.com/ratekit/ratekit/store"
	"github.com/ratekit/ratekit/window"
)

// slotsUsable reports whether a concurrency slot should be asked for at
// all for the rate decision req: only while the circuit breaker is closed
// (open, the failure policy will answer; half-open, only the probe may wait
// for the store, and the probe is the rate decision), and not for a bucket
// the deny cache is about to refuse (that costs no round trip, so neither
// should the slot).
func (l *Limiter) slotsUsable(req *store.Request, now time.Time) bool {
	if l.breaker != nil && l.breaker.state() != breakerClosed {
		return false
	}
	if l.deny != nil {
		if _, denied := l.deny.get(req, now); denied {
			return false
		}
	}
	return true
}

// acquire takes a concurrency slot for id. refused means the client has
// Concurrency requests in flight already. A store failure neither refuses
// nor holds a slot: the request goes on to the rate decision, whose own
// failure policy then applies (an outage of the slot store must not refuse
// everyone).
func (l *Limiter) acquire(ctx context.Context, id *identity, sc *scratch) (lease store.Lease, held, refused bool) {
	lease, held, err := l.slots.Acquire(ctx, l.keyOf(&l.slotScope, id, sc), l.slotLimit, l.slotTTL)
	if err != nil {
		// Not reported to the breaker: the rate decision that follows
		// reports the store's state, once per request.
		l.observe.ObserveStoreError(l.errorKind(err))
		l.logFailure(err)
		return lease, false, false
	}
	return lease, held, !held
}

// release returns a slot. It runs after the handler, when the request's
// context may be cancelled (client gone), so it gets a context of its own.
func (l *Limiter) release(ctx context.Context, lease store.Lease) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	if err := l.slots.Release(ctx, lease); err != nil {
		// The lease expires after ConcurrencyTTL anyway.
		l.observe.ObserveStoreError(l.errorKind(err))
		l.logFailure(err)
	}
}

// refuseConcurrency answers 429 for a client with too many requests in
// flight, rendered as a decision of a one-window pseudo-policy named
// "concurrency", so every header style says X-RateLimit-Limited-By:
// concurrency (or its equivalent) and Retry-After: 1.
func (l *Limiter) refuseConcurrency(w http.ResponseWriter, sc *scratch) {
	l.renderConcurrency(w, sc)
	l.refuse(w, sc, http.StatusTooManyRequests)
}

// renderConcurrency writes the headers of a concurrency refusal.
func (l *Limiter) renderConcurrency(w http.ResponseWriter, sc *scratch) {
	sc.d = window.Decision{RetryAfter: time.Second, N: 1}
	sc.d.Windows[0] = window.State{Limit: l.slotLimit, Reset: time.Second}
	sc.in = headers.Input{Policy: &l.slotsPol, Decision: &sc.d, Now: sc.now} // refuse adds Now for a custom envelope
	l.render(w, sc)
}
