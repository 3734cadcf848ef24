package headers

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ratekit/ratekit/window"
)

// checkValue fails unless v is exactly one string equal to want, with no
// room to append in place (len == cap == 1), as every shared value must be.
func checkValue(t *testing.T, what string, v []string, want string) {
	t.Helper()
	if len(v) != 1 || cap(v) != 1 || v[0] != want {
		t.Errorf("%s = %q (len %d, cap %d), want [%q] with len = cap = 1", what, v, len(v), cap(v), want)
	}
}

// TestIntValues checks every shared integer, the edges of the table, and
// values that must be formatted per call.
func TestIntValues(t *testing.T) {
	for n := range int64(sharedInts) {
		checkValue(t, "intValue("+strconv.FormatInt(n, 10)+")", intValue(n), strconv.FormatInt(n, 10))
	}
	for _, n := range []int64{-1, sharedInts, sharedInts + 1, 86400, 1 << 62, -(1 << 63), 1<<63 - 1} {
		if v := intValue(n); v != nil {
			t.Errorf("intValue(%d) = %q, want nil (not shared)", n, v)
		}
	}
	for _, vals := range [][]int64{
		{0, 1023, 1024, -1, 7, 86400, 1<<63 - 1, 99}, // more than two to format
		{1e9, 5, 999999999},                          // two
		{1 << 40},                                    // one
		{-(1 << 63), 1},
	} {
		out := make([][]string, len(vals))
		intValues(out, vals, 0)
		for i, v := range vals {
			checkValue(t, fmt.Sprintf("intValues[%d] (%d)", i, v), out[i], strconv.FormatInt(v, 10))
		}
	}
}

// TestLargeLimitsShared checks that limits above the shared table are
// formatted once and shared afterwards, that other large values are not
// cached, and that two limits meeting in one slot both come out right.
func TestLargeLimitsShared(t *testing.T) {
	vals := []int64{2e9, 1999999999, 1e9, 999999999}
	out := make([][]string, len(vals))
	intValues(out, vals, 1<<0|1<<2)
	first := [2]*string{&out[0][0], &out[2][0]}
	for i, v := range vals {
		checkValue(t, fmt.Sprintf("intValues[%d] (%d)", i, v), out[i], strconv.FormatInt(v, 10))
	}
	intValues(out, vals, 1<<0|1<<2)
	if &out[0][0] != first[0] || &out[2][0] != first[1] {
		t.Error("a large limit was formatted again instead of shared")
	}
	if allocs := testing.AllocsPerRun(100, func() { intValues(out, vals, 1<<0|1<<2) }); allocs != 1 {
		t.Errorf("%.1f allocations per call with two large limits and two large counts; want 1", allocs)
	}
	if allocs := testing.AllocsPerRun(100, func() { intValues(out[:1], vals[:1], 1) }); allocs != 0 {
		t.Errorf("%.1f allocations per call of a cached limit; want 0", allocs)
	}
	// Find a limit that lands in the same slot as 2e9, and alternate them.
	other := int64(2e9 + 1)
	for limitSlot(other) != limitSlot(2e9) {
		other++
	}
	for range 3 {
		for _, n := range []int64{2e9, other} {
			intValues(out[:1], []int64{n}, 1)
			checkValue(t, fmt.Sprintf("limit %d sharing a slot", n), out[0], strconv.FormatInt(n, 10))
		}
	}
}

