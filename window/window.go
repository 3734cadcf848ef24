package window

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// MaxWindows is the largest number of windows one [Policy] may hold. A
// [Decision] carries one [State] per window in a fixed-size array so that
// deciding never allocates; eight is far more than any published API uses
// (Lindris uses two).
const MaxWindows = 8

// MaxLength is the longest window [Policy.Validate] accepts: 30 days.
// Admission instants are kept as 32-bit millisecond offsets, which cover
// 49 days; the margin keeps every live entry unambiguous.
const MaxLength = 30 * 24 * time.Hour

// MaxLimit is the largest per-window limit [Policy.Validate] accepts. Counts
// are kept in 32 bits.
const MaxLimit = math.MaxInt32

// ErrInvalidPolicy is wrapped by every error [Policy.Validate] returns.
var ErrInvalidPolicy = errors.New("window: invalid policy")

// Window is one sliding window: at most Limit units of cost are admitted in
// any interval of Length, measured in real time at any resolution.
//
// Decisions read the clock in whole milliseconds (truncated), so two
// readings that differ by m ms may be just over m-1 ms apart in truth:
// 0.9 ms and 1000.0 ms read as 0 and 1000. An entry therefore counts for
// as long as it might still be younger than Length: an entry admitted at
// millisecond reading e counts at every reading t with e <= t <= e+Length,
// and leaves at the reading e+Length+1, when its true age is surely more
// than Length. The window at reading t covers [t-Length, t]: Length+1
// millisecond readings. An entry thus leaves between 0 and 1 ms later than
// its true age reaches Length, never earlier, and [State.Reset] and
// [Decision.RetryAfter] count to that reading.
type Window struct {
	// Name labels the window in headers (X-RateLimit-Limited-By), metrics and
	// errors. Empty means a name derived from Length: "second", "minute",
	// "hour", "day", or Length's String form ("1.5s") for anything else.
	Name string
	// Length is the width of the window. It must be a whole number of
	// milliseconds, at least 1ms and at most [MaxLength].
	Length time.Duration
	// Limit is the most cost admitted within any Length; 1 to [MaxLimit].
	Limit int
}

// Label returns w.Name, or the name derived from w.Length when Name is empty.
func (w Window) Label() string {
	if w.Name != "" {
		return w.Name
	}
	switch w.Length {
	case time.Second:
		return "second"
	case time.Minute:
		return "minute"
	case time.Hour:
		return "hour"
	case 24 * time.Hour:
		return "day"
	}
	return w.Length.String()
}

// Algorithm selects how a [Policy] counts.
type Algorithm uint8

const (
	// SlidingLog is the exact sliding log: every admitted request is remembered until
	// it leaves the longest window, and each window admits a request of cost
	// c at millisecond t iff the cost admitted in [t-Length, t] plus c is at
	// most Limit (see [Window]). It never admits more than the limit in any
	// interval of Length, however finely measured. Memory per key is 4 bytes
	// per admitted request still inside the longest window. This is the zero
	// value and the default.
	SlidingLog Algorithm = iota
	// SlidingCounter is the sliding-window counter: per window, the count of the
	// current fixed window plus the previous window's count weighted by how
	// much of it still overlaps the sliding interval. Constant memory per key
	// (16 bytes per window); it assumes requests in the previous window were
	// evenly spread, so it can be off in either direction when they were not.
	// Being an estimate, it keeps plain millisecond slots and does not get
	// the exact log's extra millisecond (see [Window]).
	SlidingCounter
)

// String returns "exact" or "counter".
func (a Algorithm) String() string {
	switch a {
	case SlidingLog:
		return "exact"
	case SlidingCounter:
		return "counter"
	}
	return fmt.Sprintf("Algorithm(%d)", uint8(a))
}

// Policy is a set of windows decided together: a request is admitted only if
// every window admits it, and an admitted request is recorded in all of them
// at the same instant. A rejected request is recorded in none.
//
// A Policy is a plain value; it is safe to share between goroutines as long
// as nobody modifies it.
type Policy struct {
	// Windows are the windows enforced together; 1 to [MaxWindows].
	Windows []Window
	// Algorithm is how the windows count. The zero value is [SlidingLog].
	Algorithm Algorithm
}

// Default returns the Lindris policy: 60 requests per minute and 2 per
// second, both sliding, exact.
func Default() Policy {
	return Policy{Windows: []Window{
		{Length: time.Minute, Limit: 60},
		{Length: time.Second, Limit: 2},
	}}
}

