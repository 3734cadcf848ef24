package middleware

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/ratekit/ratekit/internal/keyhash"
	"github.com/ratekit/ratekit/window"
)

// Rule applies its own limits to some routes and methods. Rules are tried in
// order and the first whose Routes and Methods both match the request
// applies; a request no rule matches gets [Config.Policy].
//
// Each rule counts in its own buckets, so a client's GETs and POSTs under
// two rules do not eat into each other's allowance. Rules with the same
// Name share one set of buckets (a "write" tier over several routes).
type Rule struct {
	// Name identifies the rule in logs and [Limiter.Take], and scopes its
	// buckets; rules with the same Name share counters (and must have the
	// same Policy and Cost). Empty means a name derived from Methods and
	// Routes. "default" is reserved for requests no rule matches.
	Name string
	// Routes are full route patterns as the application serves them:
	// chi's "/v2/users/{id}" (including the prefixes of r.Route and Mount,
	// wherever in the router the limiter is mounted) or ServeMux's
	// "/v1/people/{id}" (a ServeMux pattern's method and host are not part
	// of the route; use Methods). Matching is exact on the pattern, never on
	// the raw path, so /v1/people/1/ or /v1/%70eople/1 can never select a
	// different rule. Empty means every route.
	Routes []string
	// Methods are HTTP methods ("GET", "POST", ...). Empty means every
	// method. GET also covers HEAD, which routers answer with the GET
	// handler.
	Methods []string
	// Policy is the rule's windows. The zero value means [Config.Policy]
	// (or the client's plan, see [Config.Plans]).
	Policy window.Policy
	// Cost is what one request under the rule counts for: a bulk endpoint
	// may cost 10. Zero means 1. It must not exceed the smallest limit of
	// the policy, or no request could ever pass.
	Cost int
	// CostFunc, when set, prices each request from the request itself: the
	// number of objects in a bulk update, a page_size parameter, or a value
	// an earlier middleware stored with [WithCost] ([CostFromContext] reads
	// it). A result of zero or less means Cost. A request whose cost exceeds
	// the limit of some window of its policy can never pass: it is answered
	// 413 Content Too Large, without Retry-After and without asking the
	// store. A panic in it is recovered and handled as a store failure.
	CostFunc func(r *http.Request) int
	// Exempt requests are never limited, counted or given rate-limit
	// headers (health checks).
	Exempt bool
	// Shadow decides and reports (headers, metrics) but never rejects: a
	// request that would have been limited passes, counted nowhere, and is
	// reported with outcome "shadow". For rolling a new limit out safely.
	Shadow bool
}

// UnmarshalJSON reads a rule strictly: a field it does not know ("route"
// for "routes") is an error, not a rule that silently matches every route.
// Fields are named as in Go (Name, Routes, Methods, Policy, Cost, Exempt,
// Shadow; case-insensitive, as encoding/json matches); Policy has the form
// of [window.ParsePolicy]. CostFunc cannot come from JSON.
func (r *Rule) UnmarshalJSON(data []byte) error {
	type plain struct {
		Name    string
		Routes  []string
		Methods []string
		Policy  window.Policy
		Cost    int
		Exempt  bool
		Shadow  bool
	}
	var p plain
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return fmt.Errorf("middleware: rule: %w", err)
	}
	*r = Rule{Name: p.Name, Routes: p.Routes, Methods: p.Methods, Policy: p.Policy, Cost: p.Cost, Exempt: p.Exempt, Shadow: p.Shadow}
	return nil
}

// costKey is the context key of WithCost.
type costKey struct{}

// WithCost returns a copy of ctx carrying n as the cost of the request it
// belongs to, for a middleware that learns the cost before the limiter
// runs (it parsed the batch). A rule whose CostFunc is [CostFromContext]
// charges it.
func WithCost(ctx context.Context, n int) context.Context {
	return context.WithValue(ctx, costKey{}, n)
}

// CostFromContext returns the cost [WithCost] put in r's context, or 0 (the
// rule's Cost) when there is none. It has the shape of [Rule.CostFunc].
func CostFromContext(r *http.Request) int {
	n, _ := r.Context().Value(costKey{}).(int)
	return n
}

// methods indexes the standard methods; everything else is OTHER.
var methods = [...]string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE", "OTHER"}

func methodIndex(m string) int {
	for i, v := range methods[:len(methods)-1] {
		if v == m {
			return i
		}
	}
	return len(methods) - 1
}

// policy is a policy the limiter decides with, numbered for the deny cache:
// numbers are never reused within a Limiter, so a cached refusal answers
// only the policy it was taken against, even after a reload.
type policy struct {
	window.Policy
	id       uint64
	minLimit int // Policy.MinLimit(), the largest cost a request may have
}

