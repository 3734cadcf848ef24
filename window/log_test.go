package window_test

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/ratekit/ratekit/window"
)

// t0 is an arbitrary instant well away from the Unix epoch.
var t0 = time.UnixMilli(1_700_000_000_000)

type step struct {
	name      string
	at        time.Duration // offset from t0
	n         int
	ok        bool
	remaining []int
	limiting  int
	retry     time.Duration // expected RetryAfter (0 when ok)
}

func runSteps(t *testing.T, take func(time.Time, *window.Policy, int) window.Decision, p window.Policy, steps []step) {
	t.Helper()
	for _, s := range steps {
		d := take(t0.Add(s.at), &p, s.n)
		if d.Allowed != s.ok {
			t.Errorf("%s: TakeAt(t0+%v, %d) allowed = %v, want %v", s.name, s.at, s.n, d.Allowed, s.ok)
		}
		for i, want := range s.remaining {
			if got := d.Windows[i].Remaining; got != want {
				t.Errorf("%s: TakeAt(t0+%v) window %d remaining = %d, want %d", s.name, s.at, i, got, want)
			}
		}
		if d.Limiting != s.limiting {
			t.Errorf("%s: TakeAt(t0+%v) limiting = %d, want %d", s.name, s.at, d.Limiting, s.limiting)
		}
		if d.RetryAfter != s.retry {
			t.Errorf("%s: TakeAt(t0+%v) RetryAfter = %v, want %v", s.name, s.at, d.RetryAfter, s.retry)
		}
	}
}

func TestLogLindrisSteps(t *testing.T) {
	const (
		minute = 0
		second = 1
	)
	var l window.Log
	runSteps(t, l.TakeAt, window.Default(), []step{
		{name: "t0", at: 0, n: 1, ok: true, remaining: []int{59, 1}, limiting: second},
		{name: "t0plus400ms", at: 400 * time.Millisecond, n: 1, ok: true, remaining: []int{58, 0}, limiting: second},
		// The second window holds t0 and t0+400ms. t0 counts until its
		// millisecond readings differ by more than a second, since readings
		// 1000 ms apart may be 999.x ms apart in truth: it leaves at t0+1001ms.
		{name: "t0plus900ms", at: 900 * time.Millisecond, n: 1, ok: false, remaining: []int{58, 0}, limiting: second, retry: 101 * time.Millisecond},
		{name: "t0plus999ms", at: 999 * time.Millisecond, n: 1, ok: false, remaining: []int{58, 0}, limiting: second, retry: 2 * time.Millisecond},
		{name: "t0plus1s", at: time.Second, n: 1, ok: false, remaining: []int{58, 0}, limiting: second, retry: time.Millisecond},
		{name: "t0plus1001ms", at: 1001 * time.Millisecond, n: 1, ok: true, remaining: []int{57, 0}, limiting: second},
		// A cost of 2 needs both entries of the second window gone: t0+400ms left at 1.401s, t0+1001ms leaves at 2.002s.
		{name: "t0plus1500ms cost 2", at: 1500 * time.Millisecond, n: 2, ok: false, remaining: []int{57, 1}, limiting: second, retry: 502 * time.Millisecond},
		{name: "t0plus2001ms cost 2", at: 2001 * time.Millisecond, n: 2, ok: false, remaining: []int{57, 1}, limiting: second, retry: time.Millisecond},
		{name: "t0plus2002ms cost 2", at: 2002 * time.Millisecond, n: 2, ok: true, remaining: []int{55, 0}, limiting: second},
		{name: "cost above every limit", at: 10 * time.Second, n: 61, ok: false, remaining: []int{55, 2}, limiting: minute, retry: time.Minute},
	})
}

