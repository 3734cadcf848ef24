package middleware

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ratekit/ratekit/headers"
	"github.com/ratekit/ratekit/store"
	"github.com/ratekit/ratekit/store/memory"
	"github.com/ratekit/ratekit/window"
)

// ErrInvalidConfig is wrapped by every error [New] returns.
var ErrInvalidConfig = errors.New("middleware: invalid config")

// FailurePolicy says how a request is answered when the store fails (an
// error, a timeout, a full memory table). A store failure is never answered
// with 429.
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

// String returns "open" or "closed".
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

// Client is what a [Config.KeyValidator] knows about a valid API key.
type Client struct {
	// ID names the bucket the key's requests count against. Keys with the
	// same ID share one allowance (several keys of one account). Empty means
	// the key itself. Like the key, it is hashed before it reaches the store.
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
type Config struct {
	// Policy is the set of windows every request must pass. Zero value:
	// [window.Default], 60/min + 2/s.
	Policy window.Policy

	// Store holds the windows' state. Nil means an in-memory store created
	// by New with default settings and closed by [Limiter.Close]. A store
	// passed in is the caller's to close.
	Store store.Store

	// KeyValidator decides whether an API key presented in X-API-Key or
	// Authorization: Bearer is known. For a known key the request counts
	// against the client's bucket; a missing, malformed or unknown key (or
	// a nil KeyValidator) falls back to the client-IP bucket, so random keys
	// cannot mint fresh allowances. It is called once per request that
	// presents a well-formed key, so it should answer from memory. A panic
	// in it is recovered and handled as a store failure.
	KeyValidator func(ctx context.Context, key string) (Client, bool)

	// KeyCacheTTL keeps KeyValidator answers (valid or not) for this long,
	// so a slow validator is not called on every request. Zero means no
	// cache: the validator is called for every request with a key, and a
	// revoked key stops counting as its client at once.
	KeyCacheTTL time.Duration
	// KeyCacheSize bounds the cache. Zero means 100,000 keys.
	KeyCacheSize int

	// Rules give routes and methods their own limits, costs, exemptions and
	// shadow mode; see [Rule]. The first matching rule applies; requests no
	// rule matches get Policy.
	Rules []Rule

	// Plans maps a plan name ([Client.Plan]) to the policy its clients get
	// instead of Policy, for example "enterprise": 600/min + 20/s. Rules
	// with a Policy of their own keep it for every plan.
	Plans map[string]window.Policy

	// Router is consulted to learn the route of a request when the limiter
	// wraps a router from the outside: lim.Handler(mux) with a ServeMux. It
	// is not needed when the limiter is mounted on routes (the router has
	// set the pattern) or with chi's r.Use (chi's route context carries the
	// router). Without route information every request gets the rules that
	// name no route, and is reported with route "unmatched".
	Router Router

	// ExemptIPs are client networks never limited (monitoring, internal
	// callers). The client address is resolved as [ClientIP] says; a
	// trusted proxy's address that stands in for an unreadable forwarding
	// chain is never exempt.
	ExemptIPs []netip.Prefix

	// ClientIP says how the client address is found; see [ClientIP]. The
	// zero value uses the TCP peer address and ignores forwarding headers.
	ClientIP ClientIP

	// HashKey is the secret that store keys are derived from (AES-CMAC of
	// the client identity), so stores, logs and metrics never hold an API
	// key or an address. Instances sharing a store must share the HashKey.
	// Nil means a random secret per process, which is only allowed with the
	// default (nil) Store or a *memory.Store: with a shared store each
	// instance would count in its own buckets.
	HashKey []byte

	// Headers writes the rate-limit headers. Nil means [headers.Lindris].
	Headers headers.Style

	// PartitionKey sends the IETF style's pk parameter: 8 bytes of the
	// bucket's keyed hash, so clients can tell their partitions apart while
	// learning nothing of other clients' keys or addresses. Off by default.
	PartitionKey bool

	// Envelope renders the body of 429 (and 503) answers. Nil means
	// [headers.LindrisBody].
	Envelope headers.Envelope

	// OnStoreError is the failure policy. Zero value: [FailOpen].
	OnStoreError FailurePolicy

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

	// Breaker configures the circuit breaker in front of a shared store
	// (any store but the memory store): after Breaker.Failures consecutive
	// failures the store is not called for Breaker.Cooldown, requests go
	// straight to the failure policy, then one probe decides whether it is
	// back. Zero value: 5 failures, 1s cooldown.
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

	// FallbackInstances divides the limits of the [LocalFallback] limiter:
	// with N instances behind one shared store, each enforces limit/N
	// (rounded down, at least 1) while the store is down, so together they
	// admit about the shared limit. Zero or 1 means each instance enforces
	// the full limits.
	FallbackInstances int

	// Observer receives every decision, store failure and fallback or
	// breaker transition, for metrics; see [Observer]. Nil means none.
	// package metrics provides a Prometheus implementation.
	Observer Observer

	// Logger receives store failures (at most one line a second) and
	// recovered hook panics. Nil means [slog.Default]. Rejections are not
	// logged. Nothing logged contains an API key or an address.
	Logger *slog.Logger
}

// Limiter is a configured rate limiter. Its Handler method is the
// middleware. A Limiter is safe for concurrent use.
type Limiter struct {
	rules     ruleTable
	all       []*rule // every compiled rule, default first
	plans     map[string]*planPolicies
	router    Router
	exemptIPs []netip.Prefix
	keys      *keyCache
	slots     store.Concurrency // nil when Config.Concurrency is 0
	slotLimit int
	slotTTL   time.Duration
	slotScope scope
	slotsPol  window.Policy // the pseudo-policy a concurrency refusal is rendered with
	breaker   *breaker      // nil for the memory store
	deny      *denyCache    // nil for the memory store or when disabled
	warnedFwd atomic.Bool
	store     store.Store
	ownStore  bool
	validate  func(ctx context.Context, key string) (Client, bool)
	clientIP  ClientIP
	hash      keyHasher
	style     headers.Style
	partition bool
	envelope  headers.Envelope
	// envelopeNow is set when the envelope may read Input.Now (a custom
	// one): refusals then read the clock for it.
	envelopeNow bool
	onFailure   FailurePolicy
	fallback    *memory.Store // LocalFallback only
	observe     Observer
	timed       bool                  // an Observer wants decision durations
	needNow     bool                  // something reads scratch.now: set by New
	classify    store.ErrorClassifier // nil when the store cannot classify errors
	fbActive    atomic.Bool           // the last decision came from the fallback
	log         *slog.Logger
	// contentType is the envelope's Content-Type as a shared value; a
	// refusal whose envelope answers something else gets a value of its own.
	contentType [1]string
	failureLog  oncePerSecond // store failures
	panicLog    oncePerSecond // validator panics
	scratch     sync.Pool
}

// scratch is per-request working memory, pooled so a decision costs no
// allocation of ours beyond the header values.
type scratch struct {
	in   headers.Input
	d    window.Decision
	buf  []byte
	cmac cmac // here rather than on the stack: cipher.Block's interface call would make it escape
	key  store.Key
	now  time.Time // the one wall-clock read of the request; zero unless l.needNow
	// fwdSeen counts the requests warnForwarding saw with this scratch.
	fwdSeen uint32
}

// New validates cfg, copies it, and returns a Limiter. Every invalid field
// is reported, each wrapping [ErrInvalidConfig].
func New(cfg Config) (*Limiter, error) {
	var errs []error
	if cfg.Policy.Windows == nil {
		cfg.Policy = window.Default()
	}
	if err := cfg.Policy.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("%w: policy: %w", ErrInvalidConfig, err))
	}
	if err := cfg.ClientIP.validate(); err != nil {
		errs = append(errs, fmt.Errorf("%w: %w", ErrInvalidConfig, err))
	}
	if cfg.FallbackInstances < 0 {
		errs = append(errs, fmt.Errorf("%w: FallbackInstances %d negative", ErrInvalidConfig, cfg.FallbackInstances))
	}
	if cfg.OnStoreError > LocalFallback {
		errs = append(errs, fmt.Errorf("%w: OnStoreError %d unknown", ErrInvalidConfig, cfg.OnStoreError))
	}
	for name, p := range cfg.Plans {
		if err := p.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%w: plan %q: %w", ErrInvalidConfig, name, err))
		}
	}
	for i, p := range cfg.ExemptIPs {
		switch {
		case !p.IsValid():
			errs = append(errs, fmt.Errorf("%w: ExemptIPs %d: invalid prefix", ErrInvalidConfig, i))
		case p.Addr().Is4In6():
			errs = append(errs, fmt.Errorf("%w: ExemptIPs %d: %s is IPv4-mapped, write it as an IPv4 prefix", ErrInvalidConfig, i, p))
		}
	}
	if err := cfg.Breaker.validate(); err != nil {
		errs = append(errs, fmt.Errorf("%w: %w", ErrInvalidConfig, err))
	}
	if cfg.Concurrency < 0 || cfg.ConcurrencyTTL < 0 {
		errs = append(errs, fmt.Errorf("%w: Concurrency %d and ConcurrencyTTL %v must not be negative", ErrInvalidConfig, cfg.Concurrency, cfg.ConcurrencyTTL))
	}
	if _, ok := cfg.Store.(store.Concurrency); cfg.Concurrency > 0 && cfg.Store != nil && !ok {
		errs = append(errs, fmt.Errorf("%w: Concurrency set but the store does not implement store.Concurrency", ErrInvalidConfig))
	}
	if cfg.DenyCacheSize < 0 || cfg.DenyCacheTTL < 0 {
		errs = append(errs, fmt.Errorf("%w: DenyCacheSize %d and DenyCacheTTL %v must not be negative", ErrInvalidConfig, cfg.DenyCacheSize, cfg.DenyCacheTTL))
	}
	if cfg.KeyCacheTTL < 0 || cfg.KeyCacheSize < 0 {
		errs = append(errs, fmt.Errorf("%w: KeyCacheTTL %v and KeyCacheSize %d must not be negative", ErrInvalidConfig, cfg.KeyCacheTTL, cfg.KeyCacheSize))
	}
	rules, all, err := compileRules(cfg.Rules, clonePolicy(cfg.Policy), cfg.FallbackInstances)
	if err != nil {
		errs = append(errs, err)
	}
	for _, r := range all {
		if !r.planned || r.exempt {
			continue
		}
		for name, p := range cfg.Plans {
			if r.cost > p.MinLimit() {
				errs = append(errs, fmt.Errorf("%w: rule %s: cost %d above plan %q's smallest limit %d, its clients could never pass",
					ErrInvalidConfig, r.name, r.cost, name, p.MinLimit()))
			}
		}
	}
	if _, isMemory := cfg.Store.(*memory.Store); cfg.Store != nil && !isMemory && len(cfg.HashKey) == 0 {
		errs = append(errs, fmt.Errorf("%w: HashKey is required with a shared store, so that every instance derives the same keys", ErrInvalidConfig))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	l := &Limiter{
		rules:     rules,
		all:       all,
		plans:     make(map[string]*planPolicies, len(cfg.Plans)),
		router:    cfg.Router,
		exemptIPs: append([]netip.Prefix(nil), cfg.ExemptIPs...),
		keys:      newKeyCache(cfg.KeyCacheTTL, cfg.KeyCacheSize),
		store:     cfg.Store,
		validate:  cfg.KeyValidator,
		clientIP:  cfg.ClientIP.clone(),
		style:     cfg.Headers,
		partition: cfg.PartitionKey,
		envelope:  cfg.Envelope,
		onFailure: cfg.OnStoreError,
		observe:   cfg.Observer,
		log:       cfg.Logger,
	}
	if l.observe == nil {
		l.observe = nopObserver{}
	}
	l.timed = cfg.Observer != nil
	secret := cfg.HashKey
	if len(secret) == 0 {
		secret = make([]byte, 32)
		rand.Read(secret)
	}
	l.hash = newKeyHasher(secret)
	for _, r := range l.all {
		l.hash.prepare(&r.scope)
	}
	maxCost := 1 // of the rules a plan can apply to
	for _, r := range l.all {
		if r.planned {
			maxCost = max(maxCost, r.cost)
		}
	}
	for name, p := range cfg.Plans {
		l.plans[name] = &planPolicies{policy: clonePolicy(p), fallback: dividePolicy(p, cfg.FallbackInstances, maxCost)}
	}
	if l.store == nil {
		s, err := memory.New(memory.Config{})
		if err != nil {
			return nil, err
		}
		l.store, l.ownStore = s, true
	}
	l.classify, _ = l.store.(store.ErrorClassifier)
	if cfg.Concurrency > 0 {
		l.slots, _ = l.store.(store.Concurrency)
		l.slotLimit, l.slotTTL, l.slotScope = cfg.Concurrency, cfg.ConcurrencyTTL, scopeOf("concurrency")
		l.hash.prepare(&l.slotScope)
		if l.slotTTL == 0 {
			l.slotTTL = time.Minute
		}
		l.slotsPol = window.Policy{Windows: []window.Window{{Name: "concurrency", Length: l.slotTTL, Limit: cfg.Concurrency}}}
	}
	if _, local := l.store.(*memory.Store); !local {
		if !cfg.Breaker.Disabled {
			l.breaker = newBreaker(cfg.Breaker, nil, l.breakerChanged)
		}
		if !cfg.DisableDenyCache {
			size, ttl := cfg.DenyCacheSize, cfg.DenyCacheTTL
			if size == 0 {
				size = 1 << 16
			}
			if ttl == 0 {
				ttl = time.Second
			}
			l.deny = newDenyCache(size, ttl)
		}
	}
	if l.onFailure == LocalFallback {
		fb, err := memory.New(memory.Config{})
		if err != nil {
			l.Close()
			return nil, err
		}
		l.fallback = fb
	}
	if l.style == nil {
		l.style = headers.Lindris{}
	}
	if l.envelope == nil {
		l.envelope = headers.LindrisBody{}
	}
	if l.log == nil {
		l.log = slog.Default()
	}
	l.contentType[0] = contentTypeOf(l.envelope)
	l.envelopeNow = headers.EnvelopeReadsNow(l.envelope)
	// The store reads its own clock. Ours is needed only by the deny cache,
	// decision timing, and a header style that renders timestamps.
	l.needNow = l.deny != nil || l.timed || headers.ReadsNow(l.style)
	l.scratch.New = func() any { return &scratch{buf: make([]byte, 0, 256)} }
	l.warnConfig(cfg)
	return l, nil
}

