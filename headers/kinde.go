package headers

import "net/http"

// Kinde is the [Style] of the Kinde API: the binding window in the
// unprefixed fields of the early IETF drafts.
//
//	RateLimit-Limit: 60
//	RateLimit-Remaining: 0
//	RateLimit-Reset: 12
//	Retry-After: 12
//
// All three fields describe the binding window ([window.Decision.Limiting]).
// RateLimit-Reset is its reset in whole seconds, rounded up. On a rejection
// Retry-After is added, in whole seconds (see [Lindris]).
//
// These names differ from those of [IETF] (RateLimit and RateLimit-Policy),
// so the two can be combined with [Multi] during a migration.
//
// Values are shared between responses as [Lindris] says, limits of any size
// included. A call allocates nothing when every other number is below 1024
// and its limit is cached; otherwise once for the numbers it formats, plus
// once if it adds its limit to the cache. The zero value is ready to use.
type Kinde struct{}

var _ Style = Kinde{}

// WriteHeaders sets the Kinde fields for in on h.
func (Kinde) WriteHeaders(h http.Header, in *Input) {
	_, d, ok := in.windows()
	if !ok {
		writeRetryAfter(h, in)
		return
	}
	s := &d.Windows[d.Limiting]
	var vals [4][]string
	ints := [4]int64{int64(s.Limit), int64(s.Remaining), waitSeconds(s.Reset)}
	n := 3
	if !d.Allowed {
		ints[3] = retrySeconds(in)
		n = 4
	}
	intValues(vals[:n], ints[:n], 1<<0)
	h[keyLimit] = vals[0]
	h[keyRemaining] = vals[1]
	h[keyReset] = vals[2]
	if !d.Allowed {
		h[keyRetryAfter] = vals[3]
	}
}
