package memory

import (
	"context"
	"testing"
	"time"

	"github.com/ratekit/ratekit/store"
	"github.com/ratekit/ratekit/window"
)

// TestHotRefusalSkipsTheLock checks that a hot key's refusals are answered
// without the shard's lock: the store's clock, read once per decision,
// notes whether the lock was free when it was read.
func TestHotRefusalSkipsTheLock(t *testing.T) {
	var s *Store
	start := time.UnixMilli(1_700_000_000_000)
	var ms int64
	locked, free := 0, 0
	now := func() time.Time {
		if s.shards[0].mu.TryLock() {
			s.shards[0].mu.Unlock()
			free++
		} else {
			locked++
		}
		return start.Add(time.Duration(ms) * time.Millisecond)
	}
	s, err := New(Config{Now: now, Shards: 1, SweepInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p := window.Default()
	req := store.Request{Key: store.Key{1}, Policy: &p, Cost: 1}
	for range 4 { // admitted twice, then refused twice
		s.Take(context.Background(), req)
		ms++
	}
	locked, free = 0, 0
	for range 100 {
		// The entry of t=0 leaves the second at t=1001ms.
		if d, _ := s.Take(context.Background(), req); d.Allowed || d.RetryAfter != time.Duration(1001-ms)*time.Millisecond {
			t.Fatalf("t=%dms: %+v; want refused for %dms", ms, d, 1001-ms)
		}
		ms++
	}
	if free != 100 || locked != 0 {
		t.Fatalf("100 refusals of a hot key read the clock %d times with the lock free, %d under it; want 100, 0", free, locked)
	}
}

// TestSweepWithdrawsRefusal: a key whose refusal outlives its expiry (it was
// admitted under a shorter policy than the one refusing it) is dropped by the
// sweep, and its refusal with it.
func TestSweepWithdrawsRefusal(t *testing.T) {
	start := time.UnixMilli(1_700_000_000_000)
	at := start
	s, err := New(Config{Now: func() time.Time { return at }, Shards: 1, SweepInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	short := window.Policy{Windows: []window.Window{{Length: time.Second, Limit: 100}}}
	long := window.Policy{Windows: []window.Window{{Length: time.Minute, Limit: 1}}}
	k := store.Key{1}
	take := func(p *window.Policy) window.Decision {
		d, err := s.Take(context.Background(), store.Request{Key: k, Policy: p, Cost: 1})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	take(&short)
	take(&long)
	take(&long) // published until a minute
	at = start.Add(2 * time.Second)
	s.sweep(&s.shards[0])
	if s.Len() != 0 {
		t.Fatalf("Len after sweeping an idle key = %d", s.Len())
	}
	if d := take(&long); !d.Allowed {
		t.Fatalf("swept key: %+v; want a fresh key", d)
	}
}
