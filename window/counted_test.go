package window_test

import (
	"testing"
	"time"

	"github.com/ratekit/ratekit/internal/model"
	"github.com/ratekit/ratekit/window"
)

// TestLogCountedSteps: what a log holds, step by step, under 10/min + 5/s.
func TestLogCountedSteps(t *testing.T) {
	p := window.Policy{Windows: []window.Window{{Length: time.Minute, Limit: 10}, {Length: time.Second, Limit: 5}}}
	var l window.Log
	if got := l.Counted(); got != 0 {
		t.Fatalf("empty log: Counted = %d, want 0", got)
	}
	for _, s := range []struct {
		name    string
		at      time.Duration
		n       int
		ok      bool
		counted int
	}{
		{"t0", 0, 1, true, 1},
		{"t0plus100ms cost 3", 100 * time.Millisecond, 3, true, 4},
		{"t0plus200ms cost 6 refused", 200 * time.Millisecond, 6, false, 4}, // counts nowhere
		{"t0plus30s cost 5", 30 * time.Second, 5, true, 9},
		// At t0+60.001s the entry of t0 is surely more than a minute old
		// (see Window): the admission drops it.
		{"t0plus60001ms", time.Minute + time.Millisecond, 1, true, 9},
		// A refusal drops nothing, though the minute has moved on.
		{"t0plus90500ms cost 6 refused", 90*time.Second + 500*time.Millisecond, 6, false, 9},
		{"t0plus200s cost 2", 200 * time.Second, 2, true, 2},
	} {
		d := l.TakeAt(t0.Add(s.at), &p, s.n)
		if d.Allowed != s.ok || l.Counted() != s.counted {
			t.Errorf("%s: TakeAt(t0+%v, %d) allowed = %v, Counted = %d; want %v, %d", s.name, s.at, s.n, d.Allowed, l.Counted(), s.ok, s.counted)
		}
	}

	// Admissions merged into one millisecond count by their cost.
	huge := window.Policy{Windows: []window.Window{{Length: time.Second, Limit: 1e9}}}
	var m window.Log
	for range 3 {
		m.TakeAt(t0, &huge, 2)
	}
	if window.LogEntries(&m) != 1 || m.Counted() != 6 {
		t.Errorf("three cost-2 admissions merged: Len = %d, Counted = %d; want 1, 6", window.LogEntries(&m), m.Counted())
	}
}

// TestCountedBoundsEveryWindow replays random streams (costs up to 3, clock
// jumps of up to ±2 minutes) through a Log, a Counter and a SmallCounter:
// after every decision Counted is at least what each window counts, and for
// the log, right after an admission, exactly what its longest window counts.
// Counted is what the memory store's eviction ranks keys by, and what it
// promises an eviction can cost at most.
func TestCountedBoundsEveryWindow(t *testing.T) {
	policies := map[string]window.Policy{
		"lindris": window.Default(),
		"tight":   {Windows: []window.Window{{Length: 10 * time.Second, Limit: 9}, {Length: time.Second, Limit: 3}}},
		"one":     {Windows: []window.Window{{Length: 2 * time.Second, Limit: 5}}},
	}
	streams := 300
	if testing.Short() {
		streams = 50
	}
	for name, p := range policies {
		longest := 0
		for i, w := range p.Windows {
			if w.Length > p.Windows[longest].Length {
				longest = i
			}
		}
		counter := p
		counter.Algorithm = window.SlidingCounter
		t.Run(name, func(t *testing.T) {
			for seed := uint64(1); seed <= uint64(streams); seed++ {
				cfg := model.StreamConfig{Ops: 120, Keys: 1, MaxGap: 700 * time.Millisecond,
					MaxCost: 1 + int(seed%3), JumpEvery: 30, MaxJump: 2 * time.Minute}
				var l window.Log
				var c window.Counter
				var s window.SmallCounter
				for i, op := range model.Stream(seed, cfg) {
					now := t0.Add(op.At)
					check := func(kind string, d window.Decision, counted int) {
						t.Helper()
						for w, st := range d.States() {
							if used := st.Limit - st.Remaining; used > counted {
								t.Fatalf("seed %d op %d (%+v), %s: window %d counts %d, Counted = %d", seed, i, op, kind, w, used, counted)
							}
						}
					}
					d := l.TakeAt(now, &p, op.Cost)
					check("log", d, l.Counted())
					if st := d.Windows[longest]; d.Allowed && st.Limit-st.Remaining != l.Counted() {
						t.Fatalf("seed %d op %d (%+v), log admitted: longest window counts %d, Counted = %d", seed, i, op, st.Limit-st.Remaining, l.Counted())
					}
					check("counter", c.TakeAt(now, &counter, op.Cost), c.Counted())
					check("small counter", s.TakeAt(now, &counter, op.Cost), s.Counted())
				}
			}
		})
	}
}
