package redis

import (
	"context"
	"flag"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/ratekit/ratekit/internal/model"
	"github.com/ratekit/ratekit/store"
	"github.com/ratekit/ratekit/store/storetest"
	"github.com/ratekit/ratekit/window"
)

var (
	seedFlag    = flag.Uint64("seed", 0, "replay only this stream seed")
	streamsFlag = flag.Int("streams", 0, "random streams per policy in the model-equivalence tests (0: 40 on miniredis, 150 on redis-server)")
)

// t0 is an arbitrary recent instant, far from 0 so that slot arithmetic
// sees realistic epochs.
var t0 = time.UnixMilli(1_763_800_000_123)

// equivPolicies cover both algorithms, one to four windows, 16- and 32-bit
// instants (longest window above 65535 ms), limits of 1, and two windows of
// the same (longest) length.
var equivPolicies = map[string]window.Policy{
	"lindris":         window.Default(),
	"three":           {Windows: []window.Window{{Length: 10 * time.Second, Limit: 7}, {Length: time.Second, Limit: 3}, {Length: 250 * time.Millisecond, Limit: 2}}},
	"one":             {Windows: []window.Window{{Length: 2 * time.Second, Limit: 1}}},
	"wide":            {Windows: []window.Window{{Length: 90 * time.Second, Limit: 20}, {Length: 5 * time.Second, Limit: 4}}},
	"counter-lindris": {Windows: window.Default().Windows, Algorithm: window.SlidingCounter},
	"counter-three":   {Windows: []window.Window{{Length: 10 * time.Second, Limit: 7}, {Length: time.Second, Limit: 3}, {Length: 250 * time.Millisecond, Limit: 2}}, Algorithm: window.SlidingCounter},
	"counter-wide":    {Windows: []window.Window{{Length: 90 * time.Second, Limit: 20}, {Length: 5 * time.Second, Limit: 4}}, Algorithm: window.SlidingCounter},
	"four":            {Windows: fourWindows},
	"counter-four":    {Windows: fourWindows, Algorithm: window.SlidingCounter},
}

// fourWindows has more windows than the script's tables start with room
// for, and two of the same length, the longest.
var fourWindows = []window.Window{
	{Name: "ten", Length: 10 * time.Second, Limit: 9},
	{Name: "ten-strict", Length: 10 * time.Second, Limit: 6},
	{Length: time.Second, Limit: 3},
	{Length: 250 * time.Millisecond, Limit: 2},
}

func seeds(def int) []uint64 {
	if *seedFlag != 0 {
		return []uint64{*seedFlag}
	}
	n := *streamsFlag
	if n == 0 {
		n = def
	}
	if testing.Short() {
		n /= 10
	}
	s := make([]uint64, n)
	for i := range s {
		s[i] = uint64(i + 1)
	}
	return s
}

// diff describes the first difference between two decisions, or "".
var diff = storetest.Diff

// reference is the in-process answer for one key: window.Log and the
// brute-force model for SlidingLog, window.Counter for SlidingCounter.
type reference struct {
	p   *window.Policy
	log window.Log
	ctr window.Counter
}

func (r *reference) take(now time.Time, cost int) window.Decision {
	if r.p.Algorithm == window.SlidingCounter {
		return r.ctr.TakeAt(now, r.p, cost)
	}
	return r.log.TakeAt(now, r.p, cost)
}

func (r *reference) peek(now time.Time) window.Decision {
	if r.p.Algorithm == window.SlidingCounter {
		return r.ctr.PeekAt(now, r.p)
	}
	return r.log.PeekAt(now, r.p)
}

// runEquivalence replays seeded random streams (1–5 keys, gaps 0–1500 ms,
// clock jumps of up to ±2 min, costs up to 3, peeks) through the store and
// the references and counts the streams that differ anywhere.
func runEquivalence(t *testing.T, c Scripter, streams int) {
	t.Helper()
	runStreams(t, c, streams, equivPolicies, func(seed uint64) model.StreamConfig {
		return model.StreamConfig{Ops: 60, Keys: 1 + int(seed%5), MaxGap: 1500 * time.Millisecond,
			MaxCost: 1 + int(seed%3), JumpEvery: 25, MaxJump: 2 * time.Minute, PeekEvery: 10}
	})
}

