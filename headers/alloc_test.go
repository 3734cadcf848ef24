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
		{"Lindris/huge", Lindris{}, huge, 2},
		{"Scalekit", Scalekit{}, small, 0},
		{"Kinde/small", Kinde{}, small, 0},
		{"Kinde/large", Kinde{}, large, 0},
		{"Kinde/huge", Kinde{}, huge, 2},
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
