package client

import (
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Fuzz targets for every parser of response headers. Each keeps to cheap
// checks so that `make fuzz-smoke` (20000 executions each) stays quick.
// Seeds live in testdata/fuzz/FuzzXxx/.

// FuzzParseSeconds: reset and Retry-After numbers. Accepted input is
// exactly digits with an optional fraction, and reads as strconv does.
func FuzzParseSeconds(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		secs, nanos, ok := parseSeconds(s)
		whole, frac, hasFrac := strings.Cut(s, ".")
		wantOK := allDigits(whole) && (!hasFrac || allDigits(frac))
		if ok != wantOK {
			t.Fatalf("parseSeconds(%q) ok = %v, want %v", s, ok, wantOK)
		}
		if !ok {
			return
		}
		if secs < 0 || nanos < 0 || nanos >= int64(time.Second) {
			t.Fatalf("parseSeconds(%q) = %d, %d: out of range", s, secs, nanos)
		}
		if n, err := strconv.ParseInt(whole, 10, 64); err == nil && n != secs {
			t.Fatalf("parseSeconds(%q) whole = %d, strconv says %d", s, secs, n)
		}
		if d := secondsDuration(secs, nanos); d < 0 {
			t.Fatalf("secondsDuration(%d, %d) = %v", secs, nanos, d)
		}
	})
}

// FuzzParseCount: limits and remaining counts.
func FuzzParseCount(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		n, ok := parseCount(s)
		if ok != allDigits(s) {
			t.Fatalf("parseCount(%q) ok = %v", s, ok)
		}
		if n < 0 || n > maxCount {
			t.Fatalf("parseCount(%q) = %d, out of range", s, n)
		}
		if v, err := strconv.ParseInt(s, 10, 64); ok && err == nil && int64(n) != min(v, maxCount) {
			t.Fatalf("parseCount(%q) = %d, strconv says %d", s, n, v)
		}
	})
}

// FuzzRetryAfter: delay-seconds or an HTTP-date; never a negative wait.
func FuzzRetryAfter(f *testing.F) {
	f.Fuzz(func(t *testing.T, v string) {
		d, ok := parseRetryAfter([]string{v}, now)
		if d < 0 || (!ok && d != 0) {
			t.Fatalf("parseRetryAfter(%q) = %v, %v", v, d, ok)
		}
	})
}

// FuzzSFList: Structured Field Lists (IETF RateLimit, RateLimit-Policy).
// What parses, serialised again, parses to the same thing.
func FuzzSFList(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		m, ok := parseSFList(s)
		if !ok {
			return
		}
		again := serializeSF(m, false)
		m2, ok := parseSFList(again)
		if !ok || !reflect.DeepEqual(m, m2) {
			t.Fatalf("parseSFList(%q) = %+v; serialised %q parses to %+v, %v", s, m, again, m2, ok)
		}
	})
}

// FuzzSFDict: Structured Field Dictionaries (draft-07 RateLimit).
func FuzzSFDict(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		m, ok := parseSFDict(s)
		if !ok {
			return
		}
		again := serializeSF(m, true)
		m2, ok := parseSFDict(again)
		if !ok || !reflect.DeepEqual(m, m2) {
			t.Fatalf("parseSFDict(%q) = %+v; serialised %q parses to %+v, %v", s, m, again, m2, ok)
		}
	})
}

// FuzzParseQuota: whole responses. Every number is in range, and whatever
// the response says, the transport's picture never holds a request longer
// than MaxDelay.
func FuzzParseQuota(f *testing.F) {
	f.Fuzz(func(t *testing.T, remaining, reset, limitedBy, rateLimit, retryAfter, date string, refused bool) {
		h := http.Header{}
		for name, v := range map[string]string{
			"X-Ratelimit-Remaining": remaining, "X-Ratelimit-Remaining-Second": remaining, "X-Ratelimit-Reset": reset,
			"X-Ratelimit-Limited-By": limitedBy, "Ratelimit-Remaining": remaining, "Ratelimit-Reset": reset,
			"Ratelimit": rateLimit, "Ratelimit-Policy": rateLimit, "Retry-After": retryAfter, "Date": date,
		} {
			if v != "" {
				h[name] = []string{v}
			}
		}
		q := ParseQuota(h, now)
		if q.RetryAfter < 0 {
			t.Fatalf("RetryAfter %v", q.RetryAfter)
		}
		for _, w := range q.Windows {
			if w.Limit < 0 || w.Limit > maxCount || w.Remaining < 0 || w.Remaining > maxCount || w.Reset < 0 {
				t.Fatalf("window %+v out of range", w)
			}
		}
		tr := &Transport{}
		tr.cfg, _ = Config{}.withDefaults()
		b := &bucket{changed: make(chan struct{})}
		seq := b.take(now, &tr.cfg)
		var hold time.Duration
		if refused {
			_, _, hold = tr.afterRefusal(&q, 1)
		}
		b.done(seq, &q, now, hold, &tr.cfg)
		if v := b.check(now, &tr.cfg, false); v.wait > tr.cfg.MaxDelay {
			t.Fatalf("after %v: wait %v, more than MaxDelay", h, v.wait)
		}
		if v := b.check(now.Add(tr.cfg.MaxDelay), &tr.cfg, false); !v.ok {
			t.Fatalf("after %v: still held %+v at MaxDelay", h, v)
		}
	})
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// serializeSF writes members as a List, or as a Dictionary when dict is
// set (RFC 9651 section 4.1), for the round-trip checks.
func serializeSF(ms []sfMember, dict bool) string {
	var b strings.Builder
	for i, m := range ms {
		if i > 0 {
			b.WriteString(", ")
		}
		if dict {
			b.WriteString(m.key)
			if !m.inner && m.bare.kind == sfBoolean && m.bare.i == 1 {
				writeSFParams(&b, m.params)
				continue
			}
			b.WriteByte('=')
		}
		if m.inner {
			b.WriteString("()")
		} else {
			writeSFBare(&b, m.bare)
		}
		writeSFParams(&b, m.params)
	}
	return b.String()
}

func writeSFParams(b *strings.Builder, ps []sfParam) {
	for _, p := range ps {
		b.WriteByte(';')
		b.WriteString(p.key)
		if p.val.kind == sfBoolean && p.val.i == 1 {
			continue
		}
		b.WriteByte('=')
		writeSFBare(b, p.val)
	}
}

func writeSFBare(b *strings.Builder, v sfBare) {
	switch v.kind {
	case sfInteger:
		b.WriteString(strconv.FormatInt(v.i, 10))
	case sfDate:
		b.WriteByte('@')
		b.WriteString(strconv.FormatInt(v.i, 10))
	case sfDecimal:
		if v.i < 0 {
			b.WriteByte('-')
			v.i = -v.i
		}
		b.WriteString(strconv.FormatInt(v.i/1000, 10))
		b.WriteByte('.')
		b.WriteString(strconv.FormatInt(v.i%1000+1000, 10)[1:])
	case sfString:
		b.WriteByte('"')
		for i := 0; i < len(v.s); i++ {
			if v.s[i] == '"' || v.s[i] == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(v.s[i])
		}
		b.WriteByte('"')
	case sfToken:
		b.WriteString(v.s)
	case sfBytes:
		b.WriteByte(':')
		b.WriteString(v.s)
		b.WriteByte(':')
	case sfBoolean:
		b.WriteString("?" + strconv.FormatInt(v.i, 10))
	}
}
