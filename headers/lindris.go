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
// Every value is a one-element slice (len == cap == 1) that may be shared
// with other responses: treat it as read-only, as net/http does (Set, Add
// and Del are safe; see docs/headers.md). Numbers below 1024 come from a
// table; limits of any size are formatted once and kept in a cache of 256
// slots. A call allocates nothing when every other number is below 1024, its
// limits are cached and the binding window is labelled second, minute, hour
// or day or by one of the first 256 other labels. Otherwise it allocates
// once for the numbers it formats, once for each limit it adds to the cache
// and up to twice for a label it cannot cache. The zero value is ready to
// use.
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

	// Values come from the shared tables (see values.go): with the usual
	// numbers and labels a call formats and allocates nothing.
	var vals [6][]string
	ints := [6]int64{int64(d.Windows[primary].Limit), int64(d.Windows[primary].Remaining)}
	n, limits := 2, uint(1<<0)
	if second >= 0 {
		ints[2], ints[3] = int64(d.Windows[second].Limit), int64(d.Windows[second].Remaining)
		n, limits = 4, limits|1<<2
	}
	ints[n] = waitSeconds(d.Windows[bind].Reset)
	n++
	if refused {
		ints[n] = retrySeconds(in)
		n++
	}
	intValues(vals[:n], ints[:n], limits)

	h[keyXLimit] = vals[0]
	h[keyXRemaining] = vals[1]
	i := 2
	if second >= 0 {
		h[keyXLimitSecond] = vals[2]
		h[keyXRemainingSec] = vals[3]
		i = 4
	}
	h[keyXReset] = vals[i]
	if refused {
		h[keyRetryAfter] = vals[i+1]
	}
	h[keyXLimitedBy] = labelValue(&p.Windows[bind])
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