func TestLogMinuteWindowBinds(t *testing.T) {
	var l window.Log
	p := window.Policy{Windows: []window.Window{{Length: time.Minute, Limit: 3}, {Length: time.Second, Limit: 2}}}
	runSteps(t, l.TakeAt, p, []step{
		{name: "t0", at: 0, n: 1, ok: true, remaining: []int{2, 1}, limiting: 1},
		{name: "t0plus10s", at: 10 * time.Second, n: 1, ok: true, remaining: []int{1, 1}, limiting: 0},
		{name: "t0plus20s", at: 20 * time.Second, n: 1, ok: true, remaining: []int{0, 1}, limiting: 0},
		{name: "t0plus30s", at: 30 * time.Second, n: 1, ok: false, remaining: []int{0, 2}, limiting: 0, retry: 30*time.Second + time.Millisecond},
		// t0 leaves the minute at t0+60.001s.
		{name: "t0plus60s", at: 60 * time.Second, n: 1, ok: false, remaining: []int{0, 2}, limiting: 0, retry: time.Millisecond},
		{name: "t0plus60001ms", at: 60001 * time.Millisecond, n: 1, ok: true, remaining: []int{0, 1}, limiting: 0},
	})
}

// TestR08SlidingNotFixed: 60 requests at 59.9s fill the minute; nothing is
// admitted at 60.1s (a fixed window would reset there) and the first
// re-admission comes at 119.901s, once the 59.9s entries are surely a
// minute old.
func TestR08SlidingNotFixed(t *testing.T) {
	p := window.Policy{Windows: []window.Window{{Length: time.Minute, Limit: 60}, {Length: time.Second, Limit: 1000}}}
	for _, alg := range []window.Algorithm{window.SlidingLog} {
		p.Algorithm = alg
		var l window.Log
		at := t0.Add(59900 * time.Millisecond)
		for i := range 60 {
			if d := l.TakeAt(at, &p, 1); !d.Allowed {
				t.Fatalf("request %d at 59.9s rejected", i)
			}
		}
		for i := range 60 {
			if d := l.TakeAt(t0.Add(60100*time.Millisecond), &p, 1); d.Allowed {
				t.Fatalf("request %d at 60.1s admitted; sliding window must hold 60 from 59.9s", i)
			}
		}
		if d := l.TakeAt(t0.Add(119900*time.Millisecond), &p, 1); d.Allowed {
			t.Fatal("admitted at 119.9s, before the 59.9s entries leave")
		}
		if d := l.TakeAt(t0.Add(119901*time.Millisecond), &p, 1); !d.Allowed {
			t.Fatal("rejected at 119.901s, after the 59.9s entries left")
		}
	}
}

func TestLogResetReportsOldestExpiry(t *testing.T) {
	var l window.Log
	p := window.Default()
	l.TakeAt(t0, &p, 1)
	d := l.TakeAt(t0.Add(300*time.Millisecond), &p, 1)
	// t0 leaves the second window at t0+1001ms, the minute at t0+60001ms.
	if got, want := d.Windows[1].Reset, 701*time.Millisecond; got != want {
		t.Errorf("second window Reset = %v, want %v", got, want)
	}
	if got, want := d.Windows[0].Reset, 59701*time.Millisecond; got != want {
		t.Errorf("minute window Reset = %v, want %v", got, want)
	}
	pk := l.PeekAt(t0.Add(2*time.Minute), &p)
	if !pk.Allowed || pk.Windows[0].Remaining != 60 || pk.Windows[0].Reset != 0 {
		t.Errorf("PeekAt after expiry = %+v, want allowed, full, no reset", pk)
	}
}

func TestLogClockBackwardsKeepsAges(t *testing.T) {
	var l window.Log
	p := window.Default()
	l.TakeAt(t0, &p, 1)
	l.TakeAt(t0.Add(100*time.Millisecond), &p, 1)
	// The clock steps back an hour: the two entries keep their ages, so the
	// second window is still full for 901ms of elapsed time (t0 leaves at
	// 1001ms of age).
	back := t0.Add(-time.Hour)
	d := l.TakeAt(back, &p, 1)
	if d.Allowed || d.RetryAfter != 901*time.Millisecond {
		t.Fatalf("after -1h: allowed=%v retry=%v, want rejected, 901ms", d.Allowed, d.RetryAfter)
	}
	if d := l.TakeAt(back.Add(900*time.Millisecond), &p, 1); d.Allowed {
		t.Fatalf("after -1h+900ms: admitted, want rejected")
	}
	if d := l.TakeAt(back.Add(901*time.Millisecond), &p, 1); !d.Allowed {
		t.Fatalf("after -1h+901ms: rejected, want admitted")
	}
}

