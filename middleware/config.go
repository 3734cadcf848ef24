package middleware

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/ratekit/ratekit/headers"
	"github.com/ratekit/ratekit/internal/forwarded"
	"github.com/ratekit/ratekit/store"
	"github.com/ratekit/ratekit/window"
)

// ErrInvalidConfig is wrapped by every error [New] returns for a bad
// [Config], and by the errors [Limiter.Take] returns for a bad [Request].
var ErrInvalidConfig = errors.New("middleware: invalid config")

// FailurePolicy says how a request is answered when the store fails (an
// error, a timeout, a full memory table, an open circuit breaker) or a hook
// panics. A store failure is never answered with 429.
type FailurePolicy uint8

const (
	// FailOpen admits the request, without rate-limit headers but with
	// X-RateLimit-Degraded: true, and logs the failure (at most once a
	// second). The zero value: an outage of the limiter's store does not
	// become an outage of the API.
	FailOpen FailurePolicy = iota
	// FailClosed answers 503 Service Unavailable with the envelope's body
	// and Retry-After: 1, without calling the handler.
	FailClosed
	// LocalFallback decides the request with a per-instance memory limiter
	// enforcing the same policy, its limits divided by
	// [Config.FallbackInstances], and marks the answer with
	// X-RateLimit-Degraded: true. Every request still tries the shared store
	// first (unless the circuit breaker is open), so exact shared limits
	// resume as soon as the store answers again. Counts taken locally are
	// not copied to the store.
	LocalFallback
)

// String returns "open", "closed" or "local-fallback", the names the
// policies are logged with.
func (f FailurePolicy) String() string {
	switch f {
	case FailOpen:
		return "open"
	case FailClosed:
		return "closed"
	case LocalFallback:
		return "local-fallback"
	}
	return "FailurePolicy(" + strconv.Itoa(int(f)) + ")"
}

// MarshalText returns the policy's name, as String does.
func (f FailurePolicy) MarshalText() ([]byte, error) {
	if f > LocalFallback {
		return nil, fmt.Errorf("%w: OnStoreError %d unknown", ErrInvalidConfig, f)
	}
	return []byte(f.String()), nil
}

// UnmarshalText reads a policy's name: "open", "closed" or
// "local-fallback", so that a failure policy can come from a configuration
// file or a flag. Anything else is an error wrapping [ErrInvalidConfig].
func (f *FailurePolicy) UnmarshalText(text []byte) error {
	switch string(text) {
	case "open":
		*f = FailOpen
	case "closed":
		*f = FailClosed
	case "local-fallback":
		*f = LocalFallback
	default:
		return fmt.Errorf("%w: failure policy %q, want open, closed or local-fallback", ErrInvalidConfig, text)
	}
	return nil
}

// Client is who a request counts against when it is not counted by its
// address: what a [Config.KeyValidator] knows about a valid API key, what
// [Config.Identify] or [WithClient] says about an authenticated caller, or
// what [Identity.Client] names for a call of [Limiter.Take].
type Client struct {
	// ID names the bucket the client's requests count against. Keys with
	// the same ID share one allowance (several keys of one account). From
	// a KeyValidator, empty means the key itself; from Identify or
	// WithClient, empty means no client (the request goes on to the key
	// headers and the address). Like a key, it is hashed before it reaches
	// the store, and it is never logged.
	ID string
	// Plan names the client's plan in [Config.Plans]: its requests get the
	// plan's policy wherever a rule does not set its own. Empty, or a name
	// Plans does not hold, means the default policy.
	Plan string
	// Exempt clients are never limited (allow-listed partners, internal
	// jobs).
	Exempt bool
}

