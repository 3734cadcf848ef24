package middleware

import (
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
	// Exempt requests are never limited, counted or given rate-limit
	// headers (health checks).
	Exempt bool
	// Shadow decides and reports (headers, metrics) but never rejects: a
	// request that would have been limited passes, counted nowhere, and is
	// reported with outcome "shadow". For rolling a new limit out safely.
	Shadow bool
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
	id uint64
}

// rule is a compiled Rule: everything a request needs, precomputed.
type rule struct {
	name     string
	scope    keyhash.Scope
	policy   policy // explicit or default
	fallback policy // policy divided for LocalFallback
	planned  bool   // policy came from Config.Policy: a client's plan may replace it
	cost     int
	exempt   bool
	shadow   bool
}

// planPolicies is a plan's policy and its LocalFallback share.
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
	routes  []string // every route some rule names, for the start-up checks
}

// lookup returns the rule for a (route, method) pair with one map lookup.
func (t *ruleSet) lookup(route string, method int) *rule {
	if rs, ok := t.byRoute[route]; ok {
		return rs[method]
	}
	return t.other[method]
}

// policies returns the policy a client of plan is decided against under
// ru, and its LocalFallback share: the client's plan replaces the default
// policy.
func (t *ruleSet) policies(ru *rule, plan string) (p, fallback *policy) {
	if ru.planned && plan != "" {
		if pp, ok := t.plans[plan]; ok {
			return &pp.policy, &pp.fallback
		}
	}
	return &ru.policy, &ru.fallback
}

// ruleConfig is what compileRules needs of a Config.
type ruleConfig struct {
	def       window.Policy
	rules     []Rule
	plans     map[string]window.Policy
	instances int // Config.FallbackInstances
}

// compileRules validates a configuration's policy, rules and plans and
// builds their table, reporting every problem at once. ids numbers the
// policies; h prepares the rules' key scopes.
func compileRules(cfg ruleConfig, h *keyhash.Hasher, ids *atomic.Uint64) (*ruleSet, error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	number := func(p window.Policy) policy { return policy{Policy: p, id: ids.Add(1)} }
	if cfg.def.Windows == nil {
		cfg.def = window.Default()
	}
	if err := cfg.def.Validate(); err != nil {
		bad("policy: %w", err)
	}
	def := clonePolicy(cfg.def)
	defRule := &rule{name: "default", scope: keyhash.ScopeOf("default"), policy: number(def),
		fallback: number(dividePolicy(def, cfg.instances, 1)), planned: true, cost: 1}
	t := &ruleSet{all: []*rule{defRule}, byName: map[string]*rule{"default": defRule}}
	for i, r := range cfg.rules {
		name := r.Name
		if name == "" {
			name = strings.Join(r.Methods, ",") + " " + strings.Join(r.Routes, ",")
		}
		c := &rule{name: name, scope: keyhash.ScopeOf("rule:" + name), cost: max(r.Cost, 1), exempt: r.Exempt, shadow: r.Shadow}
		if r.Policy.Windows == nil {
			c.policy, c.planned = defRule.policy, true
		} else {
			p := clonePolicy(r.Policy)
			if err := p.Validate(); err != nil {
				bad("rule %d (%s): %w", i, name, err)
				continue
			}
			c.policy = number(p)
		}
		c.fallback = number(dividePolicy(c.policy.Policy, cfg.instances, c.cost))
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
	maxCost := 1 // of the rules a plan can apply to
	for _, r := range t.all {
		if r.planned && !r.exempt {
			maxCost = max(maxCost, r.cost)
		}
	}
	t.plans = make(map[string]*planPolicies, len(cfg.plans))
	for name, p := range cfg.plans {
		if err := p.Validate(); err != nil {
			bad("plan %q: %w", name, err)
			continue
		}
		for _, r := range t.all {
			if r.planned && !r.exempt && r.cost > p.MinLimit() {
				bad("rule %s: cost %d above plan %q's smallest limit %d, its clients could never pass", r.name, r.cost, name, p.MinLimit())
			}
		}
		p = clonePolicy(p)
		t.plans[name] = &planPolicies{policy: number(p), fallback: number(dividePolicy(p, cfg.instances, maxCost))}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for _, r := range t.all {
		h.Prepare(&r.scope)
	}

	match := func(route string, method int) *rule {
		for i, r := range cfg.rules {
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
	for _, r := range cfg.rules {
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
