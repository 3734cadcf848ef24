package client

import (
	"math"
	"net/http"
	"strings"
	"time"
)

// Window is one rate-limit window as a response describes it.
type Window struct {
	// Name identifies the window within its response: "minute" and "second"
	// for the Lindris pair (X-RateLimit-* and X-RateLimit-*-Second), the
	// policy name for the IETF fields, and "" when the style names none
	// (Scalekit, Kinde, a lone X-RateLimit-* set, the draft-07 RateLimit
	// dictionary).
	Name string
	// Limit is the window's quota in requests, 0 when the response does
	// not say.
	Limit int
	// Remaining is how many more requests the window admits, never
	// negative. A window is only reported when the response gives its
	// remaining count.
	Remaining int
	// Reset is how long until the window frees capacity, measured from the
	// instant passed to [ParseQuota], never negative. Zero means the
	// response did not say, or said now. It is what the server sent,
	// uncapped: [Transport] caps it at [Config.MaxDelay].
	Reset time.Duration
}

// Quota is what one response says about the caller's rate limit, as read by
// [ParseQuota].
type Quota struct {
	// Windows lists every window the response describes: the IETF fields'
	// policies first, then the X-RateLimit-* windows, then Kinde's
	// RateLimit-* window. A response written in two styles at once
	// describes the same windows twice; that is harmless to anyone who
	// needs every window to have room. Nil when the response has no
	// readable quota fields.
	Windows []Window
	// RetryAfter is the Retry-After field (delay-seconds or an HTTP-date)
	// as a wait from the instant passed to ParseQuota, never negative;
	// zero when absent, unreadable or in the past. Servers send it on 429
	// and 503, but ParseQuota reports it whatever the status.
	RetryAfter time.Duration
	// Ignored lists, in canonical form, the quota fields that were present
	// but could not be read (negative, not a number, a malformed structured
	// field, a policy without r), for logging. Their values are not kept.
	Ignored []string
}

// Field names read by ParseQuota, in canonical form.
const (
	fieldRetryAfter      = "Retry-After"
	fieldDate            = "Date"
	fieldXLimit          = "X-Ratelimit-Limit"
	fieldXRemaining      = "X-Ratelimit-Remaining"
	fieldXReset          = "X-Ratelimit-Reset"
	fieldXLimitSecond    = "X-Ratelimit-Limit-Second"
	fieldXRemainingSec   = "X-Ratelimit-Remaining-Second"
	fieldXLimitedBy      = "X-Ratelimit-Limited-By"
	fieldLimit           = "Ratelimit-Limit"
	fieldRemaining       = "Ratelimit-Remaining"
	fieldReset           = "Ratelimit-Reset"
	fieldRateLimit       = "Ratelimit"
	fieldRateLimitPolicy = "Ratelimit-Policy"
)

// unixSeconds is the smallest reset value read as a Unix time rather than a
// number of seconds: as a delay, 100,000,000 s is more than three years,
// which no window waits; as a Unix time it is 1973. unixMillis is the
// smallest read as a Unix time in milliseconds (as seconds it would be the
// year 5138).
const (
	unixSeconds = 100_000_000
	unixMillis  = 100_000_000_000
)

// skewTolerance is how far the response's Date may be from the local clock
// before absolute times (Unix resets, HTTP-date Retry-After) are measured
// against Date instead. Date has a resolution of one second, so a smaller
// difference is no evidence of skew, and the local clock is the more
// precise.
const skewTolerance = 2 * time.Second

// maxCount is the largest limit or remaining count reported; larger values
// are read as this one.
const maxCount = math.MaxInt32

// forever is the longest wait ParseQuota reports; larger values saturate.
const forever = time.Duration(math.MaxInt64)

