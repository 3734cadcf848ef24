package middleware

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"

	"github.com/ratekit/ratekit/store"
	"github.com/ratekit/ratekit/window"
)

// Identity names who is asking, for a decision taken without an HTTP
// request ([Limiter.Take]) and for support tooling ([Limiter.Peek],
// [Limiter.Reset]). It resolves to the same bucket as an HTTP request of
// that client would: the same keyed hash of the same identity.
type Identity struct {
	// Client names a client the caller has already identified, as
	// [Config.Identify] would: its requests count against Client.ID, with
	// its plan and exemption, and the key validator is not asked. Used when
	// Client.ID is not empty; it takes precedence over Key.
	Client Client
	// Key is an API key as a client presented it, checked as a key header's
	// value would be: the same grammar and MaxKeyLen, then KeyValidator
	// (through its cache). A valid key counts against its client; a
	// malformed or unknown key, or any key without a KeyValidator, counts
	// against Addr, as over HTTP.
	Key string
	// Addr is the client's address, used when neither Client nor Key names
	// a client, and matched against ExemptIPs. It is bucketed as over
	// HTTP: IPv4 alone, IPv6 by ClientIP.IPv6Prefix, IPv4-mapped addresses
	// unmapped and zones dropped. The zero Addr is the bucket shared by
	// every request whose address is unknown.
	Addr netip.Addr
}

// Request is one decision asked of [Limiter.Take].
type Request struct {
	// Identity is who is asking. At least one of its fields must be set.
	Identity Identity
	// Rule names the rule that applies ([Rule.Name], or the name derived
	// from its methods and routes); "default" names the policy of requests
	// no rule matches. Empty means the rule Route and Method select, as for
	// an HTTP request.
	Rule string
	// Route is the route pattern the request is for ("/v1/people/{id}"),
	// matched against [Rule.Routes] and reported to the observer as the
	// route label, so it must be a pattern from a small fixed set, never a
	// raw path. Empty means a request that no route names: only rules
	// without Routes apply, and it is reported as "unmatched".
	Route string
	// Method is the HTTP method the request stands for, matched against
	// [Rule.Methods]. Empty, or a method not in the standard set, is
	// reported as "OTHER": only rules without Methods apply.
	Method string
	// Cost is what the request counts for. Zero means the rule's cost. It
	// may not be negative, nor above the smallest limit of the policy it is
	// decided against: no such request could ever pass.
	Cost int
}

// Result is what [Limiter.Take] decided.
type Result struct {
	// Allowed reports whether the caller should go ahead: the request was
	// admitted, or is exempt, or its rule is in shadow mode, or no decision
	// could be taken and the failure policy lets it through.
	Allowed bool
	// Outcome is what the observer was told: one of OutcomeAllowed,
	// OutcomeLimited, OutcomeExempt, OutcomeShadow and OutcomeError.
	Outcome string
	// LimitedBy is the label of the window that refused the request
	// ("minute", "second", ...) when Outcome is limited or shadow, else "".
	LimitedBy string
	// Decision is the store's answer; the zero Decision when Outcome is
	// exempt or error.
	Decision window.Decision
	// Policy is the policy Decision was taken against: the rule's, the
	// client's plan's, or the LocalFallback share. Its Windows must not be
	// modified.
	Policy window.Policy
	// Degraded reports a decision of the LocalFallback limiter, or a
	// request let through by the failure policy without one; over HTTP it
	// is sent as X-RateLimit-Degraded: true.
	Degraded bool
	// Err is the store failure (or hook panic) behind an Outcome of error.
	Err error

	shadow bool
	cost   int
	key    store.Key
	id     identity // for the refusal hooks
	rule   *rule
	route  string
}

// ErrInvalidRequest is wrapped by the errors [Limiter.Take],
// [Limiter.Peek] and [Limiter.Reset] return for a request that can never be
// decided: an unknown rule, an identity that names nobody, a bad cost.
var ErrInvalidRequest = errors.New("middleware: invalid request")

