package window_test

import (
	"testing"
	"time"

	"github.com/ratekit/ratekit/window"
)

// BenchmarkLogTakeAt measures one window.Log decision under the default
// policy (60/min + 2/s) with a full ring of 60 entries: admitted (the clock
// moves 1.001s per decision, so the oldest entry leaves and the newest
// joins; at exactly 1s a decision could land where the oldest still
// counts), refused (the clock stands still on a full second), and a peek;
// then one admission merged into the newest millisecond under limits it
// never reaches (2e9/min + 1e9/s).
func BenchmarkLogTakeAt(b *testing.B) {
	const step = time.Second + time.Millisecond
	full := func(p *window.Policy) (window.Log, time.Time) {
		var l window.Log
		at := t0
		for range 60 {
			at = at.Add(step)
			l.TakeAt(at, p, 1)
		}
		return l, at
	}
	b.Run("admitted", func(b *testing.B) {
		p := window.Default()
		l, at := full(&p)
		b.ReportAllocs()
		for b.Loop() {
			at = at.Add(step)
			if d := l.TakeAt(at, &p, 1); !d.Allowed {
				b.Fatalf("TakeAt(%v) refused; the benchmark measures admissions", at)
			}
		}
	})
	b.Run("refused", func(b *testing.B) {
		p := window.Default()
		l, at := full(&p)
		l.TakeAt(at, &p, 1)
		b.ReportAllocs()
		for b.Loop() {
			l.TakeAt(at, &p, 1)
		}
	})
	b.Run("peek", func(b *testing.B) {
		p := window.Default()
		l, at := full(&p)
		b.ReportAllocs()
		for b.Loop() {
			l.PeekAt(at, &p)
		}
	})
	b.Run("merged", func(b *testing.B) {
		p := window.Policy{Windows: []window.Window{{Length: time.Minute, Limit: 2e9}, {Length: time.Second, Limit: 1e9}}}
		var l window.Log
		l.TakeAt(t0, &p, 1)
		b.ReportAllocs()
		for b.Loop() {
			l.TakeAt(t0, &p, 1)
		}
	})
}
