package redis

import (
	"testing"
	"time"

	"github.com/ratekit/ratekit/internal/model"
	"github.com/ratekit/ratekit/window"
)

// TestR05BurstsFollowTheModel: 3 instances, defaults, 60 concurrent
// requests every 1.1 s for 65 s of server time. Each burst admits exactly
// what the reference model admits for the same instants (2 per burst
// until the minute quota is spent, then 0 until the oldest entries slide
// out), so no 1 s span holds more than 2 and no 60 s span more than 60.
// The server clock is miniredis's, stepped with SetTime, so the test takes
// well under a second instead of 65.
func TestR05BurstsFollowTheModel(t *testing.T) {
	m, _ := newMini(t)
	stores := instances(t, m.Addr(), 3, Config{Timeout: 10 * time.Second})
	p := window.Default()
	ref := model.New(p)
	k := testKey(5)
	start := time.UnixMilli(1_763_800_000_000)
	var admittedAt []time.Time
	bursts := 0
	for i := 0; time.Duration(i)*1100*time.Millisecond <= 65*time.Second; i++ {
		bursts++
		now := start.Add(time.Duration(i) * 1100 * time.Millisecond)
		m.SetTime(now)
		want := 0
		for range 60 {
			if ref.Take("k", now, 1).Allowed {
				want++
			}
		}
		a, _, f, err := burst(stores, k, &p, 60)
		if f != 0 {
			t.Fatalf("burst %d: %d failed: %v", i, f, err)
		}
		if int(a) != want {
			t.Errorf("burst %d at +%v: admitted %d, model admits %d", i, now.Sub(start), a, want)
		}
		for range a {
			admittedAt = append(admittedAt, now)
		}
	}
	for i, at := range admittedAt {
		inSecond, inMinute := 0, 0
		for _, other := range admittedAt[i:] {
			if other.Sub(at) < time.Second {
				inSecond++
			}
			if other.Sub(at) < time.Minute {
				inMinute++
			}
		}
		if inSecond > 2 || inMinute > 60 {
			t.Fatalf("from +%v: %d admitted within 1s, %d within 60s", at.Sub(start), inSecond, inMinute)
		}
	}
	t.Logf("%d admitted over %d bursts", len(admittedAt), bursts)
}
