// Package window is ratekit's sliding-window arithmetic: given the state of
// one key, a [Policy] (several windows decided together), a cost and the
// current instant, it decides whether the request is admitted and what every
// window has left.
//
// Everything here works on plain values. The package reads no clock (the
// instant is an argument, as in golang.org/x/time/rate's AllowN), starts no
// goroutine, does no I/O and keeps no map of clients: stores own the per-key
// state values ([Log] or [Counter]), serialise access to them and read the
// clock once per decision.
//
// # Semantics
//
// Time is counted in whole milliseconds, read by truncating the clock. A
// request of cost c at millisecond t is admitted iff, for every window i,
// the cost already admitted at milliseconds [t-Length_i, t] plus c is at
// most Limit_i. Either every window records it or none does: a rejected
// request consumes nothing. Since two readings Length apart may be up to
// 1 ms less apart in truth, an entry counts until the readings differ by
// more than Length: it leaves at most 1 ms late and never early, so no
// interval of Length, at any resolution, holds more than the limit (see
// [Window]).
//
// After the decision each window reports Remaining (Limit minus what it
// counts, never negative) and Reset (how long until it frees a slot). A
// rejection reports RetryAfter: how long until this same request would be
// admitted by every window, assuming nobody else uses the key. The binding
// window ([Decision.Limiting]) is the rejecting window with the longest wait,
// or on admission the window with the fewest remaining; ties go to the longer
// window.
//
// [SlidingLog] (the default) is exact. [SlidingCounter] uses constant memory
// per key and approximates; docs/algorithm.md gives its measured error.
//
// # Example
//
//	p := window.Default() // 60/min and 2/s
//	var l window.Log
//	d := l.TakeAt(time.Now(), &p, 1)
//	if !d.Allowed {
//		wait := d.RetryAfter
//	}
package window
