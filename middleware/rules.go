package middleware

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

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
	// Name identifies the rule in logs and scopes its buckets; rules with
	// the same Name share counters (and must have the same Policy and
	// Cost). Empty
	// means a name derived from Methods and Routes.
	Name string
	// Routes are route patterns as the router registered them: chi's
	// "/v1/people/{id}" or ServeMux's "/v1/people/{id}" (a ServeMux pattern's
	// method and host are not part of the route; use Methods). Matching is
	// exact on the pattern, never on the raw path, so /v1/people/1/ or
	// /v1/%70eople/1 can never select a different rule. Empty means every
	// route.
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

// rule is a compiled Rule: everything a request needs, precomputed.
type rule struct {
	name     string
	scope    scope
	policy   window.Policy // explicit or default
	fallback window.Policy // policy divided for LocalFallback
	planned  bool          // policy came from Config.Policy: a client's plan may replace it
	cost     int
	exempt   bool
	shadow   bool
}

// ruleTable finds the rule for a (route, method) pair with one map lookup.
type ruleTable struct {
	byRoute map[string]*[len(methods)]*rule
	other   [len(methods)]*rule // routes no rule names
}

func (t *ruleTable) lookup(route string, method int) *rule {
	if rs, ok := t.byRoute[route]; ok {
		return rs[method]
	}
	return t.other[method]
}

// compileRules validates rules and builds the table. def is the policy for
// requests no rule matches; instances divides fallback limits.
func compileRules(rules []Rule, def window.Policy, instances int) (ruleTable, []*rule, error) {
	var errs []error
	defRule := &rule{name: "default", scope: scopeOf("default"), policy: def, fallback: dividePolicy(def, instances, 1), planned: true, cost: 1}
	compiled := []*rule{defRule}
	byName := map[string]*rule{"default": defRule}
	for i, r := range rules {
		name := r.Name
		if name == "" {
			name = strings.Join(r.Methods, ",") + " " + strings.Join(r.Routes, ",")
		}
		c := &rule{name: name, scope: scopeOf("rule:" + name), cost: max(r.Cost, 1), exempt: r.Exempt, shadow: r.Shadow}
		if r.Policy.Windows == nil {
			c.policy, c.planned = def, true
		} else {
			c.policy = clonePolicy(r.Policy)
			if err := c.policy.Validate(); err != nil {
				errs = append(errs, fmt.Errorf("%w: rule %d (%s): %w", ErrInvalidConfig, i, name, err))
				continue
			}
		}
		c.fallback = dividePolicy(c.policy, instances, c.cost)
		if r.Cost < 0 {
			errs = append(errs, fmt.Errorf("%w: rule %d (%s): cost %d negative", ErrInvalidConfig, i, name, r.Cost))
		}
		if !c.exempt && c.cost > c.policy.MinLimit() {
			errs = append(errs, fmt.Errorf("%w: rule %d (%s): cost %d above the smallest limit %d, no request could pass",
				ErrInvalidConfig, i, name, c.cost, c.policy.MinLimit()))
		}
		for _, m := range r.Methods {
			if methodIndex(m) == len(methods)-1 {
				errs = append(errs, fmt.Errorf("%w: rule %d (%s): method %q is not a standard method", ErrInvalidConfig, i, name, m))
			}
		}
		for _, rt := range r.Routes {
			if !strings.HasPrefix(rt, "/") {
				errs = append(errs, fmt.Errorf("%w: rule %d (%s): route %q does not start with /", ErrInvalidConfig, i, name, rt))
			}
		}
		if prev, dup := byName[name]; dup {
			if name == "default" {
				errs = append(errs, fmt.Errorf("%w: rule %d: the name default is reserved", ErrInvalidConfig, i))
			} else if prev.policy.String() != c.policy.String() || prev.cost != c.cost {
				// Shared buckets need one policy, and one cost: the deny
				// cache repeats a bucket's rejection whatever the cost.
				errs = append(errs, fmt.Errorf("%w: rule %d (%s): shares its name with a rule of another policy or cost", ErrInvalidConfig, i, name))
			}
		}
		byName[name] = c
		compiled = append(compiled, c)
	}
	if err := errors.Join(errs...); err != nil {
		return ruleTable{}, nil, err
	}

	match := func(route string, method int) *rule {
		for i, r := range rules {
			routeOK := len(r.Routes) == 0 || slices.Contains(r.Routes, route)
			// A rule for GET also covers HEAD, which routers serve with the
			// GET handler: otherwise HEAD would be a way around the rule.
			methodOK := len(r.Methods) == 0 || slices.ContainsFunc(r.Methods, func(m string) bool {
				return methodIndex(m) == method || (m == http.MethodGet && methods[method] == http.MethodHead)
			})
			if routeOK && methodOK {
				return compiled[i+1]
			}
		}
		return defRule
	}
	t := ruleTable{byRoute: map[string]*[len(methods)]*rule{}}
	for m := range methods {
		t.other[m] = match("", m)
	}
	for _, r := range rules {
		for _, rt := range r.Routes {
			if _, done := t.byRoute[rt]; done {
				continue
			}
			var rs [len(methods)]*rule
			for m := range methods {
				rs[m] = match(rt, m)
			}
			t.byRoute[rt] = &rs
		}
	}
	return t, compiled, nil
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
