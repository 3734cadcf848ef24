package headers

import (
	"net/http"
	"strconv"
)

// Default wordings of the envelopes. Each is used when the corresponding
// field of the envelope is empty.
const (
	defaultMessage            = "You have exceeded your rate limit."
	defaultUnavailableMessage = "The rate limiter is temporarily unavailable. Please retry later."
	defaultTooLargeMessage    = "This request costs more than the rate limit allows in any window; it can never be accepted as sent."

	authmatechMessage            = "Rate limit exceeded."
	authmatechUnavailableMessage = "Service temporarily unavailable."
	authmatechTooLargeMessage    = "Request exceeds the rate limit."

	quotaExceededType   = "https://iana.org/assignments/http-problem-types#quota-exceeded"
	reducedCapacityType = "https://iana.org/assignments/http-problem-types#temporary-reduced-capacity"
	quotaExceededTitle  = "Request quota exceeded"
	unavailableTitle    = "Rate limiter temporarily unavailable"
	tooLargeTitle       = "Request cost exceeds the quota"
)

// LindrisBody is the default [Envelope], the 429 body of the Lindris API:
//
//	{"message":"You have exceeded your rate limit.","status_code":429,"retry_after":12}
//
// status_code is [Input.Status] (429 when zero). retry_after is the wait in
// whole seconds, the same number the styles send in Retry-After (at least 1;
// 1 when [Input.Decision] is nil). The message is Message, or for a 503
// UnavailableMessage; any string is escaped into valid JSON.
//
// A 413 (a request whose cost no window could ever admit) carries
// TooLargeMessage and no retry_after, since no wait would help:
//
//	{"message":"This request costs more than the rate limit allows in any window; it can never be accepted as sent.","status_code":413}
//
// AppendBody does not allocate when dst has room. The zero value is ready to
// use.
type LindrisBody struct {
	// Message is the message of a 429. Empty means "You have exceeded your
	// rate limit."
	Message string
	// UnavailableMessage is the message of a 503, sent when the store failed
	// and the failure policy refuses requests. Empty means "The rate limiter
	// is temporarily unavailable. Please retry later."
	UnavailableMessage string
	// TooLargeMessage is the message of a 413. Empty means "This request
	// costs more than the rate limit allows in any window; it can never be
	// accepted as sent."
	TooLargeMessage string
}

var _ Envelope = LindrisBody{}

// ContentType returns "application/json".
func (LindrisBody) ContentType() string { return "application/json" }

// AppendBody appends the JSON body for in to dst.
func (e LindrisBody) AppendBody(dst []byte, in *Input) []byte {
	status := in.status()
	if status == http.StatusTooManyRequests && e.Message == "" {
		// The usual 429: everything before the wait is a constant.
		dst = append(dst, lindrisDefault429...)
		dst = strconv.AppendInt(dst, retrySeconds(in), 10)
		return append(dst, '}')
	}
	msg := pick(e.Message, defaultMessage)
	switch status {
	case http.StatusServiceUnavailable:
		msg = pick(e.UnavailableMessage, defaultUnavailableMessage)
	case http.StatusRequestEntityTooLarge:
		msg = pick(e.TooLargeMessage, defaultTooLargeMessage)
	}
	dst = append(dst, `{"message":`...)
	dst = appendJSONString(dst, msg)
	dst = append(dst, `,"status_code":`...)
	dst = strconv.AppendInt(dst, int64(status), 10)
	if status == http.StatusRequestEntityTooLarge {
		return append(dst, '}')
	}
	dst = append(dst, `,"retry_after":`...)
	dst = strconv.AppendInt(dst, retrySeconds(in), 10)
	return append(dst, '}')
}

// lindrisDefault429 is LindrisBody's 429 with the default message, up to
// the wait.
const lindrisDefault429 = `{"message":"` + defaultMessage + `","status_code":429,"retry_after":`

