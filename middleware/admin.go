package middleware

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/ratekit/ratekit/store"
	"github.com/ratekit/ratekit/window"
)

// ErrNoAdmin is returned by [Limiter.Peek] and [Limiter.Reset] when the
// store does not implement [store.Admin].
var ErrNoAdmin = errors.New("middleware: store does not support peek and reset")

// Who names a client for support tooling: exactly one of ClientID (the
// [Client.ID] a KeyValidator returns, or the API key itself when it returns
// none) and IP.
type Who struct {
	ClientID string
	IP       netip.Addr
	// Plan is the client's plan, which decides its policy under rules that
	// use the default policy. Empty means the default policy.
	Plan string
}

// Peek returns what the next request of who under the named rule would be
// told, without counting anything, and the policy it is decided against.
// An empty rule means requests no rule matches. It is for support tooling
// ("why is this customer limited?"), not for the request path.
func (l *Limiter) Peek(ctx context.Context, who Who, rule string) (window.Decision, window.Policy, error) {
	admin, key, p, err := l.adminKey(who, rule)
	if err != nil {
		return window.Decision{}, window.Policy{}, err
	}
	d, err := admin.Peek(ctx, key, p)
	return d, clonePolicy(*p), err
}

// Reset forgets every window of who under the named rule (a customer was
// limited by mistake). An empty rule means requests no rule matches.
func (l *Limiter) Reset(ctx context.Context, who Who, rule string) error {
	admin, key, _, err := l.adminKey(who, rule)
	if err != nil {
		return err
	}
	if l.deny != nil {
		l.deny.put(&store.Request{Key: key}, &window.Decision{Allowed: true}, time.Now())
	}
	return admin.Reset(ctx, key)
}

func (l *Limiter) adminKey(who Who, name string) (store.Admin, store.Key, *window.Policy, error) {
	admin, ok := l.store.(store.Admin)
	if !ok {
		return nil, store.Key{}, nil, ErrNoAdmin
	}
	if name == "" {
		name = "default"
	}
	var ru *rule
	for _, r := range l.all {
		if r.name == name {
			ru = r
			break
		}
	}
	if ru == nil {
		return nil, store.Key{}, nil, fmt.Errorf("middleware: no rule named %q", name)
	}
	id := identity{plan: who.Plan}
	switch {
	case who.ClientID != "" && !who.IP.IsValid():
		id.keyed, id.id = true, who.ClientID
	case who.ClientID == "" && who.IP.IsValid():
		id.ip = l.clientIP.bucket(who.IP.Unmap().WithZone(""))
	default:
		return nil, store.Key{}, nil, errors.New("middleware: Who needs exactly one of ClientID and IP")
	}
	p := &ru.policy
	if pp, ok := l.plans[id.plan]; ok && ru.planned {
		p = &pp.policy
	}
	var sc scratch
	return admin, l.keyOf(&ru.scope, &id, &sc), p, nil
}