// TestLindrisEveryRemaining renders every remaining count of a policy whose
// limits straddle the shared table, in both windows, admitted and refused.
func TestLindrisEveryRemaining(t *testing.T) {
	p := policy(window.Window{Length: time.Minute, Limit: 1500}, window.Window{Length: time.Second, Limit: 1030})
	for rem := 0; rem <= 1500; rem++ {
		second := min(rem, 1030)
		for _, refused := range []bool{false, true} {
			retry := time.Duration(0)
			if refused {
				retry = time.Duration(rem+1) * time.Second
			}
			in := &Input{Policy: p, Decision: decision(0, retry,
				window.State{Limit: 1500, Remaining: rem, Reset: time.Duration(rem) * time.Second},
				window.State{Limit: 1030, Remaining: second, Reset: time.Second})}
			h := http.Header{}
			Lindris{}.WriteHeaders(h, in)
			want := map[string]string{
				"X-Ratelimit-Limit":            "1500",
				"X-Ratelimit-Remaining":        strconv.Itoa(rem),
				"X-Ratelimit-Limit-Second":     "1030",
				"X-Ratelimit-Remaining-Second": strconv.Itoa(second),
				"X-Ratelimit-Reset":            strconv.Itoa(rem),
				"X-Ratelimit-Limited-By":       "minute",
			}
			if refused {
				want["Retry-After"] = strconv.Itoa(max(rem+1, 1))
			}
			if len(h) != len(want) {
				t.Fatalf("remaining %d refused %v: %d fields %v, want %d", rem, refused, len(h), h, len(want))
			}
			for k, w := range want {
				checkValue(t, fmt.Sprintf("remaining %d refused %v: %s", rem, refused, k), h[k], w)
			}
		}
	}
}

// TestSharedValuesSurviveAdd checks that a handler appending to every field
// of one response (which copies, since shared values have no spare
// capacity) leaves the next response's values intact.
func TestSharedValuesSurviveAdd(t *testing.T) {
	custom := policy(window.Window{Name: "burst", Length: time.Second, Limit: 5}, window.Window{Name: "sustained", Length: time.Hour, Limit: 100})
	for _, s := range []struct {
		name  string
		style Style
		p     *window.Policy
	}{{"Lindris", Lindris{}, lindrisPolicy}, {"Lindris/custom", Lindris{}, custom}, {"Scalekit", Scalekit{}, lindrisPolicy}, {"Kinde", Kinde{}, lindrisPolicy}} {
		t.Run(s.name, func(t *testing.T) {
			in := &Input{Now: t0, Policy: s.p, Decision: decision(1, time.Second,
				window.State{Limit: s.p.Windows[0].Limit, Remaining: 1, Reset: time.Second},
				window.State{Limit: s.p.Windows[1].Limit, Remaining: 0, Reset: time.Second})}
			first := http.Header{}
			s.style.WriteHeaders(first, in)
			want := first.Clone()
			for k := range first {
				first.Add(k, "appended")
				first[k] = append(first[k], "again")
			}
			second := http.Header{}
			s.style.WriteHeaders(second, in)
			for k, v := range want {
				checkValue(t, "second response "+k, second[k], v[0])
			}
		})
	}
}

// TestLabelValue checks the shared labels, custom ones (cached) and unsafe
// ones, and that the cache keeps answering correctly past its bound.
func TestLabelValue(t *testing.T) {
	for _, tc := range []struct {
		w    window.Window
		want string
	}{
		{window.Window{Length: time.Second}, "second"},
		{window.Window{Length: time.Minute}, "minute"},
		{window.Window{Length: time.Hour}, "hour"},
		{window.Window{Length: 24 * time.Hour}, "day"},
		{window.Window{Name: "minute", Length: time.Second}, "minute"},
		{window.Window{Name: "second", Length: time.Hour}, "second"},
		{window.Window{Name: "hour"}, "hour"},
		{window.Window{Name: "day"}, "day"},
		{window.Window{Length: 1500 * time.Millisecond}, "1.5s"},
		{window.Window{Name: "burst", Length: time.Second}, "burst"},
		{window.Window{Name: "bad\r\nX-Injected: 1\xff", Length: time.Second}, "bad??X-Injected: 1?"},
	} {
		for range 2 { // a miss, then a hit
			checkValue(t, fmt.Sprintf("labelValue(%+v)", tc.w), labelValue(&tc.w), tc.want)
		}
	}
	// Far more labels than the cache holds: all still right, the cache
	// bounded.
	for i := range 2 * maxLabels {
		w := window.Window{Name: "label-" + strconv.Itoa(i), Length: time.Second}
		checkValue(t, w.Name, labelValue(&w), w.Name)
	}
	if m := labels.m.Load(); m == nil {
		t.Errorf("label cache empty after custom labels")
	} else if len(*m) > maxLabels {
		t.Errorf("label cache holds %d entries, want at most %d", len(*m), maxLabels)
	}
	first := window.Window{Name: "burst"}
	if a, b := labelValue(&first), labelValue(&first); &a[0] != &b[0] {
		t.Errorf("labelValue(burst) not shared between calls")
	}
}