// rule is a compiled Rule: everything a request needs, precomputed.
type rule struct {
	name     string
	scope    keyhash.Scope
	policy   policy // explicit or default
	fallback policy // policy divided for LocalFallback
	planned  bool   // policy came from Config.Policy: a client's plan may replace it
	cost     int
	costFunc func(*http.Request) int
	exempt   bool
	shadow   bool
}

// planPolicies is a plan's (or one client's) policy and its LocalFallback
// share.
type planPolicies struct {
	policy, fallback policy
}

// ruleSet is every rule and plan of one configuration, compiled: what a
// request is decided against. It is never modified after compileRules.
type ruleSet struct {
	byRoute map[string]*[len(methods)]*rule
	other   [len(methods)]*rule // routes no rule names
	all     []*rule             // default first, then Config.Rules in order
	byName  map[string]*rule
	plans   map[string]*planPolicies
	clients map[string]*planPolicies // by Client.ID; nil when none
	maxCost int                      // the largest cost of a rule a plan or client policy applies to
	src     Limits                   // what was compiled, copied; for Limiter.Limits
	routes  []string                 // every route some rule names, for the start-up checks
}

// lookup returns the rule for a (route, method) pair with one map lookup.
func (t *ruleSet) lookup(route string, method int) *rule {
	if rs, ok := t.byRoute[route]; ok {
		return rs[method]
	}
	return t.other[method]
}

// policies returns the policy id is decided against under ru, and its
// LocalFallback share: a client's own policy, else its plan's, replaces
// the default policy; a rule with a policy of its own keeps it.
func (t *ruleSet) policies(ru *rule, id *identity) (p, fallback *policy) {
	if !ru.planned {
		return &ru.policy, &ru.fallback
	}
	if t.clients != nil && id.keyed {
		if pp, ok := t.clients[id.id]; ok {
			return &pp.policy, &pp.fallback
		}
	}
	if id.plan != "" {
		if pp, ok := t.plans[id.plan]; ok {
			return &pp.policy, &pp.fallback
		}
	}
	return &ru.policy, &ru.fallback
}