// AuthmatechBody is the [Envelope] of the Authmatech API, a fixed document
// that carries no wait (send a style for that):
//
//	{"success":false,"messages":[{"type":"FAILURE","message":"Rate limit exceeded.","httpStatus":"TOO_MANY_REQUESTS"}],"data":null}
//
// httpStatus is the name of [Input.Status] in upper case with underscores
// (TOO_MANY_REQUESTS, SERVICE_UNAVAILABLE, REQUEST_ENTITY_TOO_LARGE). The
// message is Message, for a 503 UnavailableMessage, for a 413 (a cost no
// window could admit) TooLargeMessage; any string is escaped into valid
// JSON.
//
// AppendBody does not allocate when dst has room. The zero value is ready to
// use.
type AuthmatechBody struct {
	// Message is the message of a 429. Empty means "Rate limit exceeded."
	Message string
	// UnavailableMessage is the message of a 503. Empty means "Service
	// temporarily unavailable."
	UnavailableMessage string
	// TooLargeMessage is the message of a 413. Empty means "Request exceeds
	// the rate limit."
	TooLargeMessage string
}

var _ Envelope = AuthmatechBody{}

// ContentType returns "application/json".
func (AuthmatechBody) ContentType() string { return "application/json" }

// AppendBody appends the JSON body for in to dst.
func (e AuthmatechBody) AppendBody(dst []byte, in *Input) []byte {
	status := in.status()
	msg := pick(e.Message, authmatechMessage)
	switch status {
	case http.StatusServiceUnavailable:
		msg = pick(e.UnavailableMessage, authmatechUnavailableMessage)
	case http.StatusRequestEntityTooLarge:
		msg = pick(e.TooLargeMessage, authmatechTooLargeMessage)
	}
	dst = append(dst, `{"success":false,"messages":[{"type":"FAILURE","message":`...)
	dst = appendJSONString(dst, msg)
	dst = append(dst, `,"httpStatus":"`...)
	dst = appendStatusName(dst, status)
	return append(dst, `"}],"data":null}`...)
}

// ProblemBody is the [Envelope] of RFC 9457 problem details, with the
// problem types of draft-ietf-httpapi-ratelimit-headers-10:
//
//	{"type":"https://iana.org/assignments/http-problem-types#quota-exceeded",
//	 "title":"Request quota exceeded","status":429,
//	 "detail":"Request quota exceeded. Retry after 12 seconds.",
//	 "violated-policies":["minute"],"retry_after":12}
//
// (one line when rendered). violated-policies lists the label of every
// window that rejected the request: the binding window and any other with
// fewer remaining than [Input.Cost]. Names are the windows' labels, as in
// the [IETF] style's fields. retry_after is the same wait the styles send
// in Retry-After.
//
// For a 503 the type is the draft's temporary-reduced-capacity, the title
// "Rate limiter temporarily unavailable", and violated-policies is left out:
// no quota was exceeded, the limiter could not decide.
//
// For a 413, a request whose cost ([Input.Cost]) exceeds the limit of some
// window of [Input.Policy] so that no wait could admit it, the type is
// "about:blank" (no registered type says "never"), the title "Request cost
// exceeds the quota", violated-policies the windows whose limit is below
// the cost, and there is no retry_after.
//
// AppendBody does not allocate when dst has room (window labels are computed
// for lengths without a name, such as 1.5s). The zero value is ready to use.
type ProblemBody struct {
	// Detail is the detail member of a 429. Empty means "Request quota
	// exceeded. Retry after N seconds." with N the wait.
	Detail string
	// UnavailableDetail is the detail member of a 503. Empty means "The
	// rate limiter is temporarily unavailable. Retry after N seconds."
	UnavailableDetail string
	// TooLargeDetail is the detail member of a 413. Empty means "This
	// request costs N; the smallest limit is M."
	TooLargeDetail string
}

var _ Envelope = ProblemBody{}

// ContentType returns "application/problem+json".
func (ProblemBody) ContentType() string { return "application/problem+json" }