// Take decides one request of req.Identity under the rule req names,
// exactly as an HTTP request of that client on that route would be
// decided: the same bucket, rules, plans, failure policy, circuit breaker,
// deny cache, local fallback and observer. Use it where there is no
// http.Request to wrap (a gRPC handler, a job that calls an API on a
// client's behalf) to charge the same allowance the client's HTTP calls
// draw on.
//
// A store failure is not an error of Take: it is an Outcome of error (or a
// Degraded decision of the local fallback), with Allowed set as the failure
// policy says. The error is for a request that can never be decided; it
// wraps [ErrInvalidRequest]. Take holds no concurrency slot
// ([Config.Concurrency] counts HTTP requests in flight) and makes one store
// call at most.
//
// [Limiter.Answer] writes a Result onto an HTTP response.
func (l *Limiter) Take(ctx context.Context, req Request) (Result, error) {
	rs := l.rules.Load()
	ru, err := rs.find(req.Rule, req.Route, req.Method)
	if err != nil {
		return Result{}, err
	}
	who := &req.Identity
	if who.Client.ID == "" && who.Key == "" && !who.Addr.IsValid() {
		return Result{}, fmt.Errorf("%w: the identity names no client, key or address", ErrInvalidRequest)
	}
	if req.Cost < 0 {
		return Result{}, fmt.Errorf("%w: cost %d negative", ErrInvalidRequest, req.Cost)
	}
	sc := l.scratch.Get().(*scratch)
	defer l.scratch.Put(sc)
	c := &sc.c
	*c = call{method: methodIndex(req.Method), route: req.Route, rule: ru, shadow: ru.shadow, cost: ru.cost}
	if c.route == "" {
		c.route = RouteUnmatched
	}
	if req.Cost > 0 {
		c.cost = req.Cost
	}
	if ru.exempt {
		c.outcome = OutcomeExempt
	} else if l.fromIdentity(ctx, who, c, sc); c.id.exempt {
		c.outcome = OutcomeExempt
	}
	if c.outcome == "" && c.err == nil {
		if p, _ := rs.policies(ru, &c.id); c.cost > p.minLimit {
			return Result{}, fmt.Errorf("%w: cost %d above the smallest limit %d of rule %s: no such request can ever pass",
				ErrInvalidRequest, c.cost, p.minLimit, ru.name)
		}
	}
	l.decide(ctx, rs, c, sc)
	l.observe.ObserveRequest(ctx, c.route, methods[c.method], c.outcome, c.limitedBy)
	return l.result(c), nil
}

// find returns the rule a programmatic request names: by name, else by
// route and method.
func (rs *ruleSet) find(name, route, method string) (*rule, error) {
	if name == "" {
		return rs.lookup(route, methodIndex(method)), nil
	}
	if ru, ok := rs.byName[name]; ok {
		return ru, nil
	}
	return nil, fmt.Errorf("%w: no rule named %q", ErrInvalidRequest, name)
}

// result copies c's decision out of the scratch.
func (l *Limiter) result(c *call) Result {
	res := Result{Outcome: c.outcome, LimitedBy: c.limitedBy, Degraded: c.degraded, Err: c.err,
		shadow: c.shadow, cost: c.cost, key: c.key, id: c.id, rule: c.rule, route: c.route}
	if c.policy != nil {
		res.Policy, res.Decision = c.policy.Policy, c.d
	}
	if res.id.keyIsID {
		res.id.id = "" // the API key itself: no Result carries it
	}
	switch c.outcome {
	case OutcomeAllowed, OutcomeExempt, OutcomeShadow:
		res.Allowed = true
	case OutcomeError:
		res.Allowed = l.dec.onFailure != FailClosed || c.shadow
		res.Degraded = res.Allowed
	}
	return res
}