// ParseQuota reads the rate-limit fields of a response's header h, received
// at now, in every style ratekit's server writes (see docs/headers.md) and
// the variants clients commonly meet:
//
//   - Lindris: X-RateLimit-Limit and -Remaining (window "minute" when the
//     -Second pair is present, else ""), X-RateLimit-Limit-Second and
//     -Remaining-Second (window "second"), X-RateLimit-Reset for the window
//     X-RateLimit-Limited-By names (else the one with the fewest left).
//   - Scalekit and others: X-RateLimit-Reset as a Unix time.
//   - Kinde: RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset.
//   - IETF draft-ietf-httpapi-ratelimit-headers-10 (and -08, -09):
//     RateLimit-Policy and RateLimit as Structured Field Lists, one item per
//     policy with q, w, r and t; draft-07's RateLimit dictionary
//     (limit=, remaining=, reset=).
//   - Retry-After as delay-seconds or an HTTP-date.
//
// A reset value below 100,000,000 is a number of seconds from now; from
// 100,000,000 (1973) it is a Unix time in seconds, and from 100,000,000,000
// in milliseconds. Seconds may have a fraction ("1.5"). Absolute times are
// measured against now, or against the response's Date field when that
// differs from now by more than two seconds (the clocks disagree, and the
// server's timestamps follow its own).
//
// Field names are matched case-insensitively, as HTTP requires, when h was
// built by net/http or with [http.Header.Set]. A field repeated, or holding
// a comma-separated list where one number belongs, is read conservatively:
// the smallest count and the longest wait. Unreadable fields are skipped
// and listed in [Quota.Ignored]; ParseQuota never fails and never panics.
// Waits saturate at about 292 years; capping them is the caller's business
// ([Transport] caps them at [Config.MaxDelay]).
func ParseQuota(h http.Header, now time.Time) Quota {
	q, _ := parseQuota(h, now)
	return q
}

// parseQuota is ParseQuota, also returning how far the response's Date is
// ahead of now when that is more than skewTolerance (negative when behind),
// else 0.
func parseQuota(h http.Header, now time.Time) (q Quota, skew time.Duration) {
	ref := now
	if v := h.Get(fieldDate); v != "" {
		if d, err := http.ParseTime(v); err == nil && absDuration(d.Sub(now)) > skewTolerance {
			ref, skew = d, d.Sub(now)
		}
	}
	if vs := h.Values(fieldRetryAfter); len(vs) > 0 {
		if d, ok := parseRetryAfter(vs, ref); ok {
			q.RetryAfter = d
		} else {
			q.Ignored = append(q.Ignored, fieldRetryAfter)
		}
	}
	q.parseIETF(h)
	q.parseX(h, ref)
	q.parseKinde(h, ref)
	return q, skew
}

// parseIETF reads RateLimit and RateLimit-Policy.
func (q *Quota) parseIETF(h http.Header) {
	vs := h.Values(fieldRateLimit)
	if len(vs) == 0 {
		return
	}
	field := strings.Join(vs, ", ")
	if items, ok := parseSFList(field); ok {
		limits := map[string]int{}
		if pvs := h.Values(fieldRateLimitPolicy); len(pvs) > 0 {
			if policies, ok := parseSFList(strings.Join(pvs, ", ")); ok {
				for i := range policies {
					name, ok := policies[i].name()
					if qv, has := policies[i].param("q"); ok && has && qv.kind == sfInteger && qv.i >= 0 {
						limits[name] = clampCount(qv.i)
					}
				}
			} else {
				q.Ignored = append(q.Ignored, fieldRateLimitPolicy)
			}
		}
		bad := false
		for i := range items {
			name, ok := items[i].name()
			r, hasR := items[i].param("r")
			if !ok || !hasR || r.kind != sfInteger || r.i < 0 {
				bad = true
				continue
			}
			w := Window{Name: name, Limit: limits[name], Remaining: clampCount(r.i)}
			if t, has := items[i].param("t"); has {
				if t.kind != sfInteger || t.i < 0 {
					bad = true
				} else {
					w.Reset = secondsDuration(t.i, 0)
				}
			}
			q.Windows = append(q.Windows, w)
		}
		if bad {
			q.Ignored = append(q.Ignored, fieldRateLimit)
		}
		return
	}
	// draft-07: RateLimit: limit=100, remaining=25, reset=5
	dict, ok := parseSFDict(field)
	if !ok {
		q.Ignored = append(q.Ignored, fieldRateLimit)
		return
	}
	var w Window
	var hasRemaining, bad bool
	for i := range dict {
		m := &dict[i]
		if m.inner || m.bare.kind != sfInteger || m.bare.i < 0 {
			bad = bad || m.key == "limit" || m.key == "remaining" || m.key == "reset"
			continue
		}
		switch m.key {
		case "limit":
			w.Limit = clampCount(m.bare.i)
		case "remaining":
			w.Remaining, hasRemaining = clampCount(m.bare.i), true
		case "reset":
			w.Reset = secondsDuration(m.bare.i, 0)
		}
	}
	if hasRemaining {
		q.Windows = append(q.Windows, w)
	}
	if bad || !hasRemaining {
		q.Ignored = append(q.Ignored, fieldRateLimit)
	}
}

