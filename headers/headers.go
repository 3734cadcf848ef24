package headers

import (
	"net/http"
	"time"

	"github.com/ratekit/ratekit/window"
)

// Input is everything a [Style] or an [Envelope] may render. It is read,
// never modified, and may be shared by several renderers of one response.
type Input struct {
	// Policy is the policy the decision was taken against. Styles render
	// window headers only when Policy and Decision agree (same number of
	// windows, a binding window in range); otherwise they write at most
	// Retry-After.
	Policy *window.Policy
	// Decision is the answer to render. Nil means no decision was taken
	// (the store failed): styles then write nothing and envelopes report
	// retry_after 1. To advertise a wait on a 503 without window state, pass
	// a Decision with N == 0, Allowed false and RetryAfter set: styles then
	// write only Retry-After.
	Decision *window.Decision
	// Now is the wall-clock instant of the decision, when the caller has
	// read the clock anyway. Only styles that send Unix timestamps
	// ([Scalekit]) need it; the zero time means "now", and such a style
	// reads the clock itself, so a caller that renders a style which never
	// reads Now ([Lindris], [Kinde], [IETF]) saves the clock read.
	Now time.Time
	// Partition is the optional IETF partition key, sent by [IETF] as the
	// pk parameter (base64). It must already be opaque, a hash or an HMAC
	// of whatever identifies the client: clients see it verbatim, so it is
	// never an API key or an address. Empty means no pk parameter.
	Partition string
	// Cost is the cost the decision was asked for. Zero means 1. Only
	// [ProblemBody] reads it, to list every window that rejected the
	// request and not only the binding one.
	Cost int
	// Status is the HTTP status the body accompanies. Zero means 429 Too
	// Many Requests. 503 Service Unavailable selects each envelope's
	// "limiter unavailable" wording, for the fail-closed store policy. 413
	// Content Too Large selects its "this request costs more than any
	// window admits" wording, with no wait, since none would help. Any
	// other value is rendered as given with the rate-limit wording. Styles
	// ignore Status.
	Status int
}

// Style writes rate-limit header fields for one response. Each style sets
// (replaces) the fields it owns and leaves every other field alone; two
// styles that own the same field name overwrite each other, the later one
// winning (see [Multi]).
//
// Implementations must not retain h or in, must not panic on an Input that
// does not make sense (render less instead), and must be safe for
// concurrent use; every style in this package is.
type Style interface {
	// WriteHeaders sets the style's fields for in on h.
	WriteHeaders(h http.Header, in *Input)
}

// Envelope renders the body of a refused response: 429, or 503 when
// [Input.Status] says so.
//
// Implementations must not retain dst or in and must be safe for concurrent
// use; every envelope in this package is.
type Envelope interface {
	// ContentType returns the value of the Content-Type field for the body.
	ContentType() string
	// AppendBody appends the body for in to dst and returns the extended
	// slice, like the strconv Append functions.
	AppendBody(dst []byte, in *Input) []byte
}

// Multi returns a [Style] that applies each non-nil style in order. Later
// styles overwrite fields written by earlier ones: Multi(Lindris{},
// Scalekit{}) sends Scalekit's X-RateLimit-Limit. The slice is copied.
func Multi(styles ...Style) Style {
	m := make(multi, 0, len(styles))
	for _, s := range styles {
		if s != nil {
			m = append(m, s)
		}
	}
	return m
}

type multi []Style

func (m multi) WriteHeaders(h http.Header, in *Input) {
	for _, s := range m {
		s.WriteHeaders(h, in)
	}
}

// Canonical forms (textproto.CanonicalMIMEHeaderKey) of the field names the
// styles write. Styles assign the map directly instead of calling Set, which
// would canonicalise on every call; a test checks these spellings.
const (
	keyRetryAfter = "Retry-After"

	keyXLimit          = "X-Ratelimit-Limit"
	keyXRemaining      = "X-Ratelimit-Remaining"
	keyXLimitSecond    = "X-Ratelimit-Limit-Second"
	keyXRemainingSec   = "X-Ratelimit-Remaining-Second"
	keyXReset          = "X-Ratelimit-Reset"
	keyXLimitedBy      = "X-Ratelimit-Limited-By"
	keyLimit           = "Ratelimit-Limit"
	keyRemaining       = "Ratelimit-Remaining"
	keyReset           = "Ratelimit-Reset"
	keyRateLimit       = "Ratelimit"
	keyRateLimitPolicy = "Ratelimit-Policy"
)