// TestStampCache checks Scalekit's timestamps across second boundaries,
// for instants far apart that share a cache slot, and that equal seconds
// share one value.
func TestStampCache(t *testing.T) {
	p := policy(window.Window{Length: time.Minute, Limit: 60})
	stamp := func(now time.Time, reset time.Duration) []string {
		h := http.Header{}
		Scalekit{}.WriteHeaders(h, &Input{Now: now, Policy: p, Decision: decision(0, 0, window.State{Limit: 60, Remaining: 1, Reset: reset})})
		return h["X-Ratelimit-Reset"]
	}
	base := time.Unix(1_735_787_046, 0)
	for _, tc := range []struct {
		now   time.Time
		reset time.Duration
		want  int64
	}{
		{base, 0, 1_735_787_046},
		{base.Add(time.Nanosecond), 0, 1_735_787_047},
		{base.Add(999 * time.Millisecond), 0, 1_735_787_047},
		{base.Add(time.Second), 0, 1_735_787_047},
		{base.Add(time.Second), time.Millisecond, 1_735_787_047}, // the clock's millisecond is no wait
		{base.Add(time.Second), time.Millisecond + time.Nanosecond, 1_735_787_048},
		{base, 59 * time.Second, 1_735_787_105},
		{base.Add(time.Duration(len(stamps)) * time.Second), 0, 1_735_787_046 + int64(len(stamps))}, // same slot as base
		{base, 0, 1_735_787_046},                                                                    // and back
		{time.Unix(-5, 0), 0, -5},
	} {
		checkValue(t, fmt.Sprintf("stamp(%v + %v)", tc.now, tc.reset), stamp(tc.now, tc.reset), strconv.FormatInt(tc.want, 10))
	}
	if a, b := stamp(base, 0), stamp(base.Add(-time.Millisecond), 0); &a[0] != &b[0] {
		t.Errorf("two responses with the same timestamp got different values")
	}
}

// TestCachesConcurrent renders from many goroutines at once across second
// boundaries and with many labels, so that -race checks the caches, and
// every value read is checked.
func TestCachesConcurrent(t *testing.T) {
	base := time.Unix(1_700_000_000, 0)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				now := base.Add(time.Duration(i*7+g) * 100 * time.Millisecond)
				name := "w" + strconv.Itoa((i+g)%40)
				p := policy(window.Window{Name: name, Length: time.Minute, Limit: 60}, window.Window{Length: time.Second, Limit: 2})
				in := &Input{Now: now, Policy: p, Decision: decision(0, 0,
					window.State{Limit: 60, Remaining: i % 61, Reset: time.Duration(i%60) * time.Second},
					window.State{Limit: 2, Remaining: 1, Reset: time.Second})}
				h := http.Header{}
				Multi(Lindris{}, Scalekit{}).WriteHeaders(h, in)
				at := now.Add(time.Duration(i%60) * time.Second)
				sec := at.Unix()
				if at.Nanosecond() != 0 {
					sec++
				}
				if got, want := h.Get("X-Ratelimit-Reset"), strconv.FormatInt(sec, 10); got != want {
					t.Errorf("Reset = %s, want %s", got, want)
					return
				}
				if got := h.Get("X-Ratelimit-Limited-By"); got != name {
					t.Errorf("Limited-By = %s, want %s", got, name)
					return
				}
				if got, want := h.Get("X-Ratelimit-Remaining-Second"), "1"; got != want {
					t.Errorf("Remaining-Second = %s, want %s", got, want)
					return
				}
			}
		}()
	}
	wg.Wait()
}
