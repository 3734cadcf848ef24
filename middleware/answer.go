package middleware

import (
	"fmt"
	"net/http"
	"time"

	"github.com/ratekit/ratekit/headers"
	"github.com/ratekit/ratekit/window"
)

// answerer writes what a decision says onto a response: the rate-limit
// headers, and for a refusal the status and the envelope's body.
type answerer struct {
	style     headers.Style
	envelope  headers.Envelope
	partition bool
	// contentType is the envelope's Content-Type as a shared value; a
	// refusal whose envelope answers something else gets a value of its own.
	contentType [1]string
}

func newAnswerer(style headers.Style, envelope headers.Envelope, partition bool) answerer {
	a := answerer{style: style, envelope: envelope, partition: partition}
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

// answer writes c's answer onto w and reports whether the request goes on
// to the handler: an exempt request without a word; a decision with its
// headers (and, refused, the 429 and body); no decision as the failure
// policy says.
func (l *Limiter) answer(w http.ResponseWriter, c *call, sc *scratch) (proceed bool) {
	switch c.outcome {
	case OutcomeExempt:
		return true
	case OutcomeError:
		return l.fail(w, c, sc)
	}
	sc.in = headers.Input{Policy: &c.policy.Policy, Decision: &c.d, Now: c.now, Cost: c.cost}
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
		return true
	}
	l.refuse(w, sc, http.StatusTooManyRequests)
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
			l.log.Error("ratekit: header style panicked", "panic", fmt.Sprint(v))
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
			l.log.Error("ratekit: envelope panicked; sent the default body", "panic", fmt.Sprint(v))
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
