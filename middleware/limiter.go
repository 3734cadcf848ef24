package middleware

import (
	"crypto/rand"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ratekit/ratekit/headers"
	"github.com/ratekit/ratekit/internal/breaker"
	"github.com/ratekit/ratekit/internal/denycache"
	"github.com/ratekit/ratekit/internal/keyhash"
	"github.com/ratekit/ratekit/store"
	"github.com/ratekit/ratekit/store/memory"
	"github.com/ratekit/ratekit/window"
)

// Limiter is a configured rate limiter. Its Handler method is the HTTP
// middleware; [Limiter.Take] is the same decision without HTTP. A Limiter
// is safe for concurrent use.
//
// Every request goes through three steps, each in a file of its own:
// identify (identity.go: which rule applies, with the route from route.go,
// and who is asking), decide (decide.go: one store call and the failure
// policy) and answer (answer.go: headers, and the refusal when there is
// one).
type Limiter struct {
	// Which rule applies.
	router Router
	rules  atomic.Pointer[ruleSet] // replaced whole, never modified
	ids    atomic.Uint64           // numbers the policies of every ruleSet
	update sync.Mutex              // serialises replacements of rules
	routes routeChecks
	// Who is asking.
	who identifier
	// The decision.
	dec decider
	// The answer.
	ans answerer
	// What is reported.
	observe Observer
	log     logger
	scratch sync.Pool // of *scratch
}

// logger is the Limiter's log, with the throttles that keep a flood of
// failures or panics from flooding it.
type logger struct {
	*slog.Logger
	failures oncePerSecond // store failures
	panics   oncePerSecond // hook panics
}

// call is one request's way through the limiter: identify fills in the
// first group of fields, decide the second, and answer reads them.
type call struct {
	// Identify.
	route  string // the route label for the observer
	method int    // index in methods
	rule   *rule
	shadow bool
	cost   int
	id     identity
	slots  bool // ask for a concurrency slot (HTTP requests only)

	// Decide.
	policy      *policy // what d was decided against; nil when nothing was
	key         store.Key
	now         time.Time // the one clock read, when something needs it
	d           window.Decision
	outcome     string // one of the Outcome constants
	limitedBy   string
	degraded    bool // decided by the local fallback
	tooCostly   bool // the cost is above some window\'s limit: refused, no store asked
	slotRefused bool
	lease       store.Lease
	held        bool  // lease must be released after the handler
	err         error // why no decision was taken (a store failure, a hook panic)
}

// scratch is per-request working memory, pooled so that a decision costs
// no allocation of ours beyond the header values.
type scratch struct {
	c    call
	in   headers.Input
	body []byte
	buf  keyhash.Buf
	pol  policy // a Result's policy, for Answer
	// fwdSeen counts the requests warnForwarding saw with this scratch.
	fwdSeen uint32
}

// New validates cfg, copies it, and returns a Limiter. Every invalid field
// is reported, each wrapping [ErrInvalidConfig].
func New(cfg Config) (*Limiter, error) {
	secret := cfg.HashKey
	if len(secret) == 0 {
		secret = make([]byte, 32)
		rand.Read(secret)
	}
	l := &Limiter{router: cfg.Router, observe: cfg.Observer}
	l.who = identifier{
		identify:  cfg.Identify,
		keys:      newKeyReader(cfg.KeyHeaders, cfg.MaxKeyLen),
		validate:  cfg.KeyValidator,
		cache:     newKeyCache(cfg.KeyCacheTTL, cfg.KeyCacheSize),
		clientIP:  cfg.ClientIP.clone(),
		exemptIPs: append([]netip.Prefix(nil), cfg.ExemptIPs...),
		hash:      keyhash.New(secret),
	}
	lim := Limits{Policy: cfg.Policy, Rules: cfg.Rules, Plans: cfg.Plans, ClientPolicies: cfg.ClientPolicies}
	rs, rulesErr := compileRules(lim, cfg.FallbackInstances, l.who.hash, &l.ids)
	if err := errors.Join(cfg.validate(), rulesErr); err != nil {
		return nil, err
	}
	l.rules.Store(rs)
	l.log.Logger = cfg.Logger
	if l.log.Logger == nil {
		l.log.Logger = slog.Default()
	}
	if l.observe == nil {
		l.observe = nopObserver{}
	}
	if err := l.dec.wire(&cfg, l); err != nil {
		return nil, err
	}
	l.ans = newAnswerer(&cfg)
	l.scratch.New = func() any { return &scratch{body: make([]byte, 0, 256)} }
	for _, msg := range rs.warnings() {
		l.log.Warn("ratekit: " + msg)
	}
	return l, nil
}

