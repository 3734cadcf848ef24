package breaker

import (
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// breakerClock is a manual clock for breaker tests.
type breakerClock struct{ t atomic.Int64 }

var breakerT0 = time.UnixMilli(1_700_000_000_000)

func (c *breakerClock) now() time.Time       { return breakerT0.Add(time.Duration(c.t.Load())) }
func (c *breakerClock) set(at time.Duration) { c.t.Store(int64(at)) }

// breakerOp is one call in a step table.
type breakerOp uint8

const (
	brkAllow     breakerOp = iota // allow(); check probe and ok
	brkOK                         // success(false)
	brkFail                       // failure(false)
	brkProbeOK                    // success(true)
	brkProbeFail                  // failure(true)
)

func (o breakerOp) String() string {
	return [...]string{"allow()", "success(false)", "failure(false)", "success(true)", "failure(true)"}[o]
}

type breakerStep struct {
	at        time.Duration // since t0
	op        breakerOp
	wantProbe bool // brkAllow only
	wantOK    bool // brkAllow only
	want      State
}

func TestBreakerSteps(t *testing.T) {
	// Named instants for Failures: 3, Cooldown: 1s.
	const (
		t0         = 0
		cool       = time.Second
		justBefore = cool - time.Nanosecond
	)
	cfg := Config{Failures: 3, Cooldown: cool}
	tests := []struct {
		name  string
		cfg   Config
		steps []breakerStep
		// transitions expected from onChange, as "from>to"
		changes []string
	}{
		{
			name: "success resets the consecutive count",
			cfg:  cfg,
			steps: []breakerStep{
				{at: t0, op: brkAllow, wantOK: true, want: Closed},
				{at: t0, op: brkFail, want: Closed},
				{at: t0, op: brkFail, want: Closed},
				{at: t0, op: brkOK, want: Closed},
				{at: t0, op: brkFail, want: Closed},
				{at: t0, op: brkFail, want: Closed},
				{at: t0, op: brkAllow, wantOK: true, want: Closed},
				{at: t0, op: brkFail, want: Open}, // third in a row
			},
			changes: []string{"closed>open"},
		},
		{
			name: "open until the cooldown, one probe, probe success closes",
			cfg:  cfg,
			steps: []breakerStep{
				{at: t0, op: brkFail}, {at: t0, op: brkFail}, {at: t0, op: brkFail, want: Open},
				{at: t0, op: brkAllow, wantOK: false, want: Open},
				{at: justBefore, op: brkAllow, wantOK: false, want: Open},
				{at: cool, op: brkAllow, wantProbe: true, wantOK: true, want: HalfOpen},
				{at: cool, op: brkAllow, wantOK: false, want: HalfOpen}, // probe in flight
				{at: cool + 500*time.Millisecond, op: brkAllow, wantOK: false, want: HalfOpen},
				{at: cool + 500*time.Millisecond, op: brkProbeOK, want: Closed},
				{at: cool + 500*time.Millisecond, op: brkAllow, wantOK: true, want: Closed},
				// the count starts again from zero
				{at: cool + 500*time.Millisecond, op: brkFail, want: Closed},
				{at: cool + 500*time.Millisecond, op: brkFail, want: Closed},
			},
			changes: []string{"closed>open", "open>half-open", "half-open>closed"},
		},
		{
			name: "probe failure reopens for a full cooldown from the failure",
			cfg:  cfg,
			steps: []breakerStep{
				{at: t0, op: brkFail}, {at: t0, op: brkFail}, {at: t0, op: brkFail, want: Open},
				{at: cool, op: brkAllow, wantProbe: true, wantOK: true, want: HalfOpen},
				{at: cool + 200*time.Millisecond, op: brkProbeFail, want: Open},
				{at: cool + 200*time.Millisecond, op: brkAllow, wantOK: false, want: Open},
				{at: 2*cool + 200*time.Millisecond - time.Nanosecond, op: brkAllow, wantOK: false, want: Open},
				{at: 2*cool + 200*time.Millisecond, op: brkAllow, wantProbe: true, wantOK: true, want: HalfOpen},
				{at: 2*cool + 300*time.Millisecond, op: brkProbeOK, want: Closed},
			},
			changes: []string{"closed>open", "open>half-open", "half-open>open", "open>half-open", "half-open>closed"},
		},
		{
			name: "a probe that never reports is replaced after a cooldown",
			cfg:  cfg,
			steps: []breakerStep{
				{at: t0, op: brkFail}, {at: t0, op: brkFail}, {at: t0, op: brkFail, want: Open},
				{at: cool, op: brkAllow, wantProbe: true, wantOK: true, want: HalfOpen},
				{at: 2*cool - time.Nanosecond, op: brkAllow, wantOK: false, want: HalfOpen},
				{at: 2 * cool, op: brkAllow, wantProbe: true, wantOK: true, want: HalfOpen},
				{at: 2 * cool, op: brkAllow, wantOK: false, want: HalfOpen},
				{at: 2*cool + time.Millisecond, op: brkProbeFail, want: Open},
			},
			// the replacement is not a transition
			changes: []string{"closed>open", "open>half-open", "half-open>open"},
		},
		{
			name: "reports from calls that are not the probe change nothing once open",
			cfg:  cfg,
			steps: []breakerStep{
				{at: t0, op: brkFail}, {at: t0, op: brkFail}, {at: t0, op: brkFail, want: Open},
				{at: t0, op: brkOK, want: Open},   // let through before it opened
				{at: t0, op: brkFail, want: Open}, // likewise
				{at: cool, op: brkAllow, wantProbe: true, wantOK: true, want: HalfOpen},
				{at: cool, op: brkOK, want: HalfOpen},
				{at: cool, op: brkFail, want: HalfOpen},
				{at: cool, op: brkProbeOK, want: Closed},
				// a late duplicate probe report in the closed state counts as an ordinary one
				{at: cool, op: brkProbeOK, want: Closed},
			},
			changes: []string{"closed>open", "open>half-open", "half-open>closed"},
		},
		{
			name: "zero value: 5 failures, 1s",
			cfg:  Config{},
			steps: []breakerStep{
				{at: t0, op: brkFail}, {at: t0, op: brkFail}, {at: t0, op: brkFail}, {at: t0, op: brkFail},
				{at: t0, op: brkAllow, wantOK: true, want: Closed},
				{at: t0, op: brkFail, want: Open},
				{at: time.Second - time.Nanosecond, op: brkAllow, wantOK: false, want: Open},
				{at: time.Second, op: brkAllow, wantProbe: true, wantOK: true, want: HalfOpen},
			},
			changes: []string{"closed>open", "open>half-open"},
		},
		{
			name: "disabled never opens",
			cfg:  Config{Failures: 1, Disabled: true},
			steps: []breakerStep{
				{at: t0, op: brkFail}, {at: t0, op: brkFail}, {at: t0, op: brkFail},
				{at: t0, op: brkAllow, wantOK: true, want: Closed},
				{at: t0, op: brkProbeFail, want: Closed},
				{at: t0, op: brkAllow, wantOK: true, want: Closed},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var clk breakerClock
			var changes []string
			b := New(tc.cfg, clk.now, func(from, to State) {
				changes = append(changes, from.String()+">"+to.String())
			})
			for i, s := range tc.steps {
				clk.set(s.at)
				switch s.op {
				case brkAllow:
					probe, ok := b.Allow()
					if probe != s.wantProbe || ok != s.wantOK {
						t.Errorf("step %d at t0+%v: allow() = (probe %v, ok %v), want (%v, %v)", i, s.at, probe, ok, s.wantProbe, s.wantOK)
					}
				case brkOK, brkProbeOK:
					b.Success(s.op == brkProbeOK)
				case brkFail, brkProbeFail:
					b.Failure(s.op == brkProbeFail)
				}
				if got := b.State(); got != s.want {
					t.Errorf("step %d at t0+%v: after %v state() = %v, want %v", i, s.at, s.op, got, s.want)
				}
			}
			if got, want := strings.Join(changes, " "), strings.Join(tc.changes, " "); got != want {
				t.Errorf("onChange calls = %q, want %q", got, want)
			}
		})
	}
}

func TestBreakerStateString(t *testing.T) {
	for s, want := range map[State]string{
		Closed: "closed", HalfOpen: "half-open", Open: "open", 7: "State(7)",
	} {
		if got := s.String(); got != want {
			t.Errorf("State(%d).String() = %q, want %q", uint8(s), got, want)
		}
	}
	// The gauge exports the numeric values.
	if Closed != 0 || HalfOpen != 1 || Open != 2 {
		t.Errorf("states = %d, %d, %d; want 0, 1, 2", Closed, HalfOpen, Open)
	}
}

// openBreaker fails b until it opens.
func openBreaker(t *testing.T, b *Breaker) {
	t.Helper()
	for b.State() != Open {
		if _, ok := b.Allow(); !ok {
			t.Fatalf("allow() refused in state %v", b.State())
		}
		b.Failure(false)
	}
}

// TestBreakerOneProbe: after the cooldown, of 100 callers arriving together
// exactly one is the probe and everybody else is refused; that holds round
// after round whether the probe fails, succeeds, or is lost.
func TestBreakerOneProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const callers = 100
		b := New(Config{Failures: 2, Cooldown: 250 * time.Millisecond}, time.Now, nil)
		for round := range 6 {
			if b.State() == Closed {
				openBreaker(t, b)
			}
			time.Sleep(250 * time.Millisecond)
			var probes, admitted atomic.Int32
			start := make(chan struct{})
			var wg, decided sync.WaitGroup
			decided.Add(callers)
			for range callers {
				wg.Go(func() {
					<-start
					probe, ok := b.Allow()
					decided.Done()
					if ok {
						admitted.Add(1)
					}
					if probe {
						probes.Add(1)
						// Report only once everybody has asked: a success
						// would rightly admit later callers.
						decided.Wait()
						switch round % 3 {
						case 0:
							b.Failure(true)
						case 1:
							b.Success(true)
						case 2: // lost: never reports
						}
					}
				})
			}
			close(start)
			wg.Wait()
			if probes.Load() != 1 || admitted.Load() != 1 {
				t.Fatalf("round %d: %d concurrent allow() calls gave %d probes and %d admissions, want 1 and 1",
					round, callers, probes.Load(), admitted.Load())
			}
			want := [...]State{Open, Closed, HalfOpen}[round%3]
			if got := b.State(); got != want {
				t.Fatalf("round %d: state() = %v, want %v", round, got, want)
			}
		}
	})
}

