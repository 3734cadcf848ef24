package redis

import (
	"os"
	"testing"
	"time"

	"github.com/ratekit/ratekit/store"
	"github.com/ratekit/ratekit/store/storetest"
)

// runSuite runs the conformance suite. 10,000 streams per policy through
// Redis are over a million round trips: 1,000 took four minutes under
// -race here (make test), so a normal run compares 500 per policy and
// backend; RATEKIT_REDIS_FULL=1 runs the full 10,000. The store's own
// TestR02 streams cover both algorithms on top.
func runSuite(t *testing.T, newStore storetest.NewStore) {
	t.Helper()
	o := storetest.Options{Streams: 500}
	if os.Getenv("RATEKIT_REDIS_FULL") != "" {
		o.Streams = 10000
	}
	t.Logf("storetest: %d streams per policy (RATEKIT_REDIS_FULL=1 for 10,000)", o.Streams)
	storetest.RunOptions(t, o, newStore)
}

// TestConformanceMiniredis runs the shared conformance suite (catalogue 1,
// 3, 6–11, 14, admin, close) against the store on miniredis with the
// suite's fake clock passed to the script.
func TestConformanceMiniredis(t *testing.T) {
	_, c := newMini(t)
	runSuite(t, func(t *testing.T, clk *storetest.Clock) store.Store {
		return newStore(t, c, Config{Prefix: "rkconf", Timeout: 10 * time.Second, Now: clk.Now})
	})
}

// TestConformanceRealRedis runs the conformance suite against a real
// redis-server (see realClient) under a random prefix.
func TestConformanceRealRedis(t *testing.T) {
	c, _ := realClient(t)
	prefix := testPrefix(t, c)
	runSuite(t, func(t *testing.T, clk *storetest.Clock) store.Store {
		return newStore(t, c, Config{Prefix: prefix, Timeout: 10 * time.Second, Now: clk.Now})
	})
}