// planPolicies is a plan's policy and its LocalFallback share.
type planPolicies struct {
	policy, fallback window.Policy
}

// warnConfig logs configurations that are valid but probably not meant.
func (l *Limiter) warnConfig(cfg Config) {
	check := func(what string, p window.Policy) {
		for _, msg := range redundantWindows(p) {
			l.log.Warn("ratekit: "+what+": "+msg, "policy", p.String())
		}
	}
	check("default policy", l.all[0].policy)
	for _, r := range l.all[1:] {
		if !r.planned {
			check("rule "+r.name, r.policy)
		}
	}
	for name, p := range l.plans {
		check("plan "+name, p.policy)
	}
}

// clonePolicy copies p so later edits to the caller's slice change nothing.
func clonePolicy(p window.Policy) window.Policy {
	p.Windows = append([]window.Window(nil), p.Windows...)
	return p
}

// dividePolicy returns p with every limit divided by n, but never below
// floor (the largest cost a request under p may have, so that the fallback
// can still admit it).
func dividePolicy(p window.Policy, n, floor int) window.Policy {
	p = clonePolicy(p)
	if n > 1 {
		for i := range p.Windows {
			p.Windows[i].Limit = max(p.Windows[i].Limit/n, floor, 1)
		}
	}
	return p
}