func TestLogWideEncoding(t *testing.T) {
	// A day-long window needs 32-bit offsets.
	p := window.Policy{Windows: []window.Window{{Length: 24 * time.Hour, Limit: 3}}}
	var l window.Log
	for i, at := range []time.Duration{0, 20 * time.Hour, 23 * time.Hour} {
		if d := l.TakeAt(t0.Add(at), &p, 1); !d.Allowed {
			t.Fatalf("take %d rejected", i)
		}
	}
	d := l.TakeAt(t0.Add(23*time.Hour+time.Minute), &p, 1)
	if want := time.Hour - time.Minute + time.Millisecond; d.Allowed || d.RetryAfter != want {
		t.Fatalf("fourth take: allowed=%v retry=%v, want rejected, %v", d.Allowed, d.RetryAfter, want)
	}
}

func TestLogGrowthBoundedByLimit(t *testing.T) {
	p := window.Default()
	var l window.Log
	for i := range 1000 {
		l.TakeAt(t0.Add(time.Duration(i)*500*time.Millisecond), &p, 1)
	}
	if window.LogEntries(&l) > 60 {
		t.Fatalf("Len = %d after a long steady stream, want at most 60", window.LogEntries(&l))
	}
}

// TestLogHugeLimitsMergeMilliseconds checks that exact mode stays sane at
// limits far above what a window can see in distinct milliseconds: 200,000
// admissions spread over two seconds cost at most one entry per millisecond,
// and the decisions stay exact (the minute window counts every one).
func TestLogHugeLimitsMergeMilliseconds(t *testing.T) {
	p := window.Policy{Windows: []window.Window{{Length: time.Minute, Limit: 2_000_000_000}, {Length: time.Second, Limit: 1_000_000_000}}}
	var l window.Log
	const n = 200_000
	for i := range n {
		at := t0.Add(time.Duration(i) * 2 * time.Second / n)
		if d := l.TakeAt(at, &p, 1); !d.Allowed {
			t.Fatalf("request %d rejected: %+v", i, d)
		}
	}
	if window.LogEntries(&l) > 2000 {
		t.Errorf("Len = %d after %d admissions over 2s, want at most 2000 (one per ms)", window.LogEntries(&l), n)
	}
	if got := window.LogBytes(&l); got > 16<<10 {
		t.Errorf("state is %d bytes, want at most 16 KiB", got)
	}
	d := l.PeekAt(t0.Add(2*time.Second), &p)
	if want := 2_000_000_000 - n; d.Windows[0].Remaining != want {
		t.Errorf("minute remaining = %d, want %d", d.Windows[0].Remaining, want)
	}
}

// TestLogSmallLimitsDoNotMerge checks that a policy whose limits are below
// its window's milliseconds keeps one 2-byte instant per admission even when
// requests share a millisecond: merging would add 4 bytes of running totals
// per entry and save nothing, since the limit already bounds the ring.
func TestLogSmallLimitsDoNotMerge(t *testing.T) {
	p := window.Default()
	var l window.Log
	l.TakeAt(t0, &p, 1)
	l.TakeAt(t0, &p, 1)
	if window.LogEntries(&l) != 2 {
		t.Fatalf("Len = %d, want 2 entries", window.LogEntries(&l))
	}
	for i := range 58 {
		l.TakeAt(t0.Add(time.Duration(i+1)*time.Second), &p, 1)
	}
	// 60 entries: 20 bytes of header and 120 of instants.
	if got := window.LogBytes(&l); got != 140 {
		t.Errorf("full default ring is %d bytes, want 140", got)
	}
}

// TestLogRefusalIsReadOnly checks that a refused TakeAt does not write the
// log's state: refusals of one hot key from many goroutines then leave its
// cache lines shared. Under -race (make test) a write would be reported
// against the concurrent reads below; a refusal must also change nothing
// that a later decision sees.
func TestLogRefusalIsReadOnly(t *testing.T) {
	p := window.Policy{Windows: []window.Window{{Length: time.Minute, Limit: 60}, {Length: time.Second, Limit: 2}}}
	var l window.Log
	for i := range 2 {
		if d := l.TakeAt(t0.Add(time.Duration(i)*time.Millisecond), &p, 1); !d.Allowed {
			t.Fatalf("request %d refused", i)
		}
	}
	at := t0.Add(500 * time.Millisecond)
	want := l.PeekAt(at, &p)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for range 200 {
				if d := l.PeekAt(at, &p); d.Allowed {
					t.Error("peek admitted past the per-second limit")
					return
				}
			}
		})
	}
	for range 200 {
		if d := l.TakeAt(at, &p, 1); d.Allowed {
			t.Fatal("admitted past the per-second limit")
		}
	}
	wg.Wait()
	if got := l.PeekAt(at, &p); got != want {
		t.Fatalf("refusals changed the state: peek %+v, was %+v", got, want)
	}
}

