package middleware

import (
	"fmt"
	"maps"
	"slices"

	"github.com/ratekit/ratekit/window"
)

// Limits is the part of a [Config] a running [Limiter] can change: what
// requests are decided against. Each field means what the Config field of
// the same name means.
//
// A change takes effect atomically (no request is decided against half of
// one Limits and half of another) and keeps counts: a bucket is named by
// its rule's name and its client, not by its limits, so a request after
// the change is decided against everything the client did before it. What
// the counts then mean depends on the windows:
//
//   - A window whose length stays counts exactly: a limit lowered below
//     what the client has used refuses at once; a limit raised admits the
//     difference at once.
//   - Under the exact sliding log (the default), a window that gets longer
//     sees only the admissions the store still holds, which reach back as
//     far as the longest window of the policy they were taken under: for
//     up to the new length it may admit what the longer window would have
//     refused. A window that gets shorter, or is added with a length no
//     longer than the longest, counts exactly.
//   - Under [window.SlidingCounter] a bucket's counts are kept per window in
//     order, so a change in the number of windows starts its counts afresh.
//   - A rule renamed, or added, counts in new buckets from zero; a rule
//     removed leaves its buckets to expire in the store. A rule without a
//     Name is named after its methods and routes, so editing those renames
//     it: give rules that may change a Name.
type Limits struct {
	// Policy is the default policy; zero means [window.Default].
	Policy window.Policy
	// Rules are the rules, in order; see [Rule].
	Rules []Rule
	// Plans maps a plan name ([Client.Plan]) to its policy.
	Plans map[string]window.Policy
	// ClientPolicies gives single clients limits of their own, by
	// [Client.ID] (the ID the KeyValidator or Identify returns, or the
	// key itself when a validator returns none): an enterprise customer's
	// raised budget. A client's own policy replaces its plan's and the
	// default wherever a plan would; a rule with a policy of its own keeps
	// it. Limits of one instance are its own: instances sharing a store
	// share counts, and enforce a client's own limits once each has been
	// told (by its configuration file, or [Limiter.SetClientPolicy]).
	ClientPolicies map[string]window.Policy
}

// clone returns a deep copy of lim, so later edits to the caller's slices
// and maps change nothing.
func (lim Limits) clone() Limits {
	out := Limits{Policy: clonePolicy(lim.Policy)}
	for _, r := range lim.Rules {
		r.Routes = slices.Clone(r.Routes)
		r.Methods = slices.Clone(r.Methods)
		r.Policy = clonePolicy(r.Policy)
		out.Rules = append(out.Rules, r)
	}
	out.Plans = clonePolicies(lim.Plans)
	out.ClientPolicies = clonePolicies(lim.ClientPolicies)
	return out
}

func clonePolicies(m map[string]window.Policy) map[string]window.Policy {
	if m == nil {
		return nil
	}
	out := make(map[string]window.Policy, len(m))
	for k, p := range m {
		out[k] = clonePolicy(p)
	}
	return out
}

// Limits returns a copy of the limits in force.
func (l *Limiter) Limits() Limits { return l.rules.Load().src.clone() }

// SetLimits replaces every limit at once: the default policy, the rules,
// the plans and the clients' own policies. It validates lim as [New] does
// and, on any problem, changes nothing and returns every problem, each
// wrapping [ErrInvalidConfig]. Requests being decided finish against the
// limits they started with; every request after SetLimits returns is
// decided against lim. Counts are kept as [Limits] says. It is safe to call
// while serving, from any goroutine.
func (l *Limiter) SetLimits(lim Limits) error {
	l.update.Lock()
	defer l.update.Unlock()
	rs, err := compileRules(lim, l.dec.instances, l.who.hash, &l.ids)
	if err != nil {
		return err
	}
	l.rules.Store(rs)
	for _, msg := range rs.warnings() {
		l.log.Warn("ratekit: " + msg)
	}
	return nil
}

// SetClientPolicy gives the client called id (its [Client.ID]) limits of
// its own, replacing any it had, and leaves every other limit as it is;
// see [Limits.ClientPolicies]. An invalid policy, or one below the cost of
// a rule it would apply to, is an error wrapping [ErrInvalidConfig] and
// changes nothing.
func (l *Limiter) SetClientPolicy(id string, p window.Policy) error {
	if id == "" {
		return fmt.Errorf("%w: a client policy needs a client ID", ErrInvalidConfig)
	}
	return l.editClients(func(m map[string]window.Policy) map[string]window.Policy {
		if m == nil {
			m = map[string]window.Policy{}
		}
		m[id] = p
		return m
	})
}

// RemoveClientPolicy takes the client called id back to its plan's limits
// (or the default). Removing a client without a policy of its own does
// nothing.
func (l *Limiter) RemoveClientPolicy(id string) {
	// Removing cannot make the limits invalid.
	_ = l.editClients(func(m map[string]window.Policy) map[string]window.Policy {
		delete(m, id)
		return m
	})
}

// editClients applies edit to a copy of the client policies in force and
// installs the result with everything else unchanged.
func (l *Limiter) editClients(edit func(map[string]window.Policy) map[string]window.Policy) error {
	l.update.Lock()
	defer l.update.Unlock()
	lim := l.rules.Load().src // compileRules copies what it keeps
	lim.ClientPolicies = edit(maps.Clone(lim.ClientPolicies))
	rs, err := compileRules(lim, l.dec.instances, l.who.hash, &l.ids)
	if err != nil {
		return err
	}
	l.rules.Store(rs)
	return nil
}
