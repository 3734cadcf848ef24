package storetest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ratekit/ratekit/internal/model"
	"github.com/ratekit/ratekit/store"
	"github.com/ratekit/ratekit/window"
)

// NewStore returns a fresh store that reads time from clk. It is called once
// per subtest; the store is closed by the suite.
type NewStore func(t *testing.T, clk *Clock) store.Store

// Start is the instant every fake clock starts at.
var Start = time.UnixMilli(1_700_000_000_000)

// Run runs the conformance suite against the stores newStore makes. A store
// passes when it decides exactly as the brute-force reference model does.
//
// Streams include clock steps backwards. A store that reclaims idle keys in
// the background must not do so while the suite runs (use a long interval):
// a reclaimed key forgets entries that a later backward step would have
// brought back into its windows.
//
// Under -short the model comparison uses 500 streams instead of 10,000.
func Run(t *testing.T, newStore NewStore) {
	t.Helper()
	RunOptions(t, Options{}, newStore)
}

// Options sizes the suite.
type Options struct {
	// Streams is the number of random streams per policy in the model
	// comparison. Zero means 10,000, or 500 under -short. A store behind a
	// network round trip (Redis) may choose fewer to stay within go test's
	// timeout; every stream is still compared exactly.
	Streams int
}

// RunOptions is [Run] with the suite sized by o.
func RunOptions(t *testing.T, o Options, newStore NewStore) {
	t.Helper()
	salt := make([]byte, 16)
	rand.Read(salt)
	s := &suite{newStore: newStore, salt: salt, streams: o.Streams}
	if s.streams <= 0 {
		s.streams = 10000
		if testing.Short() {
			s.streams = 500
		}
	}
	t.Run("R01ModelEquivalence", s.modelEquivalence)
	t.Run("CounterEquivalence", s.counterEquivalence)
	t.Run("R03Concurrency", s.concurrency)
	t.Run("R06RejectionsAreFree", s.rejectionsAreFree)
	t.Run("R07CrossWindowIsolation", s.crossWindowIsolation)
	t.Run("R08SlidingNotFixed", s.slidingNotFixed)
	t.Run("R09RetryAfterHonesty", s.retryAfterHonesty)
	t.Run("R10KeyIndependence", s.keyIndependence)
	t.Run("R11ClockJumps", s.clockJumps)
	t.Run("R14LimitEdges", s.limitEdges)
	t.Run("InvalidRequests", s.invalidRequests)
	t.Run("Admin", s.admin)
	t.Run("Close", s.close)
}

type suite struct {
	newStore NewStore
	salt     []byte
	streams  int // per policy in the model comparison
}

// open returns a store on a fresh clock, closed when the test ends.
func (s *suite) open(t *testing.T) (store.Store, *Clock) {
	t.Helper()
	clk := NewClock(Start)
	st := s.newStore(t, clk)
	t.Cleanup(func() { st.Close() })
	return st, clk
}

// key derives a store key unique to this run, test and name.
func (s *suite) key(t *testing.T, name string) store.Key {
	h := sha256.New()
	h.Write(s.salt)
	h.Write([]byte(t.Name()))
	h.Write([]byte{0})
	h.Write([]byte(name))
	var k store.Key
	copy(k[:], h.Sum(nil))
	return k
}

func take(t *testing.T, st store.Store, k store.Key, p *window.Policy, cost int) window.Decision {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d, err := st.Take(ctx, store.Request{Key: k, Policy: p, Cost: cost})
	if err != nil {
		t.Fatalf("Take(%v, cost %d) error: %v", k, cost, err)
	}
	return d
}

// Diff describes the first difference between two decisions, or returns "".
func Diff(got, want window.Decision) string {
	if got.Allowed != want.Allowed || got.Limiting != want.Limiting || got.RetryAfter != want.RetryAfter || got.N != want.N {
		return fmt.Sprintf("got allowed=%v limiting=%d retry=%v n=%d, want allowed=%v limiting=%d retry=%v n=%d",
			got.Allowed, got.Limiting, got.RetryAfter, got.N, want.Allowed, want.Limiting, want.RetryAfter, want.N)
	}
	for i := range got.N {
		if got.Windows[i] != want.Windows[i] {
			return fmt.Sprintf("window %d: got %+v, want %+v", i, got.Windows[i], want.Windows[i])
		}
	}
	return ""
}