// Close closes the store if New created it, and the local fallback limiter.
// It is idempotent.
func (l *Limiter) Close() error {
	if l.fallback != nil {
		l.fallback.Close()
	}
	if l.ownStore {
		return l.store.Close()
	}
	return nil
}

// Policy returns a copy of the limiter's default policy.
func (l *Limiter) Policy() window.Policy { return clonePolicy(l.all[0].policy) }

// Handler returns next wrapped by the limiter: func(http.Handler)
// http.Handler, the shape net/http, chi and most routers mount.
func (l *Limiter) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.serve(w, r, next)
	})
}

// identity kinds inside the hashed message.
const (
	kindIP    = 'i'
	kindKey   = 'k'
	kindCache = 'c' // validator cache entries, never a store key
)

// identity is who is asking, as far as the limiter cares.
type identity struct {
	keyed  bool   // a key the validator accepted
	id     string // client ID (keyed)
	plan   string
	exempt bool
	ip     netip.Prefix // resolved only when needed
}

// identify finds out who sent r: the client behind a valid API key, else
// the client address. ok is false when the validator panicked.
func (l *Limiter) identify(r *http.Request, sc *scratch) (id identity, ok bool) {
	// Without a validator no key can count, so the key headers are not read.
	if key, found := l.apiKey(r); found {
		client, valid, ok := l.lookupKey(r.Context(), key, sc)
		if !ok {
			return id, false
		}
		if valid {
			id = identity{keyed: true, id: client.ID, plan: client.Plan, exempt: client.Exempt}
			if id.id == "" {
				id.id = key
			}
		}
	}
	if !id.keyed || len(l.exemptIPs) > 0 {
		l.identifyPeer(r, sc, &id)
	}
	return id, true
}

