package middleware

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ratekit/ratekit/internal/forwarded"
	"github.com/ratekit/ratekit/internal/keyhash"
	"github.com/ratekit/ratekit/store"
)

// identity is who is asking, as far as the limiter cares: a client counted
// by its ID, or an address bucket.
type identity struct {
	keyed  bool   // counted by client ID
	id     string // client ID, when keyed
	plan   string
	exempt bool
	// keyIsID: id is the API key itself (a validator that named no ID),
	// never to be shown to a hook.
	keyIsID bool
	ip      netip.Prefix // the address bucket; resolved only when needed
}

// identifier finds out who is asking and derives the store keys of the
// answer. Nothing in it depends on the configuration's rules, so it is
// never replaced while serving.
type identifier struct {
	identify  func(*http.Request) (Client, bool)
	keys      keyReader
	validate  func(ctx context.Context, key string) (Client, bool)
	cache     *keyCache // nil without Config.KeyCacheTTL
	clientIP  ClientIP
	exemptIPs []netip.Prefix
	hash      *keyhash.Hasher
	warnedFwd atomic.Bool
}

// identify finds the rule that applies to r on route and who sent it. A
// path that is no route, an exempt rule and an exempt client end the call
// here, with outcome exempt.
func (l *Limiter) identify(r *http.Request, rs *ruleSet, c *call, sc *scratch, route string, known bool) {
	c.method = methodIndex(r.Method)
	c.route = route
	if route == "" {
		c.route = RouteUnmatched
		if known {
			// The router will answer 404 or 405: a path that is no route
			// gets no bucket, so aliases and scans cannot mint allowances.
			c.outcome = OutcomeExempt
			return
		}
	}
	c.rule = rs.lookup(route, c.method)
	c.shadow, c.cost = c.rule.shadow, c.rule.cost
	if c.rule.exempt {
		c.outcome = OutcomeExempt
		return
	}
	l.fromRequest(r, c, sc)
	if c.id.exempt {
		c.outcome = OutcomeExempt
		return
	}
	if c.rule.costFunc != nil && c.err == nil {
		l.price(r, c)
	}
}

// price sets c.cost from the rule's CostFunc, once the client is known
// (an exempt client is not priced). A panic in it is a hook failure,
// handled by the failure policy; the client stays who it is.
func (l *Limiter) price(r *http.Request, c *call) {
	defer func() {
		if v := recover(); v != nil {
			l.hookPanicked("CostFunc", v)
			c.err = errHookPanic
		}
	}()
	if n := c.rule.costFunc(r); n > 0 {
		c.cost = n
	}
}

// fromRequest sets c.id to who sent r: the client Identify names, else the
// client behind a valid API key, else the client address. A hook that
// panics leaves the address identity and sets c.err.
func (l *Limiter) fromRequest(r *http.Request, c *call, sc *scratch) {
	in := &l.who
	c.id = identity{}
	if in.identify != nil {
		client, ok := l.callIdentify(r, c)
		if ok && client.ID != "" {
			c.id = identity{keyed: true, id: client.ID, plan: client.Plan, exempt: client.Exempt}
		}
	}
	// Without a validator no key can count, so the key headers are not read.
	if !c.id.keyed && c.err == nil && in.validate != nil {
		if key, found := in.keys.read(r.Header); found {
			l.lookupKey(r.Context(), key, c, sc)
		}
	}
	if c.id.keyed && len(in.exemptIPs) == 0 {
		return
	}
	p, a, exemptable := in.clientIP.locate(r)
	l.warnForwarding(r, sc)
	in.place(&c.id, p, a, exemptable)
}

// fromIdentity sets c.id to the identity a caller of Take or Peek names,
// the same way fromRequest reads it off a request.
func (l *Limiter) fromIdentity(ctx context.Context, who *Identity, c *call, sc *scratch) {
	in := &l.who
	c.id = identity{}
	switch {
	case who.Client.ID != "":
		cl := &who.Client
		c.id = identity{keyed: true, id: cl.ID, plan: cl.Plan, exempt: cl.Exempt}
	case who.Key != "" && in.validate != nil && in.keys.isKey(who.Key):
		l.lookupKey(ctx, who.Key, c, sc)
	}
	if c.id.keyed && len(in.exemptIPs) == 0 {
		return
	}
	a := who.Addr.Unmap().WithZone("")
	if !a.IsValid() {
		in.place(&c.id, unknownPeer(), a, false)
		return
	}
	in.place(&c.id, in.clientIP.bucket(a), a, true)
}

// place sets id's address bucket, and marks id exempt if the address is in
// ExemptIPs and exemptable (not a stand-in for an unreadable forwarding
// chain).
func (in *identifier) place(id *identity, bucket netip.Prefix, a netip.Addr, exemptable bool) {
	id.ip = bucket
	if !exemptable {
		return
	}
	for _, p := range in.exemptIPs {
		if p.Contains(a) {
			id.exempt = true
			return
		}
	}
}