// Policies are the policies the model comparison runs.
var policies = []struct {
	name string
	p    window.Policy
}{
	{"lindris", window.Default()},
	{"three", window.Policy{Windows: []window.Window{{Length: 10 * time.Second, Limit: 7}, {Length: time.Second, Limit: 3}, {Length: 250 * time.Millisecond, Limit: 2}}}},
	{"wide", window.Policy{Windows: []window.Window{{Length: 90 * time.Second, Limit: 20}, {Length: 5 * time.Second, Limit: 4}}}},
}

// modelEquivalence is catalogue test 1 (and, across stores, test 2): seeded
// random streams of 1–5 keys, gaps of 0–1500 ms, costs up to 3 and clock
// jumps of up to ±2 minutes give the model's decisions exactly.
func (s *suite) modelEquivalence(t *testing.T) {
	for _, pc := range policies {
		t.Run(pc.name, func(t *testing.T) {
			st, clk := s.open(t)
			p := pc.p
			admin, _ := st.(store.Admin)
			mismatches := 0
			for seed := uint64(1); seed <= uint64(s.streams); seed++ {
				cfg := model.StreamConfig{Ops: 40, Keys: 1 + int(seed%5), MaxGap: 1500 * time.Millisecond,
					MaxCost: 1 + int(seed%3), JumpEvery: 20, MaxJump: 2 * time.Minute}
				if admin != nil {
					cfg.PeekEvery = 10
				}
				m := model.New(p)
				for i, op := range model.Stream(seed, cfg) {
					name := fmt.Sprintf("%d/%d", seed, op.Key)
					k := s.key(t, name)
					clk.Set(Start.Add(op.At))
					var got, want window.Decision
					if op.Peek {
						var err error
						got, err = admin.Peek(context.Background(), k, &p)
						if err != nil {
							t.Fatalf("seed %d op %d: Peek error: %v", seed, i, err)
						}
						want = m.Peek(name, clk.Now())
					} else {
						got, want = take(t, st, k, &p, op.Cost), m.Take(name, clk.Now(), op.Cost)
					}
					if d := Diff(got, want); d != "" {
						mismatches++
						if mismatches <= 5 {
							t.Errorf("seed %d op %d (%+v): %s", seed, i, op, d)
						}
						break
					}
				}
			}
			if mismatches > 0 {
				t.Errorf("%d of %d streams mismatched the model", mismatches, s.streams)
			}
		})
	}
}

// counterEquivalence checks the SlidingCounter algorithm against package
// window's Counter, the reference for that algorithm.
func (s *suite) counterEquivalence(t *testing.T) {
	st, clk := s.open(t)
	p := window.Policy{Algorithm: window.SlidingCounter, Windows: []window.Window{{Length: 10 * time.Second, Limit: 9}, {Length: time.Second, Limit: 3}}}
	n := max(s.streams/10, 1)
	for seed := uint64(1); seed <= uint64(n); seed++ {
		refs := make([]window.Counter, 3)
		for i, op := range model.Stream(seed, model.StreamConfig{Ops: 40, Keys: 3, MaxGap: 1500 * time.Millisecond, MaxCost: 2, JumpEvery: 30, MaxJump: time.Minute}) {
			clk.Set(Start.Add(op.At))
			got := take(t, st, s.key(t, fmt.Sprintf("%d/%d", seed, op.Key)), &p, op.Cost)
			want := refs[op.Key].TakeAt(clk.Now(), &p, op.Cost)
			if d := Diff(got, want); d != "" {
				t.Fatalf("seed %d op %d (%+v): %s", seed, i, op, d)
			}
		}
	}
}

