package breaker

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults used where a [Config] field is zero.
const (
	DefaultFailures = 5
	DefaultCooldown = time.Second
)

// Config configures a [Breaker]. Zero (or negative) fields take their
// defaults; the caller validates what its users wrote.
type Config struct {
	// Failures is how many consecutive failures open the breaker. Zero
	// means [DefaultFailures].
	Failures int
	// Cooldown is how long the breaker stays open before it lets one call
	// through as a probe, and how long a probe may stay silent before it is
	// presumed lost. Zero means [DefaultCooldown].
	Cooldown time.Duration
	// Disabled makes every method a no-op that lets every call through.
	Disabled bool
}

// State is where a breaker is. The numeric values are what metrics export
// as a gauge: 0 closed, 1 half-open, 2 open.
type State uint8

const (
	// Closed: every request calls the store. The zero value.
	Closed State = iota
	// HalfOpen: one probe is calling the store; everybody else is
	// answered by the failure policy.
	HalfOpen
	// Open: nobody calls the store until the cooldown has passed.
	Open
)

// String returns "closed", "half-open" or "open".
func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case HalfOpen:
		return "half-open"
	case Open:
		return "open"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// Breaker is a consecutive-failure circuit breaker with a single half-open
// probe. It is safe for concurrent use.
//
// In the closed state, Allow is one atomic load and Success is two (it
// writes only when there are failures to forget), so the hot path shares
// cache lines read-only and never allocates. Transitions take mu.
type Breaker struct {
	st    atomic.Uint32 // State
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
	onChange  func(from, to State)
}

type transition struct{ from, to State }

// New returns a closed breaker. Zero (or, unvalidated, negative)
// fields of cfg take their defaults. now is the clock; nil means time.Now.
// onChange, if not nil, is called once for every transition, in order,
// never concurrently with itself and never with the breaker's lock held, so
// it may call the breaker's methods. It runs on a goroutine that caused or
// observed a transition.
func New(cfg Config, now func() time.Time, onChange func(from, to State)) *Breaker {
	if now == nil {
		now = time.Now
	}
	b := &Breaker{
		disabled:  cfg.Disabled,
		threshold: int64(cfg.Failures),
		cooldown:  cfg.Cooldown,
		now:       now,
		onChange:  onChange,
	}
	if b.threshold <= 0 {
		b.threshold = DefaultFailures
	}
	if b.cooldown <= 0 {
		b.cooldown = DefaultCooldown
	}
	b.base = now()
	return b
}

// since returns the clock in nanoseconds since b.base.
func (b *Breaker) since() int64 { return int64(b.now().Sub(b.base)) }

// State returns the current state.
func (b *Breaker) State() State { return State(b.st.Load()) }

// Allow reports whether the caller may make its call (ok), and whether it
// is the half-open probe (probe). A caller with ok must report the outcome
// with Success or Failure, passing probe back.
func (b *Breaker) Allow() (probe, ok bool) {
	if b.disabled || b.st.Load() == uint32(Closed) {
		return false, true
	}
	t := b.since()
	if t < b.deadline.Load() {
		return false, false
	}
	b.mu.Lock()
	from := b.State()
	if from == Closed {
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
	if from != HalfOpen { // half-open to half-open: a lost probe replaced
		b.moveLocked(from, HalfOpen)
	}
	b.mu.Unlock()
	b.notify()
	return true, true
}

// Success reports that a call let through by Allow succeeded. A
// probe's success closes the breaker. Success of a call that was not the
// probe counts only while closed: once the breaker has opened, the probe
// alone decides.
func (b *Breaker) Success(probe bool) {
	if b.disabled {
		return
	}
	if b.st.Load() == uint32(Closed) {
		if b.fails.Load() != 0 {
			b.fails.Store(0)
		}
		return
	}
	if !probe {
		return
	}
	b.mu.Lock()
	if b.State() == HalfOpen {
		b.fails.Store(0)
		b.moveLocked(HalfOpen, Closed)
	}
	b.mu.Unlock()
	b.notify()
}

// Failure reports that a call let through by Allow failed. While
// closed it counts towards opening; a probe's failure reopens the breaker
// for another cooldown. Any other report (a call let through before the
// breaker opened, a probe replaced after it was presumed lost) changes
// nothing.
func (b *Breaker) Failure(probe bool) {
	if b.disabled {
		return
	}
	if b.st.Load() == uint32(Closed) {
		if b.fails.Add(1) < b.threshold {
			return
		}
		b.mu.Lock()
		// A success may have reset the count since the Add, or another
		// failure may already have opened the breaker.
		if b.State() == Closed && b.fails.Load() >= b.threshold {
			b.openLocked(Closed)
		}
		b.mu.Unlock()
		b.notify()
		return
	}
	if !probe {
		return
	}
	b.mu.Lock()
	if b.State() == HalfOpen {
		b.openLocked(HalfOpen)
	}
	b.mu.Unlock()
	b.notify()
}

// openLocked opens the breaker for one cooldown from now.
func (b *Breaker) openLocked(from State) {
	b.deadline.Store(b.since() + int64(b.cooldown))
	b.fails.Store(0)
	b.moveLocked(from, Open)
}

// moveLocked sets the state and queues the transition for onChange.
func (b *Breaker) moveLocked(from, to State) {
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
func (b *Breaker) notify() {
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