// keyOf derives the store key of id within s (a rule's scope, or the
// concurrency limiter's).
func (in *identifier) keyOf(s *keyhash.Scope, id *identity, buf *keyhash.Buf) store.Key {
	if id.keyed {
		return in.hash.Client(s, id.id, buf)
	}
	return in.hash.Addr(s, id.ip, buf)
}

// lookupKey asks the validator about key, through the cache when there is
// one, and sets c.id to its client when the key is valid. A panicking
// validator sets c.err instead.
func (l *Limiter) lookupKey(ctx context.Context, key string, c *call, sc *scratch) {
	in := &l.who
	var ck store.Key
	now := time.Time{}
	if in.cache != nil {
		ck = in.hash.Cache(key, &sc.buf)
		now = time.Now()
		if e, hit := in.cache.get(ck, now); hit {
			c.setClient(key, e.client, e.valid)
			return
		}
	}
	client, valid, ok := l.callValidator(ctx, key)
	if !ok {
		c.err = errHookPanic
		return
	}
	if in.cache != nil {
		in.cache.put(ck, client, valid, now)
	}
	c.setClient(key, client, valid)
}

// setClient makes a validator's answer about key c's identity.
func (c *call) setClient(key string, client Client, valid bool) {
	if !valid {
		return
	}
	c.id = identity{keyed: true, id: client.ID, plan: client.Plan, exempt: client.Exempt}
	if c.id.id == "" {
		c.id.id, c.id.keyIsID = key, true
	}
}

// callValidator runs the user's validator, turning a panic into ok=false.
func (l *Limiter) callValidator(ctx context.Context, key string) (client Client, valid, ok bool) {
	defer func() {
		if v := recover(); v != nil {
			l.hookPanicked("key validator", v)
			ok = false
		}
	}()
	client, valid = l.who.validate(ctx, key)
	return client, valid, true
}

// callIdentify runs Config.Identify. A panic gives no client and sets
// c.err: the request is counted by its address if the failure policy
// decides it locally.
func (l *Limiter) callIdentify(r *http.Request, c *call) (client Client, ok bool) {
	defer func() {
		if v := recover(); v != nil {
			l.hookPanicked("Identify", v)
			client, ok, c.err = Client{}, false, errHookPanic
		}
	}()
	return l.who.identify(r)
}

// hookPanicked logs a panic of one of the user's identity hooks at most once
// a second, with the number of panics not logged since the last line: a
// client that has found a key the validator crashes on must not be able to
// flood the log. Every panic is still counted by the observer, as a store
// failure of kind "panic".
func (l *Limiter) hookPanicked(hook string, v any) {
	if ok, skipped := l.log.panics.due(); ok {
		l.log.Error("ratekit: "+hook+" panicked; request handled by the store failure policy",
			"panic", hookPanic(v), "policy", l.dec.onFailure.String(), "unlogged_since_last", skipped)
	}
}

// hookPanic describes a hook's panic value for the log without the value
// itself, which may quote the key the hook was given: its type, or for a
// runtime error (whose text the runtime writes) the text.
func hookPanic(v any) string {
	if e, ok := v.(runtime.Error); ok {
		return e.Error()
	}
	return fmt.Sprintf("%T", v)
}