// Answer writes res onto w as the middleware would have answered r, the
// request it stands for, and reports whether the request should go on to
// its handler: the rate-limit headers (and X-RateLimit-Degraded) of an
// admitted request; the 429, Retry-After and envelope body of a refusal
// (or the answer of Config.Refuse, which, like OnRefusal, is given r); the
// 503 of FailClosed. It writes nothing for an exempt request. Use it in a
// handler that calls [Limiter.Take] itself. r may be nil.
func (l *Limiter) Answer(w http.ResponseWriter, r *http.Request, res *Result) (proceed bool) {
	sc := l.scratch.Get().(*scratch)
	defer l.scratch.Put(sc)
	c := &sc.c
	*c = call{outcome: res.Outcome, limitedBy: res.LimitedBy, shadow: res.shadow, cost: res.cost, key: res.key,
		d: res.Decision, degraded: res.Degraded && res.Outcome != OutcomeError, err: res.Err, id: res.id, rule: res.rule, route: res.route}
	if c.outcome == OutcomeError && c.err == nil {
		c.err = errHookPanic // a Result built by hand: say something in the log
	}
	sc.pol = policy{Policy: res.Policy}
	c.policy = &sc.pol
	return l.answer(w, r, c, sc)
}

// Peek returns what the next request of who under the named rule would be
// told, without counting anything, and the policy it is decided against.
// An empty rule means requests no rule matches. It is for support tooling
// ("why is this customer limited?"), not for the request path. The error
// wraps [ErrNoAdmin] when the store cannot peek, [ErrInvalidRequest] for an
// unknown rule or an empty identity.
func (l *Limiter) Peek(ctx context.Context, who Identity, rule string) (window.Decision, window.Policy, error) {
	admin, key, p, err := l.adminKey(ctx, who, rule)
	if err != nil {
		return window.Decision{}, window.Policy{}, err
	}
	d, err := admin.Peek(ctx, key, &p.Policy)
	return d, clonePolicy(p.Policy), err
}

// Reset forgets every window of who under the named rule (a customer was
// limited by mistake), and this instance's cached refusal of it. An empty
// rule means requests no rule matches. Other instances sharing the store
// may repeat a cached refusal for up to DenyCacheTTL.
func (l *Limiter) Reset(ctx context.Context, who Identity, rule string) error {
	admin, key, _, err := l.adminKey(ctx, who, rule)
	if err != nil {
		return err
	}
	l.dec.deny.Forget(key)
	return admin.Reset(ctx, key)
}

// ErrNoAdmin is returned by [Limiter.Peek] and [Limiter.Reset] when the
// store does not implement [store.Admin].
var ErrNoAdmin = errors.New("middleware: store does not support peek and reset")

// adminKey resolves who under the named rule to its store key and policy,
// as Take would.
func (l *Limiter) adminKey(ctx context.Context, who Identity, name string) (store.Admin, store.Key, *policy, error) {
	admin, ok := l.dec.store.(store.Admin)
	if !ok {
		return nil, store.Key{}, nil, ErrNoAdmin
	}
	if name == "" {
		name = "default"
	}
	rs := l.rules.Load()
	ru, err := rs.find(name, "", "")
	if err != nil {
		return nil, store.Key{}, nil, err
	}
	if who.Client.ID == "" && who.Key == "" && !who.Addr.IsValid() {
		return nil, store.Key{}, nil, fmt.Errorf("%w: the identity names no client, key or address", ErrInvalidRequest)
	}
	sc := l.scratch.Get().(*scratch)
	defer l.scratch.Put(sc)
	c := &sc.c
	*c = call{}
	l.fromIdentity(ctx, &who, c, sc)
	if c.err != nil {
		return nil, store.Key{}, nil, c.err
	}
	p, _ := rs.policies(ru, &c.id)
	return admin, l.who.keyOf(&ru.scope, &c.id, &sc.buf), p, nil
}
