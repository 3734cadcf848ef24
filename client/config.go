package client

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// Defaults of [Config], the retry schedule Authmatech documents: wait about
// one second after the first refusal, double the wait each attempt, at most
// five attempts, no wait longer than a minute, ±100 ms of jitter.
const (
	// DefaultMaxAttempts is the default of [Config.MaxAttempts], the first
	// attempt included.
	DefaultMaxAttempts = 5
	// DefaultBaseDelay is the default of [Config.BaseDelay], the backoff
	// before the first retry.
	DefaultBaseDelay = time.Second
	// DefaultMaxDelay is the default of [Config.MaxDelay], the cap on every
	// single wait.
	DefaultMaxDelay = time.Minute
	// DefaultJitter is the default of [Config.Jitter].
	DefaultJitter = 100 * time.Millisecond
)

// ErrInvalidConfig is wrapped by every error [New] returns.
var ErrInvalidConfig = errors.New("client: invalid config")

// ErrDeadline is wrapped by the error a request gets when the transport
// would have to wait past the request context's deadline, for quota, for
// the client-side rate or before a retry. The transport returns it at once
// instead of sleeping into the deadline. Test for it with errors.Is; the
// error is a [*WaitError] carrying the wait.
var ErrDeadline = errors.New("client: wait would pass the request deadline")

// WaitError is the error a request gets when the wait it needs does not fit
// before its context's deadline. It wraps [ErrDeadline]. Through an
// [http.Client] it arrives wrapped in a *url.Error; errors.As finds it.
type WaitError struct {
	// Reason says what the request would have waited for: [WaitQuota],
	// [WaitRetryAfter], [WaitRate] or [WaitBackoff].
	Reason string
	// Wait is how long the request would have had to wait, at most
	// [Config.MaxDelay].
	Wait time.Duration
	// Left is the time that was left before the deadline.
	Left time.Duration
	// StatusCode is the status of the refusal (429 or 503) the request
	// would have been retried after, for [WaitBackoff]; 0 otherwise.
	StatusCode int
}

// Error describes the wait. It names neither the URL nor any header value.
func (e *WaitError) Error() string {
	return fmt.Sprintf("client: %s wait of %v does not fit in the %v left before the request deadline", e.Reason, e.Wait, e.Left)
}

// Unwrap returns [ErrDeadline].
func (e *WaitError) Unwrap() error { return ErrDeadline }

// Reasons for a wait, passed to [Observer.ObserveWait] and set in
// [WaitError.Reason].
const (
	// WaitQuota: a window the server announced has no requests left; the
	// request waits for its reset.
	WaitQuota = "quota"
	// WaitRetryAfter: the server refused a request to this host (and key)
	// and said when to come back, or backoff after a refusal that said
	// nothing holds every request to it.
	WaitRetryAfter = "retry-after"
	// WaitRate: the client-side rate ([Config.Rate]) has no token.
	WaitRate = "rate"
	// WaitInFlight: [Config.MaxInFlight] requests are in flight.
	WaitInFlight = "in-flight"
	// WaitProbe: the request waits for the answer to one already in
	// flight, because nothing is known yet about this host's quota, or a
	// window is used up and its reset has passed. At most [ProbeWait].
	WaitProbe = "probe"
	// WaitBackoff: a refused request waits before its next attempt.
	WaitBackoff = "backoff"
)

// Reasons for giving up on a refused request, passed to
// [Observer.ObserveGiveUp].
const (
	// GiveUpAttempts: [Config.MaxAttempts] attempts were made.
	GiveUpAttempts = "attempts"
	// GiveUpTooLong: the server asked for a longer wait than
	// [Config.MaxDelay].
	GiveUpTooLong = "too-long"
	// GiveUpNotRetryable: the method is not idempotent (and
	// [Config.RetryNonIdempotent] is off) or the body cannot be replayed.
	GiveUpNotRetryable = "not-retryable"
	// GiveUpDeadline: the next attempt could not start before the request
	// deadline.
	GiveUpDeadline = "deadline"
)