// warnForwarding logs once when a request carries forwarding headers but no
// proxy is trusted: behind a proxy that means every client shares the
// proxy's bucket. Behind a proxy every request carries them, so it looks
// at one request in 64 of each scratch (the first one included) rather than
// pay three header lookups on every request of a correct deployment.
func (l *Limiter) warnForwarding(r *http.Request, sc *scratch) {
	in := &l.who
	if len(in.clientIP.TrustedProxies) > 0 || in.warnedFwd.Load() {
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
	if !in.warnedFwd.Swap(true) {
		l.log.Warn("ratekit: requests carry forwarding headers but no trusted proxy is configured; " +
			"clients are identified by the connecting address (set ClientIP.TrustedProxies if a proxy is in front)")
	}
}

// clientKey is the context key of WithClient.
type clientKey struct{}

// WithClient returns a copy of ctx carrying c as the client of the request
// it belongs to. An authentication middleware that runs before the limiter
// calls it, and the limiter, configured with Identify: [ClientFromContext],
// counts the request against c.ID:
//
//	r = r.WithContext(middleware.WithClient(r.Context(), middleware.Client{ID: user.AccountID, Plan: user.Plan}))
func WithClient(ctx context.Context, c Client) context.Context {
	return context.WithValue(ctx, clientKey{}, c)
}

// ClientFromContext returns the Client that [WithClient] put in r's context.
// It has the shape of [Config.Identify], the built-in way to key requests by
// a principal an earlier middleware authenticated.
func ClientFromContext(r *http.Request) (Client, bool) {
	return ClientFrom(r.Context())
}

// ClientFrom returns the Client that [WithClient] put in ctx: the form of
// [ClientFromContext] for callers without an http.Request (a gRPC
// interceptor, a job calling [Limiter.Take]).
func ClientFrom(ctx context.Context) (Client, bool) {
	c, ok := ctx.Value(clientKey{}).(Client)
	return c, ok
}

// keyReader reads an API key from a request's headers; see
// [Config.KeyHeaders] for the rules.
type keyReader struct {
	headers []keyHeader
	maxLen  int
}

// keyHeader is one header a key is read from.
type keyHeader struct {
	name   string // canonical
	bearer bool   // Authorization: the Bearer scheme
}

// newKeyReader returns the reader of names (nil: X-API-Key, Authorization)
// for keys of at most maxLen bytes (0: 4096). The names must be tokens.
func newKeyReader(names []string, maxLen int) keyReader {
	if names == nil {
		names = []string{"X-API-Key", "Authorization"}
	}
	if maxLen == 0 {
		maxLen = defaultMaxKeyLen
	}
	kr := keyReader{maxLen: maxLen}
	for _, n := range names {
		c := http.CanonicalHeaderKey(n)
		kr.headers = append(kr.headers, keyHeader{name: c, bearer: c == "Authorization"})
	}
	return kr
}

// read returns the key a request presents, and false when it presents none
// that can be used; the request then counts against its address. It does
// not allocate: the key is a substring of a header value.
//
// A key is the whole value of one header line, or for Authorization the
// credentials of one "Bearer" 1*SP token line (RFC 6750 section 2.1; the
// scheme without regard to case, RFC 9110 section 11.1). It must match RFC
// 6750's b64token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" )
// *"=", at most maxLen bytes, and nothing else on the line. So "Bearer
// K,junk", "Bearer" alone, "xBearer K", keys with spaces, control bytes,
// braces, percent signs or non-ASCII bytes are not keys, and a JWT is.
func (kr *keyReader) read(h http.Header) (string, bool) {
	for i := range kr.headers {
		kh := &kr.headers[i]
		lines := h[kh.name]
		if len(lines) == 0 {
			continue
		}
		if len(lines) > 1 {
			// Two values: we cannot know which one the application
			// reads, so we use neither.
			return "", false
		}
		v := lines[0]
		if kh.bearer {
			var isBearer bool
			if v, isBearer = bearerCredentials(v); !isBearer {
				continue // Basic, Digest: not ours, as if absent
			}
		}
		if !kr.isKey(v) {
			return "", false
		}
		return v, true
	}
	return "", false
}

// bearerCredentials returns what follows "Bearer" and its spaces, and false
// when v is of another scheme. The credentials may be empty or malformed.
func bearerCredentials(v string) (string, bool) {
	const scheme = "bearer"
	if len(v) < len(scheme) || !forwarded.EqualFold(v[:len(scheme)], scheme) {
		return "", false
	}
	rest := v[len(scheme):]
	if len(rest) == 0 {
		return "", true // "Bearer" alone: ours, and no key
	}
	if rest[0] != ' ' {
		return "", false // "Bearerx ...": a different scheme
	}
	i := 0
	for i < len(rest) && rest[i] == ' ' {
		i++
	}
	return rest[i:], true
}

// isKey reports whether s is a b64token of at most kr.maxLen bytes.
func (kr *keyReader) isKey(s string) bool {
	if len(s) == 0 || len(s) > kr.maxLen {
		return false
	}
	i := 0
	for i < len(s) && isKeyChar(s[i]) {
		i++
	}
	if i == 0 {
		return false
	}
	for i < len(s) && s[i] == '=' {
		i++
	}
	return i == len(s)
}

func isKeyChar(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	switch b {
	case '-', '.', '_', '~', '+', '/':
		return true
	}
	return false
}

// keyCache remembers KeyValidator answers for a while, so a slow validator
// (a database, an auth service) is not called on every request. Entries are
// indexed by a keyed hash of the API key, never the key itself, and the
// cache is bounded: when full, an arbitrary entry makes room (expired ones
// first among those looked at).
type keyCache struct {
	ttl time.Duration
	max int
	mu  sync.Mutex
	m   map[store.Key]cachedClient
}

type cachedClient struct {
	client  Client
	valid   bool
	expires time.Time
}

func newKeyCache(ttl time.Duration, size int) *keyCache {
	if ttl <= 0 {
		return nil
	}
	if size <= 0 {
		size = 100_000
	}
	return &keyCache{ttl: ttl, max: size, m: make(map[store.Key]cachedClient)}
}

func (kc *keyCache) get(k store.Key, now time.Time) (cachedClient, bool) {
	kc.mu.Lock()
	e, ok := kc.m[k]
	kc.mu.Unlock()
	if !ok || now.After(e.expires) {
		return cachedClient{}, false
	}
	return e, true
}

func (kc *keyCache) put(k store.Key, client Client, valid bool, now time.Time) {
	kc.mu.Lock()
	defer kc.mu.Unlock()
	if _, ok := kc.m[k]; !ok && len(kc.m) >= kc.max {
		looked := 0
		for old, e := range kc.m {
			looked++
			if now.After(e.expires) || looked >= 8 {
				delete(kc.m, old)
				break
			}
		}
	}
	kc.m[k] = cachedClient{client: client, valid: valid, expires: now.Add(kc.ttl)}
}