// concurrency is catalogue test 3: 1,000 simultaneous requests on one key
// admit exactly 2 under the default policy.
func (s *suite) concurrency(t *testing.T) {
	st, _ := s.open(t)
	p := window.Default()
	k := s.key(t, "hot")
	var admitted, rejected, failed atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			d, err := st.Take(context.Background(), store.Request{Key: k, Policy: &p, Cost: 1})
			switch {
			case err != nil:
				failed.Add(1)
			case d.Allowed:
				admitted.Add(1)
			default:
				rejected.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	if admitted.Load() != 2 || rejected.Load() != 998 || failed.Load() != 0 {
		t.Errorf("1,000 concurrent Takes: %d admitted, %d rejected, %d errors; want 2, 998, 0",
			admitted.Load(), rejected.Load(), failed.Load())
	}
}

// rejectionsAreFree is catalogue test 6.
func (s *suite) rejectionsAreFree(t *testing.T) {
	st, clk := s.open(t)
	p := window.Default()
	k := s.key(t, "k")
	take(t, st, k, &p, 1)
	clk.Advance(100 * time.Millisecond)
	take(t, st, k, &p, 1)
	var last window.Decision
	for i := range 500 {
		clk.Advance(time.Millisecond)
		if last = take(t, st, k, &p, 1); last.Allowed {
			t.Fatalf("request %d after 2 admitted in the same second was admitted", i+3)
		}
	}
	clk.Advance(last.RetryAfter)
	d := take(t, st, k, &p, 1)
	if !d.Allowed || d.Windows[0].Remaining != 57 {
		t.Errorf("after waiting RetryAfter: allowed=%v minute remaining=%d, want true, 57", d.Allowed, d.Windows[0].Remaining)
	}
}

// crossWindowIsolation is catalogue test 7: rejected requests leave every
// window exactly as it was.
func (s *suite) crossWindowIsolation(t *testing.T) {
	for _, tc := range []struct {
		name  string
		p     window.Policy
		admit int
		gap   time.Duration
	}{
		{"minute full", window.Policy{Windows: []window.Window{{Length: time.Minute, Limit: 5}, {Length: time.Second, Limit: 2}}}, 5, 600 * time.Millisecond},
		{"second full", window.Default(), 2, 10 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, clk := s.open(t)
			admin := needAdmin(t, st)
			k := s.key(t, "k")
			for range tc.admit {
				if d := take(t, st, k, &tc.p, 1); !d.Allowed {
					t.Fatal("setup request rejected")
				}
				clk.Advance(tc.gap)
			}
			before, _ := admin.Peek(context.Background(), k, &tc.p)
			for range 100 {
				if d := take(t, st, k, &tc.p, 1); d.Allowed {
					t.Fatal("request admitted into a full window")
				}
			}
			after, _ := admin.Peek(context.Background(), k, &tc.p)
			if d := Diff(after, before); d != "" {
				t.Errorf("100 rejections changed the state: %s", d)
			}
		})
	}
}

// needAdmin returns st as a store.Admin, or skips the test.
func needAdmin(t *testing.T, st store.Store) store.Admin {
	t.Helper()
	a, ok := st.(store.Admin)
	if !ok {
		t.Skip("store does not implement store.Admin")
	}
	return a
}

// slidingNotFixed is catalogue test 8.
func (s *suite) slidingNotFixed(t *testing.T) {
	st, clk := s.open(t)
	p := window.Policy{Windows: []window.Window{{Length: time.Minute, Limit: 60}, {Length: time.Second, Limit: 1000}}}
	k := s.key(t, "k")
	clk.Set(Start.Add(59900 * time.Millisecond))
	for i := range 60 {
		if !take(t, st, k, &p, 1).Allowed {
			t.Fatalf("request %d at 59.9s rejected", i)
		}
	}
	clk.Set(Start.Add(60100 * time.Millisecond))
	for range 60 {
		if take(t, st, k, &p, 1).Allowed {
			t.Fatal("admitted at 60.1s: the minute is sliding, not fixed")
		}
	}
	// The 59.9s requests count until the clock reads more than a minute
	// after them (see window.Window).
	clk.Set(Start.Add(119900 * time.Millisecond))
	if take(t, st, k, &p, 1).Allowed {
		t.Fatal("admitted at 119.9s, before the 59.9s requests leave the window")
	}
	clk.Set(Start.Add(119901 * time.Millisecond))
	if !take(t, st, k, &p, 1).Allowed {
		t.Fatal("rejected at 119.901s, after the 59.9s requests left the window")
	}
}

// retryAfterHonesty is catalogue test 9: for every rejection in a random
// stream, a retry one second before RetryAfter (rounded up to whole seconds,
// as headers send it) is still rejected and a retry at RetryAfter admitted.
func (s *suite) retryAfterHonesty(t *testing.T) {
	st, clk := s.open(t)
	admin := needAdmin(t, st)
	p := window.Default()
	checked := 0
	for seed := uint64(1); seed <= 50; seed++ {
		k := s.key(t, fmt.Sprint(seed))
		base := Start.Add(time.Duration(seed) * time.Hour)
		for _, op := range model.Stream(seed, model.StreamConfig{Ops: 200, Keys: 1, MaxGap: 700 * time.Millisecond}) {
			now := base.Add(op.At)
			clk.Set(now)
			d := take(t, st, k, &p, 1)
			if d.Allowed {
				continue
			}
			if d.RetryAfter <= 0 {
				t.Fatalf("seed %d: rejection with RetryAfter %v", seed, d.RetryAfter)
			}
			secs := (d.RetryAfter + time.Second - 1) / time.Second * time.Second
			clk.Set(now.Add(secs - time.Second))
			if early, _ := admin.Peek(context.Background(), k, &p); early.Allowed {
				t.Fatalf("seed %d: Retry-After %v but admitted %v earlier", seed, secs, time.Second)
			}
			clk.Set(now.Add(secs))
			if on, _ := admin.Peek(context.Background(), k, &p); !on.Allowed {
				t.Fatalf("seed %d: rejected after waiting Retry-After %v", seed, secs)
			}
			clk.Set(now.Add(d.RetryAfter - time.Millisecond))
			if early, _ := admin.Peek(context.Background(), k, &p); early.Allowed {
				t.Fatalf("seed %d: admitted 1ms before RetryAfter %v", seed, d.RetryAfter)
			}
			checked++
		}
	}
	if checked < 100 {
		t.Fatalf("only %d rejections checked; the stream is too gentle", checked)
	}
}

