package middleware

import (
	"net/http"
	"net/netip"
	"time"

	"github.com/ratekit/ratekit/headers"
	"github.com/ratekit/ratekit/window"
)

// answerer writes what a decision says onto a response: the rate-limit
// headers, and for a refusal the status and the envelope's body.
type answerer struct {
	style     headers.Style
	envelope  headers.Envelope
	refuse    func(http.ResponseWriter, *http.Request, *Refusal) // Config.Refuse
	onRefusal func(*http.Request, *Refusal)                      // Config.OnRefusal
	partition bool
	// contentType is the envelope's Content-Type as a shared value; a
	// refusal whose envelope answers something else gets a value of its own.
	contentType [1]string
}

func newAnswerer(cfg *Config) answerer {
	a := answerer{style: cfg.Headers, envelope: cfg.Envelope, refuse: cfg.Refuse, onRefusal: cfg.OnRefusal, partition: cfg.PartitionKey}
	if a.style == nil {
		a.style = headers.Lindris{}
	}
	if a.envelope == nil {
		a.envelope = headers.LindrisBody{}
	}
	a.contentType[0] = contentTypeOf(a.envelope)
	return a
}

// Header values the middleware writes, shared by every response like those
// of package headers: len == cap == 1, so Add copies (see docs/headers.md).
var (
	valTrue = [1]string{"true"}
	valOne  = [1]string{"1"}
)

// answer writes c's answer to r onto w and reports whether the request
// goes on to the handler: an exempt request without a word; a decision with
// its headers (and, refused, the 429 and body, or the Refuse hook's
// answer); no decision as the failure policy says. r may be nil (a Take's
// result answered without its request).
func (l *Limiter) answer(w http.ResponseWriter, r *http.Request, c *call, sc *scratch) (proceed bool) {
	switch c.outcome {
	case OutcomeExempt:
		return true
	case OutcomeError:
		return l.fail(w, c, sc)
	}
	status := http.StatusTooManyRequests
	sc.in = headers.Input{Policy: &c.policy.Policy, Decision: &c.d, Now: c.now, Cost: c.cost}
	if c.tooCostly {
		// No wait would help: no window state, no Retry-After.
		status, sc.in.Decision = http.StatusRequestEntityTooLarge, nil
	}
	if l.ans.partition {
		sc.in.Partition = string(c.key[:8])
	}
	if !l.render(w, sc) {
		c.outcome, c.limitedBy, c.err = OutcomeError, "", errHookPanic
		return l.fail(w, c, sc)
	}
	h := w.Header()
	if c.degraded {
		h["X-Ratelimit-Degraded"] = valTrue[:]
	}
	switch c.outcome {
	case OutcomeAllowed:
		return true
	case OutcomeShadow:
		// Would have been limited: the headers say so, without the
		// Retry-After of a refusal, and the request goes on.
		delete(h, "Retry-After")
		l.notify(r, c, status)
		return true
	}
	if l.ans.refuse != nil {
		l.refuseWithHook(w, r, c, sc, status)
	} else {
		l.refuse(w, sc, status)
	}
	l.notify(r, c, status)
	return false
}

// fail applies the failure policy to a request whose decision could not be
// taken: 503 under FailClosed, else through with X-RateLimit-Degraded. A
// shadow rule never refuses, so its requests fail open.
func (l *Limiter) fail(w http.ResponseWriter, c *call, sc *scratch) (proceed bool) {
	l.logFailure(c.err)
	if l.dec.onFailure != FailClosed || c.shadow {
		w.Header()["X-Ratelimit-Degraded"] = valTrue[:]
		return true
	}
	// A decision of no windows with a RetryAfter: styles write only
	// Retry-After, envelopes their "unavailable" wording.
	c.d = window.Decision{RetryAfter: time.Second}
	sc.in = headers.Input{Decision: &c.d, Now: c.now}
	w.Header()["Retry-After"] = valOne[:]
	l.refuse(w, sc, http.StatusServiceUnavailable)
	return false
}

// render writes the rate-limit headers of sc.in, recovering a panicking
// custom style.
func (l *Limiter) render(w http.ResponseWriter, sc *scratch) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			if due, skipped := l.log.panics.due(); due {
				l.log.Error("ratekit: header style panicked", "panic", hookPanic(v), "unlogged_since_last", skipped)
			}
			ok = false
		}
	}()
	l.ans.style.WriteHeaders(w.Header(), &sc.in)
	return true
}