// Config configures a [Limiter]. The zero value is the Lindris contract:
// 60 requests per minute and 2 per second, both sliding, per client IP, in
// memory, with Lindris headers and body, failing open.
//
// The fields are grouped as a request meets them: who is asking, which
// rule applies, the decision, the answer, and what is reported.
type Config struct {
	// Identify, when set, names the client of a request before any key
	// header is read: typically the principal an authentication middleware
	// that ran earlier found (a session, a JWT it verified, a client
	// certificate). [ClientFromContext] reads the Client such a middleware
	// stored with [WithClient]. A Client with an empty ID, or ok false,
	// leaves the request to the key headers and then the address. The
	// Client is trusted as returned: KeyValidator is not asked. A panic in
	// it is recovered and handled as a store failure.
	Identify func(r *http.Request) (c Client, ok bool)

	// KeyHeaders names the request headers an API key is read from, in
	// order; "Authorization" means its Bearer scheme (RFC 6750), any other
	// name the whole value (X-API-Key, X-Client-ID). The first header
	// present decides: if its value is not one well-formed key (a second
	// line, a byte outside the token alphabet, longer than MaxKeyLen), the
	// request has no key and later headers are not read, so a client
	// cannot steer around the header the application reads. An
	// Authorization header of another scheme (Basic) counts as absent. Nil
	// means X-API-Key, then Authorization. Keys are read only when
	// KeyValidator is set.
	KeyHeaders []string
	// MaxKeyLen is the longest API key, in bytes, that is read; a longer
	// value is no key, and the request counts against its address. Zero
	// means 4096, room for a JWT with a few dozen claims. At most 65,536.
	MaxKeyLen int
	// KeyValidator decides whether an API key from KeyHeaders is known.
	// For a known key the request counts against the client's bucket; a
	// missing, malformed or unknown key (or a nil KeyValidator) falls back
	// to the client-IP bucket, so random keys cannot mint fresh
	// allowances. It is called once per request that presents a
	// well-formed key, so it should answer from memory. A panic in it is
	// recovered and handled as a store failure.
	KeyValidator func(ctx context.Context, key string) (Client, bool)
	// KeyCacheTTL keeps KeyValidator answers (valid or not) for this long,
	// so a slow validator is not called on every request. Entries are
	// indexed by a keyed hash of the key, never the key. Zero means no
	// cache: the validator is called for every request with a key, and a
	// revoked key stops counting as its client at once.
	KeyCacheTTL time.Duration
	// KeyCacheSize bounds the cache. Zero means 100,000 keys.
	KeyCacheSize int

	// ClientIP says how the client address is found; see [ClientIP]. The
	// zero value uses the TCP peer address and ignores forwarding headers.
	ClientIP ClientIP
	// ExemptIPs are client networks never limited (monitoring, internal
	// callers), whether or not their requests carry a key. The client
	// address is resolved as [ClientIP] says; a trusted proxy's address
	// that stands in for an unreadable forwarding chain is never exempt.
	ExemptIPs []netip.Prefix

	// HashKey is the secret that store keys are derived from (AES-CMAC of
	// the client identity), so stores, logs and metrics never hold an API
	// key or an address. Instances sharing a store must share the HashKey.
	// Nil means a random secret per process, which is only allowed with a
	// store that lives in this process ([store.Local]: the default store,
	// a *memory.Store): with a shared store each instance would count in
	// its own buckets.
	HashKey []byte

	// Policy is the set of windows every request must pass. Zero value:
	// [window.Default], 60/min + 2/s.
	Policy window.Policy
	// Rules give routes and methods their own limits, costs, exemptions and
	// shadow mode; see [Rule]. The first matching rule applies; requests no
	// rule matches get Policy.
	Rules []Rule
	// Plans maps a plan name ([Client.Plan]) to the policy its clients get
	// instead of Policy, for example "enterprise": 600/min + 20/s. Rules
	// with a Policy of their own keep it for every plan.
	Plans map[string]window.Policy
	// ClientPolicies gives single clients, by [Client.ID], limits of their
	// own that replace their plan's; see [Limits.ClientPolicies].
	//
	// Policy, Rules, Plans and ClientPolicies can be changed while serving:
	// see [Limiter.SetLimits].
	ClientPolicies map[string]window.Policy
	// Router is consulted to learn the route of a request when the limiter
	// wraps a router from the outside: lim.Handler(mux) with a ServeMux. It
	// is not needed when the limiter is mounted on routes (the router has
	// set the pattern) or anywhere inside a chi router (chi's route
	// context carries the router). Without route information every request
	// gets the rules that name no route, is reported with route
	// "unmatched", and, if some rule names a route, one warning is logged.
	Router Router

	// Store holds the windows' state. Nil means an in-memory store created
	// by New with default settings and closed by [Limiter.Close]. A store
	// passed in is the caller's to close.
	Store store.Store
	// OnStoreError is the failure policy. Zero value: [FailOpen].
	OnStoreError FailurePolicy
	// FallbackInstances divides the limits of the [LocalFallback] limiter:
	// with N instances behind one shared store, each enforces limit/N
	// (rounded down, at least 1) while the store is down, so together they
	// admit about the shared limit. Zero or 1 means each instance enforces
	// the full limits.
	FallbackInstances int
	// Breaker configures the circuit breaker in front of a shared store
	// (any store but a [store.Local] one): after Breaker.Failures
	// consecutive failures the store is not called for Breaker.Cooldown,
	// requests go straight to the failure policy, then one probe decides
	// whether it is back. Zero value: 5 failures, 1s cooldown.
	Breaker Breaker
	// DenyCacheSize bounds the deny cache in front of a shared store: a key
	// the store has just rejected with Retry-After r is answered locally
	// for up to r (at most DenyCacheTTL) without a round trip, for the same
	// policy and cost. It only ever repeats rejections, so it never admits
	// more than the store would. Zero means 65,536 keys.
	DenyCacheSize int
	// DenyCacheTTL caps how long one rejection is repeated from the deny
	// cache, however long its Retry-After: after it the store is asked
	// again. It bounds how long this instance keeps refusing a client
	// that another instance has Reset, or whose plan changed on another
	// instance. Zero means 1s; a hot refused key then costs each instance
	// one round trip a second.
	DenyCacheTTL time.Duration
	// DisableDenyCache turns the deny cache off: every request asks the
	// store.
	DisableDenyCache bool
	// Concurrency bounds the requests each client (API-key client or
	// address) may have in flight at once, Kinde's concurrency limiter. A
	// request must get a slot and pass the rate windows; refused by either,
	// it consumes nothing of the other. A refusal is 429 with
	// X-RateLimit-Limited-By: concurrency. The slot is released when the
	// handler returns, also on panic or client disconnect. Zero means no
	// concurrency limit. The store must implement [store.Concurrency] (both
	// of ratekit's do).
	Concurrency int
	// ConcurrencyTTL is how long a slot may be held before a shared store
	// reclaims it, so slots of a crashed instance come back. Zero means one
	// minute; set it above your longest request.
	ConcurrencyTTL time.Duration

	// Headers writes the rate-limit headers. Nil means [headers.Lindris].
	Headers headers.Style
	// Envelope renders the body of 429 (and 503) answers. Nil means
	// [headers.LindrisBody].
	Envelope headers.Envelope
	// Refuse, when set, answers refused requests instead of the envelope:
	// it may set the status (429 by default, 413 for a cost no window could
	// admit), change the headers and write any body. It is given the
	// request and a [Refusal] saying which window refused and whom, and is
	// called with the style's rate-limit headers (and Retry-After) already
	// on w.Header(). The request is nil for a Take result answered with
	// Answer(w, nil, res). If it writes no status, the refusal's is
	// written. It is
	// not called for shadow rules, which refuse nothing, nor for the 503 of
	// FailClosed, a store failure rather than a refusal. A panic in it is
	// recovered, logged, and answered with the default refusal if nothing
	// was written yet.
	Refuse func(w http.ResponseWriter, r *http.Request, ref *Refusal)
	// OnRefusal, when set, is told of every refusal after its answer is
	// written, and of every request a shadow rule would have refused
	// (Refusal.Shadow), to log or audit who was limited. It must not write
	// to the response, should be quick, and is called on the request's
	// goroutine; a panic in it is recovered and logged.
	OnRefusal func(r *http.Request, ref *Refusal)
	// PartitionKey sends the IETF style's pk parameter: 8 bytes of the
	// bucket's keyed hash, so clients can tell their partitions apart while
	// learning nothing of other clients' keys or addresses. Off by default.
	PartitionKey bool

	// Observer receives every decision, store failure and fallback or
	// breaker transition, for metrics; see [Observer]. Nil means none.
	// Package metrics provides a Prometheus implementation.
	Observer Observer
	// Logger receives store failures (at most one line a second), recovered
	// hook panics and configuration warnings. Nil means [slog.Default].
	// Rejections are not logged. Nothing logged contains an API key or an
	// address.
	Logger *slog.Logger
}