// ProbeWait bounds a [WaitProbe] wait: if the answer to the request in
// flight has not come after this long, the waiting request is sent anyway.
// Quota resets are announced in whole seconds, so a second is the longest a
// probe usually saves.
const ProbeWait = time.Second

// Observer receives what a [Transport] does, for metrics or logs. Its
// methods are called on the request path, from many goroutines at once:
// they must be fast, must not block and must be safe for concurrent use.
// host is the request URL's host (and port), lower case; no argument ever
// carries an API key, a path or a header value, so every argument is safe
// as a metric label. The signatures use only standard types, so a type in
// another package can implement Observer without importing this one.
type Observer interface {
	// ObserveWait is called when a request is held back, before it waits:
	// reason is one of the Wait constants ([WaitQuota], ...), d the planned
	// wait (at most [Config.MaxDelay]), or 0 for [WaitInFlight] and
	// [WaitProbe], which last until another request finishes. A request
	// may wait several times.
	ObserveWait(host, reason string, d time.Duration)
	// ObserveRefusal is called for every 429 or 503 response, with the
	// wait the server asked for (Retry-After, else the reset of a window
	// with nothing left; 0 when it said nothing), uncapped.
	ObserveRefusal(host string, status int, wait time.Duration)
	// ObserveRetry is called just before a refused request is sent again:
	// attempt is the number of the attempt about to start (2 for the first
	// retry), waited how long the backoff held it.
	ObserveRetry(host string, attempt int, waited time.Duration)
	// ObserveGiveUp is called when a refusal is not retried: the response
	// goes back to the caller, or a [*WaitError] when reason is
	// [GiveUpDeadline]. reason is one of the GiveUp constants.
	ObserveGiveUp(host string, status int, reason string)
}

// Rate is a client-side token bucket: at most Limit requests every Per to
// one host (and key), in bursts of at most Burst. It is spaced evenly: one
// request every Per/Limit once the burst is spent.
type Rate struct {
	// Limit is the number of requests per Per. Zero means no client-side
	// rate: requests are paced by the server's headers only.
	Limit int
	// Per is the period of Limit. Zero means one second.
	Per time.Duration
	// Burst is how many requests may go at once after a quiet spell. Zero
	// means 1: strictly one request every Per/Limit, which never exceeds a
	// sliding window of Limit per Per. A burst above 1 can (Limit at the
	// end of one period and Burst at the start of the next).
	Burst int
}