// identifyPeer sets id's address bucket from r's client address, and marks
// id exempt if the address is in ExemptIPs and was not a fallback for an
// unreadable forwarding chain.
func (l *Limiter) identifyPeer(r *http.Request, sc *scratch, id *identity) {
	var a netip.Addr
	var exemptable bool
	id.ip, a, exemptable = l.clientIP.locate(r)
	l.warnForwarding(r, sc)
	for _, p := range l.exemptIPs {
		if exemptable && p.Contains(a) {
			id.exempt = true
		}
	}
}

// decisionTime is the instant a decision is stamped with: the clock when
// something downstream needs it (see needNow), else the zero Time.
func (l *Limiter) decisionTime() time.Time {
	if l.needNow {
		return time.Now()
	}
	return time.Time{}
}

// decidePeer decides r by its client address alone, with the local fallback
// limiter under ru's fallback share: what LocalFallback does with a request
// whose key the validator panicked on. exempt reports an address in
// ExemptIPs (nothing decided).
func (l *Limiter) decidePeer(r *http.Request, ru *rule, sc *scratch) (exempt bool, err error) {
	var id identity
	l.identifyPeer(r, sc, &id)
	if id.exempt {
		return true, nil
	}
	sc.key = l.keyOf(&ru.scope, &id, sc)
	sc.now = l.decisionTime()
	sc.d, err = l.fallback.Take(r.Context(), store.Request{Key: sc.key, Policy: &ru.fallback, Cost: ru.cost})
	return false, err
}

