package headers

import (
	"net/http"
	"testing"
	"time"

	"github.com/ratekit/ratekit/window"
)

// benchInputs are the decisions the benchmarks render: the Lindris policy
// admitting a request (the common case) and refusing one, with the small
// numbers of the default policy, and a policy with three- and four-digit
// limits, which strconv cannot format from its table of small numbers.
func benchInputs() []struct {
	name string
	in   *Input
} {
	large := policy(window.Window{Length: time.Minute, Limit: 1000}, window.Window{Length: time.Second, Limit: 200})
	return []struct {
		name string
		in   *Input
	}{
		{"admitted", &Input{Now: t0, Policy: lindrisPolicy, Partition: "tenant-7f3a", Decision: decision(1, 0,
			window.State{Limit: 60, Remaining: 45, Reset: 12300 * time.Millisecond},
			window.State{Limit: 2, Remaining: 1, Reset: 800 * time.Millisecond})}},
		{"refused", &Input{Now: t0, Policy: lindrisPolicy, Partition: "tenant-7f3a", Decision: decision(1, 800*time.Millisecond,
			window.State{Limit: 60, Remaining: 45, Reset: 12300 * time.Millisecond},
			window.State{Limit: 2, Remaining: 0, Reset: 800 * time.Millisecond})}},
		{"admitted-large", &Input{Now: t0, Policy: large, Partition: "tenant-7f3a", Decision: decision(1, 0,
			window.State{Limit: 1000, Remaining: 450, Reset: 12300 * time.Millisecond},
			window.State{Limit: 200, Remaining: 150, Reset: 800 * time.Millisecond})}},
	}
}

// BenchmarkStyle measures one WriteHeaders call per style on a 2-window
// decision, into a header map that already holds the style's fields (as
// from the second iteration on): the style's own cost, without the map
// growth a fresh response pays once whatever writes its headers.
func BenchmarkStyle(b *testing.B) {
	styles := []struct {
		name  string
		style Style
	}{
		{"Lindris", Lindris{}},
		{"Scalekit", Scalekit{}},
		{"Kinde", Kinde{}},
		{"IETF", IETF{}},
		{"Multi(Lindris,IETF)", Multi(Lindris{}, IETF{})},
	}
	for _, s := range styles {
		for _, in := range benchInputs() {
			b.Run(s.name+"/"+in.name, func(b *testing.B) {
				b.ReportAllocs()
				h := make(http.Header, 16)
				for b.Loop() {
					s.style.WriteHeaders(h, in.in)
				}
			})
		}
	}
}

// BenchmarkLindrisFreshHeader measures the Lindris style writing into a new
// header map each time, as a server does per response: the style's
// allocation plus the map's. It bounds what a response pays for headers.
func BenchmarkLindrisFreshHeader(b *testing.B) {
	in := benchInputs()[0].in
	b.ReportAllocs()
	for b.Loop() {
		h := make(http.Header, 8)
		Lindris{}.WriteHeaders(h, in)
	}
}

// BenchmarkEnvelope measures one AppendBody call per envelope for a refused
// 2-window decision, into a reused buffer with room: the steady state of a
// server that pools its body buffers. It should report 0 allocs.
func BenchmarkEnvelope(b *testing.B) {
	in := benchInputs()[1].in
	envs := []struct {
		name string
		env  Envelope
	}{
		{"LindrisBody", LindrisBody{}},
		{"LindrisBody/escaped", LindrisBody{Message: "Slow \"down\"\n\tplease \u2028 \xff"}},
		{"AuthmatechBody", AuthmatechBody{}},
		{"ProblemBody", ProblemBody{}},
		{"ProblemBody/503", ProblemBody{}},
	}
	for _, e := range envs {
		b.Run(e.name, func(b *testing.B) {
			in := in
			if e.name == "ProblemBody/503" {
				in = &Input{Status: http.StatusServiceUnavailable, Decision: &window.Decision{RetryAfter: 5 * time.Second}}
			}
			buf := make([]byte, 0, 512)
			b.ReportAllocs()
			for b.Loop() {
				buf = e.env.AppendBody(buf[:0], in)
			}
			b.SetBytes(int64(len(buf)))
		})
	}
}
