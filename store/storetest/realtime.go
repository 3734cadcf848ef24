package storetest

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/ratekit/ratekit/store"
	"github.com/ratekit/ratekit/window"
)

// NeverEarly checks on the wall clock that st never admits more than a
// window's limit within less than the window's length, measured from the
// start of the call that admitted the first to the return of the call that
// admitted the last: the decision may read a clock of any resolution, so
// only the calls' real bounds are trusted. st must read the real clock (a
// memory store's default Now, Redis's TIME). It is a real-time test: it
// takes about 2.3 s, sleeping between requests, and skips under -short.
//
// One key is limited to 10 per second and asked on the schedule of issue
// 17 item 6: one request, ten at +0.95 s, ten at +1.05 s, then 20 per
// second until +2.3 s. Besides, for 10 ms around each instant at which an
// admission turns one second old, requests are sent back to back: that is
// where a store that lets an entry go as soon as the millisecond readings
// differ by the window's length (its true age can be up to 1 ms less)
// admits early. The memory store did so at 48ab81e: the schedule alone
// caught it in 8 of 20 runs, with the probes in 20 of 20.
func NeverEarly(t *testing.T, st store.Store) {
	t.Helper()
	if testing.Short() {
		t.Skip("real-time test: skipped under -short")
	}
	const limit = 10
	w := window.Window{Length: time.Second, Limit: limit}
	p := window.Policy{Windows: []window.Window{w}}
	var k store.Key
	rand.Read(k[:])
	var planned []time.Duration
	planned = append(planned, 0)
	for range 10 {
		planned = append(planned, 950*time.Millisecond)
	}
	for range 10 {
		planned = append(planned, 1050*time.Millisecond)
	}
	for at := 1100 * time.Millisecond; at <= 2300*time.Millisecond; at += 50 * time.Millisecond {
		planned = append(planned, at)
	}
	const probe = 5 * time.Millisecond // each side of an admission's first birthday

	type call struct{ start, end time.Time }
	var admitted []call
	asked := 0
	take := func() {
		asked++
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		start := time.Now()
		d, err := st.Take(ctx, store.Request{Key: k, Policy: &p, Cost: 1})
		end := time.Now()
		if err != nil {
			t.Fatalf("Take: %v", err)
		}
		if d.Allowed {
			admitted = append(admitted, call{start, end})
		}
	}
	// probing returns whether now is within probe of an admission's first
	// birthday, and else the next instant at which it will be (zero if
	// none).
	probing := func(now time.Time) (bool, time.Time) {
		var next time.Time
		for _, a := range admitted {
			from, to := a.start.Add(w.Length-probe), a.start.Add(w.Length+probe)
			if !now.Before(from) && now.Before(to) {
				return true, time.Time{}
			}
			if now.Before(from) && (next.IsZero() || from.Before(next)) {
				next = from
			}
		}
		return false, next
	}

	base := time.Now()
	for next := 0; ; {
		now := time.Now()
		if next < len(planned) && now.Sub(base) >= planned[next] {
			take()
			next++
			continue
		}
		on, wake := probing(now)
		if on {
			take()
			continue
		}
		if next == len(planned) {
			break
		}
		if at := base.Add(planned[next]); wake.IsZero() || at.Before(wake) {
			wake = at
		}
		time.Sleep(time.Until(wake))
	}

	if len(admitted) <= limit {
		t.Fatalf("%d of %d requests admitted; the schedule should admit more than %d", len(admitted), asked, limit)
	}
	early := 0
	tightest := time.Duration(-1)
	for i := 0; i+limit < len(admitted); i++ {
		first, last := admitted[i], admitted[i+limit]
		got := last.end.Sub(first.start)
		if tightest < 0 || got < tightest {
			tightest = got
		}
		if got < w.Length {
			if early++; early <= 3 {
				t.Errorf("admissions %d to %d (%d, limit %d per %v) all within %v: the first call started at +%v, the last returned at +%v",
					i+1, i+limit+1, limit+1, limit, w.Length, got, first.start.Sub(base), last.end.Sub(base))
			}
		}
	}
	if early > 3 {
		t.Errorf("%d runs of %d admissions within less than %v in all", early, limit+1, w.Length)
	}
	t.Logf("%d of %d requests admitted over %v; the tightest %d admissions took %v",
		len(admitted), asked, time.Since(base).Round(time.Millisecond), limit+1, tightest)
}