// refuse writes a 429 or 503 with the envelope's body. A panicking custom
// envelope falls back to the Lindris body.
func (l *Limiter) refuse(w http.ResponseWriter, sc *scratch, status int) {
	sc.in.Status = status
	body, ct := l.appendBody(sc)
	// Content-Type is the only header added here. With the seven of a
	// Lindris refusal that makes eight, what a Go map holds without growing
	// out of its first group: net/http builds a fresh header map for every
	// response and clones it on WriteHeader, and a ninth entry (say
	// X-Content-Type-Options, which a JSON body of ours has no use for) costs
	// both maps their growth, about 650 ns and 750 B per refusal, when
	// refusals are what a flood is made of.
	h := w.Header()
	if ct == l.ans.contentType[0] {
		h["Content-Type"] = l.ans.contentType[:]
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
			if due, skipped := l.log.panics.due(); due {
				l.log.Error("ratekit: envelope panicked; sent the default body", "panic", hookPanic(v), "unlogged_since_last", skipped)
			}
			def := headers.LindrisBody{}
			body, contentType = def.AppendBody(sc.body[:0], &sc.in), def.ContentType()
		}
	}()
	sc.body = l.ans.envelope.AppendBody(sc.body[:0], &sc.in)
	return sc.body, l.ans.envelope.ContentType()
}

// contentTypeOf returns e's Content-Type, or "" if it panics (refuse then
// recovers the panic of the call that counts).
func contentTypeOf(e headers.Envelope) (ct string) {
	defer func() { recover() }()
	return e.ContentType()
}

// Refusal describes a refused request (or, in shadow mode, one that would
// have been) to [Config.Refuse] and [Config.OnRefusal]. It names the client
// by the ID it is counted under or by its address bucket, never by an API
// key.
type Refusal struct {
	// Status is what the refusal is answered with: 429 Too Many Requests,
	// or 413 Content Too Large for a request whose cost no window could
	// ever admit (see [Rule.CostFunc]).
	Status int
	// Shadow reports a request its shadow rule let through: only
	// OnRefusal hears of it.
	Shadow bool
	// Rule is the name of the rule that applied ("default" when none did).
	Rule string
	// Route is the route pattern, or "unmatched".
	Route string
	// LimitedBy is the label of the window that refused ("minute",
	// "second", ...), or "concurrency".
	LimitedBy string
	// ClientID is the Client.ID the request was counted under, when
	// Identify or the KeyValidator named one; empty for a client counted by
	// its address, or by its key (a validator that returned no ID), whose
	// key is never shown.
	ClientID string
	// Plan is the client's plan, if any.
	Plan string
	// Addr is the address bucket the request was counted under (an IPv4
	// /32 or an IPv6 prefix); the zero Prefix for a client counted by ID or
	// key.
	Addr netip.Prefix
	// Cost is the request's cost.
	Cost int
	// Decision is the store's refusal; the zero Decision for a 413, which
	// asked no store.
	Decision window.Decision
	// Policy is the policy the request was decided against.
	Policy window.Policy
}

// refusalOf describes c's refusal, answered with status.
func refusalOf(c *call, status int) *Refusal {
	ref := &Refusal{Status: status, Shadow: c.outcome == OutcomeShadow, Route: c.route, LimitedBy: c.limitedBy,
		Plan: c.id.plan, Cost: c.cost}
	if c.rule != nil {
		ref.Rule = c.rule.name
	}
	switch {
	case c.id.keyed && !c.id.keyIsID:
		ref.ClientID = c.id.id
	case !c.id.keyed:
		ref.Addr = c.id.ip
	}
	if c.policy != nil {
		ref.Policy = c.policy.Policy
	}
	if !c.tooCostly {
		ref.Decision = c.d
	}
	return ref
}

// refuseWithHook answers a refusal with Config.Refuse, over the style's
// headers already set. A panicking hook is logged, and the default refusal
// written if the hook wrote no status.
func (l *Limiter) refuseWithHook(w http.ResponseWriter, r *http.Request, c *call, sc *scratch, status int) {
	tw := &statusWatch{ResponseWriter: w}
	defer func() {
		if v := recover(); v != nil {
			if ok, skipped := l.log.panics.due(); ok {
				l.log.Error("ratekit: Refuse hook panicked; sent the default refusal", "panic", hookPanic(v), "unlogged_since_last", skipped)
			}
			if !tw.wrote {
				l.refuse(w, sc, status)
			}
		}
	}()
	l.ans.refuse(tw, r, refusalOf(c, status))
	if !tw.wrote {
		tw.WriteHeader(status) // the hook wrote headers only
	}
}

// notify tells Config.OnRefusal of c's refusal, recovering a panic.
func (l *Limiter) notify(r *http.Request, c *call, status int) {
	if l.ans.onRefusal == nil {
		return
	}
	defer func() {
		if v := recover(); v != nil {
			if ok, skipped := l.log.panics.due(); ok {
				l.log.Error("ratekit: OnRefusal hook panicked", "panic", hookPanic(v), "unlogged_since_last", skipped)
			}
		}
	}()
	l.ans.onRefusal(r, refusalOf(c, status))
}

// statusWatch notes whether a status was written through it.
type statusWatch struct {
	http.ResponseWriter
	wrote bool
}

func (s *statusWatch) WriteHeader(code int) {
	s.wrote = true
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWatch) Write(b []byte) (int, error) {
	s.wrote = true
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the writer beneath.
func (s *statusWatch) Unwrap() http.ResponseWriter { return s.ResponseWriter }
