package middleware

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Default breaker settings, used where a [Breaker] field is zero.
const (
	defaultBreakerFailures = 5
	defaultBreakerCooldown = time.Second
)

// Breaker configures the circuit breaker around a shared store. While the
// breaker is open the store is not called: each request is answered by the
// failure policy at once instead of waiting for a store that is down, and the
// store gets room to recover. The zero value is the documented defaults:
// open after 5 consecutive failures, probe again after 1s.
//
// A Breaker is a plain value; the limiter copies it on construction.
type Breaker struct {
	// Failures is how many consecutive store failures open the breaker. A
	// success resets the count. Zero means 5; negative is a config error.
	Failures int
	// Cooldown is how long the breaker stays open before it lets one request
	// through to the store as a probe. If the probe succeeds the breaker
	// closes; if it fails the breaker stays open for another Cooldown. A
	// probe that has not reported after Cooldown (its request was abandoned)
	// is presumed lost and another probe is let through. Zero means 1s;
	// negative is a config error.
	Cooldown time.Duration
	// Disabled turns the breaker off: every request calls the store.
	Disabled bool
}

// validate reports every invalid field of b, naming it; the caller adds the
// package prefix and ErrInvalidConfig.
func (b *Breaker) validate() error {
	var errs []error
	if b.Failures < 0 {
		errs = append(errs, fmt.Errorf("Breaker.Failures %d: negative", b.Failures))
	}
	if b.Cooldown < 0 {
		errs = append(errs, fmt.Errorf("Breaker.Cooldown %v: negative", b.Cooldown))
	}
	return errors.Join(errs...)
}

// breakerState is where a breaker is. The numeric values are exported as a
// gauge: 0 closed, 1 half-open, 2 open.
type breakerState uint8

const (
	// breakerClosed: every request calls the store. The zero value.
	breakerClosed breakerState = iota
	// breakerHalfOpen: one probe is calling the store; everybody else is
	// answered by the failure policy.
	breakerHalfOpen
	// breakerOpen: nobody calls the store until the cooldown has passed.
	breakerOpen
)

// String returns "closed", "half-open" or "open".
func (s breakerState) String() string {
	switch s {
	case breakerClosed:
		return "closed"
	case breakerHalfOpen:
		return "half-open"
	case breakerOpen:
		return "open"
	}
	return "breakerState(" + strconv.Itoa(int(s)) + ")"
}

// breaker is a consecutive-failure circuit breaker with a single half-open
// probe. It is safe for concurrent use.
//
// In the closed state, allow is one atomic load and success is two (it
// writes only when there are failures to forget), so the hot path shares
// cache lines read-only and never allocates. Transitions take mu.
type breaker struct {
	st    atomic.Uint32 // breakerState
	fails atomic.Int64  // consecutive failures while closed
	// deadline, in nanoseconds since base: while open, when a probe may
	// go; while half-open, when the probe in flight is presumed lost.
	deadline atomic.Int64

	disabled  bool
	threshold int64
	cooldown  time.Duration
	now       func() time.Time
	base      time.Time // durations since base use the monotonic clock when now is time.Now

	mu        sync.Mutex
	pending   []transition // not yet passed to onChange, in order
	notifying bool         // a goroutine is draining pending
	onChange  func(from, to breakerState)
}

type transition struct{ from, to breakerState }

// newBreaker returns a closed breaker. Zero (or, unvalidated, negative)
// fields of cfg take their defaults. now is the clock; nil means time.Now.
// onChange, if not nil, is called once for every transition, in order,
// never concurrently with itself and never with the breaker's lock held, so
// it may call the breaker's methods. It runs on a goroutine that caused or
// observed a transition.
func newBreaker(cfg Breaker, now func() time.Time, onChange func(from, to breakerState)) *breaker {
	if now == nil {
		now = time.Now
	}
	b := &breaker{
		disabled:  cfg.Disabled,
		threshold: int64(cfg.Failures),
		cooldown:  cfg.Cooldown,
		now:       now,
		onChange:  onChange,
	}
	if b.threshold <= 0 {
		b.threshold = defaultBreakerFailures
	}
	if b.cooldown <= 0 {
		b.cooldown = defaultBreakerCooldown
	}
	b.base = now()
	return b
}

// since returns the clock in nanoseconds since b.base.
func (b *breaker) since() int64 { return int64(b.now().Sub(b.base)) }

