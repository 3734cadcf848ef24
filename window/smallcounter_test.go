package window_test

import (
	"testing"
	"time"

	"github.com/ratekit/ratekit/internal/model"
	"github.com/ratekit/ratekit/window"
)

// smallPolicies are counter policies a SmallCounter holds, chosen so that
// streams hit both windows, slot boundaries and the largest limit.
var smallPolicies = map[string]window.Policy{
	"lindris": {Windows: []window.Window{{Length: time.Minute, Limit: 60}, {Length: time.Second, Limit: 2}}},
	"one":     {Windows: []window.Window{{Length: 2 * time.Second, Limit: 5}}},
	"tight":   {Windows: []window.Window{{Length: 10 * time.Second, Limit: 9}, {Length: time.Second, Limit: 3}}},
	"max":     {Windows: []window.Window{{Length: time.Hour, Limit: window.SmallCounterMaxLimit}, {Length: 1500 * time.Millisecond, Limit: window.SmallCounterMaxLimit}}},
	"week":    {Windows: []window.Window{{Length: window.SmallCounterMaxLength, Limit: 7}, {Length: 3 * time.Second, Limit: 2}}},
}

// TestSmallCounterMatchesCounter replays random streams (clock jumps of up
// to ±2 days, costs up to 3, peeks) through a SmallCounter and a Counter per
// key: every decision must be the same.
func TestSmallCounterMatchesCounter(t *testing.T) {
	streams := min(*streamsFlag, 3000)
	if testing.Short() {
		streams = 300
	}
	for name, p := range smallPolicies {
		p.Algorithm = window.SlidingCounter
		if !window.SmallCounterFits(&p) {
			t.Fatalf("%s: does not fit", name)
		}
		t.Run(name, func(t *testing.T) {
			for seed := uint64(1); seed <= uint64(streams); seed++ {
				if *seedFlag != 0 && seed != *seedFlag {
					continue
				}
				cfg := model.StreamConfig{Ops: 80, Keys: 1 + int(seed%3), MaxGap: 1200 * time.Millisecond,
					MaxCost: 1 + int(seed%3), JumpEvery: 20, MaxJump: 48 * time.Hour, PeekEvery: 8}
				if p.Windows[0].Limit == window.SmallCounterMaxLimit {
					cfg.MaxGap, cfg.MaxCost = 3*time.Millisecond, 3000
				}
				small := make([]window.SmallCounter, cfg.Keys)
				ref := make([]window.Counter, cfg.Keys)
				for i, op := range model.Stream(seed, cfg) {
					now := t0.Add(op.At)
					var got, want window.Decision
					if op.Peek {
						got, want = small[op.Key].PeekAt(now, &p), ref[op.Key].PeekAt(now, &p)
					} else {
						got, want = small[op.Key].TakeAt(now, &p, op.Cost), ref[op.Key].TakeAt(now, &p, op.Cost)
					}
					if d := diff(got, want); d != "" {
						t.Fatalf("seed %d op %d (%+v): %s", seed, i, op, d)
					}
				}
			}
		})
	}
}

func TestSmallCounterFits(t *testing.T) {
	w := func(l time.Duration, n int) window.Window { return window.Window{Length: l, Limit: n} }
	for _, tc := range []struct {
		name string
		ws   []window.Window
		want bool
	}{
		{"default", window.Default().Windows, true},
		{"one", []window.Window{w(time.Second, 1)}, true},
		{"three", []window.Window{w(time.Hour, 100), w(time.Minute, 10), w(time.Second, 2)}, false},
		{"limit", []window.Window{w(time.Minute, window.SmallCounterMaxLimit+1)}, false},
		{"length", []window.Window{w(window.SmallCounterMaxLength+time.Millisecond, 1)}, false},
		{"none", nil, false},
	} {
		p := window.Policy{Algorithm: window.SlidingCounter, Windows: tc.ws}
		if got := window.SmallCounterFits(&p); got != tc.want {
			t.Errorf("%s: SmallCounterFits = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestSmallCounterLimited checks the flag a store reads before evicting: set
// by a refusal or an admission that used a window up, cleared by an
// admission that leaves room everywhere, untouched by a peek.
func TestSmallCounterLimited(t *testing.T) {
	p := window.Policy{Algorithm: window.SlidingCounter, Windows: []window.Window{{Length: time.Minute, Limit: 60}, {Length: time.Second, Limit: 2}}}
	var c window.SmallCounter
	steps := []struct {
		at      time.Duration
		allowed bool
		limited bool
	}{
		{0, true, false},
		{10 * time.Millisecond, true, true}, // second window used up
		{20 * time.Millisecond, false, true},
		{5 * time.Second, true, false},
	}
	for i, s := range steps {
		d := c.TakeAt(t0.Add(s.at), &p, 1)
		if d.Allowed != s.allowed || c.Limited() != s.limited {
			t.Fatalf("step %d: allowed %v limited %v, want %v %v", i, d.Allowed, c.Limited(), s.allowed, s.limited)
		}
	}
	c.PeekAt(t0.Add(5*time.Second+time.Millisecond), &p)
	if c.Limited() {
		t.Fatal("a peek set the flag")
	}
	c.Reset()
	if c != (window.SmallCounter{}) {
		t.Fatal("Reset left state")
	}
}