// TestBreakerChangesOrdered hammers a breaker from many goroutines and checks
// that onChange saw a consistent chain of transitions (each from is the
// previous to) ending in the breaker's state: a gauge set from it is right.
func TestBreakerChangesOrdered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var changes []transition
		var b *Breaker
		b = New(Config{Failures: 3, Cooldown: 5 * time.Millisecond}, time.Now, func(from, to State) {
			b.State() // calling back into the breaker must not deadlock
			mu.Lock()
			changes = append(changes, transition{from, to})
			mu.Unlock()
		})
		var wg sync.WaitGroup
		for g := range 16 {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(uint64(g), 1))
				for range 2000 {
					probe, ok := b.Allow()
					if ok {
						if r.IntN(3) == 0 {
							b.Success(probe)
						} else {
							b.Failure(probe)
						}
					}
					if r.IntN(8) == 0 {
						time.Sleep(time.Millisecond)
					}
				}
			})
		}
		wg.Wait()
		if len(changes) < 10 {
			t.Fatalf("only %d transitions; the test exercises too little", len(changes))
		}
		prev := Closed
		for i, c := range changes {
			if c.from != prev || c.from == c.to {
				t.Fatalf("transition %d: %v>%v after %v", i, c.from, c.to, prev)
			}
			prev = c.to
		}
		if got := b.State(); got != prev {
			t.Errorf("state() = %v, last onChange said %v", got, prev)
		}
	})
}