// keyIndependence is catalogue test 10: 10,000 other keys firing at once do
// not change a victim key's answers.
func (s *suite) keyIndependence(t *testing.T) {
	st, clk := s.open(t)
	p := window.Default()
	victim := s.key(t, "victim")
	others := 10000
	if testing.Short() {
		others = 1000
	}
	for sec := range 3 {
		var wg sync.WaitGroup
		var admitted atomic.Int64
		sem := make(chan struct{}, 64)
		for i := range others {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				st.Take(context.Background(), store.Request{Key: s.key(t, fmt.Sprint(i)), Policy: &p, Cost: 1})
			}()
			if i%(others/5) == 0 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					d, err := st.Take(context.Background(), store.Request{Key: victim, Policy: &p, Cost: 1})
					if err == nil && d.Allowed {
						admitted.Add(1)
					}
				}()
			}
		}
		wg.Wait()
		if admitted.Load() != 2 {
			t.Errorf("second %d: victim admitted %d of 5, want 2", sec, admitted.Load())
		}
		// Past the second: an entry counts until the clock reads more than
		// a second after it (see window.Window).
		clk.Advance(time.Second + time.Millisecond)
	}
}

// clockJumps is catalogue test 11: the clock steps back and forward an
// hour; nothing panics, no admission exceeds the limits and no rejection
// says to retry after zero or less.
func (s *suite) clockJumps(t *testing.T) {
	st, clk := s.open(t)
	p := window.Default()
	keys := []store.Key{s.key(t, "a"), s.key(t, "b")}
	admittedIn := map[int64]int{} // per fake-clock second, per key 0
	for i := range 400 {
		switch i {
		case 100:
			clk.Advance(-time.Hour)
		case 250:
			clk.Advance(time.Hour)
		}
		clk.Advance(137 * time.Millisecond)
		for j, k := range keys {
			d := take(t, st, k, &p, 1)
			if !d.Allowed && d.RetryAfter <= 0 {
				t.Fatalf("op %d: rejected with RetryAfter %v", i, d.RetryAfter)
			}
			if d.Allowed && j == 0 {
				admittedIn[clk.Now().UnixMilli()/1000]++
			}
		}
	}
	for sec, n := range admittedIn {
		if n > 2 {
			t.Errorf("%d requests admitted in clock second %d, limit 2", n, sec)
		}
	}
	// The key that was busy before the jump back is still tracked, not purged.
	if a, ok := st.(store.Admin); ok {
		if d, _ := a.Peek(context.Background(), keys[1], &p); d.Windows[0].Remaining == 60 {
			t.Error("key lost its minute window across the clock jumps")
		}
	}
}