// wire sets up the decider for cfg: the store (New's own when cfg has
// none), and, for a shared store, the circuit breaker and the deny cache.
func (dc *decider) wire(cfg *Config, l *Limiter) error {
	dc.store, dc.onFailure, dc.instances = cfg.Store, cfg.OnStoreError, cfg.FallbackInstances
	if dc.store == nil {
		s, err := memory.New(memory.Config{})
		if err != nil {
			return err
		}
		dc.store, dc.ownStore = s, true
	}
	if !store.IsLocal(dc.store) {
		if !cfg.Breaker.Disabled {
			b := cfg.Breaker
			dc.breaker = breaker.New(breaker.Config{Failures: b.Failures, Cooldown: b.Cooldown}, nil, l.breakerChanged)
		}
		if !cfg.DisableDenyCache {
			size, ttl := cfg.DenyCacheSize, cfg.DenyCacheTTL
			if size == 0 {
				size = defaultDenySize
			}
			if ttl == 0 {
				ttl = defaultDenyTTL
			}
			dc.deny = denycache.New(size, ttl)
		}
	}
	if cfg.Concurrency > 0 {
		ttl := cfg.ConcurrencyTTL
		if ttl == 0 {
			ttl = defaultSlotTTL
		}
		sl := &slots{limit: cfg.Concurrency, ttl: ttl, scope: keyhash.ScopeOf("concurrency")}
		sl.store, _ = dc.store.(store.Concurrency)
		sl.policy = policy{Policy: window.Policy{Windows: []window.Window{{Name: "concurrency", Length: ttl, Limit: cfg.Concurrency}}},
			id: l.ids.Add(1), minLimit: cfg.Concurrency}
		l.who.hash.Prepare(&sl.scope)
		dc.slots = sl
	}
	if dc.onFailure == LocalFallback {
		fb, err := memory.New(memory.Config{})
		if err != nil {
			dc.close()
			return err
		}
		dc.fallback = fb
	}
	// The store reads its own clock. Ours is needed only by the deny cache
	// and to time decisions.
	dc.timed = cfg.Observer != nil
	dc.needNow = dc.deny != nil || dc.timed
	return nil
}

// Close closes the store if New created it, and the local fallback limiter.
// It is idempotent.
func (l *Limiter) Close() error { return l.dec.close() }

// Handler returns next wrapped by the limiter: func(http.Handler)
// http.Handler, the shape net/http, chi and most routers mount.
func (l *Limiter) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.serveHTTP(w, r, next)
	})
}

// ServeRoute serves r as the middleware does, for a router that knows the
// route before the handler runs but sets neither r.Pattern nor a chi route
// context: an adapter for gin or echo passes the framework's route
// template (c.FullPath(), c.Path()). route is the pattern rules name; ""
// means the router matched no route and will answer 404 or 405, so the
// request is not limited and counts nowhere, as under chi and ServeMux.
// next runs only if the limiter lets the request through.
func (l *Limiter) ServeRoute(w http.ResponseWriter, r *http.Request, route string, next http.Handler) {
	l.serve(w, r, next, l.rules.Load(), route, true)
}

// serveHTTP is the middleware: the route as the router says, then serve.
func (l *Limiter) serveHTTP(w http.ResponseWriter, r *http.Request, next http.Handler) {
	rs := l.rules.Load()
	route, known := l.route(r, rs)
	l.serve(w, r, next, rs, route, known)
}

// serve is the whole middleware: identify, decide, answer, report once,
// then the handler if the answer lets the request through.
func (l *Limiter) serve(w http.ResponseWriter, r *http.Request, next http.Handler, rs *ruleSet, route string, known bool) {
	sc := l.scratch.Get().(*scratch)
	c := &sc.c
	*c = call{slots: true}
	l.identify(r, rs, c, sc, route, known)
	l.decide(r.Context(), rs, c, sc)
	if c.held {
		// Released when the handler returns, however it returns (or now,
		// when the request is refused), even if a hook below panics.
		defer l.release(r.Context(), c.lease)
	}
	proceed := l.answer(w, r, c, sc)
	l.observe.ObserveRequest(r.Context(), c.route, methods[c.method], c.outcome, c.limitedBy)
	// Back to the pool before the handler runs: nothing below reads it, and
	// a long handler should not pin it.
	l.scratch.Put(sc)
	if proceed {
		next.ServeHTTP(w, r)
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

// errHookPanic is the failure of a request whose Identify, KeyValidator,
// CostFunc or header style panicked.
var errHookPanic = errors.New("middleware: a hook panicked")