func TestBreakerClosedAllocs(t *testing.T) {
	b := New(Config{}, nil, func(from, to State) {})
	allocs := testing.AllocsPerRun(1000, func() {
		probe, _ := b.Allow()
		b.Success(probe)
	})
	if allocs != 0 {
		t.Errorf("allow()+success() in the closed state: %v allocations, want 0", allocs)
	}
}

// BenchmarkBreaker measures the breaker's per-request cost: allow and
// success in the closed state (the path every healthy request takes), and
// allow in the open state (a refusal, which reads the clock).
func BenchmarkBreaker(b *testing.B) {
	b.Run("closed/serial", func(b *testing.B) {
		br := New(Config{}, nil, nil)
		b.ReportAllocs()
		for b.Loop() {
			probe, ok := br.Allow()
			if ok {
				br.Success(probe)
			}
		}
	})
	b.Run("closed/parallel", func(b *testing.B) {
		br := New(Config{}, nil, nil)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				probe, ok := br.Allow()
				if ok {
					br.Success(probe)
				}
			}
		})
	})
	b.Run("open/parallel", func(b *testing.B) {
		br := New(Config{Failures: 1, Cooldown: time.Hour}, nil, nil)
		br.Failure(false)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, ok := br.Allow(); ok {
					b.Error("allow() admitted a request while open")
				}
			}
		})
	})
}