// name returns a policy's name: the item's String or Token.
func (m *sfMember) name() (string, bool) {
	if m.inner || (m.bare.kind != sfString && m.bare.kind != sfToken) {
		return "", false
	}
	return m.bare.s, true
}

// parseX reads the X-RateLimit-* fields (Lindris, Scalekit, GitHub, ...).
func (q *Quota) parseX(h http.Header, ref time.Time) {
	limit, _ := q.count(h, fieldXLimit)
	remaining, hasRemaining := q.count(h, fieldXRemaining)
	limitSec, _ := q.count(h, fieldXLimitSecond)
	remainingSec, hasSecond := q.count(h, fieldXRemainingSec)
	reset, hasReset := q.reset(h, fieldXReset, ref)
	if !hasRemaining && !hasSecond {
		return
	}
	// Lindris names its pair minute and second; a lone set is unnamed.
	var ws []Window
	if hasRemaining {
		name := ""
		if hasSecond {
			name = "minute"
		}
		ws = append(ws, Window{Name: name, Limit: limit, Remaining: remaining})
	}
	if hasSecond {
		ws = append(ws, Window{Name: "second", Limit: limitSec, Remaining: remainingSec})
	}
	if hasReset {
		// The reset is the binding window's: the one
		// X-RateLimit-Limited-By names, else the one with the fewest
		// requests left, which is how Lindris picks the binding window.
		// ratekit labels a window by its length when it is neither a
		// minute nor a second ("10s"), while the pair is always read as
		// minute and second, so a label may name neither.
		at := 0
		for i := range ws {
			if ws[i].Remaining < ws[at].Remaining {
				at = i
			}
		}
		by := strings.TrimSpace(h.Get(fieldXLimitedBy))
		for i := range ws {
			if ws[i].Name != "" && strings.EqualFold(ws[i].Name, by) {
				at = i
			}
		}
		ws[at].Reset = reset
	}
	q.Windows = append(q.Windows, ws...)
}

// parseKinde reads RateLimit-Limit, -Remaining and -Reset.
func (q *Quota) parseKinde(h http.Header, ref time.Time) {
	limit, _ := q.count(h, fieldLimit)
	remaining, hasRemaining := q.count(h, fieldRemaining)
	reset, _ := q.reset(h, fieldReset, ref)
	if hasRemaining {
		q.Windows = append(q.Windows, Window{Limit: limit, Remaining: remaining, Reset: reset})
	}
}

// count reads a count field: the smallest of its comma-separated values.
// A field that is present but unreadable is added to Ignored.
func (q *Quota) count(h http.Header, name string) (int, bool) {
	vs := h.Values(name)
	if len(vs) == 0 {
		return 0, false
	}
	n, seen := maxCount, false
	ok := eachElement(vs, func(s string) bool {
		v, ok := parseCount(s)
		n, seen = min(n, v), true
		return ok
	})
	if !ok || !seen {
		q.Ignored = append(q.Ignored, name)
		return 0, false
	}
	return n, true
}