// Default and largest values of [Config] fields.
const (
	defaultMaxKeyLen = 4 << 10
	maxMaxKeyLen     = 64 << 10
	defaultDenySize  = 1 << 16
	defaultDenyTTL   = time.Second
	defaultSlotTTL   = time.Minute
)

// Breaker configures the circuit breaker around a shared store. While the
// breaker is open the store is not called: each request is answered by the
// failure policy at once instead of waiting for a store that is down, and the
// store gets room to recover. The zero value is the documented defaults:
// open after 5 consecutive failures, probe again after 1s.
//
// A Breaker is a plain value; the limiter copies it on construction.
type Breaker struct {
	// Failures is how many consecutive store failures open the breaker. A
	// success resets the count. Zero means 5; negative is a config error.
	Failures int
	// Cooldown is how long the breaker stays open before it lets one request
	// through to the store as a probe. If the probe succeeds the breaker
	// closes; if it fails the breaker stays open for another Cooldown. A
	// probe that has not reported after Cooldown (its request was abandoned)
	// is presumed lost and another probe is let through. Zero means 1s;
	// negative is a config error.
	Cooldown time.Duration
	// Disabled turns the breaker off: every request calls the store.
	Disabled bool
}

// validate reports every problem with cfg at once, each wrapping
// [ErrInvalidConfig]. The rules, plans and policy are checked where they are
// compiled (see compileRules).
func (cfg *Config) validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	if err := cfg.ClientIP.validate(); err != nil {
		bad("%w", err)
	}
	for i, p := range cfg.ExemptIPs {
		switch {
		case !p.IsValid():
			bad("ExemptIPs %d: invalid prefix", i)
		case p.Addr().Is4In6():
			bad("ExemptIPs %d: %s is IPv4-mapped, write it as an IPv4 prefix", i, p)
		}
	}
	for i, h := range cfg.KeyHeaders {
		if !forwarded.IsToken(h) {
			bad("KeyHeaders %d: %q is not a header name", i, h)
		}
	}
	if cfg.MaxKeyLen < 0 || cfg.MaxKeyLen > maxMaxKeyLen {
		bad("MaxKeyLen %d outside 0 to %d", cfg.MaxKeyLen, maxMaxKeyLen)
	}
	if cfg.KeyCacheTTL < 0 || cfg.KeyCacheSize < 0 {
		bad("KeyCacheTTL %v and KeyCacheSize %d must not be negative", cfg.KeyCacheTTL, cfg.KeyCacheSize)
	}
	if cfg.OnStoreError > LocalFallback {
		bad("OnStoreError %d unknown", cfg.OnStoreError)
	}
	if cfg.FallbackInstances < 0 {
		bad("FallbackInstances %d negative", cfg.FallbackInstances)
	}
	if cfg.Breaker.Failures < 0 {
		bad("Breaker.Failures %d: negative", cfg.Breaker.Failures)
	}
	if cfg.Breaker.Cooldown < 0 {
		bad("Breaker.Cooldown %v: negative", cfg.Breaker.Cooldown)
	}
	if cfg.DenyCacheSize < 0 || cfg.DenyCacheTTL < 0 {
		bad("DenyCacheSize %d and DenyCacheTTL %v must not be negative", cfg.DenyCacheSize, cfg.DenyCacheTTL)
	}
	if cfg.Concurrency < 0 || cfg.ConcurrencyTTL < 0 {
		bad("Concurrency %d and ConcurrencyTTL %v must not be negative", cfg.Concurrency, cfg.ConcurrencyTTL)
	}
	if _, ok := cfg.Store.(store.Concurrency); cfg.Concurrency > 0 && cfg.Store != nil && !ok {
		bad("Concurrency set but the store does not implement store.Concurrency")
	}
	if cfg.Store != nil && !store.IsLocal(cfg.Store) && len(cfg.HashKey) == 0 {
		bad("HashKey is required with a shared store, so that every instance derives the same keys")
	}
	return errors.Join(errs...)
}