// windows returns the policy and decision of in when they can be rendered
// window by window: both present, the same number of windows, and a binding
// window in range. Configuration mistakes must not panic at request time.
func (in *Input) windows() (*window.Policy, *window.Decision, bool) {
	if in == nil || in.Policy == nil || in.Decision == nil {
		return nil, nil, false
	}
	p, d := in.Policy, in.Decision
	if d.N < 1 || d.N > window.MaxWindows || d.N != len(p.Windows) || d.Limiting < 0 || d.Limiting >= d.N {
		return nil, nil, false
	}
	return p, d, true
}

// refused reports whether in carries a rejection, so that Retry-After is due.
func (in *Input) refused() bool {
	return in != nil && in.Decision != nil && !in.Decision.Allowed
}

// status returns the HTTP status a body accompanies.
func (in *Input) status() int {
	if in == nil || in.Status == 0 {
		return http.StatusTooManyRequests
	}
	return in.Status
}

// cost returns the decision's cost, at least 1.
func (in *Input) cost() int {
	if in == nil || in.Cost < 1 {
		return 1
	}
	return in.Cost
}

// ceilSeconds returns d in whole seconds, rounded up; 0 for d <= 0. Rounding
// up keeps every advertised wait at or after the instant it describes: a
// client that waits "0" for 400ms would be refused again.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	s := int64(d / time.Second)
	if d%time.Second != 0 {
		s++
	}
	return s
}

// resolution is the precision of the clock decisions are taken with.
// Stores read whole milliseconds and, so as never to let an entry leave a
// window early, keep it a millisecond past the window's length (see
// window.Window): every wait a decision reports may include that
// millisecond, which a client does not need to sit out.
const resolution = time.Millisecond

// waitSeconds returns a decision's wait d in whole seconds for a header or
// body: d less the clock's resolution, rounded up, and at least 1 for any
// positive d (a window that frees within the millisecond is not free yet);
// 0 for d <= 0. Without
// taking the millisecond off, a fresh client's one-second window would
// read 2 (1.001 s rounded up) and a client pacing itself by the headers
// would go at half the rate it may. A client that retries at exactly the
// advertised second may then be refused once, for the rest of that
// millisecond, and told to retry in 1.
func waitSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return max(ceilSeconds(d-resolution), 1)
}

// retrySeconds returns the wait to advertise on a refusal, in whole seconds:
// the decision's RetryAfter in whole seconds (see waitSeconds), never less than the binding window's
// reset (so Retry-After never points before a reset sent beside it, as the
// IETF draft asks) and never less than 1, since "retry in 0 seconds" on a
// refusal invites a tight loop. Every style and envelope uses it, so headers
// and body agree.
func retrySeconds(in *Input) int64 {
	var s int64
	if in != nil && in.Decision != nil {
		d := in.Decision
		s = waitSeconds(d.RetryAfter)
		if !d.Allowed && d.N > 0 && d.N <= window.MaxWindows && d.Limiting >= 0 && d.Limiting < d.N {
			s = max(s, waitSeconds(d.Windows[d.Limiting].Reset))
		}
	}
	return max(s, 1)
}

// writeRetryAfter sets Retry-After alone, for an Input with no window
// state to render, when it carries a refusal.
func writeRetryAfter(h http.Header, in *Input) {
	if in.refused() {
		var v [1][]string
		intValues(v[:], []int64{retrySeconds(in)}, 0)
		h[keyRetryAfter] = v[0]
	}
}

// isLabel reports whether w.Label() == label without calling Label, which
// allocates for lengths that have no name ("1.5s").
func isLabel(w *window.Window, label string, length time.Duration) bool {
	return w.Name == label || (w.Name == "" && w.Length == length)
}

// headerSafe returns s with every byte outside printable ASCII replaced by
// '?'. Window names are configuration, not request input, but a CR or LF in
// one must not be able to split a header field. It allocates only when s
// needs changing.
func headerSafe(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] < 0x20 || b[j] > 0x7e {
					b[j] = '?'
				}
			}
			return string(b)
		}
	}
	return s
}
