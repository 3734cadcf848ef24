// Package headers renders a rate-limit decision for HTTP clients: the
// header fields every response carries, and the body of a refused one.
//
// Everything here is a pure function of an [Input]: a [window.Policy], the
// [window.Decision] taken against it and, for a few formats, the wall clock,
// a partition key, the cost and the HTTP status. A [Style] writes header
// fields into an [http.Header]; an [Envelope] appends a 429 (or 503) body to
// a byte slice. Neither reads a clock or does I/O, and the only state is a
// few caches of ready-made values, so the same Input always renders the
// same bytes.
//
// # Styles
//
// Header names are a contract: client code and dashboards read them, so
// each style reproduces one published API exactly.
//
//   - [Lindris], the default: X-RateLimit-* for a minute and a second window,
//     the window that binds (X-RateLimit-Limited-By), reset in seconds.
//   - [Scalekit]: X-RateLimit-* for the binding window, reset as a Unix
//     timestamp.
//   - [Kinde]: RateLimit-Limit, -Remaining, -Reset for the binding window.
//   - [IETF]: RateLimit-Policy and RateLimit of
//     draft-ietf-httpapi-ratelimit-headers-10, every window, as Structured
//     Fields.
//
// Every style adds Retry-After to a rejection, with the same number of
// seconds everywhere: the decision's wait rounded up, at least 1. Combine
// styles with [Multi]; write your own by implementing [Style].
//
// # Envelopes
//
//   - [LindrisBody], the default: {"message":…,"status_code":429,"retry_after":…}.
//   - [AuthmatechBody]: the Authmatech failure envelope.
//   - [ProblemBody]: RFC 9457 application/problem+json with the draft's
//     quota-exceeded problem type and violated-policies.
//
// Each renders the fail-closed variant when [Input.Status] is 503: same
// shape, a message saying the limiter is unavailable. Messages are
// configurable and escaped, so any string yields valid JSON.
//
// # Cost
//
// Headers are written on every response, so the styles avoid the general
// machinery: field names are stored in canonical form directly, and values
// are not formatted per response but taken from immutable tables shared by
// every response (the integers 0 to 1023, the labels second, minute, hour
// and day, custom labels as first seen, recent Unix timestamps). [Lindris],
// [Kinde] and [Scalekit] allocate nothing for the usual numbers.
//
// A shared value is a []string of length and capacity 1: http.Header's Add
// (or any append) copies it before writing, and Set, Del or assigning a new
// slice replace it, so handlers and middlewares can change these fields
// freely. Writing into one in place (h["X-Ratelimit-Limit"][0] = "x") would
// change it for every later response: don't. net/http only reads them.
//
// Bodies are appended with strconv, not encoding/json, and do not allocate
// when dst has room.
//
// # What this package does not do
//
// It does not decide anything: decisions come from a store (package
// store) or from package window directly. It does not choose the status
// code, write the response or set Content-Type; the middleware does, using
// [Envelope.ContentType]. It never sees a client's identity: the IETF
// partition key arrives already hashed. And it does not validate policies;
// given an Input that does not add up (a nil decision, a decision for
// another policy) a style writes at most Retry-After rather than panic.
//
// # Example
//
//	p := window.Default()
//	var l window.Log // in a server, the store holds one per key
//	d := l.TakeAt(now, &p, 1)
//	in := headers.Input{Policy: &p, Decision: &d, Now: now}
//	headers.Lindris{}.WriteHeaders(w.Header(), &in)
//	if !d.Allowed {
//		body := headers.LindrisBody{}
//		w.Header().Set("Content-Type", body.ContentType())
//		w.WriteHeader(http.StatusTooManyRequests)
//		w.Write(body.AppendBody(nil, &in))
//	}
package headers
