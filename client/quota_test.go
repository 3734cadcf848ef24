package client

import (
	"net/http"
	"reflect"
	"testing"
	"time"
)

// now is the instant the table's responses arrive: Unix 1735787045.
var now = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func header(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func TestParseQuota(t *testing.T) {
	const s = time.Second
	tests := []struct {
		name string
		h    http.Header
		want Quota
	}{
		{"nothing", header("Content-Type", "application/json"), Quota{}},
		{
			"lindris 200, second window binds",
			header("X-RateLimit-Limit", "60", "X-RateLimit-Remaining", "58", "X-RateLimit-Limit-Second", "2",
				"X-RateLimit-Remaining-Second", "0", "X-RateLimit-Reset", "1", "X-RateLimit-Limited-By", "second"),
			Quota{Windows: []Window{{Name: "minute", Limit: 60, Remaining: 58}, {Name: "second", Limit: 2, Remaining: 0, Reset: s}}},
		},
		{
			"lindris 429, minute window binds",
			header("X-Ratelimit-Limit", "60", "X-Ratelimit-Remaining", "0", "X-Ratelimit-Limit-Second", "2",
				"X-Ratelimit-Remaining-Second", "2", "X-Ratelimit-Reset", "12", "X-Ratelimit-Limited-By", "minute", "Retry-After", "12"),
			Quota{Windows: []Window{{Name: "minute", Limit: 60, Remaining: 0, Reset: 12 * s}, {Name: "second", Limit: 2, Remaining: 2}}, RetryAfter: 12 * s},
		},
		{
			"lindris limited-by names neither window (a 10s window): reset goes to the one with the fewest left",
			header("X-RateLimit-Remaining", "5", "X-RateLimit-Remaining-Second", "0", "X-RateLimit-Reset", "9", "X-RateLimit-Limited-By", "10s"),
			Quota{Windows: []Window{{Name: "minute", Remaining: 5}, {Name: "second", Remaining: 0, Reset: 9 * s}}},
		},
		{
			"lindris without limited-by, a tie: the first",
			header("X-RateLimit-Remaining", "0", "X-RateLimit-Remaining-Second", "0", "X-RateLimit-Reset", "3"),
			Quota{Windows: []Window{{Name: "minute", Remaining: 0, Reset: 3 * s}, {Name: "second", Remaining: 0}}},
		},
		{
			"lindris limited-by wins over the fewest left",
			header("X-RateLimit-Remaining", "1", "X-RateLimit-Remaining-Second", "2", "X-RateLimit-Reset", "3", "X-RateLimit-Limited-By", "Minute"),
			Quota{Windows: []Window{{Name: "minute", Remaining: 1, Reset: 3 * s}, {Name: "second", Remaining: 2}}},
		},
		{
			"lindris doc example: reset 2015967110 is a Unix time (2033)",
			header("X-RateLimit-Limit", "60", "X-RateLimit-Remaining", "45", "X-RateLimit-Limit-Second", "2",
				"X-RateLimit-Remaining-Second", "1", "X-RateLimit-Reset", "2015967110", "X-RateLimit-Limited-By", "minute"),
			Quota{Windows: []Window{{Name: "minute", Limit: 60, Remaining: 45, Reset: time.Unix(2015967110, 0).Sub(now)}, {Name: "second", Limit: 2, Remaining: 1}}},
		},
		{
			"scalekit: Unix reset",
			header("X-RateLimit-Limit", "2", "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "1735787047"),
			Quota{Windows: []Window{{Limit: 2, Remaining: 0, Reset: 2 * s}}},
		},
		{
			"unix reset in the past is no wait",
			header("X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "1735787000"),
			Quota{Windows: []Window{{Remaining: 0}}},
		},
		{
			"unix reset in milliseconds",
			header("X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "1735787045500"),
			Quota{Windows: []Window{{Remaining: 0, Reset: 500 * time.Millisecond}}},
		},
		{
			"fractional reset seconds",
			header("X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "0.25"),
			Quota{Windows: []Window{{Remaining: 0, Reset: 250 * time.Millisecond}}},
		},
		{
			"fractional Unix reset",
			header("X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "1735787046.5"),
			Quota{Windows: []Window{{Remaining: 0, Reset: 1500 * time.Millisecond}}},
		},
		{
			"kinde",
			header("RateLimit-Limit", "60", "RateLimit-Remaining", "0", "RateLimit-Reset", "12", "Retry-After", "12"),
			Quota{Windows: []Window{{Limit: 60, Remaining: 0, Reset: 12 * s}}, RetryAfter: 12 * s},
		},
		{
			"ietf draft-10, two policies",
			header("RateLimit-Policy", `"minute";q=60;w=60, "second";q=2;w=1`, "RateLimit", `"minute";r=58;t=60, "second";r=0;t=1`),
			Quota{Windows: []Window{{Name: "minute", Limit: 60, Remaining: 58, Reset: 60 * s}, {Name: "second", Limit: 2, Remaining: 0, Reset: s}}},
		},
		{
			"ietf, policies on several lines, pk, a policy with no t",
			header("RateLimit-Policy", `"day";q=1000;w=86400;pk=:cGs=:`, "RateLimit-Policy", `"burst";q=10;w=1`,
				"RateLimit", `"day";r=999;t=86000;pk=:cGs=:`, "RateLimit", `"burst";r=10`),
			Quota{Windows: []Window{{Name: "day", Limit: 1000, Remaining: 999, Reset: 86000 * s}, {Name: "burst", Limit: 10, Remaining: 10}}},
		},
		{
			"ietf token names (early drafts), no policy field",
			header("RateLimit", `default;r=3;t=7`),
			Quota{Windows: []Window{{Name: "default", Remaining: 3, Reset: 7 * s}}},
		},
		{
			"ietf item without r is skipped and reported",
			header("RateLimit", `"a";t=7, "b";r=1`),
			Quota{Windows: []Window{{Name: "b", Remaining: 1}}, Ignored: []string{"Ratelimit"}},
		},
		{
			"ietf draft-07 dictionary",
			header("RateLimit", "limit=100, remaining=25, reset=5", "RateLimit-Policy", "100;w=60"),
			Quota{Windows: []Window{{Limit: 100, Remaining: 25, Reset: 5 * s}}},
		},
		{
			"ietf malformed",
			header("RateLimit", `"minute";r=5;t=`),
			Quota{Ignored: []string{"Ratelimit"}},
		},
		{
			"multi: lindris and ietf together",
			header("X-RateLimit-Limit", "60", "X-RateLimit-Remaining", "59", "X-RateLimit-Limit-Second", "2",
				"X-RateLimit-Remaining-Second", "1", "X-RateLimit-Reset", "1", "X-RateLimit-Limited-By", "second",
				"RateLimit-Policy", `"minute";q=60;w=60, "second";q=2;w=1`, "RateLimit", `"minute";r=59;t=60, "second";r=1;t=1`),
			Quota{Windows: []Window{
				{Name: "minute", Limit: 60, Remaining: 59, Reset: 60 * s}, {Name: "second", Limit: 2, Remaining: 1, Reset: s},
				{Name: "minute", Limit: 60, Remaining: 59}, {Name: "second", Limit: 2, Remaining: 1, Reset: s},
			}},
		},
		{"retry-after seconds", header("Retry-After", "7"), Quota{RetryAfter: 7 * s}},
		{"retry-after HTTP-date", header("Retry-After", "Thu, 02 Jan 2025 03:04:35 GMT"), Quota{RetryAfter: 30 * s}},
		{"retry-after date in the past", header("Retry-After", "Thu, 02 Jan 2025 03:00:00 GMT"), Quota{}},
		{"retry-after repeated: the longest", header("Retry-After", "2", "Retry-After", "9"), Quota{RetryAfter: 9 * s}},
		{
			"server clock 1h ahead: absolute times read against Date",
			header("Date", "Thu, 02 Jan 2025 04:04:05 GMT", "Retry-After", "Thu, 02 Jan 2025 04:04:08 GMT",
				"X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "1735790650"),
			Quota{Windows: []Window{{Remaining: 0, Reset: 5 * s}}, RetryAfter: 3 * s},
		},
		{
			"Date within tolerance: the local clock, finer, is used",
			header("Date", "Thu, 02 Jan 2025 03:04:04 GMT", "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "1735787046"),
			Quota{Windows: []Window{{Remaining: 0, Reset: s}}},
		},
		{
			"hostile: negative, non-numeric",
			header("X-RateLimit-Remaining", "-1", "X-RateLimit-Reset", "-5", "RateLimit-Remaining", "lots", "Retry-After", "soon"),
			Quota{Ignored: []string{"Retry-After", "X-Ratelimit-Remaining", "X-Ratelimit-Reset", "Ratelimit-Remaining"}},
		},
		{
			"hostile: huge numbers saturate",
			header("X-RateLimit-Remaining", "99999999999999999999999", "X-RateLimit-Reset", "99999999999999999999999", "Retry-After", "99999999999999999999999"),
			Quota{Windows: []Window{{Remaining: maxCount, Reset: time.UnixMilli(1<<63 - 1).Sub(now)}}, RetryAfter: forever},
		},
		{
			"repeated counts: the smallest; comma lists too",
			header("X-RateLimit-Remaining", "5, 3", "X-RateLimit-Remaining", "4", "X-RateLimit-Reset", "1, 2"),
			Quota{Windows: []Window{{Remaining: 3, Reset: 2 * s}}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ParseQuota(tc.h, now)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseQuota(%v)\n got %+v\nwant %+v", tc.h, got, tc.want)
			}
		})
	}
}

func TestParseSeconds(t *testing.T) {
	tests := []struct {
		in    string
		secs  int64
		nanos int64
		ok    bool
	}{
		{"0", 0, 0, true},
		{"12", 12, 0, true},
		{"1.5", 1, 500_000_000, true},
		{"0.000000001", 0, 1, true},
		{"0.0000000019", 0, 1, true}, // digits past the ninth dropped
		{"99999999999999999999", 1<<63 - 1, 0, true},
		{"", 0, 0, false},
		{"-1", 0, 0, false},
		{"+1", 0, 0, false},
		{"1.", 0, 0, false},
		{".5", 0, 0, false},
		{"1e3", 0, 0, false},
		{"1 2", 0, 0, false},
	}
	for _, tc := range tests {
		secs, nanos, ok := parseSeconds(tc.in)
		if secs != tc.secs || nanos != tc.nanos || ok != tc.ok {
			t.Errorf("parseSeconds(%q) = %d, %d, %v; want %d, %d, %v", tc.in, secs, nanos, ok, tc.secs, tc.nanos, tc.ok)
		}
	}
}

func TestParseCount(t *testing.T) {
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"0", 0, true},
		{"60", 60, true},
		{"2147483647", maxCount, true},
		{"2147483648", maxCount, true},
		{"100000000000000000000000000", maxCount, true},
		{"", 0, false},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"0x10", 0, false},
	}
	for _, tc := range tests {
		got, ok := parseCount(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseCount(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