// Validate reports every problem with p at once, each wrapping
// [ErrInvalidPolicy], or nil when p can be enforced.
func (p Policy) Validate() error {
	var errs []error
	if len(p.Windows) == 0 {
		errs = append(errs, fmt.Errorf("no windows: %w", ErrInvalidPolicy))
	}
	if len(p.Windows) > MaxWindows {
		errs = append(errs, fmt.Errorf("%d windows, at most %d: %w", len(p.Windows), MaxWindows, ErrInvalidPolicy))
	}
	if p.Algorithm > SlidingCounter {
		errs = append(errs, fmt.Errorf("algorithm %d unknown: %w", p.Algorithm, ErrInvalidPolicy))
	}
	names := make(map[string]int, len(p.Windows))
	for i, w := range p.Windows {
		switch {
		case w.Length < time.Millisecond:
			errs = append(errs, fmt.Errorf("window %d: length %v below 1ms: %w", i, w.Length, ErrInvalidPolicy))
		case w.Length > MaxLength:
			errs = append(errs, fmt.Errorf("window %d: length %v above %v: %w", i, w.Length, MaxLength, ErrInvalidPolicy))
		case w.Length%time.Millisecond != 0:
			errs = append(errs, fmt.Errorf("window %d: length %v not a whole number of milliseconds: %w", i, w.Length, ErrInvalidPolicy))
		}
		if w.Limit < 1 || w.Limit > MaxLimit {
			errs = append(errs, fmt.Errorf("window %d: limit %d outside 1..%d: %w", i, w.Limit, MaxLimit, ErrInvalidPolicy))
		}
		if j, dup := names[w.Label()]; dup {
			errs = append(errs, fmt.Errorf("window %d: name %q already used by window %d: %w", i, w.Label(), j, ErrInvalidPolicy))
		}
		names[w.Label()] = i
	}
	return errors.Join(errs...)
}

// MinLimit returns the smallest limit among p's windows: the largest cost a
// single request can ever be admitted with.
func (p *Policy) MinLimit() int {
	m := 0
	for i, w := range p.Windows {
		if i == 0 || w.Limit < m {
			m = w.Limit
		}
	}
	return m
}

// State is one window's answer within a [Decision].
type State struct {
	// Limit is the window's limit.
	Limit int
	// Remaining is the cost the window would still admit right after this
	// decision: Limit minus the cost counted in the window, never negative.
	Remaining int
	// Reset is how long until the window frees at least one unit of cost
	// (its oldest counted entry leaves the window). Zero when nothing is
	// counted.
	Reset time.Duration
}

// Decision is the answer for all windows of a policy, taken atomically.
type Decision struct {
	// Allowed reports whether the request was admitted (and recorded in
	// every window).
	Allowed bool
	// Limiting is the index of the binding window. When the request was
	// rejected it is the rejecting window with the longest wait (ties: the
	// longer window); when it was admitted it is the window with the fewest
	// remaining (ties: the longer window).
	Limiting int
	// RetryAfter is how long until this same request would be admitted by
	// every window, assuming nobody else uses the key meanwhile. It is
	// positive whenever Allowed is false and zero when Allowed is true. When
	// the cost exceeds a window's limit the request can never be admitted and
	// RetryAfter is the longest window's length.
	RetryAfter time.Duration
	// N is the number of windows: Windows[:N] are meaningful.
	N int
	// Windows holds each window's state, in policy order.
	Windows [MaxWindows]State
}

// States returns the meaningful part of d.Windows.
func (d *Decision) States() []State { return d.Windows[:d.N] }

// ms converts a duration of whole milliseconds to int64 milliseconds.
func ms(d time.Duration) int64 { return int64(d / time.Millisecond) }

// leaves returns the first millisecond reading at which an entry admitted
// at reading at no longer counts in a window of length ms: at+length+1,
// since two readings length ms apart may be less than length apart in
// truth (see [Window]).
func leaves(at, length int64) int64 { return at + length + 1 }

// dur converts int64 milliseconds to a duration.
func dur(m int64) time.Duration { return time.Duration(m) * time.Millisecond }

// limiting picks the binding window for d, given per-window waits (only
// meaningful for rejecting windows when !d.Allowed).
func (d *Decision) pickLimiting(p *Policy, rejecting uint32, waits *[MaxWindows]int64) {
	best := -1
	for i := 0; i < d.N; i++ {
		if d.Allowed {
			if best < 0 || d.Windows[i].Remaining < d.Windows[best].Remaining ||
				(d.Windows[i].Remaining == d.Windows[best].Remaining && p.Windows[i].Length > p.Windows[best].Length) {
				best = i
			}
			continue
		}
		if rejecting&(1<<i) == 0 {
			continue
		}
		if best < 0 || waits[i] > waits[best] ||
			(waits[i] == waits[best] && p.Windows[i].Length > p.Windows[best].Length) {
			best = i
		}
	}
	d.Limiting = best
	if !d.Allowed {
		d.RetryAfter = dur(waits[best])
	}
}
