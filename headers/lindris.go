package headers

import (
	"net/http"
	"time"

	"github.com/ratekit/ratekit/window"
)

// Lindris is the default [Style], the fields of the Lindris API, which
// enforces a per-minute and a per-second window together:
//
//	X-RateLimit-Limit: 60
//	X-RateLimit-Remaining: 45
//	X-RateLimit-Limit-Second: 2
//	X-RateLimit-Remaining-Second: 1
//	X-RateLimit-Reset: 12
//	X-RateLimit-Limited-By: minute
//	Retry-After: 12
//
// X-RateLimit-Limit and X-RateLimit-Remaining describe the window labelled
// "minute" (see [window.Window.Label]), or the longest window when none is.
// The -Second pair describes the window labelled "second", or else the
// shortest of the other windows; it is omitted when the policy has a single
// window. With more than two windows the rest are not shown, except through
// the two fields below.
//
// X-RateLimit-Reset is the binding window's reset ([window.State.Reset]) in
// whole seconds, rounded up: the number of seconds until that window frees
// capacity, not a timestamp. X-RateLimit-Limited-By is the binding window's
// label ([window.Decision.Limiting]); bytes outside printable ASCII in a
// label are sent as '?'.
//
// On a rejection Retry-After is added: the decision's RetryAfter in whole
// seconds rounded up, at least 1, and never less than X-RateLimit-Reset.
//
// A call allocates once when every number is below 100, and at most twice
// otherwise. The zero value is ready to use.
type Lindris struct{}

var _ Style = Lindris{}

// WriteHeaders sets the Lindris fields for in on h.
func (Lindris) WriteHeaders(h http.Header, in *Input) {
	p, d, ok := in.windows()
	if !ok {
		writeRetryAfter(h, in)
		return
	}
	primary, second := lindrisWindows(p)
	bind := d.Limiting
	refused := !d.Allowed

	// One array backs every value slice: the single allocation of a call.
	// Each slice is capped at length 1 so that a later h.Add on one field
	// reallocates instead of overwriting the next field's value.
	vals := new([7]string)
	ints := [6]int64{int64(d.Windows[primary].Limit), int64(d.Windows[primary].Remaining)}
	n := 2
	if second >= 0 {
		ints[2], ints[3] = int64(d.Windows[second].Limit), int64(d.Windows[second].Remaining)
		n = 4
	}
	ints[n] = ceilSeconds(d.Windows[bind].Reset)
	n++
	if refused {
		ints[n] = retrySeconds(in)
		n++
	}
	formatInts(vals[:n], ints[:n])
	vals[6] = headerSafe(p.Windows[bind].Label())

	h[keyXLimit] = vals[0:1:1]
	h[keyXRemaining] = vals[1:2:2]
	i := 2
	if second >= 0 {
		h[keyXLimitSecond] = vals[2:3:3]
		h[keyXRemainingSec] = vals[3:4:4]
		i = 4
	}
	h[keyXReset] = vals[i : i+1 : i+1]
	if refused {
		h[keyRetryAfter] = vals[i+1 : i+2 : i+2]
	}
	h[keyXLimitedBy] = vals[6:7:7]
}

// lindrisWindows returns the index of the window shown in X-RateLimit-Limit
// and the one shown in X-RateLimit-Limit-Second (-1 for a single window).
// Ties go to the earlier window, so the choice is stable for a policy.
func lindrisWindows(p *window.Policy) (primary, second int) {
	primary, second = -1, -1
	longest := 0
	for i := range p.Windows {
		w := &p.Windows[i]
		if primary < 0 && isLabel(w, "minute", time.Minute) {
			primary = i
		}
		if w.Length > p.Windows[longest].Length {
			longest = i
		}
	}
	if primary < 0 {
		primary = longest
	}
	for i := range p.Windows {
		if i != primary && isLabel(&p.Windows[i], "second", time.Second) {
			return primary, i
		}
	}
	for i := range p.Windows {
		if i != primary && (second < 0 || p.Windows[i].Length < p.Windows[second].Length) {
			second = i
		}
	}
	return primary, second
}
