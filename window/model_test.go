package window_test

import (
	"flag"
	"fmt"
	"testing"
	"time"

	"github.com/ratekit/ratekit/internal/model"
	"github.com/ratekit/ratekit/window"
)

var (
	seedFlag    = flag.Uint64("seed", 0, "replay only this stream seed")
	streamsFlag = flag.Int("streams", 10000, "random streams per model test")
)

func seeds() []uint64 {
	if *seedFlag != 0 {
		return []uint64{*seedFlag}
	}
	s := make([]uint64, *streamsFlag)
	for i := range s {
		s[i] = uint64(i + 1)
	}
	return s
}

// diff returns a description of the first difference between two
// decisions, or "".
func diff(got, want window.Decision) string {
	if got.Allowed != want.Allowed || got.Limiting != want.Limiting || got.RetryAfter != want.RetryAfter || got.N != want.N {
		return fmt.Sprintf("got allowed=%v limiting=%d retry=%v, want allowed=%v limiting=%d retry=%v",
			got.Allowed, got.Limiting, got.RetryAfter, want.Allowed, want.Limiting, want.RetryAfter)
	}
	for i := range got.N {
		if got.Windows[i] != want.Windows[i] {
			return fmt.Sprintf("window %d: got %+v, want %+v", i, got.Windows[i], want.Windows[i])
		}
	}
	return ""
}

var policies = map[string]window.Policy{
	"lindris": window.Default(),
	"three":   {Windows: []window.Window{{Length: 10 * time.Second, Limit: 7}, {Length: time.Second, Limit: 3}, {Length: 250 * time.Millisecond, Limit: 2}}},
	"one":     {Windows: []window.Window{{Length: 2 * time.Second, Limit: 1}}},
	"wide":    {Windows: []window.Window{{Length: 90 * time.Second, Limit: 20}, {Length: 5 * time.Second, Limit: 4}}},
	// dense allows more requests than its longest window has milliseconds,
	// so admissions in one millisecond merge into one entry.
	"dense": {Windows: []window.Window{{Length: 50 * time.Millisecond, Limit: 60}, {Length: 10 * time.Millisecond, Limit: 20}}},
}

// maxGap is the largest gap between requests of a stream under policy name:
// a few milliseconds for dense, so that many requests share a millisecond.
func maxGap(name string) time.Duration {
	if name == "dense" {
		return time.Millisecond
	}
	return 1500 * time.Millisecond
}

// TestR01ModelEquivalence compares window.Log with the brute-force model
// over 10,000 seeded streams per policy (1–5 keys, gaps of 0–1500 ms, clock
// jumps both ways, costs up to 3, peeks). Replay a failure with -seed.
func TestR01ModelEquivalence(t *testing.T) {
	for name, p := range policies {
		t.Run(name, func(t *testing.T) {
			mismatches := 0
			for _, seed := range seeds() {
				cfg := model.StreamConfig{Ops: 60, Keys: 1 + int(seed%5), MaxGap: maxGap(name),
					MaxCost: 1 + int(seed%3), JumpEvery: 25, MaxJump: 2 * time.Minute, PeekEvery: 10}
				if testing.Short() {
					cfg.Ops = 30
				}
				m := model.New(p)
				logs := make([]window.Log, cfg.Keys)
				for i, op := range model.Stream(seed, cfg) {
					now := t0.Add(op.At)
					key := fmt.Sprint(op.Key)
					var got, want window.Decision
					if op.Peek {
						got, want = logs[op.Key].PeekAt(now, &p), m.Peek(key, now)
					} else {
						got, want = logs[op.Key].TakeAt(now, &p, op.Cost), m.Take(key, now, op.Cost)
					}
					if d := diff(got, want); d != "" {
						mismatches++
						if mismatches <= 5 {
							t.Errorf("seed %d op %d (%+v): %s", seed, i, op, d)
						}
						break
					}
				}
			}
			if mismatches > 0 {
				t.Errorf("%d streams mismatched the model (replay with -seed)", mismatches)
			}
		})
	}
}

// TestModelEquivalenceAroundTheEpoch: the same comparison with streams that
// start a few seconds before the Unix epoch, so that instants are negative,
// zero and positive milliseconds (a fake clock may hand out any of them).
func TestModelEquivalenceAroundTheEpoch(t *testing.T) {
	p := policies["three"]
	for seed := uint64(1); seed <= 2000; seed++ {
		cfg := model.StreamConfig{Ops: 40, Keys: 1, MaxGap: 400 * time.Millisecond, MaxCost: 2}
		m := model.New(p)
		var l window.Log
		start := time.UnixMilli(-int64(seed % 5000))
		for i, op := range model.Stream(seed, cfg) {
			now := start.Add(op.At)
			got, want := l.TakeAt(now, &p, op.Cost), m.Take("k", now, op.Cost)
			if d := diff(got, want); d != "" {
				t.Fatalf("seed %d op %d at %dms: %s", seed, i, now.UnixMilli(), d)
			}
		}
	}
}
