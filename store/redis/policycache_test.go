package redis

import (
	"testing"
	"time"

	"github.com/ratekit/ratekit/window"
)

// TestPolicyCacheFollowsNewPolicies: once the cache is full, a new policy
// (a limiter whose limits changed while serving) empties it instead of
// going uncached for ever; the cache never holds more than its bound.
func TestPolicyCacheFollowsNewPolicies(t *testing.T) {
	s := &Store{}
	var last *window.Policy
	for i := range 3 * maxCachedPolicies {
		last = &window.Policy{Windows: []window.Window{{Length: time.Minute, Limit: i + 1}}}
		s.policyArgs(last)
		if n := s.cached.Load(); n > maxCachedPolicies {
			t.Fatalf("after %d policies the cache holds %d, above %d", i+1, n, maxCachedPolicies)
		}
	}
	if _, ok := s.policies.Load(last); !ok {
		t.Fatal("the newest policy is not cached")
	}
	if n := testing.AllocsPerRun(100, func() { s.policyArgs(last) }); n != 0 {
		t.Errorf("policyArgs of a cached policy: %v allocations, want 0", n)
	}
}
