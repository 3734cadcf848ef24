package headers

import (
	"net/http"
	"time"
)

// Scalekit is the [Style] of the Scalekit API: one window, the binding one,
// with its reset as a Unix timestamp.
//
//	X-RateLimit-Limit: 2
//	X-RateLimit-Remaining: 0
//	X-RateLimit-Reset: 1735787046
//	Retry-After: 1
//
// X-RateLimit-Limit and X-RateLimit-Remaining describe the binding window
// ([window.Decision.Limiting]), so with several windows the values follow
// whichever binds. X-RateLimit-Reset is the instant [Input.Now] plus the
// binding window's reset (less the millisecond a store may hold for its
// clock's resolution, as every style's waits are), in Unix seconds rounded
// up: a client that waits until then finds capacity freed. A zero Now
// reads the clock.
// Timestamps depend on the client's clock agreeing with the server's; prefer
// a style that sends seconds ([Lindris], [Kinde], [IETF]) when you can.
//
// On a rejection Retry-After is added, in whole seconds (see [Lindris]).
//
// Values are shared between responses as [Lindris] says, limits of any size
// included; timestamps come from a cache of recent seconds, so responses
// sending the same second share one string. A call allocates nothing when
// every other number is below 1024 and its limit and timestamp are cached;
// otherwise once for the numbers it formats, plus once for each of the limit
// and the timestamp it adds to a cache. The zero value is ready to use.
type Scalekit struct{}

var _ Style = Scalekit{}

// WriteHeaders sets the Scalekit fields for in on h.
func (Scalekit) WriteHeaders(h http.Header, in *Input) {
	_, d, ok := in.windows()
	if !ok {
		writeRetryAfter(h, in)
		return
	}
	s := &d.Windows[d.Limiting]
	var vals [3][]string
	ints := [3]int64{int64(s.Limit), int64(s.Remaining)}
	n := 2
	if !d.Allowed {
		ints[n] = retrySeconds(in)
		n++
	}
	intValues(vals[:n], ints[:n], 1<<0)
	h[keyXLimit] = vals[0]
	h[keyXRemaining] = vals[1]
	now := in.Now
	if now.IsZero() {
		now = time.Now()
	}
	at := now.Add(max(s.Reset-resolution, 0)) // the clock's millisecond is no wait: see waitSeconds
	sec := at.Unix()
	if at.Nanosecond() != 0 {
		sec++
	}
	h[keyXReset] = stampValue(sec)
	if !d.Allowed {
		h[keyRetryAfter] = vals[2]
	}
}