// apiKey returns the request's well-formed API key, if a validator is
// there to judge it.
func (l *Limiter) apiKey(r *http.Request) (string, bool) {
	if l.validate == nil {
		return "", false
	}
	return apiKey(r)
}

// lookupKey asks the validator about key, through the cache when there is
// one.
func (l *Limiter) lookupKey(ctx context.Context, key string, sc *scratch) (client Client, valid, ok bool) {
	if l.keys == nil {
		return l.callValidator(ctx, key)
	}
	c := &sc.cmac
	c.reset(&l.hash)
	c.writeByte(kindCache)
	c.writeString(key)
	ck := c.sum()
	now := time.Now()
	if e, hit := l.keys.get(ck, now); hit {
		return e.client, e.valid, true
	}
	client, valid, ok = l.callValidator(ctx, key)
	if ok {
		l.keys.put(ck, client, valid, now)
	}
	return client, valid, ok
}

// keyOf derives the store key of id within s (a rule's scope, or the
// concurrency limiter's): the AES-CMAC of s's name, the identity's kind and
// the identity.
func (l *Limiter) keyOf(s *scope, id *identity, sc *scratch) store.Key {
	c := &sc.cmac
	if !id.keyed {
		if a := id.ip.Addr(); a.Is4() && id.ip.Bits() == 32 && s.h == &l.hash {
			return l.hash.ipv4Key(s, a.As4(), &c.state)
		}
		return l.hash.ipKey(s, id.ip, &c.state)
	}
	c.reset(&l.hash)
	c.write(s.name[:])
	c.writeByte(kindKey)
	c.writeString(id.id)
	return c.sum()
}

// warnForwarding logs once when a request carries forwarding headers but no
// proxy is trusted: behind a proxy that means every client shares the
// proxy's bucket. Behind a proxy every request carries them, so it looks
// at one request in 64 of each scratch (the first one included) rather than
// pay three header lookups on every request of a correct deployment.
func (l *Limiter) warnForwarding(r *http.Request, sc *scratch) {
	if len(l.clientIP.TrustedProxies) > 0 || l.warnedFwd.Load() {
		return
	}
	sc.fwdSeen++
	if sc.fwdSeen%64 != 1 {
		return
	}
	h := r.Header
	if h["X-Forwarded-For"] == nil && h["Forwarded"] == nil && h["X-Real-Ip"] == nil {
		return
	}
	if !l.warnedFwd.Swap(true) {
		l.log.Warn("ratekit: requests carry forwarding headers but no trusted proxy is configured; " +
			"clients are identified by the connecting address (set ClientIP.TrustedProxies if a proxy is in front)")
	}
}

// callValidator runs the user's validator, turning a panic into ok=false.
func (l *Limiter) callValidator(ctx context.Context, key string) (client Client, valid, ok bool) {
	defer func() {
		if v := recover(); v != nil {
			l.logValidatorPanic(v)
			ok = false
		}
	}()
	client, valid = l.validate(ctx, key)
	return client, valid, true
}