// runStreams replays streams shaped by shape through the store and the
// references, for every policy.
func runStreams(t *testing.T, c Scripter, streams int, policies map[string]window.Policy, shape func(seed uint64) model.StreamConfig) {
	t.Helper()
	for name, p := range policies {
		t.Run(name, func(t *testing.T) {
			var now time.Time
			s := newStore(t, c, Config{Prefix: "rkeq-" + fmt.Sprint(time.Now().UnixNano()), Timeout: 5 * time.Second, Now: func() time.Time { return now }})
			t.Cleanup(func() {
				for k := range 5 * len(seeds(streams)) {
					s.Reset(context.Background(), testKey(k))
				}
			})
			ctx := context.Background()
			mismatches := 0
			for si, seed := range seeds(streams) {
				cfg := shape(seed)
				m := model.New(p)
				refs := make([]reference, cfg.Keys)
				for i := range refs {
					refs[i].p = &p
				}
				for i, op := range model.Stream(seed, cfg) {
					now = t0.Add(op.At)
					k := testKey(5*si + op.Key)
					var got, want, viaModel window.Decision
					var err error
					if op.Peek {
						got, err = s.Peek(ctx, k, &p)
						want = refs[op.Key].peek(now)
						viaModel = m.Peek(fmt.Sprint(op.Key), now)
					} else {
						got, err = s.Take(ctx, store.Request{Key: k, Policy: &p, Cost: op.Cost})
						want = refs[op.Key].take(now, op.Cost)
						viaModel = m.Take(fmt.Sprint(op.Key), now, op.Cost)
					}
					if err != nil {
						t.Fatalf("seed %d op %d (%+v): %v", seed, i, op, err)
					}
					d := diff(got, want)
					if d == "" && p.Algorithm == window.SlidingLog {
						d = diff(got, viaModel)
					}
					if d != "" {
						mismatches++
						if mismatches <= 5 {
							t.Errorf("seed %d op %d (%+v): %s", seed, i, op, d)
						}
						break
					}
				}
			}
			t.Logf("%d streams, %d mismatched (replay one with -seed N)", len(seeds(streams)), mismatches)
			if mismatches > 0 {
				t.Errorf("%d streams mismatched the reference", mismatches)
			}
		})
	}
}

// TestR02EquivalenceMiniredis: the same seeded streams through the store on
// miniredis produce exactly window.Log's, window.Counter's and the model's
// decisions: 0 mismatches.
func TestR02EquivalenceMiniredis(t *testing.T) {
	_, c := newMini(t)
	runEquivalence(t, c, 40)
}

// TestR02EquivalenceRealRedis is TestR02EquivalenceMiniredis against a real
// redis-server (REDIS_ADDR, default 127.0.0.1:6379).
func TestR02EquivalenceRealRedis(t *testing.T) {
	c, _ := realClient(t)
	runEquivalence(t, c, 150)
}

// TestR14HugeValuesEquivalence checks the arithmetic at the edges: limits
// of MaxInt32 over windows of up to 30 days and costs up to 2^30, where a
// count times a length exceeds 2^53 and Lua doubles alone would round.
func TestR14HugeValuesEquivalence(t *testing.T) {
	_, c := newMini(t)
	runHugeValues(t, c)
}

// TestR14HugeValuesEquivalenceRealRedis is TestR14HugeValuesEquivalence on
// redis-server's Lua, whose arithmetic is not gopher-lua's.
func TestR14HugeValuesEquivalenceRealRedis(t *testing.T) {
	c, _ := realClient(t)
	runHugeValues(t, c)
}

