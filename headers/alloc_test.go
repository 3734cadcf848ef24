package headers

import (
	"net/http"
	"testing"
	"time"

	"github.com/ratekit/ratekit/window"
)

// TestAllocs holds the allocation budgets the package documents. The header
// map already holds every field, as it does from the second call on in the
// benchmarks: growing a fresh map is the caller's cost, not the style's.
func TestAllocs(t *testing.T) {
	small := &Input{Now: t0, Policy: lindrisPolicy, Decision: decision(1, 800*time.Millisecond,
		window.State{Limit: 60, Remaining: 45, Reset: 12300 * time.Millisecond},
		window.State{Limit: 2, Remaining: 0, Reset: 800 * time.Millisecond})}
	large := &Input{Now: t0, Policy: policy(window.Window{Length: time.Minute, Limit: 1000}, window.Window{Length: time.Second, Limit: 200}),
		Decision: decision(0, 0,
			window.State{Limit: 1000, Remaining: 450, Reset: 12300 * time.Millisecond},
			window.State{Limit: 200, Remaining: 190, Reset: 800 * time.Millisecond})}
	huge := &Input{Now: t0, Policy: policy(window.Window{Length: 24 * time.Hour, Limit: 100_000}, window.Window{Length: time.Second, Limit: 5000}),
		Decision: decision(0, 0,
			window.State{Limit: 100_000, Remaining: 45_000, Reset: 86400 * time.Second},
			window.State{Limit: 5000, Remaining: 1900, Reset: 800 * time.Millisecond})}
	custom := &Input{Now: t0, Policy: policy(window.Window{Name: "sustained", Length: time.Minute, Limit: 60}, window.Window{Name: "burst", Length: time.Second, Limit: 2}),
		Decision: small.Decision}
	for _, tc := range []struct {
		name  string
		style Style
		in    *Input
		max   float64
	}{
		{"Lindris/small", Lindris{}, small, 0},
		{"Lindris/large", Lindris{}, large, 0},
		{"Lindris/custom-labels", Lindris{}, custom, 0},
		{"Lindris/huge", Lindris{}, huge, 1},
		{"Scalekit", Scalekit{}, small, 0},
		{"Kinde/small", Kinde{}, small, 0},
		{"Kinde/large", Kinde{}, large, 0},
		{"Kinde/huge", Kinde{}, huge, 1},
		{"IETF", IETF{}, small, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			tc.style.WriteHeaders(h, tc.in)
			got := testing.AllocsPerRun(100, func() { tc.style.WriteHeaders(h, tc.in) })
			if got > tc.max {
				t.Errorf("WriteHeaders allocs = %v, want at most %v", got, tc.max)
			}
		})
	}
	for _, tc := range []struct {
		name string
		env  Envelope
	}{
		{"LindrisBody", LindrisBody{Message: "say \"hi\"\n\xff"}},
		{"AuthmatechBody", AuthmatechBody{}},
		{"ProblemBody", ProblemBody{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			buf := make([]byte, 0, 1024)
			got := testing.AllocsPerRun(100, func() { buf = tc.env.AppendBody(buf[:0], small) })
			if got != 0 {
				t.Errorf("AppendBody allocs = %v, want 0", got)
			}
		})
	}
}

// TestLargeLimitsSharedByStyles checks that every style sends a limit of
// 1024 or more as one shared value across responses, while the remaining
// counts beside it change: a limit the style forgot to mark, or a count
// marked as a limit, fails here.
func TestLargeLimitsSharedByStyles(t *testing.T) {
	p := policy(window.Window{Length: time.Minute, Limit: 7_000_001}, window.Window{Length: time.Second, Limit: 3_000_001})
	at := func(minute, second int) *Input {
		return &Input{Now: t0, Policy: p, Decision: decision(0, 0,
			window.State{Limit: 7_000_001, Remaining: minute, Reset: time.Minute},
			window.State{Limit: 3_000_001, Remaining: second, Reset: time.Second})}
	}
	for _, tc := range []struct {
		style  Style
		fields []string // limit fields
		counts []string // remaining fields
	}{
		{Lindris{}, []string{"X-Ratelimit-Limit", "X-Ratelimit-Limit-Second"}, []string{"X-Ratelimit-Remaining", "X-Ratelimit-Remaining-Second"}},
		{Kinde{}, []string{"Ratelimit-Limit"}, []string{"Ratelimit-Remaining"}},
		{Scalekit{}, []string{"X-Ratelimit-Limit"}, []string{"X-Ratelimit-Remaining"}},
	} {
		a, b := http.Header{}, http.Header{}
		tc.style.WriteHeaders(a, at(5_000_000, 2_000_000))
		tc.style.WriteHeaders(b, at(4_999_999, 1_999_999))
		for _, f := range tc.fields {
			if len(a[f]) != 1 || len(b[f]) != 1 || &a[f][0] != &b[f][0] {
				t.Errorf("%T %s: %q and %q are not one shared value", tc.style, f, a[f], b[f])
			}
		}
		for _, f := range tc.counts {
			if len(a[f]) != 1 || len(b[f]) != 1 || a[f][0] == b[f][0] {
				t.Errorf("%T %s: %q then %q; want the two counts", tc.style, f, a[f], b[f])
			}
		}
	}
}