// logValidatorPanic logs a validator's panic at most once a second, with
// the number of panics not logged since the last line: a client that has
// found a key the validator crashes on must not be able to flood the log.
// Every panic is still counted by the observer.
func (l *Limiter) logValidatorPanic(v any) {
	if ok, skipped := l.panicLog.due(); ok {
		l.log.Error("ratekit: key validator panicked; request handled by the store failure policy",
			"panic", validatorPanic(v), "policy", l.onFailure.String(), "unlogged_since_last", skipped)
	}
}

// validatorPanic describes a validator's panic value for the log without
// the value itself, which may quote the key the validator was given: its
// type, or for a runtime error (whose text the runtime writes) the text.
func validatorPanic(v any) string {
	if e, ok := v.(runtime.Error); ok {
		return e.Error()
	}
	return fmt.Sprintf("%T", v)
}

func (l *Limiter) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	route, known := l.route(r)
	m := methodIndex(r.Method)
	label := route
	if route == "" {
		label = RouteUnmatched
	}
	if known && route == "" {
		// The router will answer 404 or 405: a path that is no route gets
		// no bucket, so aliases and scans cannot mint allowances.
		l.observe.ObserveRequest(label, methods[m], OutcomeExempt, "")
		next.ServeHTTP(w, r)
		return
	}
	ru := l.rules.lookup(route, m)
	if ru.exempt {
		l.observe.ObserveRequest(label, methods[m], OutcomeExempt, "")
		next.ServeHTTP(w, r)
		return
	}

	sc := l.scratch.Get().(*scratch)
	id, ok := l.identify(r, sc)
	if ok && id.exempt {
		l.scratch.Put(sc)
		l.observe.ObserveRequest(label, methods[m], OutcomeExempt, "")
		next.ServeHTTP(w, r)
		return
	}
	var policy, fallback *window.Policy
	if ok {
		policy, fallback = l.policies(ru, &id)
		sc.key = l.keyOf(&ru.scope, &id, sc)
		sc.now = l.decisionTime()
	}
	var lease store.Lease
	held := false
	if ok && l.slots != nil && l.slotsUsable(&store.Request{Key: sc.key, Policy: policy, Cost: ru.cost}, sc.now) {
		var refused bool
		lease, held, refused = l.acquire(r.Context(), &id, sc)
		switch {
		case refused && ru.shadow:
			// Would have been refused: report it and let it through, with
			// the headers of the refusal but no Retry-After, and, as a
			// refusal would, without a slot or a rate decision.
			l.observe.ObserveRequest(label, methods[m], OutcomeShadow, "concurrency")
			l.renderConcurrency(w, sc)
			delete(w.Header(), "Retry-After")
			l.scratch.Put(sc)
			next.ServeHTTP(w, r)
			return
		case refused:
			l.observe.ObserveRequest(label, methods[m], OutcomeLimited, "concurrency")
			l.refuseConcurrency(w, sc)
			l.scratch.Put(sc)
			return
		}
	}
	if held {
		// Released when the handler returns, however it returns.
		defer l.release(r.Context(), lease)
	}
	var degraded bool
	err := errHookPanic
	if !ok {
		l.observe.ObserveStoreError("panic")
	}
	switch {
	case ok:
		policy, degraded, err = l.decide(r.Context(), ru.cost, policy, fallback, sc)
	case l.fallback != nil:
		// The validator panicked: LocalFallback decides the request by its
		// address with the local limiter, as it would during an outage.
		policy, degraded = &ru.fallback, true
		var exempt bool
		if exempt, err = l.decidePeer(r, ru, sc); exempt {
			l.scratch.Put(sc)
			l.observe.ObserveRequest(label, methods[m], OutcomeExempt, "")
			next.ServeHTTP(w, r)
			return
		}
	}
	if err == nil {
		sc.in = headers.Input{Policy: policy, Decision: &sc.d, Now: sc.now, Cost: ru.cost}
		if l.partition {
			sc.in.Partition = string(sc.key[:8])
		}
		if !l.render(w, sc) {
			err = errHookPanic
		}
	}
	if err != nil {
		l.scratch.Put(sc)
		l.observe.ObserveRequest(label, methods[m], OutcomeError, "")
		l.fail(w, r, next, err, ru.shadow)
		return
	}
	h := w.Header()
	if degraded {
		h["X-Ratelimit-Degraded"] = valTrue[:]
	}
	switch {
	case sc.d.Allowed:
		l.observe.ObserveRequest(label, methods[m], OutcomeAllowed, "")
	case ru.shadow:
		// Would have been limited: report it, let it through.
		delete(h, "Retry-After")
		l.observe.ObserveRequest(label, methods[m], OutcomeShadow, limitedBy(policy, &sc.d))
	default:
		l.observe.ObserveRequest(label, methods[m], OutcomeLimited, limitedBy(policy, &sc.d))
		l.refuse(w, sc, http.StatusTooManyRequests)
		l.scratch.Put(sc)
		return
	}
	// Back to the pool before the handler runs: nothing below reads it, and
	// a long handler should not pin it.
	l.scratch.Put(sc)
	next.ServeHTTP(w, r)
}