// reset reads a reset field: the longest of its comma-separated values,
// each a number of seconds or a Unix time (see ParseQuota).
func (q *Quota) reset(h http.Header, name string, ref time.Time) (time.Duration, bool) {
	vs := h.Values(name)
	if len(vs) == 0 {
		return 0, false
	}
	var d time.Duration
	seen := false
	ok := eachElement(vs, func(s string) bool {
		secs, nanos, ok := parseSeconds(s)
		if ok {
			d, seen = max(d, resetDuration(secs, nanos, ref)), true
		}
		return ok
	})
	if !ok || !seen {
		q.Ignored = append(q.Ignored, name)
		return 0, false
	}
	return d, true
}

// eachElement calls f on every comma-separated element of the field lines
// vs, trimmed of whitespace, and reports whether f accepted them all.
// Empty elements are skipped, as RFC 9110's list syntax allows.
func eachElement(vs []string, f func(string) bool) bool {
	for _, v := range vs {
		for e := range strings.SplitSeq(v, ",") {
			if e = strings.Trim(e, " \t"); e != "" && !f(e) {
				return false
			}
		}
	}
	return true
}

// parseRetryAfter reads Retry-After: delay-seconds (a fraction is
// tolerated) or an HTTP-date measured against ref. The longest wait wins
// when the field is repeated.
func parseRetryAfter(vs []string, ref time.Time) (time.Duration, bool) {
	var d time.Duration
	seen := false
	for _, v := range vs {
		v = strings.Trim(v, " \t")
		if secs, nanos, ok := parseSeconds(v); ok {
			d, seen = max(d, secondsDuration(secs, nanos)), true
			continue
		}
		t, err := http.ParseTime(v)
		if err != nil {
			return 0, false
		}
		d, seen = max(d, t.Sub(ref)), true
	}
	return max(d, 0), seen
}

// parseCount parses a non-negative decimal integer; values above maxCount
// read as maxCount.
func parseCount(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if n < maxCount {
			n = min(n*10+int(c-'0'), maxCount)
		}
	}
	return n, true
}

// parseSeconds parses a non-negative decimal number, "12" or "1.5", into
// whole units and nanoseconds (fractional digits past the ninth are
// dropped). The whole part saturates at math.MaxInt64.
func parseSeconds(s string) (secs, nanos int64, ok bool) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		d := int64(s[i] - '0')
		if secs > (math.MaxInt64-d)/10 {
			secs = math.MaxInt64
		} else if secs != math.MaxInt64 {
			secs = secs*10 + d
		}
		i++
	}
	if i == 0 {
		return 0, 0, false
	}
	if i == len(s) {
		return secs, 0, true
	}
	if s[i] != '.' || i+1 == len(s) {
		return 0, 0, false
	}
	scale := int64(100_000_000)
	for i++; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, 0, false
		}
		nanos += int64(c-'0') * scale
		scale /= 10
	}
	return secs, nanos, true
}

// resetDuration turns a reset value into a wait from ref: a number of
// seconds below unixSeconds, else a Unix time in seconds, or from
// unixMillis in milliseconds. A time in the past is no wait.
func resetDuration(secs, nanos int64, ref time.Time) time.Duration {
	switch {
	case secs < unixSeconds:
		return secondsDuration(secs, nanos)
	case secs < unixMillis:
		return max(time.Unix(secs, nanos).Sub(ref), 0)
	default:
		// nanos is a fraction of a millisecond here.
		return max(time.UnixMilli(secs).Add(time.Duration(nanos/1000)).Sub(ref), 0)
	}
}

// secondsDuration returns secs seconds and nanos nanoseconds, saturating at
// forever. secs and nanos are not negative.
func secondsDuration(secs, nanos int64) time.Duration {
	if secs >= int64(forever/time.Second) {
		return forever
	}
	return time.Duration(secs)*time.Second + time.Duration(nanos)
}

// clampCount returns n as an int in [0, maxCount].
func clampCount(n int64) int {
	return int(min(max(n, 0), maxCount))
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		if d == math.MinInt64 {
			return forever
		}
		return -d
	}
	return d
}