func runHugeValues(t *testing.T, c Scripter) {
	t.Helper()
	huge := []window.Window{{Length: window.MaxLength, Limit: math.MaxInt32}, {Length: 24 * time.Hour, Limit: math.MaxInt32 - 7}, {Length: time.Hour, Limit: 1 << 30}}
	policies := map[string]window.Policy{
		"log":     {Windows: huge},
		"counter": {Windows: huge, Algorithm: window.SlidingCounter},
	}
	runStreams(t, c, 40, policies, func(seed uint64) model.StreamConfig {
		return model.StreamConfig{Ops: 60, Keys: 1 + int(seed%3), MaxGap: 6 * time.Hour,
			MaxCost: 1 << 30, JumpEvery: 15, MaxJump: 48 * time.Hour, PeekEvery: 10}
	})
}

// TestLogPolicySwitch: one key used alternately with a policy whose
// longest window fits 16-bit instants and one that needs 32-bit instants
// (the store re-encodes the state, as window.Log re-lays its ring). The
// store contract asks for one policy per key; this checks the state stays
// exact anyway for the log.
func TestLogPolicySwitch(t *testing.T) {
	_, c := newMini(t)
	var now time.Time
	s := newStore(t, c, Config{Timeout: 5 * time.Second, Now: func() time.Time { return now }})
	narrow := window.Policy{Windows: []window.Window{{Length: 60 * time.Second, Limit: 30}, {Length: time.Second, Limit: 3}}}
	wide := window.Policy{Windows: []window.Window{{Length: 90 * time.Second, Limit: 40}, {Length: time.Second, Limit: 3}}}
	var ref window.Log
	ops := model.Stream(7, model.StreamConfig{Ops: 400, Keys: 1, MaxGap: 700 * time.Millisecond, MaxCost: 2, JumpEvery: 40, MaxJump: 20 * time.Second})
	for i, op := range ops {
		p := &narrow
		if (i/25)%2 == 1 {
			p = &wide
		}
		now = t0.Add(op.At)
		got, err := s.Take(context.Background(), store.Request{Key: testKey(1), Policy: p, Cost: op.Cost})
		if err != nil {
			t.Fatal(err)
		}
		if d := diff(got, ref.TakeAt(now, p, op.Cost)); d != "" {
			t.Fatalf("op %d (%+v): %s", i, op, d)
		}
	}
}

// mergePolicies are policies whose largest limit exceeds the longest
// window's milliseconds, so same-millisecond admissions merge into one
// entry (window.Log does the same), for 16- and 32-bit instants; and the
// default policy, which merges only once a cost above 1 created running
// totals.
var mergePolicies = map[string]window.Policy{
	"merge-narrow": {Windows: []window.Window{{Length: 20 * time.Millisecond, Limit: 40}, {Length: 5 * time.Millisecond, Limit: 12}}},
	"merge-wide":   {Windows: []window.Window{{Length: 70 * time.Second, Limit: 100_000}, {Length: 10 * time.Millisecond, Limit: 15}}},
	"lindris":      window.Default(),
}

// TestMergeEquivalence replays streams with gaps of 0–2 ms, so a third of
// the requests share a millisecond with the previous one, through the
// store and the references: merging entries changes no decision.
func TestMergeEquivalence(t *testing.T) {
	for _, backend := range []string{"miniredis", "redis-server"} {
		t.Run(backend, func(t *testing.T) {
			// miniredis runs Lua in Go, many times slower: fewer streams.
			var c Scripter
			streams := 60
			if backend == "miniredis" {
				_, c = newMini(t)
				streams = 15
			} else {
				c, _ = realClient(t)
			}
			runStreams(t, c, streams, mergePolicies, func(seed uint64) model.StreamConfig {
				return model.StreamConfig{Ops: 150, Keys: 1 + int(seed%2), MaxGap: 2 * time.Millisecond,
					MaxCost: 1 + int(seed%3), JumpEvery: 30, MaxJump: 30 * time.Millisecond, PeekEvery: 10}
			})
		})
	}
}