// AppendBody appends the problem details document for in to dst.
func (e ProblemBody) AppendBody(dst []byte, in *Input) []byte {
	status := in.status()
	if status == http.StatusRequestEntityTooLarge {
		return e.appendTooLarge(dst, in)
	}
	retry := retrySeconds(in)
	unavailable := status == http.StatusServiceUnavailable
	typ, title, detail, lead := quotaExceededType, quotaExceededTitle, e.Detail, quotaExceededTitle+"."
	if unavailable {
		typ, title, detail, lead = reducedCapacityType, unavailableTitle, e.UnavailableDetail, "The rate limiter is temporarily unavailable."
	}
	dst = append(dst, `{"type":"`...)
	dst = append(dst, typ...)
	dst = append(dst, `","title":"`...)
	dst = append(dst, title...)
	dst = append(dst, `","status":`...)
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, `,"detail":`...)
	if detail != "" {
		dst = appendJSONString(dst, detail)
	} else {
		dst = append(dst, '"')
		dst = append(dst, lead...)
		dst = append(dst, " Retry after "...)
		dst = strconv.AppendInt(dst, retry, 10)
		if retry == 1 {
			dst = append(dst, ` second."`...)
		} else {
			dst = append(dst, ` seconds."`...)
		}
	}
	if !unavailable {
		dst = append(dst, `,"violated-policies":[`...)
		dst = appendViolated(dst, in)
		dst = append(dst, ']')
	}
	dst = append(dst, `,"retry_after":`...)
	dst = strconv.AppendInt(dst, retry, 10)
	return append(dst, '}')
}

// appendTooLarge appends the problem document of a 413: a cost above the
// limit of some window, which no wait can cure.
func (e ProblemBody) appendTooLarge(dst []byte, in *Input) []byte {
	cost := in.cost()
	dst = append(dst, `{"type":"about:blank","title":"`+tooLargeTitle+`","status":413,"detail":`...)
	if e.TooLargeDetail != "" {
		dst = appendJSONString(dst, e.TooLargeDetail)
	} else {
		dst = append(dst, `"This request costs `...)
		dst = strconv.AppendInt(dst, int64(cost), 10)
		if in.Policy != nil && len(in.Policy.Windows) > 0 {
			dst = append(dst, `; the smallest limit is `...)
			dst = strconv.AppendInt(dst, int64(in.Policy.MinLimit()), 10)
		}
		dst = append(dst, `."`...)
	}
	dst = append(dst, `,"violated-policies":[`...)
	if in.Policy != nil {
		first := true
		for _, w := range in.Policy.Windows {
			if w.Limit >= cost {
				continue
			}
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = appendJSONString(dst, w.Label())
		}
	}
	return append(dst, "]}"...)
}

// appendViolated appends the JSON strings naming the windows that rejected
// in's decision, comma separated: the binding one, and every other whose
// remaining is below the cost (window rejects exactly those). Nothing when
// in has no window state or the decision admitted the request.
func appendViolated(dst []byte, in *Input) []byte {
	p, d, ok := in.windows()
	if !ok || d.Allowed {
		return dst
	}
	cost := in.cost()
	first := true
	for i := range d.N {
		if i != d.Limiting && d.Windows[i].Remaining >= cost {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = appendJSONString(dst, p.Windows[i].Label())
	}
	return dst
}

// appendStatusName appends the name of status in the style of Spring's
// HttpStatus constants: its reason phrase upper-cased, with underscores for
// spaces and hyphens ("Too Many Requests" -> TOO_MANY_REQUESTS). Unknown
// codes are written as digits.
func appendStatusName(dst []byte, status int) []byte {
	text := http.StatusText(status)
	if text == "" {
		return strconv.AppendInt(dst, int64(status), 10)
	}
	for i := 0; i < len(text); i++ {
		switch c := text[i]; {
		case 'a' <= c && c <= 'z':
			dst = append(dst, c-'a'+'A')
		case 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
			dst = append(dst, c)
		default:
			dst = append(dst, '_')
		}
	}
	return dst
}

// pick returns s, or def when s is empty.
func pick(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