// Config configures a [Transport]. The zero value is ready to use: the
// default transport underneath, quota per host, pacing by the server's
// headers, and Authmatech's retry schedule (5 attempts, 1 s doubling to at
// most 60 s, ±100 ms jitter) for idempotent requests.
type Config struct {
	// Base sends the requests. Nil means [http.DefaultTransport]. A Base
	// that implements CloseIdleConnections has it called by
	// [Transport.CloseIdleConnections].
	Base http.RoundTripper

	// KeyHeader names the request header that carries the caller's API key
	// ("X-API-Key", or "Authorization" for a bearer token). When set,
	// quota is tracked per host and key: each key's requests are paced by
	// the headers of that key's responses. The key is never stored: the
	// transport keeps a keyed hash of the field's value (HMAC-SHA-256 with a
	// secret drawn at New, truncated to 128 bits) and never logs it.
	// Requests without the header share the host's own state. Empty means
	// per host only.
	KeyHeader string

	// MaxAttempts is the most times a request is sent, the first included.
	// Zero means [DefaultMaxAttempts]; 1 turns retries off.
	MaxAttempts int
	// BaseDelay is the backoff before the first retry; the n-th retry waits
	// BaseDelay·2^(n-1), ± Jitter, at most MaxDelay, and never less than the
	// server's Retry-After or reset. Zero means [DefaultBaseDelay].
	BaseDelay time.Duration
	// MaxDelay caps every single wait: a backoff, a pacing wait, and how
	// far ahead the transport believes a reset or Retry-After. A refusal
	// asking for more than MaxDelay is returned to the caller, not retried
	// (retrying sooner would only be refused again); a reset further away,
	// or a hostile one (negative, huge, not a number, a date years ahead),
	// holds requests for MaxDelay at most, after which one is sent to learn
	// the quota afresh. Zero means [DefaultMaxDelay].
	MaxDelay time.Duration
	// Jitter is the most a backoff is moved, up or down, at random, so that
	// clients refused together do not retry together. Zero means
	// [DefaultJitter]; see DisableJitter.
	Jitter time.Duration
	// DisableJitter makes every backoff exactly BaseDelay·2^(n-1).
	DisableJitter bool
	// RetryNonIdempotent allows retrying POST, PATCH and other methods that
	// are not idempotent (RFC 9110 section 9.2.2), whose request body can
	// be replayed (Request.GetBody set, as http.NewRequest does for
	// in-memory bodies, or no body). A 429 means the server did not act
	// on the request, but a 503 may not. Off: only GET, HEAD, OPTIONS,
	// TRACE, PUT and DELETE are retried (with a replayable body too).
	RetryNonIdempotent bool

	// Rate is an optional client-side token bucket per host (and key),
	// applied on top of the server's headers. Zero: none.
	Rate Rate
	// MaxInFlight caps the requests in flight at once to one host (and
	// key), waiting ones not counted: Kinde's concurrency limiter. Zero
	// means no cap.
	MaxInFlight int

	// Observer, when not nil, receives waits, refusals, retries and
	// give-ups. See [Observer].
	Observer Observer
	// Logger receives what is unusual: a server asking for a wait longer
	// than MaxDelay, quota fields that cannot be read, clocks that
	// disagree, retries given up. Each kind of line is logged at most once
	// a second. No line carries an API key, a path or a query. Nil means
	// [slog.Default] at the time of New.
	Logger *slog.Logger
}

// withDefaults returns c with every zero field set to its default, and a
// list of every invalid field.
func (c Config) withDefaults() (Config, error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	if c.KeyHeader != "" && !validFieldName(c.KeyHeader) {
		bad("KeyHeader %q is not a valid header field name", c.KeyHeader)
	}
	if c.MaxAttempts < 0 {
		bad("MaxAttempts %d negative", c.MaxAttempts)
	}
	if c.BaseDelay < 0 {
		bad("BaseDelay %v negative", c.BaseDelay)
	}
	if c.MaxDelay < 0 {
		bad("MaxDelay %v negative", c.MaxDelay)
	}
	if c.Jitter < 0 {
		bad("Jitter %v negative", c.Jitter)
	}
	if c.Rate.Limit < 0 || c.Rate.Per < 0 || c.Rate.Burst < 0 {
		bad("Rate %+v: Limit, Per and Burst must not be negative", c.Rate)
	}
	if c.MaxInFlight < 0 {
		bad("MaxInFlight %d negative", c.MaxInFlight)
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.BaseDelay == 0 {
		c.BaseDelay = DefaultBaseDelay
	}
	if c.MaxDelay == 0 {
		c.MaxDelay = DefaultMaxDelay
	}
	if c.BaseDelay > c.MaxDelay && c.BaseDelay >= 0 && c.MaxDelay > 0 {
		bad("BaseDelay %v longer than MaxDelay %v", c.BaseDelay, c.MaxDelay)
	}
	if c.Jitter == 0 {
		c.Jitter = DefaultJitter
	}
	if c.DisableJitter {
		c.Jitter = 0
	}
	if c.Rate.Per == 0 {
		c.Rate.Per = time.Second
	}
	if c.Rate.Burst == 0 {
		c.Rate.Burst = 1
	}
	if c.Base == nil {
		c.Base = http.DefaultTransport
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, errors.Join(errs...)
}

// validFieldName reports whether s is an RFC 9110 token, the syntax of a
// field name.
func validFieldName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || isSeparator(c) {
			return false
		}
	}
	return s != ""
}

func isSeparator(c byte) bool {
	switch c {
	case '"', '(', ')', ',', '/', ':', ';', '<', '=', '>', '?', '@', '[', '\\', ']', '{', '}':
		return true
	}
	return false
}