// compileRules validates limits and builds their table, reporting every
// problem at once. instances is Config.FallbackInstances; ids numbers the
// policies; h prepares the rules' key scopes.
func compileRules(cfg Limits, instances int, h *keyhash.Hasher, ids *atomic.Uint64) (*ruleSet, error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	number := func(p window.Policy) policy { return policy{Policy: p, id: ids.Add(1), minLimit: p.MinLimit()} }
	cfg = cfg.clone()
	if cfg.Policy.Windows == nil {
		cfg.Policy = window.Default()
	}
	if err := cfg.Policy.Validate(); err != nil {
		bad("policy: %w", err)
	}
	def := cfg.Policy
	defRule := &rule{name: "default", scope: keyhash.ScopeOf("default"), policy: number(def),
		fallback: number(dividePolicy(def, instances, 1)), planned: true, cost: 1}
	t := &ruleSet{all: []*rule{defRule}, byName: map[string]*rule{"default": defRule}, src: cfg}
	for i, r := range cfg.Rules {
		name := r.Name
		if name == "" {
			name = strings.Join(r.Methods, ",") + " " + strings.Join(r.Routes, ",")
		}
		c := &rule{name: name, scope: keyhash.ScopeOf("rule:" + name), cost: max(r.Cost, 1), costFunc: r.CostFunc,
			exempt: r.Exempt, shadow: r.Shadow}
		if r.Policy.Windows == nil {
			c.policy, c.planned = defRule.policy, true
		} else {
			p := r.Policy
			if err := p.Validate(); err != nil {
				bad("rule %d (%s): %w", i, name, err)
				continue
			}
			c.policy = number(p)
		}
		c.fallback = number(dividePolicy(c.policy.Policy, instances, c.cost))
		if r.Cost < 0 {
			bad("rule %d (%s): cost %d negative", i, name, r.Cost)
		}
		if !c.exempt && c.cost > c.policy.MinLimit() {
			bad("rule %d (%s): cost %d above the smallest limit %d, no request could pass", i, name, c.cost, c.policy.MinLimit())
		}
		for _, m := range r.Methods {
			if methodIndex(m) == len(methods)-1 {
				bad("rule %d (%s): method %q is not a standard method", i, name, m)
			}
		}
		for _, rt := range r.Routes {
			if !strings.HasPrefix(rt, "/") {
				bad("rule %d (%s): route %q does not start with /", i, name, rt)
			}
		}
		if prev, dup := t.byName[name]; dup {
			if name == "default" {
				bad("rule %d: the name default is reserved", i)
			} else if prev.policy.String() != c.policy.String() || prev.cost != c.cost {
				// Shared buckets need one policy, and one cost: the deny
				// cache repeats a bucket's rejection whatever the cost.
				bad("rule %d (%s): shares its name with a rule of another policy or cost", i, name)
			}
		} else {
			t.byName[name] = c
		}
		t.all = append(t.all, c)
	}
	t.maxCost = 1 // of the rules a plan can apply to
	for _, r := range t.all {
		if r.planned && !r.exempt {
			t.maxCost = max(t.maxCost, r.cost)
		}
	}
	t.plans = make(map[string]*planPolicies, len(cfg.Plans))
	for name, p := range cfg.Plans {
		pp, err := t.compileOwn(p, instances, number)
		if err != nil {
			bad("plan %q: %w", name, err)
			continue
		}
		t.plans[name] = pp
	}
	if len(cfg.ClientPolicies) > 0 {
		t.clients = make(map[string]*planPolicies, len(cfg.ClientPolicies))
	}
	for id, p := range cfg.ClientPolicies {
		pp, err := t.compileOwn(p, instances, number)
		if err != nil {
			bad("client policy %s: %w", idDigest(id), err)
			continue
		}
		t.clients[id] = pp
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for _, r := range t.all {
		h.Prepare(&r.scope)
	}

	match := func(route string, method int) *rule {
		for i, r := range cfg.Rules {
			routeOK := len(r.Routes) == 0 || slices.Contains(r.Routes, route)
			// A rule for GET also covers HEAD, which routers serve with the
			// GET handler: otherwise HEAD would be a way around the rule.
			methodOK := len(r.Methods) == 0 || slices.ContainsFunc(r.Methods, func(m string) bool {
				return methodIndex(m) == method || (m == http.MethodGet && methods[method] == http.MethodHead)
			})
			if routeOK && methodOK {
				return t.all[i+1]
			}
		}
		return defRule
	}
	t.byRoute = map[string]*[len(methods)]*rule{}
	for m := range methods {
		t.other[m] = match("", m)
	}
	for _, r := range cfg.Rules {
		for _, rt := range r.Routes {
			if _, done := t.byRoute[rt]; done {
				continue
			}
			var rs [len(methods)]*rule
			for m := range methods {
				rs[m] = match(rt, m)
			}
			t.byRoute[rt] = &rs
			t.routes = append(t.routes, rt)
		}
	}
	return t, nil
}

// idDigest names a client ID in an error without showing it (an ID may be
// an API key): the first 8 hex digits of its SHA-256, which an operator can
// compute for the IDs in a configuration to find the one meant.
func idDigest(id string) string {
	sum := sha256.Sum256([]byte(id))
	return "with ID sha256:" + hex.EncodeToString(sum[:4])
}

// compileOwn compiles the policy of a plan or of one client: valid, and
// admitting every cost a rule it applies to can ask for.
func (t *ruleSet) compileOwn(p window.Policy, instances int, number func(window.Policy) policy) (*planPolicies, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	var errs []error
	for _, r := range t.all {
		if r.planned && !r.exempt && r.cost > p.MinLimit() {
			errs = append(errs, fmt.Errorf("rule %s's cost %d is above the smallest limit %d, its clients could never pass", r.name, r.cost, p.MinLimit()))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &planPolicies{policy: number(p), fallback: number(dividePolicy(p, instances, t.maxCost))}, nil
}

// clonePolicy copies p so later edits to the caller's slice change nothing.
func clonePolicy(p window.Policy) window.Policy {
	p.Windows = slices.Clone(p.Windows) // nil stays nil: the default
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

// warnings describes configurations of t that are valid but probably not
// meant, for the log at start-up.
func (t *ruleSet) warnings() []string {
	var out []string
	check := func(what string, p window.Policy) {
		for _, msg := range redundantWindows(p) {
			out = append(out, what+": "+msg+" (policy "+p.String()+")")
		}
	}
	check("default policy", t.all[0].policy.Policy)
	for _, r := range t.all[1:] {
		if !r.planned {
			check("rule "+r.name, r.policy.Policy)
		}
	}
	names := make([]string, 0, len(t.plans))
	for name := range t.plans {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		check("plan "+name, t.plans[name].policy.Policy)
	}
	return out
}

// redundantWindows describes windows of p that can never bind, for a
// start-up warning: a shorter window whose limit is at least the longer
// one's never refuses first, and a longer window that the shorter one
// always fills first (short limit × ceil(long/short) ≤ long limit) never
// refuses at all.
func redundantWindows(p window.Policy) []string {
	var out []string
	for i, a := range p.Windows {
		for j, b := range p.Windows {
			if i == j || a.Length >= b.Length {
				continue
			}
			// a is the shorter window.
			periods := int64((b.Length + a.Length - 1) / a.Length)
			switch {
			case a.Limit >= b.Limit:
				out = append(out, fmt.Sprintf("window %s (%d) can never bind: %s allows only %d", a.Label(), a.Limit, b.Label(), b.Limit))
			case int64(a.Limit)*periods <= int64(b.Limit):
				out = append(out, fmt.Sprintf("window %s (%d) can never bind: %s (%d) fills first", b.Label(), b.Limit, a.Label(), a.Limit))
			}
		}
	}
	return out
}
