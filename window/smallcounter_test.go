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

// TestSmallCounterLimited checks what a store reads before evicting: a key
// is limited after a refusal or an admission that used a window up, for as
// long as the wait implied (rounded up to whole seconds), not after an
// admission that leaves room everywhere; a peek changes nothing; waits of
// 127 s or more saturate to "limited" and leave the end to the holder.
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
		now := t0.Add(s.at)
		d := c.TakeAt(now, &p, 1)
		if d.Allowed != s.allowed || c.LimitedAt(now) != s.limited {
			t.Fatalf("step %d: allowed %v limited %v, want %v %v", i, d.Allowed, c.LimitedAt(now), s.allowed, s.limited)
		}
		if !s.limited {
			continue
		}
		wait := d.RetryAfter
		if d.Allowed {
			wait = d.Windows[1].Reset
		}
		end := now.Add((wait + time.Second - 1) / time.Second * time.Second)
		if !c.LimitedAt(end.Add(-time.Millisecond)) || c.LimitedAt(end) {
			t.Fatalf("step %d: limited for a wait of %v should end at %v", i, wait, end.Sub(now))
		}
	}
	c.PeekAt(t0.Add(5*time.Second+time.Millisecond), &p)
	if c.LimitedAt(t0.Add(5 * time.Second)) {
		t.Fatal("a peek set the flag")
	}

	hour := window.Policy{Algorithm: window.SlidingCounter, Windows: []window.Window{{Length: time.Hour, Limit: 1}}}
	c.Reset()
	c.TakeAt(t0, &hour, 1)
	if !c.LimitedAt(t0.Add(3 * time.Hour)) {
		t.Fatal("a wait of an hour did not saturate to limited")
	}
	c.Reset()
	if c != (window.SmallCounter{}) || c.LimitedAt(t0) {
		t.Fatal("Reset left state")
	}
}
