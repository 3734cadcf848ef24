package headers

import (
	"encoding/base64"
	"net/http"
	"strconv"
)

// IETF is the [Style] of draft-ietf-httpapi-ratelimit-headers-10: every
// window of the policy as one quota policy, named by its label.
//
//	RateLimit-Policy: "minute";q=60;w=60, "second";q=2;w=1
//	RateLimit: "minute";r=45;t=12, "second";r=1;t=1
//	Retry-After: 1
//
// Both fields are Structured Field Lists (RFC 9651) of Items whose values
// are Strings, in policy order. In RateLimit-Policy, q is the window's limit
// and w its length in whole seconds, rounded up (the draft has no sub-second
// windows; a 1.5s window is sent as w=2, which advertises a slower rate,
// never a faster one). In RateLimit, r is the window's
// remaining and t its reset in whole seconds, rounded up; t is omitted for a
// window that counts nothing, as there is no quota to be made available. The
// quota unit is the draft's default, requests, so qu is not sent.
//
// When [Input.Partition] is not empty, every item of both fields carries it
// as pk, a Byte Sequence (base64 between colons).
//
// Names are sent as Strings: '"' and '\' are escaped and bytes outside
// printable ASCII, which Strings cannot hold, are sent as '?'.
//
// On a rejection Retry-After is added, in whole seconds, never earlier than
// the binding window's t (as section 6 of the draft asks; see [Lindris]).
//
// A call allocates twice. The zero value is ready to use.
type IETF struct{}

var _ Style = IETF{}

// WriteHeaders sets RateLimit-Policy, RateLimit and, on a rejection,
// Retry-After for in on h.
func (IETF) WriteHeaders(h http.Header, in *Input) {
	p, d, ok := in.windows()
	if !ok {
		writeRetryAfter(h, in)
		return
	}
	var buf [512]byte
	b := buf[:0]
	for i := range d.N {
		if i > 0 {
			b = append(b, ", "...)
		}
		w := &p.Windows[i]
		b = appendSFString(b, w.Label())
		b = append(b, ";q="...)
		b = strconv.AppendInt(b, int64(w.Limit), 10)
		b = append(b, ";w="...)
		b = strconv.AppendInt(b, ceilSeconds(w.Length), 10)
		b = appendPartition(b, in.Partition)
	}
	split := len(b)
	for i := range d.N {
		if i > 0 {
			b = append(b, ", "...)
		}
		s := &d.Windows[i]
		b = appendSFString(b, p.Windows[i].Label())
		b = append(b, ";r="...)
		b = strconv.AppendInt(b, int64(s.Remaining), 10)
		if s.Reset > 0 {
			b = append(b, ";t="...)
			b = strconv.AppendInt(b, waitSeconds(s.Reset), 10)
		}
		b = appendPartition(b, in.Partition)
	}
	all := string(b)
	vals := new([3]string)
	vals[0], vals[1] = all[:split], all[split:]
	h[keyRateLimitPolicy] = vals[0:1:1]
	h[keyRateLimit] = vals[1:2:2]
	if !d.Allowed {
		vals[2] = strconv.FormatInt(retrySeconds(in), 10)
		h[keyRetryAfter] = vals[2:3:3]
	}
}

// appendSFString appends s as a Structured Field String (RFC 9651 section
// 4.1.6). Strings hold printable ASCII only; other bytes become '?' so that
// the field stays valid whatever a window is named.
func appendSFString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c > 0x7e:
			b = append(b, '?')
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// appendPartition appends the pk parameter for key, a Byte Sequence, or
// nothing when key is empty.
func appendPartition(b []byte, key string) []byte {
	if key == "" {
		return b
	}
	b = append(b, ";pk=:"...)
	b = base64.StdEncoding.AppendEncode(b, []byte(key))
	return append(b, ':')
}