// limitedBy returns the label of the window that refused d under p, or ""
// if d names no window of p (a custom store's mistake must not panic the
// request).
func limitedBy(p *window.Policy, d *window.Decision) string {
	if uint(d.Limiting) >= uint(len(p.Windows)) {
		return ""
	}
	return p.Windows[d.Limiting].Label()
}

// policies returns the policy id is decided against under ru, and its
// LocalFallback share: the client's plan replaces the default policy.
func (l *Limiter) policies(ru *rule, id *identity) (p, fallback *window.Policy) {
	if ru.planned && id.plan != "" {
		if pp, ok := l.plans[id.plan]; ok {
			return &pp.policy, &pp.fallback
		}
	}
	return &ru.policy, &ru.fallback
}

// decide takes the decision for the bucket sc.key into sc.d and returns the
// policy it was taken against. With LocalFallback, a failing store is
// replaced by the local limiter and degraded is true. An error means no
// decision: the failure policy answers.
func (l *Limiter) decide(ctx context.Context, cost int, p, fb *window.Policy, sc *scratch) (*window.Policy, bool, error) {
	req := store.Request{Key: sc.key, Policy: p, Cost: cost}
	start := sc.now
	if l.deny != nil {
		if d, ok := l.deny.get(&req, start); ok {
			sc.d = d
			l.observe.ObserveDenyCacheHit()
			return p, false, nil
		}
	}
	var err error
	probe, called := false, true
	if l.breaker != nil {
		probe, called = l.breaker.allow()
	}
	if called {
		sc.d, err = l.store.Take(ctx, req)
		if l.timed {
			l.observe.ObserveDecision(time.Since(start))
		}
	} else {
		err = errBreakerOpen
	}
	switch {
	case err == nil:
		if l.breaker != nil {
			l.breaker.success(probe)
		}
		if !sc.d.Allowed && l.deny != nil {
			l.deny.put(&req, &sc.d, start)
		}
		l.noteFallback(false)
		return p, false, nil
	case called && l.breaker != nil && !errors.Is(err, context.Canceled):
		// A client that went away says nothing about the store; a probe
		// cancelled that way is replaced after the cooldown.
		l.breaker.failure(probe)
	}
	l.observe.ObserveStoreError(l.errorKind(err))
	if l.fallback == nil {
		return nil, false, err
	}
	l.logFailure(err)
	req.Policy = fb
	sc.d, err = l.fallback.Take(ctx, req)
	if err == nil {
		l.noteFallback(true)
	}
	return fb, true, err
}

// noteFallback reports fallback transitions to the observer and the log.
func (l *Limiter) noteFallback(active bool) {
	if l.fallback == nil || l.fbActive.Load() == active || l.fbActive.Swap(active) == active {
		return
	}
	l.observe.ObserveFallback(active)
	if active {
		l.log.Warn("ratekit: shared store failing; deciding with the local fallback limiter")
	} else {
		l.log.Info("ratekit: shared store answering again; local fallback off")
	}
}

// errorKind names a store failure for metrics.
func (l *Limiter) errorKind(err error) string {
	switch {
	case errors.Is(err, store.ErrFull):
		return "full"
	case errors.Is(err, errBreakerOpen):
		return "breaker-open"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case l.classify != nil:
		if k := l.classify.ErrorKind(err); k != "" {
			return k
		}
	}
	return "other"
}

var (
	errHookPanic   = errors.New("middleware: a hook panicked")
	errBreakerOpen = errors.New("middleware: circuit breaker open; store not called")
)

// breakerChanged reports breaker transitions to the log and the observer.
func (l *Limiter) breakerChanged(from, to breakerState) {
	l.observe.ObserveBreaker(int(to))
	if to == breakerOpen {
		l.log.Warn("ratekit: circuit breaker open; the store is not called until a probe succeeds", "from", from.String())
	} else {
		l.log.Info("ratekit: circuit breaker "+to.String(), "from", from.String())
	}
}