// limitEdges is catalogue test 14 at the store level.
func (s *suite) limitEdges(t *testing.T) {
	for _, tc := range []struct {
		name   string
		p      window.Policy
		cost   int
		admits int // consecutive admissions at one instant
	}{
		{"limit 1", window.Policy{Windows: []window.Window{{Length: time.Second, Limit: 1}}}, 1, 1},
		{"MaxInt32 cost MaxInt32", window.Policy{Windows: []window.Window{{Length: time.Hour, Limit: math.MaxInt32}}}, math.MaxInt32, 1},
		{"MaxInt32 large costs", window.Policy{Windows: []window.Window{{Length: time.Hour, Limit: math.MaxInt32}}}, math.MaxInt32 / 3, 3},
		{"1ms window", window.Policy{Windows: []window.Window{{Length: time.Millisecond, Limit: 2}}}, 1, 2},
		{"24h window", window.Policy{Windows: []window.Window{{Length: 24 * time.Hour, Limit: 3}, {Length: time.Millisecond, Limit: 3}}}, 1, 3},
		{"cost above limit", window.Policy{Windows: []window.Window{{Length: time.Second, Limit: 5}}}, 6, 0},
		{"counter MaxInt32", window.Policy{Algorithm: window.SlidingCounter, Windows: []window.Window{{Length: 24 * time.Hour, Limit: math.MaxInt32}}}, math.MaxInt32 / 2, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, clk := s.open(t)
			k := s.key(t, "k")
			for i := range tc.admits {
				if d := take(t, st, k, &tc.p, tc.cost); !d.Allowed {
					t.Fatalf("take %d of %d rejected: %+v", i+1, tc.admits, d)
				}
			}
			d := take(t, st, k, &tc.p, tc.cost)
			if d.Allowed {
				t.Fatalf("take %d admitted above the limit: %+v", tc.admits+1, d)
			}
			if d.RetryAfter <= 0 {
				t.Fatalf("rejection with RetryAfter %v", d.RetryAfter)
			}
			if tc.admits == 0 {
				return
			}
			clk.Advance(d.RetryAfter)
			if d := take(t, st, k, &tc.p, tc.cost); !d.Allowed {
				t.Fatalf("rejected after waiting RetryAfter: %+v", d)
			}
		})
	}
}

func (s *suite) invalidRequests(t *testing.T) {
	st, _ := s.open(t)
	p := window.Default()
	for _, req := range []store.Request{
		{Key: s.key(t, "k"), Policy: nil, Cost: 1},
		{Key: s.key(t, "k"), Policy: &window.Policy{}, Cost: 1},
		{Key: s.key(t, "k"), Policy: &p, Cost: 0},
		{Key: s.key(t, "k"), Policy: &p, Cost: -5},
	} {
		if _, err := st.Take(context.Background(), req); !errors.Is(err, store.ErrInvalidRequest) {
			t.Errorf("Take(%+v) error = %v, want ErrInvalidRequest", req, err)
		}
	}
}

func (s *suite) admin(t *testing.T) {
	st, clk := s.open(t)
	a := needAdmin(t, st)
	p := window.Default()
	k, other := s.key(t, "k"), s.key(t, "other")
	ctx := context.Background()
	d, err := a.Peek(ctx, k, &p)
	if err != nil || !d.Allowed || d.Windows[0].Remaining != 60 || d.Windows[1].Remaining != 2 {
		t.Fatalf("Peek(new key) = %+v, %v; want allowed with 60 and 2 remaining", d, err)
	}
	take(t, st, k, &p, 1)
	take(t, st, other, &p, 1)
	clk.Advance(10 * time.Millisecond)
	take(t, st, k, &p, 1)
	for range 3 {
		d, _ = a.Peek(ctx, k, &p)
	}
	if d.Allowed || d.Windows[0].Remaining != 58 || d.RetryAfter != 991*time.Millisecond {
		t.Fatalf("Peek(full second) = %+v; want rejected, 58 remaining, retry 991ms", d)
	}
	// Refused twice running, as a store may remember a hot key's refusal.
	for range 2 {
		if d = take(t, st, k, &p, 1); d.Allowed {
			t.Fatalf("Take(full second) = %+v; want rejected", d)
		}
	}
	if err := a.Reset(ctx, k); err != nil {
		t.Fatalf("Reset error: %v", err)
	}
	if d, _ = a.Peek(ctx, k, &p); !d.Allowed || d.Windows[0].Remaining != 60 {
		t.Fatalf("Peek after Reset = %+v; want a fresh key", d)
	}
	if d, _ = a.Peek(ctx, other, &p); d.Windows[0].Remaining != 59 {
		t.Fatalf("Reset(k) changed another key: %+v", d)
	}
	if d = take(t, st, k, &p, 1); !d.Allowed || d.Windows[0].Remaining != 59 {
		t.Fatalf("Take after Reset = %+v; want admitted with 59 left", d)
	}
}

func (s *suite) close(t *testing.T) {
	st, _ := s.open(t)
	p := window.Default()
	take(t, st, s.key(t, "k"), &p, 1)
	if err := st.Close(); err != nil {
		t.Fatalf("Close error: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("second Close error: %v", err)
	}
	if _, err := st.Take(context.Background(), store.Request{Key: s.key(t, "k"), Policy: &p, Cost: 1}); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Take after Close error = %v, want ErrClosed", err)
	}
}
