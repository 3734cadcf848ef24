package redis

import (
	"testing"
	"time"

	"github.com/ratekit/ratekit/store"
	"github.com/ratekit/ratekit/store/storetest"
)

// TestConformanceMiniredis runs the shared conformance suite (catalogue 1,
// 3, 6–11, 14, admin, close) against the store on miniredis with the
// suite's fake clock passed to the script.
func TestConformanceMiniredis(t *testing.T) {
	_, c := newMini(t)
	storetest.Run(t, func(t *testing.T, clk *storetest.Clock) store.Store {
		return newStore(t, c, Config{Prefix: "rkconf", Timeout: 10 * time.Second, Now: clk.Now})
	})
}

// TestConformanceRealRedis runs the conformance suite against a real
// redis-server (REDIS_ADDR, default 127.0.0.1:6379) under a random prefix.
func TestConformanceRealRedis(t *testing.T) {
	c := realClient(t)
	prefix := testPrefix(t, c)
	storetest.Run(t, func(t *testing.T, clk *storetest.Clock) store.Store {
		return newStore(t, c, Config{Prefix: prefix, Timeout: 10 * time.Second, Now: clk.Now})
	})
}