// state returns the current state.
func (b *breaker) state() breakerState { return breakerState(b.st.Load()) }

// allow reports whether the caller may call the store (ok), and whether it
// is the half-open probe (probe). A caller with ok must report the outcome
// with success or failure, passing probe back.
func (b *breaker) allow() (probe, ok bool) {
	if b.disabled || b.st.Load() == uint32(breakerClosed) {
		return false, true
	}
	t := b.since()
	if t < b.deadline.Load() {
		return false, false
	}
	b.mu.Lock()
	from := b.state()
	if from == breakerClosed {
		b.mu.Unlock()
		return false, true
	}
	// Re-check under the lock: another caller may have become the probe
	// since the load above. Setting the deadline a full cooldown ahead is
	// what keeps every later caller out, including one whose clock read
	// was a little earlier than ours.
	if t < b.deadline.Load() {
		b.mu.Unlock()
		return false, false
	}
	b.deadline.Store(t + int64(b.cooldown))
	if from != breakerHalfOpen { // half-open to half-open: a lost probe replaced
		b.moveLocked(from, breakerHalfOpen)
	}
	b.mu.Unlock()
	b.notify()
	return true, true
}

// success reports that a store call let through by allow succeeded. A
// probe's success closes the breaker. Success of a call that was not the
// probe counts only while closed: once the breaker has opened, the probe
// alone decides.
func (b *breaker) success(probe bool) {
	if b.disabled {
		return
	}
	if b.st.Load() == uint32(breakerClosed) {
		if b.fails.Load() != 0 {
			b.fails.Store(0)
		}
		return
	}
	if !probe {
		return
	}
	b.mu.Lock()
	if b.state() == breakerHalfOpen {
		b.fails.Store(0)
		b.moveLocked(breakerHalfOpen, breakerClosed)
	}
	b.mu.Unlock()
	b.notify()
}

// failure reports that a store call let through by allow failed. While
// closed it counts towards opening; a probe's failure reopens the breaker
// for another cooldown. Any other report (a call let through before the
// breaker opened, a probe replaced after it was presumed lost) changes
// nothing.
func (b *breaker) failure(probe bool) {
	if b.disabled {
		return
	}
	if b.st.Load() == uint32(breakerClosed) {
		if b.fails.Add(1) < b.threshold {
			return
		}
		b.mu.Lock()
		// A success may have reset the count since the Add, or another
		// failure may already have opened the breaker.
		if b.state() == breakerClosed && b.fails.Load() >= b.threshold {
			b.openLocked(breakerClosed)
		}
		b.mu.Unlock()
		b.notify()
		return
	}
	if !probe {
		return
	}
	b.mu.Lock()
	if b.state() == breakerHalfOpen {
		b.openLocked(breakerHalfOpen)
	}
	b.mu.Unlock()
	b.notify()
}

// openLocked opens the breaker for one cooldown from now.
func (b *breaker) openLocked(from breakerState) {
	b.deadline.Store(b.since() + int64(b.cooldown))
	b.fails.Store(0)
	b.moveLocked(from, breakerOpen)
}

// moveLocked sets the state and queues the transition for onChange.
func (b *breaker) moveLocked(from, to breakerState) {
	b.st.Store(uint32(to))
	if b.onChange != nil {
		b.pending = append(b.pending, transition{from, to})
	}
}

// notify passes queued transitions to onChange outside the lock. Only one
// goroutine drains at a time, so calls are ordered as the transitions were
// (a gauge set from them ends on the current state); a transition queued
// while another goroutine drains is delivered by that goroutine, which
// checks for more under the lock before it stops.
func (b *breaker) notify() {
	if b.onChange == nil {
		return
	}
	b.mu.Lock()
	if b.notifying || len(b.pending) == 0 {
		b.mu.Unlock()
		return
	}
	b.notifying = true
	done := false
	defer func() {
		if !done { // onChange panicked: let the next transition drain again
			b.mu.Lock()
			b.notifying = false
			b.mu.Unlock()
		}
	}()
	for len(b.pending) > 0 {
		batch := b.pending
		b.pending = nil
		b.mu.Unlock()
		for _, tr := range batch {
			b.onChange(tr.from, tr.to)
		}
		b.mu.Lock()
	}
	b.notifying = false
	done = true
	b.mu.Unlock()
}
