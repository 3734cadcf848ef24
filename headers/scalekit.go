package headers

import "net/http"

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
// binding window's reset, in Unix seconds rounded up: a client that waits
// until then finds capacity freed. It is omitted when Now is the zero time.
// Timestamps depend on the client's clock agreeing with the server's; prefer
// a style that sends seconds ([Lindris], [Kinde], [IETF]) when you can.
//
// On a rejection Retry-After is added, in whole seconds (see [Lindris]).
//
// A call allocates twice (a timestamp does not fit strconv's small
// numbers). The zero value is ready to use.
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
	vals := new([4]string)
	ints := [4]int64{int64(s.Limit), int64(s.Remaining)}
	n := 2
	stamp := !in.Now.IsZero()
	if stamp {
		at := in.Now.Add(s.Reset)
		ints[n] = at.Unix()
		if at.Nanosecond() != 0 {
			ints[n]++
		}
		n++
	}
	if !d.Allowed {
		ints[n] = retrySeconds(in)
		n++
	}
	formatInts(vals[:n], ints[:n])
	h[keyXLimit] = vals[0:1:1]
	h[keyXRemaining] = vals[1:2:2]
	i := 2
	if stamp {
		h[keyXReset] = vals[2:3:3]
		i = 3
	}
	if !d.Allowed {
		h[keyRetryAfter] = vals[i : i+1 : i+1]
	}
}
