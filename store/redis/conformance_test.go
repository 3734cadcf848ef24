package redis

import (
	"os"
	"testing"
	"time"

	"github.com/ratekit/ratekit/store"
	"github.com/ratekit/ratekit/store/storetest"
)

// runSuite runs the conformance suite with streams random streams per policy,
// or the full 10,000 with RATEKIT_REDIS_FULL=1 (make long: 14 minutes).
// 10,000 streams through Redis are over a million round trips, so a normal
// run compares fewer: 1,000 against the real redis-server, which carries
// the statistical weight (about 40 s under -race here), and 100 against
// miniredis, whose Lua interpreter under -race took 145 s for 500 and adds
// no coverage the real server lacks beyond a second implementation. The
// store's own TestR02 streams cover both algorithms on top.
func runSuite(t *testing.T, streams int, newStore storetest.NewStore) {
	t.Helper()
	o := storetest.Options{Streams: streams}
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
	runSuite(t, 100, func(t *testing.T, clk *storetest.Clock) store.Store {
		return newStore(t, c, Config{Prefix: "rkconf", Timeout: 10 * time.Second, Now: clk.Now})
	})
}

// TestConformanceRealRedis runs the conformance suite against a real
// redis-server (see realClient) under a random prefix.
func TestConformanceRealRedis(t *testing.T) {
	c, _ := realClient(t)
	prefix := testPrefix(t, c)
	runSuite(t, 1000, func(t *testing.T, clk *storetest.Clock) store.Store {
		return newStore(t, c, Config{Prefix: prefix, Timeout: 10 * time.Second, Now: clk.Now})
	})
}