// TestLogUnmergeUndoesMergedTake checks the contract stores build batches
// on: a TakeAt at the newest millisecond followed by Unmerge of part of it
// leaves every later decision as if only the rest had been taken. Two logs
// see the same random stream under the merging "dense" policy; the second
// also takes a batch after each admission and gives back a random part of
// it before its next request, after taking the rest one request at a time.
func TestLogUnmergeUndoesMergedTake(t *testing.T) {
	p := window.Policy{Windows: []window.Window{{Length: 50 * time.Millisecond, Limit: 600}, {Length: 10 * time.Millisecond, Limit: 200}}}
	if !window.Merges(&p) {
		t.Fatal("policy does not merge")
	}
	batches := 0
	for seed := uint64(1); seed <= 300; seed++ {
		rng := rand.New(rand.NewPCG(seed, 9))
		var plain, batched window.Log
		at := t0
		for i := range 400 {
			if rng.IntN(3) == 0 {
				at = at.Add(time.Duration(rng.IntN(4)) * time.Millisecond)
			}
			if rng.IntN(50) == 0 {
				at = at.Add(-time.Duration(rng.IntN(5)) * time.Millisecond) // a step back
			}
			cost := 1 + rng.IntN(3)
			want := plain.TakeAt(at, &p, cost)
			got := batched.TakeAt(at, &p, cost)
			if d := diff(got, want); d != "" {
				t.Fatalf("seed %d request %d: %s", seed, i, d)
			}
			if !got.Allowed {
				continue
			}
			// A batch of k more requests of this cost, of which used are
			// then admitted from it and the rest given back.
			k := 1 + rng.IntN(8)
			if b := batched.TakeAt(at, &p, k*cost); !b.Allowed {
				continue
			}
			batches++
			used := rng.IntN(k + 1)
			for range used {
				plain.TakeAt(at, &p, cost)
			}
			if !batched.Unmerge((k - used) * cost) {
				t.Fatalf("seed %d request %d: Unmerge(%d) refused", seed, i, (k-used)*cost)
			}
			if d := diff(batched.PeekAt(at, &p), plain.PeekAt(at, &p)); d != "" {
				t.Fatalf("seed %d request %d, after giving back %d of %d: %s", seed, i, k-used, k, d)
			}
		}
	}
	if batches < 10000 {
		t.Errorf("only %d batches taken; the stream no longer exercises Unmerge", batches)
	}
}

// TestLogUnmergeKeepsTheEntry checks that Unmerge never empties the newest
// entry and does nothing on a log that does not merge.
func TestLogUnmergeKeepsTheEntry(t *testing.T) {
	dense := window.Policy{Windows: []window.Window{{Length: 10 * time.Millisecond, Limit: 100}}}
	var l window.Log
	l.TakeAt(t0, &dense, 1)
	l.TakeAt(t0, &dense, 4) // one entry of 5 units
	if l.Unmerge(5) || l.Unmerge(6) || l.Unmerge(-1) {
		t.Fatal("Unmerge emptied or overdrew the newest entry")
	}
	if !l.Unmerge(0) || !l.Unmerge(4) {
		t.Fatal("Unmerge(4) of a 5-unit entry refused")
	}
	if d := l.PeekAt(t0, &dense); d.Windows[0].Remaining != 99 {
		t.Errorf("remaining %d after giving back 4 of 5, want 99", d.Windows[0].Remaining)
	}
	if l.Unmerge(1) {
		t.Error("Unmerge took the last unit of the entry")
	}
	lindris := window.Default()
	var s window.Log
	s.TakeAt(t0, &lindris, 1)
	s.TakeAt(t0, &lindris, 1)
	if s.Unmerge(1) {
		t.Error("Unmerge changed a log that does not merge")
	}
	var empty window.Log
	if empty.Unmerge(1) {
		t.Error("Unmerge changed an empty log")
	}
}