// render writes the rate-limit headers, recovering a panicking custom style.
func (l *Limiter) render(w http.ResponseWriter, sc *scratch) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			l.log.Error("ratekit: header style panicked", "panic", fmt.Sprint(v))
			ok = false
		}
	}()
	l.style.WriteHeaders(w.Header(), &sc.in)
	return true
}

// Header values the middleware writes, shared by every response like those
// of package headers: len == cap == 1, so Add copies (see docs/headers.md).
var (
	valTrue = [1]string{"true"}
	valOne  = [1]string{"1"}
)

// contentTypeOf returns e's Content-Type, or "" if it panics (refuse then
// recovers the panic of the call that counts).
func contentTypeOf(e headers.Envelope) (ct string) {
	defer func() { recover() }()
	return e.ContentType()
}

// refuse writes a 429 or 503 with the envelope's body. A panicking custom
// envelope falls back to the Lindris body.
func (l *Limiter) refuse(w http.ResponseWriter, sc *scratch, status int) {
	sc.in.Status = status
	if sc.in.Now.IsZero() && l.envelopeNow {
		sc.in.Now = time.Now()
	}
	body, ct := l.appendBody(sc)
	// Content-Type is the only header added here. With the seven of a
	// Lindris refusal that makes eight, what a Go map holds without growing
	// out of its first group: net/http builds a fresh header map for every
	// response and clones it on WriteHeader, and a ninth entry (say
	// X-Content-Type-Options, which a JSON body of ours has no use for) costs
	// both maps their growth, about 650 ns and 750 B per refusal, when
	// refusals are what a flood is made of.
	h := w.Header()
	if ct == l.contentType[0] {
		h["Content-Type"] = l.contentType[:]
	} else {
		h["Content-Type"] = []string{ct}
	}
	w.WriteHeader(status)
	w.Write(body)
}

// appendBody renders the envelope into the scratch buffer and returns it
// with its content type; a panicking custom envelope is replaced by the
// Lindris body.
func (l *Limiter) appendBody(sc *scratch) (body []byte, contentType string) {
	defer func() {
		if v := recover(); v != nil {
			l.log.Error("ratekit: envelope panicked; sent the default body", "panic", fmt.Sprint(v))
			def := headers.LindrisBody{}
			body, contentType = def.AppendBody(sc.buf[:0], &sc.in), def.ContentType()
		}
	}()
	sc.buf = l.envelope.AppendBody(sc.buf[:0], &sc.in)
	return sc.buf, l.envelope.ContentType()
}

// fail applies the failure policy to a request whose decision could not be
// taken. A shadow rule never refuses, so its requests fail open.
func (l *Limiter) fail(w http.ResponseWriter, r *http.Request, next http.Handler, err error, shadow bool) {
	l.logFailure(err)
	if l.onFailure == FailClosed && !shadow {
		sc := l.scratch.Get().(*scratch)
		sc.d = window.Decision{RetryAfter: time.Second}
		sc.in = headers.Input{Policy: &l.all[0].policy, Decision: &sc.d, Now: time.Now()}
		w.Header()["Retry-After"] = valOne[:]
		l.refuse(w, sc, http.StatusServiceUnavailable)
		l.scratch.Put(sc)
		return
	}
	w.Header()["X-Ratelimit-Degraded"] = valTrue[:]
	next.ServeHTTP(w, r)
}

// logFailure logs a store failure, at most once a second.
func (l *Limiter) logFailure(err error) {
	if ok, _ := l.failureLog.due(); ok {
		l.log.Warn("ratekit: rate-limit store failed; applying the failure policy",
			"error", err.Error(), "policy", l.onFailure.String())
	}
}

// oncePerSecond lets one log line a second through, whatever the number of
// goroutines asking; the zero value is ready to use.
type oncePerSecond struct {
	last    atomic.Int64 // unix nanos of the last line let through
	skipped atomic.Int64 // lines held back since then
}

// due reports whether a line may be logged now and, if so, how many were
// held back since the last one.
func (o *oncePerSecond) due() (ok bool, skipped int64) {
	now := time.Now().UnixNano()
	last := o.last.Load()
	if now-last < int64(time.Second) || !o.last.CompareAndSwap(last, now) {
		o.skipped.Add(1)
		return false, 0
	}
	return true, o.skipped.Swap(0)
}
